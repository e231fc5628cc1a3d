"""Evaluators as plug-ins, chosen by name in ``config.evals`` (big_vision).

``config.evals`` is a ConfigDict ``name -> fields``; each entry runs one
evaluator of ``REGISTRY``::

  config.eval_every = 100          # the default cadence (0: no evaluation)
  config.evals = ml_collections.ConfigDict({
      "geometry": {"type": "geometry", "num_train": 2000},
      "probe": {"type": "linear_probe", "steps": 300, "final_only": True},
      "fit": {"type": "fit", "every": 25, "threshold": 1.0, "stop": True},
  })

Fields every entry understands:

- ``type``: the evaluator, a key of ``REGISTRY`` (default: the entry's name);
- ``every``: run every this many steps and at the last step (default
  ``config.eval_every``; ``<= 0``: never, not even at the end);
- ``final_only``: run at the last step only.

The rest are the evaluator's own fields (its module docstring lists them).
``standard()`` gives the usual set. An unknown name or field, or an
evaluator that needs labels on a dataset without them, fails when the run
starts, listing the valid choices.

Each evaluation step embeds each split at most once, with the variables left
on the device (``_features``), and the due evaluators share those features:
when the fit measure and an evaluation fall on the same step, the train split
is embedded once and the evaluation subset is read from it. Metric names are
those of the logged rows (``eval/h/...``, ``eval/z/...``,
``eval/simplex/...``, ``fit/...``).
"""

from __future__ import annotations

import inspect
from typing import Any, NamedTuple

import ml_collections
import numpy as np

from cljax.training.evaluators import _features
from cljax.training.evaluators import dataset_gap
from cljax.training.evaluators import fewshot
from cljax.training.evaluators import fit
from cljax.training.evaluators import geometry
from cljax.training.evaluators import knn
from cljax.training.evaluators import linear_probe
from cljax.training.evaluators import ncc
from cljax.training.evaluators import objective
from cljax.training.evaluators import simplex
from cljax.training.evaluators import spectrum
from cljax.training.evaluators.fit import first_fit_step
from cljax.training.evaluators.objective import is_cross_entropy
from cljax.training.evaluators.objective import objective_features
from cljax.training.evaluators.objective import with_classifier
from cljax.training.evaluators.simplex import simplex_geometry

REGISTRY = {
    "geometry": geometry.Evaluator,
    "spectrum": spectrum.Evaluator,
    "ncc": ncc.Evaluator,
    "knn": knn.Evaluator,
    "linear_probe": linear_probe.Evaluator,
    "fewshot": fewshot.Evaluator,
    "simplex": simplex.Evaluator,
    "fit": fit.Evaluator,
    "dataset_gap": dataset_gap.Evaluator,
}
GENERIC_FIELDS = ("type", "every", "final_only")

__all__ = ["REGISTRY", "Context", "Evaluation", "Runner", "build", "standard",
           "first_fit_step", "is_cross_entropy", "objective_features",
           "simplex_geometry", "with_classifier", "objective"]


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


def standard(*, num_train: int | None = 2000, shots: int = 5, ways: int = 5,
             episodes: int = 100, linear_probe_steps: int = 300,
             linear_probe_learning_rate: float = 1e-2
             ) -> ml_collections.ConfigDict:
  """The usual ``config.evals``: geometry, spectrum, NCC, few-shot, simplex
  and (at the end) the linear probe.

  The entries share one ``num_train`` (a ``FieldReference``: setting it on
  one sets it on all), so they read one embedded subset. ``episodes=0``
  leaves out the few-shot episodes, ``linear_probe_steps=0`` the probe.

  >>> evals = standard(num_train=300, linear_probe_steps=0)
  >>> sorted(evals)
  ['fewshot', 'geometry', 'ncc', 'simplex', 'spectrum']
  >>> evals.ncc.num_train = 100; evals.geometry.num_train
  100
  """
  subset = ml_collections.FieldReference(num_train, field_type=int)

  def entry(kind, **fields):
    # Every generic field is present, so a locked config (the command line)
    # accepts --config.evals.<name>.every=0.
    return ml_collections.ConfigDict(
        {"type": kind, "every": ml_collections.config_dict.placeholder(int),
         "final_only": False, **fields})

  evals = ml_collections.ConfigDict()
  for name in ("geometry", "spectrum", "ncc"):
    evals[name] = entry(name, num_train=subset)
  if episodes:
    evals.fewshot = entry("fewshot", shots=shots, ways=ways,
                          episodes=episodes)
  if linear_probe_steps:
    evals.linear_probe = entry(
        "linear_probe", num_train=subset, steps=linear_probe_steps,
        learning_rate=linear_probe_learning_rate)
    evals.linear_probe.final_only = True
  evals.simplex = entry("simplex", num_train=subset)
  return evals


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


def _legacy_keys(config) -> list[str]:
  return [k for k in ("eval", "fit") if config.get(k, None) is not None]


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
  if (not isinstance(batch_size, (int, np.integer))
      or isinstance(batch_size, bool) or batch_size < 1):
    raise ValueError(
        f"config.eval_batch_size must be a positive int (examples per "
        f"evaluation forward pass; lower it if evaluation runs out of "
        f"memory); got {batch_size!r}.")
  legacy = _legacy_keys(config)
  if legacy:
    raise ValueError(
        f"config.{' and config.'.join(legacy)} were replaced by config.evals "
        f"(evaluators by name: see cljax.training.evaluators and experiments/"
        f"default.py); move their fields there.")
  num_classes = getattr(data, "num_classes", None) or None
  has_labels = num_classes is not None and getattr(data, "has_labels", True)
  default_every = int(config.get("eval_every", 0) or 0)
  entries = []
  for name, spec in (config.get("evals", None) or {}).items():
    if not isinstance(spec, (dict, ml_collections.ConfigDict)):
      raise ValueError(f"config.evals.{name} must be a dict of fields "
                       f"(type, every, ...); got {spec!r}.")
    fields = dict(spec.to_dict() if hasattr(spec, "to_dict") else spec)
    kind = fields.pop("type", name)
    if kind not in REGISTRY:
      raise ValueError(f"Unknown evaluator {kind!r} (config.evals.{name}); "
                       f"valid names: {sorted(REGISTRY)}.")
    cls = REGISTRY[kind]
    if cls.needs_labels and not has_labels:
      free = sorted(k for k, c in REGISTRY.items() if not c.needs_labels)
      raise ValueError(
          f"Evaluator {kind!r} (config.evals.{name}) needs labels, and the "
          f"dataset {config.data.get('name', '')!r} has none; valid names "
          f"without labels: {free}.")
    every = fields.pop("every", None)
    every = default_every if every is None else every
    final_only = fields.pop("final_only", False)
    if not isinstance(every, (int, np.integer)) or isinstance(every, bool):
      raise ValueError(f"config.evals.{name}.every must be an int (steps; "
                       f"<= 0: never); got {every!r}.")
    valid = [p for p in inspect.signature(cls).parameters if p != "context"]
    unknown = sorted(set(fields) - set(valid))
    if unknown:
      raise ValueError(
          f"Unknown fields {unknown} in config.evals.{name} (type {kind!r}); "
          f"valid: {sorted(valid + list(GENERIC_FIELDS))}.")
    context = Context(
        name=name, config=config, num_classes=num_classes, model=model,
        input_shape=tuple(data.input_shape),
        input_mean=None if data.mean is None else np.asarray(data.mean),
        input_std=None if data.std is None else np.asarray(data.std),
        workdir=workdir, batch_size=int(batch_size))
    entries.append(_Entry(name, int(every), bool(final_only),
                          cls(context=context, **fields)))
  live = [e for e in entries if e.every > 0]
  splits = _features.Splits(data, seed=config.seed) if live else None
  embed = _features.Embedder(model, mesh, batch_size=batch_size) if live \
      else None
  return Runner(entries, splits, embed)
