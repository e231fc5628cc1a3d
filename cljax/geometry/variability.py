"""Class-distance normalised variance: CDNV, directional CDNV, augmentations.

Galanti et al.'s CDNV, the directional CDNV of Luthra, Yang & Galanti (P1)
and the spread of a sample's augmented views normalised like a CDNV.
Coincident class means: pairs whose squared distance is round-off of the
features' scale (``128 eps`` relative in float32) are skipped, so the
result does not depend on how XLA fused the mean computation.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from cljax._src import checks
from cljax._src import class_stats as cs
from cljax._src import docs
from cljax.geometry import _dispatch as dp
from cljax.geometry import _formulas as fm

_CDNV_CONVENTIONS = ("galanti", "directional_bounds")


def _cdnv_local(z, labels, *, axis_name, num_classes, convention):
  counts, means, present = dp.stats(z, labels, num_classes, axis_name)
  var_sums = dp.residual_sums(z - means[labels], labels, num_classes,
                              axis_name)
  return fm.cdnv_from(var_sums, counts, present, means, convention, jnp)


@docs.fill_geometry
def cdnv(features: ArrayLike, labels: ArrayLike, *,
         num_classes: int | None = None, convention: str = "galanti",
         axis_name: Any = None) -> jax.Array:
  r"""Class-distance normalised variance, averaged over unordered pairs.

  ``convention="galanti"`` (default; Galanti et al. 2022, the definition P1's
  code logs): ``V(i, j) = (Var_i + Var_j) / (2 ||mu_i - mu_j||^2)`` with the
  population variance ``Var_c = 1/n_c sum_{x in c} ||z_x - mu_c||^2``.

  ``convention="directional_bounds"`` (the 2026 follow-up
  ``directional_cdnv_bounds``): ``V(i, j) = (v_i + v_j) / ||mu_i - mu_j||^2``
  with the unbiased ``v_c = 1/(n_c - 1) sum ||z_x - mu_c||^2``; classes with a
  single sample have no unbiased variance and their pairs are skipped.

  Pairs whose means coincide (up to float32 round-off of the features'
  scale) are skipped, and the mean is taken over the remaining valid pairs.
  No epsilon is added to the denominator. Returns NaN when no pair is valid
  (one class, or constant features) and for NaN/Inf features.

  Args:
    {data_args}
    convention: ``"galanti"`` or ``"directional_bounds"`` (static).
    {axis_name_arg}

  Returns:
    float32 scalar; 0 at within-class collapse.

  Raises:
    ValueError: on malformed inputs or an unknown ``convention``.

  References:
    Galanti, Gyorgy & Hutter, ICLR 2022, Def. 1; Luthra, Yang & Galanti,
    NeurIPS 2025; ``docs/conventions.md#cdnv``.

  Examples:
    >>> z = jnp.array([[-1., 0.], [1., 0.], [4., 1.], [4., -1.]])
    >>> float(cdnv(z, jnp.array([0, 0, 1, 1])))  # (1 + 1) / (2 * 16)
    0.0625
  """
  checks.check_choice(convention, "convention", _CDNV_CONVENTIONS)
  z, labels, c = dp.prepare(features, labels, num_classes, axis_name)
  return dp.run(_cdnv_local, (z, labels), axis_name=axis_name,
                num_classes=c, convention=convention)


def _directional_cdnv_local(z, labels, *, axis_name, num_classes):
  counts, means, present = dp.stats(z, labels, num_classes, axis_name)
  r = z - means[labels]
  # <r_x, mu_j - mu_i> = <r_x, mu_j> - <r_x, mu_i>: one [N, C] matmul instead
  # of an [N, C, D] tensor. Centring the means first keeps the two terms small.
  mc = fm.center_means(means, counts, present, "classes", jnp)
  p = fm.matmul(r, mc.T, jnp)
  p = p - jnp.take_along_axis(p, labels[:, None], axis=1)
  q = cs.psum(jax.ops.segment_sum(p * p, labels, num_segments=num_classes),
              axis_name)
  var_sums = dp.residual_sums(r, labels, num_classes, axis_name)
  return fm.directional_cdnv_from(q, var_sums, counts, present, means, jnp)


@docs.fill_geometry
def directional_cdnv(features: ArrayLike, labels: ArrayLike, *,
                     num_classes: int | None = None,
                     axis_name: Any = None) -> jax.Array:
  r"""Directional CDNV of P1, averaged over ordered pairs of classes.

  For an ordered pair (i, j) with ``u_ij = (mu_j - mu_i)/||mu_j - mu_i||``:
  ``V~(i, j) = E_{x in i} <z_x - mu_i, u_ij>^2 / ||mu_i - mu_j||^2`` (the
  expectation with the population 1/n_i). Only the variance of class i along
  the direction to class j counts. Pairs with coincident means (up to
  round-off) are skipped and the divisor is the number of valid ordered pairs
  (one of P1's two implementations counts skipped pairs; this one does not).
  Per device it holds an [N/devices, C] projection.

  Args:
    {data_args}
    {axis_name_arg}

  Returns:
    float32 scalar; NaN when no pair is valid and for NaN/Inf features.

  {malformed_raises}

  References:
    Luthra, Yang & Galanti, NeurIPS 2025;
    ``docs/conventions.md#directional-cdnv``.

  Examples:
    >>> z = jnp.array([[-1., 0.], [1., 0.], [4., 1.], [4., -1.]])
    >>> float(directional_cdnv(z, jnp.array([0, 0, 1, 1])))  # (1/16 + 0)/2
    0.03125
  """
  z, labels, c = dp.prepare(features, labels, num_classes, axis_name)
  return dp.run(_directional_cdnv_local, (z, labels), axis_name=axis_name,
                num_classes=c)


def _augmentation_local(z, *labels, axis_name, num_classes):
  n = dp.global_count(z.shape[0], axis_name)
  zbar = jnp.mean(z, axis=1)
  spread = jnp.sum(jnp.mean(jnp.sum(jnp.square(z - zbar[:, None, :]),
                                    axis=-1), axis=1))
  view_var = cs.psum(spread, axis_name) / n
  out = {"view_variance": view_var}
  if labels:
    (y,) = labels
    counts, means, present = dp.stats(zbar, y, num_classes, axis_name)
    d2 = fm.pairwise_sq_dists(means, jnp)
    sq = (dp.residual_sums(zbar - means[y], y, num_classes, axis_name)
          / jnp.maximum(counts, 1.0) + jnp.sum(means * means, axis=-1))
    # Round-off distances of coincident means count as the 0 they are.
    d2 = jnp.where(fm.coincident(d2, sq, jnp), 0.0, d2)
    msd = fm.masked_mean(d2, fm.pair_mask(present, jnp, ordered=False), jnp)
    out["class_mean_sq_distance"] = msd
    out["augmentation_cdnv"] = fm.safe_div(view_var, msd, jnp)
  return out


@docs.fill_geometry
def augmentation_collapse(z: ArrayLike, labels: ArrayLike | None = None, *,
                          num_classes: int | None = None,
                          axis_name: Any = None) -> dict[str, jax.Array]:
  r"""Augmentation collapse: spread of the K views of each sample.

  ``view_variance = mean_i (1/K) sum_l ||z_il - zbar_i||^2`` with ``zbar_i``
  the mean of sample i's views. With labels, class means ``mu_c`` are the
  means of ``zbar_i`` over the class and the variance is normalised like a
  CDNV: ``augmentation_cdnv = view_variance / mean_{c < c'} ||mu_c -
  mu_c'||^2`` over unordered pairs of non-empty classes (coincident means
  included as distance 0; the ratio is NaN if every pair coincides, e.g.
  for constant features).

  Args:
    z: float[N, K, D] features of K views per sample.
    labels: optional int[N] class ids of the samples; out of range: a
      ValueError when concrete, every value of the dict NaN when traced.
    num_classes: number of classes (static under ``jit``).
    {axis_name_arg}

  Returns:
    A dict of float32 scalars: always ``"view_variance"``; with labels also
    ``"class_mean_sq_distance"`` and ``"augmentation_cdnv"``.

  Raises:
    ValueError: on a wrong rank, fewer than 2 views, or malformed labels.

  References:
    ``docs/conventions.md#augmentation-collapse`` (proposed metric; P1 has
    none).

  Examples:
    >>> z = jnp.array([[[0., 0.], [2., 0.]], [[5., 1.], [5., -1.]]])
    >>> float(augmentation_collapse(z)["view_variance"])
    1.0
  """
  if labels is None:
    x = dp.prepare_features(z, axis_name, "z", 3, "float[N, K, D]")
    c, batch = None, (x,)
  else:
    x, y, c = dp.prepare(z, labels, num_classes, axis_name, "z", 3,
                         "float[N, K, D]")
    batch = (x, y)
  if x.shape[1] < 2:
    raise ValueError(
        f"`z` must hold K >= 2 views per sample (layout float[N, K, D]); got "
        f"shape {tuple(x.shape)}.")
  return dp.run(_augmentation_local, batch, axis_name=axis_name,
                num_classes=c)
