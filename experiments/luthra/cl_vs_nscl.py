r"""Luthra et al. 2025: CL (DCL) vs NSCL under shared randomness.

P1 claims that self-supervised contrastive learning (DCL) approximately
minimises the negatives-only supervised loss (NSCL): their gap is at most
log(1 + e^{2/tau} / (C - 1)) for any encoder (Theorem 1), the two losses are
highly correlated over training (figure a), and minimising DCL brings NSCL
close to the value that minimising NSCL directly reaches (figure c). This
config trains one model per loss from the same initialisation on the same
batches and views: the loss is the only difference between the runs of a
sweep over ``loss.name`` (``cljax.training.train`` derives the initial parameters, the
batch order and the augmentation keys from ``config.seed`` and
``config.data`` alone; ``tests/reproduce/test_luthra.py`` checks it). Every step logs
DCL, NSCL, SupCon, their gap and its per-batch bound at
``config.monitor.temperature`` (tau = 1, as the paper evaluates the gap); at
the end the ``dataset_gap`` evaluator logs the exact gap over the whole
training split (``eval/dataset_gap/*``, through ``cljax.analysis.evaluate``). The
same checkpoints feed the few-shot analysis (figures e, f) of
``colabs/luthra.ipynb``.

Paper scale (GPU/TPU; CIFAR-100 prepared as TFDS array_record):

  python -m cljax.sweep --config=experiments/luthra/cl_vs_nscl.py \
      --sweep_dir=runs/luthra/cl_vs_nscl_cifar100 \
      --grid='loss.name=["dcl","nscl","supcon"]'

mini-ImageNet, P1's third dataset (build ``mini_imagenet`` from the local
files once: ``cljax/data/mini_imagenet.py`` says where they go):

  python -m cljax.sweep --config=experiments/luthra/cl_vs_nscl.py:mini_imagenet \
      --sweep_dir=runs/luthra/cl_vs_nscl_mini_imagenet \
      --grid='loss.name=["dcl","nscl","supcon"]'

CPU scale (embedded Gaussian-mixture images, 1-5 minutes a run on 2 cores;
``cljax.reproduce.luthra.sweeps("cpu")`` adds ``--seeds=5``):

  python -m cljax.sweep --config=experiments/luthra/cl_vs_nscl.py:cpu \
      --sweep_dir=runs/luthra/cl_vs_nscl \
      --grid='loss.name=["dcl","nscl","supcon"]'

Presets: '' (CIFAR-100: ResNet-50x2 with the CIFAR stem, 2048-128 projector
with a final BN, global batch 1024, LARS at 0.3 x B/256 with 10 warm-up
epochs and cosine decay, weight decay 1e-6, gradient clipping at 1, tau = 0.5,
2500 epochs), 'cifar10' (the same at batch 512 and projector dim 64),
'mini_imagenet' (the ImageNet stem, batch 896, tau = 0.1, 2501 epochs, on the
``mini_imagenet`` builder's 84x84 images; P1 cropped at 224), 'cpu'
(10-class 16x16 Gaussian-mixture images with strong pixel noise, a small
ConvNet, batch 100, 400 steps), 'cpu_mnist' (the same on the real 28x28
MNIST digits, ``cljax_mnist``; the exact gap on the first 6 000 training
images), 'cpu_collapsed' (SupCon at tau = 0.1 on scikit-learn's 8x8 digits,
600 steps: features with a small directional CDNV for claim f), 'tiny'
(seconds; CI: an MLP encoder, 6 steps).

Expected ('cpu'; the measured values, with intervals over seeds, are in
experiments/results/luthra.md): the gap logged at tau = 1 stays below its
per-batch bound at every step, the DCL and NSCL curves move together, and the DCL run ends with NSCL close
to the NSCL run's. The 'cpu' preset keeps four checkpoints (steps 100-400)
and logs the exact whole-split gap at each, for figure (d) and the exact gap
beside the per-batch one.

Both losses are sampled with class-balanced batches (the paper uses them for
NSCL only and plain shuffling for CL): the sampler's random stream depends
on its name, so pairing needs one sampler, and balanced batches make the
per-batch bound the balanced one, log(1 + e^{2/tau} (B/C - 1) / (B - B/C)).
"""

import ml_collections

from cljax import data
from cljax._src import config_files
from cljax.training import evaluators

default = config_files.sibling(__file__, "../default.py")

# CIFAR-100 train split size; the warm-up is 10 epochs of it.
_CIFAR_TRAIN = 50_000
PRESETS = ("", "cifar10", "mini_imagenet", "cpu", "cpu_mnist", "cpu_collapsed",
           "tiny")


def _paper(config, *, dataset: str, batch_size: int, projection_dim: int):
  """P1's GPU recipe (docs/conventions.md#luthra-recipe) on a TFDS dataset."""
  config.data.name = dataset
  config.data.batch_size = batch_size
  config.data.augment.mode = "simclr"
  # torchvision ColorJitter(0.4, 0.4, 0.4, 0.1) with p = 0.8, grayscale 0.2.
  config.data.augment.color_jitter = (0.4, 0.4, 0.4, 0.1)
  config.data.augment.jitter_prob = 0.8
  config.data.augment.grayscale_prob = 0.2
  config.data.augment.crop_scale = (0.08, 1.0)
  config.model.encoder = "resnet50"
  config.model.encoder_kwargs = {"stem": "cifar", "width_multiplier": 2}
  config.model.head_kwargs = {"hidden_dims": 2048,
                              "output_dim": projection_dim, "final_bn": True}
  config.model.dtype = "bfloat16"
  config.loss.kwargs = {"temperature": 0.5}
  config.epochs = 2500.0
  steps_per_epoch = _CIFAR_TRAIN // batch_size
  config.optim.name = "lars"
  # 0.3 x B / 256 (the authors' extra world-size factor is not copied).
  config.optim.learning_rate = 0.3 * batch_size / 256
  config.optim.warmup_steps = 10 * steps_per_epoch
  config.optim.weight_decay = 1e-6
  config.optim.clip_norm = 1.0
  config.log_every = 50
  config.eval_every = 50 * steps_per_epoch
  config.checkpoint.every = 10 * steps_per_epoch
  config.checkpoint.keep = 1000  # Keep every checkpoint for the gap curves.
  config.evals.geometry.num_train = 10_000   # shared by the evaluators
  config.evals.fewshot.episodes = 200
  config.evals.linear_probe.steps = 2000
  config.seed = 123


def cpu_dataset(num_classes: int = 10, train_per_class: int = 500,
                test_per_class: int = 100) -> str:
  """The embedded images of the 'cpu' presets: noisy 16x16 class templates.

  Pixel noise 1.6 (before clipping) makes single images ambiguous, so the
  encoder has to learn class structure rather than read off a template.
  """
  cfg = data.gaussian_mixture_config(
      kind="images", num_classes=num_classes, image_size=16, channels=3,
      template_size=4, train_per_class=train_per_class,
      test_per_class=test_per_class, noise=1.6, seed=0)
  return f"cljax_gaussian_mixture/{cfg.name}"


def _cpu(config):
  config.data.name = cpu_dataset()
  config.data.batch_size = 100
  config.model.encoder = "convnet"
  config.model.encoder_kwargs = {"widths": (16, 32, 64)}
  config.model.head_kwargs = {"hidden_dims": 128, "output_dim": 32}
  config.loss.kwargs = {"temperature": 0.5}
  config.steps = 400
  config.log_every = 5
  config.eval_every = 200
  config.optim.learning_rate = 2e-3
  config.optim.warmup_steps = 20
  # Four checkpoints for the UMAP of figure (d) and the exact whole-split gap
  # at the same steps beside the per-batch one.
  config.checkpoint.every = 100
  config.checkpoint.keep = 4
  config.evals.dataset_gap.final_only = False
  config.evals.dataset_gap.every = 100
  config.evals.geometry.num_train = 2000
  config.evals.fewshot.episodes = 100
  config.evals.linear_probe.steps = 300


# The real-image runs: the 70 000 MNIST digits (``cljax_mnist``, prepared on
# first use; see cljax/data/mnist.py) and P1's exact gap on the first 6 000
# training images (the whole 60 000 would need a 120 000 x 120 000
# similarity matrix at every evaluation).
MNIST = "cljax_mnist"
MNIST_GAP_SPLIT = "train[:6000]"


def _cpu_mnist(config):
  """The 'cpu' recipe on MNIST: the small ConvNet on 28x28x1 digits."""
  _cpu(config)
  config.data.name = MNIST
  # Milder crops than SimCLR's 8 % of the area (a digit must stay legible)
  # and no flips (mirrored digits are other shapes), as default.py:mnist.
  config.data.augment.crop_scale = (0.4, 1.0)
  config.data.augment.flip_prob = 0.0
  config.evals.dataset_gap.split = MNIST_GAP_SPLIT
  config.evals.dataset_gap.final_only = True
  config.evals.dataset_gap.every = None
  config.evals.linear_probe.every = 0


def _cpu_collapsed(config):
  """SupCon on the 8x8 digits at tau = 0.1, long enough to collapse.

  Claim (f) (the few-shot bound is tight) can only be judged on features
  whose directional CDNV is small: the bound tends to 4 x directional CDNV
  as m grows. Supervised training on real digits at a low temperature gives
  such features at cpu cost.
  """
  _cpu(config)
  config.data.name = "cljax_digits"
  config.data.augment.crop_scale = (0.5, 1.0)
  config.model.encoder = "mlp"
  config.model.encoder_kwargs = {"widths": (256, 128)}
  config.loss.name = "supcon"
  config.loss.kwargs = {"temperature": 0.1}
  final_only(config, steps=600)
  config.evals.linear_probe.every = 0
  config.evals.geometry.num_train = 1438


def final_only(config, *, steps: int):
  """``steps`` steps, evaluated and checkpointed once, at the end.

  The exact whole-split gap is then measured at the end only (the presets
  that need no curve over training: one run per C, per tau, collapsed).
  """
  config.steps = steps
  config.eval_every = steps
  config.checkpoint.every = steps
  config.checkpoint.keep = 1
  config.evals.dataset_gap.final_only = True
  config.evals.dataset_gap.every = None


def _tiny(config):
  _cpu(config)
  config.data.batch_size = 40
  # An MLP on the flattened views: the same loop, views and losses as 'cpu'
  # at a third of the ConvNet's compile time.
  config.model.encoder = "mlp"
  config.model.encoder_kwargs = {"widths": (32,)}
  config.model.head_kwargs = {"hidden_dims": 32, "output_dim": 16}
  config.steps = 6
  config.log_every = 2
  config.eval_every = 6
  config.checkpoint.every = 6
  config.evals.geometry.num_train = 300
  config.evals.fewshot.episodes = 10
  config.evals.linear_probe.every = 0
  config.evals.dataset_gap.every = 0


def get_config(preset: str | None = None) -> ml_collections.ConfigDict:
  """The paired CL/NSCL config; ``preset`` in :data:`PRESETS` (see above)."""
  preset = default.check_preset(preset, PRESETS, __file__)
  # The default job (default.py): balanced batches of two SimCLR views (one
  # sampler for every loss, so paired runs see the same batches) and every
  # loss monitored at tau = 1, as P1 evaluates the gap. Each preset below
  # sets the data and the encoder.
  config = default.get_config()
  config.steps = 400
  config.eval_every = 100
  # The swept field: "dcl" (the paper's CL), "nscl", "supcon".
  config.loss.name = "dcl"
  config.evals = evaluators.standard(
      num_train=2000, shots=5, ways=2, episodes=100, linear_probe_steps=300,
      linear_probe_learning_rate=1e-2)
  # P1's exact CL/NSCL gap over the whole training split, at the end.
  config.evals.dataset_gap = ml_collections.ConfigDict({
      "type": "dataset_gap", "final_only": True, "split": "train",
      "every": ml_collections.config_dict.placeholder(int),
      "temperature": 1.0})

  if preset == "":
    _paper(config, dataset="cifar100", batch_size=1024, projection_dim=128)
  elif preset == "cifar10":
    _paper(config, dataset="cifar10", batch_size=512, projection_dim=64)
  elif preset == "mini_imagenet":
    # The builder's default config has 500 train images a class, 50 000 in
    # all like CIFAR-100, so _paper's epoch length holds.
    _paper(config, dataset="mini_imagenet", batch_size=896, projection_dim=128)
    config.model.encoder_kwargs = {"stem": "imagenet", "width_multiplier": 2}
    config.loss.kwargs = {"temperature": 0.1}
    config.epochs = 2501.0
  elif preset == "cpu":
    _cpu(config)
  elif preset == "cpu_mnist":
    _cpu_mnist(config)
  elif preset == "cpu_collapsed":
    _cpu_collapsed(config)
  else:
    _tiny(config)
  return config
