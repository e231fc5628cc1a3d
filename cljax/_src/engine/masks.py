"""The masks over the [A, V] logits, rebuilt from id vectors (never stored),
and the number of entries of each anchor's mask."""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from cljax._src import checks
from cljax._src.engine.views import Views


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


class _Empty:
  """The mask of a tile that holds none of its entries (see ``plain_mask``)."""

  def __repr__(self):
    return "EMPTY"


EMPTY = _Empty()

# Masks whose entries all lie in a tile of the symmetric path's diagonal or
# in tiles holding some pair of same-label (same-sample) views.
_NEAR_DIAGONAL = ("same_sample", "other_views", "same_label", "positive")
LABEL_MASKS = ("diff_label", "same_label", "positive")
SAMPLE_MASKS = ("other_sample", "same_sample", "other_views")


def plain_mask(kind: str):
  """The mask getter of a plain tile: off the diagonal, without padding and
  without any pair of same-label (hence same-sample) views, every mask is
  all-true (None) or has no entry (``EMPTY``, its terms add nothing), so no
  comparison of ids is made on it."""
  return EMPTY if kind in _NEAR_DIAGONAL else None


# --- Which tiles of the symmetric path hold which entries -----------------
#
# From each [B]-block's range of labels (or samples): a conservative test,
# exact for label-sorted views (``tiled._label_sorted``) and for same-sample
# masks in view order. ``view``: int[nb, B] view index (>= num_cols on
# padding); ``label``: int[nb, B] or None.

def _ranges_overlap(num_cols, view, key):
  """bool[nb, nb]: whether the ranges of ``key`` over the valid entries of
  two blocks overlap (False: no key value is in both blocks)."""
  valid = view < num_cols
  top = jnp.iinfo(jnp.int32).max
  lo = jnp.min(jnp.where(valid, key, top), axis=1)
  hi = jnp.max(jnp.where(valid, key, -top), axis=1)
  return (lo[:, None] <= hi[None, :]) & (lo[None, :] <= hi[:, None])


def _softplus_masks(spec):
  return {t.mask for t in spec.terms if t.kind == "softplus"}


def soft_tiles(spec, num_cols, view, label):
  """bool[nb, nb]: whether tile (r, c) has an entry in some softplus term's
  mask; None: no softplus term, or every tile."""
  kinds = _softplus_masks(spec)
  if not kinds:
    return None
  out = None
  for kind in kinds:
    if kind in ("same_label", "positive") and label is not None:
      tiles = _ranges_overlap(num_cols, view, label)
    elif kind in ("same_sample", "other_views"):
      tiles = _ranges_overlap(num_cols, view, view // spec.num_views)
    else:
      return None
    out = tiles if out is None else out | tiles
  return out


def plain_tiles(spec, num_cols, view, label, soft, label_sorted):
  """bool[nb, nb]: the plain tiles (``plain_mask``), or None when no tile
  is worth testing.

  A plain tile is off the diagonal (no view meets itself), has no padding,
  and no two of its views share a label (so none shares a sample); without
  labels, no two share a sample. Its terms then need no id comparison, and
  terms that differ only in their masks share one reduction. On label-sorted
  views that is every tile but those near the diagonal. ``soft`` (from
  ``soft_tiles``): plain tiles exclude those, so softplus terms skip them.
  """
  kinds = {t.mask for t in spec.terms}
  if any(t.weight != 1.0 for t in spec.terms):
    kinds.add("same_label")
  uses_labels = bool(kinds & set(LABEL_MASKS))
  if kinds <= {"all"} or (uses_labels and not label_sorted):
    # All-true masks are plain everywhere already; with unsorted labels
    # nearly every tile holds a same-label pair.
    return None
  if _softplus_masks(spec) and soft is None:
    return None
  whole = jnp.all(view < num_cols, axis=1)
  plain = ~jnp.eye(view.shape[0], dtype=bool) & whole[:, None] & whole
  if label is not None:
    plain = plain & ~_ranges_overlap(num_cols, view, label)
  elif uses_labels or kinds & set(SAMPLE_MASKS):
    plain = plain & ~_ranges_overlap(num_cols, view, view // spec.num_views)
  return plain if soft is None else plain & ~soft


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
  checks.check_choice(mask, "mask", MASKS)
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
