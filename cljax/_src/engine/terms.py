"""Row reductions ("terms") of the logits: their partial statistics on a
tile, how tiles merge, and the elementwise cotangent d loss / d s.

Every loss is a function of a few reductions over each anchor's row of the
logits s = <q_a, k_b>/tau, each restricted to a mask. The dense engine
(``dense``) is the single-tile case of these functions; the tiled engine
(``tiled``) sweeps them over tiles.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp

from cljax._src import checks
from cljax._src.engine import masks


# exp(-60) is far above float32's smallest normal number (~exp(-87)).
MAX_FIXED_SHIFT_RANGE = 60.0


class Term(NamedTuple):
  """One row reduction (static).

  kind "lse":      log sum_{b in mask} w_ab exp(alpha s_ab)   (-inf if empty)
                   with d/ds = grad_scale * softmax; w_ab = weight on
                   same-label entries, 1 elsewhere. ``bound`` (a static bound
                   on |s|) shifts the exponent by a constant instead of the
                   row max, saving a pass.
  kind "sum":      sum_{b in mask} s_ab.
  kind "softplus": sum_{b in mask} softplus(c_a - s_ab), with c_a produced by
                   the ``combine`` function of ``row_reductions``.
  """
  kind: str
  mask: str
  alpha: float = 1.0
  grad_scale: float | None = None
  weight: float = 1.0
  bound: float | None = None

  def checked(self) -> "Term":
    checks.check_choice(self.kind, "kind", ("lse", "sum", "softplus"))
    checks.check_choice(self.mask, "mask", masks.MASKS)
    if isinstance(self.alpha, AlphaSlot):
      # A traced alpha: no static shift, and its gradient scale is traced
      # with it unless given.
      grad_scale = self.alpha if self.grad_scale is None else float(
          self.grad_scale)
      return self._replace(grad_scale=grad_scale, weight=float(self.weight),
                           bound=None)
    bound = self.bound
    if bound is not None and 2 * abs(self.alpha) * bound > (
        MAX_FIXED_SHIFT_RANGE):
      bound = None
    grad_scale = self.alpha if self.grad_scale is None else self.grad_scale
    return self._replace(alpha=float(self.alpha),
                         grad_scale=float(grad_scale),
                         weight=float(self.weight), bound=bound)


class AlphaSlot(NamedTuple):
  """Stands in a static ``Term`` for a traced alpha (e.g. 1 + beta with beta
  traced under jit): column ``index`` of the float32[A, m] alpha rows that
  ``row_reductions`` prepends to ``aux``."""
  index: int


def slot_traced_alphas(terms):
  """(terms with each traced alpha replaced by an AlphaSlot, the alphas)."""
  alphas, out = [], []
  for t in terms:
    if isinstance(t.alpha, jax.core.Tracer):
      alphas.append(jax.lax.stop_gradient(jnp.asarray(t.alpha, jnp.float32)))
      t = t._replace(alpha=AlphaSlot(len(alphas) - 1))
    elif not isinstance(t.alpha, (int, float)):
      t = t._replace(alpha=float(t.alpha))
    out.append(t)
  return out, alphas


def _has_slots(spec):
  return any(isinstance(t.alpha, AlphaSlot) for t in spec.terms)


def bind_alphas(spec, aux):
  """``spec`` with its AlphaSlots replaced by columns of the alpha rows in
  ``aux[0]`` (the rows of this call or tile); a no-op without
  slots."""
  if not _has_slots(spec):
    return spec
  rows = aux[0]

  def column(x):  # alpha multiplies [R, B] tiles
    return rows[:, x.index, None] if isinstance(x, AlphaSlot) else x

  def row(x):  # the gradient scale multiplies [R] row statistics
    return rows[:, x.index] if isinstance(x, AlphaSlot) else x
  return spec._replace(terms=tuple(
      t._replace(alpha=column(t.alpha), grad_scale=row(t.grad_scale))
      for t in spec.terms))


def without_alphas(combine, outs, aux):
  return combine(outs, aux[1])


def _is_zero(x):
  return isinstance(x, float) and x == 0.0


class Spec(NamedTuple):
  terms: tuple
  combine: object          # static callable or None
  num_views: int
  symmetric: bool
  inv_temperature: float   # used by the symmetric path only
  shared_bound: float | None  # every exponent shifted by a constant


def _row_sums(arrays, axis=-1):
  """[A, V] arrays -> their row sums (column sums for ``axis=0``).

  Separate reductions, not one variadic reduce: XLA:CPU runs a variadic
  reduce over [V, V] operands about twice as slowly as the separate ones.
  """
  return [jnp.sum(a, axis=axis) for a in arrays]


def _weighted(term, e, mask, same):
  if mask is not None:
    e = jnp.where(mask, e, 0.0)
  if term.weight != 1.0 and same is not None:  # (None: a plain tile)
    e = jnp.where(same, term.weight * e, e)
  return e


def _lse_partial(term, s, mask, same):
  """(log-sum-exp of the entries of ``s`` in the mask, or -inf if none)."""
  a = term.alpha * s
  if term.bound is not None:
    shift = jnp.full((s.shape[0], 1), abs(term.alpha) * term.bound, s.dtype)
  else:
    masked = a if mask is None else jnp.where(mask, a, -jnp.inf)
    shift = jnp.max(masked, axis=-1, keepdims=True)
    shift = jnp.where(jnp.isfinite(shift), shift, 0.0)
  arg = a - shift
  if mask is not None:
    arg = jnp.where(mask, arg, -jnp.inf)
  e = _weighted(term, jnp.exp(arg), None, same)
  return _log_or_empty(jnp.sum(e, axis=-1), shift[:, 0])


def _log_or_empty(total, shift):
  """log(total) + shift, -inf for an empty mask (total == 0).

  A NaN total (NaN or Inf in the input) stays NaN: it must never look like
  an empty mask, whose anchor the losses drop as invalid.
  """
  empty = total == 0
  return jnp.where(empty, -jnp.inf,
                   jnp.log(jnp.where(empty, 1.0, total)) + shift)


def _same_label_mask(spec, mask):
  if any(t.weight != 1.0 for t in spec.terms):
    same = mask("same_label")
    return None if same is masks.EMPTY else same
  return None


def split_terms(spec):
  base = [i for i, t in enumerate(spec.terms) if t.kind != "softplus"]
  soft = [i for i, t in enumerate(spec.terms) if t.kind == "softplus"]
  return base, soft


# Integer alphas up to this use powers of exp(s - bound): a few multiplies
# per entry instead of one more exp (alpha = 1 + beta for integer beta).
_MAX_POWER = 16


def _is_power(a):
  return 0 < a <= _MAX_POWER and float(a).is_integer()


def shared_exps(spec, s, tile=None, soft=True):
  """exp(alpha s - |alpha| bound) per distinct alpha (1.0 always included).

  For a positive integer alpha this is exactly exp(s - bound)^alpha, built by
  ``lax.integer_pow`` from the one exp. ``tile``: "forward" or "backward" on
  a tile of the tiled engine (``soft``: it has softplus entries); if that
  pass uses two or more powers, exp(s - bound) is kept, else XLA rewrites
  each power into an exp of its own, recomputed in every fusion that reads
  it (alphas 1, 5, 6, 8192 views: the forward sweep 1.2-1.3x faster).
  """
  alphas = {1.0} | {t.alpha for t in spec.terms if t.kind == "lse"}
  e1 = jnp.exp(s - spec.shared_bound)
  if tile is not None:
    used = {t.alpha for t in spec.terms if t.kind == "lse" and
            (tile == "forward" or not _is_zero(t.grad_scale))}
    if split_terms(spec)[1] and (soft or tile == "forward"):
      used.add(1.0)
    if sum(1 for a in used if _is_power(a)) >= 2:
      e1 = jax.lax.optimization_barrier(e1)

  def power(a):
    if a == 1.0:
      return e1
    if _is_power(a):
      return jax.lax.integer_pow(e1, int(a))
    return jnp.exp(a * s - abs(a) * spec.shared_bound)
  return {a: power(a) for a in alphas}


# The forward pass works on a tile of columns at a time: partial row
# statistics of the base terms (``base_partials``) merge across tiles
# (``merge_partials``) into the outputs (``finish_partials``); then the
# softplus terms, whose c_a depends on the finished outputs, are summed.
# The dense path is the single-tile case.

def base_partials(spec, s, mask, exps, cols=False):
  """Partial row statistics of the non-softplus terms on one tile.

  On the shared-shift path an lse term's partial is its sum of shifted
  exponentials; otherwise it is the tile's log-sum-exp. Sum terms: the sum.
  ``cols``: also the column statistics (those of the transposed tile, whose
  masks are the transposes): (rows, cols). The summed arrays serve both.
  """
  same = _same_label_mask(spec, mask)
  base, _ = split_terms(spec)
  # Terms with the same summed tile (on a plain tile: the same alpha) share
  # one reduction; an empty mask (``masks.EMPTY``) adds the empty partial.
  keys, summed, index, outs, outs_t = [], [], {}, [], []
  for i in base:
    t = spec.terms[i]
    m = mask(t.mask)
    if m is masks.EMPTY:
      keys.append("empty")
      continue
    weighted = same is not None and t.weight != 1.0
    if t.kind == "lse" and exps is None:
      keys.append("lse")
      outs.append(_lse_partial(t, s, m, same))
      if cols:
        outs_t.append(_lse_partial(t, s.T, None if m is None else m.T,
                                   None if same is None else same.T))
      continue
    key = (t.kind, t.alpha if t.kind == "lse" else None,
           None if m is None else id(m), t.weight if weighted else 1.0)
    if key not in index:
      index[key] = len(summed)
      summed.append(_weighted(t, exps[t.alpha], m, same)
                    if t.kind == "lse" else
                    (s if m is None else jnp.where(m, s, 0.0)))
    keys.append(index[key])

  def merged(axis, lses):
    sums, lses = _row_sums(summed, axis), iter(lses)
    empty = empty_partials(spec, jnp.zeros(s.shape[axis + 1], jnp.float32))
    return [e if k == "empty" else next(lses) if k == "lse" else sums[k]
            for k, e in zip(keys, empty)]
  rows = merged(-1, outs)
  return (rows, merged(0, outs_t)) if cols else rows


def merge_partials(spec, acc, part):
  base, _ = split_terms(spec)
  merged = []
  for i, a, p in zip(base, acc, part):
    if spec.terms[i].kind == "lse" and spec.shared_bound is None:
      merged.append(jnp.logaddexp(a, p))
    else:
      merged.append(a + p)
  return merged


def empty_partials(spec, zeros):
  """Partials of an empty tile; ``zeros`` is a float32[R] template (it
  carries the varying mesh axes of the rows inside ``shard_map``)."""
  base, _ = split_terms(spec)
  out = []
  for i in base:
    fill = (-jnp.inf if spec.terms[i].kind == "lse" and
            spec.shared_bound is None else 0.0)
    out.append(zeros + fill)
  return out


def finish_partials(spec, partials):
  """Base-term outputs from merged partials (lse = -inf on an empty mask)."""
  base, _ = split_terms(spec)
  outs = []
  for i, total in zip(base, partials):
    t = spec.terms[i]
    if t.kind == "lse" and spec.shared_bound is not None:
      total = _log_or_empty(total, abs(t.alpha) * spec.shared_bound)
    outs.append(total)
  return outs


_ROWS = lambda v: v[:, None]  # noqa: E731
_COLS = lambda v: v[None, :]  # noqa: E731


def _softplus_row_sums(spec, s, cs, mask, exps, col_cs=None, *,
                       derivatives):
  """Row sums of softplus(c_a - s_ab) (``derivatives`` entry False) and/or
  of its derivative in c_a, the sigmoid (True), over each softplus term's
  mask, by derivative then term; with ``col_cs`` (the c_b of the columns)
  also the column sums of the same of c_b - s_ab: (rows, cols)."""
  _, soft = split_terms(spec)

  def arrays(cs, side):
    out = []
    for derivative in derivatives:
      for i, c in zip(soft, cs):
        m = mask(spec.terms[i].mask)
        if exps is not None:
          # With r = e^{c - bound} and e = e^{s - bound}: softplus(c - s) =
          # log(1 + r / e) and sigmoid(c - s) = r / (r + e).
          r = side(jnp.exp(c - spec.shared_bound))
          v = (r / (r + exps[1.0]) if derivative else
               jnp.log1p(r / exps[1.0]))
        else:
          v = (jax.nn.sigmoid if derivative else jax.nn.softplus)(
              side(c) - s)
        out.append(v if m is None else jnp.where(m, v, 0.0))
    return out
  rows = _row_sums(arrays(cs, _ROWS))
  if col_cs is None:
    return rows
  return rows, _row_sums(arrays(col_cs, _COLS), axis=0)


# Row sums of softplus(c_a - s_ab), of sigmoid(c_a - s_ab) = d softplus /
# d c_a, and of both (a forward pass keeps the sigmoid sums for the
# backward, which then needs no sweep of its own for them).
softplus_sums = functools.partial(_softplus_row_sums, derivatives=(False,))
sigmoid_sums = functools.partial(_softplus_row_sums, derivatives=(True,))
softplus_and_sigmoid_sums = functools.partial(_softplus_row_sums,
                                              derivatives=(False, True))


def assemble(spec, base_outs, soft_outs):
  """Outputs in the order of ``spec.terms``."""
  base, soft = split_terms(spec)
  outs = [None] * len(spec.terms)
  for i, o in zip(base, base_outs):
    outs[i] = o
  for i, o in zip(soft, soft_outs):
    outs[i] = o
  return tuple(outs)


def _sides(spec, outs, cs, g, cols):
  """(broadcast, outs, cs, g) per side of the cotangent: the rows'
  statistics along rows; on the symmetric path also the same statistics
  along columns (the transposed cotangent: every mask is symmetric); given
  ``cols`` = (outs, cs, g) of a tile's column block, those along columns
  (G_rc + G_cr^T of a tile pair, no transposed tile needed)."""
  sides = [(_ROWS, outs, cs, g)]
  if cols is not None:
    sides.append((_COLS,) + tuple(cols))
  elif spec.symmetric:
    sides.append((_COLS, outs, cs, g))
  return sides


def _live(outs, g, i):
  """(g_i, out_i) zeroed on rows of an empty mask (out -inf): they add
  nothing to the cotangent."""
  finite = jnp.isfinite(outs[i])
  return jnp.where(finite, g[i], 0.0), jnp.where(finite, outs[i], 0.0)


def _split_cotangent(spec, sides, mask):
  """(the cotangent of the sum terms: their g on their masks' entries,
  [(index, term, mask)] of the lse terms with a gradient)."""
  base, _ = split_terms(spec)
  linear, lse_terms = 0.0, []
  for i in base:
    t = spec.terms[i]
    m = mask(t.mask)
    if m is masks.EMPTY:
      continue
    if t.kind == "sum":
      c = sum(side(_live(o, g, i)[0]) for side, o, _, g in sides)
      linear = linear + (c if m is None else jnp.where(m, c, 0.0))
    elif not _is_zero(t.grad_scale):
      lse_terms.append((i, t, m))
  return linear, lse_terms


def _cotangent_shared(spec, s, sides, mask, same, exps, soft_on):
  """``_cotangent`` on the shared-exponential path (one exp per alpha).

  Coefficients of each shared exponential are summed first (cheap row
  vectors and masks), so every exponential is multiplied in once and XLA can
  emit the whole cotangent as one loop.
  """
  _, soft = split_terms(spec)
  coef = {}          # alpha -> coefficient of exps[alpha]
  plain = {}  # alpha -> {side: row/column vector} of the unmasked terms
  linear, lse_terms = _split_cotangent(spec, sides, mask)
  for i, t, m in lse_terms:

    def scale(o, g):
      gi, lse = _live(o, g, i)
      return gi * t.grad_scale * jnp.exp(abs(t.alpha) * spec.shared_bound -
                                         lse)
    if m is None and (same is None or t.weight == 1.0):
      vectors = plain.setdefault(t.alpha, {})
      for side, o, _, g in sides:
        vectors[side] = vectors.get(side, 0.0) + scale(o, g)
      continue
    c = sum(side(scale(o, g)) for side, o, _, g in sides)
    c = _weighted(t, jnp.broadcast_to(c, s.shape), m, same)
    coef[t.alpha] = coef.get(t.alpha, 0.0) + c
  for alpha, vectors in plain.items():
    c = sum(side(v) for side, v in vectors.items())
    coef[alpha] = coef.get(alpha, 0.0) + c
  total = jnp.broadcast_to(jnp.asarray(linear, s.dtype), s.shape)
  for alpha, c in coef.items():
    total = total + c * exps[alpha]
  for j, i in enumerate(soft if soft_on else ()):
    m = mask(spec.terms[i].mask)
    sig = 0.0
    for side, _, cs, g in sides:
      r = jnp.exp(cs[j] - spec.shared_bound)
      # sigmoid(c - s) = r / (r + e^{s - bound}).
      sig = sig + side(g[i] * r) / (side(r) + exps[1.0])
    total = total - (sig if m is None else jnp.where(m, sig, 0.0))
  return total


def _cotangent(spec, s, sides, mask, same, soft_on):
  """d loss / d s as an elementwise function of s (one exp per term).

  ``_cotangent_shared`` is the faster form when all exponents share a
  static shift.
  """
  _, soft = split_terms(spec)
  linear, lse_terms = _split_cotangent(spec, sides, mask)
  total = jnp.broadcast_to(jnp.asarray(linear, s.dtype), s.shape)
  for i, t, m in lse_terms:
    contrib = 0.0
    for side, o, _, g in sides:
      gi, lse = _live(o, g, i)
      contrib = contrib + side(gi * t.grad_scale) * jnp.exp(
          t.alpha * s - side(lse))
    contrib = _weighted(t, contrib, None, same)
    total = total + (contrib if m is None else jnp.where(m, contrib, 0.0))
  for j, i in enumerate(soft if soft_on else ()):
    m = mask(spec.terms[i].mask)
    sig = sum(side(g[i]) * jax.nn.sigmoid(side(cs[j]) - s)
              for side, _, cs, g in sides)
    total = total - (sig if m is None else jnp.where(m, sig, 0.0))
  return total


def softplus_cotangents(spec, outs, aux, g, sig_sums):
  """Folds the softplus terms' dependence on c_a = combine(base, aux) into
  the base terms' cotangents: returns (g with base entries updated, d_aux)."""
  base, soft = split_terms(spec)
  g = list(g)
  if not soft:
    return g, jax.tree.map(jnp.zeros_like, aux)
  _, combine_vjp = jax.vjp(spec.combine, tuple(outs[i] for i in base), aux)
  g_cs = [g[i] * total for i, total in zip(soft, sig_sums)]
  d_base, d_aux = combine_vjp(tuple(g_cs))
  for j, i in enumerate(base):
    g[i] = g[i] + d_base[j]
  return g, d_aux


def cotangent(spec, s, outs, cs, g, mask, exps, soft=True, cols=None):
  """d loss / d s on a tile, given the finished row statistics.

  ``soft=False`` leaves out the softplus terms (a tile with none of their
  mask's entries, where they contribute zero). ``cols``: (outs, cs, g) of
  the tile's columns, to add the transposed tile's cotangent G_cr^T.
  """
  same = _same_label_mask(spec, mask)
  sides = _sides(spec, outs, cs, g, cols)
  if exps is not None:
    return _cotangent_shared(spec, s, sides, mask, same, exps, soft)
  return _cotangent(spec, s, sides, mask, same, soft)


def softplus_offsets(spec, outs, aux):
  """The c_a of the softplus terms (empty tuple if none)."""
  base, soft = split_terms(spec)
  if not soft:
    return ()
  return spec.combine(tuple(outs[i] for i in base), aux)
