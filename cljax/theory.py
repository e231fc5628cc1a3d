"""Closed-form theory of contrastive learning: bounds, optima and geometry.

Everything here is a closed-form utility evaluated in float64 (plain Python
floats, NumPy float64 arrays, exact Python integers for combinatorics). Nothing
is traced or trained: use these values as targets for tests and plots of the
losses in :mod:`cljax.losses` and the metrics in :mod:`cljax.geometry`.

Notation (the cljax specification ``papers.md``, section 1): ``C`` classes,
``n`` samples per class, ``N = C * n`` samples, ``K`` views per sample,
``tau`` the temperature (logits are ``similarity / tau``). Throughout,
``e = exp(-C / ((C - 1) * tau))`` is the exponentiated logit of a negative
relative to a positive at a unit-norm simplex ETF. "Section x.y" in the
References of each function means that section of ``papers.md``, which states
the formula (with its provenance: paper, authors' code, or derived).

Papers:
  * P1: Luthra, Yang, Galanti, "Self-Supervised Contrastive Learning is
    Approximately Supervised Contrastive Learning", NeurIPS 2025
    (arXiv 2506.04411).
  * P2: Graf, Hofer, Niethammer, Kwitt, "Dissecting Supervised Contrastive
    Learning", ICML 2021 (arXiv 2102.08817).
  * P3: Jiang, Nguyen, Aeron, Ishwar, "Hard-Negative Sampling for Contrastive
    Learning: Optimal Representation Geometry and Neural- vs
    Dimensional-Collapse", TMLR (arXiv 2311.05139).
"""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Any, NamedTuple

import numpy as np

from cljax import _checks

__all__ = [
    "FewShotBound",
    "batch_gap_bound",
    "batch_gap_bound_from_labels",
    "check_gap",
    "cross_entropy_at_simplex",
    "dcl_at_etf",
    "double_counted_gap_bound",
    "fewshot_bound",
    "gap_bound",
    "gap_bound_from_counts",
    "nscl_at_etf",
    "ntxent_at_etf",
    "scl_at_etf",
    "simplex_etf",
    "supcon_at_etf",
    "supcon_multiset_bound",
    "supcon_multiset_counts",
    "ucl_at_etf",
]

# Relative cubic residual above which `fewshot_bound` refuses its root.
_CUBIC_RTOL = 1e-8


# ----------------------------------------------------------------------------
# Validation and numerics helpers.
# ----------------------------------------------------------------------------


def _as_int(value: Any, name: str, minimum: int) -> int:
  """Returns ``value`` as a Python int ``>= minimum`` or raises ValueError."""
  # bool is an int subclass; a flag passed by mistake must not count as 1.
  if isinstance(value, (bool, np.bool_)) or not isinstance(
      value, (int, np.integer)):
    raise ValueError(
        f"`{name}` must be a Python integer >= {minimum}; got {value!r} of "
        f"type {type(value).__name__}. Pass e.g. `{name}=int(...)`.")
  value = int(value)
  if value < minimum:
    raise ValueError(f"`{name}` must be an integer >= {minimum}; got {value}.")
  return value


def _as_float(value: Any, name: str, allow_zero: bool = False) -> float:
  """Returns a finite positive (or non-negative) hyper-parameter as float."""
  if isinstance(value, (bool, np.bool_)):
    raise ValueError(f"`{name}` must be a real number; got {value!r}.")
  try:
    as_float = float(value)
  except (TypeError, ValueError):
    raise ValueError(
        f"`{name}` must be a real number; got {value!r} of type "
        f"{type(value).__name__}.") from None
  _checks.check_positive(as_float, name, allow_zero=allow_zero)
  return as_float


def _as_counts(class_counts: Any, name: str = "class_counts") -> np.ndarray:
  """Validates a vector of non-negative integer class counts (int64)."""
  counts = np.asarray(class_counts)
  _checks.check_rank(counts, 1, name, "[num_classes]")
  if counts.size == 0:
    raise ValueError(f"`{name}` is empty; pass one count per class.")
  if not np.issubdtype(counts.dtype, np.integer):
    raise ValueError(
        f"`{name}` must hold integers (samples per class); got dtype "
        f"{counts.dtype}. From labels use `np.bincount(labels)` or "
        f"`batch_gap_bound_from_labels`.")
  counts = counts.astype(np.int64)
  if np.any(counts < 0):
    raise ValueError(f"`{name}` must be >= 0; got {counts.tolist()}.")
  if counts.sum() == 0:
    raise ValueError(f"`{name}` must contain at least one sample; got all "
                     f"zeros.")
  return counts


def _softplus(t: float) -> float:
  """log(1 + exp(t)) without overflow for large t (small temperatures)."""
  if t > 0:
    return t + math.log1p(math.exp(-t))
  return math.log1p(math.exp(t))


def _log_a_plus_b_exp(a: float, b: float, t: float) -> float:
  """log(a + b * exp(t)) for a >= 0, b > 0, stable for large |t|."""
  if a == 0:
    return math.log(b) + t
  return math.log(a) + _softplus(math.log(b / a) + t)


def _logsumexp(log_terms: list[float]) -> float:
  """log(sum(exp(x))) over a short list; -inf entries are empty terms."""
  hi = max(log_terms)
  if hi == -math.inf:
    return -math.inf
  return hi + math.log(sum(math.exp(x - hi) for x in log_terms))


def _log_or_neg_inf(x: float) -> float:
  return math.log(x) if x > 0 else -math.inf


def _gap_term(n_c: int, total: int, temperature: float) -> float:
  """log(1 + e^{2/tau} (n_c - 1) / (N - n_c)) for one present class."""
  if total - n_c == 0:
    # Every sample shares the anchor's class: NSCL has no negatives (its
    # denominator is empty), so the gap and its bound are unbounded.
    return math.inf
  if n_c == 1:
    return 0.0
  return _softplus(2.0 / temperature + math.log((n_c - 1) / (total - n_c)))


def _neg_logit_gap(num_classes: int, temperature: float) -> float:
  """log e = -C / ((C - 1) tau): negative minus positive logit at the ETF."""
  return -num_classes / ((num_classes - 1) * temperature)


# ----------------------------------------------------------------------------
# Geometry.
# ----------------------------------------------------------------------------


def simplex_etf(num_classes: int, dim: int, radius: float = 1.0,
                dtype: Any = np.float64) -> np.ndarray:
  """Deterministic simplex equiangular tight frame (ETF) of class means.

  Row ``c`` is row ``c`` of the centring matrix ``I - 11^T / C`` rescaled to
  norm ``radius`` and written in the orthonormal Helmert basis of the sum-zero
  subspace of ``R^C`` (whose ``k``-th vector is
  ``(1, ..., 1, -k, 0, ..., 0) / sqrt(k (k + 1))`` with ``k`` ones), padded
  with zeros from ``C - 1`` to ``dim`` coordinates. The result satisfies
  ``||mu_c|| = radius``, ``<mu_c, mu_c'> = -radius^2 / (C - 1)`` for
  ``c != c'`` and ``sum_c mu_c = 0``. Apply an orthogonal matrix to the rows
  for a randomly oriented ETF.

  Args:
    num_classes: ``C >= 2``, the number of vertices.
    dim: embedding dimension, ``>= C - 1`` (the ETF spans ``C - 1`` dims).
    radius: norm of every row, ``> 0``.
    dtype: NumPy floating dtype of the result (float64 by default so that
      closed-form checks are exact to round-off; pass ``np.float32`` or wrap
      in ``jnp.asarray`` for JAX).

  Returns:
    A NumPy array of shape ``[C, dim]`` and dtype ``dtype`` (not a JAX array).

  Raises:
    ValueError: if ``C < 2``, ``dim < C - 1``, ``radius <= 0`` or ``dtype`` is
      not floating.

  References:
    Papyan, Han, Donoho (2020) neural-collapse ETF; P1 Theorem 2 (section
    2.4) and P3 (section 4.2): unit norm, zero sum, equal inner products
    -1/(C-1); P2 (section 3.2): regular simplex inscribed in the rho-sphere.

  Examples:
    >>> m = simplex_etf(3, 2)
    >>> m.shape
    (3, 2)
    >>> np.round(m @ m.T, 6).tolist()
    [[1.0, -0.5, -0.5], [-0.5, 1.0, -0.5], [-0.5, -0.5, 1.0]]
  """
  num_classes = _as_int(num_classes, "num_classes", 2)
  dim = _as_int(dim, "dim", 1)
  if dim < num_classes - 1:
    raise ValueError(
        f"`dim` must be >= num_classes - 1 = {num_classes - 1} (a simplex ETF "
        f"of {num_classes} vertices spans {num_classes - 1} dimensions); got "
        f"dim={dim}.")
  radius = _as_float(radius, "radius")
  if not np.issubdtype(np.dtype(dtype), np.floating):
    raise ValueError(f"`dtype` must be a floating dtype; got {dtype!r}.")
  c = num_classes
  # Helmert rows h_k (k = 1..C-1) are orthonormal and orthogonal to 1, so the
  # coordinates of row c of (I - 11^T/C) in that basis are simply H[:, c]:
  # no QR or random numbers are needed and the result is bit-reproducible.
  helmert = np.zeros((c - 1, c), dtype=np.float64)
  for k in range(1, c):
    norm = math.sqrt(k * (k + 1))
    helmert[k - 1, :k] = 1.0 / norm
    helmert[k - 1, k] = -k / norm
  # Rows of I - 11^T/C have norm sqrt((C-1)/C); rescale to `radius`.
  means = np.zeros((c, dim), dtype=np.float64)
  means[:, :c - 1] = helmert.T * (radius * math.sqrt(c / (c - 1)))
  return means.astype(dtype)


# ----------------------------------------------------------------------------
# P1 Theorem 1: the CL-NSCL gap bound.
# ----------------------------------------------------------------------------


def gap_bound(num_classes: int, temperature: float = 1.0) -> float:
  """Balanced Theorem-1 bound ``log(1 + e^{2/tau} / (C - 1))`` of P1.

  For balanced classes and cosine similarities, every anchor satisfies
  ``0 <= L_DCL - L_NSCL <= log(1 + e^{2/tau} (n - 1) / (N - n))``, which is
  below ``log(1 + e^{2/tau} / (C - 1))`` for every ``n`` (the value is its
  ``n -> infinity`` limit). ``tau = 1`` gives the published
  ``log(1 + e^2 / (C - 1))``. The bound is ``O(1/C)``.

  Args:
    num_classes: ``C >= 2``.
    temperature: ``tau > 0`` (logits are cosine / tau).

  Returns:
    The bound as a Python float.

  Raises:
    ValueError: if ``C < 2`` (NSCL has no negatives) or ``tau <= 0``.

  References:
    P1 Theorem 1 (papers.md section 2.3); values in papers.md section 9.1.

  Examples:
    >>> round(gap_bound(10), 6)
    0.599389
  """
  num_classes = _as_int(num_classes, "num_classes", 2)
  temperature = _as_float(temperature, "temperature")
  return _softplus(2.0 / temperature - math.log(num_classes - 1))


def gap_bound_from_counts(class_counts: Any,
                          temperature: float = 1.0) -> float:
  """General (unbalanced) Theorem-1 bound: the worst class.

  ``max_{c: n_c >= 1} log(1 + e^{2/tau} (n_c - 1) / (N - n_c))`` with
  ``N = sum_c n_c``. Classes with ``n_c = 0`` are absent and ignored. If one
  class holds all ``N`` samples, NSCL has no negatives and the result is
  ``inf`` (no finite bound exists).

  Args:
    class_counts: integer array-like ``[num_classes]`` of ``n_c >= 0``.
    temperature: ``tau > 0``.

  Returns:
    The bound as a Python float (possibly ``math.inf``).

  Raises:
    ValueError: if the counts are not a non-empty 1-D integer vector of
      non-negative values with a positive sum, or ``tau <= 0``.

  References:
    P1 Theorem 1, per-anchor proof (papers.md section 2.3).

  Examples:
    >>> round(gap_bound_from_counts([4] * 10), 4)
    0.4798
  """
  counts = _as_counts(class_counts)
  temperature = _as_float(temperature, "temperature")
  total = int(counts.sum())
  return max(_gap_term(int(n_c), total, temperature)
             for n_c in counts if n_c >= 1)


def batch_gap_bound(class_counts: Any, temperature: float = 1.0) -> float:
  """Per-anchor-averaged Theorem-1 bound for one (mini-)batch.

  ``(1/N) sum_c n_c log(1 + e^{2/tau} (n_c - 1) / (N - n_c))`` where
  ``n_c`` are the class counts of the batch (or data set) and ``N`` their sum.
  The gap of every anchor of class ``c`` is at most its class term, and both
  losses average over anchors, so this bounds ``L_DCL - L_NSCL`` of that batch
  and is never larger than :func:`gap_bound_from_counts`. It is a per-batch
  guarantee, not a worst case over random batches. Returns ``inf`` when only
  one class is present (NSCL then has no negatives). For a label vector use
  :func:`batch_gap_bound_from_labels`.

  Args:
    class_counts: integer array-like ``[num_classes]`` of ``n_c >= 0``.
    temperature: ``tau > 0``.

  Returns:
    The bound as a Python float (possibly ``math.inf``).

  Raises:
    ValueError: as :func:`gap_bound_from_counts`.

  References:
    P1 Theorem 1, batch version (papers.md section 2.3, [derived]).

  Examples:
    >>> round(batch_gap_bound([2, 2]), 6)
    1.546398
  """
  counts = _as_counts(class_counts)
  temperature = _as_float(temperature, "temperature")
  total = int(counts.sum())
  acc = 0.0
  for n_c in counts:
    if n_c >= 1:
      acc += int(n_c) * _gap_term(int(n_c), total, temperature)
  return acc / total


def batch_gap_bound_from_labels(labels: Any, temperature: float = 1.0,
                                num_classes: int | None = None) -> float:
  """:func:`batch_gap_bound` from an integer label vector ``[B]``.

  Args:
    labels: integer array ``[B]`` of class ids in ``[0, num_classes)`` (one
      per sample, not per view: views share their sample's class).
    temperature: ``tau > 0``.
    num_classes: optional number of classes, used only for the range check.

  Returns:
    The per-batch bound as a Python float (possibly ``math.inf``).

  Raises:
    ValueError: if ``labels`` is not a non-empty integer vector with values in
      range, or ``tau <= 0``.

  References:
    P1 Theorem 1, batch version (papers.md section 2.3).

  Examples:
    >>> round(batch_gap_bound_from_labels(np.array([0, 1, 0, 1])), 6)
    1.546398
  """
  labels = np.asarray(labels)
  _checks.check_labels(labels, int(np.size(labels)), "labels", num_classes)
  if labels.size == 0:
    raise ValueError("`labels` is empty; pass at least one label.")
  if np.min(labels) < 0:
    raise ValueError(f"`labels` must be >= 0; got min {int(np.min(labels))}.")
  return batch_gap_bound(np.bincount(labels.astype(np.int64)), temperature)


def double_counted_gap_bound(num_classes: int, samples_per_class: int,
                             num_views: int,
                             temperature: float = 1.0) -> float:
  """Gap bound for P1's code "CL" (positive counted twice) vs code NSCL.

  ``log(1 + e^{2/tau} (K (n - 1) + 1) / (K (N - n)))``. The code's
  ``ContrastiveLoss`` puts ``e^{s_ap}`` in the denominator *and* all
  ``2B - 1`` views other than the anchor, so for ``K = 2`` its denominator is
  ``2 e^{s_ap} + sum_{j != i, l} e^{s}``; compared with the code NSCL
  (denominator ``e^{s_ap} + sum_{y_j != y_i, l} e^{s}``) the extra mass is the
  same-class mass plus one more positive, hence the ``+ 1``. For ``K > 2``
  this bound is for the same definition (positive twice, other views of the
  anchor's sample excluded); if those ``K - 2`` views are also in the CL
  denominator, replace ``+1`` by ``+(K - 1)``. Theorem 1's
  :func:`gap_bound` does not cover this pair.

  Args:
    num_classes: ``C >= 2``.
    samples_per_class: ``n >= 1``.
    num_views: ``K >= 2``.
    temperature: ``tau > 0``.

  Returns:
    The bound as a Python float.

  Raises:
    ValueError: on out-of-range arguments.

  References:
    P1 code ``utils/losses.py`` ``ContrastiveLoss``; papers.md section 2.3
    ([derived]).

  Examples:
    >>> round(double_counted_gap_bound(10, 100, 2), 4)
    0.5971
  """
  c = _as_int(num_classes, "num_classes", 2)
  n = _as_int(samples_per_class, "samples_per_class", 1)
  k = _as_int(num_views, "num_views", 2)
  temperature = _as_float(temperature, "temperature")
  ratio = (k * (n - 1) + 1) / (k * (c * n - n))
  return _softplus(2.0 / temperature + math.log(ratio))


def check_gap(dcl_value: Any, nscl_value: Any, bound: float,
              rtol: float = 1e-5, atol: float = 1e-7) -> float:
  """Asserts Theorem 1, ``0 <= dcl_value - nscl_value <= bound``; returns gap.

  The tolerance ``atol + rtol * max(|dcl|, |nscl|)`` absorbs float32
  round-off of losses computed by :mod:`cljax.losses`; it is applied on both
  sides.

  Args:
    dcl_value: scalar CL/DCL loss (Python, NumPy or concrete JAX scalar).
    nscl_value: scalar NSCL loss on the same features and batch.
    bound: e.g. :func:`gap_bound`, :func:`gap_bound_from_counts` or
      :func:`batch_gap_bound`.
    rtol: relative tolerance, ``>= 0``.
    atol: absolute tolerance, ``>= 0``.

  Returns:
    The gap ``dcl_value - nscl_value`` as a Python float.

  Raises:
    AssertionError: if the gap is negative or exceeds ``bound`` beyond the
      tolerance (like ``np.testing`` helpers).
    ValueError: if an input is not a finite real scalar.

  References:
    P1 Theorem 1 (papers.md section 2.3).

  Examples:
    >>> round(check_gap(5.3, 5.2, gap_bound(10)), 6)
    0.1
  """
  values = []
  for name, value in (("dcl_value", dcl_value), ("nscl_value", nscl_value)):
    if np.ndim(value) != 0:
      raise ValueError(f"`{name}` must be a scalar; got shape "
                       f"{tuple(np.shape(value))}.")
    try:
      value = float(value)
    except (TypeError, ValueError):
      raise ValueError(f"`{name}` must be a real scalar; got {value!r}.") \
          from None
    if not math.isfinite(value):
      raise ValueError(f"`{name}` must be finite; got {value}.")
    values.append(value)
  dcl, nscl = values
  try:
    bound = float(bound)
  except (TypeError, ValueError):
    raise ValueError(f"`bound` must be a real scalar; got {bound!r}.") \
        from None
  if math.isnan(bound):
    raise ValueError("`bound` is NaN; pass e.g. `gap_bound(num_classes)`.")
  rtol = _as_float(rtol, "rtol", allow_zero=True)
  atol = _as_float(atol, "atol", allow_zero=True)
  gap = dcl - nscl
  tol = atol + rtol * max(abs(dcl), abs(nscl))
  if gap < -tol:
    raise AssertionError(
        f"Theorem-1 gap is negative: dcl - nscl = {gap:.6g} < 0 (tolerance "
        f"{tol:.3g}). The CL/DCL denominator must contain the NSCL one: check "
        f"that both losses use the same features, labels and positive "
        f"convention.")
  if gap > bound + tol:
    raise AssertionError(
        f"Theorem-1 gap {gap:.6g} exceeds the bound {bound:.6g} (tolerance "
        f"{tol:.3g}). Check the temperature, the class counts the bound was "
        f"computed for, and that the CL variant is not the double-counting "
        f"one (see `double_counted_gap_bound`).")
  return gap


# ----------------------------------------------------------------------------
# Loss values at the collapsed simplex ETF.
# ----------------------------------------------------------------------------


def _etf_args(num_classes, samples_per_class, num_views, temperature,
              min_views):
  c = _as_int(num_classes, "num_classes", 2)
  n = _as_int(samples_per_class, "samples_per_class", 1)
  k = _as_int(num_views, "num_views", min_views)
  tau = _as_float(temperature, "temperature")
  return c, n, k, tau


def nscl_at_etf(num_classes: int, samples_per_class: int, num_views: int,
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
    P1 Theorem 2 and papers.md section 2.4 (minimum value [derived]);
    section 2.2 for the code form.

  Examples:
    >>> round(nscl_at_etf(4, 3, 3, 0.2), 2)
    -3.37
  """
  c, n, k, tau = _etf_args(num_classes, samples_per_class, num_views,
                           temperature, 2)
  log_e = _neg_logit_gap(c, tau)
  if positive_in_denominator:
    return _log_a_plus_b_exp(1.0, k * (c * n - n), log_e)
  return math.log(k * (c * n - n)) + log_e


def dcl_at_etf(num_classes: int, samples_per_class: int, num_views: int,
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
    num_classes: ``C >= 2``.
    samples_per_class: ``n >= 1``.
    num_views: ``K >= 2``.
    temperature: ``tau > 0``.
    positive_in_denominator: add the positive to the denominator.

  Returns:
    The loss value as a Python float.

  Raises:
    ValueError: on out-of-range arguments.

  References:
    P1, sections 2.1 (DCL) and 2.4 (value at the NSCL optimum).

  Examples:
    >>> round(dcl_at_etf(10, 1, 2), 6) == round(nscl_at_etf(10, 1, 2), 6)
    True
  """
  c, n, k, tau = _etf_args(num_classes, samples_per_class, num_views,
                           temperature, 2)
  same = k * (n - 1) + (1 if positive_in_denominator else 0)
  return _log_a_plus_b_exp(float(same), k * (c * n - n),
                           _neg_logit_gap(c, tau))


def ntxent_at_etf(num_classes: int, samples_per_class: int, num_views: int,
                  temperature: float = 1.0) -> float:
  """SimCLR NT-Xent at the collapsed simplex ETF.

  Positive: another view of the anchor's sample; denominator: every view but
  the anchor (the positive, the other ``K - 2`` views of the sample, the
  ``K (n - 1)`` same-class views, the ``K (N - n)`` other-class views):
  ``L = log(K n - 1 + K (N - n) e)``, ``e = exp(-C / ((C - 1) tau))``.

  Args:
    num_classes: ``C >= 2``.
    samples_per_class: ``n >= 1``.
    num_views: ``K >= 2``.
    temperature: ``tau > 0``.

  Returns:
    The loss value as a Python float.

  Raises:
    ValueError: on out-of-range arguments.

  References:
    Chen et al. 2020 (SimCLR); P1 code ``NTXentLoss`` (papers.md 2.2).

  Examples:
    >>> round(ntxent_at_etf(2, 1, 2, 1.0), 6)
    0.239545
  """
  c, n, k, tau = _etf_args(num_classes, samples_per_class, num_views,
                           temperature, 2)
  return _log_a_plus_b_exp(float(k * n - 1), k * (c * n - n),
                           _neg_logit_gap(c, tau))


def supcon_at_etf(num_classes: int, samples_per_class: int, num_views: int,
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
    >>> round(supcon_at_etf(2, 1, 2, 1.0), 6)
    0.239545
  """
  c, n, k, tau = _etf_args(num_classes, samples_per_class, num_views,
                           temperature, 1)
  if k * n < 2:
    raise ValueError(
        f"SupCon needs num_views * samples_per_class >= 2 so that every "
        f"anchor has a positive; got num_views={k}, samples_per_class={n}.")
  return _log_a_plus_b_exp(float(k * n - 1), k * (c * n - n),
                           _neg_logit_gap(c, tau))


def cross_entropy_at_simplex(num_classes: int, feature_radius: float = 1.0,
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

  Raises:
    ValueError: on out-of-range arguments.

  References:
    P2 CE-at-the-simplex result, section 3.2 ([derived] form).

  Examples:
    >>> round(cross_entropy_at_simplex(2), 6)
    0.126928
  """
  c = _as_int(num_classes, "num_classes", 2)
  rho = _as_float(feature_radius, "feature_radius")
  r_w = _as_float(weight_radius, "weight_radius")
  return _log_a_plus_b_exp(1.0, c - 1, -rho * r_w * c / (c - 1))


def scl_at_etf(num_classes: int, temperature: float = 1.0) -> float:
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
    The pair loss as a Python float.

  Raises:
    ValueError: on out-of-range arguments.

  References:
    P3, sections 4.1 (code pair loss) and 4.2 (NC minimises SCL, HSCL).

  Examples:
    >>> round(scl_at_etf(10), 5)
    0.28457
  """
  c = _as_int(num_classes, "num_classes", 2)
  tau = _as_float(temperature, "temperature")
  return _softplus(_neg_logit_gap(c, tau))


def ucl_at_etf(num_classes: int, class_count_in_batch: int, batch_size: int,
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
    >>> round(ucl_at_etf(2, 2, 4), 6)
    0.449589
  """
  c = _as_int(num_classes, "num_classes", 2)
  b = _as_int(class_count_in_batch, "class_count_in_batch", 1)
  big_b = _as_int(batch_size, "batch_size", 1)
  if b > big_b:
    raise ValueError(
        f"`class_count_in_batch` must be <= batch_size={big_b}; got {b}.")
  tau = _as_float(temperature, "temperature")
  beta = _as_float(beta, "beta", allow_zero=True)
  u, v = 1.0 / tau, -1.0 / ((c - 1) * tau)
  log_b, log_rest = math.log(b), _log_or_neg_inf(big_b - b)
  # Log-space so that large beta / small tau cannot overflow.
  log_mean_exp = (
      _logsumexp([log_b + (1 + beta) * u, log_rest + (1 + beta) * v]) -
      _logsumexp([log_b + beta * u, log_rest + beta * v]))
  return _softplus(log_mean_exp - u)


# ----------------------------------------------------------------------------
# P2: SupCon lower bound over all multisets.
# ----------------------------------------------------------------------------


def _multiset_coeff(n: int, k: int) -> int:
  """((n k)) = binom(n + k - 1, k): multisets of size k from n items."""
  if k == 0:
    return 1
  if n == 0:
    return 0
  return math.comb(n + k - 1, k)


def supcon_multiset_counts(num_classes: int, samples_per_class: int,
                           batch_size: int) -> dict[int, int]:
  """Exact counts ``M_l = C ((n l)) ((N - n b - l))`` of P2's SupCon bound.

  ``M_l`` counts the (class, multiset) pairs in which that class occurs
  exactly ``l`` times among all multisets of size ``b`` drawn from the ``N``
  samples; ``((n k)) = binom(n + k - 1, k)``. By the multiset Vandermonde
  identity ``sum_l M_l = C ((N b))``.

  Args:
    num_classes: ``C >= 2``.
    samples_per_class: ``n >= 1``.
    batch_size: ``b >= 1``.

  Returns:
    A dict ``{l: M_l}`` for ``l = 0, ..., b`` of exact Python ints (the bound
    uses ``l >= 2``).

  Raises:
    ValueError: on out-of-range arguments.

  References:
    P2 SupCon lower bound, section 3.2.

  Examples:
    >>> supcon_multiset_counts(2, 2, 3)
    {0: 8, 1: 12, 2: 12, 3: 8}
  """
  c = _as_int(num_classes, "num_classes", 2)
  n = _as_int(samples_per_class, "samples_per_class", 1)
  b = _as_int(batch_size, "batch_size", 1)
  others = c * n - n
  return {l: c * _multiset_coeff(n, l) * _multiset_coeff(others, b - l)
          for l in range(b + 1)}


def supcon_multiset_bound(num_classes: int, samples_per_class: int,
                          batch_size: int, temperature: float = 0.1,
                          radius: float = 1.0,
                          reduction: str = "sum") -> float:
  """P2's lower bound of the SupCon loss summed over all batch multisets.

  ``sum_{l=2}^{b} l M_l log(l - 1 + (b - l) exp(-C rho^2 / ((C - 1) tau)))``
  with ``M_l`` from :func:`supcon_multiset_counts`. The per-batch loss is
  Khosla's L_out with *sum* over anchors (anchors without positives add 0; a
  duplicate of the anchor is a positive), features on the radius-``rho``
  sphere, logits ``<z_i, z_j> / tau``; the bound holds for every such
  configuration when ``dim >= C - 1``, with equality iff every class collapses
  to a vertex of a regular simplex inscribed in the sphere.

  Args:
    num_classes: ``C >= 2``.
    samples_per_class: ``n >= 1`` (balanced, ``N = C n``).
    batch_size: ``b >= 1``; batches are all ``((N b))`` multisets of size b.
    temperature: ``tau > 0`` (P2 trains with 0.1).
    radius: ``rho > 0``.
    reduction: ``"sum"`` — P2's sum over all multisets (may exceed float64
      for realistic ``N, b``: then OverflowError); ``"mean"`` — the sum
      divided by ``((N b)) * b``, i.e. the per-anchor loss averaged over
      *uniformly weighted* multisets with training's ``1/|B|`` reduction
      (i.i.d. sampling of ordered batches weights multisets differently).

  Returns:
    The bound as a Python float (exact integer counts, float64 logs).

  Raises:
    ValueError: on out-of-range arguments.
    OverflowError: if ``reduction="sum"`` exceeds the float64 range.

  References:
    P2 Theorem (SupCon lower bound), papers.md section 3.2; brute-force check
    in papers.md section 9.2.

  Examples:
    >>> round(supcon_multiset_bound(2, 2, 3, temperature=1.0), 6)
    19.681805
  """
  counts = supcon_multiset_counts(num_classes, samples_per_class, batch_size)
  c, b = int(num_classes), int(batch_size)
  tau = _as_float(temperature, "temperature")
  rho = _as_float(radius, "radius")
  _checks.check_choice(reduction, "reduction", ("sum", "mean"))
  log_e = -c * rho * rho / ((c - 1) * tau)
  n_batches = _multiset_coeff(c * int(samples_per_class), b)
  total = 0.0
  for l in range(2, b + 1):
    if counts[l] == 0:
      continue
    if l == b:  # No other class in the batch: only the l - 1 positives.
      term = math.log(l - 1)
    else:
      term = _log_a_plus_b_exp(float(l - 1), float(b - l), log_e)
    if reduction == "mean":
      # Exact rational weight, then one correctly rounded float division.
      weight = float(Fraction(l * counts[l], n_batches * b))
    else:
      try:
        weight = float(l * counts[l])
      except OverflowError:
        raise OverflowError(
            f"The multiset sum for N={c * int(samples_per_class)}, b={b} "
            f"exceeds float64; use `reduction=\"mean\"`.") from None
    total += weight * term
  if math.isinf(total):
    raise OverflowError("The multiset sum exceeds float64; use "
                        "`reduction=\"mean\"`.")
  return total


# ----------------------------------------------------------------------------
# P1 few-shot NCC error bound.
# ----------------------------------------------------------------------------


class FewShotBound(NamedTuple):
  """Details of :func:`fewshot_bound` (``return_details=True``).

  Attributes:
    value: the bound ``(C' - 1) E(a*)`` (float).
    a_star: the minimising ``a >= 5`` (``inf`` when ``cdnv = 0``: the
      infimum is the limit ``a -> inf``; ``max(5, 2A)`` when
      ``directional_cdnv = 0``, not attained if ``2A >= 5``).
    cubic_residual: relative residual of the cubic root ``y*`` (0 when no
      cubic was solved).
  """
  value: float
  a_star: float
  cubic_residual: float


def _largest_cubic_root(big_a: float, big_f: float) -> tuple[float, float]:
  """Largest real root of ``y^3 - 8 F y - 16 F A = 0`` and its residual.

  For ``A, F > 0`` it is the only positive root (one sign change). Cardano
  when ``A^2 >= 8F/27`` (one real root), else the trigonometric form.
  """
  disc = big_a * big_a - 8.0 * big_f / 27.0
  if disc >= 0:
    s = math.sqrt(disc)
    # A - s cancels when F << A^2: use the conjugate (A^2 - s^2)/(A + s).
    small = (8.0 * big_f / 27.0) / (big_a + s)
    y = float(np.cbrt(8.0 * big_f * (big_a + s)) +
              np.cbrt(8.0 * big_f * small))
  else:
    arg = 3.0 * big_a * math.sqrt(3.0 / (8.0 * big_f))
    y = 4.0 * math.sqrt(2.0 * big_f / 3.0) * math.cos(
        math.acos(min(1.0, arg)) / 3.0)
  residual = y**3 - 8.0 * big_f * y - 16.0 * big_f * big_a
  scale = abs(y)**3 + 8.0 * big_f * abs(y) + 16.0 * big_f * big_a
  return y, abs(residual) / scale


def fewshot_bound(directional_cdnv: float, cdnv: float, shots: float,
                  ways: int = 2, variant: str = "published",
                  return_details: bool = False) -> float | FewShotBound:
  """P1's few-shot nearest-class-centre error bound, optimised over ``a``.

  With ``alpha`` = directional CDNV, ``V`` = CDNV, ``m`` = shots,
  ``A = 2 + 2^{3/2}/m`` and, for any ``a >= 5`` with ``a > 2A``,

  * ``variant="published"`` (NeurIPS):
    ``E(a) = (1/2 - A/a)^{-2} alpha + B a`` with
    ``B = (2 sqrt(V/m) + 2 V / sqrt(m) + V/m) / 4`` (the paper's ``V^s``
    replaced by ``sqrt(V)`` as in the authors' evaluation code);
  * ``variant="v1"`` (arXiv v1 / ``docs/evaluation.md``):
    ``E(a) = (1/2 - A/a)^{-2} alpha + (2 sqrt(2) V / m) a``,

  the error of ``C'``-way NCC is at most ``(C' - 1) E(a)``. ``E`` is convex
  in ``y = a - 2A > 0`` and ``E'(y) = 0`` iff ``y^3 - 8 F y - 16 F A = 0``,
  ``F = 2 alpha A / B``; its unique positive root ``y*`` is taken from
  Cardano's formula or the trigonometric branch (not the wrong Cardano branch
  of the authors' ``bound_core.py``), its relative residual is checked, and
  ``a* = max(5, 2A + y*)``. As ``m -> inf`` the value tends to
  ``4 (C' - 1) alpha``. Degenerate inputs: ``alpha = 0`` returns the
  infimum ``(C'-1) B max(5, 2A)``; ``V = 0`` returns the infimum
  ``4 (C'-1) alpha`` (``a* = inf``).

  Args:
    directional_cdnv: ``alpha >= 0``, pair-averaged directional CDNV.
    cdnv: ``V >= 0``, the CDNV (P1's convention, with the factor 1/2).
    shots: ``m >= 1`` labelled samples per class (normally an integer; real
      values are accepted for limit studies).
    ways: ``C' >= 2`` classes of the few-shot task.
    variant: ``"published"`` (default) or ``"v1"``.
    return_details: if True return a :class:`FewShotBound` (value, a*,
      cubic residual) instead of the float.

  Returns:
    The bound as a Python float, or a :class:`FewShotBound`.

  Raises:
    ValueError: on negative CDNVs, ``shots < 1``, ``ways < 2`` or an unknown
      variant.
    RuntimeError: if the cubic root's relative residual exceeds 1e-8.

  References:
    P1 few-shot proposition (NeurIPS version quoted in the
    ``directional_cdnv_bounds`` README); papers.md section 2.6. The section
    2.7 example (alpha=0.0729, V=1.672, 2-way) gives 29.115 at m=1 and 1.4595
    at m=500 with the published form.

  Examples:
    >>> round(fewshot_bound(0.0729, 1.672, 1), 1)
    29.1
  """
  alpha = _as_float(directional_cdnv, "directional_cdnv", allow_zero=True)
  v = _as_float(cdnv, "cdnv", allow_zero=True)
  if isinstance(shots, (bool, np.bool_)):
    raise ValueError(f"`shots` must be a number >= 1; got {shots!r}.")
  m = _as_float(shots, "shots")
  if m < 1:
    raise ValueError(f"`shots` must be >= 1 (samples per class); got {m}.")
  ways = _as_int(ways, "ways", 2)
  _checks.check_choice(variant, "variant", ("published", "v1"))

  big_a = 2.0 + 2.0**1.5 / m
  if variant == "published":
    big_b = (2.0 * math.sqrt(v / m) + 2.0 * v / math.sqrt(m) + v / m) / 4.0
  else:
    big_b = 2.0 * math.sqrt(2.0) * v / m
  lower = max(5.0, 2.0 * big_a)  # a >= 5 and a > 2A (the bracket's pole).

  residual = 0.0
  if big_b == 0.0:
    # E decreases in a towards 4 alpha: the infimum is the limit a -> inf.
    value, a_star = 4.0 * alpha, math.inf
  elif alpha == 0.0:
    # E = B a: infimum at the lower end (not attained if 2A >= 5).
    value, a_star = big_b * lower, lower
  else:
    big_f = 2.0 * alpha * big_a / big_b
    y_star, residual = _largest_cubic_root(big_a, big_f)
    if not residual <= _CUBIC_RTOL:
      raise RuntimeError(
          f"Cubic root y*={y_star!r} has relative residual {residual:.3g} > "
          f"{_CUBIC_RTOL} (A={big_a!r}, F={big_f!r}); please report this "
          f"input.")
    y = max(5.0 - 2.0 * big_a, y_star)
    a_star = 2.0 * big_a + y
    # Written in y = a - 2A so that a close to the pole loses no digits.
    value = 4.0 * alpha * ((y + 2.0 * big_a) / y)**2 + big_b * a_star
  value *= ways - 1
  if return_details:
    return FewShotBound(float(value), float(a_star), float(residual))
  return float(value)
