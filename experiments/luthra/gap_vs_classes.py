r"""Luthra et al. 2025: the CL-NSCL gap against the number of classes C.

Theorem 1 bounds the DCL-NSCL gap by log(1 + e^{2/tau} / (C - 1)) = O(1/C),
and P1 reports that the gap measured on trained CL models also decays like
1/C (figure b). This config trains the CL (DCL) model of
``cl_vs_nscl.py`` on the first C classes of one dataset; a sweep over
``data.classes`` gives one run per C, and ``colabs/luthra.ipynb`` plots the
gap logged at tau = 1 (mean over the last quarter of training) with its
bound and fits ``gap = a + s / C``.

Paper scale (CIFAR-100 class subsets, GPU/TPU):

  python -m cljax.sweep --config=experiments/luthra/gap_vs_classes.py \
      --sweep_dir=runs/luthra/gap_vs_classes_cifar100 \
      --grid='data.classes=[2,5,10,20,50,100]'

CPU scale (a 50-class embedded image mixture, about a minute per C):

  python -m cljax.sweep --config=experiments/luthra/gap_vs_classes.py:cpu \
      --sweep_dir=runs/luthra/gap_vs_classes \
      --grid='data.classes=[2,5,10,20,50]'

Real data at CPU scale (class subsets of scikit-learn's 8x8 digits):

  python -m cljax.sweep --config=experiments/luthra/gap_vs_classes.py:cpu_digits \
      --sweep_dir=runs/luthra/gap_vs_classes_digits \
      --grid='data.classes=[2,5,10]' --seeds=5

Presets: '' (CIFAR-100, the recipe of ``cl_vs_nscl.py``), 'cpu'
(50-class 16x16 Gaussian-mixture images, 100 training images per class,
balanced batches of 100 so every C in {2, 5, 10, 20, 50} divides the batch,
300 steps), 'cpu_digits' (the first C classes of ``cljax_digits``, an MLP
encoder, SimCLR crops of at least half the image, 300 steps), 'cpu_mnist'
(the first C classes of the real MNIST digits, ``cljax_mnist``, with the
'cpu' ConvNet, 300 steps), 'tiny'
(seconds; CI).

Expected ('cpu'): the gap falls with C and stays below the per-batch
bound, close to linear in 1/C. At pixel noise 1.6 it sits near the gap of
class-blind features, log(1 + (b - 1) / (B - b)) with b = B / C; the digits
runs ('cpu_digits'), whose encoder does learn the classes, rise above that
line. The measured values, means with 95 % intervals over seeds, are in
experiments/results/luthra.md (``python -m cljax.reproduce luthra``).
"""

import ml_collections

from cljax._src import config_files

cl_vs_nscl = config_files.sibling(__file__, "cl_vs_nscl.py")

PRESETS = ("", "cpu", "cpu_digits", "cpu_mnist", "tiny")
# scikit-learn's 8x8 digits: real images, 10 classes, no download.
DIGITS = "cljax_digits"


def get_config(preset: str | None = None) -> ml_collections.ConfigDict:
  """The per-C CL run; sweep ``data.classes``. ``preset`` in PRESETS."""
  preset = cl_vs_nscl.default.check_preset(preset, PRESETS, __file__)
  config = cl_vs_nscl.get_config(
      "cpu" if preset in ("cpu_digits", "cpu_mnist") else preset)
  config.loss.name = "dcl"
  config.data.classes = 10
  if preset == "":
    config.data.classes = 100
  else:
    config.data.name = cl_vs_nscl.cpu_dataset(
        num_classes=50, train_per_class=100, test_per_class=20)
    # Divisible by every C of the sweep, so all batches are exactly balanced.
    config.data.batch_size = 100
    config.evals.linear_probe.every = 0
  if preset == "tiny":
    # The tiny sweep's C = 2, 5 and 8 devices (the tests' mesh) divide it.
    config.data.batch_size = 40
  if preset in ("cpu", "cpu_digits", "cpu_mnist"):
    cl_vs_nscl.final_only(config, steps=300)
  if preset == "cpu_digits":
    _digits(config)
  if preset == "cpu_mnist":
    # The real MNIST digits with the ConvNet of 'cpu' (cl_vs_nscl.py's
    # 'cpu_mnist' recipe); C in {2, 5, 10} divides the batch of 100.
    config.data.name = cl_vs_nscl.MNIST
    config.data.augment.crop_scale = (0.4, 1.0)
    config.data.augment.flip_prob = 0.0
    config.evals.dataset_gap.split = cl_vs_nscl.MNIST_GAP_SPLIT
  return config


def _digits(config):
  """Class subsets of the real 8x8 digits (1438 train / 359 test images)."""
  config.data.name = DIGITS
  # 100 is divisible by every C of the sweep (2, 5, 10): balanced batches.
  config.data.batch_size = 100
  # An 8x8 crop at scale 0.08 keeps about two pixels; half the image or more
  # keeps the stroke that makes a digit.
  config.data.augment.crop_scale = (0.5, 1.0)
  config.model.encoder = "mlp"
  config.model.encoder_kwargs = {"widths": (256, 128)}
  config.model.head_kwargs = {"hidden_dims": 128, "output_dim": 32}
  # C = 2 leaves about 290 training images; the geometry evaluators use all.
  config.evals.geometry.num_train = 1438
