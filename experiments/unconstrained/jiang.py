r"""P3 on free features: hardness beta x normalisation, SCL/HSCL and UCL/HUCL.

Jiang et al. 2024: with normalisation and hard negatives, SCL/HSCL (negatives
of other classes) and UCL (all batch members as negatives) are minimised by
neural collapse (unit-norm class means on a simplex ETF); in their ResNet
runs, without hard negatives (beta = 0) or without normalisation, Adam ends
in dimensional collapse (class means span few directions). Whether DC appears
without a network is open (docs/conventions.md#cpu-scale): this is exploratory.
The loss is ``cljax.losses.hard_contrastive`` with the exact tilted expectation
(the K_neg -> infinity limit of their sampler), one view per sample,
positives by label (the anchor included), tau = 1, dim = C - 1 as in P3, and
Adam from a small random start.

  python -m cljax.sweep --config=experiments/unconstrained/jiang.py \
      --sweep_dir=runs/unconstrained/jiang_beta \
      --grid='loss.kwargs.negatives=["different_class","all"]' \
      --grid='loss.kwargs.normalize=["sphere","ball","none"]' \
      --grid='loss.kwargs.beta=[0.0,2.0,5.0,10.0,30.0]'
  python -m cljax.main --config=experiments/unconstrained/jiang.py:smoke \
      --workdir=/tmp/s

Presets: '' (C = 10, n = 10, dim 9, HSCL beta = 5 on the ball; seconds on 2
CPU cores), 'smoke' (C = 4, 30 steps). Reported per point: final loss, the
value at NC (and the theorem's minimum where one applies), NC1, ETF
distance, P3's zero-sum / unit-norm / equal-inner-product deviations, and
the effective rank and spectrum of the class means (C - 1 = 9 at an ETF).

The features start far inside the unit ball (mean norm ~0.03), so the ball
runs test a prediction: P3's minimisers lie on the boundary, so the ball
runs must end at norm 1 like the sphere's (``python -m cljax.reproduce
unconstrained`` judges the mean feature norm against its value at the
start). Every metric's null is its value at the run's own initial
embeddings (``unconstrained.initial_geometry``), e.g. an effective rank of
~7 of 9 for random class means: "dimensional collapse" without
normalisation must go below it. Cost: ~5 s a point on 2 CPU cores (0.75 s
of optimisation), 150 runs for the grid above at 5 seeds (~13 min).
"""

import ml_collections

from cljax import unconstrained
from cljax._src import config_files

default = config_files.sibling(__file__, "../default.py")
PRESETS = ("", "smoke")


def get_config(preset: str | None = None) -> ml_collections.ConfigDict:
  preset = default.check_preset(preset, PRESETS, __file__)
  config = unconstrained.default_config()
  config.num_classes = 10
  config.samples_per_class = 10
  config.num_views = 1
  config.dim = 9
  # P3's networks start with small outputs, far inside the unit ball.
  config.init_scale = 0.01
  config.optimizer = "adam"
  config.learning_rate = 1e-2
  config.steps = 1000
  config.log_every = 100
  config.loss.name = "hard_contrastive"
  config.loss.kwargs = ml_collections.ConfigDict({
      "beta": 5.0, "negatives": "different_class", "normalize": "ball",
      "temperature": 1.0})
  if preset == "smoke":
    config.num_classes = 4
    config.samples_per_class = 3
    config.dim = 3
    config.steps = 30
    config.log_every = 15
  return config
