"""``type="fewshot"``: few-shot NCC episodes on the test split (P1).

``eval/{h,z}/fewshot_{W}way_{S}shot_ncc_acc``: the mean NCC accuracy over
``episodes`` random ``W``-way ``S``-shot episodes drawn from the clean test
features (``cljax.probes.fewshot_episodes``; key from ``config.seed``, so
every evaluation draws the same episodes). ``W = min(ways, classes)``.
Fields: ``shots`` (5), ``ways`` (5, >= 2), ``episodes`` (100), ``features``
(``("h", "z")``: which features to report).
"""

from __future__ import annotations

import jax

from cljax import probes
from cljax.training.evaluators import _base


class Evaluator:
  """Few-shot NCC accuracy of h and / or z."""
  needs_labels = True

  def __init__(self, *, context, shots: int = 5, ways: int = 5,
               episodes: int = 100, features=_base.FEATURES):
    if ways < 2:
      raise ValueError(
          f"config.evals.{context.name}.ways={ways}: an episode needs >= 2 "
          f"ways; remove the evaluator from config.evals to turn it off.")
    self.num_classes = context.num_classes
    self.ways = min(int(ways), self.num_classes)
    self.shots, self.episodes = int(shots), int(episodes)
    self.seed = int(context.config.seed)
    self.features = _base.check_features(context.name, features)

  def train_rows(self):
    return None

  def run(self, cache, *, step: int) -> dict[str, float]:
    del step
    test = cache.test()
    out = {}
    if self.ways < 2:  # A one-class dataset has no episodes.
      return out
    for name in self.features:
      episodes = probes.fewshot_episodes(
          test.get(name), test.labels, shots=self.shots, ways=self.ways,
          num_episodes=self.episodes, key=jax.random.key(self.seed),
          num_classes=self.num_classes, classifier=None)
      out[f"eval/{name}/fewshot_{self.ways}way_{self.shots}shot_ncc_acc"] = (
          episodes.mean_ncc_accuracy)
    return out
