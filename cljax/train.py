"""The one training loop of cljax: ``train_and_evaluate(config, workdir)``.

Every experiment is a config for this loop. It is data parallel with the
current JAX sharding API: a 1-D ``("data",)`` mesh over all (or
``config.num_devices``) devices, the global batch sharded on it, parameters
and optimizer state replicated, and one jitted step, so the loss always sees
the global batch of negatives and BatchNorm statistics are global. The same
code runs on 1 CPU, 8 simulated CPU devices, a GPU and several hosts
(``jax.distributed.initialize`` is called by ``cljax.main`` when asked).

Per step it logs the optimised loss, every loss of ``losses.all_losses`` on
the same batch (at ``config.monitor.temperature``; Luthra et al. evaluate the
gap at tau = 1) with the CL-NSCL gap next to its bound, the learning rate,
gradient and parameter norms, and throughput. The evaluators named in
``config.evals`` (``cljax.evaluators``: geometry, probes, few-shot, simplex,
P2's fit detector, P1's whole-split gap) run every ``every`` steps and at the
end, on clean (unaugmented) inputs embedded once per step.

Cross-entropy (Graf et al.'s CE, CE on the sphere, CE-fix) runs in the same
loop: ``loss.name="cross_entropy"`` gives the model a bias-free linear
classifier over the optionally normalised encoder features, learned or
frozen at a simplex, as chosen by ``config.classifier`` (see
``with_classifier``). The encoder is initialised from the same key
whatever the head, and the batches and augmentations depend only on the seed
and the data config, so a CE run and a SupCon run with the same seed and
data config share their initial encoder and every batch.

Iterations to fit (P2) are the ``fit`` evaluator's: it logs the accuracy
on the whole training set under its (noisy) training labels, records the
first step reaching its threshold as ``fit/step`` in the summary and, with
``stop=True``, decides that the run ends there.

Resume is exact: the augmentation key of step t is ``fold_in(seed, t)`` and
the data iterator's state is checkpointed, so a killed run restarted in the
same work dir continues bit for bit.

Steps run asynchronously: nothing is copied to the host on a step that
neither logs nor checkpoints. Whether the step's loss, gradient and
parameters are finite is tracked on device and read where the loop logs or
saves, so no checkpoint holds a non-finite value. The faults a run ends with
(``cljax.errors``) each have a documented exit status in ``cljax.main``.
"""

from __future__ import annotations

import contextlib
import copy
import fnmatch
import functools
import json
import os
import time
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from cljax import _interrupt
from cljax import _lock
from cljax import checkpoint as ckpt_lib
from cljax import data as data_lib
from cljax import errors
from cljax import evaluators
from cljax import losses
from cljax import metric_writer
from cljax import models
from cljax import plots
from cljax.errors import NonFiniteError
from cljax.evaluators import objective
# Moved to cljax.evaluators; kept here so old imports keep working.
from cljax.evaluators import first_fit_step  # noqa: F401
from cljax.evaluators import is_cross_entropy
from cljax.evaluators import objective_features  # noqa: F401
from cljax.evaluators import simplex_geometry  # noqa: F401
from cljax.evaluators import with_classifier
from cljax.optim import make_optimizer


# --- configuration checks -------------------------------------------------

def _check_config(config, num_devices: int) -> None:
  """Fails at start, with the fix, on a config that cannot run."""
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
                     f"devices are available.")
  return jax.make_mesh((n,), ("data",), devices=devices[:n],
                       axis_types=(jax.sharding.AxisType.Explicit,))


# --- the step -----------------------------------------------------------------

def _loss_and_monitors(h, z, labels, config, key):
  """The optimised loss and the monitored (no-gradient) losses of a batch.

  Args:
    h: float[B, K, D] encoder features.
    z: float[B, K, P] head outputs (logits for cross-entropy).
    labels: int[B].
    config: the run config.
    key: PRNG key of the step, for losses that sample (Jiang et al.'s
      ``hard_contrastive(estimator="sampled")``).

  Returns:
    (loss, {name: scalar}) where the monitors are every loss of
    ``losses.all_losses`` when K >= 2, else SupCon (both variants), the one
    loss of the monitor set defined for single views. Cross-entropy runs
    monitor their encoder features (as P2 tracks SupCon of CE models), the
    others what the loss sees.
  """
  if is_cross_entropy(config):
    b, k, c = z.shape
    loss = losses.cross_entropy(z.reshape(b * k, c), jnp.repeat(labels, k))
    watched = h
  else:
    kwargs = dict(config.loss.get("kwargs", {}))
    if losses.spec(config.loss.name).needs_key_for(kwargs):
      kwargs["key"] = key
    loss = losses.get(config.loss.name)(z, labels, **kwargs)
    watched = z
  monitor = config.monitor
  watched = jax.lax.stop_gradient(watched)
  normalize = monitor.get("normalize", "sphere")
  if watched.shape[1] >= 2:
    others = losses.all_losses(
        watched, labels, temperature=monitor.temperature,
        beta=monitor.get("beta", None), normalize=normalize)
  else:
    others = {f"supcon_{variant}": losses.supcon(
        watched, labels, temperature=monitor.temperature, variant=variant,
        normalize=normalize) for variant in ("out", "in")}
  return loss, others


def train_step(state, batch, *, model, tx, schedule, config, data, base_key):
  """One optimisation step on a global batch (pure; jit it).

  Args:
    state: {"params", "batch_stats", "opt_state", "step"} (replicated).
    batch: {"x": float[B, ...] inputs in [0, 1], "label": int[B]} (sharded).

  Returns:
    (new_state, metrics): metrics are float32 scalars.
  """
  step = state["step"]
  step_key = jax.random.fold_in(base_key, step)
  views = data.make_views(step_key, batch["x"])
  b, k = views.shape[:2]
  flat = views.reshape((b * k,) + views.shape[2:])
  labels = batch["label"]

  def objective(params):
    (feats, proj), updates = model.apply(
        {"params": params, "batch_stats": state["batch_stats"]}, flat,
        train=True, mutable=["batch_stats"])
    z = proj.reshape(b, k, -1)
    loss, others = _loss_and_monitors(feats.reshape(b, k, -1), z, labels,
                                      config, jax.random.fold_in(step_key, 1))
    return loss, (others, updates["batch_stats"])

  (loss, (others, batch_stats)), grads = jax.value_and_grad(
      objective, has_aux=True)(state["params"])
  updates, opt_state = tx.update(grads, state["opt_state"], state["params"])
  params = optax.apply_updates(state["params"], updates)
  metrics = {
      "train/loss": loss,
      "train/lr": schedule(step),
      "train/grad_norm": optax.tree.norm(grads),
      "train/param_norm": optax.tree.norm(params),
      "train/update_norm": optax.tree.norm(updates),
  }
  metrics.update({f"train/{name}": value for name, value in others.items()})
  new_state = {"params": params, "batch_stats": batch_stats,
               "opt_state": opt_state, "step": step + 1}
  return new_state, metrics


# --- the loop -----------------------------------------------------------------

def _config_json(config) -> str:
  return config.to_json(sort_keys=True) if hasattr(config, "to_json") else (
      json.dumps(config, sort_keys=True))


# Fields a resumed run may change: how long it trains and how often it logs,
# evaluates and checkpoints, and the device count (checkpoints restore onto
# any topology). Any other change would mix two runs in one work dir.
RESUMABLE_FIELDS = ("steps", "epochs", "log_every", "eval_every", "evals.*.every",
                    "checkpoint.every", "checkpoint.keep", "num_devices")


def _flatten(tree, prefix=""):
  if isinstance(tree, dict):
    out = {}
    for key, value in tree.items():
      out.update(_flatten(value, f"{prefix}{key}."))
    return out
  return {prefix[:-1]: tree}


def config_changes(saved: dict, requested: dict) -> list[str]:
  """The fields outside ``RESUMABLE_FIELDS`` where two configs differ.

  Args:
    saved, requested: ``config.to_json`` round-tripped through ``json``.

  Returns:
    ``["field: saved -> requested", ...]`` sorted by field.
  """
  old, new = _flatten(saved), _flatten(requested)
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


def _check_resume(workdir: str, config) -> None:
  """Refuses to resume a work dir whose saved config differs (before writing).

  Raises:
    ResumeMismatchError: listing every changed field.
  """
  saved = ckpt_lib.read_json(os.path.join(workdir, "config.json"))
  if saved is None or not ckpt_lib.saved_steps(workdir):
    return
  changed = config_changes(saved, json.loads(_config_json(config)))
  if changed:
    shown = changed[:12] + ([f"... and {len(changed) - 12} more"]
                            if len(changed) > 12 else [])
    raise errors.ResumeMismatchError(
        f"{workdir} holds a run with another config, so it cannot resume "
        f"there; changed: {'; '.join(shown)}. Only "
        f"{', '.join(RESUMABLE_FIELDS)} may change on resume: use a new "
        f"--workdir, or set these fields back.")


def _finished_summary(workdir: str, config, num_steps: int) -> dict | None:
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


def _setup_error(error: ValueError) -> errors.ConfigError:
  """Set-up ValueErrors (unknown names, bad values) are config mistakes."""
  if isinstance(error, errors.ConfigError):
    return error
  return errors.ConfigError(str(error))


def _all_finite(tree) -> jax.Array:
  return jax.tree.reduce(lambda ok, x: ok & jnp.all(jnp.isfinite(x)), tree,
                         jnp.bool_(True))


# The loop enters this around the work of every step (fetching the batch,
# dispatching the step, polling for signals). Those steps must not move data
# to the host; the tests replace it with a guard that fails on any implicit
# transfer (jax.transfer_guard cannot see them on CPU, where arrays are
# zero-copy).
_step_guard = contextlib.nullcontext


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str, *,
                       verbose: bool = True,
                       rerun_final_eval: bool = False) -> dict[str, Any]:
  """Trains ``config`` in ``workdir`` (resuming if it has a checkpoint).

  A work dir holds one run: a second process on it is refused (an OS lock,
  released when the holder dies, however it dies), and resuming with a
  changed config is refused before anything is written, except for the
  ``RESUMABLE_FIELDS``. A work dir whose run has finished is left untouched:
  the saved summary is printed and returned at once.

  SIGTERM or SIGINT (Ctrl-C) saves the current step and stops; the summary
  then records ``interrupted: true`` and the step, and rerunning the same
  command resumes. A second Ctrl-C aborts at once. With several processes
  every process saves the same step.

  Args:
    config: see ``experiments/default.py`` for the schema.
    workdir: output directory (created); reusing it resumes the run.
    verbose: progress bar and final summary on stdout.
    rerun_final_eval: on a finished run, restore its last checkpoint and run
      the final evaluation again (updating summary.json and the plot).

  Returns:
    A summary dict: the step, ``interrupted``, the last logged training
    metrics and the final evaluation.

  Raises:
    ConfigError: a config that cannot run (unknown names, batch not divisible
      by the devices, too few views for the loss, zero frequencies).
    ResumeMismatchError: ``workdir`` holds a run of another config.
    WorkdirLockedError: another process trains in ``workdir``.
    WriteError: a metric or checkpoint write failed (disk full, ...); the
      checkpoints written before stay.
    NonFiniteError: a non-finite loss, gradient or parameter; no checkpoint
      holds it, the ones already written are kept.
  """
  mesh = make_mesh(config.get("num_devices", None))
  num_devices = mesh.devices.size
  try:
    _check_config(config, num_devices)
  except ValueError as e:
    raise _setup_error(e) from None
  primary = jax.process_index() == 0
  os.makedirs(workdir, exist_ok=True)
  # Process 0 speaks for the run (all processes of a multi-host run share
  # the work dir).
  lock = _lock.WorkdirLock(workdir) if primary else None
  try:
    return _train_locked(config, workdir, mesh, verbose=verbose,
                         rerun_final_eval=rerun_final_eval)
  finally:
    if lock is not None:
      lock.release()


def _say(verbose, message):
  if verbose and jax.process_index() == 0:
    print(message, flush=True)


def _train_locked(config, workdir, mesh, *, verbose, rerun_final_eval):
  """``train_and_evaluate`` once the work dir is locked."""
  primary = jax.process_index() == 0
  try:
    data = data_lib.build(config.data, seed=config.seed,
                          process_index=jax.process_index(),
                          process_count=jax.process_count())
    config = with_classifier(config, data.num_classes)
    num_steps = total_steps(config, data)
    tx, schedule = make_optimizer(config.optim, num_steps)
    model = models.build(config.model)
    evals = evaluators.build(config, data=data, model=model, workdir=workdir,
                             mesh=mesh)
  except ValueError as e:
    raise _setup_error(e) from None
  _check_resume(workdir, config)
  finished = _finished_summary(workdir, config, num_steps)
  if finished is not None and not rerun_final_eval:
    _say(verbose, f"{workdir} has already finished (step {finished['step']}"
         f" of {num_steps}); nothing to do. Pass --rerun_final_eval to "
         f"evaluate it again, or use a new --workdir.")
    if verbose and primary:
      _print_summary(finished, workdir)
    return finished
  # Validated: from here on the work dir is this run's.
  if primary:
    try:
      with open(os.path.join(workdir, "config.json"), "w") as f:
        f.write(_config_json(config))
    except OSError as e:
      raise errors.write_error(os.path.join(workdir, "config.json"),
                               e) from e
  init_key, base_key = jax.random.split(jax.random.key(config.seed))
  replicated = NamedSharding(mesh, P())
  batch_sharding = NamedSharding(mesh, P("data"))

  @functools.partial(jax.jit, out_shardings=replicated)
  def init_state():
    dummy = jnp.zeros((2,) + tuple(data.input_shape), jnp.float32)
    variables = model.init(init_key, dummy, train=False)
    params = variables["params"]
    return {"params": params,
            "batch_stats": variables.get("batch_stats", {}),
            "opt_state": tx.init(params),
            "step": jnp.zeros((), jnp.int32)}

  state = init_state()
  manager = ckpt_lib.Manager(workdir, every=config.checkpoint.every,
                             keep=config.checkpoint.get("keep", 3))
  if manager.partial:
    _say(verbose, f"Ignoring partial (unfinished) checkpoints: "
         f"{manager.partial}")
  start, restored = manager.restore_latest(
      model={"params": state["params"], "batch_stats": state["batch_stats"]},
      opt={"opt_state": state["opt_state"], "step": state["step"]},
      log=lambda msg: _say(True, msg))
  if start is not None:
    state = {**restored["model"], **restored["opt"]}
    data.restore(restored["data"])
    _say(verbose, f"Resumed from the checkpoint of step {start} in "
         f"{workdir}.")
  start = int(start or 0)

  # The key is an argument, not a closed-over constant: embedding a device
  # array as a constant would copy it to the host when the step compiles.
  def checked_step(state, batch, first_bad, key):
    new_state, metrics = train_step(
        state, batch, model=model, tx=tx, schedule=schedule, config=config,
        data=data, base_key=key)
    finite = (jnp.isfinite(metrics["train/loss"]) &
              jnp.isfinite(metrics["train/grad_norm"]) &
              _all_finite((new_state["params"], new_state["batch_stats"])))
    # The first bad step since the last check stays on device: the loop
    # reads it only where it logs or saves.
    first_bad = jnp.where((first_bad < 0) & ~finite, new_state["step"],
                          first_bad)
    return new_state, metrics, first_bad

  step_fn = jax.jit(checked_step, donate_argnums=(0, 2))
  # Made on the mesh once, not moved every step. A jitted constructor, not
  # device_put: with several processes the replicated sharding spans devices
  # this process cannot address.
  base_key, first_bad = jax.jit(
      lambda: (jax.random.split(jax.random.key(config.seed))[1],
               jnp.int32(-1)), out_shardings=replicated)()
  writer = metric_writer.MetricWriter(workdir, start)
  # Evaluators keep what they track across steps (the fit step) from the
  # rows a resumed run replays.
  evals.resume(writer.rows)
  meta_base = {"input_shape": list(data.input_shape),
               "input_mean": None if data.mean is None else
               np.asarray(data.mean).tolist(),
               "input_std": None if data.std is None else
               np.asarray(data.std).tolist(),
               "config": json.loads(_config_json(config))}

  def save(step, force=False, metrics=None):
    return manager.save(
        step, force=force,
        model=_variables(state),
        opt={"opt_state": state["opt_state"], "step": state["step"]},
        data=data.state(), meta={**meta_base, "step": step,
                                 "metrics": metrics or {}})

  def check_finite(step, metrics):
    bad = int(jax.device_get(first_bad))
    if bad < 0:
      return
    manager.wait()
    values = jax.device_get({k: metrics[k] for k in
                             ("train/loss", "train/grad_norm")})
    raise NonFiniteError(
        f"Non-finite training signal at step {bad} (found at step {step}; "
        f"now loss={float(values['train/loss'])}, "
        f"grad_norm={float(values['train/grad_norm'])}): lower "
        f"config.optim.learning_rate or set config.optim.clip_norm. Last good "
        f"checkpoint: step {manager.latest_step()} in {manager.directory} "
        f"(kept).")

  interrupts = _interrupt.Interrupts(jax.process_count())
  # Global batches, the next config.data.prefetch already sent to devices.
  batches = data.device_batches(batch_sharding)
  progress = None
  if verbose and primary:
    from tqdm import auto as tqdm
    progress = tqdm.tqdm(total=num_steps, initial=start, unit="step",
                         dynamic_ncols=True)
  last = {}
  interrupted = False
  t_last, n_last = time.time(), 0
  step = start
  try:
    while step < num_steps and not evals.stopped:
      with _step_guard():
        state, metrics, first_bad = step_fn(state, next(batches), first_bad,
                                            base_key)
        step += 1
        n_last += 1
        interrupted = interrupts.reached(step)
      is_last = step == num_steps
      # The variables stay on device and a step with no evaluator due costs
      # nothing. A fit evaluator's stop makes this the run's last step: the
      # final evaluations ran with it and a forced checkpoint follows.
      # One read of the on-device finiteness flag per step at most: before
      # a due evaluation, else before anything is written.
      checked = evals.due(step, last=is_last)
      if checked:
        check_finite(step, metrics)
      evaluation = evals.run(step, _variables(state), last=is_last)
      is_last = is_last or evaluation.stop
      logs = (step % config.log_every == 0 or is_last or
              bool(evaluation.metrics) or interrupted)
      # Saves are always forced: orbax's own interval check would ask the
      # preemption service a second time for this step.
      saves = (is_last or interrupted or
               step % config.checkpoint.every == 0)
      if (logs or saves) and not checked:
        # Before anything is written: no row or checkpoint of a broken run.
        check_finite(step, metrics)
      if logs:
        now = time.time()
        row = {k: float(v) for k, v in jax.device_get(metrics).items()}
        row["train/steps_per_sec"] = n_last / max(now - t_last, 1e-9)
        row["train/examples_per_sec"] = (row["train/steps_per_sec"] *
                                         config.data.batch_size)
        t_last, n_last = now, 0
        row.update(evaluation.metrics)
        writer.write(step, row)
        last = row
        if progress is not None:
          progress.set_postfix(loss=f"{row['train/loss']:.4f}")
      if saves:
        save(step, force=True, metrics=last)
      if progress is not None:
        progress.update(1)
      if interrupted:
        manager.wait()
        break
      if is_last:  # Reached num_steps, or an evaluator stopped the run.
        break
    if rerun_final_eval and step == start:
      _say(verbose, f"Re-running the final evaluation of step {step}.")
      last = {**(writer.rows[-1] if writer.rows else {}),
              **evals.run(step, _variables(state), last=True).metrics}
    manager.close()
  except errors.WriteError as e:
    raise errors.WriteError(
        e.errno, f"{e.strerror}. The run stopped at step {step}; last good "
        f"checkpoint: step {_last_good(manager)} in {manager.directory} "
        f"(kept).") from e
  finally:
    if progress is not None:
      progress.close()
    interrupts.restore()
    data.close()
    _close_quietly(manager)
    writer.close()

  if not last and writer.rows:  # Resumed a run that had already finished.
    last = writer.rows[-1]
  summary = {**last, "step": step, "interrupted": interrupted,
             **evals.summary()}
  if primary and writer.rows:
    path = os.path.join(workdir, "summary.json")
    try:
      with open(path, "w") as f:
        json.dump(summary, f, indent=2)
    except OSError as e:
      raise errors.write_error(path, e) from e
    try:
      plots.training_curves(
          writer.rows, os.path.join(workdir, "training_curves.png"))
    except ImportError:
      pass
  if interrupted:
    _say(True, f"{interrupts.signal}: saved step {step} of {num_steps} in "
         f"{manager.directory}; rerun the same command to resume "
         f"(exit status {errors.EXIT_INTERRUPTED}).")
  elif verbose and primary:
    _print_summary(summary, workdir)
  return summary


def _variables(state) -> dict:
  return {"params": state["params"], "batch_stats": state["batch_stats"]}


def _last_good(manager) -> int | None:
  try:
    return manager.latest_step()
  except Exception:  # pylint: disable=broad-except
    return None


def _close_quietly(manager) -> None:
  """Closes after an error, which stays the one reported."""
  try:
    manager.close()
  except Exception:  # pylint: disable=broad-except
    pass


def _print_summary(summary: dict, workdir: str) -> None:
  def get(name):
    value = summary.get(name)
    return "n/a" if value is None else f"{value:.4f}"
  print(f"\n== summary after step {summary.get('step')} ({workdir}) ==")
  print(f"loss {get('train/loss')} | DCL {get('train/dcl')} | NSCL "
        f"{get('train/nscl')} | SupCon {get('train/supcon_out')}")
  print(f"DCL-NSCL gap {get('train/gap')} <= bound {get('train/gap_bound')}")
  print(f"NC1(z) {get('eval/z/nc1')} | ETF distance(z) "
        f"{get('eval/z/etf_distance')} | NCC test acc(h) "
        f"{get('eval/h/ncc_test_acc')}")
  few = [k for k in summary if "fewshot" in k and k.startswith("eval/h/")]
  if few:
    print(f"few-shot NCC acc (h, {few[0].split('/')[-1]}): "
          f"{summary[few[0]]:.4f}")
  if "fit/step" in summary:
    print(f"train acc (noisy labels) {get('fit/train_acc')} | fit at step "
          f"{summary['fit/step']} | test acc {get('fit/test_acc')} | simplex "
          f"distance {get('eval/simplex/distance')}")
  lp = summary.get("eval/h/linear_probe_test_acc")
  if lp is not None:
    print(f"linear probe test acc (h): {lp:.4f}")
