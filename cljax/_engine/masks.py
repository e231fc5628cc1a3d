"""The masks over the [A, V] logits, rebuilt from id vectors (never stored),
and the number of entries of each anchor's mask."""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from cljax import _checks
from cljax._engine.views import Views


# --- Row reductions over the [A, V] logits --------------------------------
#
# Every loss is a function of a few reductions over each anchor's row of the
# logits s = <q_a, k_b>/tau, each restricted to a mask that is rebuilt from id
# vectors by broadcasting (never stored). ``row_reductions`` computes them all
# from one product with a hand-written VJP:
#   * the residual is the logits matrix only (no exponentials or masks are
#     written in the forward pass);
#   * the backward builds the cotangent of s in one fused elementwise pass;
#   * when the anchors are the keys (one device, unsharded batch), s is
#     symmetric and so is every mask, so the transposed cotangent is also
#     elementwise in s: d x = (G + G^T) x / tau is one pass and one
#     row-major product, instead of the transposed product G^T q, which
#     XLA:CPU runs at half speed.

MASKS = ("all", "not_self", "other_sample", "same_sample", "other_views",
         "diff_label", "same_label", "positive")


class MaskIds(NamedTuple):
  """The id vectors that define every mask (a pytree of arrays)."""
  row_view: jax.Array               # int[A] global view index of each anchor
  row_label: jax.Array | None       # int[A]
  col_label: jax.Array | None       # int[V]
  # int[V] global view index of each column; None: the column's position
  # (the tiled engine's label-sorted symmetric path passes its permutation).
  col_view: jax.Array | None = None


def mask_ids(views: Views) -> MaskIds:
  return MaskIds(views.anchor_index, views.anchor_label, views.key_label)


def build_mask(kind: str, num_views: int, ids: MaskIds, num_cols: int,
               col_start=0, valid_cols: int | None = None) -> jax.Array | None:
  """bool[A, num_cols] mask of the given kind (None for "all" on full tiles).

  Each mask is symmetric on the full [V, V] matrix. A tile of columns
  ``col_start + [0, num_cols)`` passes its offset (and ``ids.col_label`` of
  those columns); ``valid_cols`` (static) excludes padding columns >= it
  (and, with ``ids.col_view``, padding rows, whose view index is >= it).
  """
  col = jax.lax.broadcasted_iota(jnp.int32, (1, num_cols), 1) + col_start
  view = col if ids.col_view is None else ids.col_view[None, :]
  mask = _build_mask(kind, num_views, ids, view)
  if valid_cols is None:
    return mask
  inside = col < valid_cols
  if ids.col_view is not None:
    # A tile of the symmetric path: its padded rows (view >= V) are masked
    # too, so the transposed tile's masks are exactly the transposes.
    inside = inside & (ids.row_view[:, None] < valid_cols)
  return inside if mask is None else mask & inside


def _build_mask(kind, num_views, ids, col):
  if kind == "all":
    return None
  row = ids.row_view[:, None]
  if kind == "not_self":
    return row != col
  if kind == "other_sample":
    return (row // num_views) != (col // num_views)
  if kind == "same_sample":
    return (row // num_views) == (col // num_views)
  if kind == "other_views":
    return ((row // num_views) == (col // num_views)) & (row != col)
  same = ids.row_label[:, None] == ids.col_label[None, :]
  if kind == "diff_label":
    return ~same
  if kind == "same_label":
    return same
  if kind == "positive":
    return same & (row != col)
  raise ValueError(f"unknown mask {kind!r}")


def masks_for(spec, ids, num_cols, col_start=0, valid_cols=None):
  cache = {}

  def get(kind):
    if kind not in cache:
      cache[kind] = build_mask(kind, spec.num_views, ids, num_cols,
                               col_start, valid_cols)
    return cache[kind]
  return get


def row_count(views: Views, mask: str) -> jax.Array:
  """float32[A]: the number of entries of each anchor's mask.

  Label masks count the anchor's class in the global batch from the sorted
  sample labels (O(N log N); never an [A, N] comparison, which would be
  2 GB at 65 536 views).
  """
  _checks.check_choice(mask, "mask", MASKS)
  k = views.num_views
  num_cols = views.keys.shape[0]
  ones = jnp.ones(views.anchor_index.shape, jnp.float32)
  fixed = {"all": num_cols, "not_self": num_cols - 1,
           "other_sample": num_cols - k, "same_sample": k,
           "other_views": k - 1}
  if mask in fixed:
    return ones * fixed[mask]
  labels = views.sample_label
  ordered = jnp.sort(labels)
  per_sample = (jnp.searchsorted(ordered, labels, side="right") -
                jnp.searchsorted(ordered, labels, side="left"))
  samples = views.anchor_index // k
  same = k * jnp.take(per_sample, samples, axis=0).astype(jnp.float32)
  return {"same_label": same, "positive": same - 1,
          "diff_label": num_cols - same}[mask]
