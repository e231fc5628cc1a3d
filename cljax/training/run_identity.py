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
import math
import numbers
import os
import tempfile

import jax
import jax.numpy as jnp
import numpy as np

from cljax.analysis import checkpoints
from cljax.training import checkpoint as ckpt_lib
from cljax.training import errors
from cljax import losses
from cljax.training import train_step
from cljax.data import sources
from cljax.training import objective
from cljax.training.objective import is_cross_entropy
from cljax.losses import registry

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
  _check_hyper_parameters(config)
  mistake = anchor_mistake(config)
  if mistake:
    raise ValueError(mistake)


def check_start(config, workdir: str, num_devices: int) -> None:
  """Every check of a run that needs neither its data nor a trace.

  ``train.train_and_evaluate`` calls it before it writes anything, so a
  mistake found here leaves ``workdir`` as it was (or absent).

  Args:
    config: the run config.
    workdir: the run's directory (need not exist).
    num_devices: the size of the data mesh.

  Raises:
    ValueError: naming the field (or the work dir) and the fix.
  """
  check_config(config, num_devices)
  try:
    sources.check_prepared(config.data.name, config.data.get("data_dir"))
  except sources.DatasetNotPreparedError as e:
    raise errors.ConfigError(
        f"config.data.name={config.data.name!r}: {e}") from None
  check_workdir(workdir)


def _number(value, field: str, *, low: float, allow_low: bool) -> None:
  ok = (isinstance(value, numbers.Real) and not isinstance(value, bool) and
        math.isfinite(value) and (value >= low if allow_low else value > low))
  if not ok:
    bound = f">= {low:g}" if allow_low else f"> {low:g}"
    raise ValueError(f"{field} must be a finite number {bound}; got "
                     f"{value!r}.")


def _check_hyper_parameters(config) -> None:
  """The loss's and the monitor's hyper-parameters, as the step will see
  them: named checks for temperature and beta, then the loss and the
  monitored losses traced abstractly (``jax.eval_shape``, nothing runs) for
  whatever else they reject (an unknown kwarg, an option out of range)."""
  kwargs = dict(config.loss.get("kwargs", {}))
  if "temperature" in kwargs:
    _number(kwargs["temperature"], "config.loss.kwargs.temperature (the "
            "softmax temperature; e.g. 0.5)", low=0, allow_low=False)
  if "beta" in kwargs:
    _number(kwargs["beta"], "config.loss.kwargs.beta (the hardness; 0 is "
            "the unweighted loss)", low=0, allow_low=True)
  monitor = config.monitor
  _number(monitor.temperature, "config.monitor.temperature (the temperature "
          "of the monitored losses; Luthra et al.: 1.0)", low=0,
          allow_low=False)
  if monitor.get("beta", None) is not None:
    _number(monitor.beta, "config.monitor.beta (the hardness of the "
            "monitored HSCL/HUCL; leave it unset to skip them)", low=0,
            allow_low=True)
  b, k = int(config.data.batch_size), int(config.data.num_views)
  z = jax.ShapeDtypeStruct((b, k, 8), jnp.float32)
  labels = jax.ShapeDtypeStruct((b,), jnp.int32)
  key = jax.eval_shape(lambda: jax.random.key(0))
  if not is_cross_entropy(config):
    name = config.loss.name
    needs_key = losses.spec(name).needs_key_for(kwargs)

    def loss(z, y, key):
      return losses.get(name)(z, y, **kwargs,
                              **({"key": key} if needs_key else {}))
    try:
      jax.eval_shape(loss, z, labels, key)
    except (TypeError, ValueError) as e:
      raise ValueError(
          f"config.loss.kwargs={kwargs}: the loss {name!r} rejects them: "
          f"{' '.join(str(e).split())}") from None
  try:
    jax.eval_shape(lambda h, z, y, key: train_step.loss_and_monitors(
        h, z, y, config, key), z, z, labels, key)
  except (TypeError, ValueError) as e:
    raise ValueError(f"config.monitor: the monitored losses reject it: "
                     f"{' '.join(str(e).split())}") from None


def anchor_mistake(config, labels=None) -> str | None:
  """Why no step of ``config`` can have a valid anchor, if that is certain.

  A loss with no valid anchor in a batch is 0 with a zero gradient, so a
  config whose every batch lacks what the loss's anchors need
  (``losses.registry.anchor_needs``) would run to its end without training.
  Certain are: one sample per batch, for every loss that needs another
  sample or class; one class, for the losses whose negatives (or, with
  ``same_class_weight=0``, SupCon's denominator) are other classes; and,
  once the data tells its C classes, batches of at most C samples from the
  ``"balanced"`` sampler, which holds each class at most once, for a
  single-view loss whose positives are other samples of the class. Other
  combinations depend on the batches drawn (the loop stops at a logged
  step with none).

  Args:
    config: the run config.
    labels: int[N] training labels (after any class subset and label noise),
      once the data is built; None: only ``config.data.classes`` tells the
      classes (one class is certain from it, the number of classes present
      is not).

  Returns:
    A one-line message naming the batch size, the loss and the fix, or None.
  """
  if is_cross_entropy(config):
    return None
  name = config.loss.name
  batch, views = int(config.data.batch_size), int(config.data.num_views)
  sampler = config.data.get("sampler", "shuffle")
  needs = registry.anchor_needs(name, dict(config.loss.get("kwargs", {})),
                                views)
  if not needs:
    return None
  classes = config.data.get("classes", None)
  if labels is not None:
    num_classes = int(np.unique(np.asarray(labels)).size)
  elif isinstance(classes, (tuple, list)):
    num_classes = 1 if len(set(classes)) == 1 else None
  else:
    # classes=k keeps the first k classes: one class is certain, while k
    # classes need not all be present.
    num_classes = 1 if classes == 1 else None
  head = (f"config.data.batch_size={batch} with the loss {name!r} "
          f"(config.data.num_views={views}, sampler {sampler!r}) gives no "
          f"step a valid anchor: each anchor needs")
  tail = ("so every step would have loss 0 and gradient 0 and the run "
          "would train nothing")
  if batch == 1:
    fix = "set config.data.batch_size >= 2"
    if registry.ANOTHER_CLASS in needs:
      fix += (" with config.data.sampler='balanced' (every batch then "
              "holds two classes)")
    if registry.SAME_CLASS_SAMPLE in needs:
      fix += (" (above the number of classes with config.data.sampler="
              "'balanced'), or config.data.num_views >= 2")
    return (f"{head} {needs[0]} in its batch, and a batch holds one "
            f"sample; {tail}. Fix: {fix}.")
  if num_classes == 1 and registry.ANOTHER_CLASS in needs:
    return (f"{head} {registry.ANOTHER_CLASS} in its batch, and the "
            f"training data has one class; {tail}. Fix: train on >= 2 "
            f"classes (config.data.classes), or use a loss without class "
            f"negatives such as 'dcl'.")
  if (registry.SAME_CLASS_SAMPLE in needs and sampler == "balanced" and
      num_classes is not None and batch <= num_classes):
    return (f"{head} {registry.SAME_CLASS_SAMPLE} in its batch, and the "
            f"balanced sampler puts {batch} <= {num_classes} samples of "
            f"distinct classes in each batch; {tail}. Fix: set "
            f"config.data.batch_size > {num_classes} (e.g. "
            f"{2 * num_classes}), or config.data.num_views >= 2.")
  return None


def check_workdir(workdir: str) -> None:
  """Fails unless a run can create (or use) ``workdir``; writes nothing there.

  The work dir must be a directory, or creatable: its nearest existing
  parent must be a directory that accepts a new entry (tried with a
  temporary directory, removed at once, since permissions alone do not
  tell: /proc and /sys refuse root too). An existing
  ``<workdir>/checkpoints`` must be a directory.

  Raises:
    ValueError: naming the path and the fix.
  """
  path = os.path.abspath(workdir)
  fix = "pass another --workdir"
  if os.path.exists(path) and not os.path.isdir(path):
    raise ValueError(f"The work dir {workdir!r} is a file, not a "
                     f"directory; {fix}.")
  parent = path
  while not os.path.exists(parent):
    parent = os.path.dirname(parent)
  if not os.path.isdir(parent):
    raise ValueError(f"The work dir {workdir!r} cannot be created: "
                     f"{parent!r} is a file; {fix}.")
  try:
    # The probe lives in the nearest existing directory (the work dir
    # itself when it exists) and is gone at once: the listing is unchanged.
    os.rmdir(tempfile.mkdtemp(prefix=".cljax-probe-", dir=parent))
  except OSError as e:
    where = ("is not writable" if parent == path else
             f"cannot be created in {parent!r}")
    raise ValueError(
        f"The work dir {workdir!r} {where} ({e.strerror or e}); {fix} on a "
        f"writable file system.") from None
  checkpoints = os.path.join(path, "checkpoints")
  if os.path.exists(checkpoints) and not os.path.isdir(checkpoints):
    raise ValueError(
        f"{checkpoints!r} is a file, where the run keeps its checkpoint "
        f"directory; move it away, or {fix}.")


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
  saved = checkpoints.read_json(os.path.join(workdir, "config.json"))
  if saved is None or not checkpoints.saved_steps(workdir):
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
  summary = checkpoints.read_json(os.path.join(workdir, "summary.json"))
  steps = checkpoints.saved_steps(workdir)
  if summary is None or not steps or summary.get("interrupted", False):
    return None
  if summary.get("step") != max(steps) or not checkpoints.looks_intact(
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
