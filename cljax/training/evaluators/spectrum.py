"""``type="spectrum"``: effective rank of the train features (no labels).

``eval/{h,z}/effective_rank`` (``cljax.geometry.effective_rank``) of the
encoder features h and the sphere-normalised head outputs z on the evaluation
subset of the training split. Fields: ``num_train``.
"""

from __future__ import annotations

from cljax import geometry
from cljax.training.evaluators import _base


class Evaluator(_base.SubsetEvaluator):
  """Effective rank of h and z on the train subset."""
  needs_labels = False

  def run(self, cache, *, step: int) -> dict[str, float]:
    del step
    train = cache.train(self.num_train)
    return {f"eval/{name}/effective_rank": geometry.effective_rank(
        train.get(name)) for name in ("h", "z")}
