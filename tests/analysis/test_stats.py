"""Student-t intervals and paired differences against scipy and the formula."""

import math

import numpy as np
import pytest
from scipy import stats as scipy_stats

from cljax.analysis import stats


@pytest.mark.parametrize("confidence", [0.5, 0.9, 0.95, 0.99])
def test_t_quantile_matches_scipy(confidence):
  for df in list(range(1, 41)) + [60, 120, 1000]:
    want = scipy_stats.t.ppf((1 + confidence) / 2, df)
    assert stats.t_quantile(df, confidence=confidence) == pytest.approx(
        want, rel=1e-10), df


def _naive_interval(xs, confidence):
  # Written from the formula: mean +- t * s / sqrt(n), s with n - 1.
  n = len(xs)
  mean = sum(xs) / n
  var = sum((x - mean) ** 2 for x in xs) / (n - 1)
  half = scipy_stats.t.ppf((1 + confidence) / 2, n - 1) * math.sqrt(var / n)
  return mean, mean - half, mean + half


@pytest.mark.parametrize("n", [2, 3, 5, 10])
def test_mean_interval_matches_the_formula(n):
  xs = list(np.random.default_rng(n).normal(3.0, 2.0, size=n))
  for confidence in (0.9, 0.95):
    got = stats.mean_interval(xs, confidence=confidence)
    mean, low, high = _naive_interval(xs, confidence)
    assert (got.mean, got.low, got.high) == pytest.approx(
        (mean, low, high), rel=1e-12)
    assert got.n == n and got.confidence == confidence
    assert got.half_width == pytest.approx((high - low) / 2)


def test_paired_difference_is_the_interval_of_the_differences():
  rng = np.random.default_rng(0)
  shared = rng.normal(size=6)  # seed-to-seed variation both settings share
  a = shared + 0.3 + 0.01 * rng.normal(size=6)
  b = shared + 0.01 * rng.normal(size=6)
  got = stats.paired_difference(a, b)
  mean, low, high = _naive_interval([x - y for x, y in zip(a, b)], 0.95)
  assert (got.mean, got.low, got.high) == pytest.approx((mean, low, high))
  # Pairing removes the shared variance: unpaired intervals overlap.
  assert got.low > 0
  ia, ib = stats.mean_interval(a), stats.mean_interval(b)
  assert ia.low < ib.high


def test_interval_covers_the_true_mean_at_its_rate():
  rng = np.random.default_rng(1)
  draws = rng.normal(1.0, 1.0, size=(4000, 3))
  covered = [iv.low <= 1.0 <= iv.high
             for iv in map(stats.mean_interval, draws)]
  assert np.mean(covered) == pytest.approx(0.95, abs=0.015)


@pytest.mark.parametrize("values,match", [
    ([1.0], r"at least 2 values.*--seeds"),
    ([], r"at least 2 values"),
    ([1.0, float("nan")], r"non-finite"),
    ([[1.0, 2.0]], r"1-D"),
])
def test_bad_values(values, match):
  with pytest.raises(ValueError, match=match):
    stats.mean_interval(values)


def test_bad_pairs_and_arguments():
  with pytest.raises(ValueError, match=r"pair one value per seed"):
    stats.paired_difference([1.0, 2.0, 3.0], [1.0, 2.0])
  with pytest.raises(ValueError, match=r"confidence=1.5"):
    stats.mean_interval([1.0, 2.0], confidence=1.5)
  with pytest.raises(ValueError, match=r"df=0"):
    stats.t_quantile(0)


def test_power_law_fit_matches_a_loop_over_exponents():
  """The winner of a plain loop of 2x2 normal equations over the same grid."""
  rng = np.random.default_rng(0)
  x = np.array([0.0, 0.2, 0.4, 0.6, 0.8, 1.0])
  y = 50.0 + 3000.0 * x ** 2.0 + rng.normal(0.0, 20.0, x.size)
  grid = np.linspace(0.25, 6.0, 231)
  best = None
  for k in grid:
    u = [xi ** k for xi in x]
    n, su, suu = len(x), sum(u), sum(ui * ui for ui in u)
    sy, suy = sum(y), sum(ui * yi for ui, yi in zip(u, y))
    b = (n * suy - su * sy) / (n * suu - su * su)
    a = (sy - b * su) / n
    rms = (sum((a + b * ui - yi) ** 2 for ui, yi in zip(u, y)) / n) ** 0.5
    if best is None or rms < best[3]:
      best = (a, b, k, rms)
  fit = stats.power_law_fit(x, y, exponents=grid)
  np.testing.assert_allclose(fit[:4], best, rtol=1e-9)
  assert abs(fit.k - 2.0) < 0.3 and not fit.at_bound


def test_power_law_fit_recovers_an_exact_law_and_refuses_bad_input():
  x = [0.0, 0.25, 0.5, 1.0]
  fit = stats.power_law_fit(x, [1.0 + 4.0 * v ** 0.75 for v in x])
  np.testing.assert_allclose(fit[:3], (1.0, 4.0, 0.75), atol=1e-9)
  assert fit.rms < 1e-9
  with pytest.raises(ValueError, match="n >= 3"):
    stats.power_law_fit([0.0, 1.0], [1.0, 2.0])
  with pytest.raises(ValueError, match="x must be >= 0"):
    stats.power_law_fit([-1.0, 0.0, 1.0], [1.0, 2.0, 3.0])
  with pytest.raises(ValueError, match="non-finite"):
    stats.power_law_fit([0.0, 0.5, 1.0], [1.0, np.nan, 3.0])


@pytest.mark.parametrize("bounds", [(0.0, None), (0.0, 1.0), (None, 1.0)])
def test_bounded_interval_is_the_t_interval_intersected_with_the_range(
    bounds):
  lo = -np.inf if bounds[0] is None else bounds[0]
  hi = np.inf if bounds[1] is None else bounds[1]
  rng = np.random.default_rng(7)
  for n in (2, 3, 5):
    # Values near the ends of [0, 1]: the plain t interval leaves the range.
    for xs in (rng.uniform(0.0, 0.05, n), rng.uniform(0.95, 1.0, n)):
      xs = list(xs)
      mean, low, high = _naive_interval(xs, 0.95)
      got = stats.mean_interval(xs, bounds=bounds)
      want = (mean, max(low, lo), min(high, hi))
      assert (got.mean, got.low, got.high) == pytest.approx(want, rel=1e-12)
      assert got.clipped == tuple(e for e, cut in (("low", low < lo),
                                                   ("high", high > hi))
                                  if cut)
      d = stats.as_dict(got)
      assert d.get("clipped", []) == list(got.clipped)
      # Clipping the plain interval (or its dict) again gives the same.
      assert stats.clip(stats.mean_interval(xs), bounds) == got
      assert stats.clip(d, bounds) == d


def test_clipping_keeps_the_coverage_of_a_positive_quantity():
  # Exponential draws (mean 0.05, n = 3): the plain interval often reaches
  # below 0; the clipped one covers the mean exactly as often.
  rng = np.random.default_rng(3)
  draws = rng.exponential(0.05, size=(2000, 3))
  plain = [stats.mean_interval(x) for x in draws]
  clipped = [stats.mean_interval(x, bounds=(0.0, None)) for x in draws]
  assert np.mean([iv.low < 0 for iv in plain]) > 0.3
  assert all(iv.low >= 0 for iv in clipped)
  assert ([iv.low <= 0.05 <= iv.high for iv in plain] ==
          [iv.low <= 0.05 <= iv.high for iv in clipped])


def test_clipped_ends_are_said_and_bad_bounds_refused():
  iv = stats.mean_interval([0.01, 0.02, 0.0], bounds=(0.0, None))
  assert stats.describe(iv, ".2f").endswith(
      "(95 % Student t, n = 3) (low end clipped to the range)")
  assert "clipped" not in stats.describe(stats.mean_interval([1.0, 2.0]))
  both = stats.clip({"mean": 0.5, "low": -0.5, "high": 1.5, "n": 2}, (0, 1))
  assert (both["low"], both["high"], both["clipped"]) == (0, 1,
                                                          ["low", "high"])
  assert stats.clip_note(both) == " (both ends clipped to the range)"
  one_seed = {"mean": -1.0, "low": None, "high": None, "n": 1}
  assert stats.clip(one_seed, (0, None)) == one_seed
  with pytest.raises(ValueError, match=r"leave bounds=\(0, 1\)"):
    stats.mean_interval([0.5, 1.2], bounds=(0, 1))
  with pytest.raises(ValueError, match=r"bounds=\(1, 0\): low must be below"):
    stats.mean_interval([0.5, 0.6], bounds=(1, 0))
  with pytest.raises(ValueError, match=r"give \(low, high\)"):
    stats.clip(one_seed, 0.0)


# --- free exponent and growth-model comparison (issue 24) -------------------

def _brute_rss(x, y, basis, params):
  # Plain normal equations of y on [1, basis(t)] for every t, smallest RSS.
  best = None
  for t in params:
    u = basis(t)
    n, su, suu = len(x), u.sum(), (u * u).sum()
    sy, suy = y.sum(), (u * y).sum()
    b = (n * suy - su * sy) / (n * suu - su * su)
    a = (sy - b * su) / n
    rss = float(((a + b * u - y) ** 2).sum())
    if best is None or rss < best[0]:
      best = (rss, t)
  return best


def test_power_law_fit_has_no_floor_below_the_old_grid():
  """An exponent of 0.1 (a curve that saturates early) is found, not 0.25."""
  x = np.array([0.0, 0.2, 0.4, 0.6, 0.8, 1.0])
  fit = stats.power_law_fit(x, 75.0 + 300.0 * x ** 0.1)
  np.testing.assert_allclose((fit.a, fit.b, fit.k), (75.0, 300.0, 0.1),
                             rtol=1e-6)
  assert not fit.at_bound


def test_power_law_fit_is_the_least_squares_exponent_of_a_dense_search():
  rng = np.random.default_rng(1)
  x = np.array([0.0, 0.2, 0.4, 0.6, 0.8, 1.0])
  y = 75.0 + 310.0 * x ** 0.3 + rng.normal(0.0, 15.0, x.size)
  rss, k = _brute_rss(x, y, lambda t: x ** t, np.geomspace(0.01, 10, 20001))
  fit = stats.power_law_fit(x, y)
  assert fit.rms ** 2 * x.size <= rss * (1 + 1e-9)
  assert fit.k == pytest.approx(k, rel=1e-3)


def test_power_law_fit_flags_a_step_at_the_bound():
  # y jumps at x = 0 and is flat after: the RSS falls as k -> 0, so the
  # best k is the search range's lower end.
  fit = stats.power_law_fit([0.0, 0.25, 0.5, 1.0], [10.0, 20.0, 20.0, 20.0])
  assert fit.at_bound and fit.k == pytest.approx(stats.K_RANGE[0])


def _aic(rss, n, p):
  return n * math.log(rss / n) + 2 * p


def test_growth_models_match_numpy_and_pick_the_true_law():
  rng = np.random.default_rng(2)
  x = np.linspace(0.0, 1.0, 11)
  noise = rng.normal(0.0, 1.0, x.size)
  cases = {"linear": 20.0 + 100.0 * x,
           "power": 20.0 + 100.0 * x ** 3,
           "saturating": 20.0 + 100.0 * (1.0 - np.exp(-x / 0.1))}
  for law, clean in cases.items():
    y = clean + noise
    out = stats.growth_models(x, y)
    assert out["best"] == law and out["criterion"] == "aicc", law
    assert out["delta"][law] == 0.0 and min(out["delta"].values()) == 0.0
    # The linear fit against numpy's polyfit, its AIC from the formula.
    coef = np.polyfit(x, y, 1)
    rss = float(((np.polyval(coef, x) - y) ** 2).sum())
    lin = out["models"]["linear"]
    np.testing.assert_allclose((lin["params"]["b"], lin["params"]["a"]),
                               coef, rtol=1e-9)
    assert lin["rss"] == pytest.approx(rss, rel=1e-9)
    assert lin["aic"] == pytest.approx(_aic(rss, x.size, 2), rel=1e-12)
    assert lin["aicc"] == pytest.approx(
        _aic(rss, x.size, 2) + 12 / (x.size - 3), rel=1e-12)
    # The saturating fit against a dense search over its scale.
    sat = out["models"]["saturating"]
    rss_s, s = _brute_rss(x, y, lambda t: 1.0 - np.exp(-x / t),
                          np.geomspace(1e-3, 1e3, 40001))
    assert sat["rss"] <= rss_s * (1 + 1e-9)
    if law != "linear":  # A line is the limit s -> inf: s sits at the bound.
      assert sat["params"]["s"] == pytest.approx(s, rel=1e-3)
    assert sat["aicc"] == pytest.approx(
        _aic(sat["rss"], x.size, 3) + 24 / (x.size - 4), rel=1e-12)
  assert stats.growth_models(x, cases["saturating"] + noise)["models"][
      "saturating"]["params"]["s"] == pytest.approx(0.1, rel=0.2)


def test_growth_models_exact_line_prefers_fewer_parameters_and_aic_when_few():
  # Four points: AICc needs n > p + 1 for p = 3, so AIC decides; the power
  # law (k = 1) fits a line exactly too, and the tie goes to 2 parameters.
  out = stats.growth_models([0.0, 1.0, 2.0, 3.0], [1.0, 3.0, 5.0, 7.0])
  assert out["criterion"] == "aic" and out["best"] == "linear"
  assert math.isnan(out["models"]["power"]["aicc"])
  assert out["models"]["power"]["params"]["k"] == pytest.approx(1.0, abs=1e-6)
  with pytest.raises(ValueError, match="n >= 3"):
    stats.growth_models([0.0, 1.0], [1.0, 2.0])
