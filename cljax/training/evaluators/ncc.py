"""``type="ncc"``: nearest-class-centre probe accuracies.

``eval/{h,z}/ncc_train_acc`` and ``ncc_test_acc``: class centres from the
train subset (training labels), accuracy on the same subset and on the clean
test split (``cljax.probes.ncc_accuracy``). Fields: ``num_train``.
"""

from __future__ import annotations

from cljax import probes
from cljax.training.evaluators import _base


class Evaluator(_base.SubsetEvaluator):
  """NCC accuracy of h and z, train subset and test split."""

  def run(self, cache, *, step: int) -> dict[str, float]:
    del step
    train, test = cache.train(self.num_train), cache.test()
    out = {}
    for name in ("h", "z"):
      f, y = train.get(name), train.labels
      out[f"eval/{name}/ncc_train_acc"] = probes.ncc_accuracy(
          f, y, f, y, num_classes=self.num_classes)
      out[f"eval/{name}/ncc_test_acc"] = probes.ncc_accuracy(
          f, y, test.get(name), test.labels, num_classes=self.num_classes)
    return out
