"""Tests for cljax.probes against NumPy float64 loops written from definitions."""

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import AxisType
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from cljax import probes

# --------------------------------------------------------------------------
# Independent NumPy references (float64, written from the definitions).
# --------------------------------------------------------------------------


def np_centers(x, y, num_classes):
  x = np.asarray(x, np.float64)
  out = np.zeros((num_classes, x.shape[1]))
  for c in range(num_classes):
    rows = [x[i] for i in range(len(y)) if y[i] == c]
    if rows:
      out[c] = np.mean(rows, axis=0)
  return out


def np_ncc(x, centers, valid=None):
  x = np.asarray(x, np.float64)
  valid = np.ones(len(centers), bool) if valid is None else valid
  pred = []
  for z in x:
    best, best_d = -1, np.inf
    for c, mu in enumerate(centers):
      d = np.sqrt(np.sum((z - mu) ** 2))
      if valid[c] and d < best_d:
        best, best_d = c, d
    pred.append(best)
  return np.array(pred)


def np_mean_classifier(x, centers, valid=None, top_k=1):
  x = np.asarray(x, np.float64)
  valid = np.ones(len(centers), bool) if valid is None else valid
  pred = []
  for z in x:
    scores = [float(z @ mu) if valid[c] else -np.inf
              for c, mu in enumerate(centers)]
    pred.append(np.argsort(-np.array(scores), kind="stable")[:top_k])
  return np.array(pred)


def np_knn(xtr, ytr, xte, k, num_classes, metric):
  xtr = np.asarray(xtr, np.float64)
  pred = []
  for q in np.asarray(xte, np.float64):
    if metric == "cosine":
      dist = -(xtr @ q) / (np.linalg.norm(xtr, axis=1) * np.linalg.norm(q))
    else:
      dist = np.linalg.norm(xtr - q, axis=1)
    nbrs = np.argsort(dist, kind="stable")[:k]
    votes = np.bincount(ytr[nbrs], minlength=num_classes)
    winners = set(np.flatnonzero(votes == votes.max()))
    # Tie rule: the class of the nearest neighbour among the tied classes.
    pred.append(next(ytr[j] for j in nbrs if ytr[j] in winners))
  return np.array(pred)


def np_softmax(logits):
  e = np.exp(logits - logits.max(axis=1, keepdims=True))
  return e / e.sum(axis=1, keepdims=True)


# --------------------------------------------------------------------------
# Fixtures: small random data with unbalanced classes and a 1-member class.
# --------------------------------------------------------------------------

NUM_CLASSES = 5
TRAIN_COUNTS = (15, 1, 10, 6, 8)  # class 1 has a single member


@pytest.fixture(scope="module")
def data():
  rng = np.random.default_rng(0)
  ytr = rng.permutation(np.repeat(np.arange(NUM_CLASSES), TRAIN_COUNTS))
  means = rng.normal(size=(NUM_CLASSES, 4)) * 1.5
  xtr = (means[ytr] + rng.normal(size=(len(ytr), 4))).astype(np.float32)
  yte = rng.integers(0, NUM_CLASSES, size=30)
  xte = (means[yte] + rng.normal(size=(30, 4))).astype(np.float32)
  return xtr, ytr.astype(np.int32), xte, yte.astype(np.int32)


# --------------------------------------------------------------------------
# Class centres, NCC and the mean classifier.
# --------------------------------------------------------------------------


def test_class_centers_match_numpy_and_empty_class_is_zero(data):
  xtr, ytr, _, _ = data
  # Class 5 is empty.
  got = probes.class_centers(xtr, ytr, num_classes=NUM_CLASSES + 1)
  want = np_centers(xtr, ytr, NUM_CLASSES + 1)
  np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)
  np.testing.assert_array_equal(got[5], 0.0)
  np.testing.assert_array_equal(got[1], xtr[ytr == 1][0])  # 1-member class


def test_ncc_and_mean_classifier_match_numpy(data):
  xtr, ytr, xte, yte = data
  centers = np_centers(xtr, ytr, NUM_CLASSES)
  centers32 = centers.astype(np.float32)
  for x in (xtr, xte):
    np.testing.assert_array_equal(probes.ncc_predict(x, centers32),
                                  np_ncc(x, centers))
    np.testing.assert_array_equal(probes.mean_classifier_predict(x, centers32),
                                  np_mean_classifier(x, centers)[:, 0])
  np.testing.assert_allclose(
      probes.ncc_accuracy(xtr, ytr, xte, yte, num_classes=NUM_CLASSES),
      np.mean(np_ncc(xte, centers) == yte), rtol=1e-6)
  np.testing.assert_allclose(
      probes.mean_classifier_accuracy(xtr, ytr, xte, yte,
                                      num_classes=NUM_CLASSES),
      np.mean(np_mean_classifier(xte, centers)[:, 0] == yte), rtol=1e-6)
  top3 = np_mean_classifier(xte, centers, top_k=3)
  np.testing.assert_allclose(
      probes.mean_classifier_accuracy(xtr, ytr, xte, yte,
                                      num_classes=NUM_CLASSES,
                                      top_k=3),
      np.mean([yte[i] in top3[i] for i in range(len(yte))]), rtol=1e-6)
  # num_classes=None infers C from the concrete train labels.
  assert probes.ncc_accuracy(xtr, ytr, xte, yte) == probes.ncc_accuracy(
      xtr, ytr, xte, yte, num_classes=NUM_CLASSES)


def test_ncc_top_k_and_accuracy_helper(data):
  xtr, ytr, xte, yte = data
  centers = np_centers(xtr, ytr, NUM_CLASSES)
  dist = np.linalg.norm(xte[:, None, :] - centers[None], axis=-1)
  top2 = np.argsort(dist, axis=1, kind="stable")[:, :2]
  np.testing.assert_allclose(
      probes.ncc_accuracy(xtr, ytr, xte, yte, num_classes=NUM_CLASSES, top_k=2),
      np.mean([yte[i] in top2[i] for i in range(len(yte))]), rtol=1e-6)
  assert probes.ncc_accuracy(xtr, ytr, xte, yte, num_classes=NUM_CLASSES,
                             top_k=NUM_CLASSES) == 1.0
  assert probes.accuracy(jnp.array([[0, 1], [2, 0]]),
                         jnp.array([1, 1])) == 0.5


def test_hand_made_2d_points():
  centers = np.array([[0., 0.], [4., 0.], [0., 4.]], np.float32)
  z = np.array([[0.5, 0.2], [3.9, -1.], [-0.3, 5.], [2.1, 0.]], np.float32)
  np.testing.assert_array_equal(probes.ncc_predict(z, centers), [0, 1, 2, 1])
  # <z, mu_0> = 0 for every z: the origin centre wins only when the other
  # scores are <= 0. For -z: scores (0, -2, -.8), (0, -15.6, 4), (0, 1.2, -20)
  # and (0, -8.4, 0) -- an exact tie, which goes to the lowest id.
  np.testing.assert_array_equal(
      probes.mean_classifier_predict(z, centers), [1, 1, 2, 1])
  np.testing.assert_array_equal(
      probes.mean_classifier_predict(-z, centers), [0, 2, 1, 0])
  # Translation changes the mean classifier but not NCC.
  np.testing.assert_array_equal(
      probes.ncc_predict(z + 100.0, centers + 100.0), [0, 1, 2, 1])
  # class_mask removes a class from the candidates.
  np.testing.assert_array_equal(
      probes.ncc_predict(z, centers, jnp.array([True, False, True])),
      [0, 0, 2, 0])


def test_ncc_and_mean_classifier_are_different_rules():
  # Centres of different norms: z is closer to mu_0 but aligns more with mu_1.
  centers = np.array([[1., 0.], [0., 3.]], np.float32)
  z = np.array([[1., 1.]], np.float32)  # |z-mu_0| = 1 < |z-mu_1| = sqrt(5)
  assert probes.ncc_predict(z, centers).tolist() == [0]
  assert probes.mean_classifier_predict(z, centers).tolist() == [1]  # 1 < 3
  # With equal-norm centres the two rules coincide.
  rng = np.random.default_rng(1)
  unit = rng.normal(size=(6, 3))
  unit /= np.linalg.norm(unit, axis=1, keepdims=True)
  pts = rng.normal(size=(50, 3)).astype(np.float32)
  np.testing.assert_array_equal(
      probes.ncc_predict(pts, unit.astype(np.float32)),
      probes.mean_classifier_predict(pts, unit.astype(np.float32)))


def test_class_absent_from_train_is_never_predicted():
  xtr = np.array([[0., 0.], [0., 1.], [10., 0.]], np.float32)
  ytr = np.array([0, 0, 2], np.int32)  # class 1 has no training sample
  xte = np.array([[0., 0.]], np.float32)  # its zero centre would win NCC
  assert probes.ncc_accuracy(xtr, ytr, xte, np.array([0]), num_classes=3) == 1.0
  assert probes.mean_classifier_accuracy(
      xtr, ytr, -xte - 1.0, np.array([0]), num_classes=3) == 1.0
  # Even top-3 (all classes) cannot "hit" the class without a centre.
  assert probes.ncc_accuracy(xtr, ytr, xte, np.array([1]), num_classes=3,
                             top_k=3) == 0.0


def test_centre_classifiers_under_jit(data):
  xtr, ytr, xte, _ = data
  centers = jax.jit(probes.class_centers, static_argnames="num_classes")(
      xtr, ytr, num_classes=NUM_CLASSES)
  np.testing.assert_array_equal(jax.jit(probes.ncc_predict)(xte, centers),
                                probes.ncc_predict(xte, centers))
  np.testing.assert_array_equal(
      jax.jit(probes.mean_classifier_predict)(xte, centers),
      probes.mean_classifier_predict(xte, centers))


def test_mean_classifier_loss_matches_numpy(data):
  xtr, ytr, _, _ = data
  centers = np_centers(xtr, ytr, NUM_CLASSES)
  logits = xtr.astype(np.float64) @ centers.T
  p = np_softmax(logits)
  want = -np.mean(np.log(p[np.arange(len(ytr)), ytr]))
  np.testing.assert_allclose(
      probes.mean_classifier_loss(xtr, ytr, centers.astype(np.float32)),
      want, rtol=1e-5)


# --------------------------------------------------------------------------
# kNN.
# --------------------------------------------------------------------------


@pytest.mark.parametrize("metric", ["cosine", "euclidean"])
def test_knn_matches_numpy(data, metric):
  xtr, ytr, xte, yte = data
  for k in (1, 4):
    want = np_knn(xtr, ytr, xte, k, NUM_CLASSES, metric)
    # chunk_size 7 does not divide 30: exercises the padded last chunk.
    got = probes.knn_predict(xtr, ytr, xte, k=k, num_classes=NUM_CLASSES,
                             metric=metric, chunk_size=7)
    np.testing.assert_array_equal(got, want)
    np.testing.assert_allclose(
        probes.knn_accuracy(xtr, ytr, xte, yte, k=k, num_classes=NUM_CLASSES,
                            metric=metric, chunk_size=7),
        np.mean(want == yte), rtol=1e-6)


def test_knn_hand_made_votes_and_tie_rule():
  # Training points on a line; the query sits at 0.
  xtr = np.array([[1.], [-2.], [3.], [-4.], [5.], [-6.]], np.float32)
  ytr = np.array([1, 0, 0, 1, 2, 2], np.int32)
  q = np.zeros((1, 1), np.float32)
  knn = lambda k: probes.knn_predict(xtr, ytr, q, k=k, num_classes=3,
                                     metric="euclidean").tolist()
  assert knn(1) == [1]
  assert knn(2) == [1]  # 1-1 tie between classes 1 and 0: nearest is class 1
  assert knn(3) == [0]  # two votes for class 0 beat one for class 1
  assert knn(4) == [1]  # 2-2 tie; class 1's nearest member (1.) is closer
  assert knn(6) == [1]  # 2-2-2 tie; class 1 again has the nearest member
  # Cosine metric on hand-made 2-D directions.
  xtr2 = np.array([[1., 0.], [5., .2], [0., 1.], [0., 3.], [.1, 2.]],
                  np.float32)
  ytr2 = np.array([0, 0, 1, 1, 1], np.int32)
  q2 = np.array([[2., .1], [.1, 1.]], np.float32)
  assert probes.knn_predict(xtr2, ytr2, q2, k=3,
                            num_classes=2).tolist() == [0, 1]
  # The same queries in one chunk or in single-row chunks agree.
  assert probes.knn_predict(xtr2, ytr2, q2, k=3, num_classes=2,
                            chunk_size=1).tolist() == [0, 1]


# --------------------------------------------------------------------------
# Linear probe.
# --------------------------------------------------------------------------


def gaussian_mixture(seed, n_per_class, num_classes=3, dim=8, sep=4.0):
  rng = np.random.default_rng(seed)
  means = rng.normal(size=(num_classes, dim))
  means *= sep / np.linalg.norm(means, axis=1, keepdims=True)
  y = np.repeat(np.arange(num_classes), n_per_class)
  x = means[y] + 0.5 * rng.normal(size=(len(y), dim))
  return x.astype(np.float32), y.astype(np.int32)


@pytest.fixture(scope="module")
def mixture():
  x, y = gaussian_mixture(0, 100)  # 300 samples; 120 train, 180 test
  perm = np.random.default_rng(5).permutation(len(y))
  tr, te = perm[:120], perm[120:]
  return x[tr], y[tr], x[te], y[te]


def test_linear_probe_fits_separable_data_and_generalises(mixture):
  xtr, ytr, xte, yte = mixture
  # Separable.
  assert probes.ncc_accuracy(xtr, ytr, xtr, ytr, num_classes=3) == 1.0
  res = probes.linear_probe(xtr, ytr, xte, yte, num_classes=3,
                            key=jax.random.key(0), steps=200,
                            learning_rate=0.05, batch_size=32)
  assert res.weights.shape == (3, 8) and res.bias is None  # [C, D]
  assert res.train_accuracy == 1.0
  assert res.test_accuracy >= 0.98
  # Zero init: the first minibatch loss is exactly log(C); then it decreases.
  np.testing.assert_allclose(res.loss_history[0], math.log(3), rtol=1e-6)
  assert res.loss_history.shape == (200,)
  assert np.mean(res.loss_history[-20:]) < 0.1 * math.log(3)
  assert res.final_loss < 0.1 * math.log(3)
  # Same key -> identical run; predictions reproduce train accuracy.
  again = probes.linear_probe(xtr, ytr, xte, yte, num_classes=3,
                              key=jax.random.key(0), steps=200,
                              learning_rate=0.05, batch_size=32)
  np.testing.assert_array_equal(res.weights, again.weights)
  np.testing.assert_array_equal(
      probes.linear_probe_predict(xtr, res.weights), ytr)


def test_linear_probe_matches_numpy_full_batch_sgd(mixture):
  # Full-batch SGD with momentum, L2 decay and a bias, written out in NumPy.
  xtr, ytr, _, _ = mixture
  lr, mom, wd, steps = 0.3, 0.9, 0.01, 4
  res = probes.linear_probe(xtr, ytr, num_classes=3, key=jax.random.key(1),
                            steps=steps, learning_rate=lr,
                            batch_size=len(ytr), weight_decay=wd,
                            use_bias=True, optimizer="sgd", momentum=mom)
  x = xtr.astype(np.float64)
  onehot = np.eye(3)[ytr]
  w, b = np.zeros((8, 3)), np.zeros(3)
  vw, vb = np.zeros_like(w), np.zeros_like(b)
  losses = []
  for _ in range(steps):
    p = np_softmax(x @ w + b)
    losses.append(-np.mean(np.log(p[np.arange(len(ytr)), ytr])))
    gw = x.T @ (p - onehot) / len(ytr) + wd * w
    gb = np.mean(p - onehot, axis=0) + wd * b
    vw, vb = gw + mom * vw, gb + mom * vb
    w, b = w - lr * vw, b - lr * vb
  np.testing.assert_allclose(res.weights, w.T, rtol=1e-4, atol=1e-6)  # [C, D]
  np.testing.assert_allclose(res.bias, b, rtol=1e-4, atol=1e-6)
  np.testing.assert_allclose(res.loss_history, losses, rtol=1e-5)
  assert np.isnan(res.test_accuracy)


def test_linear_probe_epochs_count_minibatches(mixture):
  xtr, ytr, _, _ = mixture  # 120 samples, batch 50 -> 3 steps per epoch
  res = probes.linear_probe(xtr, ytr, num_classes=3, key=jax.random.key(2),
                            epochs=2, learning_rate=0.05, batch_size=50)
  assert res.loss_history.shape == (6,)
  assert np.all(np.isfinite(res.loss_history))


# --------------------------------------------------------------------------
# Few-shot episodes.
# --------------------------------------------------------------------------

FS_COUNTS = (12, 3, 9, 2, 7, 10, 1)  # classes 3 and 6 are too small for 2 shots
FS_SHOTS, FS_WAYS, FS_EPISODES = 2, 3, 8


@pytest.fixture(scope="module")
def fewshot_data():
  rng = np.random.default_rng(3)
  y = rng.permutation(np.repeat(np.arange(len(FS_COUNTS)), FS_COUNTS))
  means = rng.normal(size=(len(FS_COUNTS), 5))
  x = (means[y] + 0.8 * rng.normal(size=(len(y), 5))).astype(np.float32)
  yt = rng.integers(0, len(FS_COUNTS), size=25)
  xt = (means[yt] + 0.8 * rng.normal(size=(25, 5))).astype(np.float32)
  return x, y.astype(np.int32), xt, yt.astype(np.int32)


def run_fewshot(fewshot_data, seed, **kwargs):
  x, y, xt, yt = fewshot_data
  kwargs.setdefault("linear_probe_steps", 30)
  return probes.fewshot_episodes(
      x, y, shots=FS_SHOTS, ways=FS_WAYS, num_episodes=FS_EPISODES,
      key=jax.random.key(seed), test_features=xt, test_labels=yt, **kwargs)


@pytest.fixture(scope="module")
def episodes(fewshot_data):
  return run_fewshot(fewshot_data, 0)


def test_fewshot_episode_structure(fewshot_data, episodes):
  x, y, _, _ = fewshot_data
  res = episodes
  n_max = max(FS_COUNTS)
  assert res.classes.shape == (FS_EPISODES, FS_WAYS)
  assert res.support_indices.shape == (FS_EPISODES, FS_WAYS, FS_SHOTS)
  assert res.query_indices.shape == (FS_EPISODES, FS_WAYS, n_max - FS_SHOTS)
  assert res.query_mask.shape == res.query_indices.shape
  classes = np.asarray(res.classes)
  support = np.asarray(res.support_indices)
  query = np.asarray(res.query_indices)
  mask = np.asarray(res.query_mask)
  for e in range(FS_EPISODES):
    assert len(set(classes[e])) == FS_WAYS  # distinct classes
    for j, c in enumerate(classes[e]):
      assert FS_COUNTS[c] >= FS_SHOTS + 1  # eligible only
      s = support[e, j]
      assert len(set(s)) == FS_SHOTS and np.all(y[s] == c)
      qv = query[e, j][mask[e, j]]
      assert np.all(query[e, j][~mask[e, j]] == -1)
      assert np.all(y[qv] == c) and len(set(qv)) == len(qv)
      assert not set(s) & set(qv)  # disjoint
      # The queries are *all* the remaining samples of the class.
      assert sorted(set(s) | set(qv)) == sorted(np.flatnonzero(y == c))


def test_fewshot_ncc_accuracy_recomputed_with_numpy(fewshot_data, episodes):
  x, y, xt, yt = fewshot_data
  res = episodes
  for e in range(FS_EPISODES):
    classes = np.asarray(res.classes[e])
    centres = np.stack([x[s].astype(np.float64).mean(axis=0)
                        for s in np.asarray(res.support_indices[e])])
    q = np.asarray(res.query_indices[e])[np.asarray(res.query_mask[e])]
    true_local = np.array([list(classes).index(c) for c in y[q]])
    want = np.mean(np_ncc(x[q], centres) == true_local)
    np.testing.assert_allclose(res.ncc_accuracy[e], want, rtol=1e-6)
    in_ep = np.isin(yt, classes)
    test_local = np.array([list(classes).index(c) for c in yt[in_ep]])
    want_test = (np.mean(np_ncc(xt[in_ep], centres) == test_local)
                 if in_ep.any() else np.nan)
    np.testing.assert_allclose(res.test_ncc_accuracy[e], want_test,
                               rtol=1e-6)
  np.testing.assert_allclose(res.mean_ncc_accuracy,
                             np.mean(res.ncc_accuracy), rtol=1e-6)
  lp = np.asarray(res.linear_probe_accuracy)
  assert np.all((lp >= 0) & (lp <= 1))


def np_adam_linear_probe(x, y, num_classes, lr, steps):
  """Bias-free softmax probe from zeros, full-batch Adam, in float64.

  optax.adam's defaults (b1 0.9, b2 0.999, eps 1e-8, bias-corrected moments)
  written out; full batch because the few-shot support set (ways * shots)
  is below the minibatch cap, and a mean over the batch ignores its order.
  """
  x = np.asarray(x, np.float64)
  onehot = np.eye(num_classes)[y]
  w = np.zeros((x.shape[1], num_classes))
  m, v = np.zeros_like(w), np.zeros_like(w)
  for t in range(1, steps + 1):
    g = x.T @ (np_softmax(x @ w) - onehot) / len(y)
    m = 0.9 * m + 0.1 * g
    v = 0.999 * v + 0.001 * g * g
    w = w - lr * (m / (1 - 0.9**t)) / (np.sqrt(v / (1 - 0.999**t)) + 1e-8)
  return w


def test_fewshot_linear_probe_classifier_recomputed_with_numpy(fewshot_data):
  # The few-shot linear-probe accuracy beside NCC (P1 figure (e)): every
  # episode's probe refitted with NumPy Adam on its support set.
  x, y, xt, yt = fewshot_data
  lr, steps = 0.05, 40
  res = run_fewshot(fewshot_data, 4, classifier="linear_probe",
                    linear_probe_steps=steps, linear_probe_learning_rate=lr)
  for e in range(FS_EPISODES):
    classes = list(np.asarray(res.classes[e]))
    support = np.asarray(res.support_indices[e]).reshape(-1)
    w = np_adam_linear_probe(x[support],
                             np.repeat(np.arange(FS_WAYS), FS_SHOTS),
                             FS_WAYS, lr, steps)
    q = np.asarray(res.query_indices[e])[np.asarray(res.query_mask[e])]
    want = np.mean(np.argmax(x[q] @ w, 1) ==
                   np.array([classes.index(c) for c in y[q]]))
    np.testing.assert_allclose(res.linear_probe_accuracy[e], want, rtol=1e-6)
    in_ep = np.isin(yt, classes)
    want_test = (np.mean(np.argmax(xt[in_ep] @ w, 1) == np.array(
        [classes.index(c) for c in yt[in_ep]])) if in_ep.any() else np.nan)
    np.testing.assert_allclose(res.test_linear_probe_accuracy[e], want_test,
                               rtol=1e-6)
  np.testing.assert_allclose(res.mean_linear_probe_accuracy,
                             np.mean(res.linear_probe_accuracy), rtol=1e-6)


def test_fewshot_reproducible_and_fresh_per_episode(fewshot_data, episodes):
  again = run_fewshot(fewshot_data, 0)
  for a, b in zip(episodes[:-1], again[:-1]):
    np.testing.assert_array_equal(a, b)
  # Fresh subsets: the episodes do not all share one support set.
  support = np.asarray(episodes.support_indices).reshape(FS_EPISODES, -1)
  assert len({tuple(s) for s in support}) == FS_EPISODES
  other = run_fewshot(fewshot_data, 1)
  assert not np.array_equal(other.support_indices, episodes.support_indices)


def test_fewshot_queries_per_class_and_batching(fewshot_data):
  # queries_per_class=4 -> eligible classes need >= 6 samples: 0, 2, 4, 5.
  kwargs = dict(queries_per_class=4, classifier=None)
  res = run_fewshot(fewshot_data, 2, episode_batch_size=3, **kwargs)
  _, y, _, _ = fewshot_data
  assert res.query_indices.shape == (FS_EPISODES, FS_WAYS, 4)
  assert bool(np.all(res.query_mask))
  assert set(np.unique(res.classes)) <= {0, 2, 4, 5}
  for e in range(FS_EPISODES):
    for j, c in enumerate(np.asarray(res.classes[e])):
      idx = np.concatenate([res.support_indices[e, j], res.query_indices[e, j]])
      assert len(set(idx)) == FS_SHOTS + 4 and np.all(y[idx] == c)
  assert np.all(np.isnan(res.linear_probe_accuracy))
  # Blocking of episodes (3 per vmapped block, 8 episodes) changes nothing.
  whole = run_fewshot(fewshot_data, 2, episode_batch_size=FS_EPISODES,
                      **kwargs)
  np.testing.assert_array_equal(res.support_indices, whole.support_indices)
  np.testing.assert_array_equal(res.ncc_accuracy, whole.ncc_accuracy)


def test_fewshot_well_separated_clusters_are_perfect():
  rng = np.random.default_rng(4)
  num_classes, dim = 4, 6
  y = np.repeat(np.arange(num_classes), 10).astype(np.int32)
  means = 10.0 * np.eye(dim)[:num_classes]
  x = (means[y] + 0.5 * rng.normal(size=(len(y), dim))).astype(np.float32)
  res = probes.fewshot_episodes(x, y, shots=1, ways=3, num_episodes=5,
                                key=jax.random.key(0), linear_probe_steps=50,
                                test_features=x, test_labels=y)
  np.testing.assert_array_equal(res.ncc_accuracy, 1.0)
  np.testing.assert_array_equal(res.linear_probe_accuracy, 1.0)
  np.testing.assert_array_equal(res.test_ncc_accuracy, 1.0)
  np.testing.assert_array_equal(res.test_linear_probe_accuracy, 1.0)
  assert res.mean_ncc_accuracy == 1.0 and res.mean_linear_probe_accuracy == 1.0


# --------------------------------------------------------------------------
# Bad input.
# --------------------------------------------------------------------------


def test_bad_input_raises_helpful_errors(data, fewshot_data):
  xtr, ytr, xte, yte = data
  x, y, _, _ = fewshot_data
  key = jax.random.key(0)
  fs = lambda **kw: probes.fewshot_episodes(
      x, y, **{"shots": 1, "ways": 2, "num_episodes": 1, "key": key, **kw})
  with pytest.raises(ValueError, match="`shots` must be >= 1"):
    fs(shots=0)
  with pytest.raises(ValueError, match="`ways` must be >= 2"):
    fs(ways=1)
  with pytest.raises(ValueError, match="eligible classes"):
    fs(ways=6, shots=2)  # only 5 classes have >= 3 samples
  with pytest.raises(ValueError, match="`num_episodes` must be >= 1"):
    fs(num_episodes=0)
  with pytest.raises(ValueError, match="`queries_per_class` must be >= 1"):
    fs(queries_per_class=0)
  with pytest.raises(ValueError, match=r"`labels` must be an integer vector "
                     r"of shape \[44\]"):
    probes.fewshot_episodes(x, y[:-1], shots=1, ways=2, num_episodes=1,
                            key=key)
  with pytest.raises(ValueError, match=r"must lie in \[0, 3\)"):
    fs(num_classes=3)
  with pytest.raises(ValueError, match="integer dtype"):
    probes.ncc_accuracy(xtr, ytr.astype(np.float32), xte, yte,
                        num_classes=NUM_CLASSES)
  with pytest.raises(ValueError, match="`train_labels` must have shape|"
                     "`train_labels` must be an integer vector"):
    probes.knn_predict(xtr, ytr[:-1], xte, k=1, num_classes=NUM_CLASSES)
  with pytest.raises(ValueError, match="`k` must be >= 1"):
    probes.knn_predict(xtr, ytr, xte, k=0, num_classes=NUM_CLASSES)
  with pytest.raises(ValueError, match="`k` must be <= the number"):
    probes.knn_predict(xtr, ytr, xte, k=41, num_classes=NUM_CLASSES)
  with pytest.raises(ValueError, match="`metric` must be one of"):
    probes.knn_predict(xtr, ytr, xte, k=1, num_classes=NUM_CLASSES,
                       metric="manhattan")
  with pytest.raises(ValueError, match="`optimizer` must be one of"):
    probes.linear_probe(xtr, ytr, num_classes=NUM_CLASSES, key=key,
                        optimizer="rmsprop")
  with pytest.raises(ValueError, match="`linear_probe_optimizer` must be"):
    fs(linear_probe_optimizer="lbfgs")
  with pytest.raises(ValueError, match="`learning_rate` must be finite"):
    probes.linear_probe(xtr, ytr, num_classes=NUM_CLASSES, key=key,
                        learning_rate=0.0)
  with pytest.raises(ValueError, match="`steps` must be >= 1"):
    probes.linear_probe(xtr, ytr, num_classes=NUM_CLASSES, key=key, steps=0)
  with pytest.raises(ValueError, match="same feature dimension"):
    probes.ncc_predict(xtr, np.zeros((3, 7), np.float32))
  with pytest.raises(ValueError, match="floating-point"):
    probes.ncc_predict(xtr.astype(np.int32), np.zeros((3, 4), np.float32))
  with pytest.raises(ValueError, match=r"must lie in \[0, 3\)"):
    probes.class_centers(xtr, ytr, num_classes=3)
  with pytest.raises(ValueError, match="`top_k` must be <= num_classes"):
    probes.mean_classifier_accuracy(xtr, ytr, xte, yte,
                                    num_classes=NUM_CLASSES, top_k=6)
  with pytest.raises(ValueError, match="`class_mask` excludes every class"):
    probes.ncc_predict(xtr, np.zeros((3, 4), np.float32),
                       np.zeros(3, bool))
  with pytest.raises(ValueError, match="`predictions` must hold integer"):
    probes.accuracy(np.zeros(3, np.float32), np.zeros(3, np.int32))
  with pytest.raises(ValueError, match="must be given together"):
    probes.linear_probe(xtr, ytr, xte, num_classes=NUM_CLASSES, key=key)


# --------------------------------------------------------------------------
# The closed-form ridge probe (big_vision's few-shot recipe).
# --------------------------------------------------------------------------


def np_ridge(x, y, num_classes, l2_reg):
  """big_vision's fewshot_lsr recipe, written from its formula in float64."""
  x = np.asarray(x, np.float64)
  mean, std = x.mean(axis=0), x.std(axis=0) + 1e-5
  def design(f):
    rows = []
    for row in np.asarray(f, np.float64):
      rows.append(list((row - mean) / std) + [100.0])
    return np.array(rows)
  xa = design(x)
  targets = -np.ones((len(y), num_classes))
  for i, label in enumerate(y):
    targets[i, label] = 1.0
  w = np.linalg.inv(xa.T @ xa + l2_reg * np.eye(xa.shape[1])) @ xa.T @ targets
  return lambda f: design(f) @ w  # scores [M, C]


@pytest.mark.parametrize("n_train", [120, 6])  # N >= D + 1 (primal), N < D
def test_ridge_probe_matches_numpy(mixture, n_train):
  xtr, ytr, xte, yte = mixture
  xtr, ytr = xtr[:n_train], ytr[:n_train]
  for l2_reg in (1.0, 2.0**10):
    res = probes.ridge_probe(xtr, ytr, xte, yte, num_classes=3,
                             l2_reg=l2_reg)
    scores = np_ridge(xtr, ytr, 3, l2_reg)
    assert res.weights.shape == (3, 8) and res.bias.shape == (3,)
    # The folded [C, D] weights and bias reproduce the reference scores.
    got = np.asarray(xte, np.float64) @ np.asarray(res.weights).T + res.bias
    np.testing.assert_allclose(got, scores(xte), rtol=1e-3, atol=1e-4)
    np.testing.assert_array_equal(
        probes.linear_probe_predict(xte, res.weights, res.bias),
        np.argmax(scores(xte), axis=1))
    np.testing.assert_allclose(
        res.test_accuracy, np.mean(np.argmax(scores(xte), 1) == yte),
        rtol=1e-6)
    np.testing.assert_allclose(
        res.train_accuracy, np.mean(np.argmax(scores(xtr), 1) == ytr),
        rtol=1e-6)
  assert np.isnan(probes.ridge_probe(xtr, ytr, num_classes=3).test_accuracy)


def test_fewshot_ridge_classifier_recomputed_with_numpy(fewshot_data):
  x, y, xt, yt = fewshot_data
  res = run_fewshot(fewshot_data, 5, classifier="ridge", ridge_l2_reg=4.0)
  for e in range(FS_EPISODES):
    classes = list(np.asarray(res.classes[e]))
    support = np.asarray(res.support_indices[e]).reshape(-1)
    scores = np_ridge(x[support], np.repeat(np.arange(FS_WAYS), FS_SHOTS),
                      FS_WAYS, 4.0)
    q = np.asarray(res.query_indices[e])[np.asarray(res.query_mask[e])]
    want = np.mean(np.argmax(scores(x[q]), 1) ==
                   np.array([classes.index(c) for c in y[q]]))
    np.testing.assert_allclose(res.linear_probe_accuracy[e], want, rtol=1e-6)
    in_ep = np.isin(yt, classes)
    if in_ep.any():
      want_test = np.mean(np.argmax(scores(xt[in_ep]), 1) == np.array(
          [classes.index(c) for c in yt[in_ep]]))
      np.testing.assert_allclose(res.test_linear_probe_accuracy[e],
                                 want_test, rtol=1e-6)
  # NCC does not depend on the classifier beside it.
  ncc_only = run_fewshot(fewshot_data, 5, classifier=None)
  np.testing.assert_array_equal(res.ncc_accuracy, ncc_only.ncc_accuracy)


# --------------------------------------------------------------------------
# axis_name: one device equals eight (shard_map, pmap, sharded jit).
# --------------------------------------------------------------------------

NUM_DEVICES = 8


@pytest.fixture(scope="module")
def sharded_data():
  # Sorted train labels: each shard of 8 holds one or two classes, so every
  # class is absent from most shards; class 5 has no training sample at all
  # and class 2 is rare. Two bank rows are exact duplicates with different
  # labels on different shards (the kNN tie rule crosses devices).
  rng = np.random.default_rng(7)
  counts = (20, 12, 3, 17, 12, 0)
  ytr = np.repeat(np.arange(6), counts).astype(np.int32)  # 64 samples
  means = 2.0 * rng.normal(size=(6, 5))
  xtr = (means[ytr] + rng.normal(size=(64, 5))).astype(np.float32)
  xtr[50] = xtr[3]
  yte = rng.integers(0, 6, size=48).astype(np.int32)
  xte = (means[yte] + rng.normal(size=(48, 5))).astype(np.float32)
  xte[7] = xtr[3]
  return xtr, ytr, xte, yte


SHARDED_PROBES = {
    "ncc_accuracy": functools.partial(probes.ncc_accuracy, num_classes=6),
    "ncc_accuracy_top2": functools.partial(probes.ncc_accuracy,
                                           num_classes=6, top_k=2),
    "mean_classifier_accuracy": functools.partial(
        probes.mean_classifier_accuracy, num_classes=6),
    "knn_cosine": functools.partial(probes.knn_accuracy, k=5, num_classes=6,
                                    chunk_size=4),
    "knn_euclidean_1nn": functools.partial(
        probes.knn_accuracy, k=1, num_classes=6, metric="euclidean"),
}


def _shard(mesh, *arrays):
  return [jax.device_put(a, NamedSharding(mesh, P("data"))) for a in arrays]


@pytest.mark.parametrize("name", sorted(SHARDED_PROBES))
def test_probe_sums_one_device_equals_eight(name, sharded_data):
  fn = SHARDED_PROBES[name]
  want = float(fn(*sharded_data))
  mesh = jax.make_mesh((NUM_DEVICES,), ("data",),
                       axis_types=(AxisType.Explicit,))
  mapped = jax.jit(jax.shard_map(
      functools.partial(fn, axis_name="data"), mesh=mesh,
      in_specs=(P("data"),) * 4, out_specs=P()))
  np.testing.assert_allclose(mapped(*_shard(mesh, *sharded_data)), want,
                             rtol=1e-6)
  per_device = [a.reshape(NUM_DEVICES, -1, *a.shape[1:])
                for a in sharded_data]
  pmapped = jax.pmap(functools.partial(fn, axis_name="i"), axis_name="i")
  np.testing.assert_allclose(pmapped(*per_device), want, rtol=1e-6)
  for axis_type in (AxisType.Explicit, AxisType.Auto):
    mesh = jax.make_mesh((NUM_DEVICES,), ("data",), axis_types=(axis_type,))
    np.testing.assert_allclose(
        jax.jit(fn)(*_shard(mesh, *sharded_data)), want, rtol=1e-6)


def test_knn_predictions_against_a_sharded_bank(sharded_data):
  xtr, ytr, xte, yte = sharded_data
  mesh = jax.make_mesh((NUM_DEVICES,), ("data",),
                       axis_types=(AxisType.Explicit,))
  for k, metric in ((1, "euclidean"), (4, "cosine"), (9, "euclidean")):
    want = np_knn(xtr, ytr, xte, k, 6, metric)
    np.testing.assert_array_equal(
        probes.knn_predict(xtr, ytr, xte, k=k, num_classes=6, metric=metric),
        want)
    fn = functools.partial(probes.knn_predict, k=k, num_classes=6,
                           metric=metric, axis_name="data")
    got = jax.jit(jax.shard_map(fn, mesh=mesh, in_specs=(P("data"),) * 3,
                                out_specs=P("data")))(
                                    *_shard(mesh, xtr, ytr, xte))
    np.testing.assert_array_equal(got, want)
  # The duplicated bank row: 1-NN ties between index 3 (class 0) and 50
  # (class 4) on another shard go to the lower global index.
  assert want[7] == np_knn(xtr, ytr, xte[7:8], 1, 6, "euclidean")[0] == 0
  # k may exceed one shard's size, but not the whole bank.
  with pytest.raises(ValueError, match=r"`k` must be <= the number of "
                     r"training samples \(64\)"):
    jax.shard_map(functools.partial(probes.knn_predict, k=65, num_classes=6,
                                    axis_name="data"),
                  mesh=mesh, in_specs=(P("data"),) * 3,
                  out_specs=P("data"))(*_shard(mesh, xtr, ytr, xte))


def test_class_centers_and_accuracy_with_axis_name(sharded_data):
  xtr, ytr, xte, yte = sharded_data
  mesh = jax.make_mesh((NUM_DEVICES,), ("data",),
                       axis_types=(AxisType.Explicit,))
  centers = jax.jit(jax.shard_map(
      functools.partial(probes.class_centers, num_classes=6,
                        axis_name="data"),
      mesh=mesh, in_specs=(P("data"),) * 2, out_specs=P()))(
          *_shard(mesh, xtr, ytr))
  np.testing.assert_allclose(centers, np_centers(xtr, ytr, 6), rtol=1e-5,
                             atol=1e-6)
  pred = np.asarray(probes.ncc_predict(xte, centers))
  acc = jax.pmap(functools.partial(probes.accuracy, axis_name="i"),
                 axis_name="i")(pred.reshape(NUM_DEVICES, -1),
                                yte.reshape(NUM_DEVICES, -1))
  np.testing.assert_allclose(acc, np.mean(pred == yte), rtol=1e-6)


def test_axis_name_outside_a_mapped_context(sharded_data):
  xtr, ytr, xte, yte = sharded_data
  with pytest.raises(ValueError, match=r"`axis_name`='data' is not bound"):
    probes.ncc_accuracy(xtr, ytr, xte, yte, num_classes=6, axis_name="data")
  with pytest.raises(ValueError, match=r"`axis_name`='data' is not bound"):
    probes.knn_predict(xtr, ytr, xte, k=1, num_classes=6, axis_name="data")
  mesh = jax.make_mesh((NUM_DEVICES,), ("data",),
                       axis_types=(AxisType.Explicit,))
  with pytest.raises(ValueError, match="`num_classes` is required"):
    jax.shard_map(functools.partial(probes.ncc_accuracy, axis_name="data"),
                  mesh=mesh, in_specs=(P("data"),) * 4,
                  out_specs=P())(*_shard(mesh, *sharded_data))


# --------------------------------------------------------------------------
# More bad input, and short result summaries.
# --------------------------------------------------------------------------


def test_keys_and_degenerate_inputs_are_named(data, fewshot_data):
  xtr, ytr, _, _ = data
  x, y, _, _ = fewshot_data
  with pytest.raises(ValueError, match=r"`key` must be a JAX PRNG key; got "
                     r"0\. Pass `key=jax.random.key\(0\)`"):
    probes.linear_probe(xtr, ytr, num_classes=NUM_CLASSES, key=0)
  with pytest.raises(ValueError, match=r"`key` must be a JAX PRNG key"):
    probes.fewshot_episodes(x, y, shots=1, ways=2, num_episodes=1, key=3)
  with pytest.raises(ValueError, match=r"single PRNG key"):
    probes.linear_probe(xtr, ytr, num_classes=NUM_CLASSES,
                        key=jax.random.split(jax.random.key(0)))
  # A legacy uint32[2] key still works and equals the typed key.
  legacy = probes.linear_probe(xtr, ytr, num_classes=NUM_CLASSES, steps=3,
                               key=jax.random.PRNGKey(4))
  typed = probes.linear_probe(xtr, ytr, num_classes=NUM_CLASSES, steps=3,
                              key=jax.random.key(4))
  np.testing.assert_array_equal(legacy.weights, typed.weights)
  # An unknown keyword (the former linear_probe= flag: now classifier=) is
  # Python's own TypeError.
  with pytest.raises(TypeError, match=r"unexpected keyword argument "
                     r"'linear_probe'"):
    probes.fewshot_episodes(x, y, shots=1, ways=2, num_episodes=1,
                            key=jax.random.key(0), linear_probe=False)
  with pytest.raises(ValueError, match="`classifier` must be one of"):
    probes.fewshot_episodes(x, y, shots=1, ways=2, num_episodes=1,
                            key=jax.random.key(0), classifier="svm")
  one_class = np.zeros(len(ytr), np.int32)
  for fit in (lambda: probes.linear_probe(xtr, one_class,
                                          key=jax.random.key(0)),
              lambda: probes.ridge_probe(xtr, one_class)):
    with pytest.raises(ValueError, match=r"`num_classes` must be >= 2 to "
                       r"train a classifier; got 1"):
      fit()
  empty = np.zeros((0, 4), np.float32)
  with pytest.raises(ValueError, match="`train_features` is empty"):
    probes.ridge_probe(empty, np.zeros(0, np.int32), num_classes=2)
  with pytest.raises(ValueError, match="`train_features` is empty"):
    probes.ncc_accuracy(empty, np.zeros(0, np.int32), xtr, ytr,
                        num_classes=NUM_CLASSES)
  with pytest.raises(ValueError, match="`l2_reg` must be finite and > 0"):
    probes.ridge_probe(xtr, ytr, l2_reg=0.0)
  with pytest.raises(ValueError, match="`l2_reg` must be a real number"):
    probes.ridge_probe(xtr, ytr, l2_reg=True)
  with pytest.raises(ValueError, match="`learning_rate` must be a real"):
    probes.linear_probe(xtr, ytr, key=jax.random.key(0), learning_rate=True)
  with pytest.raises(ValueError, match=r"`learning_rate` must be a scalar; "
                     r"got shape \(2,\)"):
    probes.linear_probe(xtr, ytr, key=jax.random.key(0),
                        learning_rate=np.array([0.1, 0.2]))
  with pytest.raises(ValueError, match=r"`weights` must have shape \[C, D\]"):
    probes.linear_probe_predict(xtr, np.zeros((4, 3), np.float32))
  with pytest.raises(TypeError, match="positional argument"):
    probes.ncc_accuracy(xtr, ytr, xtr, ytr, NUM_CLASSES)  # keyword-only


def test_results_print_a_short_summary(episodes, mixture):
  text = repr(episodes)
  assert text.startswith(f"FewShotResult(episodes={FS_EPISODES}, "
                         f"ways={FS_WAYS}, shots={FS_SHOTS}, ")
  assert "mean_ncc_accuracy=" in text and "\n" not in text
  assert len(text) < 300 and "[[" not in text  # no index arrays
  xtr, ytr, _, _ = mixture
  lp = repr(probes.linear_probe(xtr, ytr, num_classes=3, steps=5,
                                key=jax.random.key(0)))
  assert lp.startswith("LinearProbeResult(weights=float32[3, 8], bias=None")
  assert "loss_history=float32[5]" in lp and len(lp) < 300
  ridge = repr(probes.ridge_probe(xtr, ytr))
  assert ridge.startswith("RidgeProbeResult(weights=float32[3, 8], "
                          "bias=float32[3], train_accuracy=1")
