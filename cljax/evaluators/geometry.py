"""``type="geometry"``: neural-collapse metrics of the train features.

``eval/{h,z}/nc1``, ``etf_distance``, ``cdnv`` and ``directional_cdnv``
(``cljax.geometry``) of the encoder features h and the sphere-normalised head
outputs z on the evaluation subset of the training split (its training
labels). Fields: ``num_train`` (subset size; None = the whole split).
"""

from __future__ import annotations

from cljax import geometry
from cljax.evaluators import _base


class Evaluator(_base.SubsetEvaluator):
  """NC metrics of h and z on the train subset."""

  def run(self, cache, *, step: int) -> dict[str, float]:
    del step
    train = cache.train(self.num_train)
    c = self.num_classes
    out = {}
    for name in ("h", "z"):
      f, y = train.get(name), train.labels
      out[f"eval/{name}/nc1"] = geometry.nc1(f, y, num_classes=c)
      out[f"eval/{name}/etf_distance"] = geometry.etf_distance(
          f, y, num_classes=c)
      out[f"eval/{name}/cdnv"] = geometry.cdnv(f, y, num_classes=c)
      out[f"eval/{name}/directional_cdnv"] = geometry.directional_cdnv(
          f, y, num_classes=c)
    return out
