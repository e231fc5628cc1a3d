"""The train loop end to end: learning, every loss, devices, resume, faults."""

import json
import os
import signal
import subprocess
import sys
import time

import jax
import numpy as np
import pytest

from cljax.training import checkpoint
from cljax.analysis import checkpoints
from cljax.training import errors
from cljax.training import train
from experiments import default

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _config(**overrides):
  config = default.get_config("smoke")
  config.evals.linear_probe.every = 0
  for path, value in overrides.items():
    node = config
    *parents, leaf = path.split(".")
    for p in parents:
      node = node[p]
    node[leaf] = value
  return config


def _params(workdir):
  run = checkpoints.load(str(workdir))
  return run, jax.tree.leaves(run.variables)


def test_default_config_learns(tmp_path):
  config = _config(steps=40, log_every=5, eval_every=10)
  summary = train.train_and_evaluate(config, str(tmp_path), verbose=False)
  rows = [json.loads(l) for l in open(tmp_path / "metrics.jsonl")]
  losses = [r["train/loss"] for r in rows]
  assert np.mean(losses[-2:]) < np.mean(losses[:2])
  nc1 = [r["eval/z/nc1"] for r in rows if "eval/z/nc1" in r]
  assert len(nc1) == 4 and nc1[-1] < nc1[0]
  assert summary["step"] == 40
  for r in rows:   # The gap and its bound are logged every logged step.
    assert -1e-5 <= r["train/gap"] <= r["train/gap_bound"] + 1e-5
  assert os.path.exists(tmp_path / "training_curves.png")
  assert os.path.exists(tmp_path / "config.json")
  assert any(f.startswith("events") for f in os.listdir(tmp_path / "tb"))


# Each loss with the monitor settings under which ``losses.all_losses`` (the
# loop's monitor: a second implementation, checked in test_losses against
# the single losses, and those against NumPy) logs the same loss of the same
# batch under ``monitored``.
@pytest.mark.parametrize("name,kwargs,monitor,monitored", [
    ("ntxent", {"temperature": 0.5}, {"temperature": 0.5}, "ntxent"),
    ("dcl", {}, {"temperature": 1.0}, "dcl"),
    ("supcon", {"temperature": 0.1}, {"temperature": 0.1}, "supcon_out"),
    # hard_contrastive's defaults: different-class negatives (HSCL), exact
    # expectation, tau = 1, the ball.
    ("hard_contrastive", {"beta": 2.0},
     {"temperature": 1.0, "beta": 2.0, "normalize": "ball"}, "hscl"),
])
def test_every_loss_trains_through_the_loop(tmp_path, name, kwargs, monitor,
                                            monitored):
  # A constant rate: warmup would make step 1's rate, and update, zero.
  config = _config(steps=2, log_every=1, eval_every=2,
                   **{"optim.schedule": "constant", "optim.warmup_steps": 0})
  config.loss.name = name
  config.loss.kwargs = kwargs
  config.monitor.update(monitor)
  config.checkpoint.every = 1
  summary = train.train_and_evaluate(config, str(tmp_path), verbose=False)
  saved = json.load(open(tmp_path / "config.json"))["loss"]
  assert saved["name"] == name and saved["kwargs"] == kwargs
  rows = [json.loads(l) for l in open(tmp_path / "metrics.jsonl")]
  assert [r["step"] for r in rows] == [1, 2]
  assert summary["train/loss"] == rows[-1]["train/loss"]
  for r in rows:
    # The optimised loss is the requested one: it equals its monitor and
    # not the default config's NSCL (the loss a loop ignoring
    # config.loss.name would train), which differs on these batches.
    assert r["train/loss"] == pytest.approx(r[f"train/{monitored}"],
                                            rel=1e-5, abs=1e-6), (r, monitored)
    assert r["train/nscl"] != pytest.approx(r[f"train/{monitored}"],
                                            rel=1e-3), (r, monitored)
    # Each step followed a nonzero, finite gradient.
    assert 0 < r["train/grad_norm"] < np.inf
    assert 0 < r["train/update_norm"] < np.inf
  after = [jax.tree.leaves(checkpoints.load(str(tmp_path), step=s).variables)
           for s in (1, 2)]
  assert any(not np.array_equal(np.asarray(a), np.asarray(b))
             for a, b in zip(*after))   # Step 2 changed the parameters.


def test_sampled_hard_negatives_draw_with_the_step_key(tmp_path):
  # Jiang et al.'s sampled estimator needs a key; each step draws afresh.
  config = _config(steps=3, log_every=1, eval_every=0)
  config.loss.name = "hscl"
  config.loss.kwargs = {"beta": 2.0, "estimator": "sampled",
                        "num_negatives": 16}
  summary = train.train_and_evaluate(config, str(tmp_path), verbose=False)
  assert np.isfinite(summary["train/loss"])
  rows = [json.loads(l) for l in open(tmp_path / "metrics.jsonl")]
  assert len(rows) == 3
  # eval_every = 0: no evaluation at all, not even at the end.
  assert not any(k.startswith("eval/") for r in rows for k in r)


def test_epochs_set_the_number_of_steps(tmp_path):
  config = _config(log_every=100, eval_every=100)
  config.epochs = 0.02
  config.evals.geometry.num_train = 100   # shared by the evaluators
  from cljax import data
  per_epoch = data.build(config.data, seed=config.seed).steps_per_epoch
  summary = train.train_and_evaluate(config, str(tmp_path), verbose=False)
  assert per_epoch > 50 and summary["step"] == round(0.02 * per_epoch)


def test_bfloat16_compute_trains(tmp_path):
  config = _config(steps=2, log_every=1, eval_every=2)
  config.model.dtype = "bfloat16"
  summary = train.train_and_evaluate(config, str(tmp_path), verbose=False)
  assert np.isfinite(summary["train/loss"])
  assert all(np.asarray(leaf).dtype == np.float32
             for leaf in _params(tmp_path)[1])   # params stay float32


def test_eight_devices_equal_one_device(tmp_path):
  assert jax.device_count() == 8
  results = []
  for n in (1, 8):
    config = _config(steps=3, log_every=3, eval_every=3, num_devices=n)
    train.train_and_evaluate(config, str(tmp_path / str(n)), verbose=False)
    results.append(_params(tmp_path / str(n))[1])
  for a, b in zip(*results):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=2e-5,
                               atol=2e-6)


def _launch(workdir, *overrides):
  env = dict(os.environ, PYTHONUNBUFFERED="1")
  return subprocess.Popen(
      [sys.executable, "-m", "cljax.main",
       "--config=experiments/default.py:smoke", f"--workdir={workdir}",
       "--config.optim.schedule=constant", "--config.optim.warmup_steps=0",
       "--config.evals.linear_probe.every=0", *overrides],
      cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
      text=True)


def _wait_for_checkpoint(workdir, proc, timeout=1800):
  """Waits for the first finalised checkpoint (its commit marker).

  The bound only stops a broken run from hanging the suite; a loaded machine
  merely takes longer to reach the event.
  """
  directory = os.path.join(workdir, "checkpoints")
  t_end = time.time() + timeout
  while time.time() < t_end:
    if proc.poll() is not None:
      raise AssertionError(f"run ended early:\n{proc.stdout.read()}")
    if os.path.isdir(directory) and any(
        d.isdigit() and os.path.exists(
            os.path.join(directory, d, "commit_success.txt"))
        for d in os.listdir(directory)):
      return
    time.sleep(0.02)   # Polling interval, not a wait for the event.
  proc.kill()
  raise AssertionError(f"no checkpoint committed within {timeout} s")


def _wait_for_first_row(workdir, proc, timeout=1800):
  """Waits until the run has logged a row, i.e. training is under way."""
  path = os.path.join(workdir, "metrics.jsonl")
  t_end = time.time() + timeout
  while not os.path.exists(path) or os.path.getsize(path) == 0:
    assert proc.poll() is None, proc.stdout.read()
    assert time.time() < t_end, "no row logged"
    time.sleep(0.05)   # Polling interval, not a wait for the event.


def test_sigkill_then_resume_is_bit_exact(tmp_path):
  reference = _config(steps=16, eval_every=16, log_every=4)
  reference.optim.schedule = "constant"
  reference.optim.warmup_steps = 0
  reference.checkpoint.every = 4
  train.train_and_evaluate(reference, str(tmp_path / "ref"), verbose=False)

  killed = str(tmp_path / "killed")
  proc = _launch(killed, "--config.steps=100000",
                 "--config.checkpoint.every=4", "--config.eval_every=100000",
                 "--config.log_every=4")
  _wait_for_checkpoint(killed, proc)
  proc.send_signal(signal.SIGKILL)
  proc.wait(timeout=60)
  manager = checkpoint.Manager(killed, every=4)
  first = manager.latest_step()
  manager.close()
  assert first is not None and first < 16

  resumed = _config(steps=16, eval_every=16, log_every=4)
  resumed.optim.schedule = "constant"
  resumed.optim.warmup_steps = 0
  resumed.checkpoint.every = 4
  train.train_and_evaluate(resumed, killed, verbose=False)
  for a, b in zip(_params(tmp_path / "ref")[1], _params(killed)[1]):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
  steps = [json.loads(l)["step"] for l in open(os.path.join(killed,
                                                            "metrics.jsonl"))]
  assert steps == sorted(set(steps))   # Replayed rows are not duplicated.


def test_resume_on_a_different_device_count(tmp_path):
  config = _config(steps=4, log_every=2, eval_every=4, num_devices=8)
  config.checkpoint.every = 2
  train.train_and_evaluate(config, str(tmp_path), verbose=False)
  config = _config(steps=6, log_every=2, eval_every=6, num_devices=1)
  config.checkpoint.every = 2
  summary = train.train_and_evaluate(config, str(tmp_path), verbose=False)
  assert summary["step"] == 6
  assert checkpoints.load(str(tmp_path)).step == 6


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_saves_the_step_and_says_how_to_resume(tmp_path, signum):
  # SIGINT (Ctrl-C) behaves like SIGTERM: save, one line, exit status 3.
  workdir = str(tmp_path)
  proc = _launch(workdir, "--config.steps=100000",
                 "--config.checkpoint.every=1000", "--config.eval_every=100000")
  _wait_for_first_row(workdir, proc)
  proc.send_signal(signum)
  out, _ = proc.communicate(timeout=600)
  assert proc.returncode == errors.EXIT_INTERRUPTED, out
  name = signal.Signals(signum).name
  assert "Traceback" not in out and "KeyboardInterrupt" not in out, out
  manager = checkpoint.Manager(workdir, every=1000)
  step = manager.latest_step()
  manager.close()
  assert step is not None and step > 0
  assert (f"{name}: saved step {step} of 100000 in "
          f"{os.path.join(workdir, 'checkpoints')}; rerun the same command "
          f"to resume (exit status 3).") in out
  summary = json.load(open(os.path.join(workdir, "summary.json")))
  assert summary["interrupted"] is True and summary["step"] == step


def test_checkpoint_from_eight_devices_loads_on_one(tmp_path):
  config = _config(steps=2, log_every=2, eval_every=2)
  train.train_and_evaluate(config, str(tmp_path), verbose=False)
  run, _ = _params(tmp_path)
  x = np.random.default_rng(0).uniform(
      size=(5,) + run.input_shape).astype(np.float32)
  h, z = run.features(x)
  np.save(tmp_path / "x.npy", x)
  script = (
      "import numpy as np, jax; from cljax.analysis import checkpoints;"
      f"run = checkpoints.load({str(tmp_path)!r});"
      "assert jax.device_count() == 1;"
      f"h, z = run.features(np.load({str(tmp_path / 'x.npy')!r}));"
      f"np.save({str(tmp_path / 'h1.npy')!r}, h)")
  env = dict(os.environ, JAX_NUM_CPU_DEVICES="1")
  out = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env,
                       capture_output=True, text=True, timeout=300)
  assert out.returncode == 0, out.stderr
  np.testing.assert_allclose(np.load(tmp_path / "h1.npy"), h, rtol=1e-5,
                             atol=1e-6)
  assert run.step == 2 and run.config.loss.name == "nscl"
  assert run.metrics[-1]["step"] == 2


def test_non_finite_loss_stops_with_the_step_and_keeps_checkpoints(tmp_path):
  config = _config(steps=12, log_every=1, eval_every=100)
  config.checkpoint.every = 1
  config.optim.learning_rate = 1e30
  with pytest.raises(train.NonFiniteError, match=r"at step \d+.*Last good "
                     r"checkpoint: step \d+"):
    train.train_and_evaluate(config, str(tmp_path), verbose=False)
  manager = checkpoint.Manager(str(tmp_path), every=1)
  assert manager.latest_step() is not None
  manager.close()


@pytest.mark.parametrize("override,match", [
    ({"data.name": "imagenet_does_not_exist"}, r"imagenet_does_not_exist"),
    ({"loss.name": "simclr"}, r"Unknown config.loss.name 'simclr'"),
    ({"model.encoder": "vit"}, r"vit"),
    ({"data.batch_size": 30}, r"not divisible by the 8 devices"),
    ({"data.num_views": 1}, r"num_views >= 2"),
])
def test_bad_config_fails_at_start(tmp_path, override, match):
  config = _config(**override)
  with pytest.raises(ValueError, match=match):
    train.train_and_evaluate(config, str(tmp_path), verbose=False)
