"""Student-t intervals and paired differences against scipy and the formula."""

import math

import numpy as np
import pytest
from scipy import stats as scipy_stats

from cljax import stats


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
  fit = stats.power_law_fit(x, y)
  np.testing.assert_allclose(fit, best, rtol=1e-9)
  assert abs(fit.k - 2.0) < 0.3


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
