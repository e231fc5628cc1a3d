"""Unconstrained ("layer-peeled") features: optimise the embeddings directly.

The theory of all three papers is about minimisers over free features: with
the encoder removed, the N×K embeddings themselves (and, for cross-entropy,
the classifier) are the parameters. This driver minimises a ``cljax.losses``
loss over them and reports how close the result is to the predicted geometry
(augmentation collapse, within-class collapse, simplex ETF, dimensional
collapse) and to the value the theory predicts.

Objectives (``config.objective``):

* ``"full_batch"``: the loss of all N samples as one batch (P1 Theorem 2, P3's
  hardness sweep, P2's per-batch minimisers when ``config.class_counts`` gives
  one batch's label counts, and cross-entropy with a free classifier).
* ``"all_multisets"``: the loss summed over every multiset of
  ``config.batch_size`` of the N samples (P2's toy study: 3 classes x 2 points
  on the circle, batch 9, 2002 multisets), each with ``reduction="sum"``.

``config.optimizer`` is ``"adam"`` or ``"sgd"`` (plain or momentum gradient
steps); with ``config.project`` every step is followed by a projection of the
features onto the unit sphere and of the classifier rows onto the ball of
radius ``config.weight_radius`` (P2's projected gradient descent).

A work dir holds ``config.json``, ``metrics.jsonl`` (read them with
``cljax.analysis.checkpoints.read_config`` / ``read_metrics``), ``summary.json`` and
the training loop's orbax checkpoints (``cljax.training.checkpoint.Manager``:
``model`` = the free features ``{"params": {"z", "w"?}}``, ``opt`` = the
optimiser state, ``meta`` = step, labels and config) of the final step and,
with ``config.checkpoint.every``, of every that many steps. Rerunning in the
same work dir resumes from the newest checkpoint. ``load`` reads a work dir
of either layout: this one, or the ``features.npz`` (final z, labels and
classifier) that runs written before checkpoints hold.

The problem (labels, objective, the theory's values) is
:mod:`cljax.unconstrained.problem`, the geometry of a solution
:mod:`cljax.unconstrained.geometry` and the driver (run, resume, load)
:mod:`cljax.unconstrained.driver`; this package exports the driver's API.
"""

from cljax.unconstrained.driver import Result
from cljax.unconstrained.driver import default_config
from cljax.unconstrained.driver import initial_geometry
from cljax.unconstrained.driver import load
from cljax.unconstrained.driver import load_sweep
from cljax.unconstrained.driver import run

__all__ = ["Result", "default_config", "initial_geometry", "load", "load_sweep",
           "run"]
