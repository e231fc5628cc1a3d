r"""Unconstrained features: NSCL minimisers collapse to a simplex ETF.

Luthra et al. 2025, Theorem 2: with balanced classes and dim >= C - 1, the
minimisers of the negatives-only supervised contrastive loss show augmentation
collapse, within-class collapse and class means on a simplex ETF, with the
minimum value log(K(N - n)) - C / ((C - 1) tau).

  python -m cljax.main --config=experiments/unconstrained.py --workdir=runs/default
  python -m cljax.main --config=experiments/unconstrained.py:smoke --workdir=/tmp/s

Expected (default preset, a few seconds on 2 CPU cores): final loss within
1e-3 of the closed-form minimum, NC1 and ETF distance near 0.
"""

import ml_collections


def get_config(preset: str | None = None) -> ml_collections.ConfigDict:
  config = ml_collections.ConfigDict()
  config.mode = "unconstrained"
  config.seed = 0
  config.num_classes = 10
  config.samples_per_class = 8
  config.num_views = 2
  config.dim = 16
  config.steps = 2000
  config.learning_rate = 0.05
  config.log_every = 200
  config.loss = ml_collections.ConfigDict()
  config.loss.name = "nscl"
  config.loss.kwargs = ml_collections.ConfigDict(
      {"temperature": 0.5, "normalize": "sphere"})
  if preset == "smoke":
    config.num_classes = 4
    config.samples_per_class = 3
    config.steps = 100
    config.log_every = 50
  elif preset not in (None, ""):
    raise ValueError(f"Unknown preset {preset!r}; use '' or 'smoke'.")
  return config
