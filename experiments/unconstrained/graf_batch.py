r"""P2 Figure 6: single-batch SupCon minimisers need not be simplices.

Graf et al. 2021: the simplex minimises SupCon summed over *all* batches, but
the minimiser of one batch's loss depends on its label counts. Here the 9
points of one batch of 3 classes are free on the circle (dim 2, unit sphere)
and the batch's SupCon loss (L_out, per-anchor sum) is minimised by
projected gradient descent, for each of the 12 label configurations of a
9-point batch (the partitions of 9 into at most 3 parts):

  python -m cljax.sweep --config=experiments/unconstrained/graf_batch.py \
      --sweep_dir=runs/unconstrained/graf_batches --grid='class_counts=[
      (9,0,0),(8,1,0),(7,2,0),(6,3,0),(5,4,0),(7,1,1),(6,2,1),(5,3,1),
      (5,2,2),(4,4,1),(4,3,2),(3,3,3)]'
  python -m cljax.main --config=experiments/unconstrained/graf_batch.py:smoke \
      --workdir=/tmp/s

Presets: '' (counts (7, 1, 1), 600 steps, a few seconds), 'smoke' (60 steps).
Expected: (3, 3, 3) ends at the equilateral triangle; skewed batches do not
(for (7, 1, 1) the two singleton classes, which have no positives, are both
pushed to the antipode of the majority class: cosine ~1 between them instead
of -1/2).
"""

import ml_collections

from cljax import unconstrained
from cljax._src import config_files

default = config_files.sibling(__file__, "../default.py")
graf_ce = config_files.sibling(__file__, "graf_ce.py")
PRESETS = ("", "smoke")

# The 12 label configurations of a 9-point batch with 3 classes.
LABEL_CONFIGURATIONS = (
    (9, 0, 0), (8, 1, 0), (7, 2, 0), (6, 3, 0), (5, 4, 0), (7, 1, 1),
    (6, 2, 1), (5, 3, 1), (5, 2, 2), (4, 4, 1), (4, 3, 2), (3, 3, 3))


def get_config(preset: str | None = None) -> ml_collections.ConfigDict:
  preset = default.check_preset(preset, PRESETS, __file__)
  config = unconstrained.default_config()
  graf_ce.p2_toy(config, learning_rate=0.02)
  config.class_counts = (7, 1, 1)
  config.steps = 600
  config.log_every = 100
  config.loss.name = "supcon"
  config.loss.kwargs = ml_collections.ConfigDict(
      {"temperature": 0.5, "normalize": "sphere", "reduction": "sum"})
  if preset == "smoke":
    config.steps = 60
    config.log_every = 30
  return config
