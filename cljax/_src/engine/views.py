"""Views and gathering: normalisation, the layout of anchors and keys, and
the all-gather of the keys across devices.

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

from cljax._src import checks


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
  checks.check_choice(mode, "normalize", NORMALIZATIONS)
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
  symmetric: bool           # anchors are the keys (one device, unsharded)

  @property
  def flat_anchors(self) -> jax.Array:
    n, k, d = self.anchors.shape
    return self.anchors.reshape(n * k, d)


def prepare(z: jax.typing.ArrayLike, labels: jax.typing.ArrayLike | None, *,
            normalize_mode: str, axis_name: str | None,
            min_views: int = 1, name: str = "z") -> Views:
  """Validates ``z`` (and ``labels``), normalises, and gathers the keys."""
  z = jnp.asarray(z)
  checks.check_rank(z, 3, name, "[N, K, D] (samples, views, dim)")
  checks.check_float(z, name)
  n, k, _ = z.shape
  if n == 0:
    raise ValueError(
        f"`{name}` has N=0 samples (shape {tuple(z.shape)}); a contrastive "
        f"loss needs at least one sample, and negatives need two. Skip the "
        f"call on an empty batch.")
  if k < min_views:
    raise ValueError(
        f"`{name}` has K={k} view(s) per sample but this loss needs K >= "
        f"{min_views}: its positives are other views of the same sample. Pass "
        f"`{name}` with shape [N, K>={min_views}, D] (or use a loss whose "
        f"positives come from labels, e.g. supcon).")
  if labels is not None:
    labels = jnp.asarray(labels)
    checks.check_labels(labels, n, "labels")
  zn = normalize(z, normalize_mode)
  if axis_name is None:
    keys_3d = _replicate_if_sharded(zn)
    symmetric = keys_3d is zn
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
    symmetric = False
  keys = keys_3d.reshape(num_samples * k, -1)
  anchor_index = offset * k + jnp.arange(n * k)
  anchor_label = key_label = None
  if labels is not None:
    # Broadcast + reshape rather than jnp.repeat, which needs an explicit
    # out_sharding for a sharded input under ``jax.set_mesh``.
    anchor_label = jnp.broadcast_to(labels[:, None], (n, k)).reshape(-1)
    key_label = jnp.broadcast_to(sample_label[:, None],
                                 (num_samples, k)).reshape(-1)
  return Views(zn, keys, anchor_index, anchor_label, key_label, sample_label,
               k, num_samples, axis_name, symmetric)


def own_sample_logits(views: Views, temperature) -> jax.Array:
  """float32[n, K, K] logits between the views of each local sample.

  The positives of the sample-positive losses live here, so they never need
  a mask over the full [A, V] matrix.
  """
  s = jnp.einsum("nkd,nld->nkl", views.anchors, views.anchors,
                 preferred_element_type=jnp.float32)
  return s / temperature


def logit_bound(normalize_mode: str, temperature) -> float | None:
  """A static bound on |s_ab|, or None when none is known at trace time.

  Unit-sphere and unit-ball features have |<q, k>| <= 1, so |s| <= 1/tau.
  """
  if normalize_mode == "none" or not isinstance(temperature, (int, float)):
    return None
  return 1.0 / float(temperature)


def logits(views: Views, temperature) -> jax.Array:
  """float32[A, V] logits <q_a, k_b>/tau by plain autodiff (for sampling)."""
  q = views.flat_anchors
  q = (q.astype(jnp.float32) / temperature).astype(q.dtype)
  return jnp.matmul(q, views.keys.T, preferred_element_type=jnp.float32)
