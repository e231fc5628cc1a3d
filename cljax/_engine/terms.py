"""Row reductions ("terms") of the logits: their partial statistics on a
tile, how tiles merge, and the elementwise cotangent d loss / d s.

Every loss is a function of a few reductions over each anchor's row of the
logits s = <q_a, k_b>/tau, each restricted to a mask. The dense engine
(``dense``) is the single-tile case of these functions; the tiled engine
(``tiled``) sweeps them over tiles.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from cljax import _checks
from cljax._engine import masks


# exp(-60) is far above float32's smallest normal number (~exp(-87)).
_MAX_FIXED_SHIFT_RANGE = 60.0


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
    _checks.check_choice(self.kind, "kind", ("lse", "sum", "softplus"))
    _checks.check_choice(self.mask, "mask", masks.MASKS)
    if isinstance(self.alpha, AlphaSlot):
      # A traced alpha: no static shift, and its gradient scale is traced
      # with it unless given.
      grad_scale = self.alpha if self.grad_scale is None else float(
          self.grad_scale)
      return self._replace(grad_scale=grad_scale, weight=float(self.weight),
                           bound=None)
    bound = self.bound
    if bound is not None and 2 * abs(self.alpha) * bound > (
        _MAX_FIXED_SHIFT_RANGE):
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


def common_bound(terms, bound):
  """The common static bound if every exponential of the terms can use it.

  Then each distinct alpha needs one exp(alpha s - |alpha| bound) per entry,
  shared by every term (and softplus(c - s) = log1p(exp(c - bound) / E_1)),
  """
  if bound is None:
    return None
  for t in terms:
    if t.kind == "lse" and t.bound != bound:
      return None
  if 2 * bound > _MAX_FIXED_SHIFT_RANGE:
    return None
  return bound


def _row_sums(arrays):
  """[A, V] arrays -> their row sums.

  Separate reductions, not one variadic reduce: XLA:CPU runs a variadic
  reduce over [V, V] operands about twice as slowly as the separate ones.
  """
  return [jnp.sum(a, axis=-1) for a in arrays]


def _weighted(term, e, mask, same):
  if mask is not None:
    e = jnp.where(mask, e, 0.0)
  if term.weight != 1.0:
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
    return mask("same_label")
  return None


def split_terms(spec):
  base = [i for i, t in enumerate(spec.terms) if t.kind != "softplus"]
  soft = [i for i, t in enumerate(spec.terms) if t.kind == "softplus"]
  return base, soft


# Integer alphas up to this use powers of exp(s - bound): a few multiplies
# per entry instead of one more exp (alpha = 1 + beta for integer beta).
_MAX_POWER = 16


def shared_exps(spec, s):
  """exp(alpha s - |alpha| bound) per distinct alpha (1.0 always included).

  For a positive integer alpha this is exactly exp(s - bound)^alpha, built by
  ``lax.integer_pow`` from the one exp (fewer passes over the tile).
  """
  alphas = {1.0} | {t.alpha for t in spec.terms if t.kind == "lse"}
  e1 = jnp.exp(s - spec.shared_bound)

  def power(a):
    if a == 1.0:
      return e1
    if 0 < a <= _MAX_POWER and float(a).is_integer():
      return jax.lax.integer_pow(e1, int(a))
    return jnp.exp(a * s - abs(a) * spec.shared_bound)
  return {a: power(a) for a in alphas}


# The forward pass works on a tile of columns at a time: partial row
# statistics of the base terms (``base_partials``) merge across tiles
# (``merge_partials``) into the outputs (``finish_partials``); then the
# softplus terms, whose c_a depends on the finished outputs, are summed.
# The dense path is the single-tile case.

def base_partials(spec, s, mask, exps):
  """Partial row statistics of the non-softplus terms on one tile.

  On the shared-shift path an lse term's partial is its sum of shifted
  exponentials; otherwise it is the tile's log-sum-exp. Sum terms: the sum.
  """
  same = _same_label_mask(spec, mask)
  base, _ = split_terms(spec)
  arrays, outs = [], []
  for i in base:
    t = spec.terms[i]
    m = mask(t.mask)
    if t.kind == "lse" and exps is not None:
      arrays.append(_weighted(t, exps[t.alpha], m, same))
    elif t.kind == "lse":
      arrays.append(None)
      outs.append(_lse_partial(t, s, m, same))
    else:
      arrays.append(s if m is None else jnp.where(m, s, 0.0))
  sums = iter(_row_sums([a for a in arrays if a is not None]))
  lses = iter(outs)
  return [next(lses) if a is None else next(sums) for a in arrays]


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


def _softplus_row_sums(spec, s, cs, mask, exps, derivative):
  """Row sums of softplus(c_a - s_ab) (or its derivative in c_a, the
  sigmoid) over each softplus term's mask."""
  _, soft = split_terms(spec)
  arrays = []
  for i, c in zip(soft, cs):
    m = mask(spec.terms[i].mask)
    if exps is not None:
      # With r = e^{c - bound} and e = e^{s - bound}: softplus(c - s) =
      # log(1 + r / e) and sigmoid(c - s) = r / (r + e).
      r = jnp.exp(c - spec.shared_bound)[:, None]
      v = r / (r + exps[1.0]) if derivative else jnp.log1p(r / exps[1.0])
    else:
      v = (jax.nn.sigmoid if derivative else jax.nn.softplus)(c[:, None] - s)
    arrays.append(v if m is None else jnp.where(m, v, 0.0))
  return _row_sums(arrays)


def softplus_sums(spec, s, cs, mask, exps):
  """Row sums of softplus(c_a - s_ab) over each softplus term's mask."""
  return _softplus_row_sums(spec, s, cs, mask, exps, derivative=False)


def sigmoid_sums(spec, s, cs, mask, exps):
  """Row sums of sigmoid(c_a - s_ab) = d softplus / d c_a per softplus term."""
  return _softplus_row_sums(spec, s, cs, mask, exps, derivative=True)


def assemble(spec, base_outs, soft_outs):
  """Outputs in the order of ``spec.terms``."""
  base, soft = split_terms(spec)
  outs = [None] * len(spec.terms)
  for i, o in zip(base, base_outs):
    outs[i] = o
  for i, o in zip(soft, soft_outs):
    outs[i] = o
  return tuple(outs)


def _axes(spec):
  """Broadcasts of a row statistic: along rows, and on the symmetric path
  also along columns (the transposed cotangent)."""
  rows = lambda v: v[:, None]  # noqa: E731
  cols = lambda v: v[None, :]  # noqa: E731
  return (rows, cols) if spec.symmetric else (rows,)


def _cotangent_shared(spec, s, outs, cs, g, mask, same, exps, soft_on):
  """``_cotangent`` on the shared-exponential path (one exp per alpha).

  Coefficients of each shared exponential are summed first (cheap row
  vectors and masks), so every exponential is multiplied in once and XLA can
  emit the whole cotangent as one loop.
  """
  axes = _axes(spec)
  base, soft = split_terms(spec)
  coef = {}          # alpha -> coefficient of exps[alpha]
  linear = 0.0
  for i in base:
    t = spec.terms[i]
    finite = jnp.isfinite(outs[i])
    gi = jnp.where(finite, g[i], 0.0)
    m = mask(t.mask)
    if t.kind == "sum":
      c = sum(stat(gi) for stat in axes)
      linear = linear + (c if m is None else jnp.where(m, c, 0.0))
      continue
    if _is_zero(t.grad_scale):
      continue
    lse = jnp.where(finite, outs[i], 0.0)
    scale = gi * t.grad_scale * jnp.exp(abs(t.alpha) * spec.shared_bound - lse)
    c = sum(stat(scale) for stat in axes)
    c = _weighted(t, jnp.broadcast_to(c, s.shape), m, same)
    coef[t.alpha] = coef.get(t.alpha, 0.0) + c
  total = jnp.broadcast_to(jnp.asarray(linear, s.dtype), s.shape)
  for alpha, c in coef.items():
    total = total + c * exps[alpha]
  for i, c in zip(soft if soft_on else (), cs):
    m = mask(spec.terms[i].mask)
    r = jnp.exp(c - spec.shared_bound)
    # sigmoid(c - s) = r / (r + e^{s - bound}).
    sig = sum(stat(g[i] * r) / (stat(r) + exps[1.0]) for stat in axes)
    total = total - (sig if m is None else jnp.where(m, sig, 0.0))
  return total


def _cotangent(spec, s, outs, cs, g, mask, same, soft_on):
  """d loss / d s as an elementwise function of s (one exp per term).

  On the symmetric path this is G + G^T: every mask is symmetric, so the
  transpose only swaps which row statistics (rows or columns) each term
  uses. ``_cotangent_shared`` is the faster form when all exponents share a
  static shift.
  """
  axes = _axes(spec)
  base, soft = split_terms(spec)
  total = jnp.zeros(s.shape, s.dtype)
  for i in base:
    t = spec.terms[i]
    finite = jnp.isfinite(outs[i])
    gi = jnp.where(finite, g[i], 0.0)
    m = mask(t.mask)
    if t.kind == "sum":
      contrib = jnp.broadcast_to(sum(stat(gi) for stat in axes), s.shape)
    elif _is_zero(t.grad_scale):
      continue
    else:
      lse = jnp.where(finite, outs[i], 0.0)
      contrib = _weighted(
          t, sum(stat(gi * t.grad_scale) * jnp.exp(t.alpha * s - stat(lse))
                 for stat in axes), None, same)
    total = total + (contrib if m is None else jnp.where(m, contrib, 0.0))
  for i, c in zip(soft if soft_on else (), cs):
    m = mask(spec.terms[i].mask)
    sig = sum(stat(g[i]) * jax.nn.sigmoid(stat(c) - s) for stat in axes)
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


def cotangent(spec, s, outs, cs, g, mask, exps, soft=True):
  """d loss / d s on a tile, given the finished row statistics.

  ``soft=False`` leaves out the softplus terms (a tile with none of their
  mask's entries, where they contribute zero).
  """
  same = _same_label_mask(spec, mask)
  if exps is not None:
    return _cotangent_shared(spec, s, outs, cs, g, mask, same, exps, soft)
  return _cotangent(spec, s, outs, cs, g, mask, same, soft)


def softplus_offsets(spec, outs, aux):
  """The c_a of the softplus terms (empty tuple if none)."""
  base, soft = split_terms(spec)
  if not soft:
    return ()
  return spec.combine(tuple(outs[i] for i in base), aux)
