"""Tests of the naive reference losses against facts not taken from them.

Sources of truth: optax's independent NT-Xent, scipy's log-softmax, hand
arithmetic on tiny configurations, closed forms at the collapsed simplex
(docs/conventions.md#nscl-minimisers, #supcon-multiset-bound and
#hard-negatives-theory), and inequalities proved in the papers
(Theorem-1 gap bound, Jensen for SupCon, Harris/Chebyshev for hard negatives).
"""

import itertools
import math

import jax
import numpy as np
import optax
import pytest
import scipy.special

from tests import naive_losses as nl

E = math.e


def simplex_etf(c):
  """Rows: C unit vectors in R^C with pairwise inner product -1/(C-1)."""
  m = np.eye(c) - np.ones((c, c)) / c
  return m * math.sqrt(c / (c - 1))


def collapsed(c, n, k):
  """Every view of every sample equals its class vertex; balanced labels."""
  etf = simplex_etf(c)
  labels = np.repeat(np.arange(c), n)
  z = np.stack([np.stack([etf[y]] * k) for y in labels])
  return z, labels


# Tiny configuration used for the hand computations (N=2, K=2, D=2, unit
# vectors): flattened views a0=(1,0), a1=(0,1) [sample 0] and a2=(-1,0),
# a3=(0,-1) [sample 1]. Inner products (tau = 1):
#   s01=0, s02=-1, s03=0, s12=0, s13=-1, s23=0, s_aa=1.
# Every anchor sees exactly the same multiset: own other view at 0, the other
# sample's views at {-1, 0}; so all four anchors give the same loss.
Z_TINY = np.array([[[1.0, 0.0], [0.0, 1.0]],
                   [[-1.0, 0.0], [0.0, -1.0]]])


# ---------------------------------------------------------------------------
# NT-Xent vs optax
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("seed,n,d,tau", [(0, 5, 3, 0.5), (1, 8, 7, 0.1),
                                          (2, 3, 2, 1.0), (3, 16, 4, 0.07)])
def test_ntxent_matches_optax_two_views(seed, n, d, tau):
  rng = np.random.default_rng(seed)
  z = rng.normal(size=(n, 2, d)) * rng.uniform(0.3, 3.0, size=(n, 2, 1))
  with jax.enable_x64(True):
    # optax layout: one row per embedding, rows with equal label are positives;
    # it uses cosine similarity, i.e. our "sphere" normalisation.
    emb = np.concatenate([z[:, 0], z[:, 1]], axis=0)
    lab = np.concatenate([np.arange(n), np.arange(n)])
    ref = float(optax.losses.ntxent(jax.numpy.asarray(emb),
                                    jax.numpy.asarray(lab), tau))
  loss, valid = nl.ntxent(z, tau)
  assert valid == 2 * n
  np.testing.assert_allclose(loss, ref, rtol=1e-10)
  np.testing.assert_allclose(nl.ntxent_two_view(z[:, 0], z[:, 1], tau), ref,
                             rtol=1e-10)


@pytest.mark.parametrize("k", [2, 3, 4])
def test_ntxent_matches_scipy_logsumexp(k):
  rng = np.random.default_rng(10 + k)
  n, tau = 5, 0.3
  z = rng.normal(size=(n, k, 3))
  u = z / np.linalg.norm(z, axis=-1, keepdims=True)
  flat = u.reshape(n * k, 3)  # sample-major, same as the reference
  s = flat @ flat.T / tau
  total = 0.0
  for a in range(n * k):
    lse = scipy.special.logsumexp(np.delete(s[a], a))
    pos = [b for b in range(n * k) if b // k == a // k and b != a]
    total += np.mean([lse - s[a, p] for p in pos])
  np.testing.assert_allclose(nl.ntxent(z, tau)[0], total / (n * k),
                             rtol=1e-12)


def test_normalizations():
  z = np.array([[[3.0, 4.0], [0.3, 0.4]]])
  np.testing.assert_allclose(nl.normalize_views(z, "sphere")[0],
                             [[0.6, 0.8], [0.6, 0.8]])
  np.testing.assert_allclose(nl.normalize_views(z, "ball")[0],
                             [[0.6, 0.8], [0.3, 0.4]])
  np.testing.assert_allclose(nl.normalize_views(z, "none")[0], z[0])
  # Sample-major flattening: a = i*K + l.
  z2 = np.arange(12.0).reshape(2, 3, 2)
  flat, _, _ = nl.flatten_views(z2, "none")
  np.testing.assert_array_equal(flat[4], z2[1, 1])


# ---------------------------------------------------------------------------
# Hand-computed tiny cases (Z_TINY, tau = 1)
# ---------------------------------------------------------------------------


def test_tiny_ntxent_dcl_cl():
  # NT-Xent anchor a0: positive s01=0; denominator over b != a0:
  # e^0 + e^-1 + e^0 = 2 + 1/e  ->  l = 0 + log(2 + 1/e).
  loss, valid = nl.ntxent(Z_TINY, 1.0)
  assert valid == 4
  np.testing.assert_allclose(loss, math.log(2 + 1 / E), rtol=1e-14)
  # DCL: denominator = other sample only: e^-1 + e^0  -> log(1 + 1/e).
  loss, valid = nl.dcl(Z_TINY, 1.0)
  assert valid == 4
  np.testing.assert_allclose(loss, math.log(1 + 1 / E), rtol=1e-14)
  # DCL with self pairs: P(a0) = {a0 (s=1), a1 (s=0)}:
  # mean(-1 + L, 0 + L) = L - 1/2 with L = log(1 + 1/e).
  loss, _ = nl.dcl(Z_TINY, 1.0, include_self_pairs=True)
  np.testing.assert_allclose(loss, math.log(1 + 1 / E) - 0.5, rtol=1e-14)
  # Double-counted CL: log(e^0 + (2 + 1/e)) = log(3 + 1/e).
  loss, valid = nl.cl_double_counted(Z_TINY, 1.0)
  assert valid == 4
  np.testing.assert_allclose(loss, math.log(3 + 1 / E), rtol=1e-14)
  # Temperature 0.5 doubles every logit: NT-Xent anchor a0 positive 0,
  # denominator e^0 + e^-2 + e^0 -> log(2 + e^-2).
  np.testing.assert_allclose(nl.ntxent(Z_TINY, 0.5)[0],
                             math.log(2 + E**-2), rtol=1e-14)


def test_tiny_nscl():
  labels = np.array([0, 1])
  # Different labels: D(a) = other sample's views, same as DCL.
  np.testing.assert_allclose(nl.nscl(Z_TINY, labels)[0],
                             math.log(1 + 1 / E), rtol=1e-14)
  # Code form: log(e^0 + e^-1 + e^0) - 0 = log(2 + 1/e).
  np.testing.assert_allclose(
      nl.nscl(Z_TINY, labels, positive_in_denominator=True)[0],
      math.log(2 + 1 / E), rtol=1e-14)
  # Code form with self pairs: P(a0) = {a0 (s=1), a1 (s=0)}:
  # [-1 + log(e + 1 + 1/e)] and [0 + log(1 + 1 + 1/e)], averaged.
  want = 0.5 * (-1 + math.log(E + 1 + 1 / E) + math.log(2 + 1 / E))
  np.testing.assert_allclose(
      nl.nscl(Z_TINY, labels, positive_in_denominator=True,
              include_self_pairs=True)[0], want, rtol=1e-14)
  # One class: no anchor has a negative -> (0.0, 0), in both forms.
  assert nl.nscl(Z_TINY, np.array([3, 3])) == (0.0, 0)
  assert nl.nscl(Z_TINY, np.array([3, 3]),
                 positive_in_denominator=True) == (0.0, 0)


def test_tiny_supcon():
  # Distinct labels: P(a0) = {a1}, same as NT-Xent: log(2 + 1/e).
  for variant in ("out", "in"):
    loss, valid = nl.supcon(Z_TINY, np.array([0, 1]), temperature=1.0,
                            variant=variant)
    assert valid == 4
    np.testing.assert_allclose(loss, math.log(2 + 1 / E), rtol=1e-14)
  # One label: P(a0) = {a1, a2, a3} with s = 0, -1, 0; denominator 2 + 1/e.
  # out: mean(-s) = 1/3  ->  1/3 + log(2 + 1/e).
  # in: -log((1 + 1/e + 1)/3) + log(2 + 1/e) = log 3.
  same = np.array([0, 0])
  np.testing.assert_allclose(
      nl.supcon(Z_TINY, same, temperature=1.0, variant="out")[0],
      1 / 3 + math.log(2 + 1 / E), rtol=1e-14)
  np.testing.assert_allclose(
      nl.supcon(Z_TINY, same, temperature=1.0, variant="in")[0],
      math.log(3), rtol=1e-14)
  # Weight w on the same-class denominator terms, labels [0, 1]:
  # denominator = w e^0 + e^-1 + e^0; w = 0 recovers DCL's log(1 + 1/e),
  # w = 3 gives log(4 + 1/e).
  np.testing.assert_allclose(
      nl.supcon(Z_TINY, np.array([0, 1]), 1.0, same_class_weight=0.0)[0],
      math.log(1 + 1 / E), rtol=1e-14)
  np.testing.assert_allclose(
      nl.supcon(Z_TINY, np.array([0, 1]), 1.0, same_class_weight=3.0)[0],
      math.log(4 + 1 / E), rtol=1e-14)
  # One label and w = 0: every denominator term is a positive -> invalid.
  assert nl.supcon(Z_TINY, same, 1.0, same_class_weight=0.0) == (0.0, 0)


def test_tiny_hard_contrastive():
  labels = np.array([0, 1])
  for beta in (0.0, 1.0, 3.0):
    # Anchor a0, different-class pool {a2 (s=-1), a3 (s=0)}:
    # q = (e^-beta, 1)/(e^-beta + 1); E = (e^-beta e^-1 + 1)/(e^-beta + 1).
    # Positives (self included) a0 (s=1) and a1 (s=0):
    # pair losses log(1 + E/e) and log(1 + E); anchors symmetric.
    ex = (math.exp(-beta) / E + 1) / (math.exp(-beta) + 1)
    want = 0.5 * (math.log(1 + ex / E) + math.log(1 + ex))
    loss, valid = nl.hard_contrastive(Z_TINY, labels, beta=beta)
    assert valid == 4
    np.testing.assert_allclose(loss, want, rtol=1e-14)
  # Without the self positive only a1 remains: log(1 + E), beta = 0.
  ex0 = (1 / E + 1) / 2
  np.testing.assert_allclose(
      nl.hard_contrastive(Z_TINY, labels, include_self_positive=False)[0],
      math.log(1 + ex0), rtol=1e-14)
  # "all" pool, beta = 0: {a0..a3} with s = 1, 0, -1, 0:
  # E = (e + 1 + 1/e + 1)/4.
  ex_all = (E + 2 + 1 / E) / 4
  np.testing.assert_allclose(
      nl.hard_contrastive(Z_TINY, labels, negatives="all")[0],
      0.5 * (math.log(1 + ex_all / E) + math.log(1 + ex_all)), rtol=1e-14)
  # labels=None: positive = other view only (s=0) -> log(1 + E_all).
  np.testing.assert_allclose(
      nl.hard_contrastive(Z_TINY, None, negatives="all")[0],
      math.log(1 + ex_all), rtol=1e-14)
  # One class with a different-class pool: all anchors invalid.
  assert nl.hard_contrastive(Z_TINY, np.array([0, 0])) == (0.0, 0)
  # The ball leaves these unit vectors unchanged but shrinks 2x vectors.
  np.testing.assert_allclose(nl.hard_contrastive(2 * Z_TINY, labels)[0],
                             nl.hard_contrastive(Z_TINY, labels)[0])


def test_tiny_sampled_given_indices():
  labels = np.array([0, 1])
  # Every anchor draws only its "orthogonal" negative (s = 0): E = 1.
  # a0 -> a3, a1 -> a2, a2 -> a1, a3 -> a0. Pairs: log(1 + 1/e), log 2.
  idx = np.array([[3, 3, 3], [2, 2, 2], [1, 1, 1], [0, 0, 0]])
  loss, valid = nl.hard_contrastive_sampled_given_indices(Z_TINY, labels, idx)
  assert valid == 4
  np.testing.assert_allclose(loss, 0.5 * (math.log(1 + 1 / E) + math.log(2)),
                             rtol=1e-14)
  # Mixed draws a0 -> (a2, a3): E = (1/e + 1)/2, the beta = 0 exact value.
  idx = np.array([[2, 3], [3, 2], [0, 1], [1, 0]])
  np.testing.assert_allclose(
      nl.hard_contrastive_sampled_given_indices(Z_TINY, labels, idx)[0],
      nl.hard_contrastive(Z_TINY, labels)[0], rtol=1e-14)
  # An index outside the different-class pool is rejected.
  with pytest.raises(ValueError):
    nl.hard_contrastive_sampled_given_indices(
        Z_TINY, labels, np.array([[1], [2], [1], [0]]))


def test_tiny_debiased():
  # Anchor a0: positive a1 (s=0); negatives a2 (s=-1), a3 (s=0); Nneg = 2.
  # beta = 1: w = (1/e, 1), mean w = (1 + 1/e)/2,
  # reweighted = (e^-2 + 1) / ((1 + 1/e)/2).
  rew = (E**-2 + 1) / ((1 + 1 / E) / 2)
  for tau_plus in (0.0, 0.1, 0.5):
    n_g = (-tau_plus * 2 * 1 + rew) / (1 - tau_plus)  # > 2/e: no clamp
    assert n_g > 2 / E
    loss, valid = nl.debiased_contrastive(Z_TINY, beta=1.0, tau_plus=tau_plus,
                                          temperature=1.0)
    assert valid == 4
    np.testing.assert_allclose(loss, math.log(1 + n_g), rtol=1e-14)
  # tau_plus = 0.8: (-1.6 + rew)/0.2 ~ 0.30 < 2/e, clamped: log(1 + 2/e).
  np.testing.assert_allclose(
      nl.debiased_contrastive(Z_TINY, beta=1.0, tau_plus=0.8,
                              temperature=1.0)[0],
      math.log(1 + 2 / E), rtol=1e-14)


def test_debiased_reduces_to_ntxent():
  # beta = 0, tau_plus = 0, K = 2, sphere: N_g = sum over the 2N-2 negatives
  # (never below the clamp since every s >= -1/t): exactly SimCLR, i.e. optax.
  rng = np.random.default_rng(5)
  z = rng.normal(size=(6, 2, 4))
  np.testing.assert_allclose(
      nl.debiased_contrastive(z, beta=0.0, tau_plus=0.0, temperature=0.5)[0],
      nl.ntxent_two_view(z[:, 0], z[:, 1], 0.5), rtol=1e-12)


def test_cross_entropy():
  # Hand: logits (0, 0) -> log 2; logits (log 3, 0), label 1 -> log 4.
  loss, count = nl.cross_entropy(np.array([[0.0, 0.0], [math.log(3), 0.0]]),
                                 np.array([0, 1]))
  assert count == 2
  np.testing.assert_allclose(loss, 0.5 * (math.log(2) + math.log(4)),
                             rtol=1e-14)
  rng = np.random.default_rng(0)
  logits = rng.normal(size=(7, 5)) * 10
  labels = rng.integers(0, 5, size=7)
  ls = scipy.special.log_softmax(logits, axis=1)
  np.testing.assert_allclose(nl.cross_entropy(logits, labels)[0],
                             -np.mean(ls[np.arange(7), labels]), rtol=1e-12)


# ---------------------------------------------------------------------------
# Paper triple-sum forms (docs/conventions.md#dcl-nscl-paper), written directly
# with numpy
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("self_pairs", [True, False])
def test_paper_sum_forms(self_pairs):
  rng = np.random.default_rng(7)
  n, k, tau = 6, 3, 0.7
  labels = np.array([0, 0, 1, 1, 2, 2])
  z = rng.normal(size=(n, k, 4))
  u = z / np.linalg.norm(z, axis=-1, keepdims=True)
  sim = lambda i, l1, j, l3: float(u[i, l1] @ u[j, l3]) / tau
  dcl_sum, nscl_sum, count = 0.0, 0.0, 0
  for i, l1, l2 in itertools.product(range(n), range(k), range(k)):
    if l1 == l2 and not self_pairs:
      continue
    count += 1
    num = sim(i, l1, i, l2)
    den_dcl = sum(math.exp(sim(i, l1, j, l3))
                  for j in range(n) if j != i for l3 in range(k))
    den_nscl = sum(math.exp(sim(i, l1, j, l3))
                   for j in range(n) if labels[j] != labels[i]
                   for l3 in range(k))
    dcl_sum += -(num - math.log(den_dcl))
    nscl_sum += -(num - math.log(den_nscl))
  # count = K^2 N with self pairs, K(K-1)N without.
  assert count == (k * k * n if self_pairs else k * (k - 1) * n)
  np.testing.assert_allclose(
      nl.dcl(z, tau, include_self_pairs=self_pairs)[0], dcl_sum / count,
      rtol=1e-12)
  np.testing.assert_allclose(
      nl.nscl(z, labels, tau, include_self_pairs=self_pairs)[0],
      nscl_sum / count, rtol=1e-12)


# ---------------------------------------------------------------------------
# Collapsed simplex closed forms
# ---------------------------------------------------------------------------

C4, N4, K4, TAU4 = 4, 3, 3, 0.2  # C classes, n per class, K views


def test_simplex_nscl_and_dcl():
  z, labels = collapsed(C4, N4, K4)
  big_n = C4 * N4
  gamma = C4 / ((C4 - 1) * TAU4)
  nscl_min = math.log(K4 * (big_n - N4)) - gamma
  # docs/conventions.md#dcl-nscl-paper
  assert abs(nscl_min - (-3.37)) < 0.01
  dcl_val = math.log(K4 * (N4 - 1) + K4 * (big_n - N4) * math.exp(-gamma))
  for self_pairs in (False, True):
    loss, valid = nl.nscl(z, labels, TAU4, include_self_pairs=self_pairs)
    assert valid == big_n * K4
    np.testing.assert_allclose(loss, nscl_min, rtol=1e-12)
    np.testing.assert_allclose(
        nl.dcl(z, TAU4, include_self_pairs=self_pairs)[0], dcl_val,
        rtol=1e-12)


def test_simplex_supcon_out_equals_in():
  z, labels = collapsed(C4, N4, K4)
  big_n = C4 * N4
  gamma = C4 / ((C4 - 1) * TAU4)
  # Each anchor: K n - 1 positives at 1/tau, K(N - n) negatives at
  # -1/((C-1) tau):  l = log(Kn - 1 + K(N - n) e^{-gamma}) (the bound of
  # docs/conventions.md#supcon-multiset-bound with l = Kn, b = NK, rho = 1).
  want = math.log(K4 * N4 - 1 + K4 * (big_n - N4) * math.exp(-gamma))
  out = nl.supcon(z, labels, TAU4, variant="out")
  inn = nl.supcon(z, labels, TAU4, variant="in")
  np.testing.assert_allclose(out[0], inn[0], rtol=1e-12)
  np.testing.assert_allclose(out[0], want, rtol=1e-12)
  assert out[1] == inn[1] == big_n * K4


@pytest.mark.parametrize("c,n,k,tau", [(C4, N4, K4, TAU4), (10, 2, 1, 1.0),
                                       (5, 3, 2, 0.5)])
def test_simplex_scl_hscl_pair_loss(c, n, k, tau):
  z, labels = collapsed(c, n, k)
  want = math.log(1 + math.exp(-c / ((c - 1) * tau)))
  for beta in (0.0, 2.0, 5.0, 30.0):
    loss, valid = nl.hard_contrastive(z, labels, beta=beta, temperature=tau)
    assert valid == c * n * k
    np.testing.assert_allclose(loss, want, rtol=1e-12)
  if (c, tau) == (10, 1.0):
    # docs/conventions.md#hard-negatives-theory
    np.testing.assert_allclose(want, 0.28457, atol=1e-5)
  # The sampled estimator gives the same value for any draws from the pool.
  rng = np.random.default_rng(0)
  m = c * n * k
  view_lab = np.repeat(labels, k)
  idx = np.array([rng.choice(np.flatnonzero(view_lab != view_lab[a]), 7)
                  for a in range(m)])
  np.testing.assert_allclose(
      nl.hard_contrastive_sampled_given_indices(z, labels, idx,
                                                temperature=tau)[0],
      want, rtol=1e-12)


def test_simplex_c100_value():
  z, labels = collapsed(100, 1, 1)
  # docs/conventions.md#hard-negatives-theory
  np.testing.assert_allclose(nl.hard_contrastive(z, labels, beta=5.0)[0],
                             0.31056, atol=1e-5)


def test_simplex_ucl_exact():
  # UCL, beta = 0, "all" pool: E = (K n e^1 + K(N - n) e^{-1/(C-1)}) / (N K);
  # pair loss log(1 + n/N + (1 - n/N) e^{-C/(C-1)}) (tau = 1;
  # docs/conventions.md#hard-negatives-theory).
  c, n, k = 5, 2, 2
  z, labels = collapsed(c, n, k)
  frac = n / (c * n)
  want = math.log(1 + frac + (1 - frac) * math.exp(-c / (c - 1)))
  np.testing.assert_allclose(
      nl.hard_contrastive(z, labels, beta=0.0, negatives="all")[0], want,
      rtol=1e-12)


# ---------------------------------------------------------------------------
# Inequalities on random features
# ---------------------------------------------------------------------------


def _random_ball_features(rng, n, k, d):
  z = rng.normal(size=(n, k, d))
  return z * rng.uniform(0.2, 2.0, size=(n, k, 1)) / math.sqrt(d)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_hard_negatives_never_lower_the_loss(seed):
  rng = np.random.default_rng(seed)
  c, n, k, d = 3, 3, 2, 4
  labels = rng.permutation(np.repeat(np.arange(c), n))
  z = _random_ball_features(rng, c * n, k, d)
  for negatives in ("different_class", "all"):
    base = nl.hard_contrastive(z, labels, beta=0.0, negatives=negatives)[0]
    prev = base
    for beta in (0.5, 2.0, 10.0):
      hard = nl.hard_contrastive(z, labels, beta=beta, negatives=negatives)[0]
      assert hard >= base - 1e-12
      assert hard >= prev - 1e-12  # monotone in beta as well
      prev = hard
  # Without labels (UCL on sample identities) too.
  base = nl.hard_contrastive(z, None, beta=0.0, negatives="all")[0]
  assert nl.hard_contrastive(z, None, beta=3.0, negatives="all")[0] >= base


GAP_CASES = [
    # (labels, K, tau)
    (np.repeat(np.arange(10), 4), 3, 1.0),
    (np.repeat(np.arange(4), 3), 2, 0.5),
    (np.repeat(np.arange(3), 5), 2, 0.2),
    (np.array([0, 0, 0, 0, 0, 1, 1, 2, 3]), 2, 1.0),  # unbalanced
    (np.array([0, 0, 1, 1, 1, 2]), 3, 0.5),  # unbalanced
]


@pytest.mark.parametrize("case", range(len(GAP_CASES)))
def test_theorem1_gap_bound(case):
  labels, k, tau = GAP_CASES[case]
  rng = np.random.default_rng(100 + case)
  big_n = len(labels)
  z = rng.normal(size=(big_n, k, 5))
  n_max = np.bincount(labels).max()
  bound = math.log(1 + math.exp(2 / tau) * (n_max - 1) / (big_n - n_max))
  for self_pairs in (False, True):
    d_loss, d_valid = nl.dcl(z, tau, include_self_pairs=self_pairs)
    s_loss, s_valid = nl.nscl(z, labels, tau, include_self_pairs=self_pairs)
    assert d_valid == s_valid == big_n * k
    assert 0.0 <= d_loss - s_loss <= bound
  if k == 2:
    # Code pair (docs/conventions.md#code-variants): NT-Xent vs NSCL with the
    # positive.
    gap = (nl.ntxent(z, tau)[0]
           - nl.nscl(z, labels, tau, positive_in_denominator=True)[0])
    assert 0.0 <= gap <= bound


def test_theorem1_bound_value():
  # docs/conventions.md#reference-values: C = 10, n = 4:
  # log(1 + e^2 * 3/36) = 0.4798; balanced
  # table value at tau = 1, C = 10.
  assert abs(math.log(1 + E**2 * 3 / 36) - 0.4798) < 1e-4
  assert abs(math.log(1 + E**2 / 9) - 0.599389) < 1e-6


@pytest.mark.parametrize("seed", [0, 1])
def test_supcon_jensen_and_reductions(seed):
  rng = np.random.default_rng(seed)
  # K = 1 with a singleton class (label 3): that anchor has no positive.
  labels = np.array([0, 0, 1, 1, 1, 2, 2, 3])
  k = 1 if seed == 0 else 2
  z = rng.normal(size=(len(labels), k, 4))
  total = len(labels) * k
  for w in (1.0, 0.1, 0.0, 100.0):
    out, v_out = nl.supcon(z, labels, 0.1, "out", same_class_weight=w)
    inn, v_in = nl.supcon(z, labels, 0.1, "in", same_class_weight=w)
    assert v_out == v_in
    assert out >= inn - 1e-12  # Jensen
    for variant in ("out", "in"):
      mean, v = nl.supcon(z, labels, 0.1, variant, "mean", w)
      summ, v2 = nl.supcon(z, labels, 0.1, variant, "sum", w)
      batch, v3 = nl.supcon(z, labels, 0.1, variant, "batch", w)
      assert v == v2 == v3
      np.testing.assert_allclose(summ, mean * v, rtol=1e-12)
      np.testing.assert_allclose(batch, summ / total, rtol=1e-12)
  expected_valid = total - 1 if k == 1 else total
  assert nl.supcon(z, labels, 0.1)[1] == expected_valid


def test_cross_identities():
  """Known reductions between losses (different code paths)."""
  rng = np.random.default_rng(3)
  n, k, tau = 5, 3, 0.4
  z = rng.normal(size=(n, k, 4))
  ids = np.arange(n)
  # Each sample its own class: NSCL == DCL, SupCon(w=1) == NT-Xent,
  # SupCon out with w = 0 == DCL.
  np.testing.assert_allclose(nl.nscl(z, ids, tau)[0], nl.dcl(z, tau)[0],
                             rtol=1e-12)
  np.testing.assert_allclose(nl.supcon(z, ids, tau)[0], nl.ntxent(z, tau)[0],
                             rtol=1e-12)
  np.testing.assert_allclose(
      nl.supcon(z, ids, tau, same_class_weight=0.0)[0], nl.dcl(z, tau)[0],
      rtol=1e-12)
  # Double counting adds mass: CL >= NT-Xent.
  assert nl.cl_double_counted(z, tau)[0] > nl.ntxent(z, tau)[0]


def test_dcl_single_sample_invalid():
  z = np.random.default_rng(0).normal(size=(1, 3, 2))
  assert nl.dcl(z, 1.0) == (0.0, 0)
  assert nl.dcl(z, 1.0, include_self_pairs=True) == (0.0, 0)
