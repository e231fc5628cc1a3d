"""The checks of ``config.evals`` (and ``config.eval_batch_size``).

``check_run`` checks what holds for the whole run, ``check_entry`` one entry
of ``config.evals``, which it parses into a ``Spec``. Every error names the
config field and lists the valid choices.
"""

from __future__ import annotations

import inspect
from typing import Any, NamedTuple

import ml_collections
import numpy as np

from cljax.training.evaluators.registry import GENERIC_FIELDS
from cljax.training.evaluators.registry import REGISTRY


class Spec(NamedTuple):
  """One checked entry of ``config.evals``."""
  name: str            # the entry's name in config.evals
  kind: str            # its type, a key of REGISTRY
  every: int           # the cadence in steps (<= 0: never)
  final_only: bool
  fields: dict[str, Any]   # the evaluator's own fields


def _legacy_keys(config) -> list[str]:
  return [k for k in ("eval", "fit") if config.get(k, None) is not None]


def check_run(config, *, batch_size) -> None:
  """Checks the evaluation batch size and that no replaced section is set.

  Raises:
    ValueError: a batch size that is not a positive int, or the replaced
      ``config.eval`` / ``config.fit`` sections.
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


def check_entry(config, name: str, spec, *, default_every: int,
                has_labels: bool) -> Spec:
  """The entry ``config.evals.<name>`` = ``spec``, checked and parsed.

  Args:
    config: the run config.
    name: the entry's name.
    spec: its fields (a dict or ConfigDict).
    default_every: the cadence of an entry without ``every``
      (``config.eval_every``).
    has_labels: whether the dataset has labels.

  Raises:
    ValueError: ``spec`` not a dict, an unknown evaluator type or field, an
      evaluator that needs labels on a dataset without them, or an ``every``
      that is not an int.
  """
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
  return Spec(name, kind, int(every), bool(final_only), fields)
