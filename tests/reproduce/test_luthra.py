"""Luthra et al. configs: paired runs under shared randomness, presets.

The pairing claim of ``experiments/luthra/cl_vs_nscl.py`` is that runs which
differ only in ``loss.name`` start from the same parameters and see the same
batches and augmented views, because ``cljax.training.train`` derives all three from
``config.seed`` and ``config.data``. The tests below check it end to end
through ``train.train_and_evaluate``: with the learning rate at 0 the
parameters never move, so (i) the saved parameters are the initial ones,
(ii) BatchNorm's running statistics are a function of every view the
encoder saw, and (iii) the losses monitored each step at tau = 1 are a
function of the parameters, the views and the labels. All three must agree
across the losses, while the optimised loss differs.
"""

import re

import jax
import numpy as np
import pytest

from cljax.analysis import checkpoints
from cljax import data as data_lib
from cljax import models
from cljax.training import run_identity
from cljax import sweep
from cljax.training import train
from experiments.luthra import cl_vs_nscl as luthra_cl_vs_nscl
from experiments.luthra import gap_vs_classes as luthra_gap_vs_classes
from experiments.luthra import temperature as luthra_temperature

# CI pairs CL with NSCL; the slow test adds SupCon to the same comparison.
LOSSES = ("dcl", "nscl")
# Logged every step from the batch's views at the monitor temperature.
MONITORED = ("train/dcl", "train/nscl", "train/ntxent", "train/supcon_out",
             "train/gap", "train/gap_bound")
MODULES = (luthra_cl_vs_nscl, luthra_gap_vs_classes, luthra_temperature)


def _frozen_config(loss_name):
  config = luthra_cl_vs_nscl.get_config("tiny")
  config.loss.name = loss_name
  config.steps = 4
  config.log_every = 1
  config.eval_every = 4
  config.checkpoint.every = 4
  config.evals.fewshot.episodes = 2
  config.optim.learning_rate = 0.0
  config.optim.warmup_steps = 0
  config.optim.schedule = "constant"
  return config


@pytest.fixture(scope="module")
def frozen_runs(tmp_path_factory):
  runs = {}
  for name in LOSSES:
    workdir = str(tmp_path_factory.mktemp(name))
    train.train_and_evaluate(_frozen_config(name), workdir, verbose=False)
    runs[name] = checkpoints.load(workdir)
  return runs


def _assert_paired(run, ref, name):
  """``run`` and ``ref`` started from one init and saw the same views."""
  # (i) Identical initial parameters (lr = 0: the saved ones are the init).
  jax.tree.map(np.testing.assert_array_equal, run.variables["params"],
               ref.variables["params"])
  # (ii) Identical encoder inputs at every step: BN's running averages.
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6,
                                                       atol=1e-7),
               run.variables["batch_stats"], ref.variables["batch_stats"])
  # (iii) Identical monitored losses on every batch.
  assert [r["step"] for r in run.metrics] == [r["step"] for r in ref.metrics]
  for row, ref_row in zip(run.metrics, ref.metrics):
    for key in MONITORED:
      np.testing.assert_allclose(row[key], ref_row[key], rtol=1e-6,
                                 err_msg=f"{name} step {row['step']} {key}")
  # The optimised losses differ: the runs are not one run twice.
  assert abs(run.metrics[0]["train/loss"] - ref.metrics[0]["train/loss"]
             ) > 1e-4, name


def test_configs_differing_only_in_the_loss_share_init_batches_and_views(
    frozen_runs):
  ref = frozen_runs["dcl"]
  for name in LOSSES[1:]:
    _assert_paired(frozen_runs[name], ref, name)
  # The batches really change from step to step.
  assert len({round(r["train/dcl"], 6) for r in ref.metrics}) > 1


@pytest.mark.slow
def test_supcon_is_paired_with_cl_too(frozen_runs, tmp_path):
  train.train_and_evaluate(_frozen_config("supcon"), str(tmp_path),
                           verbose=False)
  _assert_paired(checkpoints.load(str(tmp_path)), frozen_runs["dcl"], "supcon")


def test_the_logged_gap_respects_theorem_1_at_every_step(frozen_runs):
  for name, run in frozen_runs.items():
    for row in run.metrics:
      assert 0.0 <= row["train/gap"] <= row["train/gap_bound"], (name, row)


def test_the_batch_sequence_depends_on_the_data_config_and_seed_only():
  a = luthra_cl_vs_nscl.get_config("tiny")
  b = luthra_cl_vs_nscl.get_config("tiny")
  b.loss.name = "nscl"
  b.loss.kwargs.temperature = 0.1
  pa = data_lib.build(a.data, seed=a.seed)
  pb = data_lib.build(b.data, seed=b.seed)
  for _ in range(3):
    np.testing.assert_array_equal(next(pa)["index"], next(pb)["index"])
  # A different sampler is a different random stream: pairing needs one.
  b.data.sampler = "shuffle"
  pa = data_lib.build(a.data, seed=a.seed)
  pb = data_lib.build(b.data, seed=b.seed)
  assert not np.array_equal(next(pa)["index"], next(pb)["index"])


@pytest.mark.parametrize("module", MODULES, ids=lambda m: m.__name__)
def test_every_preset_builds_a_runnable_config(module):
  for preset in module.PRESETS:
    config = module.get_config(preset)
    # Paper presets shard their batch over 8 devices; CPU ones run on 1.
    run_identity.check_config(config, num_devices=8 if preset == "" else 1)
    assert config.data.sampler == "balanced"
    assert config.monitor.temperature > 0


def test_paper_presets_follow_the_papers_recipe():
  for preset, dataset, batch, proj in (("", "cifar100", 1024, 128),
                                       ("cifar10", "cifar10", 512, 64)):
    config = luthra_cl_vs_nscl.get_config(preset)
    assert (config.data.name, config.data.batch_size) == (dataset, batch)
    assert config.optim.name == "lars"
    assert config.optim.learning_rate == pytest.approx(0.3 * batch / 256)
    assert config.loss.kwargs.temperature == 0.5
    assert config.monitor.temperature == 1.0
    model = models.build(config.model)
    h, z = jax.eval_shape(
        lambda x, m=model: m.init_with_output(jax.random.key(0), x,
                                              train=False)[0],
        jax.ShapeDtypeStruct((2, 32, 32, 3), np.float32))
    # ResNet-50x2 features and the paper's projection dimension.
    assert (h.shape[-1], z.shape[-1]) == (4096, proj)


def test_mini_imagenet_preset_follows_the_papers_recipe():
  """docs/conventions.md#luthra-recipe: ImageNet stem, batch 896, tau 0.1."""
  config = luthra_cl_vs_nscl.get_config("mini_imagenet")
  assert (config.data.name, config.data.batch_size) == ("mini_imagenet", 896)
  assert config.loss.kwargs.temperature == 0.1 and config.epochs == 2501
  assert config.model.encoder_kwargs.to_dict() == {"stem": "imagenet",
                                                  "width_multiplier": 2}
  assert config.optim.learning_rate == pytest.approx(0.3 * 896 / 256)
  model = models.build(config.model)
  h, z = jax.eval_shape(
      lambda x: model.init_with_output(jax.random.key(0), x, train=False)[0],
      jax.ShapeDtypeStruct((2, 84, 84, 3), np.float32))
  assert (h.shape[-1], z.shape[-1]) == (4096, 128)


def test_gap_vs_classes_batches_are_balanced_for_every_swept_c():
  config = luthra_gap_vs_classes.get_config("cpu")
  grid = _doc_sweep_args(luthra_gap_vs_classes, ":cpu")[0]
  (field, values), = grid
  assert field == "data.classes"
  assert all(config.data.batch_size % c == 0 for c in values)


def _doc_sweep_args(module, preset):
  """The --grid and --zip lists of the module docstring's command for preset."""
  doc = module.__doc__
  start = doc.index(f"{module.__name__.split('.')[-1]}.py{preset} ")
  command = doc[start:doc.index("\n\n", start)]
  grids = re.findall(r"--grid='([^']*)'", command)
  zips = re.findall(r"--zip='([^']*)'", command)
  return sweep.parse_grid(grids), sweep.parse_grid(zips)


@pytest.mark.parametrize("module", MODULES, ids=lambda m: m.__name__)
@pytest.mark.parametrize("preset", ["", ":cpu"])
def test_docstring_sweep_commands_name_real_fields(module, preset, tmp_path):
  grid, zipped = _doc_sweep_args(module, preset)
  assert grid or zipped
  config = module.get_config(preset.lstrip(":"))
  pts = list(sweep.points(config, grid, str(tmp_path), zipped))
  assert len(pts) >= 2
  for overrides, cfg, _ in pts:
    run_identity.check_config(cfg, num_devices=8 if preset == "" else 1)
    if "monitor.temperature" in overrides:  # the temperature sweep's pair
      assert cfg.monitor.temperature == cfg.loss.kwargs.temperature
