"""Tests of cljax.theory: closed forms checked against independent NumPy loops.

Every closed form is compared with a plain per-anchor loop over an explicit
configuration (no code shared with cljax.losses or cljax.theory besides
`simplex_etf`, whose properties are tested first).
"""

import functools
import itertools
import math

import numpy as np
import pytest

from cljax import theory

# ----------------------------------------------------------------------------
# Independent reference loops (float64).
# ----------------------------------------------------------------------------


def _lse(x):
  x = np.asarray(x, dtype=np.float64)
  hi = np.max(x)
  return hi + np.log(np.sum(np.exp(x - hi)))


def _random_rotation(rng, dim):
  q, r = np.linalg.qr(rng.normal(size=(dim, dim)))
  return q * np.sign(np.diag(r))


def _collapsed_views(num_classes, samples_per_class, num_views, dim, rng):
  """z[N, K, dim] at augmentation + class collapse onto a rotated unit ETF."""
  means = theory.simplex_etf(num_classes, dim) @ _random_rotation(rng, dim).T
  labels = np.repeat(np.arange(num_classes), samples_per_class)
  z = np.repeat(means[labels][:, None, :], num_views, axis=1)
  return z, labels


def _random_views(labels, num_views, dim, rng):
  z = rng.normal(size=(len(labels), num_views, dim))
  return z / np.linalg.norm(z, axis=-1, keepdims=True)


def _p1_loss(z, labels, tau, kind, include_self_pairs=False):
  """P1-family loss, mean over (anchor view, positive view of same sample).

  kinds: nscl_paper, nscl_code, dcl, dcl_code, ntxent, cl_code (every view but
  the anchor plus the positive once more), cl_spec (positive twice plus the
  views of the other samples).
  """
  n_samples, n_views, dim = z.shape
  flat = z.reshape(-1, dim)
  flat = flat / np.linalg.norm(flat, axis=1, keepdims=True)  # cosine
  sim = flat @ flat.T / tau
  sid = np.repeat(np.arange(n_samples), n_views)
  lab = np.asarray(labels)[sid]
  idx = np.arange(len(sid))
  total, count = 0.0, 0
  for a in idx:
    for p in idx[sid == sid[a]]:
      if p == a and not include_self_pairs:
        continue
      other_class = list(idx[lab != lab[a]])
      other_sample = list(idx[sid != sid[a]])
      not_anchor = list(idx[idx != a])
      denom = {
          "nscl_paper": other_class,
          "nscl_code": [p] + other_class,
          "dcl": other_sample,
          "dcl_code": [p] + other_sample,
          "ntxent": not_anchor,
          "cl_code": [p] + not_anchor,
          "cl_spec": [p, p] + other_sample,
      }[kind]
      total += -(sim[a, p] - _lse(sim[a, denom]))
      count += 1
  return total / count


def _supcon_loss(z, labels, tau, form):
  """Khosla SupCon (L_out / L_in), positives = other same-label views."""
  n_samples, n_views, dim = z.shape
  flat = z.reshape(-1, dim)
  flat = flat / np.linalg.norm(flat, axis=1, keepdims=True)
  sim = flat @ flat.T / tau
  lab = np.asarray(labels)[np.repeat(np.arange(n_samples), n_views)]
  idx = np.arange(len(lab))
  losses = []
  for a in idx:
    pos = idx[(lab == lab[a]) & (idx != a)]
    log_den = _lse(sim[a, idx != a])
    if form == "out":
      losses.append(np.mean([-(sim[a, p] - log_den) for p in pos]))
    else:
      losses.append(-(_lse(sim[a, pos]) - np.log(len(pos)) - log_den))
  return float(np.mean(losses))


def _p3_pair_losses(z, labels, tau, beta, pool):
  """P3 code pair losses with the exact tilted expectation over the pool."""
  sim = z @ z.T / tau
  labels = np.asarray(labels)
  out = []
  for i in range(len(labels)):
    if pool == "scl":
      members = np.flatnonzero(labels != labels[i])
    else:  # "ucl": every batch member, the anchor and its class included.
      members = np.arange(len(labels))
    w = np.exp(beta * sim[i, members])
    mean_exp = np.sum(w * np.exp(sim[i, members])) / np.sum(w)
    for p in np.flatnonzero(labels == labels[i]):  # includes p == i
      out.append((i, p, np.log1p(mean_exp / np.exp(sim[i, p]))))
  return out


# ----------------------------------------------------------------------------
# simplex_etf.
# ----------------------------------------------------------------------------


@pytest.mark.parametrize("num_classes,dim", [(2, 1), (2, 4), (3, 2), (3, 3),
                                             (4, 3), (5, 9), (10, 9),
                                             (10, 16), (100, 99)])
@pytest.mark.parametrize("radius", [1.0, 2.5])
def test_simplex_etf_properties(num_classes, dim, radius):
  m = theory.simplex_etf(num_classes, dim, radius=radius)
  assert isinstance(m, np.ndarray)
  assert m.shape == (num_classes, dim) and m.dtype == np.float64
  gram = m @ m.T
  off = -radius**2 / (num_classes - 1)
  expected = np.full((num_classes, num_classes), off)
  np.fill_diagonal(expected, radius**2)
  np.testing.assert_allclose(gram, expected, rtol=0, atol=1e-13 * radius**2)
  np.testing.assert_allclose(m.sum(axis=0), 0.0, atol=1e-12 * radius)
  assert np.linalg.matrix_rank(m) == num_classes - 1
  # Deterministic and zero-padded beyond the C-1 spanned coordinates.
  np.testing.assert_array_equal(m, theory.simplex_etf(num_classes, dim,
                                                      radius=radius))
  np.testing.assert_array_equal(m[:, num_classes - 1:], 0.0)


def test_simplex_etf_float32_and_rotation_invariance():
  m = theory.simplex_etf(6, 8, dtype=np.float32)
  assert m.dtype == np.float32
  np.testing.assert_allclose(m, theory.simplex_etf(6, 8), atol=1e-7)
  rot = _random_rotation(np.random.default_rng(0), 8)
  g = (m.astype(np.float64) @ rot) @ (m.astype(np.float64) @ rot).T
  np.testing.assert_allclose(np.diag(g), 1.0, atol=1e-6)


@pytest.mark.parametrize("kwargs,match", [
    (dict(num_classes=1, dim=3), "num_classes"),
    (dict(num_classes=5, dim=3), "dim"),
    (dict(num_classes=3, dim=2, radius=0.0), "radius"),
    (dict(num_classes=3, dim=2, radius=-1.0), "radius"),
    (dict(num_classes=3.0, dim=2), "num_classes"),
    (dict(num_classes=True, dim=2), "num_classes"),
    (dict(num_classes=3, dim=2, dtype=np.int32), "dtype"),
])
def test_simplex_etf_bad_input(kwargs, match):
  with pytest.raises(ValueError, match=match):
    theory.simplex_etf(**kwargs)


# ----------------------------------------------------------------------------
# Theorem 1 bounds.
# ----------------------------------------------------------------------------

# docs/conventions.md#reference-values.
_TABLE_9_1 = [(2, 2.126928, 4.018150), (5, 1.046359, 2.684409),
              (10, 0.599389, 1.955360), (20, 0.328510, 1.354181),
              (50, 0.140455, 0.748699), (100, 0.071983, 0.439220),
              (1000, 0.007369, 0.053212)]


@pytest.mark.parametrize("num_classes,tau1,tau05", _TABLE_9_1)
def test_gap_bound_table_9_1(num_classes, tau1, tau05):
  assert abs(theory.gap_bound(num_classes) - tau1) < 5e-7
  assert abs(theory.gap_bound(num_classes, temperature=1.0) - tau1) < 5e-7
  assert abs(theory.gap_bound(num_classes, temperature=0.5) - tau05) < 5e-7


def test_gap_bound_small_temperature_does_not_overflow():
  # e^{2/tau} overflows float64 for tau < 2/709; the bound is then 2/tau -
  # log(C-1) to double precision.
  value = theory.gap_bound(10, temperature=1e-3)
  assert value == pytest.approx(2000.0 - math.log(9.0), rel=1e-15)
  assert math.isfinite(theory.batch_gap_bound([3, 5], temperature=1e-3))


def test_gap_bound_from_counts():
  # Spec example: C=10, n=4, tau=1 -> 0.4798.
  assert round(theory.gap_bound_from_counts([4] * 10), 4) == 0.4798
  # Balanced counts are below the n -> inf balanced bound, and tend to it.
  for c in (2, 5, 10):
    values = [theory.gap_bound_from_counts([n] * c, temperature=0.5)
              for n in (2, 10, 10**6)]
    balanced = theory.gap_bound(c, temperature=0.5)
    assert values[0] < values[1] < values[2] < balanced
    assert values[2] == pytest.approx(balanced, rel=1e-5)
  # Unbalanced: the worst class; absent classes (0) are ignored.
  counts = [1, 3, 0, 6]
  expected = max(
      math.log(1 + math.e**2 * (nc - 1) / (10 - nc)) for nc in (1, 3, 6))
  assert theory.gap_bound_from_counts(counts) == pytest.approx(expected,
                                                               rel=1e-15)
  assert theory.gap_bound_from_counts(np.array(counts)) == pytest.approx(
      expected, rel=1e-15)
  # Singletons only: no same-class mass, no gap.
  assert theory.gap_bound_from_counts([1, 1, 1]) == 0.0
  # One class holds everything: NSCL has no negatives.
  assert theory.gap_bound_from_counts([5, 0, 0]) == math.inf
  assert theory.batch_gap_bound([0, 7]) == math.inf


def test_batch_gap_bound():
  counts = [2, 5, 1, 8]
  total = sum(counts)
  expected = sum(nc * math.log(1 + math.exp(2 / 0.7) * (nc - 1) /
                               (total - nc)) for nc in counts) / total
  got = theory.batch_gap_bound(counts, temperature=0.7)
  assert got == pytest.approx(expected, rel=1e-14)
  assert got < theory.gap_bound_from_counts(counts, temperature=0.7)
  # Balanced batch: all classes give the same term.
  assert theory.batch_gap_bound([4] * 6) == pytest.approx(
      theory.gap_bound_from_counts([4] * 6), rel=1e-15)
  labels = np.repeat(np.arange(4), counts)
  np.random.default_rng(0).shuffle(labels)
  assert theory.batch_gap_bound_from_labels(
      labels, temperature=0.7) == pytest.approx(got, rel=1e-15)
  assert theory.batch_gap_bound_from_labels(
      labels.astype(np.int32), temperature=0.7,
      num_classes=4) == pytest.approx(got, rel=1e-15)


@pytest.mark.parametrize("fn,args,match", [
    (theory.gap_bound, (1,), "num_classes"),
    (functools.partial(theory.gap_bound, temperature=0.0), (10,),
     "temperature"),
    (functools.partial(theory.gap_bound, temperature=-1.0), (10,),
     "temperature"),
    (functools.partial(theory.gap_bound, temperature=float("inf")), (10,),
     "temperature"),
    (theory.gap_bound_from_counts, ([2.0, 3.0],), "class_counts"),
    (theory.gap_bound_from_counts, ([2, -1],), "class_counts"),
    (theory.gap_bound_from_counts, ([0, 0],), "class_counts"),
    (theory.gap_bound_from_counts, ([],), "class_counts"),
    (theory.gap_bound_from_counts, ([[1, 2]],), "class_counts"),
    (functools.partial(theory.batch_gap_bound, temperature=-0.5), ([2, 3],),
     "temperature"),
    (theory.batch_gap_bound_from_labels, (np.array([0.0, 1.0]),), "labels"),
    (theory.batch_gap_bound_from_labels, (np.array([], dtype=int),),
     "labels"),
    (theory.double_counted_gap_bound, (10, 4, 1), "num_views"),
    (theory.double_counted_gap_bound, (10, 0, 2), "samples_per_class"),
])
def test_gap_bounds_bad_input(fn, args, match):
  with pytest.raises(ValueError, match=match):
    fn(*args)


def test_batch_gap_bound_from_labels_range_check():
  with pytest.raises(ValueError, match="labels"):
    theory.batch_gap_bound_from_labels(np.array([0, 3]), num_classes=3)


_GAP_CASES = [
    # (class counts, K, tau)
    ([3, 3], 2, 1.0),
    ([2, 2, 2], 3, 0.5),
    ([4] * 10, 3, 1.0),  # the spec's example (C=10, n=4, K=3)
    ([1] * 5, 2, 2.0),
    ([1, 3, 5], 2, 0.5),
    ([2, 1, 6, 3], 3, 1.0),
    ([5, 1], 2, 0.2),
]


@pytest.mark.parametrize("counts,num_views,tau", _GAP_CASES)
def test_theorem1_gap_on_random_features(counts, num_views, tau):
  rng = np.random.default_rng(sum(counts) * 10 + num_views)
  labels = np.repeat(np.arange(len(counts)), counts)
  for dim in (3, 16):
    z = _random_views(labels, num_views, dim, rng)
    general = theory.gap_bound_from_counts(counts, temperature=tau)
    per_batch = theory.batch_gap_bound(counts, temperature=tau)
    assert per_batch <= general
    for self_pairs in (False, True):
      gap = theory.check_gap(
          _p1_loss(z, labels, tau, "dcl", self_pairs),
          _p1_loss(z, labels, tau, "nscl_paper", self_pairs), per_batch,
          rtol=0.0, atol=1e-12)
      if max(counts) > 1:
        assert gap > 0
    # The code pair (positive added to both denominators) obeys the bound.
    theory.check_gap(_p1_loss(z, labels, tau, "dcl_code"),
                     _p1_loss(z, labels, tau, "nscl_code"), per_batch,
                     rtol=0.0, atol=1e-12)


@pytest.mark.parametrize("counts,tau", [([3, 3], 1.0), ([2, 5], 0.5),
                                        ([1, 4], 2.0)])
def test_theorem1_batch_bound_is_attained_by_antipodal_classes(counts, tau):
  # Two antipodal collapsed classes: same-class cosine 1, other-class -1, so
  # every anchor meets its class term with equality.
  labels = np.repeat([0, 1], counts)
  means = theory.simplex_etf(2, 3)
  z = np.repeat(means[labels][:, None, :], 2, axis=1)
  gap = (_p1_loss(z, labels, tau, "dcl") -
         _p1_loss(z, labels, tau, "nscl_paper"))
  assert gap == pytest.approx(
      theory.batch_gap_bound(counts, temperature=tau), rel=1e-12)
  if counts[0] == counts[1]:
    assert gap == pytest.approx(
        theory.gap_bound_from_counts(counts, temperature=tau), rel=1e-12)


def test_double_counted_gap_bound():
  c, n, tau = 4, 3, 1.0
  expected = math.log(1 + math.exp(2 / tau) * (2 * (n - 1) + 1) /
                      (2 * (c * n - n)))
  assert theory.double_counted_gap_bound(
      c, n, 2, temperature=tau) == pytest.approx(expected, rel=1e-15)
  # It exceeds Theorem 1's bound, which this pair can violate: at two
  # antipodal singletons Theorem 1 allows no gap, yet CL (positive counted
  # twice) and code NSCL differ.
  labels = np.array([0, 1])
  z = np.repeat(theory.simplex_etf(2, 2)[labels][:, None, :], 2, axis=1)
  gap = (_p1_loss(z, labels, 1.0, "cl_code") -
         _p1_loss(z, labels, 1.0, "nscl_code"))
  assert gap > theory.gap_bound_from_counts([1, 1]) + 0.1
  assert gap <= theory.double_counted_gap_bound(2, 1, 2, temperature=1.0)
  rng = np.random.default_rng(7)
  for (c, n, k, tau) in [(2, 3, 2, 1.0), (3, 2, 2, 0.5), (4, 2, 3, 1.0),
                         (2, 1, 2, 0.3)]:
    labels = np.repeat(np.arange(c), n)
    z = _random_views(labels, k, 4, rng)
    bound = theory.double_counted_gap_bound(c, n, k, temperature=tau)
    # K = 2: the code's ContrastiveLoss; K = 3: the documented definition.
    kind = "cl_code" if k == 2 else "cl_spec"
    theory.check_gap(_p1_loss(z, labels, tau, kind),
                     _p1_loss(z, labels, tau, "nscl_code"), bound, rtol=0.0,
                     atol=1e-12)


def test_check_gap_messages():
  assert theory.check_gap(2.0, 1.5, 0.6) == pytest.approx(0.5)
  assert theory.check_gap(np.float32(1.0), np.array(1.0), 0.1) == 0.0
  with pytest.raises(AssertionError, match="negative"):
    theory.check_gap(1.0, 1.5, 0.6)
  with pytest.raises(AssertionError, match="exceeds the bound"):
    theory.check_gap(3.0, 1.5, 0.6)
  with pytest.raises(ValueError, match="dcl_value"):
    theory.check_gap(np.ones(3), 1.0, 0.6)
  with pytest.raises(ValueError, match="nscl_value"):
    theory.check_gap(1.0, float("nan"), 0.6)
  with pytest.raises(ValueError, match="dcl_value"):
    theory.check_gap("x", 1.0, 0.6)
  with pytest.raises(ValueError, match="bound"):
    theory.check_gap(1.0, 1.0, float("nan"))


# ----------------------------------------------------------------------------
# Loss values at the collapsed simplex ETF (P1, P2).
# ----------------------------------------------------------------------------

_ETF_CASES = [(2, 1, 2, 1.0), (2, 3, 2, 0.5), (3, 2, 3, 1.0), (4, 3, 3, 0.2),
              (5, 2, 2, 0.1), (4, 1, 4, 2.0)]


@pytest.mark.parametrize("c,n,k,tau", _ETF_CASES)
def test_p1_losses_at_etf_match_loops(c, n, k, tau):
  rng = np.random.default_rng(c * 100 + n * 10 + k)
  z, labels = _collapsed_views(c, n, k, c + 2, rng)
  big_n = c * n
  e = math.exp(-c / ((c - 1) * tau))
  # The formulas as written in docs/conventions.md / the docstrings.
  nscl_paper = math.log(k * (big_n - n)) - c / ((c - 1) * tau)
  nscl_code = math.log(1 + k * (big_n - n) * e)
  dcl = math.log(k * (n - 1) + k * (big_n - n) * e)
  ntxent = math.log(k * n - 1 + k * (big_n - n) * e)
  check = dict(rel=1e-12, abs=1e-12)
  assert theory.nscl_at_etf(c, n, k, temperature=tau) == pytest.approx(
      nscl_paper, **check)
  assert theory.nscl_at_etf(
      c, n, k, temperature=tau, positive_in_denominator=True) == pytest.approx(
          nscl_code, **check)
  assert theory.dcl_at_etf(c, n, k, temperature=tau) == pytest.approx(
      dcl, **check)
  assert theory.ntxent_at_etf(c, n, k, temperature=tau) == pytest.approx(
      ntxent, **check)
  # Independent loops on the explicit configuration.
  for self_pairs in (False, True):
    assert _p1_loss(z, labels, tau, "nscl_paper",
                    self_pairs) == pytest.approx(nscl_paper, **check)
    assert _p1_loss(z, labels, tau, "dcl",
                    self_pairs) == pytest.approx(dcl, **check)
  assert _p1_loss(z, labels, tau, "nscl_code") == pytest.approx(nscl_code,
                                                                **check)
  assert _p1_loss(z, labels, tau, "ntxent") == pytest.approx(ntxent, **check)
  assert _p1_loss(z, labels, tau, "dcl_code") == pytest.approx(
      theory.dcl_at_etf(c, n, k, temperature=tau,
                        positive_in_denominator=True), **check)
  if k == 2:
    assert theory.dcl_at_etf(
        c, n, k, temperature=tau,
        positive_in_denominator=True) == pytest.approx(ntxent, **check)
  # Theorem 1 at the NSCL optimum.
  theory.check_gap(theory.dcl_at_etf(c, n, k, temperature=tau),
                   theory.nscl_at_etf(c, n, k, temperature=tau),
                   theory.gap_bound_from_counts([n] * c, temperature=tau),
                   rtol=0.0, atol=1e-12)


def test_nscl_at_etf_spec_value_and_is_minimum():
  # docs/conventions.md#dcl-nscl-paper: -3.37 for C=4, n=3, K=3, tau=0.2.
  assert round(theory.nscl_at_etf(4, 3, 3, temperature=0.2), 2) == -3.37
  # The ETF value is below NSCL on random and perturbed features.
  rng = np.random.default_rng(3)
  c, n, k, tau = 3, 2, 2, 0.5
  z, labels = _collapsed_views(c, n, k, 4, rng)
  best = theory.nscl_at_etf(c, n, k, temperature=tau)
  for _ in range(3):
    noisy = z + 0.05 * rng.normal(size=z.shape)
    assert _p1_loss(noisy, labels, tau, "nscl_paper") > best
    assert _p1_loss(_random_views(labels, k, 4, rng), labels, tau,
                    "nscl_paper") > best


def test_large_inverse_temperature_is_stable():
  # e underflows to 0 for tau -> 0: values tend to log of the same-class count.
  assert theory.nscl_at_etf(10, 5, 2, temperature=1e-4,
                            positive_in_denominator=True) == 0.0
  assert theory.ntxent_at_etf(10, 5, 2, temperature=1e-4) == pytest.approx(
      math.log(9))
  assert theory.dcl_at_etf(10, 1, 2, temperature=1e-4) == pytest.approx(
      math.log(2 * 9) - 10 / 9 * 1e4)
  assert theory.scl_at_etf(10, temperature=1e-4) == 0.0


@pytest.mark.parametrize("c,n,k,tau", _ETF_CASES + [(3, 2, 1, 0.1),
                                                    (10, 3, 1, 0.1)])
def test_supcon_at_etf_matches_loops(c, n, k, tau):
  rng = np.random.default_rng(c + n + k)
  z, labels = _collapsed_views(c, n, k, c + 1, rng)
  expected = math.log(k * n - 1 + k * (c * n - n) *
                      math.exp(-c / ((c - 1) * tau)))
  value = theory.supcon_at_etf(c, n, k, temperature=tau)
  assert value == pytest.approx(expected, rel=1e-12)
  for form in ("out", "in"):
    assert _supcon_loss(z, labels, tau, form) == pytest.approx(value,
                                                               rel=1e-12)


@pytest.mark.parametrize("fn,args,kwargs,match", [
    (theory.nscl_at_etf, (3, 2, 1), {}, "num_views"),
    (theory.dcl_at_etf, (1, 2, 2), {}, "num_classes"),
    (theory.ntxent_at_etf, (3, 2, 2), {"temperature": 0}, "temperature"),
    (theory.supcon_at_etf, (3, 1, 1), {}, "samples_per_class"),
    (theory.cross_entropy_at_simplex, (3,), {"feature_radius": -1.0},
     "feature_radius"),
    (theory.cross_entropy_at_simplex, (3,), {"weight_radius": 0.0},
     "weight_radius"),
    (theory.supcon_multiset_bound, (3, 2, 9), {"reduction": "max"},
     "reduction"),
    (theory.supcon_multiset_bound, (3, 2, 0), {}, "batch_size"),
    (theory.supcon_multiset_bound, (3, 2, 9), {"radius": 0.0}, "radius"),
    (theory.supcon_multiset_counts, (1, 2, 9), {}, "num_classes"),
])
def test_closed_form_bad_input(fn, args, kwargs, match):
  with pytest.raises(ValueError, match=match):
    fn(*args, **kwargs)


@pytest.mark.parametrize("c,rho,r_w", [(2, 1.0, 1.0), (3, 2.0, 0.5),
                                       (10, 1.0, 3.0), (100, 5.0, 4.0)])
def test_cross_entropy_at_simplex_matches_loop(c, rho, r_w):
  rng = np.random.default_rng(c)
  rot = _random_rotation(rng, c + 3)
  zeta = theory.simplex_etf(c, c + 3) @ rot.T
  weights = r_w * zeta
  losses = []
  for y in range(c):
    logits = weights @ (rho * zeta[y])
    losses.append(-(logits[y] - _lse(logits)))
  expected = math.log(1 + (c - 1) * math.exp(-rho * r_w * c / (c - 1)))
  value = theory.cross_entropy_at_simplex(c, feature_radius=rho,
                                          weight_radius=r_w)
  assert value == pytest.approx(expected, rel=1e-12)
  assert np.mean(losses) == pytest.approx(value, rel=1e-12)


# ----------------------------------------------------------------------------
# P3 closed forms.
# ----------------------------------------------------------------------------


def test_scl_at_etf_spec_values():
  assert round(theory.scl_at_etf(10), 5) == 0.28457
  assert round(theory.scl_at_etf(100), 5) == 0.31056


@pytest.mark.parametrize("c,tau", [(2, 1.0), (4, 1.0), (10, 0.5)])
def test_scl_and_ucl_at_etf_match_loops(c, tau):
  rng = np.random.default_rng(c)
  means = theory.simplex_etf(c, c + 1) @ _random_rotation(rng, c + 1).T
  # Unbalanced batch with every class present, one view per image.
  labels = np.concatenate([np.arange(c), rng.integers(0, c, size=7)])
  z = means[labels]
  counts = np.bincount(labels, minlength=c)
  big_b = len(labels)
  e = math.exp(-c / ((c - 1) * tau))
  for beta in (0.0, 2.0, 5.0, 30.0):
    for i, p, loss in _p3_pair_losses(z, labels, tau, beta, "scl"):
      assert loss == pytest.approx(theory.scl_at_etf(c, temperature=tau),
                                   rel=1e-12)
    for i, p, loss in _p3_pair_losses(z, labels, tau, beta, "ucl"):
      b = int(counts[labels[i]])
      assert loss == pytest.approx(
          theory.ucl_at_etf(c, b, big_b, temperature=tau, beta=beta),
          rel=1e-12)
      if beta == 0.0:
        assert loss == pytest.approx(
            math.log(1 + b / big_b + (1 - b / big_b) * e), rel=1e-12)


def test_ucl_at_etf_properties():
  # Hard negatives cannot lower the loss (HUCL >= UCL), and at NC the UCL
  # value is above the SCL value (class collisions in the pool).
  values = [theory.ucl_at_etf(10, 3, 64, beta=b) for b in (0, 1, 2, 5, 30)]
  assert all(x <= y for x, y in zip(values, values[1:]))
  assert values[0] > theory.scl_at_etf(10)
  # Large beta: the tilt concentrates on the same-class members -> log 2.
  assert theory.ucl_at_etf(10, 3, 64, beta=1e4) == pytest.approx(math.log(2))
  # Whole batch of one class: every pool member is a positive -> log 2.
  assert theory.ucl_at_etf(5, 8, 8, beta=3.0) == pytest.approx(math.log(2))
  with pytest.raises(ValueError, match="class_count_in_batch"):
    theory.ucl_at_etf(5, 9, 8)
  with pytest.raises(ValueError, match="class_count_in_batch"):
    theory.ucl_at_etf(5, 0, 8)
  with pytest.raises(ValueError, match="beta"):
    theory.ucl_at_etf(5, 2, 8, beta=-1.0)


# ----------------------------------------------------------------------------
# P2 SupCon multiset bound.
# ----------------------------------------------------------------------------


def _brute_force_supcon_sum(points, labels, batch_size, tau):
  """Sum over every multiset of size b of the per-batch SupCon L_out (sum)."""
  batches = np.array(list(itertools.combinations_with_replacement(
      range(len(labels)), batch_size)))
  z = points[batches]  # [M, b, d]
  lab = labels[batches]  # [M, b]
  sim = np.einsum("mid,mjd->mij", z, z) / tau
  eye = np.eye(batch_size, dtype=bool)
  # Positions, not sample ids: a duplicate of the anchor is a positive.
  pos = (lab[:, :, None] == lab[:, None, :]) & ~eye
  masked = np.where(eye, -np.inf, sim)
  hi = masked.max(axis=2, keepdims=True)
  log_den = hi[..., 0] + np.log(np.exp(masked - hi).sum(axis=2))
  n_pos = pos.sum(axis=2)
  pos_sum = np.where(pos, sim - log_den[..., None], 0.0).sum(axis=2)
  per_anchor = np.where(n_pos > 0, -pos_sum / np.maximum(n_pos, 1), 0.0)
  return len(batches), float(per_anchor.sum())


def test_supcon_multiset_counts():
  counts = theory.supcon_multiset_counts(3, 2, 9)
  assert all(isinstance(v, int) for v in counts.values())
  # Brute-force count of (class, multiset) pairs with that class l times.
  labels = np.repeat(np.arange(3), 2)
  brute = {l: 0 for l in range(10)}
  for batch in itertools.combinations_with_replacement(range(6), 9):
    for cls in range(3):
      brute[int(np.sum(labels[list(batch)] == cls))] += 1
  assert counts == brute
  # Multiset Vandermonde: sum_l M_l = C ((N b)); exact big integers.
  for c, n, b in [(3, 2, 9), (10, 500, 256), (100, 500, 256)]:
    big = theory.supcon_multiset_counts(c, n, b)
    assert sum(big.values()) == c * math.comb(c * n + b - 1, b)
  assert theory.supcon_multiset_counts(2, 2, 3) == {0: 8, 1: 12, 2: 12, 3: 8}


@pytest.mark.parametrize("c,n,b,tau,rho,n_batches", [
    (3, 2, 9, 0.1, 1.0, 2002),  # P2's toy: 3 classes x 2 points, batch 9
    (3, 2, 9, 1.0, 1.5, 2002),
    (2, 2, 3, 0.1, 1.0, 20),
    (2, 2, 3, 0.5, 2.0, 20),
    (4, 1, 4, 0.3, 1.0, 35),
])
def test_supcon_multiset_bound_brute_force(c, n, b, tau, rho, n_batches):
  labels = np.repeat(np.arange(c), n)
  bound = theory.supcon_multiset_bound(c, n, b, temperature=tau, radius=rho)
  # Equality at class collapse onto a simplex inscribed in the rho-sphere.
  points = theory.simplex_etf(c, c - 1, radius=rho)[labels]
  count, total = _brute_force_supcon_sum(points, labels, b, tau)
  assert count == n_batches
  np.testing.assert_allclose(total, bound, rtol=1e-12)
  # The formula as printed in docs/conventions.md#supcon-multiset-bound.
  e = math.exp(-c * rho**2 / ((c - 1) * tau))
  m_l = theory.supcon_multiset_counts(c, n, b)
  printed = sum(l * m_l[l] * math.log(l - 1 + (b - l) * e)
                for l in range(2, b + 1))
  np.testing.assert_allclose(bound, printed, rtol=1e-13)
  mean = theory.supcon_multiset_bound(c, n, b, temperature=tau, radius=rho,
                                      reduction="mean")
  np.testing.assert_allclose(mean, bound / (n_batches * b), rtol=1e-13)
  # Any other configuration on the sphere (circle for d=2, sphere for d=3,
  # both >= C - 1) has a larger multiset sum.
  rng = np.random.default_rng(c * 10 + b)
  for dim in sorted({max(c - 1, 2), 3}):
    for _ in range(3):
      x = rng.normal(size=(c * n, dim))
      x = rho * x / np.linalg.norm(x, axis=1, keepdims=True)
      assert _brute_force_supcon_sum(x, labels, b, tau)[1] > bound
    # Near the optimum (perturbed simplex) it is still larger.
    x = theory.simplex_etf(c, dim, radius=rho)[labels]
    x = x + 0.02 * rho * rng.normal(size=x.shape)
    x = rho * x / np.linalg.norm(x, axis=1, keepdims=True)
    assert _brute_force_supcon_sum(x, labels, b, tau)[1] > bound


def test_supcon_multiset_bound_large():
  # Realistic sizes: the exact sum exceeds float64, the mean does not.
  with pytest.raises(OverflowError, match="mean"):
    theory.supcon_multiset_bound(100, 500, 256)
  mean = theory.supcon_multiset_bound(100, 500, 256, reduction="mean")
  assert 0.0 < mean < math.log(255)
  # Its bad-input cases are in test_closed_form_bad_input.


# ----------------------------------------------------------------------------
# P1 few-shot bound.
# ----------------------------------------------------------------------------


def _fewshot_e(a, alpha, v, m, variant):
  """E(a) as printed in docs/conventions.md#fewshot-bound (vectorised in a)."""
  bracket = (0.5 - 2.0 / a - 2.0**1.5 / (a * m))**-2 * alpha
  if variant == "published":
    return bracket + a / 4 * (2 / np.sqrt(m) * (np.sqrt(v) + v) + v / m)
  return bracket + 2 * np.sqrt(2) * v / m * a


def _grid_minimum(alpha, v, m, variant):
  """Brute-force min over a >= 5 (a > 2A): log grid, then a local refine."""
  pole = 4.0 + 2.0**2.5 / m
  lo = max(5.0, pole)
  a = lo + np.geomspace(1e-10, 1e7, 200001)
  if lo == 5.0 and pole < 5.0:
    a = np.concatenate([[5.0], a])
  e = _fewshot_e(a, alpha, v, m, variant)
  j = int(np.argmin(e))
  fine = np.linspace(a[max(j - 1, 0)], a[min(j + 1, len(a) - 1)], 200001)
  e_fine = _fewshot_e(fine, alpha, v, m, variant)
  k = int(np.argmin(e_fine))
  return min(e_fine[k], e[j]), (fine[k] if e_fine[k] <= e[j] else a[j])


_FEWSHOT_CASES = [(0.0729, 1.672, 1), (0.0729, 1.672, 5), (0.0729, 1.672, 500),
                  (0.5, 0.1, 3), (2.0, 0.01, 1000), (0.01, 10.0, 7),
                  (1e-4, 1.0, 100), (1e-3, 0.5, 2), (3.0, 3.0, 10**6)]


@pytest.mark.parametrize("variant", ["published", "v1"])
@pytest.mark.parametrize("alpha,v,m", _FEWSHOT_CASES)
def test_fewshot_bound_equals_grid_minimum(alpha, v, m, variant):
  for ways in (2, 5):
    res = theory.fewshot_bound(alpha, v, m, ways=ways, variant=variant,
                               return_details=True)
    assert isinstance(res, theory.FewShotBound)
    assert res.cubic_residual < 1e-12
    assert res.a_star >= 5.0
    grid_min, grid_arg = _grid_minimum(alpha, v, m, variant)
    # Our value is the exact minimum: never above a grid point, and the
    # refined grid gets within round-off of it.
    assert res.value / (ways - 1) <= grid_min * (1 + 1e-13)
    assert res.value / (ways - 1) == pytest.approx(grid_min, rel=1e-11)
    assert res.a_star == pytest.approx(grid_arg, rel=1e-4)
    assert theory.fewshot_bound(alpha, v, m, ways=ways,
                                variant=variant) == res.value


def test_fewshot_bound_boundary_case_hits_a_equals_5():
  # Tiny directional CDNV: the unconstrained optimum is below 5.
  for variant in ("published", "v1"):
    res = theory.fewshot_bound(1e-4, 1.0, 100, variant=variant,
                               return_details=True)
    assert res.a_star == 5.0
    assert res.value == pytest.approx(
        float(_fewshot_e(5.0, 1e-4, 1.0, 100, variant)), rel=1e-14)


def test_fewshot_bound_section_2_7_regression():
  # docs/conventions.md#fewshot-bound-example: alpha=0.0729, V=1.672, 2-way
  # -> ~29.1 (m=1), ~1.46
  # (m=500). The published form with the correct root reproduces both; the
  # arXiv-v1 form gives 64.37 and 0.644, so the quoted values are published.
  assert theory.fewshot_bound(0.0729, 1.672, 1) == pytest.approx(29.1150,
                                                                 abs=1e-4)
  assert theory.fewshot_bound(0.0729, 1.672, 500) == pytest.approx(1.4595,
                                                                   abs=1e-4)
  assert round(theory.fewshot_bound(0.0729, 1.672, 1), 1) == 29.1
  assert round(theory.fewshot_bound(0.0729, 1.672, 500), 2) == 1.46
  assert round(theory.fewshot_bound(0.0729, 1.672, 1, variant="v1"), 2) == \
      64.37
  assert round(theory.fewshot_bound(0.0729, 1.672, 500, variant="v1"), 3) == \
      0.644
  # Monotone in m over the authors' shot grid.
  shots = [1, 5, 10, 20, 50, 100, 200, 300, 500, 1000]
  values = [theory.fewshot_bound(0.0729, 1.672, m) for m in shots]
  assert all(x > y for x, y in zip(values, values[1:]))


def test_fewshot_bound_beats_wrong_cardano_branch():
  # The authors' bound_core.py uses cbrt(4F(2A +- s)): not a root of the
  # cubic, and a looser (still valid) bound.
  alpha, v, m = 0.0729, 1.672, 1
  big_a = 2 + 2**1.5 / m
  big_b = (2 * math.sqrt(v / m) + 2 * v / math.sqrt(m) + v / m) / 4
  big_f = 2 * alpha * big_a / big_b
  s = math.sqrt(big_a**2 - 8 * big_f / 27)
  y_wrong = float(np.cbrt(4 * big_f * (2 * big_a + s)) +
                  np.cbrt(4 * big_f * (2 * big_a - s)))
  assert abs(y_wrong**3 - 8 * big_f * y_wrong - 16 * big_f * big_a) > 1.0
  wrong_value = float(_fewshot_e(2 * big_a + y_wrong, alpha, v, m,
                                 "published"))
  assert theory.fewshot_bound(alpha, v, m) < wrong_value


@pytest.mark.parametrize("variant", ["published", "v1"])
def test_fewshot_bound_large_m_limit(variant):
  alpha, v, ways = 0.0729, 1.672, 3
  limit = 4 * (ways - 1) * alpha
  gaps = []
  for m in (10**4, 10**8, 10**12, 10**16, 10**24):
    value = theory.fewshot_bound(alpha, v, m, ways=ways, variant=variant)
    gaps.append(value - limit)
    big_a = 2 + 2**1.5 / m
    if variant == "published":
      big_b = (2 * math.sqrt(v / m) + 2 * v / math.sqrt(m) + v / m) / 4
    else:
      big_b = 2 * math.sqrt(2) * v / m
    if m >= 10**12:
      # Leading correction: min_y 4 alpha (1 + 4A/y) + B y = 4 alpha +
      # 8 sqrt(alpha A B), up to O(B^{2/3}) relative terms.
      expected = 8 * math.sqrt(alpha * big_a * big_b) * (ways - 1)
      assert gaps[-1] == pytest.approx(expected, rel=1e-2)
  assert all(g > 0 for g in gaps)
  assert all(x > y for x, y in zip(gaps, gaps[1:]))
  assert gaps[-1] / limit < 1e-4


def test_fewshot_bound_degenerate_inputs():
  # cdnv = 0: E decreases to 4 alpha as a -> inf.
  res = theory.fewshot_bound(0.3, 0.0, 10, return_details=True)
  assert res.value == pytest.approx(1.2) and res.a_star == math.inf
  # directional cdnv = 0: E = B a, infimum at max(5, 2A).
  b_coef = (2 * math.sqrt(2.0 / 10) + 2 * 2.0 / math.sqrt(10) + 2.0 / 10) / 4
  assert theory.fewshot_bound(0.0, 2.0, 10) == pytest.approx(5 * b_coef)
  assert theory.fewshot_bound(0.0, 0.0, 1) == 0.0


def test_fewshot_bound_residual_guard(monkeypatch):
  monkeypatch.setattr(theory.fewshot, "_largest_cubic_root",
                      lambda a, f: (1.0, 0.5))
  with pytest.raises(RuntimeError, match="residual"):
    theory.fewshot_bound(0.1, 1.0, 10)


@pytest.mark.parametrize("kwargs,match", [
    (dict(directional_cdnv=-0.1, cdnv=1.0, shots=5), "directional_cdnv"),
    (dict(directional_cdnv=0.1, cdnv=-1.0, shots=5), "cdnv"),
    (dict(directional_cdnv=0.1, cdnv=float("nan"), shots=5), "cdnv"),
    (dict(directional_cdnv=0.1, cdnv=1.0, shots=0), "shots"),
    (dict(directional_cdnv=0.1, cdnv=1.0, shots=0.5), "shots"),
    (dict(directional_cdnv=0.1, cdnv=1.0, shots=5, ways=1), "ways"),
    (dict(directional_cdnv=0.1, cdnv=1.0, shots=5, ways=2.0), "ways"),
    (dict(directional_cdnv=0.1, cdnv=1.0, shots=5, variant="v2"), "variant"),
    (dict(directional_cdnv="x", cdnv=1.0, shots=5), "directional_cdnv"),
])
def test_fewshot_bound_bad_input(kwargs, match):
  with pytest.raises(ValueError, match=match):
    theory.fewshot_bound(**kwargs)


@pytest.mark.parametrize("call,match", [
    (lambda: theory.gap_bound(10, temperature=True), "`temperature` must be "
     "a real number"),
    (lambda: theory.gap_bound(10, temperature=np.array([1.0, 2.0])),
     "`temperature` must be a real number"),
    (lambda: theory.gap_bound(10.0), "`num_classes` must be a Python "
     "integer"),
    (lambda: theory.ucl_at_etf(3, 2, 4, beta=True), "`beta` must be a real"),
    (lambda: theory.fewshot_bound(float("nan"), 1.0, 5),
     "`directional_cdnv` must be finite"),
    (lambda: theory.simplex_etf(3, 2, radius=float("inf")),
     "`radius` must be finite"),
])
def test_flags_vectors_and_non_finite_hyper_parameters_are_named(call, match):
  with pytest.raises(ValueError, match=match):
    call()


def test_hyper_parameters_are_keyword_only():
  with pytest.raises(TypeError, match="positional argument"):
    theory.gap_bound(10, 0.5)  # temperature is keyword-only
  with pytest.raises(TypeError, match="positional argument"):
    theory.fewshot_bound(0.1, 1.0, 5, 2)  # ways is keyword-only
