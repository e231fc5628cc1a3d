"""Block-size policy and the entry point: ``row_reductions`` picks the dense or
the tiled engine and the symmetric path."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from cljax._src.engine import dense
from cljax._src.engine import masks
from cljax._src.engine import terms as terms_lib
from cljax._src.engine import tiled
from cljax._src.engine.views import Views


def _common_bound(terms, bound):
  """The common static bound if every exponential of the terms can use it.

  Then each distinct alpha needs one exp(alpha s - |alpha| bound) per entry,
  shared by every term (and softplus(c - s) = log1p(exp(c - bound) / E_1)),
  """
  if bound is None:
    return None
  for t in terms:
    if t.kind == "lse" and t.bound != bound:
      return None
  if 2 * bound > terms_lib.MAX_FIXED_SHIFT_RANGE:
    return None
  return bound


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
# Losses with many terms keep a tile-sized array per term live: on CPU their
# tiles are halved so the working set stays in L2 (measured at 8192 views:
# B = 512 is 1.3x faster than 256 for NSCL, SupCon and HSCL and was 1.3x
# slower for all_losses with every term on every tile). The count is of the
# arrays a typical tile keeps (``_tile_arrays``): on the symmetric path with
# plain tiles (``masks.plain_tiles``) all_losses counts 4, and B = 512 is
# 1.07-1.4x faster than 256 for it (8192 views, 2 busy cores).
MANY_TERMS = 4


def _tile_arrays(terms, symmetric, has_labels) -> int:
  """How many tile-sized arrays most tiles keep live.

  On the symmetric tiled path, when the views are label-sorted (softplus
  terms with labels) or no term has a label mask, most tiles are plain:
  there the softplus terms add nothing and the other terms share one array
  per exponential (alpha), one for the sums of logits. Elsewhere: one per
  term.
  """
  label_masks = any(t.mask in masks.LABEL_MASKS or t.weight != 1.0
                    for t in terms)
  soft = any(t.kind == "softplus" for t in terms)
  if symmetric and (not label_masks or (soft and has_labels)):
    return len({(t.kind, t.alpha) for t in terms if t.kind != "softplus"})
  return len(terms)


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
      backend, dense below), "dense" (one [A, V] matrix), or an int: the tiled engine
      (``tiled``) with tiles of that many rows and columns.

  Returns:
    One float32[A] array per term, in order.
  """
  terms, alphas = terms_lib.slot_traced_alphas(
      [t if isinstance(t, terms_lib.Term) else terms_lib.Term(*t) for t in terms])
  terms = tuple(t.checked() for t in terms)
  if alphas:
    # Traced alphas travel as rows of aux (derived from the anchors' ids, so
    # they carry their sharding), blocked with the rows by the tiled engine.
    rows = jnp.zeros_like(views.anchor_index, jnp.float32)[:, None]
    aux = (rows + jnp.stack(alphas)[None, :], aux)
    if combine is not None:
      combine = functools.partial(terms_lib.without_alphas, combine)
  num_rows = views.anchor_index.shape[0]
  plain_path = (views.symmetric and isinstance(temperature, (int, float)) and
                not alphas)
  block = resolve_block_size(
      block_size, num_rows, views.keys.shape[0],
      _tile_arrays(terms, plain_path, views.key_label is not None))
  # The tiled engine always takes the symmetric path when it can: there it
  # halves the products (the dense engine trades them for elementwise work).
  # A traced alpha is per row, so it never takes it.
  symmetric = (views.symmetric and isinstance(temperature, (int, float)) and
               not alphas and (block is not None or _symmetric_pays(terms)))
  bound = next((t.bound for t in terms if t.kind == "lse"), None)
  spec = terms_lib.Spec(terms, combine, views.num_views, symmetric,
               1.0 / float(temperature) if symmetric else 1.0,
               _common_bound(terms, bound))
  if symmetric:
    q = views.keys
  else:
    q = views.flat_anchors
    q = (q.astype(jnp.float32) / temperature).astype(q.dtype)
  if block is not None:
    return tiled.reductions(spec, q, views.keys, aux, masks.mask_ids(views), block)
  return dense.reductions(spec, q, views.keys, aux, masks.mask_ids(views))
