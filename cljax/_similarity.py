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

import functools
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


def global_sum(x: jax.Array, axis_name: str | None) -> jax.Array:
  """Sums a per-device partial loss over ``axis_name`` (identity if None).

  A plain ``psum``, whose transpose JAX defines for every mapped path: the
  per-device gradients then follow the one data-parallel rule of
  ``cljax.losses`` (``pmean`` the per-device parameter gradients; inside
  ``jax.pmap`` the per-device gradient w.r.t. the local embeddings is
  n_devices times their slice of the global one, which the ``pmean``
  divides out).
  """
  if axis_name is None:
    return x
  return jax.lax.psum(x, axis_name)


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
  _checks.check_rank(z, 3, name, "[N, K, D] (samples, views, dim)")
  _checks.check_float(z, name)
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
    _checks.check_labels(labels, n, "labels")
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

# exp(-60) is far above float32's smallest normal number (~exp(-87)).
_MAX_FIXED_SHIFT_RANGE = 60.0


class MaskIds(NamedTuple):
  """The id vectors that define every mask (a pytree of arrays)."""
  row_view: jax.Array               # int[A] global view index of each anchor
  row_label: jax.Array | None       # int[A]
  col_label: jax.Array | None       # int[V]


def mask_ids(views: Views) -> MaskIds:
  return MaskIds(views.anchor_index, views.anchor_label, views.key_label)


def build_mask(kind: str, num_views: int, ids: MaskIds, num_cols: int,
               col_start=0, valid_cols: int | None = None) -> jax.Array | None:
  """bool[A, num_cols] mask of the given kind (None for "all" on full tiles).

  Each mask is symmetric on the full [V, V] matrix. A tile of columns
  ``col_start + [0, num_cols)`` passes its offset (and ``ids.col_label`` of
  those columns); ``valid_cols`` (static) excludes padding columns >= it.
  """
  col = jax.lax.broadcasted_iota(jnp.int32, (1, num_cols), 1) + col_start
  mask = _build_mask(kind, num_views, ids, col)
  if valid_cols is None:
    return mask
  inside = col < valid_cols
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
    _checks.check_choice(self.mask, "mask", MASKS)
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


def _slot_traced_alphas(terms):
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


def _without_alphas(combine, outs, aux):
  return combine(outs, aux[1])


def _is_zero(x):
  return isinstance(x, float) and x == 0.0


class _Spec(NamedTuple):
  terms: tuple
  combine: object          # static callable or None
  num_views: int
  symmetric: bool
  inv_temperature: float   # used by the symmetric path only
  shared_bound: float | None  # every exponent shifted by a constant


def _shared_bound(terms, bound):
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


def nonempty(lse: jax.Array) -> jax.Array:
  """bool: where a log-sum-exp is over a nonempty mask (NaN counts as
  nonempty, so a NaN input propagates to the loss instead of dropping the
  anchor)."""
  return ~jnp.isneginf(lse)


def _masks_for(spec, ids, num_cols, col_start=0, valid_cols=None):
  cache = {}

  def get(kind):
    if kind not in cache:
      cache[kind] = build_mask(kind, spec.num_views, ids, num_cols,
                               col_start, valid_cols)
    return cache[kind]
  return get


def _same_label_mask(spec, mask):
  if any(t.weight != 1.0 for t in spec.terms):
    return mask("same_label")
  return None


def _split_terms(spec):
  base = [i for i, t in enumerate(spec.terms) if t.kind != "softplus"]
  soft = [i for i, t in enumerate(spec.terms) if t.kind == "softplus"]
  return base, soft


def _shared_exps(spec, s):
  """exp(alpha s - |alpha| bound) per distinct alpha (1.0 always included)."""
  alphas = {1.0} | {t.alpha for t in spec.terms if t.kind == "lse"}
  return {a: jnp.exp(a * s - abs(a) * spec.shared_bound) for a in alphas}


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
  base, _ = _split_terms(spec)
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
  base, _ = _split_terms(spec)
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
  base, _ = _split_terms(spec)
  out = []
  for i in base:
    fill = (-jnp.inf if spec.terms[i].kind == "lse" and
            spec.shared_bound is None else 0.0)
    out.append(zeros + fill)
  return out


def finish_partials(spec, partials):
  """Base-term outputs from merged partials (lse = -inf on an empty mask)."""
  base, _ = _split_terms(spec)
  outs = []
  for i, total in zip(base, partials):
    t = spec.terms[i]
    if t.kind == "lse" and spec.shared_bound is not None:
      total = _log_or_empty(total, abs(t.alpha) * spec.shared_bound)
    outs.append(total)
  return outs


def softplus_sums(spec, s, cs, mask, exps):
  """Row sums of softplus(c_a - s_ab) over each softplus term's mask."""
  _, soft = _split_terms(spec)
  arrays = []
  for i, c in zip(soft, cs):
    m = mask(spec.terms[i].mask)
    if exps is not None:
      # softplus(c - s) = log(1 + e^{c - bound} / e^{s - bound}).
      r = jnp.exp(c - spec.shared_bound)[:, None]
      terms = jnp.log1p(r / exps[1.0])
    else:
      terms = jax.nn.softplus(c[:, None] - s)
    arrays.append(terms if m is None else jnp.where(m, terms, 0.0))
  return _row_sums(arrays)


def sigmoid_sums(spec, s, cs, mask, exps):
  """Row sums of sigmoid(c_a - s_ab) = d softplus / d c_a per softplus term."""
  _, soft = _split_terms(spec)
  sigs = []
  for i, c in zip(soft, cs):
    m = mask(spec.terms[i].mask)
    if exps is not None:
      r = jnp.exp(c - spec.shared_bound)[:, None]
      sig = r / (r + exps[1.0])
    else:
      sig = jax.nn.sigmoid(c[:, None] - s)
    sigs.append(sig if m is None else jnp.where(m, sig, 0.0))
  return _row_sums(sigs)


def assemble(spec, base_outs, soft_outs):
  """Outputs in the order of ``spec.terms``."""
  base, soft = _split_terms(spec)
  outs = [None] * len(spec.terms)
  for i, o in zip(base, base_outs):
    outs[i] = o
  for i, o in zip(soft, soft_outs):
    outs[i] = o
  return tuple(outs)


def _forward(spec, s, aux, ids):
  spec = bind_alphas(spec, aux)
  mask = _masks_for(spec, ids, s.shape[-1])
  exps = _shared_exps(spec, s) if spec.shared_bound is not None else None
  base_outs = finish_partials(spec, base_partials(spec, s, mask, exps))
  _, soft = _split_terms(spec)
  soft_outs = []
  if soft:
    cs = spec.combine(tuple(base_outs), aux)
    soft_outs = softplus_sums(spec, s, cs, mask, exps)
  return assemble(spec, base_outs, soft_outs)


def _axes(spec):
  """Broadcasts of a row statistic: along rows, and on the symmetric path
  also along columns (the transposed cotangent)."""
  rows = lambda v: v[:, None]  # noqa: E731
  cols = lambda v: v[None, :]  # noqa: E731
  return (rows, cols) if spec.symmetric else (rows,)


def _cotangent_shared(spec, s, outs, cs, g, mask, same, exps):
  """``_cotangent`` on the shared-exponential path (one exp per alpha).

  Coefficients of each shared exponential are summed first (cheap row
  vectors and masks), so every exponential is multiplied in once and XLA can
  emit the whole cotangent as one loop.
  """
  axes = _axes(spec)
  base, soft = _split_terms(spec)
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
  for i, c in zip(soft, cs):
    m = mask(spec.terms[i].mask)
    r = jnp.exp(c - spec.shared_bound)
    # sigmoid(c - s) = r / (r + e^{s - bound}).
    sig = sum(stat(g[i] * r) / (stat(r) + exps[1.0]) for stat in axes)
    total = total - (sig if m is None else jnp.where(m, sig, 0.0))
  return total


def _cotangent(spec, s, outs, cs, g, mask, same):
  """d loss / d s as an elementwise function of s (one exp per term).

  On the symmetric path this is G + G^T: every mask is symmetric, so the
  transpose only swaps which row statistics (rows or columns) each term
  uses. ``_cotangent_shared`` is the faster form when all exponents share a
  static shift.
  """
  axes = _axes(spec)
  base, soft = _split_terms(spec)
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
  for i, c in zip(soft, cs):
    m = mask(spec.terms[i].mask)
    sig = sum(stat(g[i]) * jax.nn.sigmoid(stat(c) - s) for stat in axes)
    total = total - (sig if m is None else jnp.where(m, sig, 0.0))
  return total


@functools.partial(jax.custom_vjp, nondiff_argnums=(0,))
def _reductions(spec, q, k, aux, ids):
  s = _product(spec, q, k)
  return _forward(spec, s, aux, ids)


def _product(spec, q, k):
  s = jnp.matmul(q, k.T, preferred_element_type=jnp.float32)
  if spec.symmetric:
    # Scaled after the product, in float32: s stays exactly symmetric for
    # bfloat16 inputs too (x/tau rounded to bfloat16 would not be).
    s = s * spec.inv_temperature
  return s


def _reductions_fwd(spec, q, k, aux, ids):
  s = _product(spec, q, k)
  outs = _forward(spec, s, aux, ids)
  return outs, (q, k, s, outs, aux, ids)


def softplus_cotangents(spec, outs, aux, g, sig_sums):
  """Folds the softplus terms' dependence on c_a = combine(base, aux) into
  the base terms' cotangents: returns (g with base entries updated, d_aux)."""
  base, soft = _split_terms(spec)
  g = list(g)
  if not soft:
    return g, jax.tree.map(jnp.zeros_like, aux)
  _, combine_vjp = jax.vjp(spec.combine, tuple(outs[i] for i in base), aux)
  g_cs = [g[i] * total for i, total in zip(soft, sig_sums)]
  d_base, d_aux = combine_vjp(tuple(g_cs))
  for j, i in enumerate(base):
    g[i] = g[i] + d_base[j]
  return g, d_aux


def cotangent(spec, s, outs, cs, g, mask, exps):
  """d loss / d s on a tile, given the finished row statistics."""
  same = _same_label_mask(spec, mask)
  if exps is not None:
    return _cotangent_shared(spec, s, outs, cs, g, mask, same, exps)
  return _cotangent(spec, s, outs, cs, g, mask, same)


def softplus_offsets(spec, outs, aux):
  """The c_a of the softplus terms (empty tuple if none)."""
  base, soft = _split_terms(spec)
  if not soft:
    return ()
  return spec.combine(tuple(outs[i] for i in base), aux)


def _reductions_bwd(spec, residuals, g):
  q, k, s, outs, aux, ids = residuals
  spec = bind_alphas(spec, aux)
  mask = _masks_for(spec, ids, s.shape[-1])
  exps = _shared_exps(spec, s) if spec.shared_bound is not None else None
  cs = softplus_offsets(spec, outs, aux)
  sig = sigmoid_sums(spec, s, cs, mask, exps) if cs else []
  g, d_aux = softplus_cotangents(spec, outs, aux, g, sig)
  ds = cotangent(spec, s, outs, cs, g, mask, exps)
  no_ids = jax.tree.map(lambda x: None, ids)
  if spec.symmetric:
    # q is the anchors x themselves: dx = (G + G^T) x / tau.
    dx = jnp.matmul(ds.astype(k.dtype), k,
                    preferred_element_type=jnp.float32) * spec.inv_temperature
    return dx.astype(q.dtype), jnp.zeros_like(k), d_aux, no_ids
  dq = jnp.matmul(ds.astype(k.dtype), k, preferred_element_type=jnp.float32)
  # On an Explicit mesh the anchors are sharded and the keys replicated: the
  # contraction over anchors is a sum over devices, whose result takes the
  # keys' (replicated) sharding.
  k_sharding = jax.typeof(k).sharding
  out_sharding = None
  if not getattr(getattr(k_sharding, "mesh", None), "empty", True):
    out_sharding = k_sharding
  dk = jnp.matmul(ds.T.astype(q.dtype), q, preferred_element_type=jnp.float32,
                  out_sharding=out_sharding)
  return dq.astype(q.dtype), dk.astype(k.dtype), d_aux, no_ids


_reductions.defvjp(_reductions_fwd, _reductions_bwd)


def _symmetric_pays(terms) -> bool:
  """Whether recomputing the transposed cotangent beats the transposed product.

  The symmetric path evaluates every term's cotangent twice (row and column
  statistics); that is cheaper than XLA:CPU's transposed product only for a
  couple of exponential terms (measured at 8192 views: NT-Xent 0.7x the
  plain floor symmetric; all_losses 2x faster on the general path).
  """
  return len(terms) <= 2 and all(t.kind != "softplus" for t in terms)


# Above this many logits (A x V) the tiled engine is the default, with
# tiles of this size, per backend. On CPU 4096^2 float32 logits (64 MiB) are
# far past the cache and 256 x 256 tiles (256 KiB) sit in L2. On accelerators
# the dense matrix is fast until memory runs short and each tile costs kernel
# launches, so the threshold and the tiles are larger (not yet tuned on GPU).
TILED_MIN_ENTRIES = {"cpu": 4096 * 4096, "other": 16384 * 16384}
DEFAULT_BLOCK_SIZE = {"cpu": 512, "other": 2048}
# Losses with many terms (all_losses) keep a tile-sized array per term live:
# on CPU their tiles are halved so the working set stays in L2 (measured at
# 8192 views: B = 512 is 1.3x faster than 256 for NSCL, SupCon and HSCL and
# 1.3x slower for all_losses).
MANY_TERMS = 4


def _for_backend(table):
  # Looked up at trace time: reading the backend at import would initialise
  # JAX before jax.distributed.initialize can run.
  return table.get(jax.default_backend(), table["other"])


def check_block_size(block_size) -> None:
  """Validates the ``block_size`` argument of the losses."""
  if block_size in ("auto", "dense"):
    return
  if (isinstance(block_size, bool) or not isinstance(block_size, int) or
      block_size < 1):
    raise ValueError(
        f"`block_size` must be 'auto', 'dense' or a positive int (the rows "
        f"and columns of one tile of the logits); got {block_size!r}.")


def resolve_block_size(block_size, num_rows: int, num_cols: int,
                       num_terms: int = 1):
  """The tile size to use, or None for the dense engine."""
  check_block_size(block_size)
  if block_size == "dense":
    return None
  if block_size == "auto":
    if num_rows * num_cols < _for_backend(TILED_MIN_ENTRIES):
      return None
    block = _for_backend(DEFAULT_BLOCK_SIZE)
    if num_terms > MANY_TERMS and jax.default_backend() == "cpu":
      block //= 2
    return block
  return block_size


def row_reductions(views: Views, temperature, terms, *, combine=None,
                   aux=(), block_size="auto") -> tuple[jax.Array, ...]:
  """The row reductions ``terms`` of the logits s = <q_a, k_b>/tau.

  Args:
    views: from ``prepare``.
    temperature: tau (a Python float enables the symmetric fast path).
    terms: sequence of ``Term``; softplus terms come last in the result's
      data flow: their c_a are ``combine(base_outputs, aux)``, a tuple with
      one float[A] per softplus term, where base_outputs are the outputs of
      the other terms in order.
    combine: a function (hashable, e.g. a module-level function or a
      ``functools.partial`` of one) used when there are softplus terms.
    aux: a pytree of float[A] arrays passed to ``combine`` (differentiable).
    block_size: "auto" (tiled above ``TILED_MIN_ENTRIES`` logits for the
      backend, dense below), "dense" (one [A, V] matrix), or an int: the tiled engine of
      ``cljax._tiled`` with tiles of that many rows and columns.

  Returns:
    One float32[A] array per term, in order.
  """
  terms, alphas = _slot_traced_alphas(
      [t if isinstance(t, Term) else Term(*t) for t in terms])
  terms = tuple(t.checked() for t in terms)
  if alphas:
    # Traced alphas travel as rows of aux (derived from the anchors' ids, so
    # they carry their sharding), blocked with the rows by the tiled engine.
    rows = jnp.zeros_like(views.anchor_index, jnp.float32)[:, None]
    aux = (rows + jnp.stack(alphas)[None, :], aux)
    if combine is not None:
      combine = functools.partial(_without_alphas, combine)
  num_rows = views.anchor_index.shape[0]
  block = resolve_block_size(block_size, num_rows, views.keys.shape[0],
                             len(terms))
  # The tiled engine always takes the symmetric path when it can: there it
  # halves the products (the dense engine trades them for elementwise work).
  # A traced alpha is per row, so it never takes it.
  symmetric = (views.symmetric and isinstance(temperature, (int, float)) and
               not alphas and (block is not None or _symmetric_pays(terms)))
  bound = next((t.bound for t in terms if t.kind == "lse"), None)
  spec = _Spec(terms, combine, views.num_views, symmetric,
               1.0 / float(temperature) if symmetric else 1.0,
               _shared_bound(terms, bound))
  if symmetric:
    q = views.keys
  else:
    q = views.flat_anchors
    q = (q.astype(jnp.float32) / temperature).astype(q.dtype)
  if block is not None:
    from cljax import _tiled  # pylint: disable=g-import-not-at-top
    return _tiled.reductions(spec, q, views.keys, aux, mask_ids(views), block)
  return _reductions(spec, q, views.keys, aux, mask_ids(views))


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


def logits(views: Views, temperature) -> jax.Array:
  """float32[A, V] logits <q_a, k_b>/tau by plain autodiff (for sampling)."""
  q = views.flat_anchors
  q = (q.astype(jnp.float32) / temperature).astype(q.dtype)
  return jnp.matmul(q, views.keys.T, preferred_element_type=jnp.float32)


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
