"""Class sums and the centre-based classifiers' scores (private).

:func:`ncc_scores` is :func:`cljax._src.class_stats.ncc_scores`, the one
nearest-class-centre scoring function of geometry (NC4), the probes and the
few-shot episodes, so that every NCC number shares its float32 centre shift.
"""

from __future__ import annotations

from typing import Optional

import jax
import jax.numpy as jnp

from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec

from cljax._src.class_stats import ncc_scores  # noqa: F401  (re-exported)
from cljax.probes._common import HIGHEST
from cljax.probes._common import acc_dtype
from cljax.probes._common import explicit_batch_mesh


def class_sums(features: jax.Array, labels: jax.Array, num_classes: int,
               axis_name: Optional[str] = None
               ) -> tuple[jax.Array, jax.Array]:
  """Per-class sums ``[C, D]`` and counts ``[C]``, psum'd over ``axis_name``."""
  f = jnp.asarray(features, acc_dtype(features))
  mesh = explicit_batch_mesh(f)
  if mesh is None:
    sums = jax.ops.segment_sum(f, labels, num_segments=num_classes)
    counts = jax.ops.segment_sum(
        jnp.ones(labels.shape, f.dtype), labels, num_segments=num_classes)
  else:
    # Rows sharded on an Explicit mesh (sharded jit): a scatter cannot say
    # where its output lives, a one-hot contraction over the sharded rows
    # can (each device sums its rows, XLA all-reduces the [C, D] result).
    onehot = jax.nn.one_hot(labels, num_classes, dtype=f.dtype)
    sums = jnp.einsum("nc,nd->cd", onehot, f, precision=HIGHEST,
                      out_sharding=NamedSharding(mesh, PartitionSpec()))
    counts = jnp.sum(onehot, axis=0)
  if axis_name is not None:
    sums, counts = jax.lax.psum((sums, counts), axis_name)
  return sums, counts


def mean_scores(features: jax.Array, centers: jax.Array,
                class_mask: Optional[jax.Array] = None) -> jax.Array:
  """Inner products ``<z, mu_c>``: the mean classifier's logits."""
  dtype = jnp.promote_types(acc_dtype(features), acc_dtype(centers))
  scores = jnp.matmul(jnp.asarray(features, dtype),
                      jnp.asarray(centers, dtype).T, precision=HIGHEST)
  return mask_scores(scores, class_mask)


def mask_scores(scores: jax.Array, class_mask) -> jax.Array:
  if class_mask is None:
    return scores
  return jnp.where(jnp.asarray(class_mask, bool), scores, -jnp.inf)


def hit_rate(hits: jax.Array, axis_name: Optional[str] = None) -> jax.Array:
  """Mean of a bool[N] vector; over the global batch with ``axis_name``."""
  # Integer counts and one division on every path, so that one device and
  # many give the same float. Counts, not per-device means: the mean of
  # means would weight unequal shards equally.
  correct = jnp.sum(hits.astype(jnp.int32))
  total = jnp.asarray(hits.size, jnp.int32)
  if axis_name is not None:
    correct, total = jax.lax.psum((correct, total), axis_name)
  return correct.astype(jnp.float32) / total.astype(jnp.float32)
