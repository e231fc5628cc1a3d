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
noise rate) are fitted by :func:`power_law_fit` (the exponent free, a fit at
the end of its wide range flagged) and compared as linear, power-law and
saturating laws by AIC/AICc (:func:`growth_models`). NumPy only (scipy is a
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
  """``y ≈ a + b x^k`` fitted by :func:`power_law_fit`.

  ``rms``: the root-mean-square residual; ``at_bound``: the best ``k`` is an
  end of the searched range, so the least-squares ``k`` may lie beyond it
  (report the fraction of fits at the bound beside any interval of ``k``).
  """
  a: float
  b: float
  k: float
  rms: float
  at_bound: bool = False


# The free fit searches k in [1e-3, 1e3], log-spaced: wide enough that a
# fit at an end means "a step at x = 0" (k -> 0: the curve saturates at
# once) or "nothing until x = max" (k -> inf), which at_bound reports.
K_RANGE = (1e-3, 1e3)


def _affine_fit(u: np.ndarray, ys: np.ndarray) -> tuple[float, float, float]:
  """``(a, b, rss)`` of the least-squares ``y ≈ a + b u``."""
  design = np.stack([np.ones_like(u), u], axis=1)
  coef, *_ = np.linalg.lstsq(design, ys, rcond=None)
  rss = float(np.sum((design @ coef - ys) ** 2))
  return float(coef[0]), float(coef[1]), rss


def _golden(f, lo: float, hi: float, tol: float = 1e-10) -> float:
  """The minimiser of a unimodal ``f`` on ``[lo, hi]`` (golden section)."""
  g = (math.sqrt(5) - 1) / 2
  c, d = hi - g * (hi - lo), lo + g * (hi - lo)
  fc, fd = f(c), f(d)
  while hi - lo > tol:
    if fc <= fd:
      hi, d, fd = d, c, fc
      c = hi - g * (hi - lo)
      fc = f(c)
    else:
      lo, c, fc = c, d, fd
      d = lo + g * (hi - lo)
      fd = f(d)
  return (lo + hi) / 2


def _profile_fit(ys, basis, log_range, points: int = 601):
  """Minimise the affine fit's RSS over a log-spaced scale parameter.

  ``basis(t)`` gives the regressor for the parameter ``t = exp(log t)``; a
  grid over ``log_range`` finds the best cell, golden section refines it
  between the neighbouring grid points. Returns ``(t, a, b, rss, at_bound)``.
  """
  logs = np.linspace(log_range[0], log_range[1], points)
  rss = np.array([_affine_fit(basis(math.exp(t)), ys)[2] for t in logs])
  i = int(np.argmin(rss))
  lo, hi = logs[max(i - 1, 0)], logs[min(i + 1, points - 1)]
  t = _golden(lambda v: _affine_fit(basis(math.exp(v)), ys)[2], lo, hi)
  a, b, r = _affine_fit(basis(math.exp(t)), ys)
  if r > rss[i]:  # Refinement never makes the grid's best worse.
    t, (a, b, r) = logs[i], _affine_fit(basis(math.exp(logs[i])), ys)
  return math.exp(t), a, b, r, i in (0, points - 1)


def _xy(x, y):
  xs, ys = _values(x, "x"), _values(y, "y")
  if xs.shape != ys.shape or xs.size < 3:
    raise ValueError(f"x and y must hold the same n >= 3 points; got shapes "
                     f"{xs.shape} and {ys.shape}.")
  if (xs < 0).any():
    raise ValueError(f"x must be >= 0 (x^k of a negative x is not real); "
                     f"got min {xs.min()}.")
  return xs, ys


def power_law_fit(x, y, *, exponents=None) -> PowerLaw:
  r"""Least-squares ``y ≈ a + b x^k`` with the exponent ``k`` fitted freely.

  For each ``k`` the intercept ``a`` and slope ``b`` are the linear
  least-squares fit of ``y`` on ``[1, x^k]`` (the residual profiled over
  ``k``). By default ``k`` is searched over ``K_RANGE`` = [1e-3, 1e3] on a
  log-spaced grid of 601 points, then refined by golden section between the
  best point's neighbours: no floor near the values of interest truncates
  it (P2's growth of the iterations to fit with the label-noise rate: ``k >
  1`` is superlinear, ``k -> 0`` a curve that saturates at once). A best
  ``k`` at an end of the range is flagged ``at_bound``.

  Args:
    x: [n] non-negative numbers (``x^k`` must be finite), ``n >= 3``.
    y: [n] numbers.
    exponents: a grid of ``k`` to pick from instead (no refinement;
      ``at_bound`` when the best is the grid's smallest or largest).

  Returns:
    ``PowerLaw(a, b, k, rms, at_bound)``.

  Raises:
    ValueError: fewer than 3 points, shapes that differ, negative or
      non-finite values.

  >>> fit = power_law_fit([0.0, 0.2, 0.5, 1.0], [3.0, 3.0 + 2 * 0.2 ** 1.5,
  ...                                            3.0 + 2 * 0.5 ** 1.5, 5.0])
  >>> round(fit.a, 6), round(fit.b, 6), round(fit.k, 6), fit.at_bound
  (3.0, 2.0, 1.5, False)
  """
  xs, ys = _xy(x, y)
  if exponents is not None:
    grid = np.asarray(exponents, np.float64)
    best, best_i = None, 0
    for i, k in enumerate(grid):
      a, b, rss = _affine_fit(xs ** k, ys)
      rms = math.sqrt(rss / xs.size)
      if best is None or rms < best.rms:
        best, best_i = PowerLaw(a, b, float(k), rms), i
    ends = {int(np.argmin(grid)), int(np.argmax(grid))}
    return best._replace(at_bound=best_i in ends)
  # x / max(x) keeps x^k in [0, 1] for every k of the range (3^1000
  # overflows); the slope of x^k is then b / max(x)^k.
  top = float(xs.max()) or 1.0
  k, a, b, rss, at_bound = _profile_fit(
      ys, lambda t: (xs / top) ** t,
      (math.log(K_RANGE[0]), math.log(K_RANGE[1])))
  return PowerLaw(a, b / top ** k, k, math.sqrt(rss / xs.size), at_bound)


GROWTH_MODELS = ("linear", "power", "saturating")


def _aic(rss: float, n: int, p: int, floor: float) -> tuple[float, float]:
  """``(AIC, AICc)`` of a Gaussian least-squares fit with ``p`` parameters."""
  aic = n * math.log(max(rss, floor) / n) + 2 * p
  aicc = aic + 2 * p * (p + 1) / (n - p - 1) if n - p - 1 > 0 else math.nan
  return aic, aicc


def growth_models(x, y) -> dict:
  r"""Linear, power-law and saturating growth of ``y`` in ``x``, by AIC.

  Three least-squares fits:

  * ``linear``: ``a + b x`` (2 parameters);
  * ``power``: ``a + b x^k`` (3; :func:`power_law_fit`, ``k`` free);
  * ``saturating``: ``a + b (1 - exp(-x / s))`` (3; the scale ``s``
    profiled over ``[1e-3, 1e3] * max(x)`` like ``k``).

  Each is scored by Akaike's criterion for Gaussian errors,
  :math:`\mathrm{AIC} = n \log(\mathrm{RSS}/n) + 2p` (the error variance,
  common to all three, is left out of ``p``), and its small-sample form
  :math:`\mathrm{AICc} = \mathrm{AIC} + 2p(p+1)/(n-p-1)` (NaN for ``n <=
  p + 1``). The RSS is floored at ``1e-12`` times the total sum of squares,
  so exact fits tie and the fewer parameters win. ``best`` is the smallest
  AICc when every AICc is defined, else the smallest AIC (``criterion``
  says which); a difference below 2 is weak evidence (Burnham & Anderson).

  Args:
    x: [n] non-negative numbers, ``n >= 3``.
    y: [n] numbers.

  Returns:
    ``{"n", "criterion", "best", "models": {name: {"params": {...}, "rss",
    "aic", "aicc", "num_params"}}, "delta": {name: score - best score}}``,
    JSON-ready.

  Raises:
    ValueError: as :func:`power_law_fit`.

  Examples:
    >>> out = growth_models([0.0, 0.5, 1.0, 1.5, 2.0], [1.0, 2.0, 3.0, 4.0, 5.0])
    >>> out["best"], round(out["models"]["linear"]["params"]["b"], 6)
    ('linear', 2.0)
  """
  xs, ys = _xy(x, y)
  n = xs.size
  floor = 1e-12 * float(np.sum((ys - ys.mean()) ** 2)) + 1e-300
  a, b, rss = _affine_fit(xs, ys)
  fits = {"linear": ({"a": a, "b": b}, rss, 2)}
  power = power_law_fit(xs, ys)
  fits["power"] = ({"a": power.a, "b": power.b, "k": power.k,
                    "at_bound": power.at_bound}, power.rms ** 2 * n, 3)
  top = float(xs.max()) or 1.0
  s, a, b, rss, at_bound = _profile_fit(
      ys, lambda t: 1.0 - np.exp(-xs / t),
      (math.log(1e-3 * top), math.log(1e3 * top)))
  fits["saturating"] = ({"a": a, "b": b, "s": s, "at_bound": at_bound},
                        rss, 3)
  models = {}
  for name, (params, rss, p) in fits.items():
    aic, aicc = _aic(rss, n, p, floor)
    models[name] = {"params": params, "rss": float(rss), "aic": aic,
                    "aicc": aicc, "num_params": p}
  criterion = ("aicc" if all(math.isfinite(m["aicc"]) for m in
                             models.values()) else "aic")
  # Ties (exact fits) go to the fewer parameters, then to GROWTH_MODELS order.
  best = min(GROWTH_MODELS, key=lambda m: (
      round(models[m][criterion], 9), models[m]["num_params"]))
  return {"n": int(n), "criterion": criterion, "best": best,
          "models": models,
          "delta": {m: models[m][criterion] - models[best][criterion]
                    for m in GROWTH_MODELS}}
