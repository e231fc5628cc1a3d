r"""P1 Theorem 2 on free features: NSCL minimisers collapse to a simplex ETF.

Luthra et al. 2025, Theorem 2: with balanced classes and dim >= C - 1, the
minimisers of the negatives-only supervised contrastive loss (on the unit
sphere) show augmentation collapse, within-class collapse and class means on
a simplex ETF, with the minimum value log(K(N - n)) - C / ((C - 1) tau)
(``cljax.theory.nscl_at_etf``). Here the N x K embeddings are the parameters.

  python -m cljax.main --config=experiments/unconstrained/luthra_thm2.py \
      --workdir=runs/nscl_free
  python -m cljax.main --config=experiments/unconstrained/luthra_thm2.py:smoke \
      --workdir=/tmp/s

Over several (C, n, K, tau, dim >= C - 1), one work dir per point:

  python -m cljax.sweep --config=experiments/unconstrained/luthra_thm2.py \
      --sweep_dir=runs/unconstrained/luthra_thm2 \
      --grid='num_classes=[3,10]' --grid='samples_per_class=[2,8]' \
      --grid='num_views=[2,4]' --grid='loss.kwargs.temperature=[0.2,1.0]' \
      --grid='dim=[9,32]'

Presets: '' (C=10, n=8, K=2, dim=16, tau=0.5; a few seconds on 2 CPU
cores), 'smoke' (C=4, n=3; under a second after compilation).
Expected: final loss equal to the closed form within ~1e-6, NC1, ETF distance
and the view variance ~0, effective rank of the class means C - 1. At
dim = C - 1 with a small temperature (C = 10, dim = 9, tau = 0.2) Adam from
a random start can end in a spurious local minimum with one class split.
The measured values, means with 95 % intervals over seeds, are in
experiments/results/unconstrained.md (``python -m cljax.reproduce
unconstrained``).
"""

import ml_collections

from cljax import unconstrained
from cljax._src import config_files

default = config_files.sibling(__file__, "../default.py")
PRESETS = ("", "smoke")


def get_config(preset: str | None = None) -> ml_collections.ConfigDict:
  preset = default.check_preset(preset, PRESETS, __file__)
  config = unconstrained.default_config()
  if preset == "smoke":
    config.num_classes = 4
    config.samples_per_class = 3
    config.steps = 100
    config.log_every = 50
  return config
