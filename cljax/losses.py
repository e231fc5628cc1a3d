"""Contrastive losses of the three papers, as pure functions.

Every loss takes embeddings ``z: float[N, K, D]`` (N samples, K views of each)
and, where it needs them, integer ``labels: int[N]``, and returns a scalar.
Views are flattened sample-major: view ``a = i*K + l`` is view ``l`` of sample
``i``. An *anchor* is one view; its logits against every view of the batch are
``s_ab = <z_a, z_b> / temperature`` after the chosen ``normalize``:

* ``"sphere"``: z/||z|| (cosine similarity; Luthra et al., Graf et al.),
* ``"ball"``: z/max(1, ||z||) (Jiang et al.'s code),
* ``"none"``: raw inner products.

Common arguments:
  temperature: Python float > 0 (or a traced scalar, then unchecked).
  normalize: one of the three modes above.
  axis_name: ``None`` for a call on the whole (possibly sharded) batch. Set it
    when calling per device inside ``jax.shard_map`` or ``jax.pmap`` with the
    batch split along that mapped axis: the keys are all-gathered, the
    per-device result is the loss of the **global** batch. The one
    gradient rule is the standard data-parallel idiom: per-device
    ``value_and_grad`` then ``jax.lax.pmean`` of the parameter gradients
    (``pmap``, or ``shard_map`` with the gradient inside), ``jax.grad``
    outside a ``shard_map``, or plain ``jit`` on a sharded batch; each gives
    the global-batch gradient. (Inside ``pmap`` the per-device gradient
    w.r.t. the local embeddings is n_devices times their slice of the
    global one; the ``pmean`` divides it out.)
  reduction: ``"mean"`` over valid anchors (default), ``"sum"`` over valid
    anchors, ``"batch"`` (sum over valid anchors divided by all N·K anchors,
    Graf et al.'s training reduction), or ``"none"`` (float[n, K] per-anchor
    losses of the local views, 0 at invalid anchors).
  return_counts: if True, return ``(loss, AnchorCounts)``.
  block_size: how the [N·K, N·K] logits are reduced. ``"dense"``: as one
    matrix (its backward keeps it: 4·V² bytes). An int B: tile by tile, B
    rows by B columns at a time, with a custom VJP that recomputes each tile
    (memory O(V·D + B²); same value and gradient up to float32 summation
    order; faster on CPU once the matrix leaves the cache). ``"auto"``
    (default): tiles once the local anchors times the views reach
    ``TILED_MIN_ENTRIES`` (4096² on CPU), dense below; tiles of
    ``DEFAULT_BLOCK_SIZE`` (512 on CPU; 256 for ``all_losses``). Both are
    dicts keyed by backend.

Anchors without a positive or without a negative (e.g. an NSCL anchor whose
class fills the batch) are *invalid*: they are excluded from the mean and
counted in ``AnchorCounts.num_valid`` / ``num_anchors``. If no anchor is valid,
"mean" returns 0 with zero gradient and ``num_valid == 0``; the value is never
NaN. NaN or Inf in ``z`` is not an empty mask: the loss is NaN, never a
plausible number. Label ranges are not checked: any integers identify classes.

Hyper-parameters are keyword-only scalars: a bool or an array of shape other
than () raises. ``temperature`` and ``beta`` may be traced under ``jit``
(e.g. a schedule); the losses are not differentiated w.r.t. ``beta``.

All logits are float32 (bfloat16 inputs are normalised in float32 and
multiplied with float32 accumulation); every log-sum-exp subtracts its max.
"""

from __future__ import annotations

import functools
import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from cljax import _checks
from cljax import _similarity as sim
from cljax import theory

ArrayLike = jax.typing.ArrayLike

DEFAULT_BLOCK_SIZE = sim.DEFAULT_BLOCK_SIZE
TILED_MIN_ENTRIES = sim.TILED_MIN_ENTRIES


class AnchorCounts(NamedTuple):
  """How many anchors entered a loss (global over devices)."""
  num_valid: jax.Array
  num_anchors: jax.Array


def _check_scalar(value, name, allow_zero=False):
  """A hyper-parameter is one real number: a Python number, or a scalar
  array (traced ones are checked for shape only)."""
  if isinstance(value, (bool, np.bool_)):
    raise ValueError(
        f"`{name}` must be a real number, not the bool {value!r}; pass e.g. "
        f"`{name}=0.5`.")
  if np.ndim(value) != 0:
    raise ValueError(
        f"`{name}` must be a scalar (one value for the whole loss); got "
        f"shape {tuple(np.shape(value))}. Call the loss once per value.")
  dtype = jnp.result_type(value)
  if jnp.issubdtype(dtype, jnp.bool_) or jnp.issubdtype(
      dtype, jnp.complexfloating):
    raise ValueError(f"`{name}` must be a real number; got dtype {dtype}.")
  _checks.check_positive(value, name, allow_zero=allow_zero)


def _check_common(temperature, reduction):
  _check_scalar(temperature, "temperature")
  _checks.check_choice(reduction, "reduction", sim.REDUCTIONS)


def _finish(per_anchor, valid, views, reduction, return_counts, weight=None):
  loss, num_valid, num_anchors = sim.reduce_anchors(
      per_anchor, valid, reduction, views.axis_name, weight=weight)
  if reduction == "none":
    n, k = views.anchors.shape[:2]
    loss = loss.reshape(n, k)
  if return_counts:
    return loss, AnchorCounts(num_valid, num_anchors)
  return loss


def _own_mean(values, include_self_pairs):
  """float[A]: mean over an anchor's own-sample positives of values[n, K, K]
  (all K views with self pairs, the other K - 1 without)."""
  k = values.shape[-1]
  if include_self_pairs:
    return jnp.mean(values, axis=-1).reshape(-1)
  off_diag = ~jnp.eye(k, dtype=bool)
  return (jnp.sum(jnp.where(off_diag, values, 0.0), axis=-1) /
          (k - 1)).reshape(-1)




def ntxent(z: ArrayLike, *, temperature: float, normalize: str = "sphere",
           double_count_positive: bool = False,
           axis_name: str | None = None, reduction: str = "mean",
           return_counts: bool = False, block_size: int | str = "auto"):
  """SimCLR's NT-Xent (InfoNCE) loss; the positive is in the denominator.

  For anchor view a of sample i with positives P(a) (the other K-1 views of
  sample i) and denominator D(a) = every view b != a:

    l_a = mean_{p in P(a)} [ -s_ap + log sum_{b in D(a)} exp(s_ab) ].

  With ``double_count_positive`` the positive enters the denominator twice,
  log(exp(s_ap) + sum_{b != a} exp(s_ab)): the "ContrastiveLoss" that Luthra
  et al.'s code logs as ``cl_loss`` (papers.md 2.2; its gap to NSCL obeys
  ``theory.double_counted_gap_bound``, not Theorem 1).

  Args:
    z: float[N, K, D] embeddings, K >= 2.
    temperature: softmax temperature tau > 0.
    normalize: "sphere" (default), "ball" or "none".
    double_count_positive: reproduce the authors' code's CL variant.
    axis_name: see the module docstring.
    reduction: "mean" | "sum" | "batch" | "none".
    return_counts: also return ``AnchorCounts``.

  Returns:
    Scalar loss (float32), or per-anchor float[N, K] for reduction="none".

  Raises:
    ValueError: z not [N, K, D] float, K < 2, temperature <= 0.

  References:
    Chen et al. 2020 (SimCLR), Eq. 1; generalised to K views by averaging over
    positives. Luthra et al. 2025's code calls this loss "DCL" (papers.md 2.2).

  Examples:
    >>> z = jax.random.normal(jax.random.key(0), (8, 2, 16))
    >>> float(ntxent(z, temperature=0.5)) > 0
    True
  """
  _check_common(temperature, reduction)
  views = sim.prepare(z, None, normalize_mode=normalize, axis_name=axis_name,
                      min_views=2)
  s_own = sim.own_sample_logits(views, temperature)
  (lse,) = sim.row_reductions(views, temperature, [
      sim.Term("lse", "not_self",
               bound=sim.logit_bound(normalize, temperature))],
                              block_size=block_size)
  valid = sim.nonempty(lse)
  if double_count_positive:
    per_anchor = _code_form(s_own, False, lse, valid)
  else:
    per_anchor = lse - _own_mean(s_own, False)
  return _finish(per_anchor, valid, views, reduction, return_counts)


def dcl(z: ArrayLike, *, temperature: float = 1.0,
        include_self_pairs: bool = False, normalize: str = "sphere",
        axis_name: str | None = None, reduction: str = "mean",
        return_counts: bool = False, block_size: int | str = "auto"):
  """The self-supervised (decoupled) contrastive loss of Luthra et al.

  Positives and the denominator exclude every view of the anchor's sample:

    l_a = mean_{p in P(a)} [ -s_ap + log sum_{b: sample(b) != sample(a)}
                                       exp(s_ab) ],

  with P(a) the other views of the anchor's sample, or all K of them
  (including a itself) when ``include_self_pairs``; the mean over anchors then
  equals the paper's -1/(K^2 N) sum_{i,l1,l2} form (with self pairs) or its
  K(K-1)N form (without, the default, as in the authors' code and SimCLR).
  Invalid anchors: none of another sample (N = 1).

  Args:
    z: float[N, K, D] embeddings; K >= 2 unless ``include_self_pairs``.
    temperature: tau > 0; the theorem uses tau = 1 (default).
    include_self_pairs: include the l1 = l2 terms of the paper's double sum.
    normalize, axis_name, reduction, return_counts: see the module docstring.

  Returns:
    Scalar loss, or float[N, K] for reduction="none".

  Raises:
    ValueError: bad shape or dtype, K < 2 without self pairs, tau <= 0.

  References:
    Luthra, Yang, Galanti 2025, the definition of L^DCL before Theorem 1
    (papers.md 2.1); Yeh et al. 2022 (decoupled contrastive learning).
  """
  _check_common(temperature, reduction)
  views = sim.prepare(z, None, normalize_mode=normalize, axis_name=axis_name,
                      min_views=1 if include_self_pairs else 2)
  pos_mean = _own_mean(sim.own_sample_logits(views, temperature),
                       include_self_pairs)
  (lse,) = sim.row_reductions(views, temperature, [
      sim.Term("lse", "other_sample",
               bound=sim.logit_bound(normalize, temperature))],
                              block_size=block_size)
  valid = sim.nonempty(lse)
  return _finish(lse - pos_mean, valid, views, reduction, return_counts)


def nscl(z: ArrayLike, labels: ArrayLike, *, temperature: float = 1.0,
         positive_in_denominator: bool = False,
         include_self_pairs: bool = False, normalize: str = "sphere",
         axis_name: str | None = None, reduction: str = "mean",
         return_counts: bool = False, block_size: int | str = "auto"):
  """Negatives-only supervised contrastive loss (NSCL) of Luthra et al.

  Same positives as ``dcl`` (other views of the anchor's own sample: NSCL does
  not pull same-class samples together); the denominator keeps only views of
  samples of a different class:

    paper form:  l_a = mean_p [ -s_ap + log sum_{b: y_b != y_a} exp(s_ab) ]
    code form:   l_a = mean_p [ -s_ap + log(exp(s_ap)
                                            + sum_{b: y_b != y_a} exp(s_ab)) ]

  The code form (``positive_in_denominator=True``) is the authors'
  ``WeakNTXentLoss``/``NegSupConLoss``. The paper form can be negative. An
  anchor whose batch holds no view of another class is invalid (excluded and
  counted), in both forms.

  Args:
    z: float[N, K, D] embeddings; K >= 2 unless ``include_self_pairs``.
    labels: int[N] class ids.
    temperature: tau > 0 (theorem: 1, the default).
    positive_in_denominator: the code form instead of the paper form.
    include_self_pairs: include the l1 = l2 terms of the paper's double sum.
    normalize, axis_name, reduction, return_counts: see the module docstring.

  Returns:
    Scalar loss, or float[N, K] for reduction="none".

  Raises:
    ValueError: bad shapes or dtypes, K < 2 without self pairs, tau <= 0.

  References:
    Luthra, Yang, Galanti 2025, definition of L^NSCL (papers.md 2.1, 2.2).
  """
  _check_common(temperature, reduction)
  views = sim.prepare(z, labels, normalize_mode=normalize,
                      axis_name=axis_name,
                      min_views=1 if include_self_pairs else 2)
  (lse,) = sim.row_reductions(views, temperature, [
      sim.Term("lse", "diff_label",
               bound=sim.logit_bound(normalize, temperature))],
                              block_size=block_size)
  valid = sim.nonempty(lse)
  s_own = sim.own_sample_logits(views, temperature)
  if not positive_in_denominator:
    per_anchor = lse - _own_mean(s_own, include_self_pairs)
  else:
    per_anchor = _code_form(s_own, include_self_pairs, lse, valid)
  return _finish(per_anchor, valid, views, reduction, return_counts)


def _code_form(s_own, include_self_pairs, lse, valid):
  """mean_p [log(exp(s_ap) + exp(lse_a)) - s_ap] over own-sample positives."""
  n, k, _ = s_own.shape
  lse_own = jnp.where(valid, lse, 0.0).reshape(n, k, 1)
  # softplus(lse - s) = log(1 + exp(lse - s)) = log(exp(s) + exp(lse)) - s.
  return _own_mean(jax.nn.softplus(lse_own - s_own), include_self_pairs)


SUPCON_VARIANTS = ("out", "in")


def supcon(z: ArrayLike, labels: ArrayLike, *, temperature: float = 0.1,
           variant: str = "out", same_class_weight: float = 1.0,
           normalize: str = "sphere", axis_name: str | None = None,
           reduction: str = "mean", return_counts: bool = False,
           block_size: int | str = "auto"):
  """Supervised contrastive loss (Khosla et al.), as used by Graf et al.

  Positives P(a) = every other view with the anchor's label (other views of
  its sample and all views of same-class samples; duplicates of a sample in an
  i.i.d. batch are positives). Denominator Z_a = sum_{b != a} w_b exp(s_ab),
  w_b = ``same_class_weight`` for b in P(a) and 1 otherwise:

    variant "out":  l_a = -mean_{p in P(a)} s_ap + log Z_a      (L_out)
    variant "in":   l_a = -log mean_{p in P(a)} exp(s_ap) + log Z_a  (L_in)

  L_out >= L_in by Jensen; they agree at class collapse. Anchors without a
  positive (or with an empty denominator, possible when
  ``same_class_weight=0``) are invalid. ``same_class_weight=0`` gives the
  negatives-only denominator of the v2 "HybridSupCon" loss of Luthra et al.

  Args:
    z: float[N, K, D] embeddings; K = 1 is allowed.
    labels: int[N] class ids.
    temperature: tau > 0 (Graf et al.: 0.1).
    variant: "out" or "in".
    same_class_weight: w >= 0, Graf et al.'s ``SupConLossWeighted``.
    normalize, axis_name, return_counts: see the module docstring.
    reduction: "mean" over anchors with positives (training), "sum" (Graf et
      al.'s theory: positive-less anchors contribute 0), "batch" (their
      training code: divide by N·K including positive-less anchors), "none".

  Returns:
    Scalar loss, or float[N, K] for reduction="none".

  Raises:
    ValueError: bad shapes, unknown variant, tau <= 0, weight < 0.

  References:
    Khosla et al. 2020, Eq. 2 (L_out) and Eq. 3 (L_in); Graf et al. 2021,
    the batch loss of Section 3 (papers.md 3.1).
  """
  _check_common(temperature, reduction)
  _checks.check_choice(variant, "variant", SUPCON_VARIANTS)
  _check_scalar(same_class_weight, "same_class_weight", allow_zero=True)
  views = sim.prepare(z, labels, normalize_mode=normalize,
                      axis_name=axis_name)
  bound = sim.logit_bound(normalize, temperature)
  positive_term = (sim.Term("sum", "positive") if variant == "out" else
                   sim.Term("lse", "positive", bound=bound))
  lse_den, pos = sim.row_reductions(views, temperature, [
      sim.Term("lse", "not_self", bound=bound, weight=same_class_weight),
      positive_term], block_size=block_size)
  num_pos = sim.row_count(views, "positive")
  has_pos = num_pos > 0
  safe_num = jnp.maximum(num_pos, 1).astype(jnp.float32)
  if variant == "out":
    pos_term = pos / safe_num
  else:
    pos_term = jnp.where(has_pos, pos - jnp.log(safe_num), 0.0)
  valid = has_pos & sim.nonempty(lse_den)
  return _finish(lse_den - pos_term, valid, views, reduction, return_counts)


HARD_NEGATIVES = ("different_class", "all")
HARD_ESTIMATORS = ("expectation", "sampled", "debiased")


def hard_contrastive(z: ArrayLike, labels: ArrayLike | None = None, *,
                     beta: float = 0.0, negatives: str = "different_class",
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
    "sampled": the mean of exp(s_ab) over ``num_negatives`` pool indices drawn
      i.i.d. from q_a with replacement (needs ``key``). The draws are shared
      by an anchor's positives, so each pair's estimator has the distribution
      of the reference code's per-pair draws.
    "debiased": Robinson et al. 2021's HCL estimator: sample positives,
      negatives = views of other samples (M of them), importance weights
      exp(beta s) not detached, N_g = max((M E_a - tau_plus M exp(s_ap)) /
      (1 - tau_plus), M exp(-1/temperature)), l_ap = log(1 + N_g/exp(s_ap)).
      Labels are ignored; use it with normalize="sphere".

  Args:
    z: float[N, K, D]; K = 1 allowed when labels are given.
    labels: int[N] class ids, or None (UCL with sample positives, K >= 2).
    beta: hardness >= 0 (a Python number, or a scalar traced under jit;
      treated as a constant: no gradient flows to it).
    negatives: "different_class" or "all".
    estimator: "expectation", "sampled" or "debiased".
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
    (papers.md 4.1); Robinson et al. 2021, Eq. 3 and its code (debiased).
  """
  _check_common(temperature, reduction)
  _check_scalar(beta, "beta", allow_zero=True)
  _checks.check_choice(negatives, "negatives", HARD_NEGATIVES)
  _checks.check_choice(estimator, "estimator", HARD_ESTIMATORS)
  if estimator == "debiased":
    return _debiased(z, beta=beta, tau_plus=tau_plus, temperature=temperature,
                     normalize=normalize, axis_name=axis_name,
                     reduction=reduction, return_counts=return_counts,
                     block_size=block_size)
  if labels is None and negatives == "different_class":
    raise ValueError(
        "`negatives='different_class'` (SCL/HSCL) needs `labels`; pass labels "
        "or use `negatives='all'` (UCL/HUCL).")
  if estimator == "sampled":
    if key is None:
      raise ValueError("`estimator='sampled'` needs a PRNG `key=`, e.g. "
                       "`jax.random.key(0)`.")
    if (isinstance(num_negatives, bool) or
        not isinstance(num_negatives, int) or num_negatives < 1):
      raise ValueError(
          f"`num_negatives` must be an int >= 1; got {num_negatives!r}.")
    sim.check_block_size(block_size)
    if block_size != "auto" and block_size != "dense":
      raise ValueError(
          "`estimator='sampled'` draws negatives from the dense [A, V] logits "
          "and cannot be tiled; drop `block_size`, or use "
          "`estimator='expectation'` (its exact num_negatives -> infinity "
          "limit), which tiles.")
  views = sim.prepare(z, labels, normalize_mode=normalize,
                      axis_name=axis_name,
                      min_views=1 if labels is not None else 2)
  bound = sim.logit_bound(normalize, temperature)
  pool = "diff_label" if negatives == "different_class" else "all"
  if labels is None:
    positive = "same_sample" if include_self_positive else "other_views"
  else:
    positive = "same_label" if include_self_positive else "positive"
  num_pos = sim.row_count(views, positive).astype(jnp.float32)
  if estimator == "expectation":
    terms, combine, aux = _tilted_terms(views, pool, beta, bound)
    *base, pair_sum = sim.row_reductions(
        views, temperature, terms + [sim.Term("softplus", positive)],
        combine=combine, aux=aux, block_size=block_size)
    # The last base term is the pool's (tilt-normalising) log-sum-exp.
    has_pool = sim.nonempty(base[-1])
  else:
    s = sim.logits(views, temperature)
    log_e, has_pool = _sampled_log_expectation(s, views, pool, beta,
                                               num_negatives, key)
    mask = sim.build_mask(positive, views.num_views, sim.mask_ids(views),
                          s.shape[-1])
    pairs = jax.nn.softplus(jnp.where(has_pool, log_e, 0.0)[:, None] - s)
    pair_sum = jnp.sum(jnp.where(mask, pairs, 0.0), axis=-1)
  valid = has_pool & (num_pos > 0)
  return _finish(pair_sum, valid, views, reduction, return_counts,
                 weight=num_pos)


def _finite(x):
  """x with its non-finite entries (rows of an empty pool) set to 0: the
  c_a of a softplus term must be finite for its gradient to be."""
  return jnp.where(jnp.isfinite(x), x, 0.0)


def _uniform_log_expectation(outs, aux):
  """log mean_{b in pool} exp(s_b) = lse - log |pool|."""
  (lse,), (count,) = outs, aux
  return (_finite(lse - jnp.log(jnp.maximum(count, 1.0))),)


def _tilted_log_expectation(outs, aux):
  """log sum_b q_b exp(s_b), q ∝ exp(beta s) = lse((1+beta) s) - lse(beta s).

  The row_reductions terms give the first a gradient scale of 1 (the tilt
  weights are detached) and the second a gradient scale of 0.
  """
  del aux
  tilted, norm = outs
  return (_finite(tilted - norm),)


def _tilted_terms(views, pool, beta, bound):
  """Terms, combine function and aux for E_a of Jiang et al.'s estimator."""
  if isinstance(beta, (int, float)) and beta == 0:
    count = sim.row_count(views, pool).astype(jnp.float32)
    return ([sim.Term("lse", pool, bound=bound)], _uniform_log_expectation,
            (count,))
  return ([sim.Term("lse", pool, alpha=1.0 + beta, grad_scale=1.0,
                    bound=bound),
           sim.Term("lse", pool, alpha=beta, grad_scale=0.0, bound=bound)],
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
  pool_mask = sim.build_mask(pool, views.num_views, sim.mask_ids(views),
                             s.shape[-1])
  tilt = beta * s
  if pool_mask is not None:
    tilt = jnp.where(pool_mask, tilt, -jnp.inf)
  log_norm = jax.nn.logsumexp(tilt, axis=-1)
  has_pool = sim.nonempty(log_norm)
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


def _debiased(z, *, beta, tau_plus, temperature, normalize, axis_name,
              reduction, return_counts, block_size):
  _check_scalar(tau_plus, "tau_plus", allow_zero=True)
  if not 0 <= float(tau_plus) < 1:
    raise ValueError(f"`tau_plus` must lie in [0, 1); got {tau_plus}.")
  views = sim.prepare(z, None, normalize_mode=normalize, axis_name=axis_name,
                      min_views=2)
  bound = sim.logit_bound(normalize, temperature)
  num_neg = (views.num_samples - 1) * views.num_views
  # log E_q exp(s), q ∝ exp(beta s) over the other samples' views; Robinson
  # et al. keep the gradient through the weights.
  tilted, norm = sim.row_reductions(views, temperature, [
      sim.Term("lse", "other_sample", alpha=1.0 + beta, bound=bound),
      sim.Term("lse", "other_sample", alpha=beta, bound=bound)],
                                    block_size=block_size)
  log_e = tilted - norm
  has_neg = sim.nonempty(norm)
  log_e = jnp.where(has_neg, log_e, 0.0)
  s_own = sim.own_sample_logits(views, temperature)        # [n, K, K]
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
  return _finish(pair_sum, has_neg.reshape(-1), views, reduction,
                 return_counts, weight=weight)


def cross_entropy(logits: ArrayLike, labels: ArrayLike, *,
                  reduction: str = "mean") -> jax.Array:
  """Softmax cross-entropy with integer labels.

  Args:
    logits: float[N, C] classifier outputs (e.g. ``features @ W.T`` with a
      bias-free head, as in Graf et al.).
    labels: int[N] in [0, C) (checked when concrete).
    reduction: "mean" or "sum" over samples, or "none" (float[N]).

  Returns:
    Scalar float32 loss, or float[N].

  Raises:
    ValueError: logits not [N, C] float, labels of the wrong shape or (when
      concrete) outside [0, C).

  References:
    Graf et al. 2021, Section 3 (the CE baseline).
  """
  logits = jnp.asarray(logits)
  _checks.check_rank(logits, 2, "logits", "[N, C]")
  _checks.check_float(logits, "logits")
  _checks.check_labels(labels, logits.shape[0], "labels",
                       num_classes=logits.shape[1])
  _checks.check_choice(reduction, "reduction", ("mean", "sum", "none"))
  if logits.shape[0] == 0 and reduction == "mean":
    raise ValueError(
        "`logits` has N=0 rows: the mean cross-entropy of no sample is "
        "undefined. Skip the call on an empty batch or use reduction='sum'.")
  per_sample = optax.losses.softmax_cross_entropy_with_integer_labels(
      logits.astype(jnp.float32), jnp.asarray(labels))
  if reduction == "none":
    return per_sample
  return jnp.sum(per_sample) if reduction == "sum" else jnp.mean(per_sample)


def simplex_classifier(num_classes: int, dim: int,
                       radius: float = 1.0) -> jax.Array:
  """Fixed classifier weights on a regular simplex (Graf et al.'s CE-fix).

  Closed form (rows of the simplex ETF of ``cljax.theory``), not the
  reference code's Riesz-energy approximation.

  Args:
    num_classes: C >= 2.
    dim: feature dimension >= C - 1.
    radius: norm of each row.

  Returns:
    float32[C, dim] weights W; use logits = features @ W.T, and keep W out
    of the optimiser (or under ``jax.lax.stop_gradient``).
  """
  return jnp.asarray(theory.simplex_etf(num_classes, dim, radius=radius),
                     jnp.float32)


def _luthra_entries(views, s_own, lse_all, lse_other, lse_diff, *,
                    temperature, include_self_pairs, mean):
  """CL, DCL, NSCL, the gap and its bound from the three log-sum-exps."""
  valid_all = sim.nonempty(lse_all)
  valid_other = sim.nonempty(lse_other)
  valid_diff = sim.nonempty(lse_diff)
  pos_pair = _own_mean(s_own, False)
  pos_dn = _own_mean(s_own, True) if include_self_pairs else pos_pair
  out = {}
  if views.num_views >= 2:
    out["ntxent"] = mean(lse_all - pos_pair, valid_all)
    out["cl_code"] = mean(
        _code_form(s_own, False, lse_all, valid_all), valid_all)
  dcl_anchor = lse_other - pos_dn
  nscl_anchor = lse_diff - pos_dn
  out["dcl"] = mean(dcl_anchor, valid_other)
  out["nscl"] = mean(nscl_anchor, valid_diff)
  out["nscl_code"] = mean(
      _code_form(s_own, include_self_pairs, lse_diff, valid_diff),
      valid_diff)
  both = valid_other & valid_diff
  out["gap"] = mean(dcl_anchor - nscl_anchor, both)
  # Per-anchor Theorem-1 bound: log(1 + e^{2/tau} (b_y - 1) / (B - b_y)) with
  # b_y the anchor's class count in the batch (papers.md 2.3, batch version).
  b_y = sim.row_count(views, "same_label") / views.num_views
  b_total = float(views.num_samples)
  bound = jnp.log1p(jnp.exp(2.0 / temperature) * (b_y - 1.0) /
                    jnp.maximum(b_total - b_y, 1.0))
  out["gap_bound"] = mean(bound, both)
  out["nscl_valid"] = sim.reduce_anchors(lse_diff, valid_diff, "sum",
                                         views.axis_name)[1]
  return out


def _mean_over(axis):
  def mean(per_anchor, valid, weight=None):
    return sim.reduce_anchors(per_anchor, valid, "mean", axis,
                              weight=weight)[0]
  return mean


def cl_nscl(z: ArrayLike, labels: ArrayLike, *, temperature: float = 1.0,
            include_self_pairs: bool = False, normalize: str = "sphere",
            axis_name: str | None = None,
            block_size: int | str = "auto") -> dict[str, jax.Array]:
  """Luthra et al.'s CL and NSCL losses and their gap, in one sweep.

  The subset of ``all_losses`` that Theorem 1 is about, at a third of its
  cost: three log-sum-exps per anchor. ``cljax.evaluate`` uses it for the
  exact whole-dataset losses (with tiles, any N).

  Args:
    z: float[N, K, D], K >= 2 unless ``include_self_pairs``.
    labels: int[N].
    temperature: tau > 0 (the theorem: 1).
    include_self_pairs, normalize, axis_name, block_size: as for ``nscl``.

  Returns:
    dict of float32 scalars "ntxent" and "cl_code" (K >= 2), "dcl", "nscl",
    "nscl_code", "gap", "gap_bound" and "nscl_valid", as in ``all_losses``.
  """
  _check_scalar(temperature, "temperature")
  views = sim.prepare(z, labels, normalize_mode=normalize,
                      axis_name=axis_name,
                      min_views=1 if include_self_pairs else 2)
  bound = sim.logit_bound(normalize, temperature)
  lse_all, lse_other, lse_diff = sim.row_reductions(views, temperature, [
      sim.Term("lse", "not_self", bound=bound),
      sim.Term("lse", "other_sample", bound=bound),
      sim.Term("lse", "diff_label", bound=bound)], block_size=block_size)
  return _luthra_entries(
      views, sim.own_sample_logits(views, temperature), lse_all, lse_other,
      lse_diff, temperature=temperature,
      include_self_pairs=include_self_pairs,
      mean=_mean_over(views.axis_name))


def all_losses(z: ArrayLike, labels: ArrayLike, *, temperature: float,
               beta: float | None = None, include_self_pairs: bool = False,
               normalize: str = "sphere", axis_name: str | None = None,
               block_size: int | str = "auto") -> dict[str, jax.Array]:
  """Every loss of this module, and the CL-NSCL gap, from one similarity matrix.

  The training loop logs these on each batch next to the optimised loss.
  Values equal the individual functions called with the same arguments.

  Args:
    z: float[N, K, D], K >= 2.
    labels: int[N].
    temperature: tau > 0 for every loss.
    beta: hardness for "hscl"/"hucl" (exact expectation, stop-gradient tilt);
      None skips them (the two extra passes over the matrix they need).
    include_self_pairs: for "dcl" and "nscl".
    normalize: one normalisation for every loss (default "sphere").
    axis_name, block_size: see the module docstring.

  Returns:
    dict with float32 scalars: "ntxent", "cl_code" (ntxent with the positive
    counted twice, the authors' logged CL), "dcl", "nscl" (paper form),
    "nscl_code" (positive in the denominator), "supcon_out", "supcon_in",
    "scl", "ucl" (Jiang et al.'s estimators at beta = 0 with labelled
    positives incl. self), "hscl" and "hucl" (if beta is given), "gap"
    (dcl - nscl over anchors valid for both) and "gap_bound" (the per-batch
    Theorem-1 bound, averaged over the same anchors), and "nscl_valid" (the
    number of anchors with a negative).

  References:
    Luthra et al. 2025, Theorem 1 (gap and bound; papers.md 2.3).
  """
  _check_scalar(temperature, "temperature")
  if beta is not None:
    _check_scalar(beta, "beta", allow_zero=True)
  views = sim.prepare(z, labels, normalize_mode=normalize,
                      axis_name=axis_name,
                      min_views=1 if include_self_pairs else 2)
  lse_bound = sim.logit_bound(normalize, temperature)
  mean = _mean_over(views.axis_name)

  s_own = sim.own_sample_logits(views, temperature)
  s_self = jnp.diagonal(s_own, axis1=1, axis2=2).reshape(-1)
  # Label counts per anchor: same-label views (incl. itself) and positives.
  hard_num = sim.row_count(views, "same_label")
  num_cols = views.keys.shape[0]

  terms = [sim.Term("lse", "not_self", bound=lse_bound),
           sim.Term("lse", "other_sample", bound=lse_bound),
           sim.Term("lse", "diff_label", bound=lse_bound),
           sim.Term("sum", "positive"),
           sim.Term("lse", "positive", bound=lse_bound)]
  if beta is not None:
    for pool in ("diff_label", "all"):
      terms += [sim.Term("lse", pool, alpha=1.0 + beta, grad_scale=1.0,
                         bound=lse_bound),
                sim.Term("lse", pool, alpha=beta, grad_scale=0.0,
                         bound=lse_bound)]
  num_hard = 2 if beta is None else 4
  terms += [sim.Term("softplus", "same_label")] * num_hard
  combine = functools.partial(_all_log_expectations, num_cols=num_cols)
  aux = (hard_num, s_self)
  outs = sim.row_reductions(views, temperature, terms, combine=combine,
                            aux=aux, block_size=block_size)
  lse_all, lse_other, lse_diff, pos_sum, lse_pos = outs[:5]
  pair_sums = outs[-num_hard:]
  out = _luthra_entries(views, s_own, lse_all, lse_other, lse_diff,
                        temperature=temperature,
                        include_self_pairs=include_self_pairs, mean=mean)
  valid_all = sim.nonempty(lse_all)
  valid_diff = sim.nonempty(lse_diff)

  num_pos = hard_num - 1.0
  has_pos = num_pos > 0
  safe_num = jnp.maximum(num_pos, 1.0)
  sup_valid = has_pos & valid_all
  out["supcon_out"] = mean(lse_all - pos_sum / safe_num, sup_valid)
  out["supcon_in"] = mean(
      lse_all - jnp.where(has_pos, lse_pos - jnp.log(safe_num), 0.0),
      sup_valid)

  always = jnp.ones_like(valid_diff)
  names = ["scl", "ucl"] + (["hscl", "hucl"] if beta is not None else [])
  valids = [valid_diff, always, valid_diff, always]
  for name, pair_sum, valid in zip(names, pair_sums, valids):
    out[name] = mean(pair_sum, valid, weight=hard_num)
  return out


def _all_log_expectations(outs, aux, *, num_cols):
  """log E_a of SCL, UCL (and HSCL, HUCL) for ``all_losses``.

  SCL's uniform pool reuses the different-label log-sum-exp; UCL's pool of
  all views adds the anchor itself to the not-self one.
  """
  lse_all, _, lse_diff, _, _, *tilted = outs
  hard_num, s_self = aux
  cs = [lse_diff - jnp.log(jnp.maximum(num_cols - hard_num, 1.0)),
        jnp.logaddexp(lse_all, s_self) - math.log(num_cols)]
  for i in range(0, len(tilted), 2):
    cs.append(tilted[i] - tilted[i + 1])
  return tuple(_finite(c) for c in cs)


def _without_labels(fn):
  def call(z, labels=None, **kwargs):
    del labels  # Self-supervised: positives are the views of each sample.
    return fn(z, **kwargs)
  call.__name__ = fn.__name__
  call.__doc__ = fn.__doc__
  return call


def _hard_preset(name, negatives):
  def call(z, labels=None, **kwargs):
    return hard_contrastive(z, labels, negatives=negatives, **kwargs)
  call.__name__ = name
  call.__doc__ = (f"``hard_contrastive`` with ``negatives={negatives!r}`` "
                  f"(Jiang et al.'s {name.upper()}; pass ``beta``).")
  return call


LOSSES = {
    "ntxent": _without_labels(ntxent),
    "dcl": _without_labels(dcl),
    "nscl": nscl,
    "supcon": supcon,
    "hard_contrastive": hard_contrastive,
    # Jiang et al.'s names: the supervised pool (other classes) and the
    # unsupervised one (every view); H* are the same with beta > 0.
    "scl": _hard_preset("scl", "different_class"),
    "hscl": _hard_preset("hscl", "different_class"),
    "ucl": _hard_preset("ucl", "all"),
    "hucl": _hard_preset("hucl", "all"),
}


def get(name: str):
  """The loss registered as ``name``, callable as ``fn(z, labels, **kwargs)``.

  Self-supervised losses (ntxent, dcl) accept and ignore ``labels``, so a
  training loop can call every loss the same way.

  Raises:
    ValueError: unknown name (the message lists the valid ones).
  """
  if name not in LOSSES:
    raise ValueError(
        f"Unknown loss {name!r}; choose one of {sorted(LOSSES)}.")
  return LOSSES[name]
