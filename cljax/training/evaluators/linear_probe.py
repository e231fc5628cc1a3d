"""``type="linear_probe"``: a linear classifier trained on frozen features.

``eval/{h,z}/linear_probe_test_acc``: ``cljax.probes.linear_probe`` trained
on the train subset (training labels) and tested on the clean test split
(key from ``config.seed``). The probe is the costly evaluator; configs run
it at the end only (``final_only=True``). Fields: ``num_train``, ``steps``
(>= 1), ``learning_rate`` (1e-2), ``features`` (``("h", "z")``: which
features to probe).
"""

from __future__ import annotations

import jax

from cljax import probes
from cljax.training.evaluators import _base


class Evaluator(_base.SubsetEvaluator):
  """Linear-probe test accuracy of h and / or z."""

  def __init__(self, *, context, num_train: int | None = None,
               steps: int = 300, learning_rate: float = 1e-2,
               features=_base.FEATURES):
    if not isinstance(steps, int) or steps < 1:
      raise ValueError(
          f"config.evals.{context.name}.steps must be an int >= 1; got "
          f"{steps!r} (set its every=0 or remove it to turn it off).")
    super().__init__(context=context, num_train=num_train)
    self.steps, self.learning_rate = steps, float(learning_rate)
    self.features = _base.check_features(context.name, features)

  def run(self, cache, *, step: int) -> dict[str, float]:
    del step
    train, test = cache.train(self.num_train), cache.test()
    out = {}
    for name in self.features:
      probe = probes.linear_probe(
          train.get(name), train.labels, test.get(name), test.labels,
          num_classes=self.num_classes, key=jax.random.key(self.seed),
          steps=self.steps, learning_rate=self.learning_rate)
      out[f"eval/{name}/linear_probe_test_acc"] = probe.test_accuracy
    return out
