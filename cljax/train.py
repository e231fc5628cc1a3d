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
"""

from __future__ import annotations

import functools
import json
import math
import os
import signal
import time
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from cljax import checkpoint as ckpt_lib
from cljax import data as data_lib
from cljax import evaluators
from cljax import losses
from cljax import models
from cljax.evaluators import objective
# Moved to cljax.evaluators; kept here so old imports keep working.
from cljax.evaluators import first_fit_step  # noqa: F401
from cljax.evaluators import is_cross_entropy
from cljax.evaluators import objective_features  # noqa: F401
from cljax.evaluators import simplex_geometry  # noqa: F401
from cljax.evaluators import with_classifier


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
  needs_views = config.loss.name in ("ntxent", "dcl", "nscl")
  kwargs = dict(config.loss.get("kwargs", {}))
  if needs_views and config.data.num_views < 2 and not kwargs.get(
      "include_self_pairs", False):
    raise ValueError(
        f"config.data.num_views={config.data.num_views} but the loss "
        f"{config.loss.name!r} takes its positives from other views: set "
        f"config.data.num_views >= 2.")
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


# --- optimiser --------------------------------------------------------------

def make_optimizer(optim, steps: int):
  """An optax optimiser and its learning-rate schedule from ``config.optim``.

  Fields: name (sgd | adam | adamw | lars), learning_rate, warmup_steps,
  schedule (constant | cosine | poly), power (poly), momentum, weight_decay,
  clip_norm (0 = none).
  """
  lr = float(optim.learning_rate)
  warmup = int(optim.get("warmup_steps", 0))
  kind = optim.get("schedule", "cosine")
  if kind == "cosine":
    decay = optax.cosine_decay_schedule(lr, max(steps - warmup, 1))
  elif kind == "poly":
    decay = optax.polynomial_schedule(lr, 0.0, optim.get("power", 5.0),
                                      max(steps - warmup, 1))
  elif kind == "constant":
    decay = optax.constant_schedule(lr)
  else:
    raise ValueError(f"Unknown config.optim.schedule {kind!r}; choose one of "
                     f"['constant', 'cosine', 'poly'].")
  schedule = decay if warmup == 0 else optax.join_schedules(
      [optax.linear_schedule(0.0, lr, warmup), decay], [warmup])
  name = optim.name
  wd = float(optim.get("weight_decay", 0.0))
  momentum = float(optim.get("momentum", 0.9))
  if name == "sgd":
    tx = optax.chain(optax.add_decayed_weights(wd),
                     optax.sgd(schedule, momentum=momentum))
  elif name == "adam":
    tx = optax.chain(optax.add_decayed_weights(wd), optax.adam(schedule))
  elif name == "adamw":
    tx = optax.adamw(schedule, weight_decay=wd)
  elif name == "lars":
    tx = optax.lars(schedule, weight_decay=wd, momentum=momentum)
  else:
    raise ValueError(f"Unknown config.optim.name {name!r}; choose one of "
                     f"['adam', 'adamw', 'lars', 'sgd'].")
  clip = float(optim.get("clip_norm", 0.0))
  if clip > 0:
    tx = optax.chain(optax.clip_by_global_norm(clip), tx)
  return tx, schedule


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
    if kwargs.get("estimator") == "sampled":
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


# --- logging -----------------------------------------------------------------

class _Writer:
  """metrics.jsonl (+ TensorBoard event files when tensorboardX is present),
  written by process 0 only."""

  def __init__(self, workdir: str, start_step: int):
    self.active = jax.process_index() == 0
    self.rows = []
    self._file = None
    self._tb = None
    if not self.active:
      return
    # Rows logged after the checkpoint we resume from are replayed by the
    # resumed run, so they are dropped rather than duplicated.
    self.rows = [r for r in ckpt_lib.read_metrics(workdir)
                 if r["step"] <= start_step]
    path = os.path.join(workdir, "metrics.jsonl")
    with open(path, "w") as f:
      f.writelines(json.dumps(r) + "\n" for r in self.rows)
    self._file = open(path, "a")
    try:
      import tensorboardX  # Optional: TensorBoard without TensorFlow.
      self._tb = tensorboardX.SummaryWriter(os.path.join(workdir, "tb"))
    except ImportError:
      self._tb = None

  def write(self, step: int, metrics: dict[str, float]) -> None:
    if not self.active:
      return
    row = {"step": int(step), **metrics}
    self.rows.append(row)
    self._file.write(json.dumps(row) + "\n")
    self._file.flush()
    if self._tb is not None:
      for name, value in metrics.items():
        self._tb.add_scalar(name, value, step)

  def close(self) -> None:
    if self._file:
      self._file.close()
    if self._tb is not None:
      self._tb.close()


def _plot(rows: list[dict], path: str) -> None:
  """Training curves: the optimised loss, the CL/NSCL pair with the gap and
  its bound, and the eval geometry."""
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt

  def series(name):
    pts = [(r["step"], r[name]) for r in rows if name in r]
    return ([p[0] for p in pts], [p[1] for p in pts])

  fig, axes = plt.subplots(1, 3, figsize=(15, 4))
  axes[0].plot(*series("train/loss"), label="optimised loss")
  axes[0].set_title("training loss")
  for name in ("dcl", "nscl", "ntxent", "supcon_out"):
    axes[1].plot(*series(f"train/{name}"), label=name)
  axes[1].set_title("all losses (monitor temperature)")
  axes[2].plot(*series("train/gap"), label="DCL - NSCL gap")
  axes[2].plot(*series("train/gap_bound"), "--", label="Theorem-1 bound")
  steps, nc1 = series("eval/z/nc1")
  if steps:
    ax = axes[2].twinx()
    ax.plot(steps, nc1, "k.-", label="NC1 (z)")
    ax.set_yscale("log")
    ax.legend(loc="center right")
  axes[2].set_title("gap vs bound")
  for ax in axes:
    ax.set_xlabel("step")
    ax.legend(loc="upper right")
  fig.tight_layout()
  fig.savefig(path, dpi=100)
  plt.close(fig)


# --- the loop -----------------------------------------------------------------

class NonFiniteError(FloatingPointError):
  """The loss or gradient became NaN/inf; the message names the step."""


def _config_json(config) -> str:
  return config.to_json(sort_keys=True) if hasattr(config, "to_json") else (
      json.dumps(config, sort_keys=True))


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str, *,
                       verbose: bool = True) -> dict[str, Any]:
  """Trains ``config`` in ``workdir`` (resuming if it has a checkpoint).

  Args:
    config: see ``experiments/default.py`` for the schema.
    workdir: output directory (created); reusing it resumes the run.
    verbose: progress bar and final summary on stdout.

  Returns:
    A summary dict: the last logged training metrics and the final
    evaluation.

  Raises:
    ValueError: a config that cannot run (unknown names, batch not divisible
      by the devices, too few views for the loss).
    NonFiniteError: a non-finite loss or gradient; checkpoints already
      written are kept.
  """
  mesh = make_mesh(config.get("num_devices", None))
  num_devices = mesh.devices.size
  _check_config(config, num_devices)
  os.makedirs(workdir, exist_ok=True)
  data = data_lib.build(config.data, seed=config.seed,
                        process_index=jax.process_index(),
                        process_count=jax.process_count())
  config = with_classifier(config, data.num_classes)
  if jax.process_index() == 0:
    with open(os.path.join(workdir, "config.json"), "w") as f:
      f.write(_config_json(config))
  model = models.build(config.model)
  evals = evaluators.build(config, data=data, model=model, workdir=workdir,
                           mesh=mesh)
  num_steps = total_steps(config, data)
  tx, schedule = make_optimizer(config.optim, num_steps)
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
  if manager.partial and verbose:
    print(f"Ignoring partial (unfinished) checkpoints: {manager.partial}")
  start = manager.latest_step()
  if start is not None:
    restored = manager.restore(
        start, model={"params": state["params"],
                      "batch_stats": state["batch_stats"]},
        opt={"opt_state": state["opt_state"], "step": state["step"]})
    state = {**restored["model"], **restored["opt"]}
    data.restore(restored["data"])
    if verbose:
      print(f"Resumed from the checkpoint of step {start} in {workdir}.")
  start = int(start or 0)

  step_fn = jax.jit(functools.partial(
      train_step, model=model, tx=tx, schedule=schedule, config=config,
      data=data, base_key=base_key), donate_argnums=0)
  writer = _Writer(workdir, start)
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
        model={"params": state["params"],
               "batch_stats": state["batch_stats"]},
        opt={"opt_state": state["opt_state"], "step": state["step"]},
        data=data.state(), meta={**meta_base, "step": step,
                                 "metrics": metrics or {}})

  stop = {"signal": None}

  def on_sigterm(signum, frame):
    del frame
    stop["signal"] = signum

  previous = signal.signal(signal.SIGTERM, on_sigterm)
  progress = None
  if verbose and jax.process_index() == 0:
    from tqdm import auto as tqdm
    progress = tqdm.tqdm(total=num_steps, initial=start, unit="step",
                         dynamic_ncols=True)
  last = {}
  t_last, n_last = time.time(), 0
  try:
    step = start
    while step < num_steps and not evals.stopped:
      batch = next(data)
      global_batch = {
          "x": jax.make_array_from_process_local_data(
              batch_sharding, batch["x"]),
          "label": jax.make_array_from_process_local_data(
              batch_sharding, batch["label"])}
      state, metrics = step_fn(state, global_batch)
      step += 1
      loss = float(metrics["train/loss"])
      grad_norm = float(metrics["train/grad_norm"])
      if not (math.isfinite(loss) and math.isfinite(grad_norm)):
        manager.wait()
        raise NonFiniteError(
            f"Non-finite training signal at step {step}: loss={loss}, "
            f"grad_norm={grad_norm}. Last good checkpoint: step "
            f"{manager.latest_step()} in {manager.directory} (kept).")
      n_last += 1
      # The variables stay on device; a step with no evaluator due costs
      # nothing. A fit evaluator's stop makes this the run's last step: the
      # final evaluations ran with it and a forced checkpoint follows.
      evaluation = evals.run(step, {"params": state["params"],
                                    "batch_stats": state["batch_stats"]},
                             last=step == num_steps)
      is_last = step == num_steps or evaluation.stop
      if step % config.log_every == 0 or is_last or evaluation.metrics:
        now = time.time()
        row = {k: float(v) for k, v in metrics.items()}
        row["train/steps_per_sec"] = n_last / max(now - t_last, 1e-9)
        row["train/examples_per_sec"] = (row["train/steps_per_sec"] *
                                         config.data.batch_size)
        t_last, n_last = now, 0
        row.update(evaluation.metrics)
        writer.write(step, row)
        last = row
      save(step, force=is_last or stop["signal"] is not None, metrics=last)
      if progress is not None:
        progress.update(1)
        progress.set_postfix(loss=f"{loss:.4f}")
      if stop["signal"] is not None:
        manager.wait()
        if verbose:
          print(f"\nSIGTERM: saved step {step}; exiting cleanly.")
        break
      if is_last:  # Reached num_steps, or an evaluator stopped the run.
        break
  finally:
    if progress is not None:
      progress.close()
    manager.close()
    writer.close()
    signal.signal(signal.SIGTERM, previous)

  if not last and writer.rows:  # Resumed a run that had already finished.
    last = writer.rows[-1]
  summary = {"step": step, **last, **evals.summary()}
  if jax.process_index() == 0 and writer.rows:
    with open(os.path.join(workdir, "summary.json"), "w") as f:
      json.dump(summary, f, indent=2)
    try:
      _plot(writer.rows, os.path.join(workdir, "training_curves.png"))
    except ImportError:
      pass
  if verbose and jax.process_index() == 0:
    _print_summary(summary, workdir)
  return summary


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
