"""Everything a run of the train loop is built from before its first step.

``cljax.training.train`` starts every run here: the device mesh
(:func:`make_mesh`), the run's data, optimiser, model and evaluators
(:func:`set_up`, a :class:`Run`), its ``config.json`` and provenance
(:func:`write_config`), and the state it steps from (:func:`initial_state`):
freshly initialised, or restored from the work dir's latest checkpoint
with the data iterator's position, so a resume continues the same batches.
"""

from __future__ import annotations

import dataclasses
import functools
import os
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from cljax import data as data_lib
from cljax import models
from cljax.training import errors
from cljax.training import evaluators
from cljax.training import provenance
from cljax.training import run_identity
from cljax.training.evaluators import with_classifier
from cljax.training.optim import make_optimizer


def total_steps(config, data) -> int:
  """``config.steps``, or ``config.epochs`` passes over the training data."""
  epochs = config.get("epochs", None)
  if epochs is None:
    return int(config.steps)
  return max(1, int(round(epochs * data.steps_per_epoch)))


def make_mesh(num_devices: int | None = None) -> jax.sharding.Mesh:
  """A 1-D ("data",) Explicit mesh over the first ``num_devices`` devices."""
  devices = jax.devices()
  n = len(devices) if num_devices is None else int(num_devices)
  if not 1 <= n <= len(devices):
    raise ValueError(f"config.num_devices={num_devices} but {len(devices)} "
                     f"devices are available; set it to at most "
                     f"{len(devices)}, or leave it unset for all of them.")
  return jax.make_mesh((n,), ("data",), devices=devices[:n],
                       axis_types=(jax.sharding.AxisType.Explicit,))


def key_data(seed: int, index: int) -> np.ndarray:
  """Host key data of ``split(key(seed))[index]`` (0: init, 1: steps).

  Given to jitted constructors as an argument: a key closed over would be a
  constant of the program, and every seed would compile its own.
  """
  return np.asarray(jax.random.key_data(
      jax.random.split(jax.random.key(seed))[index]))


def say(verbose: bool, message: str) -> None:
  """Prints ``message`` on process 0 (which speaks for the run) if verbose."""
  if verbose and jax.process_index() == 0:
    print(message, flush=True)


@dataclasses.dataclass
class Run:
  """What a run is built from: the config completed by its data."""
  config: ml_collections.ConfigDict
  data: Any
  num_steps: int
  tx: optax.GradientTransformation
  schedule: Any
  model: Any
  evals: evaluators.Runner


def set_up(config, workdir, mesh) -> Run:
  """Data, optimiser, model and evaluators; ValueErrors are config errors."""
  try:
    data = data_lib.build(config.data, seed=config.seed,
                          process_index=jax.process_index(),
                          process_count=jax.process_count())
    config = with_classifier(config, data.num_classes)
    num_steps = total_steps(config, data)
    tx, schedule = make_optimizer(config.optim, num_steps)
    model = models.build(config.model)
    evals = evaluators.build(config, data=data, model=model, workdir=workdir,
                             mesh=mesh,
                             batch_size=config.get("eval_batch_size",
                                                    evaluators.EVAL_BATCH_SIZE))
    # What only the data tells (its classes), before config.json.
    mistake = run_identity.anchor_mistake(config, data.labels)
    if mistake:
      data.close()
      raise ValueError(mistake)
  except (ValueError, data_lib.DatasetNotPreparedError) as e:
    raise run_identity.setup_error(e) from None
  return Run(config=config, data=data, num_steps=num_steps, tx=tx,
             schedule=schedule, model=model, evals=evals)


def write_config(workdir, config) -> None:
  """Writes ``config.json`` and records the code's provenance (process 0)."""
  if jax.process_index() != 0:
    return
  path = os.path.join(workdir, "config.json")
  try:
    with open(path, "w") as f:
      f.write(run_identity.config_json(config))
    path = os.path.join(workdir, provenance.FILE)
    provenance.record(workdir)  # The code of this session, for reproduce.
  except OSError as e:
    raise errors.write_error(path, e) from e


def variables(state) -> dict:
  """The model's variables of a train state (no optimiser state)."""
  return {"params": state["params"], "batch_stats": state["batch_stats"]}


def initial_state(run: Run, manager, replicated, *, num_devices: int,
                  workdir: str, verbose: bool) -> tuple[dict, int]:
  """The state the loop steps from, and its step.

  Initialised on the mesh from the seed, then replaced by the work dir's
  latest checkpoint if it has one (the data iterator restored with it).

  Args:
    run: the run (:func:`set_up`).
    manager: the work dir's ``cljax.training.checkpoint.Manager``.
    replicated: the mesh's replicated sharding, where the state lives.
    num_devices: the devices of this run, compared with the checkpoint's.
    workdir: named in the resume message.
    verbose: say that the run resumed (a device-count change is said
      regardless).

  Returns:
    ``(state, start)``: the train state and the step it holds (0 when fresh).
  """

  @functools.partial(jax.jit, out_shardings=replicated)
  def init_state(key):
    dummy = jnp.zeros((2,) + tuple(run.data.input_shape), jnp.float32)
    model_variables = run.model.init(jax.random.wrap_key_data(key), dummy,
                                     train=False)
    params = model_variables["params"]
    return {"params": params,
            "batch_stats": model_variables.get("batch_stats", {}),
            "opt_state": run.tx.init(params),
            "step": jnp.zeros((), jnp.int32)}

  state = init_state(key_data(run.config.seed, 0))
  if manager.partial:
    say(verbose, f"Ignoring partial (unfinished) checkpoints: "
        f"{manager.partial}")
  start, restored = manager.restore_latest(
      model=variables(state),
      opt={"opt_state": state["opt_state"], "step": state["step"]},
      log=lambda msg: say(True, msg))
  if start is not None:
    state = {**restored["model"], **restored["opt"]}
    run.data.restore(restored["data"])
    say(verbose, f"Resumed from the checkpoint of step {start} in "
        f"{workdir}.")
    saved = restored["meta"].get("num_devices")  # None: an older run.
    if saved is not None and saved != num_devices:
      # Said even when quiet: the README's "bit for bit" no longer holds.
      say(True, f"The checkpoint of step {start} was written on {saved} "
          f"devices and this run has {num_devices}: from here on the results "
          f"match the original run to float rounding, not bit for bit (the "
          f"batch's sums are split and added in another order).")
  return state, int(start or 0)
