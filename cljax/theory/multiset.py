"""P2's lower bound of the SupCon loss over all batch multisets."""

from __future__ import annotations

import math
from fractions import Fraction

from cljax._src import checks
from cljax._src import docs
from cljax.theory._numerics import as_float, as_int, log_a_plus_b_exp



def _multiset_coeff(n: int, k: int) -> int:
  """((n k)) = binom(n + k - 1, k): multisets of size k from n items."""
  if k == 0:
    return 1
  if n == 0:
    return 0
  return math.comb(n + k - 1, k)


@docs.fill_theory
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

  {range_raises}

  References:
    P2 SupCon lower bound, section 3.2.

  Examples:
    >>> from cljax import theory
    >>> theory.supcon_multiset_counts(2, 2, 3)
    {0: 8, 1: 12, 2: 12, 3: 8}
  """
  c = as_int(num_classes, "num_classes", 2)
  n = as_int(samples_per_class, "samples_per_class", 1)
  b = as_int(batch_size, "batch_size", 1)
  others = c * n - n
  return {l: c * _multiset_coeff(n, l) * _multiset_coeff(others, b - l)
          for l in range(b + 1)}


@docs.fill_theory
def supcon_multiset_bound(num_classes: int, samples_per_class: int,
                          batch_size: int, *, temperature: float = 0.1,
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

  {range_raises}
    OverflowError: if ``reduction="sum"`` exceeds the float64 range.

  References:
    P2 Theorem (SupCon lower bound), docs/conventions.md#supcon-multiset-bound;
    brute-force check in docs/conventions.md#derived-checks.

  Examples:
    >>> from cljax import theory
    >>> round(theory.supcon_multiset_bound(2, 2, 3, temperature=1.0), 6)
    19.681805
  """
  counts = supcon_multiset_counts(num_classes, samples_per_class, batch_size)
  c, b = int(num_classes), int(batch_size)
  tau = as_float(temperature, "temperature")
  rho = as_float(radius, "radius")
  checks.check_choice(reduction, "reduction", ("sum", "mean"))
  log_e = -c * rho * rho / ((c - 1) * tau)
  n_batches = _multiset_coeff(c * int(samples_per_class), b)
  total = 0.0
  for l in range(2, b + 1):
    if counts[l] == 0:
      continue
    if l == b:  # No other class in the batch: only the l - 1 positives.
      term = math.log(l - 1)
    else:
      term = log_a_plus_b_exp(float(l - 1), float(b - l), log_e)
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


