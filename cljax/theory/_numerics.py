"""Validation and float64 numerics shared by the closed forms (private)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from cljax._src import checks



def as_int(value: Any, name: str, minimum: int) -> int:
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


def etf_args(num_classes: Any, samples_per_class: Any, num_views: Any,
             temperature: Any, min_views: int) -> tuple[int, int, int, float]:
  """Validated ``(C, n, K, tau)`` of a balanced batch at the simplex ETF."""
  c = as_int(num_classes, "num_classes", 2)
  n = as_int(samples_per_class, "samples_per_class", 1)
  k = as_int(num_views, "num_views", min_views)
  tau = as_float(temperature, "temperature")
  return c, n, k, tau


def as_float(value: Any, name: str, allow_zero: bool = False) -> float:
  """Returns a finite positive (or non-negative) hyper-parameter as float."""
  if isinstance(value, (bool, np.bool_)):
    raise ValueError(f"`{name}` must be a real number; got {value!r}.")
  try:
    as_float = float(value)
  except (TypeError, ValueError):
    raise ValueError(
        f"`{name}` must be a real number; got {value!r} of type "
        f"{type(value).__name__}.") from None
  checks.check_positive(as_float, name, allow_zero=allow_zero)
  return as_float


def as_counts(class_counts: Any, name: str = "class_counts") -> np.ndarray:
  """Validates a vector of non-negative integer class counts (int64)."""
  counts = np.asarray(class_counts)
  checks.check_rank(counts, 1, name, "[num_classes]")
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


def softplus(t: float) -> float:
  """log(1 + exp(t)) without overflow for large t (small temperatures)."""
  if t > 0:
    return t + math.log1p(math.exp(-t))
  return math.log1p(math.exp(t))


def log_a_plus_b_exp(a: float, b: float, t: float) -> float:
  """log(a + b * exp(t)) for a >= 0, b > 0, stable for large |t|."""
  if a == 0:
    return math.log(b) + t
  return math.log(a) + softplus(math.log(b / a) + t)


def logsumexp(log_terms: list[float]) -> float:
  """log(sum(exp(x))) over a short list; -inf entries are empty terms."""
  hi = max(log_terms)
  if hi == -math.inf:
    return -math.inf
  return hi + math.log(sum(math.exp(x - hi) for x in log_terms))


def log_or_neg_inf(x: float) -> float:
  return math.log(x) if x > 0 else -math.inf


def neg_logit_gap(num_classes: int, temperature: float) -> float:
  """log e = -C / ((C - 1) tau): negative minus positive logit at the ETF."""
  return -num_classes / ((num_classes - 1) * temperature)


