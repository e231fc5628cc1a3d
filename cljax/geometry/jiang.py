"""Jiang, Nguyen, Aeron & Ishwar's (P3) simplex metrics of the raw means.

Zero-sum, unit-norm, equal-inner-product deviations of the uncentred class
means and the within-class distance; see ``docs/conventions.md#jiang-metrics``.
"""

from __future__ import annotations

import operator
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from cljax._src import class_stats as cs
from cljax._src import docs
from cljax.geometry import _dispatch as dp
from cljax.geometry import _formulas as fm
from cljax.geometry import collapse


class EqualInnerProduct(NamedTuple):
  """P3's equal-inner-product deviation over ordered pairs of class means.

  Attributes:
    mean: mean over ordered pairs ``c != c'`` of
      ``|cos(mu_c, mu_c') + 1/(C-1)|`` (the value P3 plots).
    max: the maximum of the same quantity.
  """
  mean: Any
  max: Any


@collapse.raw_means_metric("p3_raw", operator.itemgetter(0))
def zero_sum() -> jax.Array:
  """P3's zero-sum deviation ``||(1/C) sum_c mu_c||_2`` of the raw means.

  Args:
    features: float[N, D] features (P3: ball-projected head outputs).
    labels: int[N] class ids in ``[0, num_classes)``; out of range: a
      ValueError when concrete, NaN when traced.
    num_classes: number of classes (static under ``jit``).
    {axis_name_arg}

  Returns:
    float32 scalar, 0 for a simplex centred at the origin.

  {malformed_raises}

  References:
    Jiang et al., TMLR (P3); ``docs/conventions.md#zero-sum``.

  Examples:
    >>> z = jnp.array([[1., 0.], [-1., 2.]])
    >>> float(zero_sum(z, jnp.array([0, 1])))  # ||(0, 2) / 2||
    1.0
  """


@collapse.raw_means_metric("p3_raw", operator.itemgetter(1))
def unit_norm() -> jax.Array:
  """P3's unit-norm deviation ``(1/C) sum_c | ||mu_c||_2 - 1 |`` (raw means).

  Args:
    {data_args}
    {axis_name_arg}

  Returns:
    float32 scalar, 0 when every class mean lies on the unit sphere.

  {malformed_raises}

  References:
    Jiang et al., TMLR (P3); ``docs/conventions.md#unit-norm``.

  Examples:
    >>> z = jnp.array([[1., 0.], [0., 3.]])
    >>> float(unit_norm(z, jnp.array([0, 1])))  # (0 + 2) / 2
    1.0
  """


@collapse.raw_means_metric("simplex_deviation", EqualInnerProduct._make)
def equal_inner_product() -> EqualInnerProduct:
  """P3's equal-inner-product deviation of the raw class means.

  ``|cos(mu_c, mu_c') + 1/(C-1)|`` over ordered pairs ``c != c'`` of
  non-empty classes, reduced by mean (P3's plotted value) and max.

  Args:
    {data_args}
    {axis_name_arg}

  Returns:
    ``EqualInnerProduct(mean, max)`` of float32 scalars (a NamedTuple, so a
    pytree under ``jit``).

  {malformed_raises}

  References:
    Jiang et al., TMLR (P3); ``docs/conventions.md#equal-inner-product``.

  Examples:
    >>> z = jnp.array([[1., 0.], [-1., 0.]])
    >>> [float(v) for v in equal_inner_product(z, jnp.array([0, 1]))]
    [0.0, 0.0]
  """


def _within_class_distance_local(z, labels, *, axis_name, num_classes):
  counts, means, present = dp.stats(z, labels, num_classes, axis_name)
  r = z - means[labels]
  dist = cs.psum(jax.ops.segment_sum(jnp.sqrt(jnp.sum(r * r, axis=-1)),
                                     labels, num_segments=num_classes),
                 axis_name)
  return fm.masked_mean(dist / jnp.maximum(counts, 1.0), present, jnp)


@docs.fill_geometry
def within_class_distance(features: ArrayLike, labels: ArrayLike, *,
                          num_classes: int | None = None,
                          axis_name: Any = None) -> jax.Array:
  """P3's within-class variation ``(1/C) sum_c mean_{i in c} ||z_i - mu_c||``.

  Euclidean distances (not squared), averaged within each class and then
  over the non-empty classes.

  Args:
    {data_args}
    {axis_name_arg}

  Returns:
    float32 scalar, 0 at within-class collapse.

  {malformed_raises}

  References:
    Jiang et al., TMLR (P3); ``docs/conventions.md#within-class-distance``.

  Examples:
    >>> z = jnp.array([[-1., 0.], [1., 0.], [5., 5.]])
    >>> float(within_class_distance(z, jnp.array([0, 0, 1])))  # (1 + 0) / 2
    0.5
  """
  z, labels, c = dp.prepare(features, labels, num_classes, axis_name)
  return dp.run(_within_class_distance_local, (z, labels),
                axis_name=axis_name, num_classes=c)
