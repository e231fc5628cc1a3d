"""cljax.losses against plain-NumPy loops (tests/naive_losses.py), closed forms
at a simplex ETF, finite differences, and bad-input errors."""

import functools

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from cljax import losses
from cljax import theory
from tests import naive_losses as naive

RTOL = 2e-5
ATOL = 2e-5

# N = 7 samples, unbalanced, two one-member classes (2 and 3).
LABELS = np.array([0, 0, 0, 1, 1, 2, 3], np.int32)


def _z(k, n=7, d=5, seed=0, scale=1.0):
  rng = np.random.default_rng(seed + 10 * k)
  return (scale * rng.normal(size=(n, k, d))).astype(np.float32)


def _close(actual, expected, rtol=RTOL, atol=ATOL):
  np.testing.assert_allclose(np.asarray(actual, np.float64), expected,
                             rtol=rtol, atol=atol)


# One jitted wrapper per loss so the variants share compilations.
def _jit(fn, **static):
  return jax.jit(functools.partial(fn, **static))


@pytest.mark.parametrize("k", [2, 4])
@pytest.mark.parametrize("normalize", ["sphere", "ball", "none"])
def test_ntxent_matches_naive(k, normalize):
  z = _z(k, scale=0.7)
  want, nvalid = naive.ntxent(z, 0.5, normalize=normalize)
  got, counts = losses.ntxent(z, temperature=0.5, normalize=normalize,
                              return_counts=True)
  _close(got, want)
  assert int(counts.num_valid) == nvalid == 7 * k
  _close(_jit(losses.ntxent, temperature=0.5, normalize=normalize)(z), want)


@pytest.mark.parametrize("k", [2, 3])
def test_double_counted_cl_matches_naive(k):
  z = _z(k)
  want, _ = naive.cl_double_counted(z, 0.5)
  _close(losses.ntxent(z, temperature=0.5, double_count_positive=True), want)


def test_ntxent_matches_optax_two_views():
  z = _z(2)
  # optax wants [2N, D] rows with a shared label per positive pair and
  # normalises internally (cosine similarity).
  flat = z.reshape(14, 5)
  pair_labels = np.repeat(np.arange(7), 2)
  want = optax.losses.ntxent(jnp.asarray(flat), jnp.asarray(pair_labels), 0.3)
  _close(losses.ntxent(z, temperature=0.3), float(want))


@pytest.mark.parametrize("k,self_pairs", [(2, False), (4, False), (4, True),
                                          (1, True)])
def test_dcl_matches_naive(k, self_pairs):
  z = _z(k)
  want, nvalid = naive.dcl(z, 0.7, include_self_pairs=self_pairs)
  got, counts = losses.dcl(z, temperature=0.7, include_self_pairs=self_pairs,
                           return_counts=True)
  _close(got, want)
  assert int(counts.num_valid) == nvalid


@pytest.mark.parametrize("k,self_pairs,pos_in_den", [
    (2, False, False), (2, False, True), (4, False, False), (4, True, True),
    (4, True, False), (1, True, False)])
def test_nscl_matches_naive(k, self_pairs, pos_in_den):
  z = _z(k, scale=2.0)
  want, nvalid = naive.nscl(z, LABELS, 0.4, positive_in_denominator=pos_in_den,
                            include_self_pairs=self_pairs)
  got, counts = losses.nscl(z, LABELS, temperature=0.4,
                            positive_in_denominator=pos_in_den,
                            include_self_pairs=self_pairs, return_counts=True)
  _close(got, want)
  assert int(counts.num_valid) == nvalid


def test_nscl_anchors_without_negatives_are_excluded_and_counted():
  z = _z(2, n=5)
  labels = np.array([0, 0, 0, 0, 1], np.int32)   # class 0 has negatives only
  got, counts = losses.nscl(z, labels, return_counts=True)
  want, nvalid = naive.nscl(z, labels, 1.0)
  _close(got, want)
  assert int(counts.num_valid) == nvalid == 10
  one_class = np.zeros(5, np.int32)
  value, counts = losses.nscl(z, one_class, return_counts=True)
  grad = jax.grad(lambda x: losses.nscl(x, one_class))(z)
  assert int(counts.num_valid) == 0 and int(counts.num_anchors) == 10
  assert float(value) == 0.0 and np.all(np.asarray(grad) == 0)


@pytest.mark.parametrize("k", [1, 2, 4])
@pytest.mark.parametrize("variant", ["out", "in"])
@pytest.mark.parametrize("reduction", ["mean", "sum", "batch"])
def test_supcon_matches_naive(k, variant, reduction):
  z = _z(k, scale=1.3)
  want, nvalid = naive.supcon(z, LABELS, 0.1, variant=variant,
                              reduction=reduction)
  got, counts = losses.supcon(z, LABELS, temperature=0.1, variant=variant,
                              reduction=reduction, return_counts=True)
  _close(got, want)
  assert int(counts.num_valid) == nvalid


@pytest.mark.parametrize("weight", [0.0, 0.1, 100.0])
def test_supcon_same_class_weight(weight):
  z = _z(2)
  want, nvalid = naive.supcon(z, LABELS, 0.5, same_class_weight=weight)
  got, counts = losses.supcon(z, LABELS, temperature=0.5,
                              same_class_weight=weight, return_counts=True)
  _close(got, want)
  assert int(counts.num_valid) == nvalid


def test_supcon_reduction_none_shape_and_values():
  z = _z(2)
  per = losses.supcon(z, LABELS, reduction="none")
  assert per.shape == (7, 2)
  total = losses.supcon(z, LABELS, reduction="sum")
  _close(jnp.sum(per), float(total), rtol=1e-6)


@pytest.mark.parametrize("negatives", ["different_class", "all"])
@pytest.mark.parametrize("beta", [0.0, 2.0, 10.0])
@pytest.mark.parametrize("k,self_pos", [(1, True), (2, True), (2, False)])
def test_hard_contrastive_expectation_matches_naive(negatives, beta, k,
                                                    self_pos):
  z = _z(k, scale=0.6)
  want, nvalid = naive.hard_contrastive(
      z, LABELS, beta=beta, negatives=negatives, temperature=1.0,
      normalize="ball", include_self_positive=self_pos)
  got, counts = losses.hard_contrastive(
      z, LABELS, beta=beta, negatives=negatives,
      include_self_positive=self_pos, return_counts=True)
  _close(got, want)
  assert int(counts.num_valid) == nvalid


@pytest.mark.parametrize("negatives", ["different_class", "all"])
def test_hard_contrastive_unnormalized_generic_path(negatives):
  # normalize="none" has no static logit bound: the engine's general path.
  z = _z(2, scale=0.4)
  want, nvalid = naive.hard_contrastive(z, LABELS, beta=3.0,
                                        negatives=negatives, normalize="none")
  got, counts = losses.hard_contrastive(z, LABELS, beta=3.0,
                                        negatives=negatives, normalize="none",
                                        return_counts=True)
  _close(got, want)
  assert int(counts.num_valid) == nvalid
  grad = jax.grad(lambda x: losses.hard_contrastive(
      x, LABELS, beta=3.0, negatives=negatives, normalize="none"))(z)
  assert np.all(np.isfinite(np.asarray(grad)))


@pytest.mark.parametrize("negatives", ["different_class", "all"])
@pytest.mark.parametrize("beta", [0.0, 2.0, 10.0])
@pytest.mark.parametrize("k,self_pos", [(1, True), (2, False)])
def test_hard_contrastive_outside_matches_naive(negatives, beta, k, self_pos):
  z = _z(k, scale=0.6)
  kw = dict(beta=beta, negatives=negatives, include_self_positive=self_pos)
  want, nvalid = naive.hard_contrastive_outside(z, LABELS, **kw)
  got, counts = losses.hard_contrastive(
      z, LABELS, estimator="expectation_outside", return_counts=True, **kw)
  _close(got, want)
  assert int(counts.num_valid) == nvalid
  # Jensen: E_q log(1 + e^t) <= log(1 + E_q e^t).
  inside = losses.hard_contrastive(z, LABELS, **kw)
  assert float(got) <= float(inside) + 1e-6


def test_hard_contrastive_outside_gradient_matches_naive_differences():
  z = _z(2, scale=0.6).astype(np.float64)
  kw = dict(beta=3.0, negatives="all", normalize="none")
  grad = jax.grad(lambda x: losses.hard_contrastive(
      x, LABELS, estimator="expectation_outside", **kw))(
          jnp.asarray(z, jnp.float32))
  # Central differences of the NumPy loops; the tilt weights are detached,
  # so they are held at z while the logits move.
  eps = 1e-5
  want = np.zeros_like(z)
  for idx in np.ndindex(z.shape):
    step = np.zeros_like(z)
    step[idx] = eps
    want[idx] = (_outside_fixed_tilt(z + step, z, **kw) -
                 _outside_fixed_tilt(z - step, z, **kw)) / (2 * eps)
  np.testing.assert_allclose(np.asarray(grad), want, rtol=2e-3, atol=2e-5)


def _outside_fixed_tilt(z, z_tilt, beta, negatives, normalize):
  """naive.hard_contrastive_outside with q_a(b) from the logits of z_tilt."""
  s, n, k, vlab = naive._hard_setup(z, LABELS, negatives, 1.0, normalize)
  s_tilt = naive._hard_setup(z_tilt, LABELS, negatives, 1.0, normalize)[0]
  pairs = []
  for a in range(n * k):
    positives, pool = naive._hard_sets(a, n, k, vlab, True, negatives, True)
    w = np.exp(beta * s_tilt[a, pool] - np.max(beta * s_tilt[a, pool]))
    q = w / np.sum(w)
    for p in positives:
      pairs.append(np.sum(q * np.logaddexp(0.0, s[a, pool] - s[a, p])))
  return float(np.mean(pairs))


def test_hard_contrastive_outside_equals_inside_on_one_negative():
  # Anchors 0, 1 have the single negative 2: the expectation is one term,
  # so outside and inside the log agree (closed form log(1 + e^{s_a2 - s_ap})).
  z = _z(1, n=3, scale=0.8)
  y = np.array([0, 0, 1], np.int32)
  kw = dict(beta=2.0, reduction="none")
  outside = losses.hard_contrastive(z, y, estimator="expectation_outside",
                                    **kw)
  inside = losses.hard_contrastive(z, y, **kw)
  _close(outside[:2], inside[:2])
  x = np.asarray(z)[:, 0]
  x = x / np.maximum(1.0, np.linalg.norm(x, axis=-1, keepdims=True))
  s = x @ x.T
  want = [sum(np.logaddexp(0.0, s[a, 2] - s[a, p]) for p in (0, 1))
          for a in (0, 1)]
  _close(outside[:2, 0], want)


def test_hard_contrastive_outside_cannot_be_tiled():
  with pytest.raises(ValueError, match="expectation_outside.*cannot be tiled"):
    losses.hard_contrastive(_z(2), LABELS, estimator="expectation_outside",
                            block_size=4)


def test_hard_contrastive_without_labels_uses_sample_positives():
  z = _z(2, scale=0.6)
  want, _ = naive.hard_contrastive(z, None, beta=1.0, negatives="all",
                                   include_self_positive=False)
  got = losses.hard_contrastive(z, None, beta=1.0, negatives="all",
                                include_self_positive=False)
  _close(got, want)


def _sampled_indices(z, labels, beta, negatives, m, key):
  """The negatives the sampled estimator draws (through its private helper)."""
  from cljax._src import engine as sim
  from cljax.losses import hard
  views = sim.prepare(z, labels, normalize_mode="ball", axis_name=None)
  s = sim.logits(views, 1.0)
  pool = "diff_label" if negatives == "different_class" else "all"
  idx, _ = hard._sample_negatives(s, views, pool, beta, m, key)
  return np.asarray(idx)


@pytest.mark.parametrize("negatives", ["different_class", "all"])
def test_hard_contrastive_sampled_given_its_draws_matches_naive(negatives):
  z = _z(2, scale=0.8)
  key = jax.random.key(3)
  idx = _sampled_indices(z, LABELS, 3.0, negatives, 16, key)
  want, _ = naive.hard_contrastive_sampled_given_indices(
      z, LABELS, idx, negatives=negatives)
  got = losses.hard_contrastive(z, LABELS, beta=3.0, negatives=negatives,
                                estimator="sampled", num_negatives=16,
                                key=key)
  _close(got, want)


def test_sampled_negatives_follow_the_tilted_distribution():
  z = _z(1, n=6, scale=0.9)
  labels = np.array([0, 0, 1, 1, 2, 2], np.int32)
  beta, m = 4.0, 40000
  idx = _sampled_indices(z, labels, beta, "different_class", m,
                         jax.random.key(0))
  zn = naive.normalize_views(z, "ball").reshape(6, -1)
  s = zn @ zn.T
  for a in range(6):
    pool = labels != labels[a]
    q = np.where(pool, np.exp(beta * s[a]), 0.0)
    q /= q.sum()
    freq = np.bincount(idx[a], minlength=6) / m
    assert np.all(freq[~pool] == 0)
    # 5 standard errors of a binomial frequency.
    np.testing.assert_allclose(freq, q, atol=5 * np.sqrt(0.25 / m))


def test_sampled_estimator_converges_to_expectation():
  z = _z(2, scale=0.8)
  exact = losses.hard_contrastive(z, LABELS, beta=2.0)
  sampled = losses.hard_contrastive(z, LABELS, beta=2.0, estimator="sampled",
                                    num_negatives=20000,
                                    key=jax.random.key(1))
  _close(sampled, float(exact), rtol=5e-3, atol=5e-3)


@pytest.mark.parametrize("beta,tau_plus", [(0.0, 0.0), (1.0, 0.1),
                                           (5.0, 0.3)])
def test_debiased_matches_naive(beta, tau_plus):
  z = _z(2)
  want, _ = naive.debiased_contrastive(z, beta=beta, tau_plus=tau_plus,
                                       temperature=0.5)
  got = losses.hard_contrastive(z, estimator="debiased", beta=beta,
                                tau_plus=tau_plus, temperature=0.5,
                                normalize="sphere", negatives="all")
  _close(got, want)


def test_cross_entropy_matches_naive():
  rng = np.random.default_rng(0)
  logits = rng.normal(size=(9, 4)).astype(np.float32)
  labels = np.array([0, 1, 2, 3, 0, 1, 2, 3, 3], np.int32)
  want = naive.cross_entropy(logits, labels)
  want = want[0] if isinstance(want, tuple) else want
  _close(losses.cross_entropy(logits, labels), want)


def test_all_losses_equal_individual_losses():
  z = _z(2, n=9, scale=1.1)
  labels = np.array([0, 0, 0, 1, 1, 1, 2, 2, 3], np.int32)
  tau, beta = 0.5, 3.0
  out = jax.jit(functools.partial(losses.all_losses, temperature=tau,
                                  beta=beta))(z, labels)
  sphere = dict(temperature=tau, normalize="sphere")
  want = {
      "ntxent": losses.ntxent(z, **sphere),
      "cl_code": losses.ntxent(z, double_count_positive=True, **sphere),
      "dcl": losses.dcl(z, **sphere),
      "nscl": losses.nscl(z, labels, **sphere),
      "nscl_code": losses.nscl(z, labels, positive_in_denominator=True,
                               **sphere),
      "supcon_out": losses.supcon(z, labels, **sphere),
      "supcon_in": losses.supcon(z, labels, variant="in", **sphere),
      "scl": losses.hard_contrastive(z, labels, **sphere),
      "ucl": losses.hard_contrastive(z, labels, negatives="all", **sphere),
      "hscl": losses.hard_contrastive(z, labels, beta=beta, **sphere),
      "hucl": losses.hard_contrastive(z, labels, beta=beta, negatives="all",
                                      **sphere),
  }
  for name, value in want.items():
    _close(out[name], float(value), rtol=1e-5, atol=1e-5)
  _close(out["gap"], float(want["dcl"] - want["nscl"]), rtol=1e-5, atol=1e-5)
  counts = np.bincount(labels)
  _close(out["gap_bound"], theory.batch_gap_bound(counts, temperature=tau),
         rtol=1e-5, atol=1e-5)
  assert 0.0 <= float(out["gap"]) <= float(out["gap_bound"])
  assert int(out["nscl_valid"]) == 18


# --- closed forms at the collapsed simplex ETF ---------------------------


def _collapsed_etf(c, n, k, d, radius=1.0):
  means = np.asarray(theory.simplex_etf(c, d, radius=radius), np.float64)
  labels = np.repeat(np.arange(c), n).astype(np.int32)
  z = np.repeat(means[labels][:, None, :], k, axis=1)
  return z.astype(np.float32), labels


@pytest.mark.parametrize("c,n,k,tau", [(4, 3, 3, 0.2), (10, 2, 2, 1.0),
                                       (3, 5, 4, 0.5)])
def test_p1_losses_at_etf_equal_closed_forms(c, n, k, tau):
  z, labels = _collapsed_etf(c, n, k, d=c + 1)
  rtol = 1e-5
  _close(losses.nscl(z, labels, temperature=tau),
         theory.nscl_at_etf(c, n, k, temperature=tau), rtol=rtol)
  _close(losses.nscl(z, labels, temperature=tau, include_self_pairs=True),
         theory.nscl_at_etf(c, n, k, temperature=tau), rtol=rtol)
  _close(losses.nscl(z, labels, temperature=tau,
                     positive_in_denominator=True),
         theory.nscl_at_etf(c, n, k, temperature=tau,
                            positive_in_denominator=True), rtol=rtol)
  _close(losses.dcl(z, temperature=tau),
         theory.dcl_at_etf(c, n, k, temperature=tau), rtol=rtol)
  _close(losses.ntxent(z, temperature=tau),
         theory.ntxent_at_etf(c, n, k, temperature=tau), rtol=rtol)
  for variant in ("out", "in"):
    _close(losses.supcon(z, labels, temperature=tau, variant=variant),
           theory.supcon_at_etf(c, n, k, temperature=tau), rtol=rtol)


def test_paper_nscl_is_negative_at_its_optimum():
  # docs/conventions.md#dcl-nscl-paper: -3.37 for C=4, n=3, K=3, tau=0.2.
  z, labels = _collapsed_etf(4, 3, 3, d=3)
  value = float(losses.nscl(z, labels, temperature=0.2))
  assert value == pytest.approx(np.log(3 * 9) - 4 / (3 * 0.2), rel=1e-5)
  assert round(value, 2) == -3.37


@pytest.mark.parametrize("beta", [0.0, 2.0, 30.0])
def test_p3_losses_at_neural_collapse(beta):
  c, n = 5, 4
  z, labels = _collapsed_etf(c, n, 1, d=c - 1)
  _close(losses.hard_contrastive(z, labels, beta=beta),
         theory.scl_at_etf(c), rtol=1e-5)
  _close(losses.hard_contrastive(z, labels, beta=beta, negatives="all"),
         theory.ucl_at_etf(c, n, c * n, beta=beta), rtol=1e-5)


def test_cross_entropy_at_simplex():
  c, rho, r_w = 6, 2.0, 1.5
  w = np.asarray(losses.simplex_classifier(c, 8, radius=r_w))
  feats = np.asarray(theory.simplex_etf(c, 8, radius=rho))
  labels = np.arange(c, dtype=np.int32)
  _close(losses.cross_entropy(feats @ w.T, labels),
         theory.cross_entropy_at_simplex(c, feature_radius=rho,
                                         weight_radius=r_w), rtol=1e-5)


# --- inequalities of the theory on random features ------------------------


def test_gap_lies_within_theorem_1_bound_on_random_features():
  rng = np.random.default_rng(7)
  for trial in range(12):
    c = int(rng.integers(2, 7))
    counts = rng.integers(1, 5, size=c)
    labels = np.repeat(np.arange(c), counts).astype(np.int32)
    k = int(rng.integers(2, 4))
    tau = float(rng.choice([0.3, 0.5, 1.0, 2.0]))
    z = rng.normal(size=(labels.size, k, 6)).astype(np.float32)
    gap = float(losses.dcl(z, temperature=tau) -
                losses.nscl(z, labels, temperature=tau))
    bound = theory.gap_bound_from_counts(counts, temperature=tau)
    assert -1e-5 <= gap <= bound + 1e-5, (trial, gap, bound)


def test_hard_negatives_never_lower_the_loss():
  rng = np.random.default_rng(3)
  labels = np.array([0, 0, 1, 1, 1, 2, 2, 3], np.int32)
  for trial in range(5):
    z = rng.normal(size=(8, 2, 4)).astype(np.float32)
    for negatives in ("different_class", "all"):
      base = float(losses.hard_contrastive(z, labels, negatives=negatives))
      for beta in (0.5, 2.0, 8.0):
        hard = float(losses.hard_contrastive(z, labels, beta=beta,
                                             negatives=negatives))
        assert hard >= base - 1e-6, (trial, negatives, beta)


def test_supcon_out_upper_bounds_in():
  z = _z(2, n=9, scale=2.0)
  labels = np.array([0, 0, 0, 1, 1, 1, 2, 2, 3], np.int32)
  assert float(losses.supcon(z, labels)) >= float(
      losses.supcon(z, labels, variant="in")) - 1e-6


# --- gradients ------------------------------------------------------------


def _numerical_grad(f, x, eps=1e-6):
  x = np.asarray(x, np.float64)
  g = np.zeros_like(x)
  for idx in np.ndindex(x.shape):
    xp, xm = x.copy(), x.copy()
    xp[idx] += eps
    xm[idx] -= eps
    g[idx] = (f(xp) - f(xm)) / (2 * eps)
  return g


@pytest.mark.parametrize("name", ["ntxent", "nscl", "supcon", "hscl",
                                  "debiased", "cross_entropy"])
def test_gradient_matches_finite_differences_of_naive(name):
  z = _z(2, n=5, d=3, scale=0.8)
  labels = np.array([0, 0, 1, 1, 2], np.int32)
  cases = {
      "ntxent": (lambda x: losses.ntxent(x, temperature=0.5),
                 lambda x: naive.ntxent(x, 0.5)[0]),
      "nscl": (lambda x: losses.nscl(x, labels, temperature=0.5),
               lambda x: naive.nscl(x, labels, 0.5)[0]),
      "supcon": (lambda x: losses.supcon(x, labels, variant="in"),
                 lambda x: naive.supcon(x, labels, 0.1, variant="in")[0]),
      "hscl": (lambda x: losses.hard_contrastive(x, labels, beta=2.0),
               None),
      "debiased": (lambda x: losses.hard_contrastive(
          x, estimator="debiased", beta=1.0, temperature=0.5,
          normalize="sphere", negatives="all"),
                   lambda x: naive.debiased_contrastive(x, 1.0, 0.1, 0.5)[0]),
      "cross_entropy": (lambda x: losses.cross_entropy(x.reshape(5, 6),
                                                       labels),
                        lambda x: _ce(x.reshape(5, 6), labels)),
  }
  f_jax, f_naive = cases[name]
  got = np.asarray(jax.grad(f_jax)(z), np.float64)
  if f_naive is None:
    # HSCL's tilt weights are under stop_gradient: the reference gradient
    # holds q fixed at its current value (finite differences of the pair
    # loss with q frozen).
    f_naive = _hscl_frozen_q(z, labels, beta=2.0)
  want = _numerical_grad(f_naive, z)
  np.testing.assert_allclose(got, want, rtol=1e-3, atol=1e-4)


def _ce(logits, labels):
  out = naive.cross_entropy(logits, labels)
  return out[0] if isinstance(out, tuple) else out


def _hscl_frozen_q(z0, labels, beta):
  """The HSCL loss as a function of z with the tilt weights fixed at z0."""
  zn0 = naive.normalize_views(z0, "ball").reshape(len(labels) * 2, -1)
  vlab = np.repeat(labels, 2)
  s0 = zn0 @ zn0.T
  q = np.where(vlab[:, None] != vlab[None, :], np.exp(beta * s0), 0.0)
  q /= q.sum(axis=1, keepdims=True)

  def f(z):
    zn = naive.normalize_views(z, "ball").reshape(len(labels) * 2, -1)
    s = zn @ zn.T
    total, pairs = 0.0, 0
    for a in range(s.shape[0]):
      e = float(np.sum(q[a] * np.exp(s[a])))
      for p in np.flatnonzero(vlab == vlab[a]):
        total += np.log1p(e / np.exp(s[a, p]))
        pairs += 1
    return total / pairs
  return f


# --- dtypes, jit, errors -------------------------------------------------


class LossVariantsTest(chex.TestCase):

  @chex.variants(with_jit=True, without_jit=True)
  def test_bfloat16_is_finite_and_close_to_float32(self):
    z = _z(2, n=8, d=16)
    labels = np.array([0, 0, 1, 1, 2, 2, 3, 3], np.int32)
    f = self.variant(lambda x: losses.all_losses(x, labels, temperature=0.5,
                                                 beta=1.0))
    full = f(jnp.asarray(z))
    half = f(jnp.asarray(z, jnp.bfloat16))
    for name in full:
      self.assertTrue(np.isfinite(float(half[name])), name)
      self.assertEqual(half[name].dtype, full[name].dtype)
      np.testing.assert_allclose(float(half[name]), float(full[name]),
                                 rtol=3e-2, atol=3e-2, err_msg=name)

  @chex.variants(with_jit=True, without_jit=True)
  def test_zero_vector_is_finite(self):
    z = _z(2)
    z[0, 0] = 0.0
    g = self.variant(jax.grad(lambda x: losses.nscl(x, LABELS)))(z)
    self.assertTrue(np.all(np.isfinite(np.asarray(g))))

  @chex.variants(with_jit=True, without_jit=True)
  def test_small_temperature_is_finite(self):
    z = _z(2)
    f = self.variant(jax.value_and_grad(
        lambda x: losses.supcon(x, LABELS, temperature=0.005)))
    value, grad = f(z)
    self.assertTrue(np.isfinite(float(value)))
    self.assertTrue(np.all(np.isfinite(np.asarray(grad))))


@pytest.mark.parametrize("call,match", [
    (lambda: losses.ntxent(np.ones((4, 8), np.float32), temperature=0.5),
     r"`z` must have rank 3"),
    (lambda: losses.ntxent(np.ones((4, 1, 8), np.float32), temperature=0.5),
     r"K >= 2"),
    (lambda: losses.dcl(np.ones((4, 1, 8), np.float32)), r"K >= 2"),
    (lambda: losses.ntxent(np.ones((4, 2, 8), np.float32), temperature=0.0),
     r"`temperature` must be finite and > 0"),
    (lambda: losses.ntxent(np.ones((4, 2, 8), np.int32), temperature=1.0),
     r"floating-point"),
    (lambda: losses.nscl(np.ones((4, 2, 8), np.float32), np.zeros(3, np.int32)),
     r"`labels` must be an integer vector of shape \[4\]"),
    (lambda: losses.nscl(np.ones((4, 2, 8), np.float32),
                         np.zeros(4, np.float32)), r"integer dtype"),
    (lambda: losses.supcon(np.ones((4, 2, 8), np.float32),
                           np.zeros(4, np.int32), variant="mid"),
     r"`variant` must be one of"),
    (lambda: losses.supcon(np.ones((4, 2, 8), np.float32),
                           np.zeros(4, np.int32), normalize="unit"),
     r"`normalize` must be one of"),
    (lambda: losses.hard_contrastive(np.ones((4, 2, 8), np.float32),
                                     np.zeros(4, np.int32), beta=-1.0),
     r"`beta` must be finite and >= 0"),
    (lambda: losses.hard_contrastive(np.ones((4, 2, 8), np.float32)),
     r"needs `labels`"),
    (lambda: losses.hard_contrastive(np.ones((4, 2, 8), np.float32),
                                     np.zeros(4, np.int32),
                                     estimator="sampled"), r"needs a PRNG"),
    (lambda: losses.hard_contrastive(np.ones((4, 2, 8), np.float32),
                                     estimator="debiased", tau_plus=1.0),
     r"`tau_plus` must lie in \[0, 1\)"),
    (lambda: losses.cross_entropy(np.ones((3, 4), np.float32),
                                  np.array([0, 4, 1], np.int32)),
     r"`labels` must lie in \[0, 4\)"),
    (lambda: losses.supcon(np.ones((4, 2, 8), np.float32),
                           np.zeros(4, np.int32), reduction="avg"),
     r"`reduction` must be one of"),
    (lambda: losses.get("simclr"), r"Unknown loss 'simclr'"),
])
def test_bad_input_raises_clear_error(call, match):
  with pytest.raises(ValueError, match=match):
    call()


@pytest.mark.parametrize("name,negatives", [
    ("scl", "different_class"), ("hscl", "different_class"),
    ("ucl", "all"), ("hucl", "all")])
def test_registry_names_of_jiang_et_al(name, negatives):
  z = _z(2)
  got = losses.get(name)(z, LABELS, beta=2.0)
  want = losses.hard_contrastive(z, LABELS, beta=2.0, negatives=negatives)
  _close(got, float(want), rtol=1e-7, atol=0)
