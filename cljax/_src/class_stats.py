"""Class statistics shared by geometry, probes and the loop's evaluation.

One implementation of the quantities every class-based metric starts from,
so that they have one numerics:

* ``class_stats``: per-class counts ``float32[C]`` and sums ``float32[C, D]``
  of a batch (``jax.ops.segment_sum``), summed over a mapped axis when
  ``axis_name`` is given (inside ``jax.shard_map`` or ``jax.pmap``), so every
  device gets the global statistics without gathering the features.
* ``class_means``: ``mu_c = sums_c / n_c`` (a zero row for an empty class).
* ``ncc_scores``: nearest-class-centre scores ``-||z - mu_c||^2`` up to a
  per-row constant, with the float32-safe centre shift.
* ``unit_rows``: rows divided by their L2 norm, a zero row staying zero.
* ``psum`` / ``check_axis_name``: the collective used by all of the above and
  the clear error when an axis name is not bound.

Pure functions of jax/numpy only (the pure core imports no training code).
"""

from __future__ import annotations

from typing import Any, NamedTuple, Optional

import jax
import jax.numpy as jnp
import numpy as np

HIGHEST = jax.lax.Precision.HIGHEST


class ClassStats(NamedTuple):
  """Per-class sufficient statistics of a batch (a pytree).

  Attributes:
    counts: float32[C] number of samples of each class.
    sums: float32[C, D] sum of the features of each class.
  """
  counts: Any
  sums: Any


def check_axis_name(axis_name: Any, name: str = "axis_name") -> None:
  """Raises a ValueError naming ``name`` when ``axis_name`` is not bound.

  Args:
    axis_name: a mapped axis name (or tuple of names), or None (no check).
    name: the argument name used in the message.

  Raises:
    ValueError: when called outside a ``jax.shard_map`` / ``jax.pmap`` that
      binds ``axis_name``.
  """
  if axis_name is None:
    return
  try:
    jax.lax.axis_index(axis_name)
  except NameError:
    raise ValueError(
        f"`{name}={axis_name!r}` is not a bound mapped axis. Pass it only "
        f"when calling per device inside `jax.shard_map` or `jax.pmap` over "
        f"that axis; on a global (possibly sharded) batch pass "
        f"`{name}=None`.") from None


def psum(x: Any, axis_name: Any) -> Any:
  """``jax.lax.psum`` over ``axis_name``; the identity when it is None."""
  return x if axis_name is None else jax.lax.psum(x, axis_name)


def class_stats(features: jax.Array, labels: jax.Array, num_classes: int,
                *, axis_name: Any = None) -> ClassStats:
  """Per-class counts and feature sums, summed over ``axis_name``.

  Args:
    features: float[N, D] features (accumulated in at least float32).
    labels: int[N] class ids; ids outside ``[0, num_classes)`` are dropped.
    num_classes: static number of classes C.
    axis_name: mapped axis to sum over (per-device shards), or None.

  Returns:
    ``ClassStats(counts float[C], sums float[C, D])``.

  Examples:
    >>> s = class_stats(jnp.array([[1., 0.], [3., 2.]]), jnp.array([1, 1]), 2)
    >>> s.counts.tolist(), s.sums.tolist()
    ([0.0, 2.0], [[0.0, 0.0], [4.0, 2.0]])
  """
  f = jnp.asarray(features)
  f = f.astype(jnp.promote_types(f.dtype, jnp.float32))
  counts = jax.ops.segment_sum(jnp.ones(labels.shape, f.dtype), labels,
                               num_segments=num_classes)
  sums = jax.ops.segment_sum(f, labels, num_segments=num_classes)
  return ClassStats(psum(counts, axis_name), psum(sums, axis_name))


def class_means(stats: ClassStats) -> jax.Array:
  """``float[C, D]`` class means ``sums / counts``; empty classes give 0."""
  return stats.sums / jnp.maximum(stats.counts, 1.0)[:, None]


def ncc_scores(features: jax.Array, centers: jax.Array,
               class_mask: Optional[jax.Array] = None) -> jax.Array:
  """Nearest-class-centre scores ``-||z - mu_c||^2`` up to a row constant.

  Uses ``2 <z, mu_c> - ||mu_c||^2`` (``||z||^2`` is shared by a row and does
  not change the argmax) after translating features and centres by the mean
  of the valid centres: distances are translation-invariant, and the shift
  removes a large common offset that would otherwise cancel catastrophically
  in float32.

  Args:
    features: float[N, D] features to classify.
    centers: float[C, D] class centres.
    class_mask: optional bool[C]; False classes score ``-inf``.

  Returns:
    float[N, C] scores (argmax = nearest valid centre).

  Examples:
    >>> s = ncc_scores(jnp.array([[1e4 + 1., 0.]]),
    ...                jnp.array([[1e4, 0.], [1e4 + 3., 0.]]))
    >>> int(jnp.argmax(s, axis=-1)[0])
    0
  """
  dtype = jnp.promote_types(jnp.result_type(features, centers), jnp.float32)
  z = jnp.asarray(features, dtype)
  mu = jnp.asarray(centers, dtype)
  if class_mask is None:
    shift = jnp.mean(mu, axis=0)
  else:
    w = jnp.asarray(class_mask, dtype)
    shift = (w @ mu) / jnp.maximum(jnp.sum(w), 1.0)
  z = z - shift
  mu = mu - shift
  scores = (2.0 * jnp.matmul(z, mu.T, precision=HIGHEST)
            - jnp.sum(mu * mu, axis=-1))
  if class_mask is None:
    return scores
  return jnp.where(jnp.asarray(class_mask, bool), scores, -jnp.inf)


def unit_rows(x: Any) -> Any:
  """Rows of ``x`` divided by their L2 norm; a zero row stays zero.

  Works on NumPy arrays (in NumPy, keeping the dtype) and JAX arrays.

  Args:
    x: float[..., D].

  Returns:
    Array of the same shape; cosines against a zero row are 0 (the
    ``torch.nn.functional.cosine_similarity`` convention).

  Examples:
    >>> unit_rows(np.array([[3., 4.], [0., 0.]])).tolist()
    [[0.6, 0.8], [0.0, 0.0]]
  """
  xp = np if isinstance(x, np.ndarray) else jnp
  norms = xp.sqrt(xp.sum(x * x, axis=-1, keepdims=True))
  return x / xp.where(norms > 0, norms, 1.0)
