"""Few-shot episodes: Luthra et al.'s m-shot C'-way protocol.

Per episode, NCC with the support means as centres and a linear classifier
trained on the support set (the Adam probe of P1, or the closed-form ridge
probe of big_vision), with a fresh subset per episode drawn from
``jax.random.fold_in(key, episode)``.

``fewshot_episodes`` checks its arguments and runs, under one ``jit``, the
episode sampler (``_draw_episode``: the classes, support and queries of an
episode, from the table of eligible classes built on the host by
``_class_table``) and the classifiers on the drawn episode (``_classify``:
NCC and the probe chosen by ``classifier``).
"""

from __future__ import annotations

import functools
from typing import NamedTuple, Optional

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from cljax._src import checks
from cljax.probes import _common
from cljax.probes import _scores
from cljax.probes import linear
from cljax.probes import ridge

_CLASSIFIERS = ("linear_probe", "ridge", None)


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
    linear_probe_accuracy: float32[E], the accuracy of the linear classifier
      chosen by ``classifier`` (NaN with ``classifier=None``).
    test_ncc_accuracy: float32[E], NCC accuracy on every test sample whose
      label is an episode class (NaN without a test set or when the test set
      has no sample of those classes).
    test_linear_probe_accuracy: float32[E], likewise for the classifier.
    mean_ncc_accuracy: float32 scalar, mean of ``ncc_accuracy``.
    mean_linear_probe_accuracy: float32 scalar.
    key: the base key; episode e used ``jax.random.fold_in(key, e)``.

  ``repr`` prints a one-line summary (episode counts and mean accuracies),
  not the index arrays.
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

  def __repr__(self) -> str:
    episodes, ways, shots = np.shape(self.support_indices)
    fields = {
        "episodes": episodes, "ways": ways, "shots": shots,
        "query_slots": int(np.shape(self.query_indices)[-1]),
        "mean_ncc_accuracy": self.mean_ncc_accuracy,
        "mean_linear_probe_accuracy": self.mean_linear_probe_accuracy,
        "mean_test_ncc_accuracy": _nanmean(self.test_ncc_accuracy),
        "mean_test_linear_probe_accuracy": _nanmean(
            self.test_linear_probe_accuracy),
    }
    return _common.summary("FewShotResult", fields)


def _nanmean(x) -> float:
  # Episodes without a test sample of their classes are NaN; all-NaN is NaN.
  values = np.asarray(x, np.float64)
  values = values[~np.isnan(values)]
  return float(values.mean()) if values.size else float("nan")


def _masked_mean(hit: jax.Array, mask: jax.Array) -> jax.Array:
  # 0 / 0 -> NaN on purpose: "no evaluation sample" must not read as 0 % or
  # 100 % accuracy.
  return (jnp.sum(jnp.where(mask, hit, False).astype(jnp.float32))
          / jnp.sum(mask.astype(jnp.float32)))


class _ClassTable(NamedTuple):
  """The samples episodes are drawn from (host side: its shapes are static).

  Attributes:
    members: int32[K, n_max], row k: the indices of the samples of class
      ``eligible[k]`` in index order, padded with 0.
    counts: int32[K], the real entries of each row.
    eligible: int32[K], the classes with enough samples for an episode.
    num_query_slots: Q, the query slots per class of every episode.
  """
  members: np.ndarray
  counts: np.ndarray
  eligible: np.ndarray
  num_query_slots: int


def _class_table(labels, num_classes: int, *, shots: int, ways: int,
                 queries_per_class: Optional[int]) -> _ClassTable:
  """The eligible classes and their members; checks that ``ways`` fit."""
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
  return _ClassTable(members, counts[eligible].astype(np.int32),
                     eligible.astype(np.int32), num_query_slots)


class _Episode(NamedTuple):
  """One episode's draw: indices into the features (traced)."""
  rows: jax.Array      # int[ways], rows of the class table (local class j)
  support: jax.Array   # int32[ways, shots]
  query: jax.Array     # int32[ways, Q]; padded slots hold a valid index
  query_mask: jax.Array  # bool[ways, Q], True for real queries


def _draw_episode(k_cls, k_perm, members, counts, *, shots: int, ways: int,
                  num_query_slots: int) -> _Episode:
  """The episode sampler: ``ways`` classes, then their support and queries.

  The classes are uniform among the table's rows (``k_cls``); each class's
  members are put in a uniformly random order (``k_perm``), whose first
  ``shots`` are the support and the next ``num_query_slots`` the queries, so
  the two are disjoint and drawn without replacement.
  """
  slot = jnp.arange(members.shape[1])
  rows = jax.random.choice(k_cls, members.shape[0], (ways,), replace=False)
  cnt = counts[rows]  # [ways]
  # A uniformly random order of each class's members: sort i.i.d. uniforms,
  # with the padded slots pushed to the end (their key 2 > any uniform).
  u = jax.random.uniform(k_perm, (ways, members.shape[1]))
  u = jnp.where(slot[None, :] < cnt[:, None], u, 2.0)
  shuffled = jnp.take_along_axis(members[rows], jnp.argsort(u, axis=-1),
                                 axis=-1)
  q = num_query_slots
  return _Episode(
      rows=rows, support=shuffled[:, :shots],
      query=shuffled[:, shots:shots + q],
      query_mask=(shots + jnp.arange(q))[None, :] < cnt[:, None])


class _Probe(NamedTuple):
  """The linear classifier fitted to each support set (static under jit)."""
  classifier: Optional[str]   # "linear_probe", "ridge" or None
  batch_size: int
  steps: int
  optimizer: str


def _fit_classifier(probe: _Probe, zs, local_support, key, hyper, *,
                    ways: int):
  """The predictor (features -> local class) fitted to a support set."""
  if probe.classifier == "ridge":
    w, b = ridge.fit_ridge(zs, local_support, hyper[-1], num_classes=ways)
    return lambda f: jnp.argmax(ridge.ridge_logits(w, b, f), -1)
  params, _ = linear.fit_linear(
      zs, local_support, key, hyper[:4], num_classes=ways,
      batch_size=probe.batch_size, total_steps=probe.steps, use_bias=False,
      optimizer=probe.optimizer)
  return functools.partial(linear.predict_linear, params)


def _classify(features, episode: _Episode, classes, test_features,
              test_labels, key, hyper, *, shots: int, ways: int,
              probe: _Probe) -> dict[str, jax.Array]:
  """NCC and the probe on one episode: their query and test accuracies."""
  q = episode.query.shape[1]
  local_support = jnp.repeat(jnp.arange(ways), shots)
  local_query = jnp.repeat(jnp.arange(ways), q)
  nan = jnp.array(jnp.nan, jnp.float32)
  zs = features[episode.support.reshape(-1)]  # [ways * shots, D]
  zq = features[episode.query.reshape(-1)]  # [ways * Q, D]
  qm = episode.query_mask.reshape(-1)
  centres = jnp.mean(zs.reshape(ways, shots, -1), axis=1)
  ncc_hit = jnp.argmax(_scores.ncc_scores(zq, centres), -1) == local_query
  out = {"ncc": _masked_mean(ncc_hit, qm), "lp": nan, "test_ncc": nan,
         "test_lp": nan}
  if test_features is not None:
    member = test_labels[:, None] == classes[None, :]  # [M, ways]
    in_episode = jnp.any(member, axis=-1)
    test_local = jnp.argmax(member, axis=-1)
    test_pred = jnp.argmax(_scores.ncc_scores(test_features, centres), -1)
    out["test_ncc"] = _masked_mean(test_pred == test_local, in_episode)
  if probe.classifier is not None:
    predict = _fit_classifier(probe, zs, local_support, key, hyper,
                              ways=ways)
    out["lp"] = _masked_mean(predict(zq) == local_query, qm)
    if test_features is not None:
      out["test_lp"] = _masked_mean(predict(test_features) == test_local,
                                    in_episode)
  return out


@functools.partial(jax.jit, static_argnames=(
    "shots", "ways", "num_query_slots", "episode_batch_size", "probe"))
def _fewshot_impl(features, members, counts, eligible, test_features,
                  test_labels, keys, hyper, *, shots, ways, num_query_slots,
                  episode_batch_size, probe):
  def episode(ek):
    k_cls, k_perm, k_probe = jax.random.split(ek, 3)
    drawn = _draw_episode(k_cls, k_perm, members, counts, shots=shots,
                          ways=ways, num_query_slots=num_query_slots)
    classes = eligible[drawn.rows]
    return {
        "classes": classes,
        "support": drawn.support,
        "query": jnp.where(drawn.query_mask, drawn.query, -1),
        "qmask": drawn.query_mask,
        **_classify(features, drawn, classes, test_features, test_labels,
                    k_probe, hyper, shots=shots, ways=ways, probe=probe),
    }

  return jax.lax.map(episode, keys, batch_size=episode_batch_size)


def _episode_batch_size(requested: Optional[int], num_episodes: int, *,
                        ways: int, table: _ClassTable, dim: int,
                        num_test: int) -> int:
  # About 128 MiB of float32 per block: the query features and the member
  # table of each episode, and its test-set membership.
  if requested is None:
    per_episode = (ways * (table.num_query_slots * dim
                           + table.members.shape[1]) + num_test * ways)
    requested = max(1, (1 << 25) // max(per_episode, 1))
  return min(requested, num_episodes)


def fewshot_episodes(features: ArrayLike, labels: ArrayLike, *, shots: int,
                     ways: int, num_episodes: int, key: jax.Array,
                     num_classes: Optional[int] = None,
                     queries_per_class: Optional[int] = None,
                     test_features: Optional[ArrayLike] = None,
                     test_labels: Optional[ArrayLike] = None,
                     classifier: Optional[str] = "linear_probe",
                     ridge_l2_reg: float = ridge.DEFAULT_L2_REG,
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
  (b) a linear classifier fitted to the support set: with
  ``classifier="linear_probe"`` a bias-free linear layer trained with
  cross-entropy (Adam by default, lr 3e-4, zero init, minibatch
  ``min(ways * shots, linear_probe_batch_size)`` -- P1's ``min(2m, 256)`` for
  2 ways); with ``classifier="ridge"`` the closed-form ridge probe (no
  training loop: the few-shot linear-probe error against m beside NCC, P1
  figure (e), costs little more than NCC). Given a test set, both are also
  evaluated on every test sample of the episode's classes (P1 evaluates its
  few-shot probes on the pair's full test split).

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
    classifier: the linear classifier fitted to each support set beside NCC:
      ``"linear_probe"`` (P1's bias-free Adam probe, the ``linear_probe_*``
      arguments), ``"ridge"`` (the closed-form ridge probe of
      :func:`cljax.probes.ridge_probe`, fast and key-free) or None (NCC
      only; the linear accuracies are NaN).
    ridge_l2_reg: the ridge penalty with ``classifier="ridge"``.
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
    A :class:`FewShotResult`. When traced ``test_labels`` lie outside
    ``[0, num_classes)``, its accuracies are NaN and its index arrays -1.

  Raises:
    ValueError: on bad shapes/dtypes, traced labels, labels out of range,
      ``shots < 1``, ``ways < 2``, ``ways`` larger than the number of
      eligible classes, ``num_episodes < 1``, ``queries_per_class < 1``, an
      unknown ``classifier``, bad probe hyper-parameters or a ``key`` that is
      not a PRNG key.

  References:
    P1 (Luthra et al.) section 2.6, "Evaluation protocol": 2-way NCCC and LP
    and the full C-way protocol; the reused-subset bug (fixed here).

  Examples:
    >>> import jax
    >>> import jax.numpy as jnp
    >>> from cljax import probes
    >>> z = jnp.array([[0., 0.], [0., 1.], [9., 9.], [9., 8.]])
    >>> res = probes.fewshot_episodes(
    ...     z, jnp.array([0, 0, 1, 1]), shots=1, ways=2, num_episodes=2,
    ...     key=jax.random.key(0), classifier="ridge")
    >>> res.ncc_accuracy.tolist(), res.linear_probe_accuracy.tolist()
    ([1.0, 1.0], [1.0, 1.0])
    >>> res  # doctest: +ELLIPSIS
    FewShotResult(episodes=2, ways=2, shots=1, query_slots=1, ...)
  """
  checks.check_choice(classifier, "classifier", _CLASSIFIERS)
  _common.check_hyper(ridge_l2_reg, "ridge_l2_reg")
  _common.check_features(features, "features")
  n, d = np.shape(features)
  shots = _common.check_int(shots, "shots", 1)
  ways = _common.check_int(ways, "ways", 2)
  num_episodes = _common.check_int(num_episodes, "num_episodes", 1)
  key = _common.check_key(key)
  if queries_per_class is not None:
    queries_per_class = _common.check_int(queries_per_class,
                                          "queries_per_class", 1)
  if not checks.is_concrete(labels):
    raise ValueError(
        "`labels` must be concrete (call fewshot_episodes outside jit): the "
        "episode shapes depend on the class sizes.")
  num_classes = checks.infer_num_classes(labels, num_classes)
  checks.check_labels(labels, n, "labels", num_classes)
  _common.check_test_set(features, "features", test_features, test_labels,
                         num_classes)
  linear.check_probe_hparams(
      linear_probe_steps, linear_probe_epochs, linear_probe_learning_rate,
      linear_probe_batch_size, linear_probe_weight_decay, 0.0, 0.0,
      linear_probe_optimizer, prefix="linear_probe_")
  if episode_batch_size is not None:
    episode_batch_size = _common.check_int(episode_batch_size,
                                           "episode_batch_size", 1)

  table = _class_table(labels, num_classes, shots=shots, ways=ways,
                       queries_per_class=queries_per_class)
  dtype = _common.acc_dtype(features)
  x = jnp.asarray(features, dtype)
  xt = yt = None
  if test_features is not None:
    xt = jnp.asarray(test_features, dtype)
    yt = jnp.asarray(test_labels)
  probe_batch_size, probe_steps = linear.probe_steps(
      ways * shots, linear_probe_batch_size, linear_probe_steps,
      linear_probe_epochs)
  episode_batch_size = _episode_batch_size(
      episode_batch_size, num_episodes, ways=ways, table=table, dim=d,
      num_test=0 if xt is None else xt.shape[0])
  keys = jax.vmap(lambda i: jax.random.fold_in(key, i))(
      jnp.arange(num_episodes))
  hyper = tuple(jnp.asarray(v, dtype) for v in
                (linear_probe_learning_rate, linear_probe_weight_decay,
                 0.0, 0.0, ridge_l2_reg))
  out = _fewshot_impl(
      x, jnp.asarray(table.members), jnp.asarray(table.counts),
      jnp.asarray(table.eligible), xt, yt, keys, hyper, shots=shots,
      ways=ways, num_query_slots=table.num_query_slots,
      episode_batch_size=episode_batch_size,
      probe=_Probe(classifier, probe_batch_size, probe_steps,
                   linear_probe_optimizer))
  result = FewShotResult(
      classes=out["classes"], support_indices=out["support"],
      query_indices=out["query"], query_mask=out["qmask"],
      ncc_accuracy=out["ncc"], linear_probe_accuracy=out["lp"],
      test_ncc_accuracy=out["test_ncc"],
      test_linear_probe_accuracy=out["test_lp"],
      mean_ncc_accuracy=jnp.mean(out["ncc"]),
      mean_linear_probe_accuracy=jnp.mean(out["lp"]), key=key)
  # `labels` are concrete (checked above); traced test labels may not be.
  return checks.nan_if_labels_out_of_range(result, test_labels,
                                            num_classes=num_classes)
