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
``config.evals`` (``cljax.training.evaluators``: geometry, probes, few-shot,
simplex, P2's fit detector, P1's whole-split gap) run every ``every`` steps
and at the end, on clean (unaugmented) inputs embedded once per step.

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
same work dir continues bit for bit on the same device count. On another
count (checkpoints record theirs) the sums over the batch run in another
order, so results match to float rounding, and the resume says so.

Steps run asynchronously: nothing is copied to the host on a step that
neither logs nor checkpoints. Whether the step's loss, gradient and
parameters are finite is tracked on device and read where the loop logs or
saves, so no checkpoint holds a non-finite value. The faults a run ends with
(``cljax.training.errors``) each have a documented exit status in
``cljax.main``. What a run is built from before its first step (the mesh,
data, model, optimiser, evaluators and the initial or restored state) is
``cljax.training.startup``.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import sys
import time
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from cljax.training import _interrupt
from cljax.training import _lock
from cljax.analysis import checkpoints
from cljax.training import checkpoint as ckpt_lib
from cljax.training import errors
from cljax import losses
from cljax.training import metric_writer
from cljax.analysis import plots
from cljax.training import run_identity
from cljax.training import startup
from cljax.training.errors import NonFiniteError
from cljax.training.train_step import checked_step


# The loop enters this around the work of every step (fetching the batch,
# dispatching the step, polling for signals). Those steps must not move data
# to the host; the tests replace it with a guard that fails on any implicit
# transfer (jax.transfer_guard cannot see them on CPU, where arrays are
# zero-copy).
_step_guard = contextlib.nullcontext


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str, *,
                       verbose: bool = True,
                       rerun_final_eval: bool = False,
                       progress: bool | None = None) -> dict[str, Any]:
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
    verbose: progress bar (see ``progress``) and final summary on stdout.
    rerun_final_eval: on a finished run, restore its last checkpoint and run
      the final evaluation again (updating summary.json and the plot).
    progress: the progress bar (with ``verbose``): True or False, or None
      to draw it only where it redraws in place (stderr is a terminal, or a
      Jupyter kernel); in a log file its carriage returns make one long line.

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
    NoValidAnchorsError: a logged step's loss had no valid anchor (it
      trained nothing); the checkpoints already written are kept.
  """
  try:
    mesh = startup.make_mesh(config.get("num_devices", None))
    # Everything checkable without data or a trace, before anything is
    # written: a mistake leaves the work dir as it was.
    run_identity.check_start(config, workdir, mesh.devices.size)
  except ValueError as e:
    raise run_identity.setup_error(e) from None
  primary = jax.process_index() == 0
  os.makedirs(workdir, exist_ok=True)
  # Process 0 speaks for the run (all processes of a multi-host run share
  # the work dir).
  lock = _lock.WorkdirLock(workdir) if primary else None
  try:
    return _train_locked(config, workdir, mesh, verbose=verbose,
                         rerun_final_eval=rerun_final_eval,
                         progress=progress)
  finally:
    if lock is not None:
      lock.release()


def show_progress(progress: bool | None) -> bool:
  """Whether to draw progress bars: ``progress``, or if None, whether stderr
  is a terminal (or this is a Jupyter kernel)."""
  if progress is not None:
    return bool(progress)
  # tqdm redraws its line with carriage returns, which only a terminal or a
  # notebook (tqdm.auto's widget) shows in place; a log would get one line
  # of every redraw.
  isatty = getattr(sys.stderr, "isatty", None)
  return bool(isatty and isatty()) or "ipykernel" in sys.modules


def _train_locked(config, workdir, mesh, *, verbose, rerun_final_eval,
                  progress=None):
  """``train_and_evaluate`` once the work dir is locked, phase by phase."""
  run = startup.set_up(config, workdir, mesh)
  run_identity.check_resume(workdir, run.config)
  finished = run_identity.finished_summary(workdir, run.config, run.num_steps)
  if finished is not None and not rerun_final_eval:
    startup.say(verbose, f"{workdir} has already finished (step "
                f"{finished['step']} of {run.num_steps}); nothing to do. Pass "
                f"--rerun_final_eval to evaluate it again, or use a new "
                f"--workdir.")
    if verbose and jax.process_index() == 0:
      _print_summary(finished, workdir)
    return finished
  # Validated: from here on the work dir is this run's.
  startup.write_config(workdir, run.config)
  loop = _Loop(run, workdir, mesh, verbose=verbose)
  try:
    loop.train(rerun_final_eval=rerun_final_eval,
               progress=verbose and show_progress(progress))
    return _finish(loop, workdir, verbose=verbose)
  finally:
    # Only once the run has said where it saved: until then a further
    # signal must meet the loop's handler, not the default action.
    if loop.interrupts is not None:
      loop.interrupts.restore()


class _Loop:
  """The state of a run on device and the steps that advance it.

  Set up restores the latest checkpoint of the work dir (or initialises);
  ``train`` then steps, logs, evaluates and checkpoints until the last step,
  an evaluator's stop or a signal. Afterwards ``step``, ``last`` (the last
  logged row), ``interrupted`` and ``writer.rows`` describe the run.
  """

  def __init__(self, run: startup.Run, workdir: str, mesh, *, verbose: bool):
    self.run, self.verbose = run, verbose
    self.primary = jax.process_index() == 0
    self.replicated = NamedSharding(mesh, P())
    self.batch_sharding = NamedSharding(mesh, P("data"))
    # Saved with every checkpoint: a resume on another count is not exact.
    self.num_devices = int(mesh.devices.size)
    self.manager = ckpt_lib.Manager(
        workdir, every=run.config.checkpoint.every,
        keep=run.config.checkpoint.get("keep", 3))
    self.state, self.start = startup.initial_state(
        run, self.manager, self.replicated, num_devices=self.num_devices,
        workdir=workdir, verbose=verbose)
    self.step_fn = jax.jit(functools.partial(
        checked_step, model=run.model, tx=run.tx, schedule=run.schedule,
        config=run.config, data=run.data), donate_argnums=(0, 2))
    # Made on the mesh once, not moved every step. A jitted constructor, not
    # device_put: with several processes the replicated sharding spans
    # devices this process cannot address. The key comes in as (host) key
    # data, not a constant, so runs of other seeds reuse the program.
    self.base_key, self.first_bad = jax.jit(
        lambda data: (jax.random.wrap_key_data(data), jnp.int32(-1)),
        out_shardings=self.replicated)(startup.key_data(run.config.seed, 1))
    self.writer = metric_writer.MetricWriter(workdir, self.start)
    # Evaluators keep what they track across steps (the fit step) from the
    # rows a resumed run replays.
    run.evals.resume(self.writer.rows)
    data = run.data
    self.meta_base = {
        "num_devices": self.num_devices,
        "input_shape": list(data.input_shape),
        "input_mean": None if data.mean is None else
        np.asarray(data.mean).tolist(),
        "input_std": None if data.std is None else
        np.asarray(data.std).tolist(),
        "config": json.loads(run_identity.config_json(run.config))}
    self.step, self.last, self.interrupted = self.start, {}, False
    self.interrupts = None

  def save(self, metrics) -> None:
    # Always forced: orbax's own interval check would ask the preemption
    # service a second time for this step.
    self.manager.save(
        self.step, force=True, model=startup.variables(self.state),
        opt={"opt_state": self.state["opt_state"],
             "step": self.state["step"]},
        data=self.run.data.state(),
        meta={**self.meta_base, "step": self.step, "metrics": metrics or {}})

  def check_anchors(self, metrics) -> None:
    """Stops the run at a logged step whose loss had no valid anchor.

    Such a step's loss and gradient are 0: the batches of this config give
    the loss nothing to train on (``run_identity.anchor_mistake`` refuses
    at start the configs where that is certain).

    Raises:
      NoValidAnchorsError: naming the step, what the anchors lacked and
        the fix.
    """
    if "train/valid_anchors" not in metrics:  # Cross-entropy: no anchors.
      return
    if int(jax.device_get(metrics["train/valid_anchors"])) > 0:
      return
    self.manager.wait()
    config = self.run.config
    batch, views = config.data.batch_size, config.data.num_views
    needs = losses.registry.anchor_needs(
        config.loss.name, dict(config.loss.get("kwargs", {})), views)
    raise errors.NoValidAnchorsError(
        f"Step {self.step} trained nothing: none of the {batch * views} "
        f"anchors of the loss {config.loss.name!r} was valid (each needs "
        f"{' and '.join(needs) or 'a positive and a negative'} in its batch; "
        f"config.data.batch_size={batch}, num_views={views}, sampler "
        f"{config.data.sampler!r}), so its loss and gradient were 0. Use a "
        f"larger config.data.batch_size, or config.data.sampler='balanced' "
        f"(every batch of >= 2 samples then holds two classes, and more "
        f"samples than classes gives each class two). Last checkpoint: step "
        f"{self.manager.latest_step()} in {self.manager.directory} (kept).")

  def check_finite(self, metrics) -> None:
    """Reads the on-device flag; raises NonFiniteError on a bad step."""
    bad = int(jax.device_get(self.first_bad))
    if bad < 0:
      return
    self.manager.wait()
    values = jax.device_get({k: metrics[k] for k in
                             ("train/loss", "train/grad_norm")})
    raise NonFiniteError(
        f"Non-finite training signal at step {bad} (found at step "
        f"{self.step}; now loss={float(values['train/loss'])}, "
        f"grad_norm={float(values['train/grad_norm'])}): lower "
        f"config.optim.learning_rate or set config.optim.clip_norm. Last good "
        f"checkpoint: step {self.manager.latest_step()} in "
        f"{self.manager.directory} (kept).")

  def log(self, metrics, evaluation, window) -> dict:
    """Writes the row of this step; ``window`` = (time, steps) since last."""
    # Fetched before the clock is read: dispatch runs ahead of the device,
    # and the window must end when its last step has finished.
    row = {k: float(v) for k, v in jax.device_get(metrics).items()}
    now = time.time()
    row["train/steps_per_sec"] = window[1] / max(now - window[0], 1e-9)
    row["train/examples_per_sec"] = (row["train/steps_per_sec"] *
                                     self.run.config.data.batch_size)
    row.update(evaluation.metrics)
    self.writer.write(self.step, row)
    return row

  def train(self, *, rerun_final_eval: bool, progress: bool = True) -> None:
    """Steps to the end (or a stop); closes the data, writer and manager.

    Args:
      rerun_final_eval: see ``train_and_evaluate``.
      progress: draw a tqdm bar (process 0, with ``verbose``).
    """
    run, manager = self.run, self.manager
    self.interrupts = _interrupt.Interrupts(jax.process_count())
    # Global batches, the next config.data.prefetch already sent to devices.
    batches = run.data.device_batches(self.batch_sharding)
    bar = None
    if progress and self.verbose and self.primary:
      from tqdm import auto as tqdm
      bar = tqdm.tqdm(total=run.num_steps, initial=self.start, unit="step",
                      dynamic_ncols=True)
    try:
      self._steps(batches, bar)
      if rerun_final_eval and self.step == self.start:
        startup.say(self.verbose, f"Re-running the final evaluation of step "
                    f"{self.step}.")
        self.last = {
            **(self.writer.rows[-1] if self.writer.rows else {}),
            **run.evals.run(self.step, startup.variables(self.state),
                            last=True).metrics}
      manager.close()
    except errors.WriteError as e:
      raise errors.WriteError(
          e.errno, f"{e.strerror}. The run stopped at step {self.step}; last "
          f"good checkpoint: step {_last_good(manager)} in "
          f"{manager.directory} (kept).") from e
    finally:
      if bar is not None:
        bar.close()
      run.data.close()
      manager.close_quietly()
      self.writer.close()

  def _steps(self, batches, progress) -> None:
    run, config = self.run, self.run.config
    window = (time.time(), 0)
    while self.step < run.num_steps and not run.evals.stopped:
      with _step_guard():
        self.state, metrics, self.first_bad = self.step_fn(
            self.state, next(batches), self.first_bad, self.base_key)
        self.step += 1
        window = (window[0], window[1] + 1)
        self.interrupted = self.interrupts.reached(self.step)
      step = self.step
      is_last = step == run.num_steps
      # The variables stay on device and a step with no evaluator due costs
      # nothing. A fit evaluator's stop makes this the run's last step: the
      # final evaluations ran with it and a forced checkpoint follows.
      # One read of the on-device finiteness flag per step at most: before
      # a due evaluation, else before anything is written.
      checked = run.evals.due(step, last=is_last)
      if checked:
        self.check_finite(metrics)
      evaluation = run.evals.run(step, startup.variables(self.state),
                                 last=is_last)
      is_last = is_last or evaluation.stop
      logs = (step % config.log_every == 0 or is_last or
              bool(evaluation.metrics) or self.interrupted)
      saves = (is_last or self.interrupted or
               step % config.checkpoint.every == 0)
      if (logs or saves) and not checked:
        # Before anything is written: no row or checkpoint of a broken run.
        self.check_finite(metrics)
      if logs:
        self.check_anchors(metrics)
        self.last = self.log(metrics, evaluation, window)
        window = (time.time(), 0)
        if progress is not None:
          progress.set_postfix(loss=f"{self.last['train/loss']:.4f}")
      if saves:
        self.save(self.last)
      if progress is not None:
        progress.update(1)
      if self.interrupted:
        self.manager.wait()
        break
      if is_last:  # Reached num_steps, or an evaluator stopped the run.
        break


def _finish(loop: _Loop, workdir: str, *, verbose: bool) -> dict[str, Any]:
  """Writes the summary and the training curves; says how the run ended."""
  rows = loop.writer.rows
  last = loop.last or (rows[-1] if rows else {})  # Resumed a finished run.
  summary = {**last, "step": loop.step, "interrupted": loop.interrupted,
             **loop.run.evals.summary()}
  if loop.primary and rows:
    path = os.path.join(workdir, "summary.json")
    try:
      with open(path, "w") as f:
        json.dump(summary, f, indent=2)
    except OSError as e:
      raise errors.write_error(path, e) from e
    try:
      plots.training_curves(rows, os.path.join(workdir,
                                               "training_curves.png"))
    except ImportError:
      pass
  if loop.interrupted:
    startup.say(True, f"{loop.interrupts.signal}: saved step {loop.step} of "
                f"{loop.run.num_steps} in {loop.manager.directory}; rerun the "
                f"same command to resume (exit status "
                f"{errors.EXIT_INTERRUPTED}).")
  elif verbose and loop.primary:
    _print_summary(summary, workdir)
  return summary


def _last_good(manager) -> int | None:
  """The newest checkpoint that is finished on disk, after a write error.

  Orbax's own record may list a step whose asynchronous save was still
  under way when another write (an event file, metrics.jsonl) failed, and
  that save may fail in turn on the same full disk: only a finalised step
  directory counts.
  """
  try:
    manager.wait()
  except Exception:  # pylint: disable=broad-except
    pass   # The first error is the one reported.
  steps = checkpoints.saved_steps(manager.workdir)
  return steps[-1] if steps else None


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
