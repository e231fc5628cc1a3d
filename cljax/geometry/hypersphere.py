"""Alignment and uniformity on the hypersphere (Wang & Isola, ICML 2020)."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from cljax._src import checks
from cljax._src import class_stats as cs
from cljax.geometry import _dispatch as dp
from cljax.geometry import _formulas as fm


def _alignment_local(z, alpha, *, axis_name):
  k = z.shape[1]
  d2 = jnp.sum(jnp.square(z[:, :, None, :] - z[:, None, :, :]), axis=-1)
  off = ~jnp.eye(k, dtype=bool)
  # Double where: d2**(alpha/2) has an infinite derivative at d2 = 0 for
  # alpha < 2, and the l == l' diagonal is exactly 0. NaN distances pass.
  pos = off & ~(d2 <= 0)
  val = jnp.where(pos, jnp.where(pos, d2, 1.0) ** (alpha / 2.0), 0.0)
  n = dp.global_count(z.shape[0], axis_name)
  return cs.psum(jnp.sum(val), axis_name) / (n * k * (k - 1))


def alignment(z: ArrayLike, *, alpha: float = 2.0,
              axis_name: Any = None) -> jax.Array:
  """Alignment: mean over positive pairs of ``||z_il - z_il'||^alpha``.

  Averaged over samples i and ordered pairs of distinct views l != l'.

  Args:
    z: float[N, K, D] features of K >= 2 views per sample (typically
      L2-normalised).
    alpha: exponent (Wang & Isola use 2).
    axis_name: mapped axis (per-device call on sample shards).

  Returns:
    float32 scalar >= 0; NaN for NaN/Inf input.

  Raises:
    ValueError: on a wrong rank, K < 2 or ``alpha <= 0``.

  References:
    Wang & Isola, ICML 2020, Eq. 4 (L_align).

  Examples:
    >>> z = jnp.array([[[1., 0.], [0., 1.]]])
    >>> round(float(alignment(z)), 4)
    2.0
  """
  x = dp.prepare_features(z, axis_name, "z", 3, "float[N, K, D]")
  if x.shape[1] < 2:
    raise ValueError(
        f"`z` must hold K >= 2 views per sample (layout float[N, K, D]); got "
        f"shape {tuple(x.shape)}.")
  checks.check_positive(alpha, "alpha")
  return dp.run(_alignment_local, (x,), (alpha,), axis_name=axis_name)


def _block_lse(x, sq, y, t, own):
  # Gram identity (not differences): N x N x D would not fit for real batch
  # sizes, and the round-off of order eps * ||z||^2 is harmless inside exp.
  d2 = jnp.maximum(sq[:, None] + jnp.sum(y * y, axis=-1)[None, :]
                   - 2.0 * fm.matmul(x, y.T, jnp), 0.0)
  where = ~(own & jnp.eye(x.shape[0], y.shape[0], dtype=bool))
  return jax.nn.logsumexp(-t * d2, where=where)


def _uniformity_local(x, t, *, axis_name):
  sq = jnp.sum(x * x, axis=-1)
  lse = _block_lse(x, sq, x, t, True)
  n = dp.global_count(x.shape[0], axis_name)
  if axis_name is not None:
    # Ring: each device meets every other shard once through ppermute, so
    # memory stays O(N/devices D) and nothing is gathered.
    size = jax.lax.axis_size(axis_name)
    perm = [(i, (i + 1) % size) for i in range(size)]

    def step(_, carry):
      y, acc = carry
      y = jax.lax.ppermute(y, axis_name, perm)
      return y, jnp.logaddexp(acc, _block_lse(x, sq, y, t, False))

    _, lse = jax.lax.fori_loop(0, size - 1, step, (x, lse))
    top = jax.lax.stop_gradient(jax.lax.pmax(lse, axis_name))
    top = jnp.where(jnp.isfinite(top), top, 0.0)
    lse = top + jnp.log(jax.lax.psum(jnp.exp(lse - top), axis_name))
  finite = jnp.isfinite(cs.psum(jnp.sum(x), axis_name))
  return fm.nan_unless(finite, lse - jnp.log(n * (n - 1)), jnp)


def uniformity(features: ArrayLike, *, t: float = 2.0,
               axis_name: Any = None) -> jax.Array:
  """Uniformity: ``log mean_{i != j} exp(-t ||z_i - z_j||^2)``.

  Computed with a masked log-sum-exp, so it is finite for any t and scale.
  For views ``[N, K, D]`` call it on each view or on ``z.reshape(-1, D)``.
  Per device (``axis_name``) the pairs across shards are visited in a ring
  of ``ppermute``s: O(N/devices D) memory, N^2 D / devices work each.

  Args:
    features: float[N, D] features (typically L2-normalised), N >= 2.
    t: temperature (Wang & Isola use 2).
    axis_name: mapped axis (per-device call on sample shards).

  Returns:
    float32 scalar <= 0; NaN for NaN/Inf input.

  Raises:
    ValueError: on a wrong rank, N < 2 or ``t <= 0``.

  References:
    Wang & Isola, ICML 2020, Eq. 5 (L_uniform).

  Examples:
    >>> round(float(uniformity(jnp.array([[1., 0.], [-1., 0.]]))), 4)  # -2*4
    -8.0
  """
  x = dp.prepare_features(features, axis_name, min_rows=2,
                          layout="float[N, D] with N >= 2 (pairs i != j)")
  checks.check_positive(t, "t")
  return dp.run(_uniformity_local, (x,), (t,), axis_name=axis_name)
