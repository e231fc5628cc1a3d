"""Paper-scale presets, run on the real datasets' shapes (issue 12 item 3).

Every default preset of an ``experiments/<paper>/*.py`` that trains a
network on a real dataset runs, on CPU against ``tfds.testing.mock_data`` of
that dataset (random examples with the real features: CIFAR-10/100 at 32x32x3,
mini-ImageNet at 84x84x3), two training steps, an evaluation, a checkpoint
and a resume. The preset is used as it is (its ResNet, head, loss, sampler,
augmentations, optimiser and eval settings) except for these keys:

* ``data.batch_size`` (8: one example on each of the 8 simulated devices),
  ``steps`` (1, then 2 to resume) with ``epochs = None``;
* the frequencies ``eval_every``, ``checkpoint.every``, ``log_every`` and,
  where an evaluator has its own, ``evals.<name>.every`` (all 1);
* ``data.data_dir`` (a temporary dir; mock_data reads nothing from it).

ResNet-50 compiles are slow on 2 shared cores, so all but the smallest preset
are ``slow``; the ResNet-18 preset of P2 runs by default.
"""

import importlib
import os
import pkgutil

import numpy as np
import pytest
import tensorflow_datasets as tfds

import experiments
from cljax.training import checkpoint
from cljax.analysis import checkpoints
from cljax.training import train
from experiments.luthra import cl_vs_nscl as luthra_cl_vs_nscl

# preset module -> (its real dataset, the input shape the run must see).
PAPER_PRESETS = {
    "graf.supcon_vs_ce": ("cifar10", (32, 32, 3)),
    "graf.noisy_labels": ("cifar10", (32, 32, 3)),
    "jiang.hardness": ("cifar100", (32, 32, 3)),
    "luthra.cl_vs_nscl": ("cifar100", (32, 32, 3)),
    "luthra.gap_vs_classes": ("cifar100", (32, 32, 3)),
    "luthra.temperature": ("cifar100", (32, 32, 3)),
}
SMALLEST = "graf.supcon_vs_ce"  # ResNet-18: the default-run variant.
# Examples per mock split: enough that the preset's few-shot evaluation
# (5 ways x 5 shots + queries) finds 5 classes with 6 examples among labels
# drawn uniformly over 10 or 100 classes; no more, since every one goes
# through the ResNet at each evaluation.
MOCK_EXAMPLES = {"cifar10": 128, "cifar100": 400, "mini_imagenet": 400}


def _preset(module):
  return importlib.import_module(f"experiments.{module}").get_config()


def _two_steps_eval_checkpoint_resume(config, tmp_path, capsys, *,
                                      input_shape):
  """Runs step 1 (eval + checkpoint), then resumes to step 2."""
  config.data.batch_size = 8
  # The evaluation forward pass too (default 512): sized for this machine.
  config.eval_batch_size = 32
  config.data.data_dir = str(tmp_path / "tfds")
  config.epochs = None
  config.steps = 1
  config.eval_every = 1
  config.checkpoint.every = 1
  config.log_every = 1
  for entry in config.evals.values():  # Evaluators with their own cadence.
    if entry.get("every", 0):
      entry.every = 1
  workdir = str(tmp_path / "run")
  with tfds.testing.mock_data(
      num_examples=MOCK_EXAMPLES[config.data.name]):
    first = train.train_and_evaluate(config, workdir, verbose=False)
    assert first["step"] == 1
    manager = checkpoint.Manager(workdir, every=1)
    assert manager.latest_step() == 1
    manager.close()
    capsys.readouterr()
    config.steps = 2
    second = train.train_and_evaluate(config, workdir, verbose=True)
  assert "Resumed from the checkpoint of step 1" in capsys.readouterr().out
  assert second["step"] == 2
  run = checkpoints.load(workdir)
  assert run.step == 2 and tuple(run.input_shape) == input_shape
  steps = [row["step"] for row in run.metrics]
  assert steps == sorted(set(steps)) and steps[-1] == 2
  evals = {k: v for row in run.metrics for k, v in row.items()
           if k.startswith("eval/") and isinstance(v, (int, float))}
  accuracies = {k: v for k, v in evals.items() if k.endswith("_acc")}
  assert accuracies, f"no accuracy among the logged evaluations {evals}"
  assert all(0.0 <= v <= 1.0 for v in accuracies.values()), accuracies
  assert all(np.isfinite(v) for v in evals.values()), evals
  losses = [row["train/loss"] for row in run.metrics if "train/loss" in row]
  assert losses and np.all(np.isfinite(losses)), losses
  return run


def test_every_network_preset_is_covered():
  """A new experiments config training a network on a stock dataset joins
  here (every module of the experiments package and its paper folders)."""
  covered = {}
  for info in pkgutil.walk_packages(experiments.__path__,
                                    prefix="experiments."):
    if info.ispkg:
      continue
    name = info.name.removeprefix("experiments.")
    config = _preset(name)
    if ("model" in config and "data" in config
        and not config.data.name.startswith("cljax_")):
      covered[name] = config.data.name
  assert covered == {m: d for m, (d, _) in PAPER_PRESETS.items()}


@pytest.mark.parametrize("module", [SMALLEST] + [
    pytest.param(m, marks=pytest.mark.slow)
    for m in sorted(set(PAPER_PRESETS) - {SMALLEST})])
def test_paper_preset_runs_on_its_real_shapes(module, tmp_path, capsys):
  dataset, shape = PAPER_PRESETS[module]
  config = _preset(module)
  assert config.data.name == dataset
  _two_steps_eval_checkpoint_resume(config, tmp_path, capsys,
                                    input_shape=shape)


@pytest.mark.slow
def test_p1_recipe_on_mini_imagenet_shapes(tmp_path, capsys):
  """P1's mini-ImageNet preset (ResNet-50x2, ImageNet stem, 100 classes).

  Proves the builder's 84x84 records go through the paper-scale loop. (With
  the CIFAR stem at 84 px the batch of 8 alone took 15 GB here.)
  """
  config = luthra_cl_vs_nscl.get_config("mini_imagenet")
  assert config.data.name == "mini_imagenet"
  _two_steps_eval_checkpoint_resume(config, tmp_path, capsys,
                                    input_shape=(84, 84, 3))
