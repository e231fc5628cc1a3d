r"""P2 toy study: SupCon summed over all 2002 batches reaches its lower bound.

Graf et al. 2021: 3 classes x 2 points on the circle (dim 2, unit sphere),
batches = all ((6 9)) = 2002 multisets of size 9 of the 6 points. The SupCon
loss (L_out, per-anchor sum, duplicates are positives) summed over every
multiset is bounded below by ``cljax.theory.supcon_multiset_bound``, with
equality iff each class collapses to a vertex of a regular simplex (here an
equilateral triangle on the circle). The 6 points are free parameters,
optimised by projected gradient descent (a gradient step, then back onto the
circle).

  python -m cljax.main --config=experiments/unconstrained/graf_multisets.py \
      --workdir=runs/unconstrained/graf_multisets
  python -m cljax.main \
      --config=experiments/unconstrained/graf_multisets.py:smoke \
      --workdir=/tmp/s

Temperature. P2 trains with tau = 0.1, where the loss barely depends on the
angles between classes (the negative terms are ~exp(-15)), so float32
projected GD stalls near but not at the triangle; the default tau = 0.5
makes the optimum well conditioned. Compare with
``--config.loss.kwargs.temperature=0.1 --config.learning_rate=1e-4
--config.steps=2000``.

Presets: '' (tau = 0.5, 500 steps, about 5 s on 2 CPU cores), 'smoke' (50
steps). Expected (default): summed loss equal to the bound to ~1e-7
relative (float32), both classes' points collapsed, class means 120 degrees
apart (ETF distance ~0).
"""

import ml_collections

from cljax import unconstrained
from cljax._src import config_files

default = config_files.sibling(__file__, "../default.py")
graf_ce = config_files.sibling(__file__, "graf_ce.py")
PRESETS = ("", "smoke")


def get_config(preset: str | None = None) -> ml_collections.ConfigDict:
  preset = default.check_preset(preset, PRESETS, __file__)
  config = unconstrained.default_config()
  graf_ce.p2_toy(config, learning_rate=3e-4)
  config.samples_per_class = 2
  config.objective = "all_multisets"
  config.batch_size = 9
  config.steps = 500
  config.log_every = 50
  config.loss.name = "supcon"
  config.loss.kwargs = ml_collections.ConfigDict(
      {"temperature": 0.5, "normalize": "sphere"})
  if preset == "smoke":
    config.steps = 50
    config.log_every = 25
  return config
