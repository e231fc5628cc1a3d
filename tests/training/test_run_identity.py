"""Mistakes found at start, before anything is written, and runs that would
train nothing (no valid anchor) refused or stopped with the step."""

import json
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from tests.training import test_train
from cljax import data as data_lib
from cljax.training import errors
from cljax import losses
from cljax.training import run_identity
from cljax.training import train
from cljax.losses import registry
from experiments import default

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


_config = test_train._config   # the smoke config with dotted overrides


def _listing(path):
  """Every entry under ``path`` with its size (None: ``path`` is absent)."""
  if not os.path.exists(path):
    return None
  return sorted((os.path.relpath(os.path.join(d, n), path),
                 os.path.getsize(os.path.join(d, n)))
                for d, dirs, files in os.walk(path) for n in dirs + files)


def _cli(*args):
  return subprocess.run([sys.executable, "-m", "cljax.main", *args],
                        cwd=ROOT, capture_output=True, text=True, timeout=300,
                        env=dict(os.environ, JAX_NUM_CPU_DEVICES="1"))


def _one_line_error(proc):
  assert proc.returncode == errors.EXIT_CONFIG, proc.stderr
  lines = [l for l in proc.stderr.splitlines() if l.strip()]
  assert len(lines) == 1 and lines[0].startswith("cljax: error: "), (
      proc.stderr)
  return lines[0]


# --- hyper-parameters of the loss and the monitor -------------------------

@pytest.mark.parametrize("field,value,match", [
    ("loss.kwargs.temperature", 0.0, r"config\.loss\.kwargs\.temperature"),
    ("loss.kwargs.temperature", -0.5, r"config\.loss\.kwargs\.temperature"),
    ("loss.kwargs.temperature", float("inf"),
     r"config\.loss\.kwargs\.temperature"),
    ("monitor.temperature", 0.0, r"config\.monitor\.temperature"),
    ("monitor.temperature", -1.0, r"config\.monitor\.temperature"),
    ("monitor.beta", -1.0, r"config\.monitor\.beta"),
])
def test_bad_temperatures_and_betas_fail_in_the_config_check(field, value,
                                                            match):
  with pytest.raises(ValueError, match=match + r".*> ?=? ?0"):
    run_identity.check_config(_config(**{field: value}), num_devices=8)


def test_a_negative_loss_beta_and_kwargs_the_loss_rejects_fail_at_check():
  config = _config()
  config.loss.name = "hscl"
  config.loss.kwargs = {"temperature": 0.5, "beta": -1.0}
  with pytest.raises(ValueError, match=r"config\.loss\.kwargs\.beta"):
    run_identity.check_config(config, num_devices=8)
  # What no named check covers is found by tracing the loss abstractly.
  config.loss.kwargs = {"temperature": 0.5, "beta": 1.0,
                        "estimator": "exact"}
  with pytest.raises(ValueError, match=r"'hscl' rejects.*estimator"):
    run_identity.check_config(config, num_devices=8)
  config.loss.name = "nscl"
  config.loss.kwargs = {"temperature": 0.5, "tau_plus": 0.1}
  with pytest.raises(ValueError, match=r"'nscl' rejects.*tau_plus"):
    run_identity.check_config(config, num_devices=8)


def test_the_default_configs_pass_the_start_checks_writing_nothing(
    tmp_path):
  for config in (_config(), default.get_config("")):
    run_identity.check_start(config, str(tmp_path / "run"), num_devices=8)
  assert not (tmp_path / "run").exists()


# --- which batches leave a loss without a valid anchor ---------------------

def _num_valid(name, kwargs, labels, views):
  z = jax.random.normal(jax.random.key(0), (len(labels), views, 6))
  kwargs = dict(kwargs)
  if losses.spec(name).needs_key_for(kwargs):
    kwargs["key"] = jax.random.key(1)
  _, counts = losses.get(name)(z, jnp.asarray(labels, jnp.int32), **kwargs,
                               return_counts=True)
  return int(counts.num_valid)


# Each loss at its fewest views, and where the views change what an anchor
# needs (its positives), at both.
_CASES = [(name, {}, spec.min_views) for name, spec in registry.LOSSES.items()]
_CASES += [("supcon", {}, 2), ("hard_contrastive", {}, 2),
           ("supcon", {"same_class_weight": 0.0}, 2),
           ("supcon", {"same_class_weight": 0.0}, 1),
           ("hard_contrastive", {"negatives": "all"}, 1),
           ("hard_contrastive", {"include_self_positive": False}, 1),
           ("hard_contrastive", {"include_self_positive": False}, 2),
           ("ucl", {"include_self_positive": False}, 1)]
# Batches lacking exactly one thing an anchor may need (else complete).
_BATCHES = {registry.ANOTHER_SAMPLE: [3],
            registry.ANOTHER_CLASS: [2, 2, 2, 2],
            registry.SAME_CLASS_SAMPLE: [0, 1, 2, 3]}


@pytest.mark.parametrize("name,kwargs,views", _CASES)
def test_anchor_needs_say_which_batches_have_no_valid_anchor(name, kwargs,
                                                             views):
  kwargs = {"temperature": 0.5, **kwargs}
  if name in ("hscl", "hucl"):
    kwargs = {"beta": 1.0, **kwargs}
  needs = registry.anchor_needs(name, kwargs, views)
  assert set(needs) <= set(_BATCHES)
  # Two classes of two samples each: every need is met.
  assert _num_valid(name, kwargs, [0, 0, 1, 1], views) > 0
  for need, labels in _BATCHES.items():
    if need == registry.ANOTHER_SAMPLE:
      lacking = bool(needs)  # One sample lacks every need at once.
    elif need == registry.SAME_CLASS_SAMPLE and views >= 2:
      continue  # The other views are same-class samples' views.
    else:
      lacking = need in needs
    assert (_num_valid(name, kwargs, labels, views) == 0) == lacking, need


@pytest.mark.parametrize("overrides,match", [
    ({"data.batch_size": 1}, r"batch_size=1 .*'nscl'.*Fix: set "
     r"config\.data\.batch_size >= 2"),
    ({"data.batch_size": 1, "loss.name": "dcl"}, r"batch_size=1 .*'dcl'"),
    ({"data.classes": 1}, r"'nscl'.*one class.*Fix"),
    ({"data.classes": (3,), "loss.name": "hscl_2022",
      "loss.kwargs": {"temperature": 0.5}}, r"'hscl_2022'.*one class"),
    ({"data.num_views": 1, "loss.name": "supcon", "data.batch_size": 1},
     r"batch_size=1 .*'supcon'.*num_views >= 2"),
])
def test_configs_that_cannot_have_a_valid_anchor_fail_at_check(overrides,
                                                              match):
  with pytest.raises(ValueError, match=match):
    run_identity.check_config(_config(**overrides), num_devices=1)


@pytest.mark.parametrize("overrides", [
    {"data.batch_size": 1, "loss.name": "ntxent"},   # the twin view
    {"data.batch_size": 1, "loss.name": "ucl"},      # its pool: every view
    {"data.batch_size": 1, "loss.name": "supcon"},   # K = 2: the twin
    {"data.num_views": 1, "loss.name": "supcon", "data.batch_size": 12,
     "data.classes": 10},                            # a class twice
    {"data.num_views": 1, "loss.name": "supcon", "data.batch_size": 8,
     "data.sampler": "shuffle", "data.classes": 10},  # chance decides
])
def test_configs_with_valid_anchors_pass(overrides):
  config = _config(**overrides)
  assert run_identity.anchor_mistake(config) is None
  run_identity.check_config(config, num_devices=1)


def test_a_batch_of_one_fails_at_start_and_writes_nothing(tmp_path):
  config = _config(**{"data.batch_size": 1, "num_devices": 1})
  with pytest.raises(errors.ConfigError, match=r"^config\.data\.batch_size=1 "
                     r"with the loss 'nscl'.*Fix: set config\.data\."
                     r"batch_size >= 2") as raised:
    train.train_and_evaluate(config, str(tmp_path / "run"), verbose=False)
  assert errors.exit_code(raised.value) == errors.EXIT_CONFIG
  assert "\n" not in str(raised.value)
  assert not (tmp_path / "run").exists()


def test_the_classes_of_the_data_are_checked_before_config_json(tmp_path):
  # 10 classes in the data (nothing in the config says so): a balanced batch
  # of 8 holds 8 distinct classes, so single-view SupCon has no positive.
  config = _config(**{"data.num_views": 1, "loss.name": "supcon"})
  config.data.batch_size = 8
  run_identity.check_config(config, num_devices=8)  # The config alone passes.
  with pytest.raises(errors.ConfigError, match=r"batch_size=8 .*'supcon'.*"
                     r"8 <= 10 samples of distinct classes.*Fix: set "
                     r"config\.data\.batch_size > 10"):
    train.train_and_evaluate(config, str(tmp_path / "run"), verbose=False)
  assert not (tmp_path / "run" / "config.json").exists()


# --- a run whose logged step has no valid anchor stops, naming it ----------

def _stopping_config():
  """Single-view SupCon on 64 classes of two examples, shuffled batches of
  8: most batches hold 8 distinct classes, so no anchor has a positive."""
  name = data_lib.gaussian_mixture_config(
      num_classes=64, dim=4, train_per_class=2, test_per_class=1,
      noise=0.5).name
  config = _config(steps=12, log_every=1, eval_every=0)
  config.data.name = f"cljax_gaussian_mixture/{name}"
  config.data.update({"batch_size": 8, "num_views": 1, "sampler": "shuffle"})
  config.data.augment.mode = "identity"
  config.model.encoder = "mlp"
  config.model.encoder_kwargs = {"widths": (8,)}
  config.model.head_kwargs = {"hidden_dims": 8, "output_dim": 4}
  config.loss.name = "supcon"
  config.evals = ml_collections.ConfigDict()
  config.checkpoint.every = 100
  return config


def test_a_logged_step_without_valid_anchors_stops_the_run(tmp_path):
  config = _stopping_config()
  pipeline = data_lib.build(config.data, seed=config.seed)
  valid = []  # Per step: anchors with another sample of their class.
  for _ in range(config.steps):
    labels = next(pipeline)["label"]
    valid.append(sum(int(np.sum(labels == y) > 1) for y in labels))
  pipeline.close()
  first_zero = valid.index(0) + 1  # Steps count from 1.
  with pytest.raises(errors.NoValidAnchorsError,
                     match=rf"Step {first_zero} trained nothing.*'supcon'"):
    train.train_and_evaluate(config, str(tmp_path), verbose=False)
  rows = [json.loads(l) for l in open(tmp_path / "metrics.jsonl")]
  assert [r["step"] for r in rows] == list(range(1, first_zero))
  assert [r["train/valid_anchors"] for r in rows] == valid[:first_zero - 1]
  assert errors.exit_code(errors.NoValidAnchorsError("x")) == 2


# --- the work dir ----------------------------------------------------------

def test_work_dirs_that_cannot_hold_a_run_fail_before_writing(tmp_path):
  a_file = tmp_path / "a_file"
  a_file.write_text("x")
  held = tmp_path / "held"
  held.mkdir()
  (held / "checkpoints").write_text("not a directory")
  cases = [(a_file, r"is a file, not a directory"),
           (a_file / "run", r"cannot be created: .* is a file"),
           ("/proc/cljax_run", r"cannot be created in '/proc'"),
           ("/sys/cljax_run", r"cannot be created in '/sys'"),
           (held, r"checkpoints' is a file")]
  for workdir, match in cases:
    before = _listing(str(workdir))
    with pytest.raises(errors.ConfigError, match=match):
      train.train_and_evaluate(_config(), str(workdir), verbose=False)
    assert _listing(str(workdir)) == before, workdir
  assert _listing(str(held)) == [("checkpoints", 15)]


def test_an_unwritable_work_dir_fails_before_writing(tmp_path):
  if os.geteuid() == 0:
    pytest.skip("root writes to read-only directories")
  locked = tmp_path / "locked"
  locked.mkdir(mode=0o500)
  with pytest.raises(errors.ConfigError, match=r"not writable"):
    train.train_and_evaluate(_config(), str(locked), verbose=False)


# --- the command line ------------------------------------------------------

def test_a_zero_temperature_ends_in_one_line_and_writes_nothing(tmp_path):
  proc = _cli("--config=experiments/default.py:smoke",
              f"--workdir={tmp_path / 'run'}",
              "--config.loss.kwargs.temperature=0")
  assert "config.loss.kwargs.temperature" in _one_line_error(proc)
  assert not (tmp_path / "run").exists()


def test_an_unprepared_dataset_says_how_to_prepare_it(tmp_path):
  proc = _cli("--config=experiments/default.py:smoke",
              f"--workdir={tmp_path / 'run'}", "--config.data.name=cifar10",
              f"--config.data.data_dir={tmp_path / 'tfds'}")
  line = _one_line_error(proc)
  assert "tfds build cifar10 --file_format=array_record" in line
  assert "already prepared" not in proc.stderr
  assert "TFRECORD" not in proc.stderr
  assert not (tmp_path / "run").exists()


def test_help_exits_0_with_the_presets_and_how_to_list_fields():
  proc = _cli("--config=experiments/default.py", "--help")
  assert proc.returncode == 0, proc.stderr
  assert "'smoke'" in proc.stdout and "--print_config" in proc.stdout
  proc = _cli("--config=experiments/default.py:smoke", "--print_config")
  assert proc.returncode == 0, proc.stderr
  assert "batch_size: 32" in proc.stdout
