"""The float64 NumPy accumulator on the host: the streaming reference.

``FeatureStatistics`` keeps the statistics of ``streaming`` in float64 NumPy
(optionally with per-class second moments for the directional CDNV) and
evaluates them with the same ``streaming.metrics_from_moments``.
"""

from __future__ import annotations

from typing import Any

from jax.typing import ArrayLike
import numpy as np

from cljax._src import checks
from cljax.geometry import _dispatch as dp
from cljax.geometry import jiang
from cljax.geometry.streaming import metrics_from_moments


class FeatureStatistics:
  """Streaming float64 class statistics that reproduce the geometry metrics.

  Feed batches of any size with ``update`` (JAX or NumPy arrays, any float
  dtype), combine accumulators built on different hosts or shards with
  ``merge``, then call ``metrics``. The on-device accumulator
  (``init``/``update``/``merge``/``finalize``) keeps the same statistics in
  JAX; this float64 NumPy version is its reference. Only sufficient
  statistics are kept:

  * ``counts`` int64[C], ``sums`` float64[C, D], ``sq_norms`` float64[C]
    (per-class sums of ``||z||^2``) and ``second_moment`` float64[D, D]
    (``sum_i z_i z_i^T``): enough for the class means, NC1, NC2, NC3, the
    CDNV (both conventions), P3's metrics and the feature spectrum;
  * optionally ``class_second_moments`` float64[C, D, D] (per-class
    ``sum z z^T``), needed only for the directional CDNV. This costs
    ``8 C D^2`` bytes (100 classes at D = 2048: 3.4 GB); pass
    ``per_class_second_moments=False`` to skip it, and ``metrics`` then
    omits ``"directional_cdnv"``.

  Sample-level quantities (``within_class_distance``, ``nc4_ncc_agreement``,
  ``alignment``, ``uniformity``, ``augmentation_collapse``) need the features
  themselves and are not available here.

  Args:
    num_classes: number of classes C (labels must lie in ``[0, C)``).
    dim: feature dimension D.
    per_class_second_moments: keep the [C, D, D] per-class second moments.

  Raises:
    ValueError: if ``num_classes`` or ``dim`` is not a positive int.

  References:
    Chan, Golub & LeVeque, "Algorithms for computing the sample variance",
    1983 (pairwise merge of moments); the metrics' own papers.

  Examples:
    >>> stats = FeatureStatistics(num_classes=2, dim=2)
    >>> z = np.array([[-1., 0.], [1., 0.], [4., 1.], [4., -1.]])
    >>> _ = stats.update(z[:3], np.array([0, 0, 1]))
    >>> _ = stats.update(z[3:], np.array([1]))
    >>> round(stats.metrics()["cdnv"], 6)
    0.0625
  """

  def __init__(self, num_classes: int, dim: int, *,
               per_class_second_moments: bool = True):
    for name, value in (("num_classes", num_classes), ("dim", dim)):
      if not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"`{name}` must be a positive int; got {value!r}.")
    self.num_classes = int(num_classes)
    self.dim = int(dim)
    self.counts = np.zeros((self.num_classes,), np.int64)
    self.sums = np.zeros((self.num_classes, self.dim), np.float64)
    self.sq_norms = np.zeros((self.num_classes,), np.float64)
    self.second_moment = np.zeros((self.dim, self.dim), np.float64)
    self.class_second_moments = (
        np.zeros((self.num_classes, self.dim, self.dim), np.float64)
        if per_class_second_moments else None)

  @property
  def per_class_second_moments(self) -> bool:
    return self.class_second_moments is not None

  @property
  def num_samples(self) -> int:
    return int(self.counts.sum())

  def update(self, features: ArrayLike, labels: ArrayLike
             ) -> "FeatureStatistics":
    """Adds a batch; returns ``self`` (mutated in place).

    Args:
      features: float[B, D] features (any float dtype, JAX or NumPy).
      labels: int[B] class ids in ``[0, num_classes)``.

    Returns:
      ``self``, for chaining.

    Raises:
      ValueError: on a wrong rank or width, non-float features, non-integer
        labels, a length mismatch or labels out of range.
    """
    features = np.asarray(features)
    labels = np.asarray(labels)
    checks.check_rank(features, 2, "features", f"float[B, {self.dim}]")
    checks.check_float(features, "features")
    if features.shape[1] != self.dim:
      raise ValueError(
          f"`features` must have {self.dim} columns (the `dim` this "
          f"accumulator was built with); got shape {features.shape}.")
    checks.check_labels(labels, features.shape[0], "labels",
                         self.num_classes)
    if features.shape[0] == 0:
      return self
    z = features.astype(np.float64)
    labels = labels.astype(np.int64)
    # Sort once and reduce contiguous runs: O(B D) instead of a [B, C]
    # one-hot matmul, which matters for large C.
    order = np.argsort(labels, kind="stable")
    z, labels = z[order], labels[order]
    classes, starts = np.unique(labels, return_index=True)
    self.counts += np.bincount(labels, minlength=self.num_classes)
    self.sums[classes] += np.add.reduceat(z, starts, axis=0)
    self.sq_norms[classes] += np.add.reduceat(np.sum(z * z, axis=1), starts)
    self.second_moment += z.T @ z
    if self.class_second_moments is not None:
      ends = np.append(starts[1:], len(labels))
      for c, a, b in zip(classes, starts, ends):
        self.class_second_moments[c] += z[a:b].T @ z[a:b]
    return self

  def merge(self, other: "FeatureStatistics") -> "FeatureStatistics":
    """Adds another accumulator's statistics into this one (in place).

    Args:
      other: a ``FeatureStatistics`` with the same ``num_classes``, ``dim``
        and ``per_class_second_moments``.

    Returns:
      ``self``, for chaining.

    Raises:
      ValueError: if the two accumulators are incompatible.
    """
    if not isinstance(other, FeatureStatistics):
      raise ValueError(
          f"`other` must be a FeatureStatistics; got {type(other).__name__}.")
    mine = (self.num_classes, self.dim, self.per_class_second_moments)
    theirs = (other.num_classes, other.dim, other.per_class_second_moments)
    if mine != theirs:
      raise ValueError(
          "`other` must have the same (num_classes, dim, "
          f"per_class_second_moments); got {theirs}, expected {mine}. Build "
          "both accumulators with the same arguments.")
    self.counts += other.counts
    self.sums += other.sums
    self.sq_norms += other.sq_norms
    self.second_moment += other.second_moment
    if self.class_second_moments is not None:
      self.class_second_moments += other.class_second_moments
    return self

  def metrics(self, *, rcond: float = 1e-6, center: bool | str = True,
              weights: ArrayLike | None = None,
              eps: float = 1e-7) -> dict[str, Any]:
    """Computes the geometry metrics from the accumulated statistics.

    Each value equals (up to float32 round-off in the full-batch version)
    the function of the same name called on all features seen so far.

    Args:
      rcond: pseudo-inverse cut-off of ``nc1``.
      center: centring for ``equinorm``, ``equiangularity``, ``max_angle``,
        ``etf_distance`` and ``nc3_self_duality`` (see ``equinorm``).
      weights: optional float[C, D] classifier rows; adds
        ``"nc3_self_duality"``.
      eps: RankMe epsilon of ``effective_rank``.

    Returns:
      A dict with NumPy float64 arrays and Python floats: ``counts`` [C],
      ``class_means`` [C, D], ``nc1``, ``equinorm``, ``equiangularity``,
      ``max_angle``, ``etf_distance``, ``cdnv`` (Galanti convention),
      ``cdnv_directional_bounds``, ``directional_cdnv`` (only with per-class
      second moments), ``zero_sum``, ``unit_norm``, ``equal_inner_product``
      (an ``EqualInnerProduct`` of floats), ``class_mean_spectrum``
      [min(C, D)], ``singular_values`` [min(N, D)] of the centred features,
      ``effective_rank`` of the centred features, and ``nc3_self_duality``
      when ``weights`` is given.

    Raises:
      ValueError: if no sample was added yet, or on bad arguments.
    """
    n = self.num_samples
    if n == 0:
      raise ValueError("No samples accumulated; call `update` first.")
    checks.check_positive(rcond, "rcond", allow_zero=True)
    checks.check_positive(eps, "eps", allow_zero=True)
    center = dp.normalize_center(center)
    w = None
    if weights is not None:
      w = np.asarray(weights)
      checks.check_rank(w, 2, "weights", "float[C, D]")
      checks.check_float(w, "weights")
      if w.shape != (self.num_classes, self.dim):
        raise ValueError(
            f"`weights` must have shape {(self.num_classes, self.dim)}; got "
            f"{w.shape}.")
      w = w.astype(np.float64)
    raw = metrics_from_moments(
        self.counts.astype(np.float64), self.sums, self.sq_norms,
        self.second_moment, np.zeros(self.dim), np, rcond=rcond,
        center=center, weights=w, eps=eps,
        class_second_moments=self.class_second_moments, num_samples=n)
    out: dict[str, Any] = {"counts": self.counts.copy()}
    for key, value in raw.items():
      if isinstance(value, jiang.EqualInnerProduct):
        value = jiang.EqualInnerProduct(*map(float, value))
      elif np.ndim(value) == 0:
        value = float(value)
      out[key] = value
    return out
