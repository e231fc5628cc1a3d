"""How close free features are to the geometry the theory predicts.

Collapse and simplex metrics of a solution ``z: float[N, K, dim]`` of
``cljax.unconstrained`` (augmentation collapse, within-class collapse,
simplex ETF, dimensional collapse), computed as one jitted function per
problem shape.

>>> import ml_collections, numpy as np
>>> config = ml_collections.ConfigDict({"num_classes": 2, "loss": {
...     "name": "nscl", "kwargs": {"normalize": "sphere"}}})
>>> z = np.array([[[1., 0.]], [[1., 0.]], [[-1., 0.]], [[-1., 0.]]])
>>> m = geometry_metrics(config, z, np.array([0, 0, 1, 1]))
>>> round(m["nc1"], 6), m["class_mean_rank"]
(0.0, 1)
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from cljax._src import engine
from cljax import geometry
from cljax.unconstrained.problem import _normalize_mode

# Spectrum values below this fraction of the largest count as collapsed
# directions in ``class_mean_rank`` (float32 round-off sits near 1e-7).
RANK_TOLERANCE = 1e-3


def features_of(config, z: Any) -> np.ndarray:
  """float[N, dim] features the loss sees: normalised, mean over views."""
  zn = engine.normalize(jnp.asarray(z), _normalize_mode(config))
  return np.asarray(jnp.mean(zn, axis=1))


def geometry_metrics(config: ml_collections.ConfigDict, z: Any,
                     labels: np.ndarray, w: Any = None) -> dict[str, Any]:
  """Collapse and simplex metrics of free features z: float[N, K, dim].

  Features are taken after the loss's normalisation and averaged over views.
  Scalars are NaN where undefined (fewer than two non-empty classes).

  Returns:
    nc1, etf_distance, max_angle (Papyan, centred), P3's zero_sum, unit_norm,
    equal_inner_product (mean/max, raw means), within_class_distance,
    effective_rank of the class means, their spectrum and class_mean_rank
    (spectrum values above RANK_TOLERANCE of the largest; P3's DC view),
    augmentation_collapse (K >= 2), mean feature norm, class_mean_cosines
    (C x C, raw means) and, for cross-entropy, the self-duality NC3.
  """
  c = config.num_classes
  arrays = jax.device_get(_geometry_arrays(
      jnp.asarray(z), jnp.asarray(labels), None if w is None else
      jnp.asarray(w), num_classes=c, normalize=_normalize_mode(config)))
  present = np.bincount(labels, minlength=c) > 0
  means = arrays.pop("means")[present]
  unit = means / np.maximum(np.linalg.norm(means, axis=1, keepdims=True),
                            1e-12)
  spectrum = arrays.pop("class_mean_spectrum")
  out = {k: float(v) for k, v in arrays.items()}
  out.update({
      "effective_rank": float(geometry.effective_rank(means)),
      "class_mean_spectrum": spectrum.tolist(),
      # P3 reads dimensional collapse off a cliff in this spectrum.
      "class_mean_rank": int(np.sum(
          spectrum > RANK_TOLERANCE * max(float(spectrum[0]), 1e-30))),
      "class_mean_cosines": (unit @ unit.T).tolist(),
  })
  return out


@functools.partial(jax.jit, static_argnames=("num_classes", "normalize"))
def _geometry_arrays(z, labels, w, *, num_classes, normalize):
  """The metrics of ``geometry_metrics`` as one jitted computation.

  One compilation per problem shape instead of one per metric: the metrics
  dominate the compile time of a seconds-long run.
  """
  c = num_classes
  zn = engine.normalize(z, normalize)
  feats = jnp.mean(zn, axis=1)
  eip = geometry.equal_inner_product(feats, labels, num_classes=c)
  out = {
      "nc1": geometry.nc1(feats, labels, num_classes=c),
      "etf_distance": geometry.etf_distance(feats, labels, num_classes=c),
      "max_angle": geometry.max_angle(feats, labels, num_classes=c),
      "zero_sum": geometry.zero_sum(feats, labels, num_classes=c),
      "unit_norm": geometry.unit_norm(feats, labels, num_classes=c),
      "equal_inner_product": eip.mean,
      "equal_inner_product_max": eip.max,
      "within_class_distance": geometry.within_class_distance(
          feats, labels, num_classes=c),
      "feature_norm": jnp.mean(jnp.linalg.norm(zn, axis=-1)),
      "means": geometry.class_means(feats, labels, num_classes=c),
      "class_mean_spectrum": geometry.class_mean_spectrum(
          feats, labels, num_classes=c),
  }
  if zn.shape[1] >= 2:
    out["augmentation_collapse"] = geometry.augmentation_collapse(
        zn)["view_variance"]
  if w is not None:
    out["nc3_self_duality"] = geometry.nc3_self_duality(
        feats, labels, w, num_classes=c)
  return out
