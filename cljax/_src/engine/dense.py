"""The dense engine: the row reductions from one [A, V] logits matrix with a
hand-written VJP.

  * the residual is the logits matrix only (no exponentials or masks are
    written in the forward pass);
  * the backward builds the cotangent of s in one fused elementwise pass;
  * when the anchors are the keys (one device, unsharded batch), s is
    symmetric and so is every mask, so the transposed cotangent is also
    elementwise in s: d x = (G + G^T) x / tau is one pass and one
    row-major product, instead of the transposed product G^T q, which
    XLA:CPU runs at half speed.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from cljax._src.engine import masks
from cljax._src.engine import terms


def _forward(spec, s, aux, ids):
  spec = terms.bind_alphas(spec, aux)
  mask = masks.masks_for(spec, ids, s.shape[-1])
  exps = terms.shared_exps(spec, s) if spec.shared_bound is not None else None
  base_outs = terms.finish_partials(spec, terms.base_partials(spec, s, mask, exps))
  _, soft = terms.split_terms(spec)
  soft_outs = []
  if soft:
    cs = spec.combine(tuple(base_outs), aux)
    soft_outs = terms.softplus_sums(spec, s, cs, mask, exps)
  return terms.assemble(spec, base_outs, soft_outs)


@functools.partial(jax.custom_vjp, nondiff_argnums=(0,))
def reductions(spec, q, k, aux, ids):
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


def _reductions_bwd(spec, residuals, g):
  q, k, s, outs, aux, ids = residuals
  spec = terms.bind_alphas(spec, aux)
  mask = masks.masks_for(spec, ids, s.shape[-1])
  exps = terms.shared_exps(spec, s) if spec.shared_bound is not None else None
  cs = terms.softplus_offsets(spec, outs, aux)
  sig = terms.sigmoid_sums(spec, s, cs, mask, exps) if cs else []
  g, d_aux = terms.softplus_cotangents(spec, outs, aux, g, sig)
  ds = terms.cotangent(spec, s, outs, cs, g, mask, exps)
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


reductions.defvjp(_reductions_fwd, _reductions_bwd)
