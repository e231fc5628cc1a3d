"""The training run's faults: nothing lost, nothing mixed, nothing hangs.

Checkpoint retention and corruption, resuming with another config, a second
process on a work dir, a full disk, non-finite values, rerunning a finished
run, and steps that never wait for the device.
"""

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys

import jax
import numpy as np
import pytest
from tests.training import test_train
from jax._src import array as jax_array

from cljax.training import _interrupt
from cljax.training import _lock
from cljax.analysis import checkpoints
from cljax.training import errors
from cljax.training import run_identity
from cljax.training import train

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _config(**overrides):
  """test_train's smoke config, without evaluation, at a constant rate."""
  return test_train._config(**{"eval_every": 0, "optim.schedule": "constant",
                               "optim.warmup_steps": 0, **overrides})


def _base_config():
  config = _config(steps=4, log_every=2)
  config.checkpoint.every = 2
  return config


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
  """A finished 4-step run with checkpoints at steps 2 and 4."""
  workdir = str(tmp_path_factory.mktemp("finished") / "run")
  train.train_and_evaluate(_base_config(), workdir, verbose=False)
  assert checkpoints.saved_steps(workdir) == [2, 4]
  return workdir


def _copy(run, tmp_path):
  target = str(tmp_path / "run")
  shutil.copytree(run, target)
  return target


def _snapshot(workdir):
  """Every file with its size and modification time, but the lock file.

  The lock file is the one thing every start writes: it names its holder.
  """
  out = {}
  for root, _, files in os.walk(workdir):
    for name in files:
      if name == _lock.LOCK_NAME:
        continue
      path = os.path.join(root, name)
      stat = os.stat(path)
      out[os.path.relpath(path, workdir)] = (stat.st_size, stat.st_mtime_ns)
  return out


# --- retention ---------------------------------------------------------------

@pytest.mark.parametrize("field,value,match", [
    ("checkpoint.keep", 0, r"config.checkpoint.keep must be >= 1"),
    ("checkpoint.every", 0, r"config.checkpoint.every must be an integer "
     r">= 1"),
    ("log_every", 0, r"config.log_every must be >= 1"),
])
def test_zero_frequencies_and_keep_fail_before_writing(tmp_path, field, value,
                                                       match):
  workdir = tmp_path / "run"
  with pytest.raises(errors.ConfigError, match=match):
    train.train_and_evaluate(_config(**{field: value}), str(workdir),
                             verbose=False)
  assert not workdir.exists()


def test_keep_one_never_deletes_the_latest(tmp_path):
  config = _config(steps=6, log_every=2)
  config.checkpoint.every = 2
  config.checkpoint.keep = 1
  train.train_and_evaluate(config, str(tmp_path), verbose=False)
  assert checkpoints.saved_steps(str(tmp_path)) == [6]


# --- corrupt checkpoints ---------------------------------------------------------

def _truncate_an_array_file(step_dir):
  data = os.path.join(step_dir, "model", "ocdbt.process_0", "d")
  for name in os.listdir(data):
    path = os.path.join(data, name)
    with open(path, "r+b") as f:
      f.truncate(os.path.getsize(path) // 2)


def _remove_meta(step_dir):
  os.remove(os.path.join(step_dir, "meta", "metadata"))


def _empty_opt_manifest(step_dir):
  open(os.path.join(step_dir, "opt", "manifest.ocdbt"), "w").close()


CORRUPTIONS = {"truncated_array": _truncate_an_array_file,
               "missing_meta": _remove_meta,
               "empty_opt_manifest": _empty_opt_manifest}


@pytest.mark.parametrize("kind", ["truncated_array", "missing_meta"])
def test_load_falls_back_from_a_corrupt_latest_checkpoint(
    finished_run, tmp_path, capsys, kind):
  workdir = _copy(finished_run, tmp_path)
  CORRUPTIONS[kind](os.path.join(workdir, "checkpoints", "4"))
  before = _snapshot(workdir)
  run = checkpoints.load(workdir)
  assert run.step == 2
  err = capsys.readouterr().err
  assert "Checkpoint step 4" in err and "corrupt" in err
  assert f"rm -r {os.path.join(workdir, 'checkpoints', '4')}" in err
  assert _snapshot(workdir) == before   # load never changes the work dir
  # An explicit step is not replaced: loading it fails with cljax's error,
  # which names the step's directory and the steps to load instead.
  step_dir = os.path.join(workdir, "checkpoints", "4")
  with pytest.raises(errors.CheckpointsUnreadableError,
                     match=re.escape(step_dir) + r" does not restore .*"
                     r"load another step \(\[2\]\)"):
    checkpoints.load(workdir, step=4)
  assert _snapshot(workdir) == before


def test_load_reads_the_model_past_a_corrupt_optimizer(finished_run, tmp_path):
  # Analysis never touches the optimizer state.
  workdir = _copy(finished_run, tmp_path)
  _empty_opt_manifest(os.path.join(workdir, "checkpoints", "4"))
  assert checkpoints.load(workdir).step == 4


@pytest.mark.parametrize("kind", sorted(CORRUPTIONS))
def test_resume_falls_back_from_a_corrupt_latest_checkpoint(
    finished_run, tmp_path, capsys, kind):
  workdir = _copy(finished_run, tmp_path)
  CORRUPTIONS[kind](os.path.join(workdir, "checkpoints", "4"))
  config = _base_config()
  config.steps = 6
  summary = train.train_and_evaluate(config, workdir, verbose=False)
  out = capsys.readouterr().out
  aside = os.path.join(workdir, "corrupt_checkpoints", "4")
  assert (f"Checkpoint step 4 is corrupt" in out and
          "resumed from step 2" in out and f"rm -r {aside}" in out), out
  assert os.path.isdir(aside)
  assert summary["step"] == 6 and not summary["interrupted"]
  assert checkpoints.saved_steps(workdir) == [2, 4, 6]
  steps = [r["step"] for r in checkpoints.read_metrics(workdir)]
  assert steps == [2, 4, 6]   # Rows after step 2 were replayed, not doubled.


# --- one run per work dir ----------------------------------------------------------

def test_resume_with_another_config_is_refused_before_writing(finished_run,
                                                              tmp_path):
  workdir = _copy(finished_run, tmp_path)
  before = _snapshot(workdir)
  config = _base_config()
  config.steps = 8                            # allowed
  config.loss.kwargs.temperature = 0.2        # not allowed
  config.model.head_kwargs.output_dim = 16    # not allowed
  with pytest.raises(errors.ResumeMismatchError) as info:
    train.train_and_evaluate(config, workdir, verbose=False)
  message = str(info.value)
  assert "loss.kwargs.temperature: 0.5 -> 0.2" in message
  assert "model.head_kwargs.output_dim: 32 -> 16" in message
  assert "steps" not in message.split("changed:")[1].split("Only")[0]
  assert _snapshot(workdir) == before


def test_config_changes_ignores_the_allowed_fields():
  saved = {"steps": 4, "log_every": 2, "checkpoint": {"every": 2, "keep": 3},
           "loss": {"name": "nscl"}, "num_devices": None}
  requested = {"steps": 9, "log_every": 3,
               "checkpoint": {"every": 5, "keep": 1},
               "loss": {"name": "dcl"}, "num_devices": 1, "new": 1}
  assert run_identity.config_changes(saved, requested) == [
      "loss.name: 'nscl' -> 'dcl'", "new: '<absent>' -> 1"]


def test_a_finished_run_is_left_untouched(finished_run, tmp_path, capsys):
  workdir = _copy(finished_run, tmp_path)
  saved = json.load(open(os.path.join(workdir, "summary.json")))
  before = _snapshot(workdir)
  summary = train.train_and_evaluate(_base_config(), workdir)
  assert summary == saved
  assert "has already finished (step 4 of 4); nothing to do" in (
      capsys.readouterr().out)
  assert _snapshot(workdir) == before


def test_a_second_process_is_refused_and_kill_9_frees_the_work_dir(tmp_path):
  workdir = str(tmp_path / "run")
  os.makedirs(workdir)
  holder = subprocess.Popen(
      [sys.executable, "-c",
       "import sys; from cljax.training import _lock; _lock.WorkdirLock(sys.argv[1]);"
       "print('locked', flush=True); sys.stdin.read()", workdir],
      cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
  try:
    assert holder.stdout.readline().strip() == "locked"   # the event
    with pytest.raises(errors.WorkdirLockedError,
                       match=rf"in use by another cljax process \(pid "
                       rf"{holder.pid} on host "):
      train.train_and_evaluate(_base_config(), workdir, verbose=False)
    assert not os.path.exists(os.path.join(workdir, "config.json"))
  finally:
    holder.send_signal(signal.SIGKILL)
    holder.wait(timeout=60)
  _lock.WorkdirLock(workdir).release()   # The kernel dropped the dead lock.


# --- full disk ---------------------------------------------------------------------

@contextlib.contextmanager
def _tiny_file_system(path, size):
  os.makedirs(path)
  mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}",
                            "tmpfs", path], capture_output=True)
  if mounted.returncode:
    pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr!r}")
  try:
    yield path
  finally:
    subprocess.run(["umount", "-l", path], check=False)


def test_a_full_disk_ends_the_run_and_keeps_earlier_checkpoints(tmp_path):
  # Room for the logs and about two checkpoints of the smoke model.
  with _tiny_file_system(str(tmp_path / "disk"), "1400k") as disk:
    workdir = os.path.join(disk, "run")
    proc = subprocess.run(
        [sys.executable, "-m", "cljax.main",
         "--config=experiments/default.py:smoke", f"--workdir={workdir}",
         "--config.steps=100000", "--config.checkpoint.every=2",
         "--config.checkpoint.keep=100", "--config.eval_every=0",
         "--config.log_every=2"], cwd=ROOT, capture_output=True, text=True,
        timeout=1200)   # A hang is the failure this test exists for.
    assert proc.returncode == errors.EXIT_WRITE, proc.stderr[-3000:]
    # Orbax's writer threads also log the OS error; the run's own verdict is
    # the one line of cljax.main.
    [last] = [line for line in proc.stderr.splitlines()
              if line.startswith("cljax: error: ")]
    assert "Event loop is closed" not in proc.stderr
    assert f"file system mounted at {disk}" in last
    assert "No space left on device" in last
    kept = checkpoints.saved_steps(workdir)
    assert kept and f"last good checkpoint: step {kept[-1]}" in last
    assert checkpoints.load(workdir).step == kept[-1]


def _mount_point_of(path):
  """The mount point holding ``path``, from the kernel's mount table.

  The longest mount point that is ``path`` or one of its parents (an
  independent reference for the one ``cljax.training.errors`` finds with
  ``os.path.ismount``).
  """
  path = os.path.realpath(path)
  with open("/proc/self/mounts") as f:
    # Fields are space-separated, spaces inside them written as \040.
    points = [line.split()[1].replace("\\040", " ") for line in f]
  return max((p for p in points
              if path == p or path.startswith(p.rstrip("/") + "/")), key=len)


# (step whose save fails, step the run stops at): the error of an
# asynchronous save surfaces at the next save, or at the final wait.
@pytest.mark.parametrize("fail_at,stop_at", [(4, 6), (8, 8)],
                         ids=["at_the_next_save", "at_the_final_wait"])
def test_a_checkpoint_write_error_ends_the_run_and_keeps_earlier_ones(
    tmp_path, monkeypatch, fail_at, stop_at):
  # The full-disk test above needs mount; here the disk "fills" inside
  # orbax's own writer: the JSON item "meta" of step ``fail_at`` is written
  # by orbax's background commit thread, so the error takes the
  # asynchronous path a real ENOSPC takes.
  import orbax.checkpoint as ocp
  original = ocp.JsonCheckpointHandler._save_fn
  failed = []

  async def full_at_one_step(handler, item, directory):
    # Orbax writes into "<step>.orbax-checkpoint-tmp/meta.orbax-..." and
    # renames once every item is written.
    if (directory.name.split(".")[0] == "meta" and
        item.get("step") == fail_at):
      failed.append(str(directory))
      raise OSError(28, "No space left on device")
    return await original(handler, item, directory)

  monkeypatch.setattr(ocp.JsonCheckpointHandler, "_save_fn", full_at_one_step)
  workdir = str(tmp_path / "run")
  config = _config(steps=8, log_every=2)
  config.checkpoint.every = 2
  config.checkpoint.keep = 100
  with pytest.raises(errors.WriteError) as info:
    train.train_and_evaluate(config, workdir, verbose=False)
  assert len(failed) == 1, failed     # The injected error, once.
  message = str(info.value)
  assert info.value.errno == 28, message
  assert (f"file system mounted at {_mount_point_of(workdir)} " in message and
          "No space left on device" in message), message
  # The failed step never became a checkpoint; the ones before it stay.
  kept = list(range(2, fail_at, 2))
  assert checkpoints.saved_steps(workdir) == kept
  assert (f"The run stopped at step {stop_at}; last good checkpoint: step "
          f"{kept[-1]} in " in message), message
  for step in kept:
    assert checkpoints.load(workdir, step=step).step == step
  assert checkpoints.load(workdir).step == kept[-1]


def test_a_failing_metric_write_names_the_file_system(tmp_path, monkeypatch):
  from cljax.training import metric_writer
  writer = metric_writer.MetricWriter(str(tmp_path), 0, tensorboard=False)

  class Full:
    def write(self, text):
      raise OSError(28, "No space left on device")
    close = flush = lambda self: None

  writer._file = Full()
  with pytest.raises(errors.WriteError, match=r"metrics.jsonl failed on the "
                     r"file system mounted at .*No space left on device"):
    writer.write(1, {"train/loss": 1.0})


# --- non-finite values and asynchronous steps ----------------------------------

def test_no_checkpoint_holds_non_finite_values(tmp_path):
  config = _config(steps=12, log_every=5)
  config.checkpoint.every = 1
  config.optim.learning_rate = 1e30
  with pytest.raises(errors.NonFiniteError,
                     match=r"at step (\d+) \(found at step \1;"):
    train.train_and_evaluate(config, str(tmp_path), verbose=False)
  for step in checkpoints.saved_steps(str(tmp_path)):
    run = checkpoints.load(str(tmp_path), step=step)
    assert all(np.all(np.isfinite(np.asarray(leaf)))
               for leaf in jax.tree.leaves(run.variables))


class _CountImplicitTransfers:
  """Counts device-to-host copies of jax.Arrays (np.asarray, float, print).

  ``jax.transfer_guard`` cannot see them on CPU, where arrays are zero-copy,
  so the copy itself (``ArrayImpl._value``) is counted.
  """

  def __init__(self, monkeypatch):
    self.count = 0
    self.active = False
    original = jax_array.ArrayImpl._value

    def counted(array):
      if self.active:
        self.count += 1
      return original.fget(array)

    monkeypatch.setattr(jax_array.ArrayImpl, "_value", property(counted))

  @contextlib.contextmanager
  def guard(self):
    """The loop's step guard; the first step (which compiles) is not counted:
    lowering may copy a constant once, which is no per-step wait."""
    self.entered = getattr(self, "entered", 0) + 1
    self.active = self.entered > 1
    try:
      with jax.transfer_guard("disallow"):
        yield
    finally:
      self.active = False


def test_the_counter_sees_implicit_transfers(monkeypatch):
  counter = _CountImplicitTransfers(monkeypatch)
  x = jax.jit(lambda a: a + 1)(np.ones((), np.float32))
  for _ in range(2):
    with counter.guard():
      float(x)
  assert counter.count >= 1


def test_steps_that_neither_log_nor_save_never_wait_for_the_device(
    tmp_path, monkeypatch):
  counter = _CountImplicitTransfers(monkeypatch)
  monkeypatch.setattr(train, "_step_guard", counter.guard)
  config = _config(steps=8, log_every=4)
  config.checkpoint.every = 4
  summary = train.train_and_evaluate(config, str(tmp_path), verbose=False)
  assert summary["step"] == 8
  assert counter.count == 0


# --- signals -----------------------------------------------------------------------

def test_a_second_ctrl_c_aborts_at_once():
  script = (
      "import os, signal, sys\n"
      "from cljax.training import _interrupt\n"
      "interrupts = _interrupt.Interrupts(1, announce=print)\n"
      "os.kill(os.getpid(), signal.SIGINT)\n"
      "assert interrupts.reached(1) and interrupts.signal == 'SIGINT'\n"
      "print('first', flush=True)\n"
      "os.kill(os.getpid(), signal.SIGINT)\n"
      "print('not reached', flush=True)\n")
  proc = subprocess.run([sys.executable, "-c", script], cwd=ROOT,
                        capture_output=True, text=True, timeout=120)
  assert proc.returncode == errors.EXIT_ABORTED, proc.stderr
  assert "first" in proc.stdout and "not reached" not in proc.stdout
  assert "Second Ctrl-C: aborted" in proc.stderr


def test_handlers_are_restored():
  before = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)
  interrupts = _interrupt.Interrupts(1)
  assert signal.getsignal(signal.SIGTERM) != before[0]
  interrupts.restore()
  assert (signal.getsignal(signal.SIGTERM),
          signal.getsignal(signal.SIGINT)) == before
