"""Streaming class statistics: one accumulator, on device or on the host.

``init`` / ``update`` / ``merge`` / ``finalize`` is a pure accumulator of the
sufficient statistics of the geometry metrics (a ``Statistics`` pytree that
can be a ``jax.jit`` / ``lax.scan`` carry or live per device inside
``jax.shard_map`` / ``jax.pmap`` with ``axis_name``). It accumulates in
float64 when ``jax_enable_x64`` is on, and otherwise in float32 with two
levels against round-off: each batch is reduced relative to a shift (the
first batch's global mean, which removes the large common offset that
makes one-pass variances cancel) and added to the running totals with
Kahan-compensated summation.

``host.FeatureStatistics`` is the float64 NumPy version on the host, kept
as the test reference; both call the same ``metrics_from_moments``.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike
import numpy as np

from cljax._src import checks
from cljax._src import class_stats as cs
from cljax.geometry import _dispatch as dp
from cljax.geometry import _formulas as fm
from cljax.geometry import jiang


def metrics_from_moments(counts, sums, sq_norms, second_moment, shift, xp, *,
                         rcond=1e-6, center="global", weights=None, eps=1e-7,
                         class_second_moments=None, num_samples=None):
  """The geometry metrics from moments of ``z - shift``.

  Args:
    counts: [C] per-class counts.
    sums: [C, D] per-class sums of ``z - shift``.
    sq_norms: [C] per-class sums of ``||z - shift||^2``.
    second_moment: [D, D] ``sum (z - shift)(z - shift)^T``.
    shift: [D] the reference point (0 for unshifted moments).
    xp: ``np`` (float64) or ``jnp``.
    rcond, center, weights, eps: as for the metrics of the same names.
    class_second_moments: optional [C, D, D] per-class ``sum (z-s)(z-s)^T``.
    num_samples: static total N (bounds the number of singular values).

  Returns:
    dict of metrics (see ``FeatureStatistics.metrics``).
  """
  n = xp.sum(counts)
  present = counts > 0
  ms = sums / xp.maximum(counts, 1.0)[:, None]   # shifted frame
  means = xp.where(present[:, None], ms + shift, 0.0)
  out = {"class_means": means}
  # Translation-invariant quantities in the shifted frame: no cancellation
  # against the common offset.
  class_scatter = fm.matmul(ms.T * counts, ms, xp)
  sigma_w = (second_moment - class_scatter) / n
  out["nc1"] = fm.nc1_from(ms, counts, present, sigma_w, rcond, xp)
  mc = fm.center_means(means if center == "none" else ms, counts, present,
                       center, xp)
  out["equinorm"] = fm.equinorm_from(mc, present, xp)
  out["equiangularity"] = fm.equiangularity_from(mc, present, xp)
  out["max_angle"] = fm.simplex_deviation_from(mc, present, xp)[0]
  out["etf_distance"] = fm.etf_distance_from(mc, present, xp)
  if weights is not None:
    out["nc3_self_duality"] = fm.self_duality_from(weights, mc, present, xp)
  var_sums = xp.maximum(sq_norms - counts * xp.sum(ms * ms, axis=1), 0.0)
  out["cdnv"] = fm.cdnv_from(var_sums, counts, present, ms, "galanti", xp)
  out["cdnv_directional_bounds"] = fm.cdnv_from(
      var_sums, counts, present, ms, "directional_bounds", xp)
  if class_second_moments is not None:
    # Class by class: [C, C, D] and [C, D, D] temporaries would not fit.
    q = xp.stack([
        xp.einsum("jd,de,je->j", ms - ms[i], class_second_moments[i]
                  - counts[i] * xp.outer(ms[i], ms[i]), ms - ms[i])
        for i in range(len(counts))])
    out["directional_cdnv"] = fm.directional_cdnv_from(
        q, var_sums, counts, present, ms, xp)
  zs, un = fm.p3_raw_from(means, present, xp)
  out["zero_sum"], out["unit_norm"] = zs, un
  raw = xp.where(present[:, None], means, 0.0)
  out["equal_inner_product"] = jiang.EqualInnerProduct(
      *fm.simplex_deviation_from(raw, present, xp))
  out["class_mean_spectrum"] = fm.class_mean_spectrum_from(means, present, xp)
  mu = xp.sum(sums, axis=0) / n
  cov = second_moment - n * xp.outer(mu, mu)
  rows = second_moment.shape[0] if num_samples is None else num_samples
  sv = fm.singular_values_from_cov(cov, rows, xp)
  out["singular_values"] = sv
  out["effective_rank"] = fm.effective_rank_from(sv, eps, xp)
  return out


# ----------------------------------------------------------------------------
# On device: a pure accumulator.
# ----------------------------------------------------------------------------


class Statistics(NamedTuple):
  """Sufficient statistics of the geometry metrics (a pytree).

  Every ``*_c`` field is the Kahan compensation of the field before it.

  Attributes:
    counts: float[C] samples per class.
    sums, sums_c: float[C, D] per-class sums of ``z - shift``.
    sq_norms, sq_norms_c: float[C] per-class sums of ``||z - shift||^2``.
    second_moment, second_moment_c: float[D, D] ``sum (z-s)(z-s)^T``.
    shift: float[D] reference point, set by the first non-empty update.
  """
  counts: Any
  sums: Any
  sums_c: Any
  sq_norms: Any
  sq_norms_c: Any
  second_moment: Any
  second_moment_c: Any
  shift: Any


def _acc_dtype():
  return jnp.float64 if jax.config.jax_enable_x64 else jnp.float32


def init(num_classes: int, dim: int) -> Statistics:
  """An empty accumulator for C classes of D-dimensional features.

  Args:
    num_classes: number of classes C (a positive Python int).
    dim: feature dimension D (a positive Python int).

  Returns:
    A ``Statistics`` of zeros (float64 with ``jax_enable_x64``, else
    float32).

  Raises:
    ValueError: if ``num_classes`` or ``dim`` is not a positive int.

  Examples:
    >>> init(3, 2).sums.shape
    (3, 2)
  """
  for name, value in (("num_classes", num_classes), ("dim", dim)):
    if not isinstance(value, (int, np.integer)) or value < 1:
      raise ValueError(f"`{name}` must be a positive int; got {value!r}.")
  dt = _acc_dtype()
  c, d = int(num_classes), int(dim)
  zeros = lambda *shape: jnp.zeros(shape, dt)  # noqa: E731
  return Statistics(zeros(c), zeros(c, d), zeros(c, d), zeros(c), zeros(c),
                    zeros(d, d), zeros(d, d), zeros(d))


def _kahan(total, comp, value):
  """Adds ``value`` to ``total`` carrying the lost low bits in ``comp``."""
  y = value - comp
  t = total + y
  return t, (t - total) - y


def _rebase(stats: Statistics, shift) -> Statistics:
  """The same statistics relative to a new ``shift`` (exact algebra)."""
  delta = stats.shift - shift  # z - new = (z - old) + delta
  n = stats.counts
  sums = stats.sums + stats.sums_c  # compensations fold in once, here only
  sq = (stats.sq_norms + stats.sq_norms_c + 2.0 * (sums @ delta)
        + n * jnp.sum(delta * delta))
  tot = jnp.sum(sums, axis=0)
  second = (stats.second_moment + stats.second_moment_c
            + jnp.outer(tot, delta) + jnp.outer(delta, tot)
            + jnp.sum(n) * jnp.outer(delta, delta))
  new_sums = sums + n[:, None] * delta
  zero = jnp.zeros_like
  return Statistics(n, new_sums, zero(new_sums), sq, zero(sq), second,
                    zero(second), jnp.broadcast_to(shift, stats.shift.shape))


def update(stats: Statistics, features: ArrayLike, labels: ArrayLike, *,
           axis_name: Any = None) -> Statistics:
  """Adds a batch (pure: returns new statistics; jit- and scan-friendly).

  Args:
    stats: the accumulator so far.
    features: float[B, D] batch (any float dtype).
    labels: int[B] class ids in ``[0, C)``. Out-of-range ids raise when
      concrete; traced (under ``jit`` or per device) they make every field
      of the returned statistics NaN, hence every metric of ``finalize``.
    axis_name: mapped axis when called per device on a shard of the batch;
      the batch statistics are psum'd, so every device holds the global
      accumulator.

  Returns:
    The updated ``Statistics``.

  Raises:
    ValueError: on a wrong rank or width, or bad labels.

  Examples:
    >>> s = update(init(2, 2), jnp.array([[0., 0.], [2., 0.]]),
    ...            jnp.array([0, 1]))
    >>> s.counts.tolist()
    [1.0, 1.0]
  """
  c, d = stats.sums.shape
  z = dp.prepare_features(features, axis_name, min_rows=0,
                          layout=f"float[B, {d}]")
  if z.shape[1] != d:
    raise ValueError(
        f"`features` must have {d} columns (the `dim` of the accumulator); "
        f"got shape {tuple(z.shape)}.")
  labels = dp.as_array(labels)
  checks.check_labels(labels, z.shape[0], "labels", c)
  labels = jnp.asarray(labels).astype(jnp.int32)
  if axis_name is not None:
    cs.check_axis_name(axis_name)
  dt = stats.sums.dtype
  z = z.astype(dt)
  count = cs.psum(jnp.asarray(z.shape[0], dt), axis_name)
  batch_mean = cs.psum(jnp.sum(z, axis=0), axis_name) / jnp.maximum(count, 1)
  first = (jnp.sum(stats.counts) == 0) & (count > 0)
  stats = jax.tree.map(lambda a, b: jnp.where(first, a, b),
                       _rebase(stats, batch_mean), stats)
  x = z - stats.shift
  batch = cs.class_stats(x, labels, c, axis_name=axis_name)
  sq = cs.psum(jax.ops.segment_sum(jnp.sum(x * x, axis=-1), labels,
                                   num_segments=c), axis_name)
  second = cs.psum(fm.matmul(x.T, x, jnp), axis_name)
  sums, sums_c = _kahan(stats.sums, stats.sums_c, batch.sums)
  sqn, sqn_c = _kahan(stats.sq_norms, stats.sq_norms_c, sq)
  mom, mom_c = _kahan(stats.second_moment, stats.second_moment_c, second)
  new = Statistics(stats.counts + batch.counts, sums, sums_c, sqn, sqn_c,
                   mom, mom_c, stats.shift)
  # A bad batch poisons the accumulator for good: every later metric is NaN.
  return checks.nan_if_labels_out_of_range(new, labels, num_classes=c,
                                            axis_name=axis_name)


def merge(a: Statistics, b: Statistics) -> Statistics:
  """Sums two accumulators (e.g. from different hosts or eval shards).

  Args:
    a, b: ``Statistics`` of the same C and D (any shifts).

  Returns:
    The statistics of both sets of samples.

  Examples:
    >>> x = jnp.array([[0., 0.], [2., 0.]])
    >>> s = merge(update(init(1, 2), x, jnp.array([0, 0])),
    ...           update(init(1, 2), x + 2, jnp.array([0, 0])))
    >>> s.counts.tolist(), finalize(s)["class_means"].tolist()
    ([4.0], [[2.0, 1.0]])
  """
  if a.sums.shape != b.sums.shape:
    raise ValueError(
        f"`b` must have the same (num_classes, dim) as `a`: got "
        f"{b.sums.shape}, expected {a.sums.shape}.")
  a_empty = jnp.sum(a.counts) == 0
  shift = jnp.where(a_empty, b.shift, a.shift)
  a, b = _rebase(a, shift), _rebase(b, shift)
  return Statistics(a.counts + b.counts, a.sums + b.sums,
                    jnp.zeros_like(a.sums), a.sq_norms + b.sq_norms,
                    jnp.zeros_like(a.sq_norms),
                    a.second_moment + b.second_moment,
                    jnp.zeros_like(a.second_moment), shift)


def finalize(stats: Statistics, *, rcond: float = 1e-6,
             center: bool | str = True, weights: ArrayLike | None = None,
             eps: float = 1e-7) -> dict[str, Any]:
  """The geometry metrics of everything accumulated (jit-friendly).

  Args:
    stats: the accumulator.
    rcond: pseudo-inverse cut-off of ``nc1``.
    center: centring of the NC2/NC3 metrics (see ``equinorm``). Static.
    weights: optional float[C, D] classifier rows; adds
      ``"nc3_self_duality"``.
    eps: RankMe epsilon of ``effective_rank``.

  Returns:
    dict of JAX scalars/arrays with the keys of
    ``FeatureStatistics.metrics`` except ``"directional_cdnv"`` (which needs
    per-class second moments, C D^2 numbers) and with ``counts``.

  Examples:
    >>> z = jnp.array([[-1., 0.], [1., 0.], [4., 1.], [4., -1.]])
    >>> s = update(init(2, 2), z, jnp.array([0, 0, 1, 1]))
    >>> float(finalize(s)["cdnv"])
    0.0625
  """
  center = dp.normalize_center(center)
  r = _rebase(stats, stats.shift)  # folds the compensations in
  w = None if weights is None else jnp.asarray(weights, r.sums.dtype)
  out = metrics_from_moments(r.counts, r.sums, r.sq_norms, r.second_moment,
                             r.shift, jnp, rcond=rcond, center=center,
                             weights=w, eps=eps)
  out["counts"] = r.counts
  return out
