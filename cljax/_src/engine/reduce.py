"""The reduction of per-anchor losses over the (global) batch."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from cljax._src import checks


def global_sum(x: jax.Array, axis_name: str | None) -> jax.Array:
  """Sums a per-device partial loss over ``axis_name`` (identity if None).

  A plain ``psum``, whose transpose JAX defines for every mapped path: the
  per-device gradients then follow the one data-parallel rule of
  ``cljax.losses`` (``pmean`` the per-device parameter gradients; inside
  ``jax.pmap`` the per-device gradient w.r.t. the local embeddings is
  n_devices times their slice of the global one, which the ``pmean``
  divides out).
  """
  if axis_name is None:
    return x
  return jax.lax.psum(x, axis_name)


def nonempty(lse: jax.Array) -> jax.Array:
  """bool: where a log-sum-exp is over a nonempty mask (NaN counts as
  nonempty, so a NaN input propagates to the loss instead of dropping the
  anchor)."""
  return ~jnp.isneginf(lse)


def reduce_anchors(per_anchor: jax.Array, valid: jax.Array, reduction: str,
                   axis_name: str | None, weight: jax.Array | None = None):
  """Reduces per-anchor losses over the global batch.

  Args:
    per_anchor: float[A] losses (any value where ``valid`` is False).
    valid: bool[A] anchors that enter the loss.
    reduction: "mean" (over valid anchors), "sum" (over valid anchors),
      "batch" (sum over valid anchors / all anchors, Graf et al.'s training
      reduction), or "none" (float[A] with invalid anchors set to 0, local).
    axis_name: mapped axis to reduce over, or None.
    weight: optional float[A]; "mean" then divides by the summed weight of
      the valid anchors instead of their number (a mean over pairs when
      ``per_anchor`` holds each anchor's sum over its pairs).

  Returns:
    (loss, num_valid, num_anchors); num_* are global int32 counts.
  """
  checks.check_choice(reduction, "reduction", REDUCTIONS)
  per_anchor = jnp.where(valid, per_anchor, 0.0)
  num_valid = jnp.sum(valid.astype(jnp.int32))
  denominator = num_valid if weight is None else jnp.sum(
      jnp.where(valid, weight, 0.0))
  num_anchors = jnp.asarray(valid.shape[0], jnp.int32)
  if axis_name is not None:
    num_valid = jax.lax.psum(num_valid, axis_name)
    num_anchors = jax.lax.psum(num_anchors, axis_name)
    if weight is not None:
      denominator = jax.lax.psum(denominator, axis_name)
    else:
      denominator = num_valid
  if reduction == "none":
    return per_anchor, num_valid, num_anchors
  total = global_sum(jnp.sum(per_anchor), axis_name)
  if reduction == "sum":
    loss = total
  elif reduction == "batch":
    loss = total / num_anchors
  else:
    # No valid anchor: the loss is 0 with zero gradient and num_valid == 0
    # reports it (see the module docstring of cljax.losses).
    loss = total / jnp.maximum(denominator, 1)
  return loss, num_valid, num_anchors


REDUCTIONS = ("mean", "sum", "batch", "none")
