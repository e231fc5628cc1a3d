"""Hard-negative contrastive losses: Jiang et al.'s SCL/HSCL and UCL/HUCL
(exact tilted expectation or sampled negatives) and Robinson et al.'s
debiased hard-negative loss.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from cljax._src import checks
from cljax._src import engine
from cljax.losses._common import ArrayLike
from cljax.losses._common import check_common
from cljax.losses._common import check_scalar
from cljax.losses._common import finish
from cljax.losses._common import finite


HARD_NEGATIVES = ("different_class", "all")
HARD_ESTIMATORS = ("expectation", "expectation_outside", "sampled",
                   "debiased")


def hard_contrastive(z: ArrayLike, labels: ArrayLike | None = None, *,
                     beta: float = 0.0, negatives: str | None = None,
                     estimator: str = "expectation", num_negatives: int = 256,
                     key: jax.Array | None = None, temperature: float = 1.0,
                     normalize: str = "ball",
                     include_self_positive: bool = True,
                     tau_plus: float = 0.1, axis_name: str | None = None,
                     reduction: str = "mean", return_counts: bool = False,
                     block_size: int | str = "auto"):
  """Hard-negative SCL/HSCL and UCL/HUCL of Jiang et al. (and Robinson et al.).

  Positives P(a): every view with the anchor's label, including a itself when
  ``include_self_positive`` (Jiang et al.'s code); with ``labels=None`` the
  other views of the anchor's sample. Negative pool Q(a): views of other
  classes (``"different_class"``: SCL/HSCL) or every view (``"all"``:
  UCL/HUCL, false negatives included). Negatives are drawn from the pool
  tilted by hardness beta, q_a(b) ∝ exp(beta s_ab), with the tilt weights
  under ``stop_gradient``. Each (anchor, positive) pair contributes

    l_ap = log(1 + E_a / exp(s_ap)),   E_a ≈ E_{b ~ q_a} exp(s_ab),

  and the loss is the mean over all pairs (anchors with more positives weigh
  more, as in the reference code). beta = 0 recovers SCL/UCL.

  Estimators of E_a:
    "expectation": the exact tilted expectation sum_b q_a(b) exp(s_ab) (the
      num_negatives -> infinity limit; deterministic).
    "expectation_outside": the paper's k = 1 objective, the expectation
      outside the log (docs/conventions.md#hard-negatives, step 6):

        l_ap = sum_{b in Q(a)} q_a(b) log(1 + exp(s_ab - s_ap)),

      which by Jensen's inequality is <= the "expectation" loss (for
      beta = 0 too). Dense only: O(A·V^2) work and O(V^2) memory per anchor
      row (an integer ``block_size`` raises).
    "sampled": the mean of exp(s_ab) over ``num_negatives`` pool indices drawn
      i.i.d. from q_a with replacement (needs ``key``). The draws are shared
      by an anchor's positives, so each pair's estimator has the distribution
      of the reference code's per-pair draws.
    "debiased": routes to ``debiased_contrastive`` (Robinson et al. 2021),
      whose positives are sample positives and negatives every other
      sample's views: passing ``labels``, ``key`` or
      ``negatives="different_class"`` with it raises. Use it with
      normalize="sphere".

  Args:
    z: float[N, K, D]; K = 1 allowed when labels are given.
    labels: int[N] class ids, or None (UCL with sample positives, K >= 2).
    beta: hardness >= 0 (a Python number, or a scalar traced under jit;
      treated as a constant: no gradient flows to it).
    negatives: "different_class" (the default) or "all".
    estimator: "expectation", "expectation_outside", "sampled" or
      "debiased".
    num_negatives: draws per anchor for "sampled" (reference code: 256).
    key: PRNG key for "sampled".
    temperature: tau > 0 (reference code: effectively 1).
    normalize: "ball" (default, the reference code), "sphere" or "none".
    include_self_positive: count the anchor itself as a positive.
    tau_plus: class prior of Robinson et al.'s debiasing, in [0, 1).
    axis_name, reduction, return_counts: see the module docstring; "mean" is
      over (anchor, positive) pairs.

  Returns:
    Scalar loss, or float[N, K] per-anchor sums over pairs for "none".

  Raises:
    ValueError: bad shapes, beta < 0, unknown options, missing key, no labels
      with "different_class", K < 2 where sample positives are needed.

  References:
    Jiang, Nguyen, Aeron, Ishwar 2024, the HSCL/HUCL objectives and their code
    (docs/conventions.md#hard-negatives); Robinson et al. 2021, Eq. 3 and its
    code (debiased).

  Examples:
    >>> z = jax.random.normal(jax.random.key(0), (8, 2, 16))
    >>> y = jnp.array([0, 0, 1, 1, 2, 2, 3, 3])
    >>> bool(hard_contrastive(z, y, beta=5.0) >= hard_contrastive(z, y))
    True
    >>> outside = hard_contrastive(z, y, beta=5.0,
    ...                            estimator="expectation_outside")
    >>> bool(outside <= hard_contrastive(z, y, beta=5.0))
    True
  """
  check_common(temperature, reduction)
  check_scalar(beta, "beta", allow_zero=True)
  if negatives is not None:
    checks.check_choice(negatives, "negatives", HARD_NEGATIVES)
  checks.check_choice(estimator, "estimator", HARD_ESTIMATORS)
  if estimator == "debiased":
    # Robinson et al.'s estimator has sample positives and every other
    # sample's views as negatives, and draws nothing: refuse what it would
    # otherwise ignore.
    ignored = [f"`{name}`" for name, unused in (
        ("labels", labels is not None), ("key", key is not None),
        ("negatives='different_class'", negatives == "different_class"))
               if unused]
    if ignored:
      raise ValueError(
          f"`estimator='debiased'` (Robinson et al.) takes no "
          f"{', '.join(ignored)}: its positives are the other views of each "
          f"sample and its negatives every other sample's views. Call "
          f"`debiased_contrastive(z, beta=..., tau_plus=...)`, or "
          f"`hard_contrastive(z, estimator='debiased', negatives='all')`.")
    return debiased_contrastive(
        z, beta=beta, tau_plus=tau_plus, temperature=temperature,
        normalize=normalize, axis_name=axis_name, reduction=reduction,
        return_counts=return_counts, block_size=block_size)
  if negatives is None:
    negatives = "different_class"
  if labels is None and negatives == "different_class":
    raise ValueError(
        "`negatives='different_class'` (SCL/HSCL) needs `labels`; pass labels "
        "or use `negatives='all'` (UCL/HUCL).")
  if estimator == "expectation_outside":
    _check_dense(block_size, "estimator='expectation_outside'",
                 "sums over (positive, negative) pairs of each anchor")
  if estimator == "sampled":
    if key is None:
      raise ValueError("`estimator='sampled'` needs a PRNG `key=`, e.g. "
                       "`jax.random.key(0)`.")
    if (isinstance(num_negatives, bool) or
        not isinstance(num_negatives, int) or num_negatives < 1):
      raise ValueError(
          f"`num_negatives` must be an int >= 1; got {num_negatives!r}.")
    _check_dense(block_size, "estimator='sampled'",
                 "draws negatives from the dense [A, V] logits")
  views = engine.prepare(z, labels, normalize_mode=normalize,
                          axis_name=axis_name,
                          min_views=1 if labels is not None else 2)
  bound = engine.logit_bound(normalize, temperature)
  pool = "diff_label" if negatives == "different_class" else "all"
  if labels is None:
    positive = "same_sample" if include_self_positive else "other_views"
  else:
    positive = "same_label" if include_self_positive else "positive"
  num_pos = engine.row_count(views, positive).astype(jnp.float32)
  if estimator == "expectation":
    terms, combine, aux = _tilted_terms(views, pool, beta, bound)
    *base, pair_sum = engine.row_reductions(
        views, temperature, terms + [engine.Term("softplus", positive)],
        combine=combine, aux=aux, block_size=block_size)
    # The last base term is the pool's (tilt-normalising) log-sum-exp.
    has_pool = engine.nonempty(base[-1])
  elif estimator == "expectation_outside":
    pair_sum, has_pool = _outside_pair_sums(views, temperature, pool,
                                            positive, beta)
  else:
    s = engine.logits(views, temperature)
    log_e, has_pool = _sampled_log_expectation(s, views, pool, beta,
                                               num_negatives, key)
    mask = engine.build_mask(positive, views.num_views,
                              engine.mask_ids(views), s.shape[-1])
    pairs = jax.nn.softplus(jnp.where(has_pool, log_e, 0.0)[:, None] - s)
    pair_sum = jnp.sum(jnp.where(mask, pairs, 0.0), axis=-1)
  valid = has_pool & (num_pos > 0)
  return finish(pair_sum, valid, views, reduction, return_counts,
                 weight=num_pos)


def _check_dense(block_size, what, why):
  engine.check_block_size(block_size)
  if block_size != "auto" and block_size != "dense":
    raise ValueError(
        f"`{what}` {why} and cannot be tiled; drop `block_size`, or use "
        f"`estimator='expectation'`, which tiles.")


def _outside_pair_sums(views, temperature, pool, positive, beta):
  """(float[A] sum over positives p of E_{b ~ q_a} softplus(s_ab - s_ap),
  bool[A] whether the pool is nonempty), one anchor row at a time."""
  s = engine.logits(views, temperature)
  ids = engine.mask_ids(views)
  num_cols = s.shape[-1]
  pool_mask = engine.build_mask(pool, views.num_views, ids, num_cols)
  pos_mask = engine.build_mask(positive, views.num_views, ids, num_cols)
  full = jnp.ones(s.shape, bool)
  pool_mask = full if pool_mask is None else pool_mask
  pos_mask = full if pos_mask is None else pos_mask
  tilt = jnp.where(pool_mask, beta * jax.lax.stop_gradient(s), -jnp.inf)
  log_norm = jax.nn.logsumexp(tilt, axis=-1, keepdims=True)
  has_pool = engine.nonempty(log_norm[:, 0])
  # The tilt weights are detached, as in Jiang et al.'s code.
  q = jnp.exp(tilt - jnp.where(has_pool[:, None], log_norm, 0.0))

  def row(xs):
    s_a, q_a, pos_a = xs
    # [p, b]: softplus(s_ab - s_ap) weighted by q_a(b), summed over b.
    per_pos = jax.nn.softplus(s_a[None, :] - s_a[:, None]) @ q_a
    return jnp.sum(jnp.where(pos_a, per_pos, 0.0))
  return jax.lax.map(row, (s, q, pos_mask)), has_pool


def _uniform_log_expectation(outs, aux):
  """log mean_{b in pool} exp(s_b) = lse - log |pool|."""
  (lse,), (count,) = outs, aux
  return (finite(lse - jnp.log(jnp.maximum(count, 1.0))),)


def _tilted_log_expectation(outs, aux):
  """log sum_b q_b exp(s_b), q ∝ exp(beta s) = lse((1+beta) s) - lse(beta s).

  The row_reductions terms give the first a gradient scale of 1 (the tilt
  weights are detached) and the second a gradient scale of 0.
  """
  del aux
  tilted, norm = outs
  return (finite(tilted - norm),)


def _tilted_terms(views, pool, beta, bound):
  """Terms, combine function and aux for E_a of Jiang et al.'s estimator."""
  if isinstance(beta, (int, float)) and beta == 0:
    count = engine.row_count(views, pool).astype(jnp.float32)
    return ([engine.Term("lse", pool, bound=bound)], _uniform_log_expectation,
            (count,))
  return ([engine.Term("lse", pool, alpha=1.0 + beta, grad_scale=1.0,
                        bound=bound),
           engine.Term("lse", pool, alpha=beta, grad_scale=0.0, bound=bound)],
          _tilted_log_expectation, ())


def _sample_negatives(s, views, pool, beta, num_negatives, key):
  """int[A, M] pool indices drawn i.i.d. from q_a ∝ exp(beta s_a) on the pool.

  Inverse-CDF sampling needs O(A·V) memory, where Gumbel-max
  (``jax.random.categorical``) would need O(A·V·M). The uniforms are drawn
  for the global batch and sliced, so sharded and single-device calls draw
  the same negatives. Rows with an empty pool return index 0 and
  ``has_pool`` False.
  """
  s = jax.lax.stop_gradient(s)
  pool_mask = engine.build_mask(pool, views.num_views, engine.mask_ids(views),
                                 s.shape[-1])
  tilt = beta * s
  if pool_mask is not None:
    tilt = jnp.where(pool_mask, tilt, -jnp.inf)
  log_norm = jax.nn.logsumexp(tilt, axis=-1)
  has_pool = engine.nonempty(log_norm)
  prob = jnp.exp(tilt - jnp.where(has_pool, log_norm, 0.0)[:, None])
  pool = pool_mask
  cdf = jnp.cumsum(prob, axis=-1)
  num_global = views.num_samples * views.num_views
  u = jax.random.uniform(key, (num_global, num_negatives))
  u = jnp.take(u, views.anchor_index, axis=0) * cdf[:, -1:]
  idx = _first_greater(cdf, u)
  # Round-off can put a uniform past the last cumulative mass.
  last = jnp.where(pool, jnp.arange(s.shape[-1]), 0).max(axis=-1) if (
      pool is not None) else jnp.full(s.shape[:1], s.shape[-1] - 1)
  return jnp.minimum(idx, last[:, None]), has_pool


def _first_greater(cdf, u):
  """int[A, M]: per row, the first index i with cdf[a, i] > u[a, m].

  A row-batched binary search written with gathers, because a vmapped
  ``jnp.searchsorted`` fails on rows sharded over an Explicit mesh.
  """
  size = cdf.shape[-1]
  # Derived from u so the carry has u's sharding and varying axes.
  lo = jnp.zeros_like(u, dtype=jnp.int32)
  hi = lo + (size - 1)

  def step(_, bounds):
    lo, hi = bounds
    mid = (lo + hi) // 2
    right = jnp.take_along_axis(cdf, mid, axis=-1) <= u
    return jnp.where(right, mid + 1, lo), jnp.where(right, hi, mid)

  lo, _ = jax.lax.fori_loop(0, max(1, size.bit_length()), step, (lo, hi))
  return lo


def _sampled_log_expectation(s, views, pool, beta, num_negatives, key):
  """(log mean_m exp(s[a, b_m]) over the drawn negatives (gradient through
  s), bool[A] whether the anchor's pool is nonempty)."""
  idx, has_pool = _sample_negatives(s, views, pool, beta, num_negatives, key)
  drawn = jnp.take_along_axis(s, idx, axis=-1)
  return (jax.nn.logsumexp(drawn, axis=-1) - math.log(num_negatives),
          has_pool)


def debiased_contrastive(z: ArrayLike, *, beta: float = 0.0,
                         tau_plus: float = 0.1, temperature: float = 1.0,
                         normalize: str = "sphere",
                         axis_name: str | None = None,
                         reduction: str = "mean",
                         return_counts: bool = False,
                         block_size: int | str = "auto"):
  """Robinson et al.'s debiased hard-negative contrastive loss (HCL).

  Positives: the other views of the anchor's sample; negatives: the M views
  of every other sample, reweighted by q(b) ∝ exp(beta s_ab) with the
  weights *not* detached (Robinson et al.'s code). With
  E_a = sum_b q(b) exp(s_ab), each (anchor, positive) pair contributes

    N_g = max((M E_a - tau_plus M exp(s_ap)) / (1 - tau_plus),
              M exp(-1/temperature)),
    l_ap = log(1 + N_g / exp(s_ap)),

  and the loss is the mean over pairs. beta = 0, tau_plus = 0 is NT-Xent
  without the positive in the denominator's negatives.

  Args:
    z: float[N, K, D] embeddings, K >= 2.
    beta: hardness >= 0 (may be traced; no gradient flows to it).
    tau_plus: class prior in [0, 1) of the debiasing.
    temperature: tau > 0.
    normalize: "sphere" (default; the estimator's clamp assumes unit
      vectors), "ball" or "none".
    axis_name, reduction, return_counts, block_size: see ``cljax.losses``.

  Returns:
    Scalar loss, or float[N, K] per-anchor sums over pairs for "none".

  Raises:
    ValueError: bad shapes, K < 2, beta < 0, tau_plus outside [0, 1).

  References:
    Robinson, Chuang, Sra, Jegelka 2021, Eq. 3 and its code
    (docs/conventions.md#debiased).

  Examples:
    >>> z = jax.random.normal(jax.random.key(0), (8, 2, 16))
    >>> float(debiased_contrastive(z, beta=1.0, tau_plus=0.1)) > 0
    True
  """
  check_common(temperature, reduction)
  check_scalar(beta, "beta", allow_zero=True)
  check_scalar(tau_plus, "tau_plus", allow_zero=True)
  if not 0 <= float(tau_plus) < 1:
    raise ValueError(f"`tau_plus` must lie in [0, 1); got {tau_plus}.")
  views = engine.prepare(z, None, normalize_mode=normalize,
                          axis_name=axis_name, min_views=2)
  bound = engine.logit_bound(normalize, temperature)
  num_neg = (views.num_samples - 1) * views.num_views
  # log E_q exp(s), q ∝ exp(beta s) over the other samples' views; Robinson
  # et al. keep the gradient through the weights.
  tilted, norm = engine.row_reductions(views, temperature, [
      engine.Term("lse", "other_sample", alpha=1.0 + beta, bound=bound),
      engine.Term("lse", "other_sample", alpha=beta, bound=bound)],
                                    block_size=block_size)
  log_e = tilted - norm
  has_neg = engine.nonempty(norm)
  log_e = jnp.where(has_neg, log_e, 0.0)
  s_own = engine.own_sample_logits(views, temperature)        # [n, K, K]
  n, k, _ = s_own.shape
  log_e = log_e.reshape(n, k, 1)
  # Everything relative to m = max(log E, s_ap) so no exp overflows.
  m = jax.lax.stop_gradient(jnp.maximum(log_e, s_own))
  ng = jnp.maximum(
      (jnp.exp(log_e - m) - tau_plus * jnp.exp(s_own - m)) / (1.0 - tau_plus),
      jnp.exp(-1.0 / temperature - m))
  pair = m + jnp.log(jnp.exp(s_own - m) + num_neg * ng) - s_own
  off_diag = ~jnp.eye(k, dtype=bool)
  pair_sum = jnp.sum(jnp.where(off_diag, pair, 0.0), axis=-1).reshape(-1)
  weight = jnp.full(pair_sum.shape, k - 1, jnp.float32)
  return finish(pair_sum, has_neg.reshape(-1), views, reduction,
                 return_counts, weight=weight)
