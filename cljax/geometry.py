"""Representation-geometry metrics: neural collapse, CDNV, spectra, alignment.

Every metric takes frozen features ``float[N, D]`` with integer labels
``int[N]`` (or views ``float[N, K, D]``) and returns a float32 scalar or small
array. They are pure, run eagerly and under ``jax.jit`` (pass ``num_classes``
as a static Python int there), accept float32 and bfloat16 input and compute
internally in float32 with full-precision matmuls.

Conventions shared by all class-based metrics:

* **Empty classes are masked.** A class id in ``[0, num_classes)`` with no
  sample is excluded from every metric: it has no mean, it is not counted in
  ``C`` (the number of non-empty classes is used instead, e.g. in the simplex
  target ``-1/(C-1)``) and it never produces a NaN. ``class_means`` returns a
  zero row for it.
* **Centring.** ``center=True`` (alias ``"global"``) subtracts the global mean
  of all samples (Papyan et al.); ``"classes"`` subtracts the unweighted mean
  of the non-empty class means (the two agree for balanced classes); ``False``
  (alias ``"none"``) uses raw means, as P2 and P3 do.
* **Cosines** of a zero vector are 0 (the convention of
  ``torch.nn.functional.cosine_similarity``).
* **Undefined values are NaN**, never silently 0: a mean over zero valid pairs
  (fewer than two non-empty classes, or all class means coincident) and ratios
  with a zero denominator return NaN.
* Labels outside ``[0, num_classes)`` raise a ``ValueError`` when the labels
  are concrete; under ``jit`` they cannot be checked and are the caller's
  responsibility (they are dropped from the class sums).

``FeatureStatistics`` accumulates the same statistics over batches on the host
in float64 and reproduces the full-batch metrics without holding the features.

References:
  Papyan, Han & Donoho, "Prevalence of neural collapse during the terminal
  phase of deep learning training", PNAS 2020 (NC1-NC4).
  Galanti, Gyorgy & Hutter, "On the role of neural collapse in transfer
  learning", ICLR 2022 (CDNV).
  Luthra, Yang & Galanti, "Self-supervised contrastive learning is
  approximately supervised contrastive learning", NeurIPS 2025 (directional
  CDNV); spec ``papers.md`` section 2.5.
  Jiang, Nguyen, Aeron & Ishwar, "Hard-negative sampling for contrastive
  learning", TMLR (zero-sum, unit-norm, equal inner product, dimensional
  collapse); spec ``papers.md`` section 4.3.
  Wang & Isola, "Understanding contrastive representation learning through
  alignment and uniformity on the hypersphere", ICML 2020.
  Roy & Vetterli, "The effective rank", EUSIPCO 2007; Garrido et al.,
  "RankMe", ICML 2023.
"""

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike
import numpy as np

from cljax import _checks

__all__ = [
    "EqualInnerProduct",
    "FeatureStatistics",
    "alignment",
    "augmentation_collapse",
    "cdnv",
    "class_counts",
    "class_mean_spectrum",
    "class_means",
    "directional_cdnv",
    "effective_rank",
    "equal_inner_product",
    "equiangularity",
    "equinorm",
    "etf_distance",
    "max_angle",
    "nc1",
    "nc3_self_duality",
    "nc4_ncc_agreement",
    "singular_values",
    "uniformity",
    "unit_norm",
    "within_class_distance",
    "zero_sum",
]

_F32 = jnp.float32
_CDNV_CONVENTIONS = ("galanti", "directional_bounds")
_CENTER_CHOICES = (True, False, "global", "classes", "none")


class EqualInnerProduct(NamedTuple):
  """P3's equal-inner-product deviation over ordered pairs of class means.

  Attributes:
    mean: mean over ordered pairs ``c != c'`` of
      ``|cos(mu_c, mu_c') + 1/(C-1)|`` (the value P3 plots).
    max: the maximum of the same quantity.
  """
  mean: Any
  max: Any


# ----------------------------------------------------------------------------
# Backend-generic helpers. ``xp`` is ``jnp`` (float32, inside jit) or ``np``
# (float64, FeatureStatistics), so the streaming accumulator and the full-batch
# functions share one implementation of every formula on class means.
# ----------------------------------------------------------------------------


def _matmul(a, b, xp):
  if xp is np:
    return a @ b
  # TPU/GPU default to reduced-precision matmuls; metrics need full float32.
  return jnp.matmul(a, b, precision=jax.lax.Precision.HIGHEST)


def _safe_div(num, den, xp):
  ok = den > 0
  return xp.where(ok, num / xp.where(ok, den, 1), xp.nan)


def _eye_bool(c, xp):
  return xp.eye(c, dtype=bool)


def _pair_mask(present, xp, ordered=True):
  c = present.shape[0]
  both = present[:, None] & present[None, :]
  if ordered:
    return both & ~_eye_bool(c, xp)
  return both & xp.triu(xp.ones((c, c), dtype=bool), 1)


def _masked_mean(values, mask, xp):
  return _safe_div(xp.sum(xp.where(mask, values, 0.0)),
                   xp.sum(mask.astype(values.dtype)), xp)


def _normalize_center(center) -> str:
  if isinstance(center, str):
    _checks.check_choice(center, "center", ("global", "classes", "none"))
    return center
  if isinstance(center, (bool, np.bool_)):
    return "global" if center else "none"
  raise ValueError(
      f"`center` must be one of {_CENTER_CHOICES} (a static Python value, "
      f"not an array); got {center!r}.")


def _center_means(means, counts, present, center, xp):
  """Masked (zero rows for empty classes) class means minus the reference."""
  if center == "none":
    ref = xp.zeros(means.shape[1:], means.dtype)
  elif center == "global":
    ref = _matmul(counts, means, xp) / xp.sum(counts)
  else:  # "classes"
    w = present.astype(means.dtype)
    ref = _matmul(w, means, xp) / xp.sum(w)
  return xp.where(present[:, None], means - ref, 0.0)


def _unit_rows(m, xp):
  norms = xp.sqrt(xp.sum(m * m, axis=-1))
  return m / xp.where(norms > 0, norms, 1.0)[:, None]


def _cosines(m, xp):
  u = _unit_rows(m, xp)
  return _matmul(u, u.T, xp)


def _equinorm_from(mc, present, xp):
  norms = xp.sqrt(xp.sum(mc * mc, axis=-1))
  c = xp.sum(present.astype(mc.dtype))
  mean = _safe_div(xp.sum(xp.where(present, norms, 0.0)), c, xp)
  var = _safe_div(xp.sum(xp.where(present, (norms - mean) ** 2, 0.0)), c, xp)
  return _safe_div(xp.sqrt(var), mean, xp)


def _equiangularity_from(mc, present, xp):
  cos = _cosines(mc, xp)
  mask = _pair_mask(present, xp)
  mean = _masked_mean(cos, mask, xp)
  return xp.sqrt(_masked_mean((cos - mean) ** 2, mask, xp))


def _simplex_deviation_from(m, present, xp):
  """(mean, max) over ordered pairs of |cos + 1/(C-1)|, C = non-empty."""
  cos = _cosines(m, xp)
  mask = _pair_mask(present, xp)
  c = xp.sum(present.astype(m.dtype))
  dev = xp.abs(cos + _safe_div(xp.ones((), m.dtype), c - 1, xp))
  mean = _masked_mean(dev, mask, xp)
  mx = xp.max(xp.where(mask, dev, -xp.inf))
  mx = xp.where(xp.any(mask), mx, xp.nan)
  return mean, mx


def _etf_distance_from(mc, present, xp):
  u = _unit_rows(mc, xp)
  g = _matmul(u, u.T, xp)
  g = _safe_div(g, xp.sqrt(xp.sum(g * g)), xp)
  c = xp.sum(present.astype(mc.dtype))
  both = (present[:, None] & present[None, :]).astype(mc.dtype)
  eye = xp.eye(present.shape[0], dtype=mc.dtype)
  # (I - 11^T/C)/sqrt(C-1) restricted to the non-empty classes; it has unit
  # Frobenius norm, like the normalised Gram matrix it is compared with.
  target = both * _safe_div(eye - 1.0 / c, xp.sqrt(c - 1), xp)
  return xp.sqrt(xp.sum((g - target) ** 2))


def _self_duality_from(w, mc, present, xp):
  w = xp.where(present[:, None], w, 0.0)
  wn = _safe_div(w, xp.sqrt(xp.sum(w * w)), xp)
  mn = _safe_div(mc, xp.sqrt(xp.sum(mc * mc)), xp)
  return xp.sqrt(xp.sum((wn - mn) ** 2))


def _nc1_from(s, quad, rcond, xp):
  """sum_k quad_k / s_k^2 over the kept right singular vectors of M.

  With M the [C, D] matrix of centred means, Sigma_B = M^T M / C has
  eigenvalues s_k^2 / C along the right singular vectors w_k, so
  tr(Sigma_W Sigma_B^+)/C = sum_k w_k^T Sigma_W w_k / s_k^2 (the C's cancel).
  ``quad_k = w_k^T Sigma_W w_k``.
  """
  s2 = s * s
  keep = (s2 > rcond * s2[0]) & (s2 > 0)
  return xp.sum(xp.where(keep, quad / xp.where(keep, s2, 1.0), 0.0))


def _cdnv_from(var_sums, counts, present, d2, convention, xp):
  """Mean CDNV over valid unordered pairs; var_sums_c = sum ||z - mu_c||^2."""
  if convention == "galanti":
    var = var_sums / xp.maximum(counts, 1.0)
    ok = present
    scale = 0.5
  else:
    # Unbiased 1/(n-1) variance is undefined for a one-member class: such
    # classes are skipped rather than given a made-up variance.
    var = var_sums / xp.maximum(counts - 1.0, 1.0)
    ok = counts >= 2
    scale = 1.0
  valid = _pair_mask(ok, xp, ordered=False) & (d2 > 0)
  v = scale * (var[:, None] + var[None, :]) / xp.where(valid, d2, 1.0)
  return _masked_mean(v, valid, xp)


def _directional_cdnv_from(q, counts, present, d2, xp):
  """q_ij = sum_{x in i} <z_x - mu_i, mu_j - mu_i>^2; ordered valid pairs."""
  valid = _pair_mask(present, xp) & (d2 > 0)
  den = xp.maximum(counts, 1.0)[:, None] * d2 * d2
  return _masked_mean(q / xp.where(valid, den, 1.0), valid, xp)


def _class_mean_spectrum_from(means, present, xp):
  mc = _center_means(means, None, present, "classes", xp)
  s = xp.linalg.svd(mc, compute_uv=False)
  c = xp.sum(present.astype(means.dtype))
  return _safe_div(s * s, c - 1.0, xp)


def _effective_rank_from(s, eps, xp):
  total = xp.sum(s)
  p = xp.where(total > 0, s / xp.where(total > 0, total, 1.0), 0.0) + eps
  return xp.exp(-xp.sum(p * xp.log(p)))


def _p3_raw_from(means, present, xp):
  c = xp.sum(present.astype(means.dtype))
  raw = xp.where(present[:, None], means, 0.0)
  zs = xp.sqrt(xp.sum((xp.sum(raw, axis=0) / c) ** 2))
  norms = xp.sqrt(xp.sum(raw * raw, axis=-1))
  un = xp.sum(xp.where(present, xp.abs(norms - 1.0), 0.0)) / c
  return zs, un


# ----------------------------------------------------------------------------
# Full-batch (JAX) internals.
# ----------------------------------------------------------------------------


def _as_array(x: Any) -> Any:
  return x if isinstance(x, (jax.Array, np.ndarray)) else np.asarray(x)


def _replicate_if_sharded(x: jax.Array) -> jax.Array:
  """All-gathers ``x`` when it is sharded over an Explicit mesh.

  Class statistics are global (scatter-adds over the whole batch, Gram
  matrices across samples), which sharding-in-types rejects on operands
  sharded along the batch; metrics are cheap next to the gather. A no-op on
  unsharded arrays and Auto meshes.
  """
  sharding = getattr(jax.typeof(x), "sharding", None)
  mesh = getattr(sharding, "mesh", None)
  if mesh is None or mesh.empty or all(s is None for s in sharding.spec):
    return x
  return jax.reshard(x, jax.NamedSharding(mesh, jax.P()))


def _prepare_features(features, name="features", rank=2,
                      layout="float[N, D]"):
  features = _as_array(features)
  _checks.check_rank(features, rank, name, layout)
  _checks.check_float(features, name)
  return _replicate_if_sharded(jnp.asarray(features).astype(_F32))


def _prepare(features, labels, num_classes, name="features", rank=2,
             layout="float[N, D]"):
  z = _prepare_features(features, name, rank, layout)
  labels = _as_array(labels)
  n = z.shape[0]
  # Shape and dtype first, so a float or misshaped label vector gets the
  # precise message rather than a failure while inferring num_classes.
  _checks.check_labels(labels, n, "labels")
  c = _checks.infer_num_classes(labels, num_classes)
  _checks.check_labels(labels, n, "labels", c)
  return z, _replicate_if_sharded(jnp.asarray(labels).astype(jnp.int32)), c


def _check_weights(weights, num_classes, dim):
  weights = _as_array(weights)
  _checks.check_rank(weights, 2, "weights", "float[C, D]")
  _checks.check_float(weights, "weights")
  c, d = np.shape(weights)
  if d != dim:
    raise ValueError(
        f"`weights` must have shape [C, {dim}] (one classifier row per class, "
        f"same width as `features`); got {tuple(np.shape(weights))}.")
  if num_classes is not None and int(num_classes) != c:
    raise ValueError(
        f"`weights` has {c} rows but `num_classes={num_classes}`; pass the "
        f"classifier of all {num_classes} classes or drop `num_classes`.")
  return _replicate_if_sharded(jnp.asarray(weights).astype(_F32)), c


def _stats(z, labels, num_classes):
  counts = jax.ops.segment_sum(jnp.ones(labels.shape, _F32), labels,
                               num_segments=num_classes)
  sums = jax.ops.segment_sum(z, labels, num_segments=num_classes)
  present = counts > 0
  means = sums / jnp.maximum(counts, 1.0)[:, None]
  return counts, means, present


def _residuals(z, labels, means):
  return z - means[labels]


def _pairwise_sq_dists(m):
  # Differences, not the Gram identity: coincident means must give exactly 0
  # and nearly coincident ones must not drown in cancellation. Inside jit XLA
  # fuses the broadcast into the reduction, so [C, C, D] is never stored.
  return jnp.sum(jnp.square(m[:, None, :] - m[None, :, :]), axis=-1)


def _jit(*static):
  """Decorator: jit with static arguments, so eager calls run fused code."""
  return lambda fn: jax.jit(fn, static_argnames=static)


@_jit("num_classes")
def _class_means_core(z, labels, num_classes):
  return _stats(z, labels, num_classes)[1]


@_jit("num_classes")
def _nc1_core(z, labels, rcond, num_classes):
  counts, means, present = _stats(z, labels, num_classes)
  m = _center_means(means, counts, present, "global", jnp)
  _, s, vt = jnp.linalg.svd(m, full_matrices=False)
  # Work in the <= C-dim span of the centred means: project the residuals on
  # the right singular vectors, O(N C D) instead of forming D x D matrices.
  proj = _matmul(_residuals(z, labels, means), vt.T, jnp)
  quad = jnp.sum(proj * proj, axis=0) / jnp.sum(counts)
  return _nc1_from(s, quad, rcond, jnp)


@_jit("num_classes", "center", "metric")
def _means_metric_core(z, labels, num_classes, center, metric):
  counts, means, present = _stats(z, labels, num_classes)
  mc = _center_means(means, counts, present, center, jnp)
  if metric == "equinorm":
    return _equinorm_from(mc, present, jnp)
  if metric == "equiangularity":
    return _equiangularity_from(mc, present, jnp)
  if metric == "max_angle":
    return _simplex_deviation_from(mc, present, jnp)[0]
  if metric == "etf_distance":
    return _etf_distance_from(mc, present, jnp)
  if metric == "equal_inner_product":
    return EqualInnerProduct(*_simplex_deviation_from(mc, present, jnp))
  if metric == "p3_raw":
    return _p3_raw_from(means, present, jnp)
  if metric == "class_mean_spectrum":
    return _class_mean_spectrum_from(means, present, jnp)
  raise AssertionError(metric)


@_jit("num_classes", "convention")
def _cdnv_core(z, labels, num_classes, convention):
  counts, means, present = _stats(z, labels, num_classes)
  r = _residuals(z, labels, means)
  var_sums = jax.ops.segment_sum(jnp.sum(r * r, axis=-1), labels,
                                 num_segments=num_classes)
  return _cdnv_from(var_sums, counts, present, _pairwise_sq_dists(means),
                    convention, jnp)


@_jit("num_classes")
def _directional_cdnv_core(z, labels, num_classes):
  counts, means, present = _stats(z, labels, num_classes)
  r = _residuals(z, labels, means)
  # <r_x, mu_j - mu_i> = <r_x, mu_j> - <r_x, mu_i>: one [N, C] matmul instead
  # of an [N, C, D] tensor. Centring the means first keeps the two terms small.
  mc = _center_means(means, counts, present, "classes", jnp)
  p = _matmul(r, mc.T, jnp)
  p = p - jnp.take_along_axis(p, labels[:, None], axis=1)
  q = jax.ops.segment_sum(p * p, labels, num_segments=num_classes)
  return _directional_cdnv_from(q, counts, present, _pairwise_sq_dists(means),
                                jnp)


@_jit("num_classes")
def _within_class_distance_core(z, labels, num_classes):
  counts, means, present = _stats(z, labels, num_classes)
  r = _residuals(z, labels, means)
  dist = jax.ops.segment_sum(jnp.sqrt(jnp.sum(r * r, axis=-1)), labels,
                             num_segments=num_classes)
  per_class = dist / jnp.maximum(counts, 1.0)
  return _masked_mean(per_class, present, jnp)


@_jit("num_classes", "center")
def _nc3_core(z, labels, w, num_classes, center):
  counts, means, present = _stats(z, labels, num_classes)
  mc = _center_means(means, counts, present, center, jnp)
  return _self_duality_from(w, mc, present, jnp)


@_jit("num_classes")
def _nc4_core(z, labels, w, b, num_classes):
  _, means, present = _stats(z, labels, num_classes)
  logits = _matmul(z, w.T, jnp) + b
  # argmin ||z - mu_c||^2 = argmax 2<z, mu_c> - ||mu_c||^2 (||z||^2 is shared).
  ncc = 2.0 * _matmul(z, means.T, jnp) - jnp.sum(means * means, axis=-1)
  lin_pred = jnp.argmax(jnp.where(present, logits, -jnp.inf), axis=-1)
  ncc_pred = jnp.argmax(jnp.where(present, ncc, -jnp.inf), axis=-1)
  return jnp.mean((lin_pred == ncc_pred).astype(_F32))


@_jit("num_classes")
def _augmentation_core(z, labels, num_classes):
  zbar = jnp.mean(z, axis=1)
  view_var = jnp.mean(jnp.sum(jnp.square(z - zbar[:, None, :]), axis=-1))
  out = {"view_variance": view_var}
  if labels is not None:
    _, means, present = _stats(zbar, labels, num_classes)
    d2 = _pairwise_sq_dists(means)
    msd = _masked_mean(d2, _pair_mask(present, jnp, ordered=False), jnp)
    out["class_mean_sq_distance"] = msd
    out["augmentation_cdnv"] = _safe_div(view_var, msd, jnp)
  return out


@_jit("center")
def _singular_values_core(x, center):
  if center:
    x = x - jnp.mean(x, axis=0)
  s = jnp.linalg.svd(x, compute_uv=False)
  return jnp.sort(s)[::-1]


@_jit()
def _alignment_core(z, alpha):
  k = z.shape[1]
  d2 = jnp.sum(jnp.square(z[:, :, None, :] - z[:, None, :, :]), axis=-1)
  off = ~jnp.eye(k, dtype=bool)
  # Double where: d2**(alpha/2) has an infinite derivative at d2 = 0 for
  # alpha < 2, and the l == l' diagonal is exactly 0.
  pos = off & (d2 > 0)
  val = jnp.where(pos, jnp.where(pos, d2, 1.0) ** (alpha / 2.0), 0.0)
  return jnp.sum(val) / (z.shape[0] * k * (k - 1))


@_jit()
def _uniformity_core(x, t):
  n = x.shape[0]
  sq = jnp.sum(x * x, axis=-1)
  # Gram identity (not differences): N x N x D would not fit for real batch
  # sizes, and the round-off of order eps * ||z||^2 is harmless inside exp.
  d2 = jnp.maximum(sq[:, None] + sq[None, :] - 2.0 * _matmul(x, x.T, jnp),
                   0.0)
  off = ~jnp.eye(n, dtype=bool)
  return (jax.nn.logsumexp(-t * d2, where=off)
          - jnp.log(jnp.asarray(n * (n - 1), _F32)))


# ----------------------------------------------------------------------------
# Public full-batch API.
# ----------------------------------------------------------------------------

def class_counts(labels: ArrayLike, num_classes: int | None = None
                 ) -> jax.Array:
  """Number of samples per class.

  Args:
    labels: int[N] class ids in ``[0, num_classes)``.
    num_classes: number of classes C; ``None`` infers ``max(labels) + 1``
      from concrete labels (required, as a static int, under ``jit``).

  Returns:
    int32[C] counts; classes without samples have count 0.

  Raises:
    ValueError: if ``labels`` is not an integer vector, or (concrete labels)
      lies outside ``[0, num_classes)``.

  Examples:
    >>> class_counts(jnp.array([0, 2, 2]), num_classes=4).tolist()
    [1, 0, 2, 0]
  """
  labels = _as_array(labels)
  _checks.check_rank(labels, 1, "labels", "int[N]")
  _checks.check_labels(labels, np.shape(labels)[0], "labels")
  c = _checks.infer_num_classes(labels, num_classes)
  _checks.check_labels(labels, np.shape(labels)[0], "labels", c)
  labels = _replicate_if_sharded(jnp.asarray(labels).astype(jnp.int32))
  return jax.ops.segment_sum(jnp.ones(labels.shape, jnp.int32), labels,
                             num_segments=c)


def class_means(features: ArrayLike, labels: ArrayLike,
                num_classes: int | None = None) -> jax.Array:
  """Per-class mean features ``mu_c``.

  Args:
    features: float[N, D] features (float32 or bfloat16).
    labels: int[N] class ids in ``[0, num_classes)``.
    num_classes: number of classes C; ``None`` infers ``max(labels) + 1``
      from concrete labels (required, as a static int, under ``jit``).

  Returns:
    float32[C, D] class means; the row of a class without samples is 0.

  Raises:
    ValueError: on a wrong rank, non-float features, non-integer labels, a
      length mismatch, or (concrete labels) labels out of range.

  Examples:
    >>> z = jnp.array([[0., 0.], [2., 0.], [5., 5.]])
    >>> class_means(z, jnp.array([0, 0, 1])).tolist()
    [[1.0, 0.0], [5.0, 5.0]]
  """
  z, labels, c = _prepare(features, labels, num_classes)
  return _class_means_core(z, labels, num_classes=c)


def nc1(features: ArrayLike, labels: ArrayLike,
        num_classes: int | None = None, rcond: float = 1e-6) -> jax.Array:
  r"""Within-class variability collapse NC1 = tr(Sigma_W Sigma_B^+) / C.

  ``Sigma_W = 1/N sum_i (z_i - mu_{y_i})(z_i - mu_{y_i})^T`` and
  ``Sigma_B = 1/C sum_c (mu_c - mu_G)(mu_c - mu_G)^T`` with ``mu_G`` the
  global mean of all samples and C the number of non-empty classes. The
  pseudo-inverse zeroes singular values below ``rcond * sigma_max``
  (``Sigma_B`` has rank at most C - 1).

  The computation never forms a D x D matrix: it takes the thin SVD of the
  [C, D] centred-mean matrix M (``Sigma_B = M^T M / C``) and projects the
  residuals on its right singular vectors ``w_k``, giving
  ``NC1 = sum_k w_k^T Sigma_W w_k / s_k^2`` in O(N C D). Using singular
  values of M (not eigenvalues of ``M M^T``) keeps the ``rcond`` cut-off
  reliable in float32.

  Args:
    features: float[N, D] features.
    labels: int[N] class ids.
    num_classes: number of classes (static under ``jit``); empty classes are
      masked.
    rcond: relative cut-off for the pseudo-inverse, on the singular values of
      ``Sigma_B`` (i.e. on ``s_k^2``).

  Returns:
    float32 scalar; 0 at exact within-class collapse (and 0 if all class
    means coincide, where the pseudo-inverse is 0).

  Raises:
    ValueError: on malformed ``features``/``labels`` or ``rcond < 0``.

  References:
    Papyan, Han & Donoho, PNAS 2020, NC1; spec ``papers.md`` section 5.

  Examples:
    >>> z = jnp.array([[-1., 0.], [1., 0.], [4., 1.], [4., -1.]])
    >>> round(float(nc1(z, jnp.array([0, 0, 1, 1]))), 4)  # (1/2)(1/4)/2
    0.0625
  """
  z, labels, c = _prepare(features, labels, num_classes)
  _checks.check_positive(rcond, "rcond", allow_zero=True)
  return _nc1_core(z, labels, jnp.asarray(rcond, _F32), num_classes=c)


def _means_metric(features, labels, num_classes, center, metric):
  z, labels, c = _prepare(features, labels, num_classes)
  return _means_metric_core(z, labels, num_classes=c,
                            center=_normalize_center(center), metric=metric)


def equinorm(features: ArrayLike, labels: ArrayLike,
             num_classes: int | None = None,
             center: bool | str = True) -> jax.Array:
  """Equinorm: std_c ||mu_c - mu_G|| / mean_c ||mu_c - mu_G|| (NC2).

  The standard deviation is the population one (divisor C), over non-empty
  classes.

  Args:
    features: float[N, D] features.
    labels: int[N] class ids.
    num_classes: number of classes (static under ``jit``).
    center: ``True``/``"global"`` (global sample mean), ``"classes"`` (mean of
      class means) or ``False``/``"none"`` (raw means). Static.

  Returns:
    float32 scalar, 0 when all centred means have equal norms.

  Raises:
    ValueError: on malformed inputs or an unknown ``center``.

  References:
    Papyan, Han & Donoho, PNAS 2020, NC2 (equinorm); spec ``papers.md`` s. 5.

  Examples:
    >>> z = jnp.array([[1., 0.], [-1., 0.], [0., 3.], [0., -3.]])
    >>> float(equinorm(z, jnp.array([0, 1, 2, 3]), center=False))
    0.5
  """
  return _means_metric(features, labels, num_classes, center, "equinorm")


def equiangularity(features: ArrayLike, labels: ArrayLike,
                   num_classes: int | None = None,
                   center: bool | str = True) -> jax.Array:
  """Std over ordered pairs c != c' of cos(mu_c - mu_G, mu_c' - mu_G) (NC2).

  Args:
    features: float[N, D] features.
    labels: int[N] class ids.
    num_classes: number of classes (static under ``jit``).
    center: see ``equinorm``.

  Returns:
    float32 scalar (population std), 0 when all pairwise angles are equal.

  Raises:
    ValueError: on malformed inputs or an unknown ``center``.

  References:
    Papyan, Han & Donoho, PNAS 2020, NC2 (equiangularity).
  """
  return _means_metric(features, labels, num_classes, center,
                       "equiangularity")


def max_angle(features: ArrayLike, labels: ArrayLike,
              num_classes: int | None = None,
              center: bool | str = True) -> jax.Array:
  """Mean over ordered pairs c != c' of |cos(mu_c, mu_c') + 1/(C-1)|.

  The deviation of the pairwise cosines from the simplex value -1/(C-1)
  (C = number of non-empty classes). With ``center=False`` this is P3's
  equal-inner-product metric (``equal_inner_product(...).mean``).

  Args:
    features: float[N, D] features.
    labels: int[N] class ids.
    num_classes: number of classes (static under ``jit``).
    center: see ``equinorm``.

  Returns:
    float32 scalar, 0 at a simplex ETF.

  Raises:
    ValueError: on malformed inputs or an unknown ``center``.

  References:
    Papyan, Han & Donoho, PNAS 2020, NC2 (max-angle); spec ``papers.md`` s. 5.
  """
  return _means_metric(features, labels, num_classes, center, "max_angle")


def etf_distance(features: ArrayLike, labels: ArrayLike,
                 num_classes: int | None = None,
                 center: bool | str = True) -> jax.Array:
  """Frobenius distance of the normalised mean Gram matrix to the simplex ETF.

  ``|| G/||G||_F - (I - 11^T/C)/sqrt(C-1) ||_F`` with ``G_cc' =
  <u_c, u_c'>`` over the unit-normalised (centred) class means ``u_c`` of the
  C non-empty classes.

  Args:
    features: float[N, D] features.
    labels: int[N] class ids.
    num_classes: number of classes (static under ``jit``).
    center: see ``equinorm``.

  Returns:
    float32 scalar in [0, 2]; 0 exactly at a simplex ETF.

  Raises:
    ValueError: on malformed inputs or an unknown ``center``.

  References:
    Spec ``papers.md`` section 5 (ETF deviation); Papyan et al. 2020, NC2.
  """
  return _means_metric(features, labels, num_classes, center, "etf_distance")


def nc3_self_duality(features: ArrayLike, labels: ArrayLike,
                     weights: ArrayLike, num_classes: int | None = None,
                     center: bool | str = True) -> jax.Array:
  """Self-duality NC3: || W/||W||_F - M/||M||_F ||_F.

  Args:
    features: float[N, D] features.
    labels: int[N] class ids.
    weights: float[C, D] classifier rows, one per class; rows of empty
      classes are ignored.
    num_classes: number of classes; defaults to ``weights.shape[0]`` (so it is
      optional under ``jit``).
    center: centring of the class means M (rows); see ``equinorm``.

  Returns:
    float32 scalar in [0, 2], 0 when W is proportional to M.

  Raises:
    ValueError: on malformed inputs or when ``weights`` does not have
      ``num_classes`` rows of width D.

  References:
    Papyan, Han & Donoho, PNAS 2020, NC3.
  """
  z = _prepare_features(features)
  w, c = _check_weights(weights, num_classes, z.shape[1])
  z, labels, c = _prepare(z, labels, c)
  return _nc3_core(z, labels, w, num_classes=c,
                   center=_normalize_center(center))


def nc4_ncc_agreement(features: ArrayLike, labels: ArrayLike,
                      weights: ArrayLike, bias: ArrayLike | None = None,
                      num_classes: int | None = None) -> jax.Array:
  """NC4: fraction of samples where the classifier agrees with the NCC.

  Compares ``argmax_c (W z + b)_c`` with the nearest class centre
  ``argmin_c ||z - mu_c||_2``, the centres computed from
  ``(features, labels)``. Empty classes are excluded from both argmaxes (they
  have no centre).

  Args:
    features: float[N, D] features to classify.
    labels: int[N] class ids (used only to compute the centres).
    weights: float[C, D] classifier rows.
    bias: optional float[C] classifier bias.
    num_classes: number of classes; defaults to ``weights.shape[0]``.

  Returns:
    float32 scalar in [0, 1]; 1 at NC4.

  Raises:
    ValueError: on malformed inputs.

  References:
    Papyan, Han & Donoho, PNAS 2020, NC4.
  """
  z = _prepare_features(features)
  w, c = _check_weights(weights, num_classes, z.shape[1])
  z, labels, c = _prepare(z, labels, c)
  if bias is None:
    b = jnp.zeros((c,), _F32)
  else:
    bias = _as_array(bias)
    if np.shape(bias) != (c,):
      raise ValueError(
          f"`bias` must have shape [{c}] (one entry per class); got "
          f"{tuple(np.shape(bias))}.")
    _checks.check_float(bias, "bias")
    b = _replicate_if_sharded(jnp.asarray(bias).astype(_F32))
  return _nc4_core(z, labels, w, b, num_classes=c)


def cdnv(features: ArrayLike, labels: ArrayLike,
         num_classes: int | None = None,
         convention: str = "galanti") -> jax.Array:
  r"""Class-distance normalised variance, averaged over unordered pairs.

  ``convention="galanti"`` (default; Galanti et al. 2022, the definition P1's
  code logs): ``V(i, j) = (Var_i + Var_j) / (2 ||mu_i - mu_j||^2)`` with the
  population variance ``Var_c = 1/n_c sum_{x in c} ||z_x - mu_c||^2``.

  ``convention="directional_bounds"`` (the 2026 follow-up
  ``directional_cdnv_bounds``): ``V(i, j) = (v_i + v_j) / ||mu_i - mu_j||^2``
  with the unbiased ``v_c = 1/(n_c - 1) sum ||z_x - mu_c||^2``; classes with a
  single sample have no unbiased variance and their pairs are skipped.

  Pairs whose means coincide exactly (zero distance) are skipped, and the
  mean is taken over the remaining valid pairs. No epsilon is added to the
  denominator. Returns NaN when no pair is valid.

  Args:
    features: float[N, D] features.
    labels: int[N] class ids.
    num_classes: number of classes (static under ``jit``).
    convention: ``"galanti"`` or ``"directional_bounds"`` (static).

  Returns:
    float32 scalar; 0 at within-class collapse.

  Raises:
    ValueError: on malformed inputs or an unknown ``convention``.

  References:
    Galanti, Gyorgy & Hutter, ICLR 2022, Def. 1; Luthra, Yang & Galanti,
    NeurIPS 2025; spec ``papers.md`` section 2.5 item 2.

  Examples:
    >>> z = jnp.array([[-1., 0.], [1., 0.], [4., 1.], [4., -1.]])
    >>> float(cdnv(z, jnp.array([0, 0, 1, 1])))  # (1 + 1) / (2 * 16)
    0.0625
  """
  _checks.check_choice(convention, "convention", _CDNV_CONVENTIONS)
  z, labels, c = _prepare(features, labels, num_classes)
  return _cdnv_core(z, labels, num_classes=c, convention=convention)


def directional_cdnv(features: ArrayLike, labels: ArrayLike,
                     num_classes: int | None = None) -> jax.Array:
  r"""Directional CDNV of P1, averaged over ordered pairs of classes.

  For an ordered pair (i, j) with ``u_ij = (mu_j - mu_i)/||mu_j - mu_i||``:
  ``V~(i, j) = E_{x in i} <z_x - mu_i, u_ij>^2 / ||mu_i - mu_j||^2`` (the
  expectation with the population 1/n_i). Only the variance of class i along
  the direction to class j counts. Pairs with exactly coincident means are
  skipped and the divisor is the number of valid ordered pairs (one of P1's
  two implementations counts skipped pairs; this one does not).

  Args:
    features: float[N, D] features.
    labels: int[N] class ids.
    num_classes: number of classes (static under ``jit``).

  Returns:
    float32 scalar; NaN when no pair is valid.

  Raises:
    ValueError: on malformed inputs.

  References:
    Luthra, Yang & Galanti, NeurIPS 2025; spec ``papers.md`` s. 2.5 item 3.

  Examples:
    >>> z = jnp.array([[-1., 0.], [1., 0.], [4., 1.], [4., -1.]])
    >>> float(directional_cdnv(z, jnp.array([0, 0, 1, 1])))  # (1/16 + 0)/2
    0.03125
  """
  z, labels, c = _prepare(features, labels, num_classes)
  return _directional_cdnv_core(z, labels, num_classes=c)


def augmentation_collapse(z: ArrayLike, labels: ArrayLike | None = None,
                          num_classes: int | None = None
                          ) -> dict[str, jax.Array]:
  r"""Augmentation collapse: spread of the K views of each sample.

  ``view_variance = mean_i (1/K) sum_l ||z_il - zbar_i||^2`` with ``zbar_i``
  the mean of sample i's views. With labels, class means ``mu_c`` are the
  means of ``zbar_i`` over the class and the variance is normalised like a
  CDNV: ``augmentation_cdnv = view_variance / mean_{c < c'} ||mu_c -
  mu_c'||^2`` over unordered pairs of non-empty classes (coincident means
  included; the ratio is NaN if every pair coincides).

  Args:
    z: float[N, K, D] features of K views per sample.
    labels: optional int[N] class ids of the samples.
    num_classes: number of classes (static under ``jit``).

  Returns:
    A dict of float32 scalars: always ``"view_variance"``; with labels also
    ``"class_mean_sq_distance"`` and ``"augmentation_cdnv"``.

  Raises:
    ValueError: on a wrong rank, fewer than 2 views, or malformed labels.

  References:
    Spec ``papers.md`` section 2.5 item 8 (proposed metric; P1 has none).

  Examples:
    >>> z = jnp.array([[[0., 0.], [2., 0.]], [[5., 1.], [5., -1.]]])
    >>> float(augmentation_collapse(z)["view_variance"])
    1.0
  """
  if labels is None:
    x = _prepare_features(z, "z", 3, "float[N, K, D]")
    c = None
    y = None
  else:
    x, y, c = _prepare(z, labels, num_classes, "z", 3, "float[N, K, D]")
  if x.shape[1] < 2:
    raise ValueError(
        f"`z` must hold K >= 2 views per sample (layout float[N, K, D]); got "
        f"shape {tuple(x.shape)}.")
  return _augmentation_core(x, y, num_classes=c)


def singular_values(x: ArrayLike, center: bool = True) -> jax.Array:
  """Singular values of a feature matrix, sorted descending.

  Args:
    x: float[N, D] matrix (features, class means, ...).
    center: subtract the column mean (mean over rows) first. Static.

  Returns:
    float32[min(N, D)] singular values, descending.

  Raises:
    ValueError: on a wrong rank or non-float input.

  Examples:
    >>> singular_values(jnp.array([[3., 0.], [0., 4.]]), center=False).tolist()
    [4.0, 3.0]
  """
  x = _prepare_features(x, "x")
  return _singular_values_core(x, center=bool(center))


def effective_rank(x: ArrayLike, center: bool = True,
                   eps: float = 1e-7) -> jax.Array:
  r"""Effective rank ``exp(-sum_i p_i log p_i)``, ``p_i = s_i/sum_j s_j + eps``.

  Args:
    x: float[N, D] matrix (e.g. embeddings, or class means for P3's
      dimensional-collapse view).
    center: subtract the column mean first (static).
    eps: the RankMe epsilon added to each ``p_i``.

  Returns:
    float32 scalar in about [1, min(N, D)].

  Raises:
    ValueError: on a wrong rank, non-float input or ``eps < 0``.

  References:
    Roy & Vetterli, EUSIPCO 2007; Garrido et al., RankMe, ICML 2023.

  Examples:
    >>> round(float(effective_rank(jnp.eye(3), center=False)), 4)
    3.0
  """
  _checks.check_positive(eps, "eps", allow_zero=True)
  return _effective_rank_from(singular_values(x, center), eps, jnp)


def class_mean_spectrum(features: ArrayLike, labels: ArrayLike,
                        num_classes: int | None = None) -> jax.Array:
  """P3's dimensional-collapse spectrum of the class means.

  Singular values (= eigenvalues) of the covariance of the class means
  across classes, ``1/(C-1) sum_c (mu_c - mubar)(mu_c - mubar)^T`` with
  ``mubar`` the mean of the C non-empty class means (raw means, no sample
  weighting). Computed from the [C, D] mean matrix, so it costs O(C^2 D).
  P3 plots ``log(s_i / s_max)``; values below ~1e-7 relative are float32
  round-off.

  Args:
    features: float[N, D] features.
    labels: int[N] class ids.
    num_classes: number of classes (static under ``jit``).

  Returns:
    float32[min(num_classes, D)], descending; the covariance's remaining
    singular values are exactly 0 (its rank is at most C - 1, so when
    D >= num_classes the last returned value is ~0 as well). An ETF gives
    C - 1 equal values.

  Raises:
    ValueError: on malformed inputs.

  References:
    Jiang et al., TMLR (P3), dimensional collapse; spec ``papers.md`` s. 4.3
    item 5.
  """
  return _means_metric(features, labels, num_classes, False,
                       "class_mean_spectrum")


def alignment(z: ArrayLike, alpha: float = 2.0) -> jax.Array:
  """Alignment: mean over positive pairs of ``||z_il - z_il'||^alpha``.

  Averaged over samples i and ordered pairs of distinct views l != l'.

  Args:
    z: float[N, K, D] features of K >= 2 views per sample (typically
      L2-normalised).
    alpha: exponent (Wang & Isola use 2).

  Returns:
    float32 scalar >= 0.

  Raises:
    ValueError: on a wrong rank, K < 2 or ``alpha <= 0``.

  References:
    Wang & Isola, ICML 2020, Eq. 4 (L_align).

  Examples:
    >>> z = jnp.array([[[1., 0.], [0., 1.]]])
    >>> round(float(alignment(z)), 4)
    2.0
  """
  x = _prepare_features(z, "z", 3, "float[N, K, D]")
  if x.shape[1] < 2:
    raise ValueError(
        f"`z` must hold K >= 2 views per sample (layout float[N, K, D]); got "
        f"shape {tuple(x.shape)}.")
  _checks.check_positive(alpha, "alpha")
  return _alignment_core(x, jnp.asarray(alpha, _F32))


def uniformity(features: ArrayLike, t: float = 2.0) -> jax.Array:
  """Uniformity: ``log mean_{i != j} exp(-t ||z_i - z_j||^2)``.

  Computed with a masked log-sum-exp, so it is finite for any t and scale.
  For views ``[N, K, D]`` call it on each view or on ``z.reshape(-1, D)``.

  Args:
    features: float[N, D] features (typically L2-normalised), N >= 2.
    t: temperature (Wang & Isola use 2).

  Returns:
    float32 scalar <= 0.

  Raises:
    ValueError: on a wrong rank, N < 2 or ``t <= 0``.

  References:
    Wang & Isola, ICML 2020, Eq. 5 (L_uniform).

  Examples:
    >>> round(float(uniformity(jnp.array([[1., 0.], [-1., 0.]]))), 4)  # -2*4
    -8.0
  """
  x = _prepare_features(features)
  if x.shape[0] < 2:
    raise ValueError(
        f"`features` needs at least 2 rows (pairs i != j); got shape "
        f"{tuple(x.shape)}.")
  _checks.check_positive(t, "t")
  return _uniformity_core(x, jnp.asarray(t, _F32))


def zero_sum(features: ArrayLike, labels: ArrayLike,
             num_classes: int | None = None) -> jax.Array:
  """P3's zero-sum deviation ``||(1/C) sum_c mu_c||_2`` of the raw means.

  Args:
    features: float[N, D] features (P3: ball-projected head outputs).
    labels: int[N] class ids.
    num_classes: number of classes (static under ``jit``).

  Returns:
    float32 scalar, 0 for a simplex centred at the origin.

  Raises:
    ValueError: on malformed inputs.

  References:
    Jiang et al., TMLR (P3); spec ``papers.md`` section 4.3 item 1.
  """
  return _means_metric(features, labels, num_classes, False, "p3_raw")[0]


def unit_norm(features: ArrayLike, labels: ArrayLike,
              num_classes: int | None = None) -> jax.Array:
  """P3's unit-norm deviation ``(1/C) sum_c | ||mu_c||_2 - 1 |`` (raw means).

  Args:
    features: float[N, D] features.
    labels: int[N] class ids.
    num_classes: number of classes (static under ``jit``).

  Returns:
    float32 scalar, 0 when every class mean lies on the unit sphere.

  Raises:
    ValueError: on malformed inputs.

  References:
    Jiang et al., TMLR (P3); spec ``papers.md`` section 4.3 item 2.
  """
  return _means_metric(features, labels, num_classes, False, "p3_raw")[1]


def equal_inner_product(features: ArrayLike, labels: ArrayLike,
                        num_classes: int | None = None) -> EqualInnerProduct:
  """P3's equal-inner-product deviation of the raw class means.

  ``|cos(mu_c, mu_c') + 1/(C-1)|`` over ordered pairs ``c != c'`` of
  non-empty classes, reduced by mean (P3's plotted value) and max.

  Args:
    features: float[N, D] features.
    labels: int[N] class ids.
    num_classes: number of classes (static under ``jit``).

  Returns:
    ``EqualInnerProduct(mean, max)`` of float32 scalars (a NamedTuple, so a
    pytree under ``jit``).

  Raises:
    ValueError: on malformed inputs.

  References:
    Jiang et al., TMLR (P3); spec ``papers.md`` section 4.3 item 3.
  """
  return _means_metric(features, labels, num_classes, False,
                       "equal_inner_product")


def within_class_distance(features: ArrayLike, labels: ArrayLike,
                          num_classes: int | None = None) -> jax.Array:
  """P3's within-class variation ``(1/C) sum_c mean_{i in c} ||z_i - mu_c||``.

  Euclidean distances (not squared), averaged within each class and then
  over the non-empty classes.

  Args:
    features: float[N, D] features.
    labels: int[N] class ids.
    num_classes: number of classes (static under ``jit``).

  Returns:
    float32 scalar, 0 at within-class collapse.

  Raises:
    ValueError: on malformed inputs.

  References:
    Jiang et al., TMLR (P3); spec ``papers.md`` section 4.3 item 4.
  """
  z, labels, c = _prepare(features, labels, num_classes)
  return _within_class_distance_core(z, labels, num_classes=c)


# ----------------------------------------------------------------------------
# Streaming accumulator (host side, NumPy float64).
# ----------------------------------------------------------------------------


def _np_pairwise_sq_dists(m):
  # Row by row: C x C x D float64 can exceed host memory for ImageNet-sized C.
  return np.stack([np.sum((m - m[i]) ** 2, axis=-1) for i in range(len(m))])


class FeatureStatistics:
  """Streaming float64 class statistics that reproduce the geometry metrics.

  Feed batches of any size with ``update`` (JAX or NumPy arrays, any float
  dtype), combine accumulators built on different hosts or shards with
  ``merge``, then call ``metrics``. Only sufficient statistics are kept:

  * ``counts`` int64[C], ``sums`` float64[C, D], ``sq_norms`` float64[C]
    (per-class sums of ``||z||^2``) and ``second_moment`` float64[D, D]
    (``sum_i z_i z_i^T``): enough for the class means, NC1, NC2, NC3, the
    CDNV (both conventions), P3's metrics and the feature spectrum;
  * optionally ``class_second_moments`` float64[C, D, D] (per-class
    ``sum z z^T``), needed only for the directional CDNV. This costs
    ``8 C D^2`` bytes (100 classes at D = 2048: 3.4 GB); pass
    ``per_class_second_moments=False`` to skip it, and ``metrics`` then
    omits ``"directional_cdnv"``.

  Sample-level quantities (``within_class_distance``, ``nc4_ncc_agreement``,
  ``alignment``, ``uniformity``, ``augmentation_collapse``) need the features
  themselves and are not available here.

  Args:
    num_classes: number of classes C (labels must lie in ``[0, C)``).
    dim: feature dimension D.
    per_class_second_moments: keep the [C, D, D] per-class second moments.

  Raises:
    ValueError: if ``num_classes`` or ``dim`` is not a positive int.

  Examples:
    >>> stats = FeatureStatistics(num_classes=2, dim=2)
    >>> z = np.array([[-1., 0.], [1., 0.], [4., 1.], [4., -1.]])
    >>> _ = stats.update(z[:3], np.array([0, 0, 1]))
    >>> _ = stats.update(z[3:], np.array([1]))
    >>> round(stats.metrics()["cdnv"], 6)
    0.0625
  """

  def __init__(self, num_classes: int, dim: int,
               per_class_second_moments: bool = True):
    for name, value in (("num_classes", num_classes), ("dim", dim)):
      if not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"`{name}` must be a positive int; got {value!r}.")
    self.num_classes = int(num_classes)
    self.dim = int(dim)
    self.counts = np.zeros((self.num_classes,), np.int64)
    self.sums = np.zeros((self.num_classes, self.dim), np.float64)
    self.sq_norms = np.zeros((self.num_classes,), np.float64)
    self.second_moment = np.zeros((self.dim, self.dim), np.float64)
    self.class_second_moments = (
        np.zeros((self.num_classes, self.dim, self.dim), np.float64)
        if per_class_second_moments else None)

  @property
  def per_class_second_moments(self) -> bool:
    return self.class_second_moments is not None

  @property
  def num_samples(self) -> int:
    return int(self.counts.sum())

  def update(self, features: ArrayLike, labels: ArrayLike
             ) -> "FeatureStatistics":
    """Adds a batch; returns ``self`` (mutated in place).

    Args:
      features: float[B, D] features (any float dtype, JAX or NumPy).
      labels: int[B] class ids in ``[0, num_classes)``.

    Returns:
      ``self``, for chaining.

    Raises:
      ValueError: on a wrong rank or width, non-float features, non-integer
        labels, a length mismatch or labels out of range.
    """
    features = np.asarray(features)
    labels = np.asarray(labels)
    _checks.check_rank(features, 2, "features", f"float[B, {self.dim}]")
    _checks.check_float(features, "features")
    if features.shape[1] != self.dim:
      raise ValueError(
          f"`features` must have {self.dim} columns (the `dim` this "
          f"accumulator was built with); got shape {features.shape}.")
    _checks.check_labels(labels, features.shape[0], "labels",
                         self.num_classes)
    if features.shape[0] == 0:
      return self
    z = features.astype(np.float64)
    labels = labels.astype(np.int64)
    # Sort once and reduce contiguous runs: O(B D) instead of a [B, C]
    # one-hot matmul, which matters for large C.
    order = np.argsort(labels, kind="stable")
    z, labels = z[order], labels[order]
    classes, starts = np.unique(labels, return_index=True)
    self.counts += np.bincount(labels, minlength=self.num_classes)
    self.sums[classes] += np.add.reduceat(z, starts, axis=0)
    self.sq_norms[classes] += np.add.reduceat(np.sum(z * z, axis=1), starts)
    self.second_moment += z.T @ z
    if self.class_second_moments is not None:
      ends = np.append(starts[1:], len(labels))
      for c, a, b in zip(classes, starts, ends):
        self.class_second_moments[c] += z[a:b].T @ z[a:b]
    return self

  def merge(self, other: "FeatureStatistics") -> "FeatureStatistics":
    """Adds another accumulator's statistics into this one (in place).

    Args:
      other: a ``FeatureStatistics`` with the same ``num_classes``, ``dim``
        and ``per_class_second_moments``.

    Returns:
      ``self``, for chaining.

    Raises:
      ValueError: if the two accumulators are incompatible.
    """
    if not isinstance(other, FeatureStatistics):
      raise ValueError(
          f"`other` must be a FeatureStatistics; got {type(other).__name__}.")
    mine = (self.num_classes, self.dim, self.per_class_second_moments)
    theirs = (other.num_classes, other.dim, other.per_class_second_moments)
    if mine != theirs:
      raise ValueError(
          "`other` must have the same (num_classes, dim, "
          f"per_class_second_moments); got {theirs}, expected {mine}. Build "
          "both accumulators with the same arguments.")
    self.counts += other.counts
    self.sums += other.sums
    self.sq_norms += other.sq_norms
    self.second_moment += other.second_moment
    if self.class_second_moments is not None:
      self.class_second_moments += other.class_second_moments
    return self

  def metrics(self, rcond: float = 1e-6, center: bool | str = True,
              weights: ArrayLike | None = None,
              eps: float = 1e-7) -> dict[str, Any]:
    """Computes the geometry metrics from the accumulated statistics.

    Each value equals (up to float32 round-off in the full-batch version)
    the function of the same name called on all features seen so far.

    Args:
      rcond: pseudo-inverse cut-off of ``nc1``.
      center: centring for ``equinorm``, ``equiangularity``, ``max_angle``,
        ``etf_distance`` and ``nc3_self_duality`` (see ``equinorm``).
      weights: optional float[C, D] classifier rows; adds
        ``"nc3_self_duality"``.
      eps: RankMe epsilon of ``effective_rank``.

    Returns:
      A dict with NumPy float64 arrays and Python floats: ``counts`` [C],
      ``class_means`` [C, D], ``nc1``, ``equinorm``, ``equiangularity``,
      ``max_angle``, ``etf_distance``, ``cdnv`` (Galanti convention),
      ``cdnv_directional_bounds``, ``directional_cdnv`` (only with per-class
      second moments), ``zero_sum``, ``unit_norm``, ``equal_inner_product``
      (an ``EqualInnerProduct`` of floats), ``class_mean_spectrum``
      [min(C, D)], ``singular_values`` [min(N, D)] of the centred features,
      ``effective_rank`` of the centred features, and ``nc3_self_duality``
      when ``weights`` is given.

    Raises:
      ValueError: if no sample was added yet, or on bad arguments.
    """
    n = self.num_samples
    if n == 0:
      raise ValueError("No samples accumulated; call `update` first.")
    _checks.check_positive(rcond, "rcond", allow_zero=True)
    _checks.check_positive(eps, "eps", allow_zero=True)
    center = _normalize_center(center)
    counts = self.counts.astype(np.float64)
    present = self.counts > 0
    means = self.sums / np.maximum(counts, 1.0)[:, None]
    # Scatter sum_c n_c mu_c mu_c^T: between-class part of the second moment.
    class_scatter = (means.T * counts) @ means
    out: dict[str, Any] = {"counts": self.counts.copy(), "class_means": means}

    m_global = _center_means(means, counts, present, "global", np)
    _, s, vt = np.linalg.svd(m_global, full_matrices=False)
    sigma_w = (self.second_moment - class_scatter) / n
    quad = np.einsum("kd,de,ke->k", vt, sigma_w, vt)
    out["nc1"] = float(_nc1_from(s, quad, rcond, np))

    mc = _center_means(means, counts, present, center, np)
    out["equinorm"] = float(_equinorm_from(mc, present, np))
    out["equiangularity"] = float(_equiangularity_from(mc, present, np))
    out["max_angle"] = float(_simplex_deviation_from(mc, present, np)[0])
    out["etf_distance"] = float(_etf_distance_from(mc, present, np))
    if weights is not None:
      w = np.asarray(weights)
      _checks.check_rank(w, 2, "weights", "float[C, D]")
      _checks.check_float(w, "weights")
      if w.shape != (self.num_classes, self.dim):
        raise ValueError(
            f"`weights` must have shape {(self.num_classes, self.dim)}; got "
            f"{w.shape}.")
      out["nc3_self_duality"] = float(
          _self_duality_from(w.astype(np.float64), mc, present, np))

    var_sums = np.maximum(
        self.sq_norms - counts * np.sum(means * means, axis=1), 0.0)
    d2 = _np_pairwise_sq_dists(means)
    out["cdnv"] = float(_cdnv_from(var_sums, counts, present, d2, "galanti",
                                   np))
    out["cdnv_directional_bounds"] = float(
        _cdnv_from(var_sums, counts, present, d2, "directional_bounds", np))
    if self.class_second_moments is not None:
      q = np.zeros((self.num_classes, self.num_classes))
      for i in np.flatnonzero(present):
        scatter_i = (self.class_second_moments[i]
                     - counts[i] * np.outer(means[i], means[i]))
        delta = means - means[i]
        q[i] = np.einsum("jd,de,je->j", delta, scatter_i, delta)
      out["directional_cdnv"] = float(
          _directional_cdnv_from(q, counts, present, d2, np))

    zs, un = _p3_raw_from(means, present, np)
    out["zero_sum"], out["unit_norm"] = float(zs), float(un)
    raw = np.where(present[:, None], means, 0.0)
    out["equal_inner_product"] = EqualInnerProduct(
        *map(float, _simplex_deviation_from(raw, present, np)))
    out["class_mean_spectrum"] = _class_mean_spectrum_from(means, present, np)

    mu = self.sums.sum(axis=0) / n
    cov = self.second_moment - n * np.outer(mu, mu)
    eig = np.linalg.eigvalsh((cov + cov.T) / 2)[::-1]
    sv = np.sqrt(np.maximum(eig, 0.0))[:min(n, self.dim)]
    out["singular_values"] = sv
    out["effective_rank"] = float(_effective_rank_from(sv, eps, np))
    return out
