r"""Graf et al. 2021, Section 5.3: iterations to fit noisy labels, SupCon vs CE.

A fraction p of the training labels is flipped, each to a *different* class
(``data.label_noise_mode="different"``: every flipped label is wrong), and
the run records the first iteration at which the whole training set is fit
under those labels (``fit/step`` in ``summary.json``; measured every
``evals.fit.every`` iterations, the run stops once fit). The training accuracy is,
for both losses (one rule, ``evals.fit.classifier="linear"``), P2's
``retrained_linear`` (a bias-free linear layer retrained for 1000 SGD steps
on the frozen objective features), never SupCon's untrained head. Paper claim: the iterations to fit grow
superlinearly in p for SupCon, against the roughly linear growth reported
for CE (Zhang et al. 2017).

Paper scale (preset ''; CIFAR-10 ResNet-18 CIFAR stem, no augmentation,
batch 256 i.i.d. with replacement, SGD 0.1 momentum 0.9 weight decay 1e-4,
poly-5 over 100k iterations, fit checked every 500; 11 p x 2 losses = 22
GPU runs, run them from the printed commands):

  python -m cljax.sweep --config=experiments/graf/noisy_labels.py \
      --sweep_dir=runs/graf_noisy_cifar10 --print_only \
      --grid='loss.name=["supcon","cross_entropy"]' \
      --grid='data.label_noise=[0.0,0.1,0.2,0.3,0.4,0.5,0.6,0.7,0.8,0.9,1.0]'

CPU scale (preset 'cpu': scikit-learn's 8x8 digits, ``cljax_digits``, 1437
training images, an MLP 64-512-512-128 whose last layer is affine so the
features can take the negative cosines of a 10-class simplex; batch 256 i.i.d.
with replacement; SGD 0.1 momentum 0.9 at a *constant* learning rate, so
that the fit step measures the difficulty of the labels rather than where a
decaying schedule ends; fit checked every 25 iterations, at most 5000; about
six minutes for the whole grid on 2 CPU cores):

  python -m cljax.sweep --config=experiments/graf/noisy_labels.py:cpu \
      --sweep_dir=runs/graf_noisy \
      --grid='loss.name=["supcon","cross_entropy"]' \
      --grid='data.label_noise=[0.0,0.2,0.4,0.6,0.8,1.0]'

Preset 'cpu_slow': the same at a 10x smaller learning rate (0.01, at most
10 000 iterations, fit checked every 50; about 20 s per 1000 iterations on
one core), the regime where neither loss fits
instantly (at lr 0.1 both fit clean labels by iteration 75 and CE's fit
step is flat from p = 0.4 on).

Then ``colabs/graf.ipynb`` (``CLJAX_GRAF_SWEEP=runs/graf_noisy``) plots the
fit step against p with a fitted power law ``a + b p^k`` per loss (k
free, ``cljax.analysis.stats.power_law_fit``), and compares linear, power-law and
saturating growth by AICc (``cljax.analysis.stats.growth_models``).
Expected at CPU scale: both losses fit every p well inside the budget, and
the fit step grows with p for both. Preset 'tiny' (seconds) is for CI.
"""

import ml_collections

from cljax._src import config_files

supcon_vs_ce = config_files.sibling(__file__, "supcon_vs_ce.py")
PRESETS = ("", "cpu", "cpu_slow", "tiny")


def _budget(config, *, steps: int, check_every: int, eval_every: int):
  """At most ``steps`` iterations, the fit checked (and the losses logged)
  every ``check_every``, evaluated and checkpointed every ``eval_every``."""
  config.steps = steps
  config.evals.fit.every = check_every
  config.log_every = check_every
  config.eval_every = eval_every
  config.checkpoint.every = eval_every


def get_config(preset: str | None = None) -> ml_collections.ConfigDict:
  """Presets: '' (paper scale), 'cpu' (minutes), 'cpu_slow' (the cpu
  preset at a 10x smaller learning rate), 'tiny' (seconds, CI)."""
  preset = supcon_vs_ce.default.check_preset(preset, PRESETS, __file__)
  slow = preset == "cpu_slow"
  preset = "cpu" if slow else preset
  config = supcon_vs_ce.get_config(preset)
  config.data.augment.mode = "identity"  # P2's noisy-label runs: no augment.
  config.data.label_noise = 0.0
  config.data.label_noise_mode = "different"
  config.evals.fit.stop = True
  if preset == "":
    config.evals.fit.every = 500
    config.eval_every = 10_000
    return config

  config.data.name = "cljax_digits"
  config.model.encoder = "mlp"
  config.model.encoder_kwargs = {"widths": (512, 512, 128),
                                 "activate_final": False, "use_bn": False}
  config.optim.schedule = "constant"
  config.optim.weight_decay = 0.0
  # Unclipped, as in the paper: clipping would slow the memorisation this
  # measures, and the digits runs stay finite without it (60 runs, 5 seeds).
  config.optim.clip_norm = 0.0
  _budget(config, steps=5000, check_every=25, eval_every=1000)
  config.checkpoint.keep = 1
  config.evals.geometry.num_train = 1437   # shared by the evaluators
  if slow:
    # At lr 0.1 both losses fit clean labels within 2-3 checks (50-75
    # iterations) and CE's fit step saturates from p = 0.4 on: the growth
    # law is then read off a handful of checks. At lr 0.01 neither fits
    # instantly, so the curve has room to be linear,
    # convex or saturating (measured, CE seed 0: at lr 0.03 p = 1 still fit
    # by iteration 450; at lr 0.01 p = 0.4 had 88 % fit after 1500).
    config.optim.learning_rate = 0.01
    _budget(config, steps=10_000, check_every=50, eval_every=5000)
  if preset == "tiny":
    config.data.name = supcon_vs_ce.TINY_DATA
    config.model.encoder_kwargs = {"widths": (64, 32),
                                   "activate_final": False, "use_bn": False}
    config.data.batch_size = 64
    # One evaluation and one checkpoint, at the end: CI time is compile time.
    _budget(config, steps=30, check_every=5, eval_every=1000)
    config.evals.fit.threshold = 0.5
    config.evals.geometry.num_train = 500
  return config
