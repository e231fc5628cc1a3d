"""Read a training run's work dir for analysis: config, metrics, model.

Layout of a work dir (written by ``cljax.training``)::

  <workdir>/config.json            the run's config (readable without orbax)
  <workdir>/metrics.jsonl          one JSON object per logged step
  <workdir>/checkpoints/<step>/    orbax Composite, finalised atomically
      model/   {"params", "batch_stats"}   (StandardSave)
      opt/     optimizer state              (StandardSave)
      data/    data-iterator state          (JsonSave)
      meta/    step, config, input normalisation, metrics at this step (Json)

``load(workdir)`` restores the model alone (never the optimizer) onto one
device, whatever device count wrote it, for colabs and analysis. A
checkpoint that is complete but damaged afterwards (a truncated array file,
a missing ``meta/metadata``) does not stop a ``load``: it falls back to the
newest intact checkpoint, says which step was corrupt and how to remove it,
and never changes the work dir.

The read-only orbax helpers here (:func:`read_only_manager`,
:func:`restore_newest`, :func:`abstract`, :func:`describe`) are also the
checkpoint writer's (``cljax.training.checkpoint``), which imports them.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import sys
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import orbax.checkpoint as ocp

from cljax import models
from cljax.training import errors
from cljax.training import metric_writer

# The items of every checkpoint (cljax.training.checkpoint.Manager's).
ITEMS = ("model", "opt", "data", "meta")


class _DropReadOnlyNotice(logging.Filter):
  """Drops orbax's "Given directory is read only" warning.

  Orbax logs it for every read-only manager; opening a run for analysis is
  read-only by design, so the warning tells a user nothing.
  """

  def filter(self, record: logging.LogRecord) -> bool:
    return not str(record.msg).startswith("Given directory is read only")


@contextlib.contextmanager
def _quiet_read_only():
  logger = logging.getLogger("absl")
  notice = _DropReadOnlyNotice()
  logger.addFilter(notice)
  try:
    yield
  finally:
    logger.removeFilter(notice)


def read_only_manager(directory: str) -> ocp.CheckpointManager:
  with _quiet_read_only():
    return ocp.CheckpointManager(
        directory, options=ocp.CheckpointManagerOptions(
            read_only=True, create=False, save_interval_steps=0),
        item_names=ITEMS)


def restore_newest(steps: list[int], restore, directory: str
                    ) -> tuple[int, Any, dict]:
  """Restores the newest of ``steps`` that ``restore(step)`` can read.

  Returns:
    ``(step, restored, corrupt)``: ``corrupt`` maps each newer step that
    failed to its error.

  Raises:
    errors.CheckpointsUnreadableError: no step restores. Nothing is then
      known to be corrupt (a target that does not match the saved tree fails
      on every step alike), so nothing is moved; the message names each
      step's error and both fixes.
  """
  corrupt = {}
  for step in sorted(steps, reverse=True):
    try:
      return step, restore(step), corrupt
    except Exception as e:  # pylint: disable=broad-except
      # Orbax and tensorstore raise many types for damaged files
      # (ValueError, FileNotFoundError, OCDBT status errors, ...).
      corrupt[step] = e
  raise errors.CheckpointsUnreadableError(
      f"No checkpoint of {directory} restores: " + "; ".join(
          f"{os.path.join(directory, str(step))}: {describe(error)}"
          for step, error in sorted(corrupt.items())) +
      f". If the model config differs from the run's, use the run's config "
      f"(it is in {os.path.join(os.path.dirname(directory), 'config.json')})"
      f"; if the files are damaged, move them aside (mv {directory} "
      f"{directory}.damaged) to start the run over, or use a new --workdir."
      ) from corrupt[max(corrupt)]


def describe(error: BaseException) -> str:
  text = " ".join(str(error).split())
  return f"{type(error).__name__}: {text[:200]}"


def abstract(tree: Any, sharding: Any = None) -> Any:
  """ShapeDtypeStructs of ``tree`` (keeping or replacing each sharding)."""
  def leaf(x):
    sh = sharding if sharding is not None else getattr(x, "sharding", None)
    return jax.ShapeDtypeStruct(np.shape(x), x.dtype, sharding=sh)
  return jax.tree.map(leaf, tree)


def saved_steps(workdir: str) -> list[int]:
  """Steps of the finalised checkpoints in ``workdir`` (no orbax, no writes).

  Orbax writes a step to a temporary name and renames it to the bare step
  number once complete, so a digits-only directory is a finished save.
  """
  directory = os.path.join(workdir, "checkpoints")
  if not os.path.isdir(directory):
    return []
  return sorted(int(name) for name in os.listdir(directory)
                if name.isdigit())


def looks_intact(workdir: str, step: int) -> bool:
  """A cheap integrity check of a finalised step (reads no array data).

  Every item's directory, the JSON items' files and non-empty OCDBT
  manifests must be there; a truncated array file passes (only a restore
  reads the data).
  """
  root = os.path.join(workdir, "checkpoints", str(step))
  needed = [os.path.join(root, "meta", "metadata"),
            os.path.join(root, "data", "metadata")]
  manifests = [os.path.join(root, item, "manifest.ocdbt")
               for item in ("model", "opt")]
  return (all(os.path.isfile(p) for p in needed) and
          all(os.path.isfile(p) and os.path.getsize(p) > 0
              for p in manifests))


@dataclasses.dataclass
class Run:
  """A trained run loaded for analysis (see ``load``).

  Attributes:
    workdir: the run's directory.
    config: the run's ``ml_collections.ConfigDict``.
    step: the checkpoint's step.
    variables: ``{"params", "batch_stats"}`` of the model (no optimizer).
    metrics: the logged rows of ``metrics.jsonl`` (list of dicts).
    model: the Flax module, rebuilt from ``config.model``.
    input_shape: the shape of one model input.
    input_mean, input_std: the normalisation the run applied to its inputs
      (None for unnormalised data).
  """
  workdir: str
  config: ml_collections.ConfigDict
  step: int
  variables: dict
  metrics: list
  model: Any
  input_shape: tuple
  input_mean: np.ndarray | None
  input_std: np.ndarray | None

  def features(self, inputs: Any, *, batch_size: int = 512,
               normalized_inputs: bool = False):
    """Encoder features and head outputs of ``inputs`` (eval mode).

    Args:
      inputs: float[N, ...] model inputs as the data pipeline yields them
        (images in [0, 1]); normalised here with the run's statistics unless
        ``normalized_inputs``.
      batch_size: forward-pass batch size.
      normalized_inputs: the inputs are already normalised.

    Returns:
      (h: float32[N, D_enc], z: float32[N, D_head]) as NumPy arrays; z is the
      head output before the loss's normalisation.
    """
    x = np.asarray(inputs, np.float32)
    if not normalized_inputs and self.input_mean is not None:
      x = (x - self.input_mean) / self.input_std
    return models.embed(self.model, self.variables, x, batch_size=batch_size)


def read_metrics(workdir: str) -> list[dict]:
  """The rows of ``workdir/metrics.jsonl`` (empty if absent).

  A cut-off last line (a kill or a full disk during its write) is left out
  with a warning naming the file and line (``metric_writer.read_rows``).
  """
  return metric_writer.read_rows(workdir)


def read_config(workdir: str) -> ml_collections.ConfigDict:
  """The run's config, from ``workdir/config.json`` (no orbax, no JAX).

  Raises:
    FileNotFoundError: ``workdir`` holds no ``config.json``, naming it.
  """
  path = os.path.join(workdir, "config.json")
  if not os.path.exists(path):
    raise FileNotFoundError(
        f"{path} not found: is {workdir!r} the work dir of a cljax run?")
  with open(path) as f:
    return ml_collections.ConfigDict(json.load(f))


def read_json(path: str) -> dict | None:
  """The JSON object in ``path``, or None when the file is absent."""
  if not os.path.exists(path):
    return None
  with open(path) as f:
    return json.load(f)


def restore_model(workdir: str, target, step: int | None = None
                  ) -> tuple[int, Any, dict]:
  """Restores the ``model`` item of a checkpoint onto one device (read-only).

  Args:
    workdir: a work dir with ``checkpoints/``.
    target: ``meta -> pytree`` of arrays or ShapeDtypeStructs with the saved
      structure (the shardings are replaced by the first device).
    step: a checkpoint step; None for the newest intact one (a newer corrupt
      step is reported on stderr and skipped; the work dir is not changed).

  Returns:
    ``(step, model, meta)``.

  Raises:
    FileNotFoundError: no complete checkpoint in ``workdir``, or no ``step``
      (the message lists the saved steps).
    errors.CheckpointsUnreadableError: ``step`` does not restore, or (without
      a step) no checkpoint does.
  """
  directory = os.path.join(os.path.abspath(workdir), "checkpoints")
  manager = read_only_manager(directory)
  device = jax.sharding.SingleDeviceSharding(jax.devices()[0])

  def restore(step):
    meta = manager.restore(step, args=ocp.args.Composite(
        meta=ocp.args.JsonRestore()))["meta"]
    restored = manager.restore(step, args=ocp.args.Composite(
        model=ocp.args.StandardRestore(abstract(target(meta), device))))
    return restored["model"], meta

  try:
    if step is not None:
      saved = sorted(manager.all_steps())
      if step not in saved:
        raise FileNotFoundError(
            f"Checkpoint at {os.path.join(directory, str(step))} not found; "
            f"the saved steps are {saved} (checkpoint.keep deletes older "
            f"ones).")
      try:
        model, meta = restore(step)
      except Exception as e:  # pylint: disable=broad-except
        # Orbax and tensorstore raise many types for damaged files.
        others = [s for s in saved if s != step]
        raise errors.CheckpointsUnreadableError(
            f"Checkpoint {os.path.join(directory, str(step))} does not "
            f"restore ({describe(e)}); load another step ({others}) or the "
            f"newest intact one (no step).") from e
    else:
      steps = list(manager.all_steps())
      if not steps:
        raise FileNotFoundError(f"No complete checkpoint under {directory}.")
      step, (model, meta), corrupt = restore_newest(steps, restore,
                                                     directory)
      for bad, error in sorted(corrupt.items()):
        print(f"Checkpoint step {bad} in {directory} is corrupt "
              f"({describe(error)}); loaded step {step} instead. Delete it "
              f"with: rm -r {os.path.join(directory, str(bad))}",
              file=sys.stderr)
  finally:
    manager.close()
  return int(step), model, meta


def load(workdir: str, step: int | None = None) -> Run:
  """Loads a run's model for analysis, on one device, without TensorFlow.

  Args:
    workdir: the work dir of a run of ``cljax.training.train``.
    step: a checkpoint step; None for the latest complete one.

  Returns:
    A ``Run`` with the config, step, model variables, logged metrics and a
    ``features`` method.

  Raises:
    FileNotFoundError: no config or no complete checkpoint in ``workdir``, or
      no checkpoint ``step``.
    errors.CheckpointsUnreadableError: ``step`` does not restore, or (without
      a step) no checkpoint does.
  """
  config = read_config(workdir)
  model = models.build(config.model)

  def target(meta):
    abstract = jax.eval_shape(
        lambda: model.init(jax.random.key(0),
                           jnp.zeros((1,) + tuple(meta["input_shape"])),
                           train=False))
    # The train loop saves {"params", "batch_stats"} even for models without
    # BatchNorm (then batch_stats is {}), which init leaves out.
    return {"params": abstract["params"],
            "batch_stats": abstract.get("batch_stats", {})}

  step, variables, meta = restore_model(workdir, target, step)
  input_shape = tuple(meta["input_shape"])
  mean = meta.get("input_mean")
  std = meta.get("input_std")
  return Run(workdir=workdir, config=config, step=step,
             variables=variables, metrics=read_metrics(workdir),
             model=model, input_shape=input_shape,
             input_mean=None if mean is None else np.asarray(mean, np.float32),
             input_std=None if std is None else np.asarray(std, np.float32))
