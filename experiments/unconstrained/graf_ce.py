r"""P2: cross-entropy with a free classifier and features reaches the simplex.

Graf et al. 2021: with features on the sphere of radius rho, classifier rows
of norm at most r_W and dim >= C - 1, cross-entropy is minimised when the
classes collapse onto a regular simplex with the rows aligned to it, at
log(1 + (C - 1) exp(-rho r_W C / (C - 1)))
(``cljax.theory.cross_entropy_at_simplex``). Here both the features (on the
unit circle) and the bias-free classifier W (rows in the r_W ball) are free
parameters of projected gradient descent, in P2's toy setting: 3 classes x 2
points, dim 2.

  python -m cljax.main --config=experiments/unconstrained/graf_ce.py \
      --workdir=runs/unconstrained/graf_ce
  python -m cljax.main --config=experiments/unconstrained/graf_ce.py:smoke \
      --workdir=/tmp/s

Presets: '' (500 steps, a few seconds on 2 CPU cores), 'smoke' (50 steps).
Expected: final loss equal to the closed form to ~1e-6, class means and the
rows of W on the same equilateral triangle (ETF distance and NC3 ~0).
"""

import ml_collections

from cljax import unconstrained
from cljax._src import config_files

default = config_files.sibling(__file__, "../default.py")
PRESETS = ("", "smoke")


def p2_toy(config, *, learning_rate: float) -> None:
  """P2's toy setting: 3 classes, one view, free points on the unit circle
  (dim 2), projected gradient descent with momentum 0.5."""
  config.num_classes = 3
  config.num_views = 1
  config.dim = 2
  config.optimizer = "sgd"
  config.momentum = 0.5
  config.learning_rate = learning_rate
  config.project = True


def get_config(preset: str | None = None) -> ml_collections.ConfigDict:
  preset = default.check_preset(preset, PRESETS, __file__)
  config = unconstrained.default_config()
  p2_toy(config, learning_rate=0.5)
  config.samples_per_class = 2
  config.weight_radius = 1.0
  config.steps = 500
  config.log_every = 50
  config.loss.name = "cross_entropy"
  config.loss.kwargs = ml_collections.ConfigDict({"normalize": "sphere"})
  if preset == "smoke":
    config.steps = 50
    config.log_every = 25
  return config
