"""The shared core of every contrastive loss: layout, normalisation, gathering
of keys across devices, and the masked log-sum-exp.

Layout. Embeddings are ``z: float[N, K, D]`` (N samples, K views). Views are
flattened sample-major, so view ``a`` belongs to sample ``a // K``. The anchors
of a call are the local views (all of them on one device; the device's shard
inside ``shard_map``/``pmap``); the keys are the views of the whole global
batch. Masks are never materialised as inputs: they are built by broadcasting
sample ids and labels, which XLA fuses into the reductions over the logits.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from cljax import _checks

NORMALIZATIONS = ("sphere", "ball", "none")

# Squared-norm floor for the sphere projection: keeps the zero vector finite
# and is representable in bfloat16 arithmetic because we normalise in float32.
_NORM_EPS = 1e-12


def normalize(z: jax.Array, mode: str) -> jax.Array:
  """Projects view vectors onto the unit sphere or ball (float32 inside).

  Args:
    z: float[..., D] vectors.
    mode: "sphere" (z/||z||), "ball" (z/max(1, ||z||), Jiang et al.'s code) or
      "none".

  Returns:
    Array of the same shape and dtype as ``z``.
  """
  _checks.check_choice(mode, "normalize", NORMALIZATIONS)
  if mode == "none":
    return z
  z32 = z.astype(jnp.float32)
  sq = jnp.sum(z32 * z32, axis=-1, keepdims=True)
  if mode == "sphere":
    scale = jax.lax.rsqrt(jnp.maximum(sq, _NORM_EPS))
  else:
    scale = jnp.where(sq > 1.0, jax.lax.rsqrt(jnp.maximum(sq, 1.0)), 1.0)
  return (z32 * scale).astype(z.dtype)


def _replicate_if_sharded(x: jax.Array) -> jax.Array:
  """All-gathers ``x`` when it is sharded on an Explicit mesh.

  With Explicit axis types (JAX's default mesh), ``q @ k.T`` with both operands
  sharded on the batch raises a ShardingTypeError, so the keys are resharded
  to replicated. On unsharded inputs and Auto meshes this is a no-op.
  """
  sharding = jax.typeof(x).sharding
  mesh = getattr(sharding, "mesh", None)
  if mesh is None or mesh.empty or all(s is None for s in sharding.spec):
    return x
  return jax.reshard(x, NamedSharding(mesh, P()))


def _varies_along(x: jax.Array, axis_name: str) -> bool:
  aval = jax.typeof(x)
  vma = getattr(aval, "vma", None)
  if vma is None:
    manual = getattr(aval, "manual_axis_type", None)
    vma = getattr(manual, "varying", frozenset())
  return axis_name in vma


def _psum_identity_transpose(x: jax.Array, axis_name: str) -> jax.Array:
  @jax.custom_vjp
  def f(x):
    return jax.lax.psum(x, axis_name)

  def fwd(x):
    return jax.lax.psum(x, axis_name), None

  def bwd(_, ct):
    return (ct,)

  f.defvjp(fwd, bwd)
  return f(x)


def global_sum(x: jax.Array, axis_name: str | None) -> jax.Array:
  """Sums a per-device partial loss over ``axis_name`` (identity if None).

  Inside ``jax.shard_map`` with varying-axis tracking, ``psum``'s transpose is
  already right. Without it (``jax.pmap``, or ``check_vma=False``) ``psum``
  transposes to another ``psum``, which would scale per-device gradients by
  the device count; there we sum forward and pass the cotangent through, so
  the gradient w.r.t. the local embeddings is the slice of the global one.
  """
  if axis_name is None:
    return x
  if _varies_along(x, axis_name):
    return jax.lax.psum(x, axis_name)
  return _psum_identity_transpose(x, axis_name)


class Views(NamedTuple):
  """Normalised anchors and keys, with the ids that define every mask.

  Shapes: A = local anchors (n·K), V = global views (N·K).
  """
  anchors: jax.Array        # [n, K, D] local, normalised (compute dtype)
  keys: jax.Array           # [V, D] global, normalised
  anchor_index: jax.Array   # int[A] global view index of each local anchor
  anchor_label: jax.Array | None   # int[A]
  key_label: jax.Array | None      # int[V]
  sample_label: jax.Array | None   # int[N] global labels per sample
  num_views: int
  num_samples: int          # global N
  axis_name: str | None

  @property
  def flat_anchors(self) -> jax.Array:
    n, k, d = self.anchors.shape
    return self.anchors.reshape(n * k, d)

  @property
  def anchor_sample(self) -> jax.Array:
    return self.anchor_index // self.num_views

  @property
  def key_sample(self) -> jax.Array:
    return jnp.arange(self.keys.shape[0]) // self.num_views

  @property
  def key_index(self) -> jax.Array:
    return jnp.arange(self.keys.shape[0])


def prepare(z: jax.typing.ArrayLike, labels: jax.typing.ArrayLike | None, *,
            normalize_mode: str, axis_name: str | None,
            min_views: int = 1, name: str = "z") -> Views:
  """Validates ``z`` (and ``labels``), normalises, and gathers the keys."""
  z = jnp.asarray(z)
  _checks.check_rank(z, 3, name, "[N, K, D] (samples, views, dim)")
  _checks.check_float(z, name)
  n, k, _ = z.shape
  if k < min_views:
    raise ValueError(
        f"`{name}` has K={k} view(s) per sample but this loss needs K >= "
        f"{min_views}: its positives are other views of the same sample. Pass "
        f"`{name}` with shape [N, K>={min_views}, D] (or use a loss whose "
        f"positives come from labels, e.g. supcon).")
  if labels is not None:
    labels = jnp.asarray(labels)
    _checks.check_labels(labels, n, "labels")
  zn = normalize(z, normalize_mode)
  if axis_name is None:
    keys_3d = _replicate_if_sharded(zn)
    sample_label = labels
    if labels is not None:
      sample_label = _replicate_if_sharded(labels)
    offset = 0
    num_samples = n
  else:
    keys_3d = jax.lax.all_gather(zn, axis_name, tiled=True)
    sample_label = None
    if labels is not None:
      sample_label = jax.lax.all_gather(labels, axis_name, tiled=True)
    num_samples = keys_3d.shape[0]
    offset = jax.lax.axis_index(axis_name) * n
  keys = keys_3d.reshape(num_samples * k, -1)
  anchor_index = offset * k + jnp.arange(n * k)
  anchor_label = key_label = None
  if labels is not None:
    anchor_label = jnp.repeat(labels, k)
    key_label = jnp.repeat(sample_label, k)
  return Views(zn, keys, anchor_index, anchor_label, key_label, sample_label,
               k, num_samples, axis_name)


def logits(views: Views, temperature) -> jax.Array:
  """float32[A, V] similarity logits <q_a, k_b> / temperature."""
  s = jnp.matmul(views.flat_anchors, views.keys.T,
                 preferred_element_type=jnp.float32)
  return s / temperature


def own_sample_logits(views: Views, temperature) -> jax.Array:
  """float32[n, K, K] logits between the views of each local sample.

  The positives of the sample-positive losses live here, so they never need
  a mask over the full [A, V] matrix.
  """
  s = jnp.einsum("nkd,nld->nkl", views.anchors, views.anchors,
                 preferred_element_type=jnp.float32)
  return s / temperature


def masked_logsumexp(s: jax.Array, mask: jax.Array | None,
                     axis: int = -1) -> jax.Array:
  """log sum_{mask} exp(s) along ``axis``, -inf for an empty row.

  The max is subtracted before the exponent; masked entries enter ``exp`` as
  -inf so that neither the value nor the gradient can overflow (a masked
  entry far above the row max would otherwise give inf * 0 = NaN in the
  backward pass).
  """
  if mask is None:
    return jax.nn.logsumexp(s, axis=axis)
  neg_inf = jnp.asarray(-jnp.inf, s.dtype)
  m = jnp.max(jnp.where(mask, s, neg_inf), axis=axis, keepdims=True)
  m = jax.lax.stop_gradient(jnp.where(jnp.isfinite(m), m, 0.0))
  e = jnp.exp(jnp.where(mask, s - m, neg_inf))
  total = jnp.sum(e, axis=axis, keepdims=True)
  safe = jnp.where(total > 0, total, 1.0)
  out = jnp.where(total > 0, jnp.log(safe) + m, neg_inf)
  return jnp.squeeze(out, axis=axis)


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
  _checks.check_choice(reduction, "reduction", REDUCTIONS)
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
