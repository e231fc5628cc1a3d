"""Class centres, nearest-class-centre (NCC) and mean-classifier probes.

* **NCC / NCCC**: predict ``argmin_c ||z - mu_c||_2`` with ``mu_c`` the class
  means of a training set (P1, Luthra et al., "NCCC accuracy").
* **Mean classifier**: predict ``argmax_c <z, mu_c>``, an inner product, not a
  distance (P2's ``explicit_linear``; P3's mean classifier, top-1/top-5). The
  two rules agree only when all centres have the same norm.

Accuracies are sums over examples, so they take ``axis_name``: called per
device inside ``jax.shard_map`` or ``jax.pmap`` on a shard of the train and
test sets, they psum the class sums, class counts and hit counts and return
the global-batch value on every device.
"""

from __future__ import annotations

from typing import Optional

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.typing import ArrayLike

from cljax._src import checks
from cljax.probes import _common
from cljax.probes import _scores


def class_centers(features: ArrayLike, labels: ArrayLike, *,
                  num_classes: Optional[int] = None,
                  axis_name: Optional[str] = None) -> jax.Array:
  """Class means ``mu_c = mean_{i: y_i = c} z_i`` (raw, not centred).

  Args:
    features: float[N, D] frozen features.
    labels: int[N] class ids in ``[0, num_classes)``.
    num_classes: static number of classes C; inferred as ``max(labels) + 1``
      from concrete labels when None (required under ``jit``/``shard_map``).
    axis_name: mapped axis over which the samples are sharded; the means are
      then those of the global batch, on every device.

  Returns:
    float[C, D] class means in at least float32. A class with no sample gets a
    zero row; exclude it from prediction with ``class_mask = counts > 0``.
    All NaN when traced labels lie outside ``[0, num_classes)``.

  Raises:
    ValueError: on bad ranks/dtypes, a length mismatch, ``num_classes < 1``,
      (concrete) labels outside ``[0, num_classes)`` or an unbound
      ``axis_name``.

  References:
    P1 section 2.5 item 1 (class mean); P3 section 4.3 (raw class means).

  Examples:
    >>> import jax.numpy as jnp
    >>> from cljax import probes
    >>> z = jnp.array([[0., 0.], [2., 0.], [0., 4.]])
    >>> probes.class_centers(z, jnp.array([0, 0, 1]), num_classes=2).tolist()
    [[1.0, 0.0], [0.0, 4.0]]
  """
  _common.check_features(features, "features")
  _common.check_axis_name(axis_name)
  n = np.shape(features)[0]
  num_classes = checks.infer_num_classes(labels, num_classes)
  checks.check_labels(labels, n, "labels", num_classes)
  sums, counts = _scores.class_sums(jnp.asarray(features), jnp.asarray(labels),
                                    num_classes, axis_name)
  return checks.nan_if_labels_out_of_range(
      sums / jnp.maximum(counts, 1.0)[:, None], labels,
      num_classes=num_classes, axis_name=axis_name)


def _check_centers_args(features, centers, class_mask) -> None:
  _common.check_features(features, "features")
  checks.check_rank(centers, 2, "centers", "[C, D]")
  checks.check_float(centers, "centers")
  _common.check_same_dim(features, centers, "features", "centers")
  _common.check_class_mask(class_mask, np.shape(centers)[0])


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
    >>> import jax.numpy as jnp
    >>> from cljax import probes
    >>> mu = jnp.array([[0., 0.], [10., 0.]])
    >>> probes.ncc_predict(jnp.array([[1., 0.], [9., 1.]]), mu).tolist()
    [0, 1]
  """
  _check_centers_args(features, centers, class_mask)
  scores = _scores.ncc_scores(jnp.asarray(features), jnp.asarray(centers),
                              class_mask)
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
    >>> import jax.numpy as jnp
    >>> from cljax import probes
    >>> mu = jnp.array([[1., 0.], [0., 3.]])
    >>> probes.mean_classifier_predict(jnp.array([[2., 1.]]), mu).tolist()
    [1]
  """
  _check_centers_args(features, centers, class_mask)
  scores = _scores.mean_scores(jnp.asarray(features), jnp.asarray(centers),
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
    ``-<z_i, mu_{y_i}> + log sum_c exp <z_i, mu_c>``; NaN when traced labels
    lie outside ``[0, C)``.

  Raises:
    ValueError: on bad shapes/dtypes, N = 0 or (concrete) labels out of range.

  References:
    P3 section 4.3 item 6.

  Examples:
    >>> import jax.numpy as jnp
    >>> from cljax import probes
    >>> mu = jnp.array([[1., 0.], [0., 1.]])
    >>> loss = probes.mean_classifier_loss(mu, jnp.array([0, 1]), mu)
    >>> round(loss.item(), 4)  # log(1 + e^-1)
    0.3133
  """
  _check_centers_args(features, centers, None)
  checks.check_labels(labels, np.shape(features)[0], "labels",
                       np.shape(centers)[0])
  _common.check_nonempty(features, "features")
  logits = _scores.mean_scores(jnp.asarray(features), jnp.asarray(centers))
  loss = jnp.mean(optax.losses.softmax_cross_entropy_with_integer_labels(
      logits, jnp.asarray(labels)))
  return checks.nan_if_labels_out_of_range(
      loss, labels, num_classes=np.shape(centers)[0])


def accuracy(predictions: ArrayLike, labels: ArrayLike, *,
             axis_name: Optional[str] = None) -> jax.Array:
  """Fraction of correct predictions (top-k when ``predictions`` is 2-D).

  Args:
    predictions: int[N] predicted ids, or int[N, K] ranked candidates (a
      sample counts as correct when its label is among its K candidates).
    labels: int[N] true ids.
    axis_name: mapped axis over which the samples are sharded; the hit and
      sample counts are psum'd, so every device gets the global accuracy.

  Returns:
    float32 scalar in [0, 1].

  Raises:
    ValueError: when shapes disagree, dtypes are not integer, N == 0 or
      ``axis_name`` is unbound.

  Examples:
    >>> import jax.numpy as jnp
    >>> from cljax import probes
    >>> probes.accuracy(jnp.array([0, 1, 1, 2]), jnp.array([0, 1, 2, 2])).item()
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
  checks.check_labels(labels, n, "labels")
  _common.check_nonempty(labels, "labels")
  _common.check_axis_name(axis_name)
  p = jnp.asarray(predictions)
  y = jnp.asarray(labels)
  if p.ndim == 1:
    p = p[:, None]
  return _scores.hit_rate(jnp.any(p == y[:, None], axis=-1), axis_name)


def _centre_classifier_accuracy(score_fn, train_features, train_labels,
                                test_features, test_labels, num_classes,
                                top_k, axis_name):
  for name, x in (("train_features", train_features),
                  ("test_features", test_features)):
    _common.check_features(x, name)
    _common.check_nonempty(x, name)
  _common.check_same_dim(train_features, test_features, "train_features",
                         "test_features")
  _common.check_axis_name(axis_name)
  num_classes = checks.infer_num_classes(train_labels, num_classes,
                                          "train_labels")
  checks.check_labels(train_labels, np.shape(train_features)[0],
                       "train_labels", num_classes)
  checks.check_labels(test_labels, np.shape(test_features)[0],
                       "test_labels", num_classes)
  top_k = _common.check_top_k(top_k, num_classes)
  sums, counts = _scores.class_sums(jnp.asarray(train_features),
                                    jnp.asarray(train_labels), num_classes,
                                    axis_name)
  centers = sums / jnp.maximum(counts, 1.0)[:, None]
  # A class absent from the training split has no centre: never predict it.
  scores = score_fn(jnp.asarray(test_features), centers, counts > 0)
  top_scores, pred = jax.lax.top_k(scores, top_k)
  # A masked class (score -inf) can fill a top-k slot when fewer than k
  # classes are valid; it must not count as a hit.
  hit = (pred == jnp.asarray(test_labels)[:, None]) & (top_scores > -jnp.inf)
  return checks.nan_if_labels_out_of_range(
      _scores.hit_rate(jnp.any(hit, axis=-1), axis_name), train_labels,
      test_labels, num_classes=num_classes, axis_name=axis_name)


def ncc_accuracy(train_features: ArrayLike, train_labels: ArrayLike,
                 test_features: ArrayLike, test_labels: ArrayLike, *,
                 num_classes: Optional[int] = None, top_k: int = 1,
                 axis_name: Optional[str] = None) -> jax.Array:
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
    axis_name: mapped axis over which both splits are sharded (per device
      inside ``shard_map``/``pmap``): the centres come from the psum'd class
      sums and counts, the accuracy from the psum'd hit counts, so every
      device returns the global-batch value. Shards may miss classes.

  Returns:
    float32 scalar accuracy in [0, 1]; NaN when traced labels (train or
    test, on any device) lie outside ``[0, num_classes)``.

  Raises:
    ValueError: on bad shapes/dtypes, mismatched D, empty inputs, (concrete)
      labels out of range, ``top_k`` not in ``[1, C]`` or an unbound
      ``axis_name``.

  References:
    P1 section 2.5 item 4.

  Examples:
    >>> import jax.numpy as jnp
    >>> from cljax import probes
    >>> z = jnp.array([[0., 0.], [1., 0.], [9., 0.], [10., 0.]])
    >>> y = jnp.array([0, 0, 1, 1])
    >>> probes.ncc_accuracy(z, y, z, y, num_classes=2).item()
    1.0
  """
  return _centre_classifier_accuracy(
      _scores.ncc_scores, train_features, train_labels, test_features,
      test_labels, num_classes, top_k, axis_name)


def mean_classifier_accuracy(train_features: ArrayLike,
                             train_labels: ArrayLike,
                             test_features: ArrayLike, test_labels: ArrayLike,
                             *, num_classes: Optional[int] = None,
                             top_k: int = 1,
                             axis_name: Optional[str] = None) -> jax.Array:
  """Mean-classifier accuracy (``argmax_c <z, mu_c>``), optionally top-k.

  Args:
    train_features: float[N, D] (P3: the un-augmented train set).
    train_labels: int[N].
    test_features: float[M, D].
    test_labels: int[M].
    num_classes: C; inferred from concrete train labels when None.
    top_k: e.g. 5 for P3's top-5 accuracy.
    axis_name: as :func:`ncc_accuracy`.

  Returns:
    float32 scalar accuracy in [0, 1]; NaN as :func:`ncc_accuracy`.

  Raises:
    ValueError: as :func:`ncc_accuracy`.

  References:
    P2 ``explicit_linear`` (section 3.3); P3 section 4.3 item 6.

  Examples:
    >>> import jax.numpy as jnp
    >>> from cljax import probes
    >>> z = jnp.array([[1., 0.], [2., 0.], [0., 1.]])
    >>> y = jnp.array([0, 0, 1])
    >>> probes.mean_classifier_accuracy(z, y, z, y, num_classes=2).item()
    1.0
  """
  return _centre_classifier_accuracy(
      _scores.mean_scores, train_features, train_labels, test_features,
      test_labels, num_classes, top_k, axis_name)
