"""k-nearest-neighbour probes, with a sharded training bank under ``axis_name``.

Majority vote of the ``k`` nearest training points, cosine (P1's
scikit-learn set-up) or Euclidean. Called per device inside ``jax.shard_map``
or ``jax.pmap`` with ``axis_name``, each device holds a shard of the training
bank and of the queries; the bank shards travel round the ring of devices
(``ppermute``) and each device keeps the running top-k of its own queries, so
no device ever holds more than one bank shard and the predictions equal those
against the whole bank.
"""

from __future__ import annotations

import functools
from typing import Optional

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from cljax._src import checks
from cljax.probes import _common
from cljax.probes import _scores

_METRICS = ("cosine", "euclidean")


def _normalize(x: jax.Array) -> jax.Array:
  # Guard zero vectors: their cosine similarity to everything is 0.
  norm = jnp.linalg.norm(x, axis=-1, keepdims=True)
  return x / jnp.maximum(norm, jnp.finfo(x.dtype).tiny)


def _prepare(train, test, metric, axis_name):
  """Bank, its squared norms (Euclidean) and the queries, in >= float32."""
  dtype = jnp.promote_types(_common.acc_dtype(train), _common.acc_dtype(test))
  xtr, xte = jnp.asarray(train, dtype), jnp.asarray(test, dtype)
  if metric == "cosine":
    return _normalize(xtr), None, _normalize(xte)
  # Translation-invariant: centre on the (global) train mean to limit
  # cancellation in ||x||^2 - 2<x, y> + ||y||^2; ||x_test||^2 is a per-row
  # constant, dropped.
  total, count = jnp.sum(xtr, axis=0), jnp.asarray(xtr.shape[0], dtype)
  if axis_name is not None:
    total, count = jax.lax.psum((total, count), axis_name)
  shift = total / count
  xtr, xte = xtr - shift, xte - shift
  return xtr, jnp.sum(xtr * xtr, axis=-1), xte


def _candidates(chunks, bank, bank_sq, bank_labels, offset, k):
  """Top-k of one bank (shard) per query: (sims, global ids, labels)."""
  kk = min(k, bank.shape[0])

  def one_chunk(q):
    # Memory per chunk: O(chunk_size * N_bank) similarities.
    sim = jnp.matmul(q, bank.T, precision=_common.HIGHEST)
    if bank_sq is not None:
      sim = 2.0 * sim - bank_sq  # = -||q - x||^2 + ||q||^2
    top, nbr = jax.lax.top_k(sim, kk)  # nearest first; ties: lower index
    return top, nbr + offset, bank_labels[nbr]

  sims, ids, labels = jax.lax.map(one_chunk, chunks)
  return tuple(x.reshape(-1, kk) for x in (sims, ids, labels))


def _merge(best, new, k):
  """The k best of two candidate lists, ties broken by the global index."""
  sims, ids, labels = (jnp.concatenate([a, b], axis=-1)
                       for a, b in zip(best, new))
  neg, ids, labels = jax.lax.sort((-sims, ids, labels), dimension=-1,
                                  num_keys=2)
  return -neg[:, :k], ids[:, :k], labels[:, :k]


def _vote(nbr_labels, k, num_classes):
  """Majority vote; ties go to the class of the nearest tied neighbour."""
  ranks = jnp.arange(k)
  onehot = jax.nn.one_hot(nbr_labels, num_classes, dtype=jnp.int32)
  votes = jnp.sum(onehot, axis=1)  # [M, C]
  # Rank of the nearest neighbour of each class (k when the class is absent).
  first = jnp.min(jnp.where(onehot > 0, ranks[None, :, None], k), axis=1)
  # Lexicographic (votes desc, first rank asc) packed in one integer: the
  # rank term is in [0, k] < k + 1, so it only breaks ties in votes. Every
  # neighbour has a distinct rank, so the argmax is unique.
  key = votes * (k + 1) + (k - first)
  return jnp.argmax(key, axis=-1).astype(jnp.int32)


@functools.partial(jax.jit, static_argnames=("k", "num_classes", "metric",
                                             "chunk_size"))
def _knn_predict_impl(train_features, train_labels, test_features, *, k,
                      num_classes, metric, chunk_size):
  # Under jit on arrays sharded on an Explicit mesh, each query needs every
  # bank row: gather (`axis_name` is the path without the gather).
  bank, bank_sq, queries = _prepare(_common.replicated(train_features),
                                    _common.replicated(test_features),
                                    metric, None)
  m = queries.shape[0]
  chunks = _chunk(queries, chunk_size)
  _, _, labels = _candidates(chunks, bank, bank_sq,
                             _common.replicated(train_labels), 0, k)
  return _vote(labels[:m], k, num_classes)


def _chunk(queries, chunk_size):
  m = queries.shape[0]
  num_chunks = -(-m // chunk_size)
  pad = num_chunks * chunk_size - m
  return jnp.pad(queries, ((0, pad), (0, 0))).reshape(num_chunks, chunk_size,
                                                      -1)


def _knn_predict_ring(train_features, train_labels, test_features, *, k,
                      num_classes, metric, chunk_size, axis_name):
  bank, bank_sq, queries = _prepare(train_features, test_features, metric,
                                    axis_name)
  m, n_local = queries.shape[0], bank.shape[0]
  num_devices = jax.lax.axis_size(axis_name)
  me = jax.lax.axis_index(axis_name)
  chunks = _chunk(queries, chunk_size)
  rows = chunks.shape[0] * chunks.shape[1]
  best = (jnp.full((rows, k), -jnp.inf, bank.dtype),
          jnp.full((rows, k), jnp.iinfo(jnp.int32).max, jnp.int32),
          jnp.zeros((rows, k), jnp.int32))
  shift = [(i, (i + 1) % num_devices) for i in range(num_devices)]
  labels = jnp.asarray(train_labels, jnp.int32)
  for step in range(num_devices):
    # After `step` shifts this device holds the shard of device me - step.
    offset = ((me - step) % num_devices) * n_local
    best = _merge(best, _candidates(chunks, bank, bank_sq, labels,
                                    offset.astype(jnp.int32), k), k)
    if step + 1 < num_devices:
      bank, labels = jax.lax.ppermute((bank, labels), axis_name, shift)
      if bank_sq is not None:
        bank_sq = jax.lax.ppermute(bank_sq, axis_name, shift)
  return _vote(best[2][:m], k, num_classes)


def _check_knn_args(train_features, train_labels, test_features, k,
                    num_classes, metric, chunk_size, axis_name):
  _common.check_features(train_features, "train_features")
  _common.check_features(test_features, "test_features")
  _common.check_same_dim(train_features, test_features, "train_features",
                         "test_features")
  _common.check_nonempty(train_features, "train_features")
  _common.check_axis_name(axis_name)
  n = np.shape(train_features)[0]
  num_classes = checks.infer_num_classes(train_labels, num_classes,
                                          "train_labels")
  checks.check_labels(train_labels, n, "train_labels", num_classes)
  k = _common.check_int(k, "k", 1)
  bank = n if axis_name is None else n * jax.lax.axis_size(axis_name)
  if k > bank:
    raise ValueError(
        f"`k` must be <= the number of training samples ({bank}); got {k}.")
  checks.check_choice(metric, "metric", _METRICS)
  chunk_size = _common.check_int(chunk_size, "chunk_size", 1)
  return k, num_classes, chunk_size


def knn_predict(train_features: ArrayLike, train_labels: ArrayLike,
                test_features: ArrayLike, *, k: int,
                num_classes: Optional[int] = None, metric: str = "cosine",
                chunk_size: int = 256,
                axis_name: Optional[str] = None) -> jax.Array:
  """k-nearest-neighbour majority vote.

  Tie rule: among the classes with the most votes, predict the one whose
  nearest member (among the k neighbours) is closest to the query. Neighbours
  at exactly equal similarity are ranked by training index (lower first), as
  ``jax.lax.top_k`` does. With ``k = 1`` this is plain 1-NN.

  Test points are processed ``chunk_size`` at a time, so peak memory is
  ``O(chunk_size * N_train)`` rather than ``O(M * N_train)``.

  Args:
    train_features: float[N, D] reference points (the bank; with
      ``axis_name``, this device's shard of it).
    train_labels: int[N] in ``[0, num_classes)``.
    test_features: float[M, D] queries (with ``axis_name``, this device's).
    k: number of neighbours, ``1 <= k <= N`` (the global N with
      ``axis_name``).
    num_classes: C; inferred from concrete train labels when None.
    metric: ``"cosine"`` (similarity of L2-normalised vectors; P1's default)
      or ``"euclidean"``.
    chunk_size: queries per block.
    axis_name: mapped axis over which bank and queries are sharded (inside
      ``jax.shard_map``/``jax.pmap``, equal shard sizes). The bank shards
      circulate with ``ppermute``; the result is this device's queries'
      predictions against the global bank, with the global index order's
      tie rule.

  Returns:
    int32[M] predicted class ids; all -1 (no class) when traced train
    labels (on any device) lie outside ``[0, num_classes)``.

  Raises:
    ValueError: on bad shapes/dtypes, (concrete) labels out of range,
      ``k < 1``, ``k > N``, an unknown ``metric``, ``chunk_size < 1`` or an
      unbound ``axis_name``.

  References:
    P1 section 2.5 item 6 (scikit-learn kNN, cosine, k in {5, 10, 20}).

  Examples:
    >>> import jax.numpy as jnp
    >>> from cljax import probes
    >>> xtr = jnp.array([[1., 0.], [1., .1], [0., 1.]])
    >>> probes.knn_predict(xtr, jnp.array([0, 0, 1]), jnp.array([[1., .05]]),
    ...                    k=3, num_classes=2).tolist()
    [0]
  """
  k, num_classes, chunk_size = _check_knn_args(
      train_features, train_labels, test_features, k, num_classes, metric,
      chunk_size, axis_name)
  m = np.shape(test_features)[0]
  if m == 0:
    return jnp.zeros((0,), jnp.int32)
  kwargs = dict(k=k, num_classes=num_classes, metric=metric,
                chunk_size=min(chunk_size, m))
  if axis_name is not None:
    pred = _knn_predict_ring(train_features, train_labels, test_features,
                             axis_name=axis_name, **kwargs)
  else:
    pred = _knn_predict_impl(
        jnp.asarray(train_features), jnp.asarray(train_labels),
        jnp.asarray(test_features), **kwargs)
  return checks.nan_if_labels_out_of_range(
      pred, train_labels, num_classes=num_classes, axis_name=axis_name)


def knn_accuracy(train_features: ArrayLike, train_labels: ArrayLike,
                 test_features: ArrayLike, test_labels: ArrayLike, *, k: int,
                 num_classes: Optional[int] = None, metric: str = "cosine",
                 chunk_size: int = 256,
                 axis_name: Optional[str] = None) -> jax.Array:
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
    axis_name: as :func:`knn_predict`; the hit counts are psum'd, so every
      device returns the accuracy over all devices' queries.

  Returns:
    float32 scalar accuracy in [0, 1]; NaN when traced train or test labels
    lie outside ``[0, num_classes)``.

  Raises:
    ValueError: as :func:`knn_predict`, plus bad or empty ``test_labels``.

  References:
    P1 section 2.5 item 6.

  Examples:
    >>> import jax.numpy as jnp
    >>> from cljax import probes
    >>> x = jnp.array([[1., 0.], [.9, .1], [0., 1.], [.1, .9]])
    >>> y = jnp.array([0, 0, 1, 1])
    >>> probes.knn_accuracy(x, y, x, y, k=1).item()
    1.0
  """
  num_classes = checks.infer_num_classes(train_labels, num_classes,
                                          "train_labels")
  checks.check_rank(test_features, 2, "test_features", "[M, D]")
  checks.check_labels(test_labels, np.shape(test_features)[0], "test_labels",
                       num_classes)
  _common.check_nonempty(test_features, "test_features")
  pred = knn_predict(train_features, train_labels, test_features, k=k,
                     num_classes=num_classes, metric=metric,
                     chunk_size=chunk_size, axis_name=axis_name)
  return checks.nan_if_labels_out_of_range(
      _scores.hit_rate(pred == jnp.asarray(test_labels), axis_name),
      train_labels, test_labels, num_classes=num_classes,
      axis_name=axis_name)
