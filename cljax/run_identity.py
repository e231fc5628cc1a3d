"""What a run is, and whether it can start or resume in a work dir.

A work dir holds one run. Before the training loop writes anything it checks
here that the config can run at all (``check_config``), that a work dir with
checkpoints holds the same run (``check_resume``: only ``RESUMABLE_FIELDS``
may change) and whether that run has already finished
(``finished_summary``). The config is stored as ``config_json`` so that the
comparison of a later resume sees exactly what was saved.

>>> config_changes({"seed": 0, "steps": 10}, {"seed": 1, "steps": 20})
['seed: 0 -> 1']
"""

from __future__ import annotations

import fnmatch
import json
import os

from cljax import checkpoint as ckpt_lib
from cljax import errors
from cljax import losses
from cljax.evaluators import is_cross_entropy
from cljax.evaluators import objective

# Fields a resumed run may change: how long it trains and how often it logs,
# evaluates and checkpoints, the evaluation forward-pass batch (memory only),
# and the device count (checkpoints restore onto any topology). Any other
# change would mix two runs in one work dir.
RESUMABLE_FIELDS = ("steps", "epochs", "log_every", "eval_every", "evals.*.every",
                    "checkpoint.every", "checkpoint.keep", "num_devices",
                    "eval_batch_size")


def check_config(config, num_devices: int) -> None:
  """Fails at start, with the fix, on a config that cannot run.

  Args:
    config: the run config (``experiments/default.py`` schema).
    num_devices: the size of the data mesh the global batch is split over.

  Raises:
    ValueError: naming the field and the fix.
  """
  head = config.model.get("head", "none")
  if is_cross_entropy(config):
    if head not in ("none", "classifier"):
      raise ValueError(
          f"config.loss.name='cross_entropy' puts a linear classifier on the "
          f"encoder features (P2 has no projection head), but "
          f"config.model.head={head!r}; set config.model.head='none' and "
          f"choose the variant in config.classifier.")
  elif config.loss.name not in losses.LOSSES:
    raise ValueError(
        f"Unknown config.loss.name {config.loss.name!r}; choose one of "
        f"{sorted(losses.LOSSES) + [objective.CROSS_ENTROPY]}.")
  elif head == "classifier":
    raise ValueError(
        f"config.model.head='classifier' outputs logits, which the "
        f"contrastive loss {config.loss.name!r} would treat as embeddings; "
        f"use config.loss.name='cross_entropy' or another head.")
  kwargs = dict(config.loss.get("kwargs", {}))
  spec = None if is_cross_entropy(config) else losses.spec(config.loss.name)
  if spec is not None and config.data.num_views < spec.min_views_for(kwargs):
    raise ValueError(
        f"config.data.num_views={config.data.num_views} but the loss "
        f"{config.loss.name!r} takes its positives from other views: set "
        f"config.data.num_views >= {spec.min_views_for(kwargs)}.")
  missing = [k for k in (spec.required if spec else ()) if k not in kwargs]
  if missing:
    raise ValueError(
        f"config.loss.name={config.loss.name!r} requires "
        f"config.loss.kwargs to set {missing} (e.g. beta=5.0).")
  for field in ("log_every", "eval_every"):
    value = config.get(field)
    if not isinstance(value, int) or isinstance(value, bool):
      raise ValueError(f"config.{field} must be an integer; got {value!r}.")
  if config.log_every < 1:
    raise ValueError(
        f"config.log_every must be >= 1 (log every that many steps); got "
        f"{config.log_every}.")
  ckpt_lib.check_options(every=config.checkpoint.every,
                         keep=config.checkpoint.get("keep", 3))
  if config.data.batch_size % num_devices:
    raise ValueError(
        f"config.data.batch_size={config.data.batch_size} is not divisible by "
        f"the {num_devices} devices; use a multiple of {num_devices}.")
  epochs = config.get("epochs", None)
  if epochs is None and config.steps < 1:
    raise ValueError(f"config.steps must be >= 1; got {config.steps}.")
  if epochs is not None and epochs <= 0:
    raise ValueError(f"config.epochs must be > 0; got {epochs}.")


def config_json(config) -> str:
  """The config as stored in ``config.json`` (sorted keys)."""
  return config.to_json(sort_keys=True) if hasattr(config, "to_json") else (
      json.dumps(config, sort_keys=True))


def flatten(tree, prefix="") -> dict:
  """``{"a.b": leaf}`` for a nested dict.

  >>> flatten({"optim": {"learning_rate": 0.1}, "seed": 0})
  {'optim.learning_rate': 0.1, 'seed': 0}
  """
  if isinstance(tree, dict):
    out = {}
    for key, value in tree.items():
      out.update(flatten(value, f"{prefix}{key}."))
    return out
  return {prefix[:-1]: tree}


def config_changes(saved: dict, requested: dict) -> list[str]:
  """The fields outside ``RESUMABLE_FIELDS`` where two configs differ.

  Args:
    saved, requested: ``config.to_json`` round-tripped through ``json``.

  Returns:
    ``["field: saved -> requested", ...]`` sorted by field.
  """
  old, new = flatten(saved), flatten(requested)
  missing = "<absent>"
  changed = []
  for field in sorted(set(old) | set(new)):
    if any(fnmatch.fnmatchcase(field, f) or field.startswith(f + ".")
           for f in RESUMABLE_FIELDS):
      continue
    a, b = old.get(field, missing), new.get(field, missing)
    if a != b:
      changed.append(f"{field}: {a!r} -> {b!r}")
  return changed


def check_resume(workdir: str, config) -> None:
  """Refuses to resume a work dir whose saved config differs (before writing).

  Raises:
    ResumeMismatchError: listing every changed field.
  """
  saved = ckpt_lib.read_json(os.path.join(workdir, "config.json"))
  if saved is None or not ckpt_lib.saved_steps(workdir):
    return
  changed = config_changes(saved, json.loads(config_json(config)))
  if changed:
    shown = changed[:12] + ([f"... and {len(changed) - 12} more"]
                            if len(changed) > 12 else [])
    raise errors.ResumeMismatchError(
        f"{workdir} holds a run with another config, so it cannot resume "
        f"there; changed: {'; '.join(shown)}. Only "
        f"{', '.join(RESUMABLE_FIELDS)} may change on resume: use a new "
        f"--workdir, or set these fields back.")


def finished_summary(workdir: str, config, num_steps: int) -> dict | None:
  """The saved summary when ``workdir`` holds this run, finished; else None.

  Finished: its summary.json records an uninterrupted end at the latest
  checkpoint, at ``num_steps`` or at the fit step of a ``fit`` evaluator
  with ``stop=True``.
  """
  summary = ckpt_lib.read_json(os.path.join(workdir, "summary.json"))
  steps = ckpt_lib.saved_steps(workdir)
  if summary is None or not steps or summary.get("interrupted", False):
    return None
  if summary.get("step") != max(steps) or not ckpt_lib.looks_intact(
      workdir, max(steps)):
    return None
  stops_at_fit = any(
      entry.get("type", name) == "fit" and entry.get("stop", False)
      for name, entry in (config.get("evals", None) or {}).items())
  stopped_at_fit = stops_at_fit and summary.get("fit/step") is not None
  return summary if summary["step"] >= num_steps or stopped_at_fit else None


def setup_error(error: ValueError) -> errors.ConfigError:
  """Set-up ValueErrors (unknown names, bad values) are config mistakes."""
  if isinstance(error, errors.ConfigError):
    return error
  return errors.ConfigError(str(error))
