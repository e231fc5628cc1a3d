"""Neural collapse of the features: NC1 and NC2 (Papyan et al., PNAS 2020).

Class counts and means, within-class variability collapse (NC1), the simplex
geometry of the centred means (NC2: equinorm, equiangularity, max-angle,
ETF distance); the orthogonal-frame distance of Kini et al. (ICLR 2024) and
the Gram matrix of the normalised means that both distances compare. The
classifier's collapse (NC3, NC4) is ``cljax.geometry.classifier``; the
decorators here also build P3's metrics of the raw means (``jiang``,
``spectrum``). Conventions (masking, centring, NaN) are in
``cljax.geometry``.
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike
import numpy as np

from cljax._src import checks
from cljax._src import class_stats as cs
from cljax._src import docs
from cljax.geometry import _dispatch as dp
from cljax.geometry import _formulas as fm


def _class_counts_local(labels, *, axis_name, num_classes):
  return cs.psum(jax.ops.segment_sum(jnp.ones(labels.shape, jnp.int32),
                                     labels, num_segments=num_classes),
                 axis_name)


def class_counts(labels: ArrayLike, *, num_classes: int | None = None,
                 axis_name: Any = None) -> jax.Array:
  """Number of samples per class.

  Args:
    labels: int[N] class ids in ``[0, num_classes)``; out of range: a
      ValueError when concrete, an all-NaN result when traced.
    num_classes: number of classes C; ``None`` infers ``max(labels) + 1``
      from concrete labels (required, as a static int, under ``jit``).
    axis_name: mapped axis when called per device inside ``jax.shard_map`` or
      ``jax.pmap``; the counts are then those of the global batch.

  Returns:
    int32[C] counts; classes without samples have count 0. Every count is
    -1 when traced labels lie outside ``[0, num_classes)``.

  Raises:
    ValueError: if ``labels`` is not an integer vector, or (concrete labels)
      lies outside ``[0, num_classes)``.

  References:
    Papyan, Han & Donoho, PNAS 2020 (n_c of the class means).

  Examples:
    >>> class_counts(jnp.array([0, 2, 2]), num_classes=4).tolist()
    [1, 0, 2, 0]
  """
  labels = dp.as_array(labels)
  checks.check_rank(labels, 1, "labels", "int[N]")
  checks.check_labels(labels, np.shape(labels)[0], "labels")
  c = checks.infer_num_classes(labels, num_classes)
  checks.check_labels(labels, np.shape(labels)[0], "labels", c)
  labels = jnp.asarray(labels).astype(jnp.int32)
  return dp.run(_class_counts_local, (labels,), axis_name=axis_name,
                num_classes=c)


def _class_means_local(z, labels, *, axis_name, num_classes):
  return dp.stats(z, labels, num_classes, axis_name)[1]


@docs.fill_geometry
def class_means(features: ArrayLike, labels: ArrayLike, *,
                num_classes: int | None = None,
                axis_name: Any = None) -> jax.Array:
  """Per-class mean features ``mu_c = (1/n_c) sum_{i: y_i = c} z_i``.

  Args:
    features: float[N, D] features (float32 or bfloat16).
    labels: int[N] class ids in ``[0, num_classes)``; out of range: a
      ValueError when concrete, an all-NaN result when traced.
    num_classes: number of classes C; ``None`` infers ``max(labels) + 1``
      from concrete labels (required, as a static int, under ``jit``).
    {axis_name_arg}

  Returns:
    float32[C, D] class means; the row of a class without samples is 0.

  Raises:
    ValueError: on a wrong rank, non-float features, non-integer labels, a
      length mismatch, or (concrete labels) labels out of range.

  References:
    Papyan, Han & Donoho, PNAS 2020, Eq. (1) (class means).

  Examples:
    >>> z = jnp.array([[0., 0.], [2., 0.], [5., 5.]])
    >>> class_means(z, jnp.array([0, 0, 1])).tolist()
    [[1.0, 0.0], [5.0, 5.0]]
  """
  z, labels, c = dp.prepare(features, labels, num_classes, axis_name)
  return dp.run(_class_means_local, (z, labels), axis_name=axis_name,
                num_classes=c)


def _nc1_local(z, labels, rcond, *, axis_name, num_classes):
  counts, means, present = dp.stats(z, labels, num_classes, axis_name)
  r = z - means[labels]
  # Sigma_W as a D x D psum: O(D^2) memory per device whatever N and C.
  scatter = cs.psum(fm.matmul(r.T, r, jnp), axis_name)
  sigma_w = scatter / jnp.sum(counts)
  return fm.nc1_from(means, counts, present, sigma_w, rcond, jnp)


@docs.fill_geometry
def nc1(features: ArrayLike, labels: ArrayLike, *,
        num_classes: int | None = None, rcond: float = 1e-6,
        axis_name: Any = None) -> jax.Array:
  r"""Within-class variability collapse NC1 = tr(Sigma_W Sigma_B^+) / C.

  ``Sigma_W = 1/N sum_i (z_i - mu_{y_i})(z_i - mu_{y_i})^T`` and
  ``Sigma_B = 1/C sum_c (mu_c - mu_G)(mu_c - mu_G)^T`` with ``mu_G`` the
  global mean of all samples and C the number of non-empty classes. The
  pseudo-inverse zeroes singular values below ``rcond * sigma_max``
  (``Sigma_B`` has rank at most C - 1).

  It takes the thin SVD of the [C, D] centred-mean matrix M
  (``Sigma_B = M^T M / C``) and evaluates ``NC1 = sum_k w_k^T Sigma_W w_k /
  s_k^2`` over its right singular vectors; ``Sigma_W`` is a D x D sum, so
  sharded or per-device evaluation only reduces [C, D] and [D, D] arrays.

  Args:
    features: float[N, D] features.
    labels: int[N] class ids in ``[0, num_classes)``; out of range: a
      ValueError when concrete, NaN when traced.
    num_classes: number of classes (static under ``jit``); empty classes are
      masked.
    rcond: relative cut-off for the pseudo-inverse, on the singular values of
      ``Sigma_B`` (i.e. on ``s_k^2``).
    {axis_name_arg}

  Returns:
    float32 scalar; 0 at exact within-class collapse. NaN (undefined, since
    ``Sigma_B = 0``) with fewer than two non-empty classes or when all class
    means coincide, and NaN for NaN/Inf features.

  Raises:
    ValueError: on malformed ``features``/``labels`` or ``rcond < 0``.

  References:
    Papyan, Han & Donoho, PNAS 2020, NC1; ``docs/conventions.md#nc1``.

  Examples:
    >>> z = jnp.array([[-1., 0.], [1., 0.], [4., 1.], [4., -1.]])
    >>> round(float(nc1(z, jnp.array([0, 0, 1, 1]))), 4)  # (1/2)(1/4)/2
    0.0625
  """
  z, labels, c = dp.prepare(features, labels, num_classes, axis_name)
  checks.check_positive(rcond, "rcond", allow_zero=True)
  return dp.run(_nc1_local, (z, labels), (rcond,), axis_name=axis_name,
                num_classes=c)


def _means_metric_local(z, labels, *, axis_name, num_classes, center, metric):
  counts, means, present = dp.stats(z, labels, num_classes, axis_name)
  mc = fm.center_means(means, counts, present, center, jnp)
  if metric == "equinorm":
    return fm.equinorm_from(mc, present, jnp)
  if metric == "equiangularity":
    return fm.equiangularity_from(mc, present, jnp)
  if metric == "max_angle":
    return fm.simplex_deviation_from(mc, present, jnp)[0]
  if metric == "etf_distance":
    return fm.etf_distance_from(mc, present, jnp)
  if metric == "orthogonal_frame_distance":
    return fm.orthogonal_frame_distance_from(mc, present, jnp)
  if metric == "class_mean_gram":
    return fm.cosines(mc, jnp)
  if metric == "simplex_deviation":
    return fm.simplex_deviation_from(mc, present, jnp)
  if metric == "p3_raw":
    return fm.p3_raw_from(means, present, jnp)
  if metric == "class_mean_spectrum":
    return fm.class_mean_spectrum_from(means, present, jnp)
  raise AssertionError(metric)


def means_metric(features, labels, num_classes, center, metric, axis_name):
  """A metric of the class means only (shared with jiang and spectrum)."""
  z, labels, c = dp.prepare(features, labels, num_classes, axis_name)
  return dp.run(_means_metric_local, (z, labels), axis_name=axis_name,
                num_classes=c, center=dp.normalize_center(center),
                metric=metric)


def _as_metric(stub: Callable[..., Any], fn: Callable[..., Any]):
  # The metric takes the stub's name, docstring and return annotation; the
  # stub's own (empty) signature is not the metric's.
  fn.__name__ = fn.__qualname__ = stub.__name__
  fn.__doc__ = stub.__doc__
  fn.__annotations__["return"] = stub.__annotations__.get("return", Any)
  return docs.fill_geometry(fn)


def _centred_means_metric(stub: Callable[[], Any]) -> Callable[..., Any]:
  """Decorator: the public NC2 metric named and documented by ``stub``.

  The four NC2 metrics share their signature, arguments and checks and differ
  only in the formula ``_means_metric_local`` picks by name, so each is
  written as a stub holding only its docstring.
  """
  def fn(features: ArrayLike, labels: ArrayLike, *,
         num_classes: int | None = None, center: bool | str = True,
         axis_name: Any = None):
    return means_metric(features, labels, num_classes, center, stub.__name__,
                        axis_name)
  return _as_metric(stub, fn)


def raw_means_metric(metric: str,
                     finish: Callable[[Any], Any] | None = None):
  """Decorator: a public metric of the raw (uncentred) class means.

  Like ``_centred_means_metric`` for P3's metrics (``cljax.geometry.jiang``,
  ``spectrum``), which take no ``center``: the stub documents it, ``metric``
  names the formula of ``_means_metric_local`` and ``finish`` maps its output
  to the returned value.

  Args:
    metric: a formula name of ``_means_metric_local``.
    finish: applied to the formula's output (``None``: returned as is).

  Returns:
    The decorator.
  """
  def decorate(stub: Callable[[], Any]) -> Callable[..., Any]:
    def fn(features: ArrayLike, labels: ArrayLike, *,
           num_classes: int | None = None, axis_name: Any = None):
      out = means_metric(features, labels, num_classes, False, metric,
                         axis_name)
      return out if finish is None else finish(out)
    return _as_metric(stub, fn)
  return decorate


@_centred_means_metric
def equinorm() -> jax.Array:
  """Equinorm: std_c ||mu_c - mu_G|| / mean_c ||mu_c - mu_G|| (NC2).

  The standard deviation is the population one (divisor C), over non-empty
  classes.

  Args:
    {data_args}
    {center_arg}
    {axis_name_arg}

  Returns:
    float32 scalar, 0 when all centred means have equal norms.

  Raises:
    {center_raises}

  References:
    Papyan, Han & Donoho, PNAS 2020, NC2 (equinorm);
    ``docs/conventions.md#equinorm``.

  Examples:
    >>> z = jnp.array([[1., 0.], [-1., 0.], [0., 3.], [0., -3.]])
    >>> float(equinorm(z, jnp.array([0, 1, 2, 3]), center=False))
    0.5
  """


@_centred_means_metric
def equiangularity() -> jax.Array:
  """Std over ordered pairs c != c' of cos(mu_c - mu_G, mu_c' - mu_G) (NC2).

  Args:
    {data_args}
    {center_arg}
    {axis_name_arg}

  Returns:
    float32 scalar (population std), 0 when all pairwise angles are equal.

  Raises:
    {center_raises}

  References:
    Papyan, Han & Donoho, PNAS 2020, NC2 (equiangularity).

  Examples:
    >>> z = jnp.array([[1., 0.], [-1., 0.], [0., 1.]])  # angles 180, 90, 90
    >>> round(float(equiangularity(z, jnp.array([0, 1, 2]), center=False)), 4)
    0.4714
  """


@_centred_means_metric
def max_angle() -> jax.Array:
  """Mean over ordered pairs c != c' of |cos(mu_c, mu_c') + 1/(C-1)|.

  The deviation of the pairwise cosines from the simplex value -1/(C-1)
  (C = number of non-empty classes). With ``center=False`` this is P3's
  equal-inner-product metric (``equal_inner_product(...).mean``).

  Args:
    {data_args}
    {center_arg}
    {axis_name_arg}

  Returns:
    float32 scalar, 0 at a simplex ETF.

  Raises:
    {center_raises}

  References:
    Papyan, Han & Donoho, PNAS 2020, NC2 (max-angle);
    ``docs/conventions.md#max-angle``.

  Examples:
    >>> z = jnp.array([[1., 0.], [0., 1.]])  # cos 0 vs the target -1
    >>> float(max_angle(z, jnp.array([0, 1]), center=False))
    1.0
  """


@_centred_means_metric
def etf_distance() -> jax.Array:
  """Frobenius distance of the normalised mean Gram matrix to the simplex ETF.

  ``|| G/||G||_F - (I - 11^T/C)/sqrt(C-1) ||_F`` with ``G_cc' =
  <u_c, u_c'>`` over the unit-normalised (centred) class means ``u_c`` of the
  C non-empty classes.

  Args:
    {data_args}
    {center_arg}
    {axis_name_arg}

  Returns:
    float32 scalar in [0, 2]; 0 exactly at a simplex ETF.

  Raises:
    {center_raises}

  References:
    ``docs/conventions.md#etf-deviation``; Papyan et al. 2020, NC2.

  Examples:
    >>> z = jnp.array([[1., 0.], [-1., 0.]])  # two antipodal means: an ETF
    >>> float(etf_distance(z, jnp.array([0, 1])))
    0.0
  """


@raw_means_metric("orthogonal_frame_distance")
def orthogonal_frame_distance() -> jax.Array:
  """Distance of the normalised class-mean Gram matrix to an orthogonal frame.

  ``|| G/||G||_F - I/sqrt(C) ||_F`` with ``G_cc' = <u_c, u_c'>`` over the
  unit-normalised *raw* (uncentred) class means ``u_c`` of the C non-empty
  classes: ``etf_distance`` with the identity, the Gram matrix of mutually
  orthogonal means, as target instead of the simplex. Kini et al. show that
  supervised contrastive losses on non-negative (ReLU) features are minimised
  by an orthogonal frame: class means mutually orthogonal with equal norms,
  around the origin rather than the global mean (so nothing is centred).
  Like ``etf_distance`` it normalises every mean and measures the angles
  only; their equal norms are ``equinorm(..., center=False) == 0``.

  A simplex ETF is at ``sqrt(2 (1 - sqrt(1 - 1/C)))`` (0.765 for C = 2).

  Args:
    {data_args}
    {axis_name_arg}

  Returns:
    float32 scalar in [0, 2]; 0 exactly when the non-empty class means are
    non-zero and mutually orthogonal (a single class gives 0). NaN for
    NaN/Inf features.

  {malformed_raises}

  References:
    Kini, Vakilian, Behnia, Gill & Thrampoulidis, "Symmetric neural-collapse
    representations with supervised contrastive loss: the impact of ReLU and
    batching", ICLR 2024 (arXiv 2306.07960), orthogonal frame; the distance
    as the ETF deviation of ``docs/conventions.md#etf-deviation``.

  Examples:
    >>> z = jnp.array([[2., 0.], [0., 1.]])  # orthogonal means
    >>> float(orthogonal_frame_distance(z, jnp.array([0, 1])))
    0.0
  """


def class_mean_gram(features: ArrayLike, labels: ArrayLike, *,
                    num_classes: int | None = None,
                    center: bool | str = False,
                    axis_name: Any = None) -> jax.Array:
  """Cosines between class means: the Gram matrix of the normalised means.

  ``G_cc' = <u_c, u_c'>`` with ``u_c = m_c / ||m_c||`` and ``m_c`` the class
  mean, raw by default. It is the matrix ``etf_distance`` and
  ``orthogonal_frame_distance`` compare with their targets: plot it beside
  the identity (orthogonal frame, raw means) and the simplex
  ``(C I - 11^T)/(C - 1)`` (ETF).

  Args:
    features: float[N, D] features.
    labels: int[N] class ids in ``[0, num_classes)``; out of range: a
      ValueError when concrete, an all-NaN result when traced.
    num_classes: number of classes C (static under ``jit``).
    center: ``False``/``"none"`` (default: raw means, the orthogonal frame's
      view), ``True``/``"global"`` or ``"classes"`` (see ``equinorm``).
    axis_name: mapped axis (per-device call); see ``cljax.geometry``.

  Returns:
    float32[C, C], symmetric, unit diagonal on non-empty classes; the row
    and column of an empty class (or of a zero mean) are 0.

  Raises:
    ValueError: on malformed inputs or an unknown ``center``.

  References:
    Papyan, Han & Donoho, PNAS 2020 (NC2); Kini et al., ICLR 2024
    (orthogonal frame).

  Examples:
    >>> z = jnp.array([[1., 0.], [0., 3.], [-2., 0.]])
    >>> class_mean_gram(z, jnp.array([0, 1, 2])).tolist()
    [[1.0, 0.0, -1.0], [0.0, 1.0, 0.0], [-1.0, 0.0, 1.0]]
  """
  return means_metric(features, labels, num_classes, center,
                      "class_mean_gram", axis_name)
