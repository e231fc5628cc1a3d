"""The unconstrained-features driver: run (and resume) one work dir, load it.

See :mod:`cljax.unconstrained` for the objectives, the optimisers and the
work dir's layout.

>>> config = default_config()
>>> config.steps, config.loss.name, config.checkpoint.every
(2000, 'nscl', 0)
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from cljax.training import _lock
from cljax.training import checkpoint
from cljax.analysis import checkpoints
from cljax import losses
from cljax.training import metric_writer
from cljax.training.objective import CROSS_ENTROPY
from cljax.training import run_identity
# The problem and the geometry of its solutions, re-exported (the experiment
# configs, colabs and tests use them as ``unconstrained.<name>``).
from cljax.analysis import sweeps
from cljax.training import provenance
from cljax.unconstrained.geometry import features_of
from cljax.unconstrained.geometry import geometry_metrics
from cljax.unconstrained.problem import _init_params
from cljax.unconstrained.problem import _loss_arg
from cljax.unconstrained.problem import _normalize_mode
from cljax.unconstrained.problem import _optimizer
from cljax.unconstrained.problem import _project
from cljax.unconstrained.problem import closed_form_minimum
from cljax.unconstrained.problem import etf_params
from cljax.unconstrained.problem import labels_of
from cljax.unconstrained.problem import make_objective


def default_config() -> ml_collections.ConfigDict:
  """Every field ``run`` reads, with P1 Theorem 2's NSCL set-up as values.

  The experiment configs (``experiments/unconstrained/*.py``) start from this,
  so every field exists and can be overridden from the command line or a
  ``cljax.sweep`` grid.
  """
  config = ml_collections.ConfigDict()
  config.mode = "unconstrained"
  config.seed = 0
  config.num_classes = 10
  config.samples_per_class = 8
  # Per-class counts, e.g. (7, 1, 1): one unbalanced batch. () = balanced.
  config.class_counts = ()
  config.num_views = 2
  config.dim = 16
  config.init_scale = 1.0
  config.objective = "full_batch"
  config.batch_size = 9  # Only for objective="all_multisets".
  config.optimizer = "adam"
  config.learning_rate = 0.05
  config.momentum = 0.0
  config.project = False
  config.weight_radius = 1.0  # Row-norm bound of the CE classifier.
  config.steps = 2000
  config.log_every = 200
  config.loss = ml_collections.ConfigDict()
  config.loss.name = "nscl"
  config.loss.kwargs = ml_collections.ConfigDict(
      {"temperature": 0.5, "normalize": "sphere"})
  config.checkpoint = ml_collections.ConfigDict()
  # Save every that many steps as well as the final step (0: final only).
  config.checkpoint.every = 0
  config.checkpoint.keep = 1
  return config


# ----------------------------------------------------------------------------
# The driver.
# ----------------------------------------------------------------------------


def initial_geometry(config: ml_collections.ConfigDict) -> dict[str, Any]:
  """``geometry_metrics`` of a run's starting point, before any step.

  The initial embeddings (``config.init_scale`` times a standard normal
  draw of ``config.seed``, projected if ``config.project``) are random
  features of the run's own shape and labels: the null of every geometry
  claim (what the metrics read without optimisation).

  Args:
    config: a run's config (``run``'s fields).

  Returns:
    The dict of ``geometry_metrics`` for z: float[N, K, dim] at step 0,
    with ``initial_loss``, the objective there.
  """
  labels = labels_of(config)
  params = _project(_init_params(config, len(labels)), config)
  out = geometry_metrics(config, params["z"], labels, params.get("w"))
  out["initial_loss"] = float(jax.jit(make_objective(config, labels))(params))
  return out


def run(config: ml_collections.ConfigDict, workdir: str | None = None,
        *, verbose: bool = True) -> dict[str, Any]:
  """Minimises the configured objective over free features.

  Args:
    config: fields num_classes, samples_per_class, class_counts (optional
      per-class counts, e.g. (7, 1, 1)), num_views, dim, seed, init_scale,
      objective ("full_batch" | "all_multisets"), batch_size (multisets),
      optimizer ("adam" | "sgd"), learning_rate, momentum, project,
      weight_radius, steps, log_every, loss.name (a ``cljax.losses`` registry
      name or "cross_entropy"), loss.kwargs (passed to the loss), and
      checkpoint.every / checkpoint.keep (periodic checkpoints; 0 = only the
      final step).
    workdir: if given, ``config.json``, ``metrics.jsonl`` (one row per logged
      step), ``summary.json`` and orbax checkpoints are written there (see
      the module docstring); a work dir with checkpoints of the same config
      resumes from the newest one.
    verbose: print a progress line per logged step and the summary.

  Returns:
    The summary dict: final loss, ``closed_form_minimum`` (None if no theorem
    applies), ``loss_at_etf`` (the objective evaluated at the collapsed ETF,
    when dim >= C - 1), the final DCL-NSCL gap and its bound (K >= 2), and
    ``geometry_metrics``.

  Raises:
    ValueError: a malformed config (the message names the field).
    ResumeMismatchError: ``workdir`` holds checkpoints of another config.
    WorkdirLockedError: another process runs in ``workdir``.
    FloatingPointError: the objective became non-finite (names the step).
  """
  for field in ("steps", "log_every"):
    if int(config[field]) < 1:
      raise ValueError(f"config.{field} must be >= 1; got {config[field]}.")
  every, keep = _checkpoint_options(config)
  labels = labels_of(config)
  objective = make_objective(config, labels)
  tx = _optimizer(config)
  params = _project(_init_params(config, len(labels)), config)
  state = {"params": params, "opt_state": tx.init(params)}
  if not workdir:
    rows = []
    state, seconds = _optimise(config, state, objective, tx, labels, start=0,
                               log=lambda step, row: rows.append(
                                   {"step": step, **row}),
                               save=None, verbose=verbose)
    return _summarise(config, state["params"], labels, objective, rows,
                      seconds, verbose=verbose)
  os.makedirs(workdir, exist_ok=True)
  lock = _lock.WorkdirLock(workdir)
  try:
    run_identity.check_resume(workdir, config)
    with open(os.path.join(workdir, "config.json"), "w") as f:
      f.write(config.to_json_best_effort(indent=2))
    provenance.record(workdir)  # The code of this session, for reproduce.
    manager = checkpoint.Manager(workdir, every=every, keep=keep)
    writer = None
    try:
      start, restored = manager.restore_latest(
          model={"params": state["params"]},
          opt={"opt_state": state["opt_state"]},
          log=print)
      if start is not None:
        state = {"params": restored["model"]["params"],
                 "opt_state": restored["opt"]["opt_state"]}
        if verbose:
          print(f"Resumed from the checkpoint of step {start} in {workdir}.",
                flush=True)
      start = int(start or 0)
      writer = metric_writer.MetricWriter(workdir, start, tensorboard=False)
      meta = {"labels": labels.tolist(),
              "config": json.loads(config.to_json_best_effort())}

      def save(step, state):
        manager.save(step, force=True, model={"params": state["params"]},
                     opt={"opt_state": state["opt_state"]},
                     data={"step": step}, meta={**meta, "step": step})

      state, seconds = _optimise(config, state, objective, tx, labels,
                                 start=start, log=writer.write, save=save,
                                 verbose=verbose)
      manager.close()
    finally:
      if writer is not None:
        writer.close()
      manager.close_quietly()
    summary = _summarise(config, state["params"], labels, objective,
                         writer.rows, seconds, verbose=verbose)
    with open(os.path.join(workdir, "summary.json"), "w") as f:
      json.dump(summary, f, indent=2)
  finally:
    lock.release()
  return summary


def _checkpoint_options(config) -> tuple[int, int | None]:
  """(every, keep) for ``checkpoint.Manager``; every=steps: final only."""
  options = config.get("checkpoint", None)
  options = {} if options is None else options
  every = options.get("every", 0)
  if not isinstance(every, int) or every < 0:
    raise ValueError(f"config.checkpoint.every must be an integer >= 0 (0: "
                     f"only the final step); got {every!r}.")
  keep = options.get("keep", 1)
  checkpoint.check_options(every=every or int(config.steps), keep=keep)
  return every or int(config.steps), keep


def _optimise(config, state, objective, tx, labels, *, start, log, save,
              verbose):
  """Steps ``start + 1 .. config.steps``; returns (state, seconds)."""

  @jax.jit
  def step(state):
    value, grad = jax.value_and_grad(objective)(state["params"])
    updates, opt_state = tx.update(grad, state["opt_state"], state["params"])
    params = _project(optax.apply_updates(state["params"], updates), config)
    return {"params": params, "opt_state": opt_state}, value

  monitor = None
  if config.num_views >= 2 and config.loss.name != CROSS_ENTROPY:
    tau = _loss_arg(config, "temperature", 1.0)
    monitor = jax.jit(lambda z: losses.all_losses(
        z, jnp.asarray(labels), temperature=tau,
        normalize=_normalize_mode(config)))
  every = _checkpoint_options(config)[0]
  t0 = time.time()
  for i in range(start, config.steps):
    state, value = step(state)
    # One host read per step: these problems are tiny, and a non-finite
    # step must stop the run before it is logged or saved.
    if not np.isfinite(float(value)):
      raise FloatingPointError(
          f"non-finite loss {float(value)} at step {i + 1}; lower "
          f"config.learning_rate or normalise the features.")
    if (i + 1) % config.log_every == 0 or i + 1 == config.steps:
      row = {"train/loss": float(value)}
      if monitor is not None:
        row.update({f"train/{k_}": float(v)
                    for k_, v in monitor(state["params"]["z"]).items()})
      log(i + 1, row)
      if verbose:
        print(f"step {i + 1:5d}/{config.steps}  loss {float(value):.6f}",
              flush=True)
    if save is not None and ((i + 1) % every == 0 or i + 1 == config.steps):
      save(i + 1, state)
  return state, time.time() - t0


def _summarise(config, params, labels, objective, rows, seconds, *,
               verbose) -> dict[str, Any]:
  evaluate = jax.jit(objective)
  loss_at_etf = None
  if config.dim >= config.num_classes - 1:
    loss_at_etf = float(evaluate(jax.tree.map(
        jnp.asarray, etf_params(config, labels))))
  summary = {
      "loss": config.loss.name,
      "objective": config.objective,
      "final_loss": float(evaluate(params)),
      "closed_form_minimum": closed_form_minimum(config),
      "loss_at_etf": loss_at_etf,
      "steps": config.steps,
      "seconds": seconds,
      **{k_.split("/", 1)[1]: v for k_, v in rows[-1].items()
         if k_.startswith("train/") and k_ != "train/loss"},
      **geometry_metrics(config, params["z"], labels, params.get("w")),
  }
  if verbose:
    print(json.dumps({k_: v for k_, v in summary.items()
                      if not isinstance(v, list)}, indent=2))
  return summary


# ----------------------------------------------------------------------------
# Loading runs and sweeps for analysis.
# ----------------------------------------------------------------------------


@dataclasses.dataclass
class Result:
  """A finished unconstrained-features run (see ``load``).

  Attributes:
    workdir: the run's directory.
    config: its ``ml_collections.ConfigDict``.
    metrics: the logged rows of ``metrics.jsonl``.
    summary: ``summary.json``.
    z: float[N, K, dim] final free features (before normalisation).
    labels: int[N].
    w: float[C, dim] classifier (cross-entropy runs) or None.
  """
  workdir: str
  config: ml_collections.ConfigDict
  metrics: list
  summary: dict
  z: np.ndarray
  labels: np.ndarray
  w: np.ndarray | None

  def features(self) -> np.ndarray:
    """float[N, dim] features as the loss sees them (normalised, view mean)."""
    return features_of(self.config, self.z)


def load(workdir: str) -> Result:
  """Loads a run of ``run`` (config, logs, summary, final features).

  Reads the newest checkpoint of ``workdir`` or, for runs written before
  checkpoints, its ``features.npz``.

  Raises:
    FileNotFoundError: ``workdir`` holds no finished run.
  """
  summary_path = os.path.join(workdir, "summary.json")
  legacy = os.path.join(workdir, "features.npz")
  if not os.path.exists(summary_path) or not (
      checkpoints.saved_steps(workdir) or os.path.exists(legacy)):
    raise FileNotFoundError(
        f"{summary_path} and a checkpoint (or features.npz) not found: is "
        f"{workdir!r} the work dir of a finished `python -m cljax.main "
        f"--config=experiments/unconstrained/*.py` run?")
  config = checkpoints.read_config(workdir)
  if checkpoints.saved_steps(workdir):
    shapes = jax.eval_shape(
        lambda: _init_params(config, len(labels_of(config))))
    _, model, meta = checkpoints.restore_model(
        workdir, lambda meta: {"params": shapes})
    arrays = {k: np.asarray(v) for k, v in model["params"].items()}
    arrays["labels"] = np.asarray(meta["labels"], np.int32)
  else:
    arrays = np.load(legacy)
  with open(summary_path) as f:
    summary = json.load(f)
  return Result(workdir=workdir, config=config,
                metrics=checkpoints.read_metrics(workdir), summary=summary,
                z=arrays["z"], labels=arrays["labels"],
                w=arrays["w"] if "w" in arrays else None)


def load_sweep(sweep_dir: str) -> list[tuple[dict, Result]]:
  """``(overrides, Result)`` for every point of a ``cljax.sweep`` sweep dir.

  Work dirs are resolved against ``sweep_dir`` (``cljax.analysis.sweeps.read_sweep``),
  so a sweep copied elsewhere (next to a colab) still loads.

  Raises:
    FileNotFoundError: no ``sweep.json`` in ``sweep_dir``.
  """
  return [(p["overrides"], load(p["workdir"]))
          for p in sweeps.read_sweep(sweep_dir)]
