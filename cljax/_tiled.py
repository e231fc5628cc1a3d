"""Exact row reductions of the logits, one tile of the matrix at a time.

The dense engine of ``_similarity`` keeps the [A, V] logits as the residual of
its backward pass: 40 GB at V = 100 000 views. This engine never holds more
than one [R, B] tile. The forward pass sweeps each block of R anchor rows over
the V keys in blocks of B columns and merges the tiles' partial row
statistics (log-sum-exps merge by ``logaddexp``, sums by addition); the
backward pass recomputes each tile's logits, turns them into the tile of
d loss/d s with the finished row statistics, and accumulates
dq += ds k and dk += ds^T q. Peak memory is O((A + V) D + R B) and the
results equal the dense engine's up to float32 summation order.

Tiles of a few hundred rows and columns also stay in the CPU's cache, so the
three products of forward + backward (four with the recomputation) run
faster than the dense ones, whose [V, V] operands stream through memory.

Losses with softplus terms (Jiang et al.'s estimators) need their row
statistics before the softplus sum, so those sweep the columns twice in
each direction.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from cljax import _similarity as sim


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


def _tile(spec, tiling, q_r, row_view, row_label, col):
  """Logits, mask getter and shared exponentials of one [R, B] tile."""
  k_c, label_c, start = col
  s = jnp.matmul(q_r, k_c.T, preferred_element_type=jnp.float32)
  ids = sim.MaskIds(row_view, row_label, label_c)
  padded = tiling.num_cols % tiling.cols != 0
  mask = sim._masks_for(spec, ids, tiling.cols, start,
                        tiling.num_cols if padded else None)
  exps = sim._shared_exps(spec, s) if spec.shared_bound is not None else None
  return s, mask, exps


def _row_block_outputs(spec, tiling, cols, q_r, row_view, row_label, aux_r):
  """Every term's output for one block of R anchor rows (a tuple of [R])."""
  zeros = jnp.zeros_like(q_r[:, 0], jnp.float32)

  def base_step(acc, col):
    s, mask, exps = _tile(spec, tiling, q_r, row_view, row_label, col)
    part = sim.base_partials(spec, s, mask, exps)
    return sim.merge_partials(spec, acc, part), None

  acc, _ = jax.lax.scan(base_step, sim.empty_partials(spec, zeros), cols)
  base_outs = sim.finish_partials(spec, acc)
  cs = sim.softplus_offsets(spec, sim.assemble(spec, base_outs, []), aux_r)
  soft_outs = []
  if cs:
    def soft_step(acc, col):
      s, mask, exps = _tile(spec, tiling, q_r, row_view, row_label, col)
      part = sim.softplus_sums(spec, s, cs, mask, exps)
      return [a + p for a, p in zip(acc, part)], None

    soft_outs, _ = jax.lax.scan(soft_step, [zeros for _ in cs], cols)
  return sim.assemble(spec, base_outs, soft_outs)


def _row_inputs(tiling, q, aux, ids):
  return (_blocks(q, tiling.rows), _blocks(ids.row_view, tiling.rows),
          _blocks(ids.row_label, tiling.rows),
          jax.tree.map(lambda a: _blocks(a, tiling.rows), aux))


@functools.partial(jax.custom_vjp, nondiff_argnums=(0, 1))
def _tiled(spec, tiling, q, k, aux, ids):
  return _tiled_fwd(spec, tiling, q, k, aux, ids)[0]


def _tiled_fwd(spec, tiling, q, k, aux, ids):
  cols = _column_blocks(tiling, k, ids.col_label)

  def row_block(xs):
    return _row_block_outputs(spec, tiling, cols, *xs)

  outs = jax.lax.map(row_block, _row_inputs(tiling, q, aux, ids))
  outs = tuple(_unblock(o, tiling.num_rows) for o in outs)
  return outs, (q, k, outs, aux, ids)


def _tiled_bwd(spec, tiling, residuals, g):
  q, k, outs, aux, ids = residuals
  cols = _column_blocks(tiling, k, ids.col_label)
  num_col_blocks = cols[0].shape[0]
  # Padded rows get a zero cotangent, so they add nothing to dk.
  row_xs = _row_inputs(tiling, q, aux, ids) + (
      tuple(_blocks(o, tiling.rows) for o in outs),
      tuple(_blocks(gi, tiling.rows) for gi in g))

  def row_step(dk, xs):
    q_r, row_view, row_label, aux_r, outs_r, g_r = xs
    cs = sim.softplus_offsets(spec, outs_r, aux_r)
    sig = []
    if cs:
      def sig_step(acc, col):
        s, mask, exps = _tile(spec, tiling, q_r, row_view, row_label, col)
        part = sim.sigmoid_sums(spec, s, cs, mask, exps)
        return [a + p for a, p in zip(acc, part)], None

      zeros = jnp.zeros_like(q_r[:, 0], jnp.float32)
      sig, _ = jax.lax.scan(sig_step, [zeros for _ in cs], cols)
    g_r, d_aux_r = sim.softplus_cotangents(spec, outs_r, aux_r, g_r, sig)

    def col_step(carry, col_and_index):
      dq_r, dk = carry
      col, c = col_and_index
      s, mask, exps = _tile(spec, tiling, q_r, row_view, row_label, col)
      ds = sim.cotangent(spec, s, outs_r, cs, g_r, mask, exps)
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
    spec: a non-symmetric ``_similarity._Spec``.
    q: [A, D] anchors (already divided by the temperature).
    k: [V, D] keys.
    aux: pytree of float[A] (the ``combine`` function's extra inputs).
    ids: ``_similarity.MaskIds`` of the anchors and keys.
    block_size: R = B, the tile's rows and columns.

  Returns:
    One float32[A] per term, equal to the dense engine's outputs.
  """
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
                  sim.MaskIds(row_view, row_label, col_label))

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
