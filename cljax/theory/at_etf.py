"""Loss values at the collapsed simplex ETF (P1, P2, P3 closed forms)."""

from __future__ import annotations

import math

from cljax._src import docs
from cljax.theory._numerics import (as_float, as_int, etf_args,
                                    log_a_plus_b_exp, log_or_neg_inf,
                                    logsumexp, neg_logit_gap, softplus)



def _every_view_but_anchor(c: int, n: int, k: int, tau: float) -> float:
  # NT-Xent and SupCon at the ETF: K n - 1 views at logit 1/tau over a
  # denominator of every view but the anchor.
  return log_a_plus_b_exp(float(k * n - 1), k * (c * n - n),
                          neg_logit_gap(c, tau))


def nscl_at_etf(num_classes: int, samples_per_class: int,
                num_views: int, *,
                temperature: float = 1.0,
                positive_in_denominator: bool = False) -> float:
  """NSCL loss at its global minimiser (collapsed unit simplex ETF).

  At augmentation collapse + within-class collapse + unit-norm ETF means
  (cosine 1 within a class, ``-1/(C-1)`` across), with
  ``e = exp(-C / ((C - 1) tau))``:

  * paper form (denominator = the ``K (N - n)`` views of other classes):
    ``log(K (N - n)) - C / ((C - 1) tau)`` (can be negative);
  * code form (``positive_in_denominator=True``, denominator also holds
    ``e^{s_ap}``): ``log(1 + K (N - n) e)``.

  Both hold with or without the ``l1 = l2`` self pairs and for any reduction
  (every anchor-positive pair has the same value).

  Args:
    num_classes: ``C >= 2``.
    samples_per_class: ``n >= 1`` (balanced classes, ``N = C n``).
    num_views: ``K >= 2``.
    temperature: ``tau > 0``.
    positive_in_denominator: False for the paper's NSCL, True for the code's
      (``WeakNTXentLoss`` / ``NegSupConLoss``).

  Returns:
    The loss value as a Python float.

  Raises:
    ValueError: on out-of-range arguments.

  References:
    P1 Theorem 2 and docs/conventions.md#nscl-minimisers (minimum value,
    derived); docs/conventions.md#code-variants for the code form.

  Examples:
    >>> from cljax import theory
    >>> round(theory.nscl_at_etf(4, 3, 3, temperature=0.2), 2)
    -3.37
  """
  c, n, k, tau = etf_args(num_classes, samples_per_class, num_views,
                          temperature, 2)
  log_e = neg_logit_gap(c, tau)
  if positive_in_denominator:
    return log_a_plus_b_exp(1.0, k * (c * n - n), log_e)
  return math.log(k * (c * n - n)) + log_e


@docs.fill_theory
def dcl_at_etf(num_classes: int, samples_per_class: int,
               num_views: int, *,
               temperature: float = 1.0,
               positive_in_denominator: bool = False) -> float:
  """Decoupled contrastive loss (P1's DCL) at the collapsed simplex ETF.

  The paper's DCL denominator holds every view of every *other* sample
  (all views of the anchor's own sample are excluded), so at the ETF
  ``L = log(K (n - 1) + K (N - n) e)``, ``e = exp(-C / ((C - 1) tau))``.
  With ``positive_in_denominator=True`` the positive ``e^{s_ap}`` is added
  (the code pair of Theorem 1): ``log(1 + K (n - 1) + K (N - n) e)``, which
  for ``K = 2`` equals :func:`ntxent_at_etf`.

  Args:
    {etf_args}
    positive_in_denominator: add the positive to the denominator.

  Returns:
    The loss value as a Python float.

  {range_raises}

  References:
    P1, sections 2.1 (DCL) and 2.4 (value at the NSCL optimum).

  Examples:
    >>> from cljax import theory
    >>> dcl = theory.dcl_at_etf(10, 1, 2)  # n = 1: no same-class view
    >>> round(dcl, 6) == round(theory.nscl_at_etf(10, 1, 2), 6)
    True
  """
  c, n, k, tau = etf_args(num_classes, samples_per_class, num_views,
                          temperature, 2)
  same = k * (n - 1) + (1 if positive_in_denominator else 0)
  return log_a_plus_b_exp(float(same), k * (c * n - n),
                           neg_logit_gap(c, tau))


@docs.fill_theory
def ntxent_at_etf(num_classes: int, samples_per_class: int,
                  num_views: int, *,
                  temperature: float = 1.0) -> float:
  """SimCLR NT-Xent at the collapsed simplex ETF.

  Positive: another view of the anchor's sample; denominator: every view but
  the anchor (the positive, the other ``K - 2`` views of the sample, the
  ``K (n - 1)`` same-class views, the ``K (N - n)`` other-class views):
  ``L = log(K n - 1 + K (N - n) e)``, ``e = exp(-C / ((C - 1) tau))``.

  Args:
    {etf_args}

  Returns:
    ``log(K n - 1 + K (N - n) e)`` as a Python float.

  {range_raises}

  References:
    Chen et al. 2020 (SimCLR); P1 code ``NTXentLoss``
    (docs/conventions.md#code-variants).

  Examples:
    >>> round(ntxent_at_etf(2, 1, 2, temperature=1.0), 6)
    0.239545
  """
  c, n, k, tau = etf_args(num_classes, samples_per_class, num_views,
                          temperature, 2)
  return _every_view_but_anchor(c, n, k, tau)


def supcon_at_etf(num_classes: int, samples_per_class: int,
                  num_views: int, *,
                  temperature: float = 1.0) -> float:
  """Supervised contrastive loss (L_out and L_in) at the collapsed ETF.

  Positives: every other view with the anchor's label (``K n - 1``, all at
  cosine 1); denominator: every view but the anchor. All log-terms coincide,
  so ``L_out = L_in = log(K n - 1 + K (N - n) e)``,
  ``e = exp(-C / ((C - 1) tau))``. ``K = 1`` is P2's single-view setting. For
  inner products on a radius-``rho`` sphere replace ``tau`` by
  ``tau / rho^2``.

  Args:
    num_classes: ``C >= 2``.
    samples_per_class: ``n >= 1`` with ``K n >= 2`` (an anchor needs a
      positive).
    num_views: ``K >= 1``.
    temperature: ``tau > 0``.

  Returns:
    The loss value as a Python float.

  Raises:
    ValueError: on out-of-range arguments or ``K n < 2``.

  References:
    Khosla et al. 2020 (SupCon L_out / L_in); P2, sections 3.1-3.2.

  Examples:
    >>> from cljax import theory
    >>> round(theory.supcon_at_etf(2, 1, 2, temperature=1.0), 6)
    0.239545
  """
  c, n, k, tau = etf_args(num_classes, samples_per_class, num_views,
                          temperature, 1)
  if k * n < 2:
    raise ValueError(
        f"SupCon needs num_views * samples_per_class >= 2 so that every "
        f"anchor has a positive; got num_views={k}, samples_per_class={n}.")
  return _every_view_but_anchor(c, n, k, tau)


@docs.fill_theory
def cross_entropy_at_simplex(num_classes: int, *,
                             feature_radius: float = 1.0,
                             weight_radius: float = 1.0) -> float:
  """Cross-entropy at class collapse onto a simplex with aligned classifier.

  Features of class ``y`` equal ``rho * zeta_y`` and classifier rows
  ``w_k = r_W * zeta_k`` with ``zeta`` a unit simplex ETF; the logits are
  ``rho r_W`` (own class) and ``-rho r_W / (C - 1)`` (others), so
  ``L_CE = log(1 + (C - 1) exp(-rho r_W C / (C - 1)))``.

  Args:
    num_classes: ``C >= 2``.
    feature_radius: ``rho > 0``, the feature norm.
    weight_radius: ``r_W > 0``, the norm of every classifier row.

  Returns:
    The loss value as a Python float.

  {range_raises}

  References:
    P2 CE-at-the-simplex result, section 3.2 ([derived] form).

  Examples:
    >>> round(cross_entropy_at_simplex(2), 6)
    0.126928
  """
  c = as_int(num_classes, "num_classes", 2)
  rho = as_float(feature_radius, "feature_radius")
  r_w = as_float(weight_radius, "weight_radius")
  return log_a_plus_b_exp(1.0, c - 1, -rho * r_w * c / (c - 1))


@docs.fill_theory
def scl_at_etf(num_classes: int, *, temperature: float = 1.0) -> float:
  """P3 code's SCL/HSCL pair loss at neural collapse: ``log(1 + e)``.

  At NC every positive (including the anchor itself, ``s_ii = ||z||^2 = 1``)
  has logit ``1/tau`` and every negative (a different class) ``-1/((C-1)
  tau)``; all negatives being equal, the tilt ``q ∝ exp(beta s)`` is inert,
  so the value holds for every ``beta`` and every number of sampled
  negatives: ``log(1 + exp(-C / ((C - 1) tau)))`` (0.28457 for ``C = 10``,
  0.31056 for ``C = 100`` at ``tau = 1``; P3's code has ``tau = 1``).

  Args:
    num_classes: ``C >= 2``.
    temperature: ``tau > 0``.

  Returns:
    ``log(1 + e)`` as a Python float, whatever ``beta``.

  {range_raises}

  References:
    P3, sections 4.1 (code pair loss) and 4.2 (NC minimises SCL, HSCL).

  Examples:
    >>> round(scl_at_etf(10), 5)
    0.28457
  """
  c = as_int(num_classes, "num_classes", 2)
  tau = as_float(temperature, "temperature")
  return softplus(neg_logit_gap(c, tau))


def ucl_at_etf(num_classes: int, class_count_in_batch: int,
               batch_size: int, *,
               temperature: float = 1.0, beta: float = 0.0) -> float:
  """P3 code's UCL/HUCL pair loss at NC with the exact tilted expectation.

  The negative pool is all ``B`` batch members: ``b`` of the anchor's class
  (the anchor included) with logit ``u = 1/tau`` and ``B - b`` of other
  classes with logit ``v = -1/((C - 1) tau)``. With the tilt
  ``q(j) ∝ exp(beta s_ij)`` (the ``K_neg -> infinity`` limit of the code's
  sampler)

  ``E_q[e^s] = (b e^{(1+beta) u} + (B-b) e^{(1+beta) v})
  / (b e^{beta u} + (B-b) e^{beta v})``

  and the pair loss is ``log(1 + E_q[e^s] / e^{u})``. ``beta = 0`` gives
  ``log(1 + b/B + (1 - b/B) e)``, ``e = exp(-C / ((C - 1) tau))``. The value
  is non-decreasing in ``beta`` (HUCL >= UCL).

  Args:
    num_classes: ``C >= 2``.
    class_count_in_batch: ``b``, members of the anchor's class in the batch
      (anchor included), ``1 <= b <= B``.
    batch_size: ``B >= 1``.
    temperature: ``tau > 0``.
    beta: hardness ``beta >= 0``.

  Returns:
    The pair loss as a Python float.

  Raises:
    ValueError: on out-of-range arguments or ``b > B``.

  References:
    P3, sections 4.1 (code UCL/HUCL estimator) and 4.2 (closed form).

  Examples:
    >>> from cljax import theory
    >>> round(theory.ucl_at_etf(2, 2, 4), 6)
    0.449589
  """
  c = as_int(num_classes, "num_classes", 2)
  b = as_int(class_count_in_batch, "class_count_in_batch", 1)
  big_b = as_int(batch_size, "batch_size", 1)
  if b > big_b:
    raise ValueError(
        f"`class_count_in_batch` must be <= batch_size={big_b}; got {b}.")
  tau = as_float(temperature, "temperature")
  beta = as_float(beta, "beta", allow_zero=True)
  u, v = 1.0 / tau, -1.0 / ((c - 1) * tau)
  log_b, log_rest = math.log(b), log_or_neg_inf(big_b - b)
  # Log-space so that large beta / small tau cannot overflow.
  log_mean_exp = (
      logsumexp([log_b + (1 + beta) * u, log_rest + (1 + beta) * v]) -
      logsumexp([log_b + beta * u, log_rest + beta * v]))
  return softplus(log_mean_exp - u)


