"""P1's few-shot nearest-class-centre error bound, optimised in closed form."""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from cljax._src import checks
from cljax.theory._numerics import as_float, as_int

# Relative cubic residual above which `fewshot_bound` refuses its root.
_CUBIC_RTOL = 1e-8



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


def fewshot_bound(directional_cdnv: float, cdnv: float, shots: float, *,
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
    ``directional_cdnv_bounds`` README); docs/conventions.md#fewshot-bound. The
    example of docs/conventions.md#fewshot-bound-example (alpha=0.0729,
    V=1.672, 2-way) gives 29.115 at m=1 and 1.4595 at m=500 with the
    published form.

  Examples:
    >>> from cljax import theory
    >>> round(theory.fewshot_bound(0.0729, 1.672, 1), 1)
    29.1
  """
  alpha = as_float(directional_cdnv, "directional_cdnv", allow_zero=True)
  v = as_float(cdnv, "cdnv", allow_zero=True)
  if isinstance(shots, (bool, np.bool_)):
    raise ValueError(f"`shots` must be a number >= 1; got {shots!r}.")
  m = as_float(shots, "shots")
  if m < 1:
    raise ValueError(f"`shots` must be >= 1 (samples per class); got {m}.")
  ways = as_int(ways, "ways", 2)
  checks.check_choice(variant, "variant", ("published", "v1"))

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
