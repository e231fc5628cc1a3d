"""The shared start of the evaluators that read the train subset."""

from __future__ import annotations


FEATURES = ("h", "z")


def check_features(name: str, features) -> tuple[str, ...]:
  """``features`` as a tuple of distinct names of ``FEATURES``.

  Raises:
    ValueError: naming ``config.evals.<name>.features`` and the valid values.
  """
  got = (features,) if isinstance(features, str) else tuple(features)
  if not got or len(set(got)) != len(got) or not set(got) <= set(FEATURES):
    raise ValueError(
        f"config.evals.{name}.features={features!r}: give distinct names "
        f"from {FEATURES}, e.g. ('h',) for the encoder features only.")
  return got


class SubsetEvaluator:
  """Keeps the run's facts and the train-subset size (``num_train``).

  Subclasses define ``needs_labels`` and ``run(cache, *, step)``; the
  runner asks ``train_rows()`` how much of the train split to embed.
  """
  needs_labels = True

  def __init__(self, *, context, num_train: int | None = None):
    self.config, self.num_classes = context.config, context.num_classes
    self.seed = int(context.config.seed)
    self.num_train = num_train

  def train_rows(self):
    return self.num_train
