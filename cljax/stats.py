r"""Means and Student-t intervals over seeds, and paired differences.

For ``n`` values :math:`x_1..x_n` (one per seed) with mean :math:`\bar x` and
sample standard deviation :math:`s` (``ddof=1``), the two-sided interval at
confidence :math:`1 - \alpha` is

.. math:: \bar x \pm t_{1-\alpha/2,\,n-1}\; s / \sqrt{n},

the Student t interval (normal errors, unknown variance). A paired difference
(two settings run under shared randomness: the same seeds) is the same
interval over the per-seed differences :math:`a_i - b_i`, which removes the
seed-to-seed variance the two settings share.

A quantity with a known range (a distance or a rank cannot be negative, an
accuracy lies in [0, 1]) gets the t interval intersected with that range
(``bounds=``, :func:`clip`): the true mean lies in the range, so the
intersection holds it whenever the t interval does (the same coverage, never
a wider interval), while an end outside the range would claim values the
quantity cannot take. A clipped end is recorded (``Interval.clipped``, the
dict's ``"clipped"``) and printed (:func:`describe`), since the interval is
then no longer symmetric about the mean.

The t quantile is exact for the integer degrees of freedom used here: the
two-sided t probability has a finite closed form in :math:`\theta =
\arctan(t/\sqrt{\nu})` (Abramowitz & Stegun 26.7.3–4), inverted by bisection.
The growth laws of the reproductions (P2's iterations to fit against the
noise rate) are fitted by :func:`power_law_fit`. NumPy only (scipy is a
test-only dependency).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np


class Interval(NamedTuple):
  """A mean with its two-sided Student-t interval over ``n`` values.

  ``clipped`` names the ends (``"low"``, ``"high"``) that were cut back to
  the quantity's range (see :func:`clip`); empty for a plain t interval.
  """
  mean: float
  low: float
  high: float
  n: int
  confidence: float
  clipped: tuple[str, ...] = ()

  @property
  def half_width(self) -> float:
    return (self.high - self.low) / 2


def _two_sided(theta: float, df: int) -> float:
  """P(|T| < sqrt(df) tan(theta)) for T ~ Student t with ``df`` dof."""
  c2 = math.cos(theta) ** 2
  if df % 2:  # Odd: (2/pi)(theta + sin cos (1 + 2/3 c^2 + (2 4)/(3 5) c^4 ..)).
    total, term = 0.0, 1.0
    for k in range(1, (df - 1) // 2 + 1):
      total += term
      term *= c2 * (2 * k) / (2 * k + 1)
    series = math.sin(theta) * math.cos(theta) * total if df > 1 else 0.0
    return 2 / math.pi * (theta + series)
  total, term = 0.0, 1.0  # Even: sin (1 + 1/2 c^2 + (1 3)/(2 4) c^4 ...).
  for k in range(1, df // 2 + 1):
    total += term
    term *= c2 * (2 * k - 1) / (2 * k)
  return math.sin(theta) * total


def t_quantile(df: int, *, confidence: float = 0.95) -> float:
  """The two-sided Student t critical value :math:`t_{(1+c)/2,\\,df}`.

  Args:
    df: degrees of freedom, a positive integer (``n - 1`` for ``n`` seeds).
    confidence: the interval's coverage ``c``, in (0, 1).

  Returns:
    ``t`` with ``P(|T| < t) = confidence``.

  >>> round(t_quantile(4, confidence=0.95), 4)
  2.7764
  """
  if int(df) != df or df < 1:
    raise ValueError(f"df={df!r}: give a positive integer (n - 1 for n "
                     f"values).")
  if not 0 < confidence < 1:
    raise ValueError(f"confidence={confidence!r}: give a number in (0, 1), "
                     f"e.g. 0.95.")
  df = int(df)
  lo, hi = 0.0, math.pi / 2
  for _ in range(100):  # Bisection in theta: the probability is monotone.
    mid = (lo + hi) / 2
    if _two_sided(mid, df) < confidence:
      lo = mid
    else:
      hi = mid
  return math.sqrt(df) * math.tan((lo + hi) / 2)


def _values(values, name: str) -> np.ndarray:
  x = np.asarray(values, dtype=np.float64)
  if x.ndim != 1:
    raise ValueError(f"{name}: give a 1-D list of values (one per seed); got "
                     f"shape {x.shape}.")
  if x.size < 2:
    raise ValueError(f"{name}: an interval needs at least 2 values (seeds); "
                     f"got {x.size}. Run more seeds (e.g. --seeds=5).")
  if not np.all(np.isfinite(x)):
    raise ValueError(f"{name}: non-finite values {x.tolist()}; a diverged "
                     f"run cannot be averaged.")
  return x


def _check_bounds(bounds) -> tuple[float, float]:
  """``(low, high)`` with None as an open end; ValueError if malformed."""
  try:
    low, high = bounds
  except (TypeError, ValueError):
    raise ValueError(f"bounds={bounds!r}: give (low, high), None for an open "
                     f"end, e.g. (0.0, None) for a distance.") from None
  low = -math.inf if low is None else float(low)
  high = math.inf if high is None else float(high)
  if not low < high:
    raise ValueError(f"bounds={bounds!r}: low must be below high.")
  return low, high


def mean_interval(values, *, confidence: float = 0.95,
                  bounds=None) -> Interval:
  r"""The mean of ``values`` and its Student-t interval.

  :math:`\bar x \pm t_{(1+c)/2,\,n-1}\, s/\sqrt{n}` with ``s`` the sample
  standard deviation (``ddof=1``), intersected with ``bounds`` if given
  (:func:`clip`).

  Args:
    values: [n] numbers, one per seed, ``n >= 2``, all finite.
    confidence: the coverage ``c`` (default 95 %).
    bounds: ``(low, high)``, the range the quantity cannot leave (None: an
      open end), e.g. ``(0, None)`` for a distance, ``(0, 1)`` for an
      accuracy; None for no range.

  Returns:
    ``Interval(mean, low, high, n, confidence, clipped)``.

  Raises:
    ValueError: fewer than 2 values, non-finite values, not 1-D, or values
      outside ``bounds``.

  >>> iv = mean_interval([1.0, 2.0, 3.0])
  >>> round(iv.mean, 3), round(iv.low, 3), round(iv.high, 3)
  (2.0, -0.484, 4.484)
  >>> iv = mean_interval([1.0, 2.0, 3.0], bounds=(0, None))
  >>> iv.low, round(iv.high, 3), iv.clipped
  (0.0, 4.484, ('low',))
  """
  x = _values(values, "values")
  mean = float(x.mean())
  half = t_quantile(x.size - 1, confidence=confidence) * float(
      x.std(ddof=1)) / math.sqrt(x.size)
  interval = Interval(mean, mean - half, mean + half, int(x.size), confidence)
  if bounds is None:
    return interval
  low, high = _check_bounds(bounds)
  if x.min() < low or x.max() > high:
    raise ValueError(f"values {x.tolist()} leave bounds={tuple(bounds)}; "
                     f"the quantity is not the bounded one, or pass no "
                     f"bounds.")
  return clip(interval, bounds)


def clip(interval, bounds):
  """``interval`` (an Interval or its dict) intersected with ``bounds``.

  Only the ends move: the mean stays. An end cut back to the range is added
  to ``clipped`` (``"clipped"`` in a dict, absent while empty), so clipping
  twice changes nothing. An interval wholly outside the range (values that
  broke the range, e.g. rounding below a theoretical minimum) is returned
  unchanged: there is nothing in the range to keep.

  Args:
    interval: an :class:`Interval`, or a dict with ``low`` and ``high``
      (``as_dict``'s; one without an interval, ``low`` None, is returned
      as is).
    bounds: ``(low, high)``, None for an open end.

  Returns:
    The same type as ``interval``.

  >>> clip({"mean": 0.5, "low": -0.1, "high": 0.9, "n": 3}, (0, 1))
  {'mean': 0.5, 'low': 0.0, 'high': 0.9, 'n': 3, 'clipped': ['low']}
  """
  low, high = _check_bounds(bounds)
  d = interval if isinstance(interval, dict) else interval._asdict()
  if d.get("low") is None or d["high"] < low or d["low"] > high:
    return interval
  ends = list(d.get("clipped") or ())
  new = {"low": d["low"], "high": d["high"]}
  if d["low"] < low:
    new["low"], ends = low, ends + ["low"]
  if d["high"] > high:
    new["high"], ends = high, ends + ["high"]
  ends = [e for e in ("low", "high") if e in ends]
  if isinstance(interval, dict):
    return {**interval, **new, **({"clipped": ends} if ends else {})}
  return interval._replace(**new, clipped=tuple(ends))


def paired_difference(a, b, *, confidence: float = 0.95) -> Interval:
  r"""The mean of ``a - b`` over pairs and its Student-t interval.

  ``a[i]`` and ``b[i]`` must come from the same seed (shared randomness);
  the interval is :func:`mean_interval` of the differences.

  Args:
    a, b: [n] numbers each, paired by position, ``n >= 2``.
    confidence: the coverage (default 95 %).

  Returns:
    ``Interval`` of ``a - b``.

  Raises:
    ValueError: the lengths differ, or as :func:`mean_interval`.

  >>> iv = paired_difference([1.0, 2.0, 3.0], [0.5, 1.4, 2.6])
  >>> round(iv.mean, 3), iv.low > 0
  (0.5, True)
  """
  xa, xb = np.asarray(a, np.float64), np.asarray(b, np.float64)
  if xa.shape != xb.shape:
    raise ValueError(f"a and b must pair one value per seed; got shapes "
                     f"{xa.shape} and {xb.shape}.")
  return mean_interval(_values(xa, "a") - _values(xb, "b"),
                       confidence=confidence)


def as_dict(interval: Interval) -> dict:
  """``interval`` as a JSON-ready dict (what the colabs' summaries hold).

  >>> as_dict(mean_interval([1.0, 3.0]))["n"]
  2
  """
  out = {"mean": interval.mean, "low": interval.low, "high": interval.high,
         "n": interval.n, "confidence": interval.confidence}
  if interval.clipped:
    out["clipped"] = list(interval.clipped)
  return out


def clip_note(interval) -> str:
  """'' or ' (low end clipped to the range)' for a clipped interval (dict).

  >>> clip_note({"low": 0.0, "high": 1.0, "clipped": ["low"]})
  ' (low end clipped to the range)'
  """
  d = interval if isinstance(interval, dict) else as_dict(interval)
  ends = d.get("clipped") or ()
  if not ends:
    return ""
  what = "both ends" if len(ends) == 2 else f"{ends[0]} end"
  return f" ({what} clipped to the range)"


def describe(interval, spec: str = ".3g") -> str:
  """'m [low, high] (95 % Student t, n = k)' of an Interval or its dict.

  >>> describe(mean_interval([1.0, 2.0, 3.0]), ".2f")
  '2.00 [-0.48, 4.48] (95 % Student t, n = 3)'
  """
  d = interval if isinstance(interval, dict) else as_dict(interval)
  return (f"{d['mean']:{spec}} [{d['low']:{spec}}, {d['high']:{spec}}] "
          f"({d['confidence']:.0%} Student t, n = {d['n']})").replace(
              "% Student", " % Student") + clip_note(d)


class PowerLaw(NamedTuple):
  """``y ≈ a + b x^k`` fitted by :func:`power_law_fit`; ``rms``: its residual."""
  a: float
  b: float
  k: float
  rms: float


def power_law_fit(x, y, *, exponents=None) -> PowerLaw:
  r"""Least-squares ``y ≈ a + b x^k`` over a grid of exponents ``k``.

  For each ``k`` of ``exponents`` the intercept ``a`` and slope ``b`` are the
  linear least-squares fit of ``y`` on ``[1, x^k]``; the ``k`` with the
  smallest root-mean-square residual wins (P2's growth of the iterations to
  fit with the label-noise rate: ``k > 1`` is superlinear).

  Args:
    x: [n] non-negative numbers (``x^k`` must be finite), ``n >= 3``.
    y: [n] numbers.
    exponents: the grid of ``k`` (default 0.25 to 6 in steps of 0.025).

  Returns:
    ``PowerLaw(a, b, k, rms)``.

  Raises:
    ValueError: fewer than 3 points, shapes that differ, negative or
      non-finite values.

  >>> fit = power_law_fit([0.0, 0.2, 0.5, 1.0], [3.0, 3.0 + 2 * 0.2 ** 1.5,
  ...                                            3.0 + 2 * 0.5 ** 1.5, 5.0])
  >>> round(fit.a, 6), round(fit.b, 6), round(fit.k, 6)
  (3.0, 2.0, 1.5)
  """
  xs, ys = _values(x, "x"), _values(y, "y")
  if xs.shape != ys.shape or xs.size < 3:
    raise ValueError(f"x and y must hold the same n >= 3 points; got shapes "
                     f"{xs.shape} and {ys.shape}.")
  if (xs < 0).any():
    raise ValueError(f"x must be >= 0 (x^k of a negative x is not real); "
                     f"got min {xs.min()}.")
  grid = (np.linspace(0.25, 6.0, 231) if exponents is None
          else np.asarray(exponents, np.float64))
  best = None
  for k in grid:
    design = np.stack([np.ones_like(xs), xs ** k], axis=1)
    coef, *_ = np.linalg.lstsq(design, ys, rcond=None)
    rms = float(np.sqrt(np.mean((design @ coef - ys) ** 2)))
    if best is None or rms < best.rms:
      best = PowerLaw(float(coef[0]), float(coef[1]), float(k), rms)
  return best
