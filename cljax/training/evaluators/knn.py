"""``type="knn"``: k-nearest-neighbour probe accuracy on the test split.

``eval/{h,z}/knn_test_acc``: the train subset (training labels) votes for
each clean test example (``cljax.probes.knn_accuracy``). Fields:
``num_train``, ``k`` (neighbours, default 20), ``metric`` ("cosine" or
"euclidean").
"""

from __future__ import annotations

from cljax import probes
from cljax.training.evaluators import _base


class Evaluator(_base.SubsetEvaluator):
  """kNN test accuracy of h and z."""

  def __init__(self, *, context, num_train: int | None = None, k: int = 20,
               metric: str = "cosine"):
    if not isinstance(k, int) or k < 1:
      raise ValueError(f"config.evals.{context.name}.k must be an int >= 1; "
                       f"got {k!r}.")
    super().__init__(context=context, num_train=num_train)
    self.k, self.metric = k, metric

  def run(self, cache, *, step: int) -> dict[str, float]:
    del step
    train, test = cache.train(self.num_train), cache.test()
    k = min(self.k, train.labels.shape[0])
    return {f"eval/{name}/knn_test_acc": probes.knn_accuracy(
        train.get(name), train.labels, test.get(name), test.labels, k=k,
        num_classes=self.num_classes, metric=self.metric)
            for name in ("h", "z")}
