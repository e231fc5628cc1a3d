"""Exact row reductions of the logits, one tile of the matrix at a time.

The dense engine (``dense``) keeps the [A, V] logits as the residual of
its backward pass: 40 GB at V = 100 000 views. This engine never holds more
than one [R, B] tile. The forward pass sweeps each block of R anchor rows over
the V keys in blocks of B columns and merges the tiles' partial row
statistics (log-sum-exps merge by ``logaddexp``, sums by addition); the
backward pass recomputes each tile's logits, turns them into the tile of
d loss/d s with the finished row statistics, and accumulates
dq += ds k and dk += ds^T q. Peak memory is O((A + V) D + R B) and the
results equal the dense engine's up to float32 summation order.

Tiles of a few hundred rows and columns also stay in the CPU's cache, so the
four products of forward + backward (one more than dense, for the
recomputation) run faster than the dense ones, whose [V, V] operands stream
through memory. On one device, where the anchors are the keys, only the
upper triangle of tiles is computed (two products per tile; see the section
below).

Losses with softplus terms (Jiang et al.'s estimators) need their row
statistics before the softplus sum, so those sweep the columns twice in
each direction; on the symmetric path the views are first sorted by label
(``_label_sorted``), so those second sweeps only visit the tiles near the
diagonal that hold the softplus terms' same-label entries.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from cljax._src.engine import masks
from cljax._src.engine import terms


class Tiling(NamedTuple):
  """Static tile geometry: R x B tiles over an A x V matrix."""
  rows: int         # R
  cols: int         # B
  num_rows: int     # A
  num_cols: int     # V


def make_tiling(num_rows: int, num_cols: int, block_size: int) -> Tiling:
  return Tiling(min(block_size, num_rows), min(block_size, num_cols),
                num_rows, num_cols)


def _blocks(x, block):
  """[M, ...] -> [ceil(M / block), block, ...], zero padded."""
  if x is None:
    return None
  pad = -x.shape[0] % block
  if pad:
    x = jnp.pad(x, [(0, pad)] + [(0, 0)] * (x.ndim - 1))
  return x.reshape((-1, block) + x.shape[1:])


def _unblock(x, size):
  return x.reshape((-1,) + x.shape[2:])[:size]


def _column_blocks(tiling, k, col_label):
  kb = _blocks(k, tiling.cols)
  starts = jnp.arange(kb.shape[0], dtype=jnp.int32) * tiling.cols
  return kb, _blocks(col_label, tiling.cols), starts


def _tile(spec, tiling, q_r, row_view, row_label, col, pass_="forward"):
  """Logits, mask getter and shared exponentials of one [R, B] tile."""
  k_c, label_c, start = col
  s = jnp.matmul(q_r, k_c.T, preferred_element_type=jnp.float32)
  ids = masks.MaskIds(row_view, row_label, label_c)
  padded = tiling.num_cols % tiling.cols != 0
  mask = masks.masks_for(spec, ids, tiling.cols, start,
                        tiling.num_cols if padded else None)
  exps = (terms.shared_exps(spec, s, pass_) if spec.shared_bound is not None
          else None)
  return s, mask, exps


def _row_block_outputs(spec, tiling, cols, q_r, row_view, row_label, aux_r,
                       sigmoid=False):
  """Every term's output for one block of R anchor rows (a tuple of [R]);
  ``sigmoid``: and the softplus terms' sigmoid sums (a list of [R])."""
  spec = terms.bind_alphas(spec, aux_r)
  zeros = jnp.zeros_like(q_r[:, 0], jnp.float32)

  def base_step(acc, col):
    s, mask, exps = _tile(spec, tiling, q_r, row_view, row_label, col)
    part = terms.base_partials(spec, s, mask, exps)
    return terms.merge_partials(spec, acc, part), None

  acc, _ = jax.lax.scan(base_step, terms.empty_partials(spec, zeros), cols)
  base_outs = terms.finish_partials(spec, acc)
  cs = terms.softplus_offsets(spec, terms.assemble(spec, base_outs, []), aux_r)
  soft_outs, sig = [], []
  if cs:
    soft_outs = _softplus_row_sums(
        spec, tiling, cols, q_r, row_view, row_label, cs,
        terms.softplus_and_sigmoid_sums if sigmoid else terms.softplus_sums)
    soft_outs, sig = soft_outs[:len(cs)], soft_outs[len(cs):]
  outs = terms.assemble(spec, base_outs, soft_outs)
  return (outs, sig) if sigmoid else outs


def _softplus_row_sums(spec, tiling, cols, q_r, row_view, row_label, cs,
                       row_sums):
  """Sums ``row_sums`` (``terms.softplus_sums`` or another such partial) of
  the softplus terms over every column tile of one row block."""

  def step(acc, col):
    s, mask, exps = _tile(spec, tiling, q_r, row_view, row_label, col)
    return [a + p for a, p in zip(acc, row_sums(spec, s, cs, mask, exps))
            ], None

  zeros = jnp.zeros_like(q_r[:, 0], jnp.float32)
  num_sums = len(cs) * len(row_sums.keywords["derivatives"])
  return jax.lax.scan(step, [zeros for _ in range(num_sums)], cols)[0]


def _row_inputs(tiling, q, aux, ids):
  return (_blocks(q, tiling.rows), _blocks(ids.row_view, tiling.rows),
          _blocks(ids.row_label, tiling.rows),
          jax.tree.map(lambda a: _blocks(a, tiling.rows), aux))


@functools.partial(jax.custom_vjp, nondiff_argnums=(0, 1))
def _tiled(spec, tiling, q, k, aux, ids):
  return _tiled_fwd(spec, tiling, q, k, aux, ids, sigmoid=False)[0]


def _tiled_fwd(spec, tiling, q, k, aux, ids, sigmoid=True):
  cols = _column_blocks(tiling, k, ids.col_label)

  def row_block(xs):
    return _row_block_outputs(spec, tiling, cols, *xs, sigmoid=sigmoid)

  out = jax.lax.map(row_block, _row_inputs(tiling, q, aux, ids))
  outs, sig = out if sigmoid else (out, [])
  outs = tuple(_unblock(o, tiling.num_rows) for o in outs)
  sig = [_unblock(o, tiling.num_rows) for o in sig]
  return outs, (q, k, outs, sig, aux, ids)


def _tiled_bwd(spec, tiling, residuals, g):
  q, k, outs, sig, aux, ids = residuals
  cols = _column_blocks(tiling, k, ids.col_label)
  num_col_blocks = cols[0].shape[0]
  # Padded rows get a zero cotangent, so they add nothing to dk.
  row_xs = _row_inputs(tiling, q, aux, ids) + (
      tuple(_blocks(o, tiling.rows) for o in outs),
      tuple(_blocks(gi, tiling.rows) for gi in g),
      [_blocks(o, tiling.rows) for o in sig])

  def row_step(dk, xs):
    q_r, row_view, row_label, aux_r, outs_r, g_r, sig_r = xs
    spec_r = terms.bind_alphas(spec, aux_r)
    cs = terms.softplus_offsets(spec_r, outs_r, aux_r)
    # The sigmoid sums were kept by the forward sweep.
    g_r, d_aux_r = terms.softplus_cotangents(spec_r, outs_r, aux_r, g_r,
                                             sig_r)

    def col_step(carry, col_and_index):
      dq_r, dk = carry
      col, c = col_and_index
      s, mask, exps = _tile(spec_r, tiling, q_r, row_view, row_label, col,
                            "backward")
      ds = terms.cotangent(spec_r, s, outs_r, cs, g_r, mask, exps)
      k_c = col[0]
      dq_r = dq_r + jnp.matmul(ds.astype(k_c.dtype), k_c,
                               preferred_element_type=jnp.float32)
      dk_c = jax.lax.dot_general(ds.astype(q_r.dtype), q_r,
                                 (((0,), (0,)), ((), ())),
                                 preferred_element_type=jnp.float32)
      return (dq_r, dk.at[c].add(dk_c)), None

    dq0 = jnp.zeros_like(q_r, jnp.float32)
    (dq_r, dk), _ = jax.lax.scan(
        col_step, (dq0, dk),
        (cols, jnp.arange(num_col_blocks, dtype=jnp.int32)))
    return dk, (dq_r, d_aux_r)

  dk0 = jnp.zeros_like(cols[0], jnp.float32)
  dk, (dq, d_aux) = jax.lax.scan(row_step, dk0, row_xs)
  dq = _unblock(dq, tiling.num_rows).astype(q.dtype)
  dk = _unblock(dk, tiling.num_cols).astype(k.dtype)
  d_aux = jax.tree.map(lambda a: _unblock(a, tiling.num_rows), d_aux)
  no_ids = jax.tree.map(lambda x: None, ids)
  return dq, dk, d_aux, no_ids


_tiled.defvjp(_tiled_fwd, _tiled_bwd)


# --- one device, anchors = keys: the upper triangle of tiles ----------------
#
# When the anchors are the keys (one device, whole batch) the logits and
# every mask are symmetric, so tile (c, r) is the transpose of tile (r, c).
# Each pair r <= c is computed once and serves both: its rows feed the row
# statistics of block r and its columns those of block c. In the backward,
# H = G_rc + G_cr^T gives dx_r += H x_c / tau and dx_c += H^T x_r / tau.
# That is two products per tile of the full matrix instead of four.

def _pairs(num_blocks):
  rows, cols = [], []
  for r in range(num_blocks):
    for c in range(r, num_blocks):
      rows.append(r)
      cols.append(c)
  return jnp.asarray(rows, jnp.int32), jnp.asarray(cols, jnp.int32)


class _Blocks(NamedTuple):
  x: jax.Array          # [nb, B, D] keys
  view: jax.Array       # int[nb, B] global view index (>= V on padding)
  label: jax.Array | None
  soft: jax.Array | None  # bool[nb, nb]: tiles with softplus entries
  plain: jax.Array | None  # bool[nb, nb]: plain tiles (``masks.plain_tiles``)


def _sym_blocks(spec, tiling, x, ids, label_sorted=False):
  b = tiling.cols
  xb = _blocks(x, b)
  nb = xb.shape[0]
  view = jnp.concatenate([
      ids.row_view.astype(jnp.int32),
      jnp.arange(tiling.num_cols, nb * b, dtype=jnp.int32)]).reshape(nb, b)
  label = _blocks(ids.col_label, b)
  soft = masks.soft_tiles(spec, tiling.num_cols, view, label)
  return _Blocks(xb, view, label, soft, masks.plain_tiles(
      spec, tiling.num_cols, view, label, soft, label_sorted))


def _sym_tile(spec, tiling, blocks, r, c, plain=False, pass_="forward",
              soft=True):
  """Logits, mask getter and exponentials of tile (r, c); its transpose is
  tile (c, r), whose masks are the transposes (padded rows are masked too).
  ``plain``: a plain tile (constant masks); ``pass_``, ``soft``: see
  ``terms.shared_exps``."""
  b = tiling.cols
  x_r, x_c = blocks.x[r], blocks.x[c]
  # As in the dense engine, 1/tau scales the float32 product, so tile (c, r)
  # is exactly the transpose of tile (r, c) for bfloat16 inputs too.
  s = jnp.matmul(x_r, x_c.T, preferred_element_type=jnp.float32)
  s = s * spec.inv_temperature
  label = (lambda i: None) if blocks.label is None else (
      lambda i: blocks.label[i])
  valid = tiling.num_cols if tiling.num_cols % b else None
  mask = masks.plain_mask if plain else masks.masks_for(
      spec, masks.MaskIds(blocks.view[r], label(r), label(c),
                          blocks.view[c]), b, c * b, valid)
  exps = (terms.shared_exps(spec, s, pass_, soft)
          if spec.shared_bound is not None else None)
  return s, mask, exps


def _sym_sweep(spec, tiling, blocks, init, pair_fn, merge, soft_only=False):
  """Folds ``pair_fn(s, mask, exps, r, c)`` = (statistics of the rows of
  block r, of block c) over every tile pair into ``init`` (a list of
  [nb, B] arrays). ``soft_only``: pair_fn sums softplus terms only, so
  tiles without their entries add 0 and are skipped."""
  rows, cols = _pairs(blocks.x.shape[0])

  def parts(r, c, plain=False):
    # The tile is built in each branch: its lazily built masks must not
    # leak from one branch's trace into the other.
    s, mask, exps = _sym_tile(spec, tiling, blocks, r, c, plain)
    return pair_fn(s, mask, exps, r, c)

  def step(acc, rc):
    r, c = rc
    if not soft_only and blocks.plain is not None:
      part_r, part_c = jax.lax.cond(
          blocks.plain[r, c], functools.partial(parts, plain=True), parts,
          r, c)
    elif soft_only and blocks.soft is not None:
      part_r, part_c = jax.lax.cond(
          blocks.soft[r, c], parts,
          lambda r, c: jax.tree.map(lambda x: jnp.zeros(x.shape, x.dtype),
                                    jax.eval_shape(parts, r, c)), r, c)
    else:
      part_r, part_c = parts(r, c)
    acc = [a.at[r].set(m) for a, m in
           zip(acc, merge([a[r] for a in acc], part_r))]
    merged = merge([a[c] for a in acc], part_c)
    # A diagonal tile is its own transpose: count it once.
    return [a.at[c].set(jnp.where(r == c, a[c], m))
            for a, m in zip(acc, merged)], None

  acc, _ = jax.lax.scan(step, init, (rows, cols))
  return acc


def _add(acc, part):
  return [a + p for a, p in zip(acc, part)]


def _sym_outputs(spec, tiling, x, aux, ids, label_sorted, sigmoid=False):
  """(outputs, the softplus terms' sigmoid sums if ``sigmoid`` else [])."""
  blocks = _sym_blocks(spec, tiling, x, ids, label_sorted)
  nb, b = blocks.view.shape
  zeros = jnp.zeros((nb, b), jnp.float32)
  rows_spec = spec._replace(symmetric=False)
  acc = _sym_sweep(
      rows_spec, tiling, blocks,
      [z.reshape(nb, b) for z in terms.empty_partials(rows_spec,
                                                    zeros.reshape(-1))],
      lambda s, mask, exps, r, c: terms.base_partials(rows_spec, s, mask,
                                                      exps, cols=True),
      functools.partial(terms.merge_partials, rows_spec))
  base_outs = [_unblock(a, tiling.num_rows) for a in
               terms.finish_partials(rows_spec, acc)]
  cs = terms.softplus_offsets(spec, terms.assemble(spec, base_outs, []), aux)
  soft_outs, sig = [], []
  if cs:
    soft_outs = _sym_soft_sums(
        rows_spec, tiling, blocks, cs,
        terms.softplus_and_sigmoid_sums if sigmoid else terms.softplus_sums)
    soft_outs, sig = soft_outs[:len(cs)], soft_outs[len(cs):]
  return terms.assemble(spec, base_outs, soft_outs), sig


def _sym_soft_sums(rows_spec, tiling, blocks, cs, row_sums):
  """``row_sums`` (``terms.softplus_sums`` or another such partial) of the
  softplus terms with offsets ``cs`` (float[V] each), over every tile."""
  nb, b = blocks.view.shape
  cs_b = [_blocks(c, b) for c in cs]
  num_sums = len(cs) * len(row_sums.keywords["derivatives"])
  sums = _sym_sweep(
      rows_spec, tiling, blocks,
      [jnp.zeros((nb, b), jnp.float32) for _ in range(num_sums)],
      lambda s, mask, exps, r, c: row_sums(
          rows_spec, s, [x[r] for x in cs_b], mask, exps,
          [x[c] for x in cs_b]), _add,
      soft_only=True)
  return [_unblock(a, tiling.num_rows) for a in sums]


@functools.partial(jax.custom_vjp, nondiff_argnums=(0, 1, 2))
def _tiled_symmetric(spec, tiling, label_sorted, x, aux, ids):
  return _sym_outputs(spec, tiling, x, aux, ids, label_sorted)[0]


def _tiled_symmetric_fwd(spec, tiling, label_sorted, x, aux, ids):
  outs, sig = _sym_outputs(spec, tiling, x, aux, ids, label_sorted,
                           sigmoid=True)
  return outs, (x, outs, sig, aux, ids)


def _tiled_symmetric_bwd(spec, tiling, label_sorted, residuals, g):
  x, outs, sig, aux, ids = residuals
  blocks = _sym_blocks(spec, tiling, x, ids, label_sorted)
  nb, b = blocks.view.shape
  rows_spec = spec._replace(symmetric=False)
  cs = terms.softplus_offsets(spec, outs, aux)
  # The sigmoid sums were kept by the forward sweep.
  g, d_aux = terms.softplus_cotangents(spec, outs, aux, g, sig)
  # Padded rows get a zero cotangent, so they add nothing to dx.
  outs_b = [_blocks(o, b) for o in outs]
  g_b = [_blocks(gi, b) for gi in g]
  cs_b = [_blocks(c, b) for c in cs]
  rows, cols = _pairs(nb)

  def stats(i):
    return ([o[i] for o in outs_b], [c[i] for c in cs_b],
            [gi[i] for gi in g_b])

  def step(dx, rc):
    r, c = rc
    outs_r, cs_r, g_r = stats(r)
    outs_c, cs_c, g_c = stats(c)

    def pair_cotangent(soft, plain=False):
      # The tile is built in each branch: its lazily built masks must not
      # leak from one branch's trace into the other.
      s, mask, exps = _sym_tile(rows_spec, tiling, blocks, r, c, plain,
                                "backward", soft)
      return terms.cotangent(rows_spec, s, outs_r, cs_r, g_r, mask, exps,
                             soft, cols=(outs_c, cs_c, g_c))

    # On the diagonal H = G_rr + G_rr^T is the whole contribution to dx_r.
    branches = [lambda: pair_cotangent(True)]
    index = 0
    if blocks.soft is not None:
      branches.append(lambda: pair_cotangent(False))
      index = jnp.where(blocks.soft[r, c], 0, 1)
    if blocks.plain is not None:
      branches.append(lambda: pair_cotangent(False, plain=True))
      index = jnp.where(blocks.plain[r, c], len(branches) - 1, index)
    h = (branches[0]() if len(branches) == 1 else
         jax.lax.switch(index, branches))
    diag = r == c
    x_r, x_c = blocks.x[r], blocks.x[c]
    dx_r = jnp.matmul(h.astype(x_c.dtype), x_c,
                      preferred_element_type=jnp.float32)
    dx_c = jax.lax.dot_general(h.astype(x_r.dtype), x_r,
                               (((0,), (0,)), ((), ())),
                               preferred_element_type=jnp.float32)
    dx = dx.at[r].add(dx_r * spec.inv_temperature)
    dx = dx.at[c].add(jnp.where(diag, 0.0, dx_c * spec.inv_temperature))
    return dx, None

  dx, _ = jax.lax.scan(step, jnp.zeros_like(blocks.x, jnp.float32),
                       (rows, cols))
  dx = _unblock(dx, tiling.num_rows).astype(x.dtype)
  no_ids = jax.tree.map(lambda v: None, ids)
  return dx, d_aux, no_ids


_tiled_symmetric.defvjp(_tiled_symmetric_fwd, _tiled_symmetric_bwd)


def _label_sorted(spec, tiling, x, aux, ids):
  """``_tiled_symmetric`` on the views sorted by label, outputs in the
  original order.

  Each class's entries then sit in the few tiles near the diagonal, so the
  softplus terms (over label masks, e.g. Jiang et al.'s positives) skip
  every other tile: two of the four sweeps shrink to about a tile row.
  """
  perm = jnp.argsort(ids.col_label, stable=True)
  label = ids.col_label[perm]
  take = lambda a: jnp.take(a, perm, axis=0)  # noqa: E731
  outs = _tiled_symmetric(
      spec, tiling, True, take(x), jax.tree.map(take, aux),
      masks.MaskIds(take(ids.row_view), label, label))
  inverse = jnp.zeros_like(perm).at[perm].set(
      jnp.arange(perm.shape[0], dtype=perm.dtype))
  return tuple(jnp.take(o, inverse, axis=0) for o in outs)


def _batch_axis(x):
  """The mesh and axis name that shard dim 0 of ``x`` (Explicit mesh), or
  (None, None) when ``x`` is not sharded that way."""
  sharding = jax.typeof(x).sharding
  mesh = getattr(sharding, "mesh", None)
  spec = getattr(sharding, "spec", None)
  if mesh is None or mesh.empty or not spec or spec[0] is None:
    return None, None
  return mesh, sharding.spec[0]


def reductions(spec, q, k, aux, ids, block_size: int):
  """The terms of ``spec`` over the logits q k^T, tile by tile.

  Args:
    spec: a ``_engine._Spec``; if symmetric, q is the keys themselves
      (not divided by the temperature) and only the upper triangle of tiles
      is computed.
    q: [A, D] anchors (divided by the temperature unless symmetric).
    k: [V, D] keys.
    aux: pytree of float[A] (the ``combine`` function's extra inputs).
    ids: ``_engine.MaskIds`` of the anchors and keys.
    block_size: R = B, the tile's rows and columns.

  Returns:
    One float32[A] per term, equal to the dense engine's outputs.
  """
  if spec.symmetric:
    tiling = make_tiling(q.shape[0], k.shape[0], block_size)
    if ids.col_label is not None and terms.split_terms(spec)[1]:
      return _label_sorted(spec, tiling, k, aux, ids)
    return _tiled_symmetric(spec, tiling, False, k, aux, ids)
  mesh, axis = _batch_axis(q)
  if mesh is None:
    tiling = make_tiling(q.shape[0], k.shape[0], block_size)
    return _tiled(spec, tiling, q, k, aux, ids)
  # A batch sharded on an Explicit mesh: each device sweeps its own anchor
  # rows over all keys. The keys enter replicated and are cast to varying,
  # whose transpose sums the devices' dk.
  num_shards = mesh.shape[axis] if isinstance(axis, str) else int(
      jnp.prod(jnp.asarray([mesh.shape[a] for a in axis])))
  tiling = make_tiling(q.shape[0] // num_shards, k.shape[0], block_size)
  has_labels = ids.col_label is not None

  def local(q, k, aux, row_view, row_label, col_label):
    k = jax.lax.pcast(k, axis, to="varying")
    if has_labels:
      col_label = jax.lax.pcast(col_label, axis, to="varying")
    return _tiled(spec, tiling, q, k, aux,
                  masks.MaskIds(row_view, row_label, col_label))

  rows, whole = P(axis), P()

  def put(x, spec):
    return None if x is None else jax.reshard(x, NamedSharding(mesh, spec))

  args = (put(q, rows), put(k, whole),
          jax.tree.map(lambda a: put(a, rows), aux), put(ids.row_view, rows),
          put(ids.row_label, rows), put(ids.col_label, whole))
  specs = (rows, whole, jax.tree.map(lambda _: rows, aux), rows,
           rows if has_labels else None, whole if has_labels else None)
  return jax.shard_map(local, mesh=mesh, in_specs=specs,
                       out_specs=tuple(rows for _ in spec.terms))(*args)
