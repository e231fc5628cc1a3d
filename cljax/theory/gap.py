"""P1 Theorem 1: bounds on the CL/DCL - NSCL gap, and a checker."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from cljax._src import checks
from cljax._src import docs
from cljax.theory._numerics import (as_counts, as_float, as_int, etf_args,
                                    softplus)

def _gap_term(n_c: int, total: int, temperature: float) -> float:
  """log(1 + e^{2/tau} (n_c - 1) / (N - n_c)) for one present class."""
  if total - n_c == 0:
    # Every sample shares the anchor's class: NSCL has no negatives (its
    # denominator is empty), so the gap and its bound are unbounded.
    return math.inf
  if n_c == 1:
    return 0.0
  return softplus(2.0 / temperature + math.log((n_c - 1) / (total - n_c)))




def _counts_args(class_counts: Any,
                 temperature: Any) -> tuple[np.ndarray, int, float]:
  """Validated class counts, their sum N and ``tau``."""
  counts = as_counts(class_counts)
  return counts, int(counts.sum()), as_float(temperature, "temperature")


def gap_bound(num_classes: int, *, temperature: float = 1.0) -> float:
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
    P1 Theorem 1 (docs/conventions.md#gap-bound); values in
    docs/conventions.md#reference-values.

  Examples:
    >>> from cljax import theory
    >>> round(theory.gap_bound(10), 6)
    0.599389
  """
  num_classes = as_int(num_classes, "num_classes", 2)
  temperature = as_float(temperature, "temperature")
  return softplus(2.0 / temperature - math.log(num_classes - 1))


def gap_bound_from_counts(class_counts: Any, *,
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
    P1 Theorem 1, per-anchor proof (docs/conventions.md#gap-bound).

  Examples:
    >>> from cljax import theory
    >>> round(theory.gap_bound_from_counts([4] * 10), 4)
    0.4798
  """
  counts, total, temperature = _counts_args(class_counts, temperature)
  return max(_gap_term(int(n_c), total, temperature)
             for n_c in counts if n_c >= 1)


def batch_gap_bound(class_counts: Any, *, temperature: float = 1.0) -> float:
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
    class_counts: the batch's counts, as in :func:`gap_bound_from_counts`.
    temperature: ``tau``, as in :func:`gap_bound_from_counts`.

  Returns:
    The bound as a Python float (``math.inf`` with one class present).

  Raises:
    ValueError: as :func:`gap_bound_from_counts`.

  References:
    P1 Theorem 1, batch version (docs/conventions.md#gap-bound-batch, derived).

  Examples:
    >>> from cljax import theory
    >>> round(theory.batch_gap_bound([2, 2]), 6)
    1.546398
  """
  counts, total, temperature = _counts_args(class_counts, temperature)
  acc = 0.0
  for n_c in counts:
    if n_c >= 1:
      acc += int(n_c) * _gap_term(int(n_c), total, temperature)
  return acc / total


def batch_gap_bound_from_labels(labels: Any, *, temperature: float = 1.0,
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
    P1 Theorem 1, batch version (docs/conventions.md#gap-bound-batch).

  Examples:
    >>> import numpy as np
    >>> from cljax import theory
    >>> labels = np.array([0, 1, 0, 1])
    >>> round(theory.batch_gap_bound_from_labels(labels), 6)
    1.546398
  """
  labels = np.asarray(labels)
  checks.check_labels(labels, int(np.size(labels)), "labels", num_classes)
  if labels.size == 0:
    raise ValueError("`labels` is empty; pass at least one label.")
  if np.min(labels) < 0:
    raise ValueError(f"`labels` must be >= 0; got min {int(np.min(labels))}.")
  return batch_gap_bound(np.bincount(labels.astype(np.int64)),
                         temperature=temperature)


@docs.fill_theory
def double_counted_gap_bound(num_classes: int, samples_per_class: int,
                             num_views: int, *,
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
    {etf_args}

  Returns:
    The bound as a Python float.

  {range_raises}

  References:
    P1 code ``utils/losses.py`` ``ContrastiveLoss``;
    docs/conventions.md#gap-bound-double-counted (derived).

  Examples:
    >>> from cljax import theory
    >>> round(theory.double_counted_gap_bound(10, 100, 2), 4)
    0.5971
  """
  c, n, k, temperature = etf_args(num_classes, samples_per_class, num_views,
                                  temperature, 2)
  ratio = (k * (n - 1) + 1) / (k * (c * n - n))
  return softplus(2.0 / temperature + math.log(ratio))


def check_gap(dcl_value: Any, nscl_value: Any, bound: float, *,
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
    P1 Theorem 1 (docs/conventions.md#gap-bound).

  Examples:
    >>> from cljax import theory
    >>> round(theory.check_gap(5.3, 5.2, theory.gap_bound(10)), 6)
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
  rtol = as_float(rtol, "rtol", allow_zero=True)
  atol = as_float(atol, "atol", allow_zero=True)
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


