"""Orbax checkpoints of training runs, and loading them for analysis.

Layout of a work dir::

  <workdir>/config.json            the run's config (readable without orbax)
  <workdir>/metrics.jsonl          one JSON object per logged step
  <workdir>/checkpoints/<step>/    orbax Composite, finalised atomically
      model/   {"params", "batch_stats"}   (StandardSave)
      opt/     optimizer state              (StandardSave)
      data/    data-iterator state          (JsonSave)
      meta/    step, config, input normalisation, metrics at this step (Json)

The orbax v0 ``CheckpointManager`` writes each step to a temporary directory
and renames it when complete, so a run killed during a save leaves the last
complete checkpoint as ``latest_step()``; nothing here ever deletes a
finished checkpoint except the ``keep`` policy, which only removes older ones
after a newer save has completed.

``load(workdir)`` restores the model alone (never the optimizer) onto one
device, whatever device count wrote it, for colabs and analysis.
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import orbax.checkpoint as ocp

_ITEMS = ("model", "opt", "data", "meta")


def _abstract(tree: Any, sharding: Any = None) -> Any:
  """ShapeDtypeStructs of ``tree`` (keeping or replacing each sharding)."""
  def leaf(x):
    sh = sharding if sharding is not None else getattr(x, "sharding", None)
    return jax.ShapeDtypeStruct(np.shape(x), x.dtype, sharding=sh)
  return jax.tree.map(leaf, tree)


class Manager:
  """Periodic and final checkpoints of one run (a thin orbax wrapper).

  Args:
    workdir: the run's directory; checkpoints go to ``workdir/checkpoints``.
    every: save when ``step % every == 0`` (and whenever ``force``).
    keep: how many recent checkpoints to keep (None: all).
  """

  def __init__(self, workdir: str, *, every: int, keep: int | None = 3):
    if every < 1:
      raise ValueError(f"`checkpoint.every` must be >= 1; got {every}.")
    self.directory = os.path.join(os.path.abspath(workdir), "checkpoints")
    # Saves interrupted by a kill leave orbax temporary directories; they are
    # reported here and removed by the manager (cleanup_tmp_directories).
    self.partial = sorted(
        name for name in (os.listdir(self.directory)
                          if os.path.isdir(self.directory) else [])
        if "tmp" in name)
    options = ocp.CheckpointManagerOptions(
        save_interval_steps=every, max_to_keep=keep, create=True,
        cleanup_tmp_directories=True)
    self._manager = ocp.CheckpointManager(
        self.directory, options=options, item_names=_ITEMS)

  def latest_step(self) -> int | None:
    """The newest *complete* checkpoint (partial ones are ignored)."""
    return self._manager.latest_step()

  def all_steps(self) -> list[int]:
    return list(self._manager.all_steps())

  def save(self, step: int, *, model: Any, opt: Any, data: dict,
           meta: dict, force: bool = False) -> bool:
    """Saves asynchronously; returns whether a save was started."""
    args = ocp.args.Composite(
        model=ocp.args.StandardSave(model),
        opt=ocp.args.StandardSave(opt),
        data=ocp.args.JsonSave(data),
        meta=ocp.args.JsonSave(meta))
    return self._manager.save(step, args=args, force=force)

  def restore(self, step: int, *, model: Any, opt: Any) -> dict[str, Any]:
    """Restores ``step`` into the structure and shardings of the targets.

    ``model`` and ``opt`` are pytrees of arrays or ShapeDtypeStructs whose
    shardings say where the restored arrays go (so a checkpoint written on
    8 devices restores onto 1 and the other way round).
    """
    args = ocp.args.Composite(
        model=ocp.args.StandardRestore(_abstract(model)),
        opt=ocp.args.StandardRestore(_abstract(opt)),
        data=ocp.args.JsonRestore(),
        meta=ocp.args.JsonRestore())
    out = self._manager.restore(step, args=args)
    return {name: out[name] for name in _ITEMS}

  def wait(self) -> None:
    self._manager.wait_until_finished()

  def close(self) -> None:
    self._manager.wait_until_finished()
    self._manager.close()


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
    from cljax import models  # Only the analysis path needs the model zoo.
    return models.embed(self.model, self.variables, x, batch_size=batch_size)


def read_metrics(workdir: str) -> list[dict]:
  """The rows of ``workdir/metrics.jsonl`` (empty if absent)."""
  path = os.path.join(workdir, "metrics.jsonl")
  if not os.path.exists(path):
    return []
  with open(path) as f:
    return [json.loads(line) for line in f if line.strip()]


def read_config(workdir: str) -> ml_collections.ConfigDict:
  path = os.path.join(workdir, "config.json")
  if not os.path.exists(path):
    raise FileNotFoundError(
        f"{path} not found: is {workdir!r} the work dir of a cljax run?")
  with open(path) as f:
    return ml_collections.ConfigDict(json.load(f))


def load(workdir: str, step: int | None = None) -> Run:
  """Loads a run's model for analysis, on one device, without TensorFlow.

  Args:
    workdir: the work dir of a run of ``cljax.train``.
    step: a checkpoint step; None for the latest complete one.

  Returns:
    A ``Run`` with the config, step, model variables, logged metrics and a
    ``features`` method.

  Raises:
    FileNotFoundError: no config or no complete checkpoint in ``workdir``.
  """
  from cljax import models  # Only the analysis path needs the model zoo.

  config = read_config(workdir)
  directory = os.path.join(os.path.abspath(workdir), "checkpoints")
  manager = ocp.CheckpointManager(
      directory, options=ocp.CheckpointManagerOptions(
          read_only=True, create=False, save_interval_steps=0),
      item_names=_ITEMS)
  try:
    if step is None:
      step = manager.latest_step()
    if step is None:
      raise FileNotFoundError(f"No complete checkpoint under {directory}.")
    model = models.build(config.model)
    meta = manager.restore(step, args=ocp.args.Composite(
        meta=ocp.args.JsonRestore()))["meta"]
    input_shape = tuple(meta["input_shape"])
    device = jax.devices()[0]
    abstract = jax.eval_shape(
        lambda: model.init(jax.random.key(0),
                           jnp.zeros((1,) + input_shape), train=False))
    # The train loop saves {"params", "batch_stats"} even for models without
    # BatchNorm (then batch_stats is {}), which init leaves out.
    abstract = {"params": abstract["params"],
                "batch_stats": abstract.get("batch_stats", {})}
    target = _abstract(abstract, jax.sharding.SingleDeviceSharding(device))
    restored = manager.restore(step, args=ocp.args.Composite(
        model=ocp.args.StandardRestore(target)))
  finally:
    manager.close()
  mean = meta.get("input_mean")
  std = meta.get("input_std")
  return Run(workdir=workdir, config=config, step=int(step),
             variables=restored["model"], metrics=read_metrics(workdir),
             model=model, input_shape=input_shape,
             input_mean=None if mean is None else np.asarray(mean, np.float32),
             input_std=None if std is None else np.asarray(std, np.float32))
