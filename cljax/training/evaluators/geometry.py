"""``type="geometry"``: neural-collapse metrics of the train features.

``eval/{h,z}/nc1``, ``etf_distance``, ``cdnv`` and ``directional_cdnv``
(``cljax.geometry``) of the encoder features h and the sphere-normalised head
outputs z on the evaluation subset of the training split (its training
labels). Fields: ``num_train`` (subset size; None = the whole split).
"""

from __future__ import annotations

import functools

import jax

from cljax import geometry
from cljax.training.evaluators import _base

METRICS = {"nc1": geometry.nc1, "etf_distance": geometry.etf_distance,
           "cdnv": geometry.cdnv, "directional_cdnv": geometry.directional_cdnv}


@functools.partial(jax.jit, static_argnames="num_classes")
def _collapse_metrics(features, labels, *, num_classes: int) -> dict:
  # One program per feature width, not one per metric: the main job compiled
  # eight of them, a second of its start-up.
  return {name: fn(features, labels, num_classes=num_classes)
          for name, fn in METRICS.items()}


class Evaluator(_base.SubsetEvaluator):
  """NC metrics of h and z on the train subset."""

  def run(self, cache, *, step: int) -> dict[str, float]:
    del step
    train = cache.train(self.num_train)
    out = {}
    for name in ("h", "z"):
      values = _collapse_metrics(train.get(name), train.labels,
                                 num_classes=self.num_classes)
      out.update({f"eval/{name}/{k}": v for k, v in values.items()})
    return out
