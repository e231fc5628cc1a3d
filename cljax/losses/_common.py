"""Shared by the loss families: the anchor counts, hyper-parameter checks, the
reduction over anchors and the own-sample positive terms.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from cljax._src import checks
from cljax._src import engine


ArrayLike = jax.typing.ArrayLike


class AnchorCounts(NamedTuple):
  """How many anchors entered a loss (global over devices)."""
  num_valid: jax.Array
  num_anchors: jax.Array


def check_scalar(value, name, allow_zero=False):
  """A hyper-parameter is one real number: a Python number, or a scalar
  array (traced ones are checked for shape only)."""
  if isinstance(value, (bool, np.bool_)):
    raise ValueError(
        f"`{name}` must be a real number, not the bool {value!r}; pass e.g. "
        f"`{name}=0.5`.")
  if np.ndim(value) != 0:
    raise ValueError(
        f"`{name}` must be a scalar (one value for the whole loss); got "
        f"shape {tuple(np.shape(value))}. Call the loss once per value.")
  dtype = jnp.result_type(value)
  if jnp.issubdtype(dtype, jnp.bool_) or jnp.issubdtype(
      dtype, jnp.complexfloating):
    raise ValueError(f"`{name}` must be a real number; got dtype {dtype}.")
  checks.check_positive(value, name, allow_zero=allow_zero)


def check_common(temperature, reduction):
  check_scalar(temperature, "temperature")
  checks.check_choice(reduction, "reduction", engine.REDUCTIONS)


def finish(per_anchor, valid, views, reduction, return_counts, weight=None):
  loss, num_valid, num_anchors = engine.reduce_anchors(
      per_anchor, valid, reduction, views.axis_name, weight=weight)
  if reduction == "none":
    n, k = views.anchors.shape[:2]
    loss = loss.reshape(n, k)
  if return_counts:
    return loss, AnchorCounts(num_valid, num_anchors)
  return loss


def own_mean(values, include_self_pairs):
  """float[A]: mean over an anchor's own-sample positives of values[n, K, K]
  (all K views with self pairs, the other K - 1 without)."""
  k = values.shape[-1]
  if include_self_pairs:
    return jnp.mean(values, axis=-1).reshape(-1)
  off_diag = ~jnp.eye(k, dtype=bool)
  return (jnp.sum(jnp.where(off_diag, values, 0.0), axis=-1) /
          (k - 1)).reshape(-1)


def code_form(s_own, include_self_pairs, lse, valid):
  """mean_p [log(exp(s_ap) + exp(lse_a)) - s_ap] over own-sample positives."""
  n, k, _ = s_own.shape
  lse_own = jnp.where(valid, lse, 0.0).reshape(n, k, 1)
  # softplus(lse - s) = log(1 + exp(lse - s)) = log(exp(s) + exp(lse)) - s.
  return own_mean(jax.nn.softplus(lse_own - s_own), include_self_pairs)


def finite(x):
  """x with its non-finite entries (rows of an empty pool) set to 0: the
  c_a of a softplus term must be finite for its gradient to be."""
  return jnp.where(jnp.isfinite(x), x, 0.0)


def mean_over(axis):
  def mean(per_anchor, valid, weight=None):
    return engine.reduce_anchors(per_anchor, valid, "mean", axis,
                                  weight=weight)[0]
  return mean
