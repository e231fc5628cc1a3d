"""Probes on frozen features: NCC, mean classifier, kNN, linear probe, few-shot.

Every classifier here reads frozen features ``float[N, D]`` and integer class
ids ``int[N]`` in ``[0, num_classes)``. Nothing trains an encoder.

Classifiers and the papers they come from:

* **Nearest class centre (NCC / NCCC)**: predict
  ``argmin_c ||z - mu_c||_2`` with ``mu_c`` the class means of a training set
  (P1, Luthra et al., section "NCCC accuracy" and the few-shot bound).
* **Mean classifier**: predict ``argmax_c <z, mu_c>`` -- an inner product, not
  a distance (P2's ``explicit_linear``; P3's mean classifier, top-1/top-5).
  The two rules agree only when all centres have the same norm.
* **kNN**: majority vote of the ``k`` nearest training points, cosine (P1's
  scikit-learn set-up) or Euclidean.
* **Linear probe**: a linear layer on frozen features trained with optax
  cross-entropy; bias-free by default as in P1 and P2.
* **Few-shot episodes**: Luthra et al.'s ``m``-shot ``C'``-way protocol (NCC and
  a bias-free Adam linear probe per episode), with a fresh subset per episode
  drawn from ``jax.random.fold_in(key, episode)``.

Conventions shared by all functions:

* Scores are computed in at least float32 (bfloat16 inputs are promoted) with
  ``Precision.HIGHEST`` matmuls, so GPU/TPU TF32 defaults do not flip close
  decisions.
* Ties in ``argmax``/``argmin`` go to the **lowest class id** (``jnp.argmax``
  semantics); ``top_k`` likewise prefers lower ids.
* An empty class has a zero centre. Pass ``class_mask`` (or use the
  ``*_accuracy`` helpers, which do it for you) so that a class without training
  samples can never be predicted.
* Validation follows :mod:`cljax._checks`: shapes, dtypes and Python
  hyper-parameters are checked at trace time; label ranges only when the labels
  are concrete (outside ``jit``).
"""

from __future__ import annotations

import functools
from typing import NamedTuple, Optional

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.typing import ArrayLike

from cljax import _checks

__all__ = [
    "FewShotResult",
    "LinearProbeResult",
    "accuracy",
    "class_centers",
    "fewshot_episodes",
    "knn_accuracy",
    "knn_predict",
    "linear_probe",
    "linear_probe_predict",
    "mean_classifier_accuracy",
    "mean_classifier_loss",
    "mean_classifier_predict",
    "ncc_accuracy",
    "ncc_predict",
]

_HIGHEST = jax.lax.Precision.HIGHEST
_KNN_METRICS = ("cosine", "euclidean")
_OPTIMIZERS = ("adam", "sgd")


# --------------------------------------------------------------------------
# Validation helpers (thin wrappers over cljax._checks).
# --------------------------------------------------------------------------


def _acc_dtype(x: ArrayLike) -> jnp.dtype:
  # Accumulate in at least float32: bfloat16 class means lose ~3 digits.
  return jnp.promote_types(jnp.result_type(x), jnp.float32)


def _check_features(x: ArrayLike, name: str) -> None:
  _checks.check_rank(x, 2, name, "[N, D]")
  _checks.check_float(x, name)


def _check_same_dim(a: ArrayLike, b: ArrayLike, name_a: str,
                    name_b: str) -> None:
  if np.shape(a)[-1] != np.shape(b)[-1]:
    raise ValueError(
        f"`{name_a}` and `{name_b}` must have the same feature dimension D; "
        f"got shapes {tuple(np.shape(a))} and {tuple(np.shape(b))}. Use "
        f"features from the same embedding.")


def _check_int(value, name: str, minimum: int) -> int:
  if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
    raise ValueError(
        f"`{name}` must be a Python int >= {minimum}; got {value!r}.")
  if value < minimum:
    raise ValueError(f"`{name}` must be >= {minimum}; got {value}.")
  return int(value)


def _check_nonempty(x: ArrayLike, name: str) -> None:
  if np.shape(x)[0] == 0:
    raise ValueError(f"`{name}` is empty; pass at least one sample.")


def _check_class_mask(class_mask: Optional[ArrayLike], num_classes: int
                      ) -> None:
  if class_mask is None:
    return
  if np.shape(class_mask) != (num_classes,):
    raise ValueError(
        f"`class_mask` must be a boolean vector of shape [{num_classes}] (one "
        f"flag per centre); got shape {tuple(np.shape(class_mask))}.")
  if _checks.is_concrete(class_mask) and not np.any(np.asarray(class_mask)):
    raise ValueError(
        "`class_mask` excludes every class; at least one class must be "
        "predictable.")


def _check_top_k(top_k, num_classes: int) -> int:
  top_k = _check_int(top_k, "top_k", 1)
  if top_k > num_classes:
    raise ValueError(
        f"`top_k` must be <= num_classes={num_classes}; got {top_k}.")
  return top_k


# --------------------------------------------------------------------------
# Class centres and the two centre-based classifiers.
# --------------------------------------------------------------------------


def _class_sums(features: jax.Array, labels: jax.Array,
                num_classes: int) -> tuple[jax.Array, jax.Array]:
  """Per-class sums ``[C, D]`` and counts ``[C]`` (one segment_sum each)."""
  # Kept private and local (not imported from cljax.geometry) so that the
  # probes module stays independent of the geometry module.
  f = jnp.asarray(features, _acc_dtype(features))
  sums = jax.ops.segment_sum(f, labels, num_segments=num_classes)
  counts = jax.ops.segment_sum(
      jnp.ones(labels.shape, f.dtype), labels, num_segments=num_classes)
  return sums, counts


def class_centers(features: ArrayLike, labels: ArrayLike,
                  num_classes: int) -> jax.Array:
  """Class means ``mu_c = mean_{i: y_i = c} z_i`` (raw, not centred).

  Args:
    features: float[N, D] frozen features.
    labels: int[N] class ids in ``[0, num_classes)``.
    num_classes: static number of classes C.

  Returns:
    float[C, D] class means in at least float32. A class with no sample gets a
    zero row; exclude it from prediction with ``class_mask = counts > 0``.

  Raises:
    ValueError: on bad ranks/dtypes, a length mismatch, ``num_classes < 1`` or
      (concrete) labels outside ``[0, num_classes)``.

  References:
    P1 section 2.5 item 1 (class mean); P3 section 4.3 (raw class means).

  Examples:
    >>> z = jnp.array([[0., 0.], [2., 0.], [0., 4.]])
    >>> class_centers(z, jnp.array([0, 0, 1]), 2).tolist()
    [[1.0, 0.0], [0.0, 4.0]]
  """
  _check_features(features, "features")
  n = np.shape(features)[0]
  num_classes = _checks.infer_num_classes(labels, num_classes)
  _checks.check_labels(labels, n, "labels", num_classes)
  sums, counts = _class_sums(jnp.asarray(features), jnp.asarray(labels),
                             num_classes)
  return sums / jnp.maximum(counts, 1.0)[:, None]


def _ncc_scores(features: jax.Array, centers: jax.Array,
                class_mask: Optional[jax.Array] = None) -> jax.Array:
  """Negative squared Euclidean distances ``-||z - mu_c||^2`` up to a row shift.

  Uses ``||mu_c||^2 - 2 <z, mu_c>`` (``||z||^2`` is constant per row and does
  not change the argmin) after translating everything by the mean of the
  (valid) centres: Euclidean distances are translation-invariant, and the
  shift removes a large common offset that would otherwise cancel
  catastrophically in float32.
  """
  dtype = jnp.promote_types(_acc_dtype(features), _acc_dtype(centers))
  z = jnp.asarray(features, dtype)
  mu = jnp.asarray(centers, dtype)
  if class_mask is None:
    shift = jnp.mean(mu, axis=0)
  else:
    w = jnp.asarray(class_mask, dtype)
    shift = (w @ mu) / jnp.maximum(jnp.sum(w), 1.0)
  z = z - shift
  mu = mu - shift
  sq = jnp.sum(mu * mu, axis=-1)
  scores = 2.0 * jnp.matmul(z, mu.T, precision=_HIGHEST) - sq
  return _mask_scores(scores, class_mask)


def _mean_scores(features: jax.Array, centers: jax.Array,
                 class_mask: Optional[jax.Array] = None) -> jax.Array:
  """Inner products ``<z, mu_c>``: the mean classifier's logits."""
  dtype = jnp.promote_types(_acc_dtype(features), _acc_dtype(centers))
  scores = jnp.matmul(jnp.asarray(features, dtype),
                      jnp.asarray(centers, dtype).T, precision=_HIGHEST)
  return _mask_scores(scores, class_mask)


def _mask_scores(scores: jax.Array, class_mask) -> jax.Array:
  if class_mask is None:
    return scores
  return jnp.where(jnp.asarray(class_mask, bool), scores, -jnp.inf)


def _check_centers_args(features, centers, class_mask) -> None:
  _check_features(features, "features")
  _checks.check_rank(centers, 2, "centers", "[C, D]")
  _checks.check_float(centers, "centers")
  _check_same_dim(features, centers, "features", "centers")
  _check_class_mask(class_mask, np.shape(centers)[0])


def ncc_predict(features: ArrayLike, centers: ArrayLike,
                class_mask: Optional[ArrayLike] = None) -> jax.Array:
  """Nearest-class-centre prediction ``argmin_c ||z - mu_c||_2``.

  Args:
    features: float[N, D] points to classify.
    centers: float[C, D] class centres (e.g. from :func:`class_centers`).
    class_mask: optional bool[C]; classes with ``False`` are never predicted
      (use it for classes without training samples).

  Returns:
    int32[N] predicted class ids. Exact distance ties go to the lowest id.

  Raises:
    ValueError: on bad ranks/dtypes, mismatched D, a mask of the wrong shape
      or one that excludes every class.

  References:
    P1 (Luthra et al.) section 2.5 item 4: NCCC with Euclidean ``cdist``.

  Examples:
    >>> mu = jnp.array([[0., 0.], [10., 0.]])
    >>> ncc_predict(jnp.array([[1., 0.], [9., 1.]]), mu).tolist()
    [0, 1]
  """
  _check_centers_args(features, centers, class_mask)
  scores = _ncc_scores(jnp.asarray(features), jnp.asarray(centers), class_mask)
  return jnp.argmax(scores, axis=-1).astype(jnp.int32)


def mean_classifier_predict(features: ArrayLike, centers: ArrayLike,
                            class_mask: Optional[ArrayLike] = None
                            ) -> jax.Array:
  """Mean-classifier prediction ``argmax_c <z, mu_c>`` (inner product).

  Unlike :func:`ncc_predict` this favours centres with a large norm: the two
  rules coincide only when every ``||mu_c||`` is equal (then
  ``||z - mu||^2 = ||z||^2 + ||mu||^2 - 2<z, mu>`` differs by a constant).

  Args:
    features: float[N, D] points to classify.
    centers: float[C, D] class centres (raw train-set means).
    class_mask: optional bool[C]; classes with ``False`` are never predicted.

  Returns:
    int32[N] predicted class ids; ties go to the lowest id.

  Raises:
    ValueError: as :func:`ncc_predict`.

  References:
    P2 (Graf et al.) ``explicit_linear`` classifier, section 3.3; P3 (Jiang et
    al.) mean classifier, section 4.3 item 6.

  Examples:
    >>> mu = jnp.array([[1., 0.], [0., 3.]])
    >>> mean_classifier_predict(jnp.array([[2., 1.]]), mu).tolist()
    [1]
  """
  _check_centers_args(features, centers, class_mask)
  scores = _mean_scores(jnp.asarray(features), jnp.asarray(centers),
                        class_mask)
  return jnp.argmax(scores, axis=-1).astype(jnp.int32)


def mean_classifier_loss(features: ArrayLike, labels: ArrayLike,
                         centers: ArrayLike) -> jax.Array:
  """P3's "mean-classifier loss": cross-entropy with logits ``<z, mu_c>``.

  Args:
    features: float[N, D].
    labels: int[N] in ``[0, C)``.
    centers: float[C, D] class means.

  Returns:
    float32 scalar, the mean over samples of
    ``-<z_i, mu_{y_i}> + log sum_c exp <z_i, mu_c>``.

  Raises:
    ValueError: on bad shapes/dtypes or (concrete) labels out of range.

  References:
    P3 section 4.3 item 6.
  """
  _check_centers_args(features, centers, None)
  _checks.check_labels(labels, np.shape(features)[0], "labels",
                       np.shape(centers)[0])
  _check_nonempty(features, "features")
  logits = _mean_scores(jnp.asarray(features), jnp.asarray(centers))
  return jnp.mean(optax.losses.softmax_cross_entropy_with_integer_labels(
      logits, jnp.asarray(labels)))


def accuracy(predictions: ArrayLike, labels: ArrayLike) -> jax.Array:
  """Fraction of correct predictions (top-k when ``predictions`` is 2-D).

  Args:
    predictions: int[N] predicted ids, or int[N, K] ranked candidates (a
      sample counts as correct when its label is among its K candidates).
    labels: int[N] true ids.

  Returns:
    float32 scalar in [0, 1].

  Raises:
    ValueError: when shapes disagree, dtypes are not integer, or N == 0.

  Examples:
    >>> accuracy(jnp.array([0, 1, 1, 2]), jnp.array([0, 1, 2, 2])).item()
    0.75
  """
  if np.ndim(predictions) not in (1, 2):
    raise ValueError(
        f"`predictions` must have layout [N] or [N, K] (top-K); got shape "
        f"{tuple(np.shape(predictions))}.")
  n = np.shape(predictions)[0]
  if not jnp.issubdtype(jnp.result_type(predictions), jnp.integer):
    raise ValueError(
        f"`predictions` must hold integer class ids; got dtype "
        f"{jnp.result_type(predictions)}. Take `argmax` of scores first.")
  _checks.check_labels(labels, n, "labels")
  _check_nonempty(labels, "labels")
  p = jnp.asarray(predictions)
  y = jnp.asarray(labels)
  if p.ndim == 1:
    p = p[:, None]
  hit = jnp.any(p == y[:, None], axis=-1)
  return jnp.mean(hit.astype(jnp.float32))


def _top_k_accuracy(scores: jax.Array, labels: jax.Array,
                    top_k: int) -> jax.Array:
  top_scores, pred = jax.lax.top_k(scores, top_k)
  # A masked class (score -inf) can fill a top-k slot when fewer than k
  # classes are valid; it must not count as a hit.
  hit = (pred == labels[:, None]) & (top_scores > -jnp.inf)
  return jnp.mean(jnp.any(hit, axis=-1).astype(jnp.float32))


def _centre_classifier_accuracy(score_fn, train_features, train_labels,
                                test_features, test_labels, num_classes,
                                top_k):
  for name, x in (("train_features", train_features),
                  ("test_features", test_features)):
    _check_features(x, name)
    _check_nonempty(x, name)
  _check_same_dim(train_features, test_features, "train_features",
                  "test_features")
  num_classes = _checks.infer_num_classes(train_labels, num_classes,
                                          "train_labels")
  _checks.check_labels(train_labels, np.shape(train_features)[0],
                       "train_labels", num_classes)
  _checks.check_labels(test_labels, np.shape(test_features)[0],
                       "test_labels", num_classes)
  top_k = _check_top_k(top_k, num_classes)
  sums, counts = _class_sums(jnp.asarray(train_features),
                             jnp.asarray(train_labels), num_classes)
  centers = sums / jnp.maximum(counts, 1.0)[:, None]
  # A class absent from the training split has no centre: never predict it.
  scores = score_fn(jnp.asarray(test_features), centers, counts > 0)
  return _top_k_accuracy(scores, jnp.asarray(test_labels), top_k)


def ncc_accuracy(train_features: ArrayLike, train_labels: ArrayLike,
                 test_features: ArrayLike, test_labels: ArrayLike,
                 num_classes: Optional[int] = None, *,
                 top_k: int = 1) -> jax.Array:
  """NCC accuracy: centres from the train split, evaluated on the test split.

  Classes absent from the train split are never predicted.

  Args:
    train_features: float[N, D] features that define the centres.
    train_labels: int[N].
    test_features: float[M, D] features to classify (may be the train set).
    test_labels: int[M].
    num_classes: C; inferred as ``max(train_labels) + 1`` when None and the
      labels are concrete.
    top_k: count a sample as correct when its label is among the ``top_k``
      nearest centres.

  Returns:
    float32 scalar accuracy in [0, 1].

  Raises:
    ValueError: on bad shapes/dtypes, mismatched D, empty inputs, labels out
      of range or ``top_k`` not in ``[1, C]``.

  References:
    P1 section 2.5 item 4.

  Examples:
    >>> z = jnp.array([[0., 0.], [1., 0.], [9., 0.], [10., 0.]])
    >>> y = jnp.array([0, 0, 1, 1])
    >>> ncc_accuracy(z, y, z, y, 2).item()
    1.0
  """
  return _centre_classifier_accuracy(_ncc_scores, train_features,
                                     train_labels, test_features,
                                     test_labels, num_classes, top_k)


def mean_classifier_accuracy(train_features: ArrayLike,
                             train_labels: ArrayLike,
                             test_features: ArrayLike, test_labels: ArrayLike,
                             num_classes: Optional[int] = None, *,
                             top_k: int = 1) -> jax.Array:
  """Mean-classifier accuracy (``argmax_c <z, mu_c>``), optionally top-k.

  Args:
    train_features: float[N, D] (P3: the un-augmented train set).
    train_labels: int[N].
    test_features: float[M, D].
    test_labels: int[M].
    num_classes: C; inferred from concrete train labels when None.
    top_k: e.g. 5 for P3's top-5 accuracy.

  Returns:
    float32 scalar accuracy in [0, 1].

  Raises:
    ValueError: as :func:`ncc_accuracy`.

  References:
    P2 ``explicit_linear`` (section 3.3); P3 section 4.3 item 6.

  Examples:
    >>> z = jnp.array([[1., 0.], [2., 0.], [0., 1.]])
    >>> y = jnp.array([0, 0, 1])
    >>> mean_classifier_accuracy(z, y, z, y, 2).item()
    1.0
  """
  return _centre_classifier_accuracy(_mean_scores, train_features,
                                     train_labels, test_features,
                                     test_labels, num_classes, top_k)


# --------------------------------------------------------------------------
# k nearest neighbours.
# --------------------------------------------------------------------------


def _normalize(x: jax.Array) -> jax.Array:
  # Guard zero vectors: their cosine similarity to everything is 0.
  norm = jnp.linalg.norm(x, axis=-1, keepdims=True)
  return x / jnp.maximum(norm, jnp.finfo(x.dtype).tiny)


@functools.partial(jax.jit, static_argnames=("k", "num_classes", "metric",
                                             "chunk_size"))
def _knn_predict_impl(train_features, train_labels, test_features, *, k,
                      num_classes, metric, chunk_size):
  dtype = jnp.promote_types(_acc_dtype(train_features),
                            _acc_dtype(test_features))
  xtr = jnp.asarray(train_features, dtype)
  xte = jnp.asarray(test_features, dtype)
  if metric == "cosine":
    xtr, xte = _normalize(xtr), _normalize(xte)
    tr_sq = None
  else:
    # Translation-invariant: centre on the train mean to limit cancellation in
    # ||x||^2 - 2<x, y> + ||y||^2; ||x_test||^2 is a per-row constant, dropped.
    shift = jnp.mean(xtr, axis=0)
    xtr, xte = xtr - shift, xte - shift
    tr_sq = jnp.sum(xtr * xtr, axis=-1)

  m = xte.shape[0]
  num_chunks = -(-m // chunk_size)
  pad = num_chunks * chunk_size - m
  chunks = jnp.pad(xte, ((0, pad), (0, 0))).reshape(num_chunks, chunk_size, -1)
  ranks = jnp.arange(k)

  def predict_chunk(q):
    # Memory per chunk: O(chunk_size * N_train) similarities.
    sim = jnp.matmul(q, xtr.T, precision=_HIGHEST)
    if tr_sq is not None:
      sim = 2.0 * sim - tr_sq  # = -||q - x||^2 + ||q||^2
    _, nbr = jax.lax.top_k(sim, k)  # nearest first; equal sims: lower index
    onehot = jax.nn.one_hot(train_labels[nbr], num_classes, dtype=jnp.int32)
    votes = jnp.sum(onehot, axis=1)  # [chunk, C]
    # Rank of the nearest neighbour of each class (k when the class is absent).
    first = jnp.min(jnp.where(onehot > 0, ranks[None, :, None], k), axis=1)
    # Lexicographic (votes desc, first rank asc) packed in one integer: the
    # rank term is in [0, k] < k + 1, so it only breaks ties in votes. Every
    # neighbour has a distinct rank, so the argmax is unique.
    key = votes * (k + 1) + (k - first)
    return jnp.argmax(key, axis=-1).astype(jnp.int32)

  return jax.lax.map(predict_chunk, chunks).reshape(-1)[:m]


def _check_knn_args(train_features, train_labels, test_features, k,
                    num_classes, metric, chunk_size):
  _check_features(train_features, "train_features")
  _check_features(test_features, "test_features")
  _check_same_dim(train_features, test_features, "train_features",
                  "test_features")
  _check_nonempty(train_features, "train_features")
  n = np.shape(train_features)[0]
  num_classes = _checks.infer_num_classes(train_labels, num_classes,
                                          "train_labels")
  _checks.check_labels(train_labels, n, "train_labels", num_classes)
  k = _check_int(k, "k", 1)
  if k > n:
    raise ValueError(
        f"`k` must be <= the number of training samples ({n}); got {k}.")
  _checks.check_choice(metric, "metric", _KNN_METRICS)
  chunk_size = _check_int(chunk_size, "chunk_size", 1)
  return k, num_classes, chunk_size


def knn_predict(train_features: ArrayLike, train_labels: ArrayLike,
                test_features: ArrayLike, *, k: int,
                num_classes: Optional[int] = None, metric: str = "cosine",
                chunk_size: int = 256) -> jax.Array:
  """k-nearest-neighbour majority vote.

  Tie rule: among the classes with the most votes, predict the one whose
  nearest member (among the k neighbours) is closest to the query. Neighbours
  at exactly equal similarity are ranked by training index (lower first), as
  ``jax.lax.top_k`` does. With ``k = 1`` this is plain 1-NN.

  Test points are processed ``chunk_size`` at a time, so peak memory is
  ``O(chunk_size * N_train)`` rather than ``O(M * N_train)``.

  Args:
    train_features: float[N, D] reference points.
    train_labels: int[N] in ``[0, num_classes)``.
    test_features: float[M, D] queries.
    k: number of neighbours, ``1 <= k <= N``.
    num_classes: C; inferred from concrete train labels when None.
    metric: ``"cosine"`` (similarity of L2-normalised vectors; P1's default)
      or ``"euclidean"``.
    chunk_size: queries per block.

  Returns:
    int32[M] predicted class ids.

  Raises:
    ValueError: on bad shapes/dtypes, labels out of range, ``k < 1``,
      ``k > N``, an unknown ``metric`` or ``chunk_size < 1``.

  References:
    P1 section 2.5 item 6 (scikit-learn kNN, cosine, k in {5, 10, 20}).

  Examples:
    >>> xtr = jnp.array([[1., 0.], [1., .1], [0., 1.]])
    >>> knn_predict(xtr, jnp.array([0, 0, 1]), jnp.array([[1., .05]]),
    ...             k=3, num_classes=2).tolist()
    [0]
  """
  k, num_classes, chunk_size = _check_knn_args(
      train_features, train_labels, test_features, k, num_classes, metric,
      chunk_size)
  m = np.shape(test_features)[0]
  if m == 0:
    return jnp.zeros((0,), jnp.int32)
  return _knn_predict_impl(
      jnp.asarray(train_features), jnp.asarray(train_labels),
      jnp.asarray(test_features), k=k, num_classes=num_classes,
      metric=metric, chunk_size=min(chunk_size, m))


def knn_accuracy(train_features: ArrayLike, train_labels: ArrayLike,
                 test_features: ArrayLike, test_labels: ArrayLike, *, k: int,
                 num_classes: Optional[int] = None, metric: str = "cosine",
                 chunk_size: int = 256) -> jax.Array:
  """Accuracy of :func:`knn_predict` on ``(test_features, test_labels)``.

  Args:
    train_features: float[N, D].
    train_labels: int[N].
    test_features: float[M, D].
    test_labels: int[M].
    k: number of neighbours.
    num_classes: C; inferred from concrete train labels when None.
    metric: ``"cosine"`` or ``"euclidean"``.
    chunk_size: queries per block.

  Returns:
    float32 scalar accuracy in [0, 1].

  Raises:
    ValueError: as :func:`knn_predict`, plus bad ``test_labels``.
  """
  num_classes = _checks.infer_num_classes(train_labels, num_classes,
                                          "train_labels")
  _checks.check_rank(test_features, 2, "test_features", "[M, D]")
  _checks.check_labels(test_labels, np.shape(test_features)[0], "test_labels",
                       num_classes)
  _check_nonempty(test_features, "test_features")
  pred = knn_predict(train_features, train_labels, test_features, k=k,
                     num_classes=num_classes, metric=metric,
                     chunk_size=chunk_size)
  return jnp.mean((pred == jnp.asarray(test_labels)).astype(jnp.float32))


# --------------------------------------------------------------------------
# Linear probe (optax, one jitted scan over epochs x minibatches).
# --------------------------------------------------------------------------


class LinearProbeResult(NamedTuple):
  """Output of :func:`linear_probe`.

  Attributes:
    weights: float32[D, C]; logits are ``features @ weights (+ bias)``.
    bias: float32[C], or None for the (default) bias-free probe.
    train_accuracy: float32 scalar, accuracy on the full training set.
    test_accuracy: float32 scalar on the test set (NaN when none was given).
    final_loss: float32 scalar, mean cross-entropy on the full training set
      at the final parameters (without the weight-decay term).
    loss_history: float32[steps], the minibatch loss before each update.
  """
  weights: jax.Array
  bias: Optional[jax.Array]
  train_accuracy: jax.Array
  test_accuracy: jax.Array
  final_loss: jax.Array
  loss_history: jax.Array


def _make_optimizer(optimizer: str, learning_rate, weight_decay, momentum,
                    decay_power, total_steps: int
                    ) -> optax.GradientTransformation:
  # Hyper-parameters may be traced (no recompilation when they change), so the
  # schedule is written out instead of branching on their Python values:
  # decay_power = 0 gives a constant rate (0.0 ** 0.0 == 1 in jnp).
  def schedule(count):
    frac = jnp.minimum(count, total_steps) / total_steps
    return learning_rate * (1.0 - frac) ** decay_power

  if optimizer == "adam":
    base = optax.adam(schedule)
  else:
    base = optax.sgd(schedule, momentum=momentum)
  # Coupled L2 (gradient += wd * w), i.e. PyTorch's `weight_decay=` for SGD
  # and Adam, which is what P2's retrained_linear probe used.
  return optax.chain(optax.add_decayed_weights(weight_decay), base)


def _linear_logits(params, x):
  logits = jnp.matmul(x, params["w"], precision=_HIGHEST)
  if "b" in params:
    logits = logits + params["b"]
  return logits


def _weighted_ce(params, x, y, w):
  ce = optax.losses.softmax_cross_entropy_with_integer_labels(
      _linear_logits(params, x), y)
  return jnp.sum(w * ce) / jnp.sum(w)


def _fit_linear(x, y, key, hyper, *, num_classes, batch_size, total_steps,
                use_bias, optimizer):
  """Trains a linear layer; the whole loop is one ``lax.scan`` nest.

  Epoch ``e`` shuffles with ``fold_in(key, e)`` and visits every sample once in
  ``ceil(N / batch_size)`` minibatches; the last one is padded with zero-weight
  rows (PyTorch ``drop_last=False`` semantics with fixed shapes). Steps past
  ``total_steps`` in the last epoch are computed but not applied.

  Returns:
    (params, loss_history[total_steps]).
  """
  n, d = x.shape
  steps_per_epoch = -(-n // batch_size)
  num_epochs = -(-total_steps // steps_per_epoch)
  pad = steps_per_epoch * batch_size - n
  lr, wd, momentum, decay_power = hyper
  tx = _make_optimizer(optimizer, lr, wd, momentum, decay_power, total_steps)
  # Zero init: the probe objective is convex, so the start only matters for
  # speed; zeros make runs deterministic given the minibatch key.
  params = {"w": jnp.zeros((d, num_classes), x.dtype)}
  if use_bias:
    params["b"] = jnp.zeros((num_classes,), x.dtype)
  opt_state = tx.init(params)
  row_weight = jnp.concatenate(
      [jnp.ones((n,), x.dtype), jnp.zeros((pad,), x.dtype)]).reshape(
          steps_per_epoch, batch_size)
  grad_fn = jax.value_and_grad(_weighted_ce)

  def step(carry, inputs):
    params, opt_state = carry
    t, idx, w = inputs
    loss, grads = grad_fn(params, x[idx], y[idx], w)
    updates, new_opt_state = tx.update(grads, opt_state, params)
    new_params = optax.apply_updates(params, updates)
    active = t < total_steps
    carry = jax.tree.map(lambda new, old: jnp.where(active, new, old),
                         (new_params, new_opt_state), (params, opt_state))
    return carry, loss

  def epoch(carry, e):
    perm = jax.random.permutation(jax.random.fold_in(key, e), n)
    order = jnp.concatenate([perm, jnp.zeros((pad,), perm.dtype)]).reshape(
        steps_per_epoch, batch_size)
    t = e * steps_per_epoch + jnp.arange(steps_per_epoch)
    return jax.lax.scan(step, carry, (t, order, row_weight))

  (params, _), losses = jax.lax.scan(epoch, (params, opt_state),
                                     jnp.arange(num_epochs))
  return params, losses.reshape(-1)[:total_steps]


def _predict_linear(params, x):
  return jnp.argmax(_linear_logits(params, x), axis=-1)


@functools.partial(jax.jit, static_argnames=(
    "num_classes", "batch_size", "total_steps", "use_bias", "optimizer"))
def _linear_probe_impl(x, y, xt, yt, key, hyper, *, num_classes, batch_size,
                       total_steps, use_bias, optimizer):
  params, history = _fit_linear(
      x, y, key, hyper, num_classes=num_classes, batch_size=batch_size,
      total_steps=total_steps, use_bias=use_bias, optimizer=optimizer)
  ones = jnp.ones(y.shape, x.dtype)
  final_loss = _weighted_ce(params, x, y, ones)
  train_acc = jnp.mean((_predict_linear(params, x) == y).astype(jnp.float32))
  if xt is None:
    test_acc = jnp.array(jnp.nan, jnp.float32)
  else:
    test_acc = jnp.mean(
        (_predict_linear(params, xt) == yt).astype(jnp.float32))
  return params, train_acc, test_acc, final_loss, history


def _check_probe_hparams(steps, epochs, learning_rate, batch_size,
                         weight_decay, momentum, decay_power, optimizer,
                         prefix=""):
  _checks.check_positive(learning_rate, prefix + "learning_rate")
  _checks.check_positive(weight_decay, prefix + "weight_decay",
                         allow_zero=True)
  _checks.check_positive(momentum, prefix + "momentum", allow_zero=True)
  _checks.check_positive(decay_power, prefix + "decay_power", allow_zero=True)
  _check_int(batch_size, prefix + "batch_size", 1)
  if epochs is None:
    _check_int(steps, prefix + "steps", 1)
  else:
    _check_int(epochs, prefix + "epochs", 1)
  _checks.check_choice(optimizer, prefix + "optimizer", _OPTIMIZERS)


def _probe_steps(n: int, batch_size: int, steps: int,
                 epochs: Optional[int]) -> tuple[int, int]:
  batch_size = min(int(batch_size), n)
  if epochs is None:
    return batch_size, int(steps)
  return batch_size, int(epochs) * (-(-n // batch_size))


def _check_test_set(features, features_name, test_features, test_labels,
                    num_classes):
  """Validates an optional (test_features, test_labels) pair."""
  if (test_features is None) != (test_labels is None):
    raise ValueError(
        "`test_features` and `test_labels` must be given together (or both "
        "left as None).")
  if test_features is not None:
    _check_features(test_features, "test_features")
    _check_nonempty(test_features, "test_features")
    _check_same_dim(features, test_features, features_name, "test_features")
    _checks.check_labels(test_labels, np.shape(test_features)[0],
                         "test_labels", num_classes)


def linear_probe(train_features: ArrayLike, train_labels: ArrayLike,
                 test_features: Optional[ArrayLike] = None,
                 test_labels: Optional[ArrayLike] = None, *,
                 num_classes: Optional[int] = None, key: jax.Array,
                 steps: int = 1000, epochs: Optional[int] = None,
                 learning_rate: float = 1e-3, batch_size: int = 256,
                 weight_decay: float = 0.0, use_bias: bool = False,
                 optimizer: str = "adam", momentum: float = 0.0,
                 decay_power: float = 0.0) -> LinearProbeResult:
  """Trains a linear classifier on frozen features with cross-entropy.

  The parameters start at zero. Each epoch reshuffles the training set with
  ``jax.random.fold_in(key, epoch)`` and walks it in minibatches of
  ``batch_size`` (the last one smaller, as with PyTorch ``drop_last=False``).
  The whole loop is one jitted ``lax.scan``; learning rate, weight decay,
  momentum and decay power are traced, so sweeping them does not recompile.

  Args:
    train_features: float[N, D] frozen features.
    train_labels: int[N] in ``[0, num_classes)``.
    test_features: optional float[M, D] for ``test_accuracy``.
    test_labels: int[M], required with ``test_features``.
    num_classes: C; inferred from concrete train labels when None.
    key: PRNG key for the minibatch order.
    steps: number of optimiser updates (ignored when ``epochs`` is given).
    epochs: optional number of passes; then ``steps = epochs *
      ceil(N / batch_size)`` (P1 counts epochs, P2 iterations).
    learning_rate: peak learning rate.
    batch_size: minibatch size, clipped to N.
    weight_decay: coupled L2 coefficient added to the gradient (PyTorch
      ``weight_decay=``; P2's retrained probe uses 1e-3 with SGD).
    use_bias: add a bias (default False: bias-free as in P1 and P2).
    optimizer: ``"adam"`` (P1: lr 3e-4) or ``"sgd"`` (P2: lr 0.1).
    momentum: SGD momentum (ignored by Adam).
    decay_power: learning rate ``lr * (1 - t / steps) ** decay_power``; 0 keeps
      it constant, 5 is P2's polynomial decay.

  Returns:
    A :class:`LinearProbeResult`.

  Raises:
    ValueError: on bad shapes/dtypes, labels out of range, mismatched D,
      non-positive ``steps``/``epochs``/``batch_size``/``learning_rate``,
      negative ``weight_decay``, or an unknown ``optimizer``.

  References:
    P1 section 2.5 item 5 and 2.6 (bias-free, Adam, lr 3e-4); P2 section 3.3
    ``retrained_linear`` (SGD 0.1, wd 1e-3, poly-5 decay, 5000 iterations,
    batch 256).

  Examples:
    >>> x = jnp.array([[1., 0.], [2., 0.], [0., 1.], [0., 2.]])
    >>> y = jnp.array([0, 0, 1, 1])
    >>> res = linear_probe(x, y, num_classes=2, key=jax.random.key(0),
    ...                    steps=50, learning_rate=0.1)
    >>> res.train_accuracy.item()
    1.0
  """
  _check_features(train_features, "train_features")
  _check_nonempty(train_features, "train_features")
  n = np.shape(train_features)[0]
  num_classes = _checks.infer_num_classes(train_labels, num_classes,
                                          "train_labels")
  _checks.check_labels(train_labels, n, "train_labels", num_classes)
  _check_test_set(train_features, "train_features", test_features,
                  test_labels, num_classes)
  _check_probe_hparams(steps, epochs, learning_rate, batch_size, weight_decay,
                       momentum, decay_power, optimizer)
  batch_size, total_steps = _probe_steps(n, batch_size, steps, epochs)

  dtype = _acc_dtype(train_features)
  x = jnp.asarray(train_features, dtype)
  xt = None if test_features is None else jnp.asarray(test_features, dtype)
  yt = None if test_labels is None else jnp.asarray(test_labels)
  hyper = tuple(jnp.asarray(v, dtype) for v in
                (learning_rate, weight_decay, momentum, decay_power))
  params, train_acc, test_acc, final_loss, history = _linear_probe_impl(
      x, jnp.asarray(train_labels), xt, yt, key, hyper,
      num_classes=num_classes, batch_size=batch_size,
      total_steps=total_steps, use_bias=bool(use_bias), optimizer=optimizer)
  return LinearProbeResult(
      weights=params["w"], bias=params.get("b"), train_accuracy=train_acc,
      test_accuracy=test_acc, final_loss=final_loss, loss_history=history)


def linear_probe_predict(features: ArrayLike, weights: ArrayLike,
                         bias: Optional[ArrayLike] = None) -> jax.Array:
  """Predictions ``argmax(features @ weights + bias)`` of a trained probe.

  Args:
    features: float[N, D].
    weights: float[D, C] (``LinearProbeResult.weights``).
    bias: optional float[C].

  Returns:
    int32[N] class ids; ties go to the lowest id.

  Raises:
    ValueError: on bad ranks/dtypes or mismatched D.
  """
  _check_features(features, "features")
  _checks.check_rank(weights, 2, "weights", "[D, C]")
  if np.shape(weights)[0] != np.shape(features)[1]:
    raise ValueError(
        f"`weights` must have shape [D, C] with D = {np.shape(features)[1]} "
        f"(the feature dimension); got {tuple(np.shape(weights))}.")
  params = {"w": jnp.asarray(weights)}
  if bias is not None:
    params["b"] = jnp.asarray(bias)
  return _predict_linear(params, jnp.asarray(features)).astype(jnp.int32)


# --------------------------------------------------------------------------
# Few-shot episodes (Luthra et al.'s m-shot C'-way protocol).
# --------------------------------------------------------------------------


class FewShotResult(NamedTuple):
  """Output of :func:`fewshot_episodes` (E episodes, ``ways`` classes each).

  Attributes:
    classes: int32[E, ways], the episode's class ids; row order defines the
      episode-local label (column j is local class j).
    support_indices: int32[E, ways, shots], indices into ``features``.
    query_indices: int32[E, ways, Q], indices into ``features``; padded slots
      hold -1.
    query_mask: bool[E, ways, Q], True for real queries.
    ncc_accuracy: float32[E], NCC accuracy over all queries of the episode.
    linear_probe_accuracy: float32[E] (NaN when the probe is disabled).
    test_ncc_accuracy: float32[E], NCC accuracy on every test sample whose
      label is an episode class (NaN without a test set or when the test set
      has no sample of those classes).
    test_linear_probe_accuracy: float32[E], likewise for the probe.
    mean_ncc_accuracy: float32 scalar, mean of ``ncc_accuracy``.
    mean_linear_probe_accuracy: float32 scalar.
    key: the base key; episode e used ``jax.random.fold_in(key, e)``.
  """
  classes: jax.Array
  support_indices: jax.Array
  query_indices: jax.Array
  query_mask: jax.Array
  ncc_accuracy: jax.Array
  linear_probe_accuracy: jax.Array
  test_ncc_accuracy: jax.Array
  test_linear_probe_accuracy: jax.Array
  mean_ncc_accuracy: jax.Array
  mean_linear_probe_accuracy: jax.Array
  key: jax.Array


def _masked_mean(hit: jax.Array, mask: jax.Array) -> jax.Array:
  # 0 / 0 -> NaN on purpose: "no evaluation sample" must not read as 0 % or
  # 100 % accuracy.
  return (jnp.sum(jnp.where(mask, hit, False).astype(jnp.float32))
          / jnp.sum(mask.astype(jnp.float32)))


@functools.partial(jax.jit, static_argnames=(
    "shots", "ways", "num_query_slots", "episode_batch_size", "run_probe",
    "probe_batch_size", "probe_steps", "probe_optimizer"))
def _fewshot_impl(features, members, counts, eligible, test_features,
                  test_labels, keys, hyper, *, shots, ways, num_query_slots,
                  episode_batch_size, run_probe, probe_batch_size,
                  probe_steps, probe_optimizer):
  n_max = members.shape[1]
  q = num_query_slots
  slot = jnp.arange(n_max)
  local_support = jnp.repeat(jnp.arange(ways), shots)
  local_query = jnp.repeat(jnp.arange(ways), q)
  nan = jnp.array(jnp.nan, jnp.float32)

  def episode(ek):
    k_cls, k_perm, k_probe = jax.random.split(ek, 3)
    rows = jax.random.choice(k_cls, eligible.shape[0], (ways,), replace=False)
    cnt = counts[rows]  # [ways]
    # A uniformly random order of each class's members: sort i.i.d. uniforms,
    # with the padded slots pushed to the end (their key 2 > any uniform).
    u = jax.random.uniform(k_perm, (ways, n_max))
    u = jnp.where(slot[None, :] < cnt[:, None], u, 2.0)
    shuffled = jnp.take_along_axis(members[rows], jnp.argsort(u, axis=-1),
                                   axis=-1)
    support = shuffled[:, :shots]  # without replacement by construction
    query = shuffled[:, shots:shots + q]
    qmask = (shots + jnp.arange(q))[None, :] < cnt[:, None]

    zs = features[support.reshape(-1)]  # [ways * shots, D]
    zq = features[query.reshape(-1)]  # [ways * Q, D]
    qm = qmask.reshape(-1)
    centres = jnp.mean(zs.reshape(ways, shots, -1), axis=1)
    ncc_hit = jnp.argmax(_ncc_scores(zq, centres), -1) == local_query
    out = {
        "classes": eligible[rows],
        "support": support,
        "query": jnp.where(qmask, query, -1),
        "qmask": qmask,
        "ncc": _masked_mean(ncc_hit, qm),
        "lp": nan, "test_ncc": nan, "test_lp": nan,
    }
    if test_features is not None:
      member = test_labels[:, None] == eligible[rows][None, :]  # [M, ways]
      in_episode = jnp.any(member, axis=-1)
      test_local = jnp.argmax(member, axis=-1)
      test_pred = jnp.argmax(_ncc_scores(test_features, centres), -1)
      out["test_ncc"] = _masked_mean(test_pred == test_local, in_episode)
    if run_probe:
      params, _ = _fit_linear(
          zs, local_support, k_probe, hyper, num_classes=ways,
          batch_size=probe_batch_size, total_steps=probe_steps,
          use_bias=False, optimizer=probe_optimizer)
      out["lp"] = _masked_mean(_predict_linear(params, zq) == local_query, qm)
      if test_features is not None:
        out["test_lp"] = _masked_mean(
            _predict_linear(params, test_features) == test_local, in_episode)
    return out

  return jax.lax.map(episode, keys, batch_size=episode_batch_size)


def fewshot_episodes(features: ArrayLike, labels: ArrayLike, *, shots: int,
                     ways: int, num_episodes: int, key: jax.Array,
                     num_classes: Optional[int] = None,
                     queries_per_class: Optional[int] = None,
                     test_features: Optional[ArrayLike] = None,
                     test_labels: Optional[ArrayLike] = None,
                     linear_probe: bool = True,
                     linear_probe_steps: int = 500,
                     linear_probe_epochs: Optional[int] = None,
                     linear_probe_learning_rate: float = 3e-4,
                     linear_probe_batch_size: int = 256,
                     linear_probe_weight_decay: float = 0.0,
                     linear_probe_optimizer: str = "adam",
                     episode_batch_size: Optional[int] = None
                     ) -> FewShotResult:
  """Few-shot NCC and linear-probe accuracy over random ``ways``-way episodes.

  Episode ``e`` uses its own key ``jax.random.fold_in(key, e)`` and draws:

  1. ``ways`` distinct classes, uniformly among the *eligible* classes (those
     with at least ``shots + 1`` samples, or ``shots + queries_per_class``);
  2. ``shots`` support samples per class, uniformly WITHOUT replacement;
  3. the queries: every remaining sample of those classes, or, with
     ``queries_per_class``, that many further samples per class drawn without
     replacement (disjoint from the support).

  On each episode it reports the accuracy on the queries (micro-averaged over
  all queries of the episode) of (a) NCC with the support means as centres and
  (b) a bias-free linear layer trained on the support set with cross-entropy
  (Adam by default, lr 3e-4, zero init, minibatch ``min(ways * shots,
  linear_probe_batch_size)`` -- P1's ``min(2m, 256)`` for 2 ways). Given a
  test set, both are also evaluated on every test sample of the episode's
  classes (P1 evaluates its few-shot probes on the pair's full test split).

  Unlike P1's reference code, which reseeds before drawing so that all repeats
  share one subset, each episode here draws a fresh subset. Same key, same
  arguments -> identical subsets and accuracies. P1 also reports accuracy on
  the episode classes' full *train* split (support included): pass the train
  features again as ``test_features`` to get that number.

  Episodes run under one ``jit`` as a ``lax.map`` over vmapped blocks of
  ``episode_batch_size`` episodes with fixed shapes (queries are a padded
  index array plus a mask), so a new configuration compiles once.

  Args:
    features: float[N, D] frozen features (support and queries are drawn here).
    labels: int[N] class ids; must be concrete (not traced).
    shots: samples per class in the support set (P1's m), >= 1.
    ways: classes per episode (P1's C'), >= 2.
    num_episodes: E >= 1.
    key: PRNG key.
    num_classes: C; inferred from the labels when None.
    queries_per_class: optional fixed number of queries per class; default
      uses all remaining samples.
    test_features: optional float[M, D] extra evaluation set.
    test_labels: int[M], required with ``test_features``.
    linear_probe: train the probe (False skips it: its accuracies are NaN).
    linear_probe_steps: optimiser steps per episode.
    linear_probe_epochs: if given, overrides the steps with this many passes
      over the support set (P1 uses 501).
    linear_probe_learning_rate: P1 uses 3e-4.
    linear_probe_batch_size: minibatch cap (P1: 256).
    linear_probe_weight_decay: coupled L2 (P1 passes none).
    linear_probe_optimizer: ``"adam"`` (P1) or ``"sgd"``.
    episode_batch_size: episodes vmapped together (memory ~ batch * ways * Q *
      D floats); None picks a block that keeps that under ~128 MiB.

  Returns:
    A :class:`FewShotResult`.

  Raises:
    ValueError: on bad shapes/dtypes, traced labels, labels out of range,
      ``shots < 1``, ``ways < 2``, ``ways`` larger than the number of
      eligible classes, ``num_episodes < 1``, ``queries_per_class < 1`` or bad
      probe hyper-parameters.

  References:
    P1 (Luthra et al.) section 2.6, "Evaluation protocol": 2-way NCCC and LP
    and the full C-way protocol; the reused-subset bug (fixed here).

  Examples:
    >>> z = jnp.array([[0., 0.], [0., 1.], [9., 9.], [9., 8.]])
    >>> res = fewshot_episodes(z, jnp.array([0, 0, 1, 1]), shots=1, ways=2,
    ...                        num_episodes=2, key=jax.random.key(0),
    ...                        linear_probe=False)
    >>> res.ncc_accuracy.tolist()
    [1.0, 1.0]
  """
  _check_features(features, "features")
  n, d = np.shape(features)
  shots = _check_int(shots, "shots", 1)
  ways = _check_int(ways, "ways", 2)
  num_episodes = _check_int(num_episodes, "num_episodes", 1)
  if queries_per_class is not None:
    queries_per_class = _check_int(queries_per_class, "queries_per_class", 1)
  if not _checks.is_concrete(labels):
    raise ValueError(
        "`labels` must be concrete (call fewshot_episodes outside jit): the "
        "episode shapes depend on the class sizes.")
  num_classes = _checks.infer_num_classes(labels, num_classes)
  _checks.check_labels(labels, n, "labels", num_classes)
  _check_test_set(features, "features", test_features, test_labels,
                  num_classes)
  _check_probe_hparams(linear_probe_steps, linear_probe_epochs,
                       linear_probe_learning_rate, linear_probe_batch_size,
                       linear_probe_weight_decay, 0.0, 0.0,
                       linear_probe_optimizer, prefix="linear_probe_")
  if episode_batch_size is not None:
    episode_batch_size = _check_int(episode_batch_size, "episode_batch_size",
                                    1)

  # Host-side bookkeeping (shapes depend on class sizes): a padded table of
  # the members of every eligible class, in index order.
  y = np.asarray(labels).astype(np.int64)
  counts = np.bincount(y, minlength=num_classes)
  need = shots + (1 if queries_per_class is None else queries_per_class)
  eligible = np.flatnonzero(counts >= need)
  if ways > eligible.size:
    what = ("shots + 1" if queries_per_class is None
            else "shots + queries_per_class")
    raise ValueError(
        f"`ways`={ways} exceeds the number of eligible classes "
        f"({eligible.size} of {num_classes} have at least {what} = {need} "
        f"samples). Lower `ways`, `shots` or `queries_per_class`.")
  n_max = int(counts[eligible].max())
  order = np.argsort(y, kind="stable")
  starts = np.concatenate([[0], np.cumsum(counts)])
  members = np.zeros((eligible.size, n_max), np.int32)
  for row, c in enumerate(eligible):
    members[row, :counts[c]] = order[starts[c]:starts[c + 1]]
  num_query_slots = (n_max - shots if queries_per_class is None
                     else queries_per_class)

  dtype = _acc_dtype(features)
  x = jnp.asarray(features, dtype)
  xt = yt = None
  if test_features is not None:
    xt = jnp.asarray(test_features, dtype)
    yt = jnp.asarray(test_labels)
  probe_batch_size, probe_steps = _probe_steps(
      ways * shots, linear_probe_batch_size, linear_probe_steps,
      linear_probe_epochs)
  if episode_batch_size is None:
    m = 0 if xt is None else xt.shape[0]
    per_episode = ways * (num_query_slots * d + n_max) + m * ways
    episode_batch_size = max(1, (1 << 25) // max(per_episode, 1))
  episode_batch_size = min(episode_batch_size, num_episodes)
  keys = jax.vmap(lambda i: jax.random.fold_in(key, i))(
      jnp.arange(num_episodes))
  hyper = tuple(jnp.asarray(v, dtype) for v in
                (linear_probe_learning_rate, linear_probe_weight_decay,
                 0.0, 0.0))
  out = _fewshot_impl(
      x, jnp.asarray(members), jnp.asarray(counts[eligible], jnp.int32),
      jnp.asarray(eligible, jnp.int32), xt, yt, keys, hyper, shots=shots,
      ways=ways, num_query_slots=num_query_slots,
      episode_batch_size=episode_batch_size, run_probe=bool(linear_probe),
      probe_batch_size=probe_batch_size, probe_steps=probe_steps,
      probe_optimizer=linear_probe_optimizer)
  return FewShotResult(
      classes=out["classes"], support_indices=out["support"],
      query_indices=out["query"], query_mask=out["qmask"],
      ncc_accuracy=out["ncc"], linear_probe_accuracy=out["lp"],
      test_ncc_accuracy=out["test_ncc"],
      test_linear_probe_accuracy=out["test_lp"],
      mean_ncc_accuracy=jnp.mean(out["ncc"]),
      mean_linear_probe_accuracy=jnp.mean(out["lp"]), key=key)
