r"""Jiang et al. 2024: hard negatives and normalisation, neural vs dimensional collapse.

SCL / HSCL (negatives from other classes) and UCL / HUCL (negatives from the
whole batch, false negatives included) with the hardness tilt
q(x-|x) ∝ exp(beta <f(x), f(x-)>) of ``cljax.losses.hard_contrastive``
(registry name ``hard_contrastive``; SCL vs UCL is ``loss.kwargs.negatives``,
the hardness is ``loss.kwargs.beta``, beta = 0 being SCL/UCL). No
augmentation, as in the paper's CIFAR-100 runs (two identical copies of each
input stand for its one view, see below): the positives of an anchor are
every batch member of its class, itself included; tau = 1; the head's output
dimension is C - 1.

Paper scale (preset '' or 'gpu'; CIFAR-100 from TFDS, prepared beforehand
with ``tfds build cifar100 --file_format=array_record``): ResNet-50 with the
CIFAR stem, head Linear(2048->512, no bias) -> BN -> ReLU -> Linear(512->99),
unit-ball projection, Adam 1e-3 (no decay, no schedule), batch 512, 400
epochs. The grid of the paper (docs/conventions.md#jiang-recipe) plus the sphere
and no-normalisation ablations:

  python -m cljax.sweep --config=experiments/jiang/hardness.py \
      --sweep_dir=runs/jiang_cifar100 \
      --grid='loss.kwargs.negatives=["different_class","all"]' \
      --grid='loss.kwargs.beta=[0,2,5,10,30]' \
      --grid='loss.kwargs.normalize=["ball","sphere","none"]'

Add ``--print_only`` to get one ``python -m cljax.main`` command per point for
a cluster. Expected (paper, ball): SCL/UCL end in dimensional collapse (rank of
the class-mean covariance ≈ 10 of 99, mean-classifier test acc. ≈ 10 %);
HSCL with beta >= 5 reaches a flat spectrum (simplex ETF) and ≈ 55-58 %.

CPU scale (preset 'cpu'): the embedded Gaussian-mixture vectors with 20
classes (64-d, 250 training samples per class, noise 3.0), an MLP encoder
(256, 256, BN) and head 128 -> C - 1 = 19, batch 200, 60 epochs (1500 steps),
11 checkpoints per run. About 28 s of CPU time per point: the 30-point grid
took 14 CPU-minutes (33 min of wall time on a 2-core machine shared with
other jobs):

  python -m cljax.sweep --config=experiments/jiang/hardness.py:cpu \
      --sweep_dir=runs/jiang_cpu \
      --grid='loss.kwargs.negatives=["different_class","all"]' \
      --grid='loss.kwargs.beta=[0,2,5,10,30]' \
      --grid='loss.kwargs.normalize=["ball","sphere","none"]'
  PYTHONPATH=$PWD CLJAX_SWEEP_DIR=$PWD/runs/jiang_cpu \
      CLJAX_FIGURE_DIR=$PWD/experiments/results/figures \
      CLJAX_METRICS_OUT=$PWD/runs/jiang_cpu/p3_metrics.json \
      jupyter execute colabs/jiang.ipynb

Expected (cpu, ball or sphere): SCL and UCL at beta = 0 end in dimensional
collapse (a class-mean rank below C - 1 = 19); HSCL's rank and accuracy grow
with beta; HUCL at large beta breaks equiangularity and the zero-sum
condition. The measured values, means with 95 % intervals over seeds, are in
experiments/results/jiang.md (``python -m cljax.reproduce jiang``).

Preset 'cpu_digits' runs the cpu set-up on real images: scikit-learn's 8x8
digits (``cljax_digits``: 10 classes, 1438 training and 359 test images,
flattened by the MLP), head 128 -> C - 1 = 9, batch 200 (7 steps per epoch),
100 epochs (~720 steps). ``python -m cljax.reproduce jiang --scale=cpu``
sweeps beta x negatives on it with the unit ball (the paper's set-up).

Preset 'tiny' (seconds; CI and the colab test) shrinks the cpu preset to 4
classes and a few steps.

The estimator is the exact tilted expectation sum_b q(b) exp(s_b) (the
K_neg -> infinity limit of the paper's 256 sampled negatives);
``--config.loss.kwargs.estimator=sampled`` trains with the paper's sampler
instead (``loss.kwargs.num_negatives`` = 256 draws per anchor, a fresh key
per step), which ``python -m cljax.reproduce jiang`` runs beside it.

Presets 'cpu_mnist' (real 28x28 MNIST digits, ``cljax_mnist``, a small
ConvNet, 600 steps of batch 200) and 'tiny_mnist' (its wiring on embedded
8x8 one-channel images, for tests: no MNIST file needed).
The tilt weights are detached, as in the paper's code. The per-step monitor
(``train/scl``, ``train/ucl``, ``train/hscl``, ``train/hucl``) evaluates all
four losses at tau = 1 with the run's own normalisation and beta.
"""

import ml_collections

from cljax._src import config_files
from cljax.data import gaussian_mixture
from cljax.training import evaluators

default = config_files.sibling(__file__, "../default.py")

PRESETS = ("", "gpu", "cpu", "cpu_digits", "cpu_mnist", "tiny", "tiny_mnist")

# The CPU-scale data: 20 classes leave room below C - 1 = 19 for collapse to
# show in the class-mean spectrum; noise 3.0 (the RMS distance of a sample to
# its class mean, which are 1.41 apart) keeps the test accuracy near 50-60 %,
# so the hardness levels can differ.
CPU_DATA = gaussian_mixture.canonical_name(
    kind="vectors", num_classes=20, dim=64, train_per_class=250,
    test_per_class=50, noise=3.0, seed=0)
TINY_DATA = gaussian_mixture.canonical_name(
    kind="vectors", num_classes=4, dim=8, train_per_class=16,
    test_per_class=8, noise=0.5, seed=0)
# The tiny stand-in of MNIST for tests: embedded 8x8 one-channel images, so
# the ConvNet of 'cpu_mnist' runs without the MNIST file.
TINY_IMAGES = gaussian_mixture.canonical_name(
    kind="images", num_classes=4, image_size=8, channels=1,
    template_size=2, train_per_class=16, test_per_class=8, noise=0.5,
    seed=0)


def get_config(preset: str | None = None) -> ml_collections.ConfigDict:
  """The config for ``preset``: '' / 'gpu', 'cpu', 'cpu_digits' or 'tiny'."""
  preset = default.check_preset(preset, PRESETS, __file__)
  # The default job's blocks (default.py) with P3's recipe.
  config = default.get_config()
  config.epochs = 400.0
  config.steps = 400 * 97   # used only with --config.epochs=None
  config.log_every = 50
  config.eval_every = 1950   # 20 epochs of 97 steps

  config.data.name = "cifar100"
  config.data.batch_size = 512
  config.data.sampler = "shuffle"
  # No augmentation. Two identical copies instead of the paper's one view,
  # because the train loop's per-step monitor (losses.all_losses) needs
  # K >= 2; duplicating every view changes neither the loss (every pool and
  # every (anchor, positive) pair is repeated uniformly) nor its gradient nor
  # the BatchNorm statistics (tests/reproduce/test_jiang.py checks the loss),
  # at twice the forward cost.
  config.data.num_views = 2
  config.data.augment.mode = "identity"

  config.model.encoder = "resnet50"
  config.model.encoder_kwargs = {"stem": "cifar"}
  # Linear(2048->512, no bias) -> BN -> ReLU -> Linear(512->C-1, bias).
  config.model.head_kwargs = {"hidden_dims": 512, "output_dim": 99}

  config.loss.name = "hard_contrastive"
  config.loss.kwargs = {
      "beta": 0.0,
      "negatives": "different_class",   # "all": UCL / HUCL
      "normalize": "ball",              # "sphere" / "none": ablations
      # "sampled": the paper's estimator, the mean of exp(s) over
      # num_negatives draws from the tilted pool (the train step passes it a
      # per-step key); "expectation": their exact expectation.
      "estimator": "expectation",
      "num_negatives": 256,
      "temperature": 1.0,
  }
  # The monitor logs SCL, UCL, HSCL and HUCL of every batch at tau = 1 and
  # the run's own beta and normalisation (references, so a sweep over the
  # loss moves them).
  config.monitor = ml_collections.ConfigDict({
      "temperature": 1.0,
      "beta": config.loss.kwargs.get_ref("beta"),
      "normalize": config.loss.kwargs.get_ref("normalize"),
  })

  config.optim.learning_rate = 1e-3
  config.optim.warmup_steps = 0
  config.optim.schedule = "constant"

  config.evals = evaluators.standard(
      num_train=5000, shots=5, ways=5, episodes=100, linear_probe_steps=0)
  # 21 checkpoints over the run, all kept, so the colab can redraw the
  # metrics over training (the paper stores the class means of every epoch).
  config.checkpoint.every = 1950
  config.checkpoint.keep = 25

  if preset in ("cpu", "cpu_digits", "tiny", "cpu_mnist", "tiny_mnist"):
    config.data.name = f"cljax_gaussian_mixture/{CPU_DATA}"
    config.data.batch_size = 200
    config.model.encoder = "mlp"
    config.model.encoder_kwargs = {"widths": (256, 256), "use_bn": True}
    config.model.head_kwargs = {"hidden_dims": 128, "output_dim": 19}
    config.epochs = 60.0          # 25 steps per epoch: 1500 steps
    config.log_every = 25
    config.eval_every = 300
    config.checkpoint.every = 150
    config.checkpoint.keep = 11
    config.evals.geometry.num_train = 2000   # shared by the evaluators
    config.evals.fewshot.episodes = 20
  if preset == "cpu_digits":
    config.data.name = "cljax_digits"
    config.model.head_kwargs = {"hidden_dims": 128, "output_dim": 9}
    config.epochs = 100.0         # ~7 steps per epoch (1438 / 200): ~720 steps
    config.eval_every = 144
    config.checkpoint.every = 72
    config.evals.geometry.num_train = 1438
  if preset in ("cpu_mnist", "tiny_mnist"):
    # Real images: the 70 000 MNIST digits (``cljax_mnist``), a small
    # ConvNet (the ``experiments/default.py:mnist`` encoder), head
    # 128 -> C - 1 = 9, batch 200, 600 steps (2 epochs of the 60 000
    # training images), the unit ball. Checkpoints every 150 steps; the
    # colab measures the geometry on at most 5000 images per split.
    config.data.name = "cljax_mnist"
    config.model.encoder = "convnet"
    config.model.encoder_kwargs = {"widths": (16, 32, 64)}
    config.model.head_kwargs = {"hidden_dims": 128, "output_dim": 9}
    config.epochs = None
    config.steps = 600
    config.eval_every = 300
    config.checkpoint.every = 150
    config.checkpoint.keep = 5
    config.evals.geometry.num_train = 2000
  if preset == "tiny_mnist":
    config.data.name = f"cljax_gaussian_mixture/{TINY_IMAGES}"
    config.data.batch_size = 32
    config.model.encoder_kwargs = {"widths": (4, 8)}
    config.model.head_kwargs = {"hidden_dims": 8, "output_dim": 3}
    config.steps = 8
    config.log_every = 2
    config.eval_every = 8
    config.checkpoint.every = 4
    config.evals.geometry.num_train = 64
    config.evals.fewshot.update({"shots": 1, "ways": 2, "episodes": 2})
  if preset == "tiny":
    config.data.name = f"cljax_gaussian_mixture/{TINY_DATA}"
    config.data.batch_size = 32
    config.model.encoder_kwargs = {"widths": (16,), "use_bn": True}
    config.model.head_kwargs = {"hidden_dims": 8, "output_dim": 3}
    config.epochs = 4.0           # 2 steps per epoch: 8 steps
    config.log_every = 2
    config.eval_every = 8         # the final step only
    config.checkpoint.every = 2
    config.checkpoint.keep = 5
    config.evals.geometry.num_train = 64
    config.evals.fewshot.update({"shots": 1, "ways": 2, "episodes": 2})
  return config
