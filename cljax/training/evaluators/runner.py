"""The runner of a run's evaluators: ``build`` it, then ``run`` it per step.

``build`` checks ``config.evals`` (``validate``), makes each entry's
evaluator of ``REGISTRY`` with its ``Context``, and returns the ``Runner``
that the loop asks, step by step, which evaluators are due and runs them on
one shared embedding of each split (``_features``).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from cljax.training.evaluators import _features
from cljax.training.evaluators import validate
from cljax.training.evaluators.registry import REGISTRY

# Examples per evaluation forward pass unless config.eval_batch_size says.
EVAL_BATCH_SIZE = 512


class Context(NamedTuple):
  """What an evaluator may read about the run (passed as ``context=``)."""
  name: str            # the entry's name in config.evals
  config: Any          # the run config (after with_classifier)
  num_classes: int | None
  model: Any
  input_shape: tuple
  input_mean: Any
  input_std: Any
  workdir: str
  batch_size: int = EVAL_BATCH_SIZE  # the evaluation forward-pass batch


class Evaluation(NamedTuple):
  """One step's evaluation: the metrics to log and the stop decision."""
  metrics: dict[str, float]
  stop: bool


class _Entry(NamedTuple):
  name: str
  every: int
  final_only: bool
  evaluator: Any

  def due(self, step: int, last: bool) -> bool:
    if self.every <= 0:
      return False
    return last or (not self.final_only and step % self.every == 0)


class Runner:
  """Runs the configured evaluators on the steps they are due (see ``build``).

  ``run(step, variables, last=...)`` embeds what the due evaluators need once
  and returns an ``Evaluation``; with nothing due it returns at once and
  touches no device array.
  """

  def __init__(self, entries: list, splits, embed):
    self._entries = entries
    self._splits = splits
    self._embed = embed

  @property
  def names(self) -> list[str]:
    return [e.name for e in self._entries]

  def resume(self, rows: list[dict]) -> None:
    """Restores what evaluators track across steps from the replayed rows."""
    for e in self._entries:
      if hasattr(e.evaluator, "resume"):
        e.evaluator.resume(rows)

  @property
  def stopped(self) -> bool:
    """Whether an evaluator has decided that the run ends (fit reached)."""
    return any(getattr(e.evaluator, "stop", False) for e in self._entries)

  def due(self, step: int, *, last: bool) -> bool:
    """Whether any evaluator runs at ``step``."""
    return any(e.due(step, last) for e in self._entries)

  def summary(self) -> dict[str, Any]:
    """The evaluators' contributions to summary.json (``fit/step``)."""
    out = {}
    for e in self._entries:
      if hasattr(e.evaluator, "summary"):
        out.update(e.evaluator.summary())
    return out

  def run(self, step: int, variables: Any, *, last: bool) -> Evaluation:
    """Runs the evaluators due at ``step`` (all of them when ``last``).

    The evaluators that can stop the run go first; when one decides to stop,
    this step becomes the last and the final-step evaluators run too.
    """
    due = [e for e in self._entries if e.due(step, last)]
    if not due:
      return Evaluation({}, False)
    plan = None
    for e in due:
      plan = _features._larger(plan, e.evaluator.train_rows(),
                               self._splits.x_train.shape[0])
    cache = _features.FeatureCache(self._splits, self._embed, variables,
                                   train_rows=plan)
    due.sort(key=lambda e: not hasattr(e.evaluator, "stop"))
    metrics = {}
    i = 0
    while i < len(due):
      metrics.update(due[i].evaluator.run(cache, step=step))
      i += 1
      if not last and self.stopped:
        # The stop makes this step the last: the final-step ones join.
        last = True
        due.extend(f for f in self._entries
                   if f not in due and f.due(step, True))
    return Evaluation({k: float(v) for k, v in metrics.items()},
                      self.stopped)


def build(config, *, data, model, workdir: str, mesh,
          batch_size: int = EVAL_BATCH_SIZE) -> Runner:
  """The evaluator runner of a run; validates ``config.evals`` first.

  Args:
    config: the run config (after ``with_classifier``).
    data: the training data pipeline (``num_classes``, ``train_arrays``,
      ``eval_split``, ``input_shape``, ``mean``, ``std``).
    model: the model.
    workdir: the run's directory.
    mesh: the run's ``("data",)`` mesh; evaluation batches are sharded on
      it and the variables stay replicated on it.
    batch_size: evaluation forward-pass batch (``config.eval_batch_size``).

  Raises:
    ValueError: an unknown evaluator type or field, a bad field value, an
      evaluator that needs labels on a dataset without them, a batch size
      that is not a positive int, or the replaced ``config.eval`` /
      ``config.fit`` sections.
  """
  validate.check_run(config, batch_size=batch_size)
  num_classes = getattr(data, "num_classes", None) or None
  has_labels = num_classes is not None and getattr(data, "has_labels", True)
  default_every = int(config.get("eval_every", 0) or 0)
  entries = []
  for name, fields in (config.get("evals", None) or {}).items():
    # Each entry is checked before it is made, so the first bad entry (in
    # config order) is the one reported, whether its type or its values.
    spec = validate.check_entry(config, name, fields,
                                default_every=default_every,
                                has_labels=has_labels)
    context = Context(
        name=name, config=config, num_classes=num_classes, model=model,
        input_shape=tuple(data.input_shape),
        input_mean=None if data.mean is None else np.asarray(data.mean),
        input_std=None if data.std is None else np.asarray(data.std),
        workdir=workdir, batch_size=int(batch_size))
    entries.append(_Entry(spec.name, spec.every, spec.final_only,
                          REGISTRY[spec.kind](context=context,
                                              **spec.fields)))
  live = [e for e in entries if e.every > 0]
  splits = _features.Splits(data, seed=config.seed) if live else None
  embed = _features.Embedder(model, mesh, batch_size=batch_size) if live \
      else None
  return Runner(entries, splits, embed)
