"""Evaluators as plug-ins, chosen by name in ``config.evals`` (big_vision).

``config.evals`` is a ConfigDict ``name -> fields``; each entry runs one
evaluator of ``REGISTRY``::

  config.eval_every = 100          # the default cadence (0: no evaluation)
  config.evals = ml_collections.ConfigDict({
      "geometry": {"type": "geometry", "num_train": 2000},
      "probe": {"type": "linear_probe", "steps": 300, "final_only": True},
      "fit": {"type": "fit", "every": 25, "threshold": 1.0, "stop": True},
  })

Fields every entry understands:

- ``type``: the evaluator, a key of ``REGISTRY`` (default: the entry's name);
- ``every``: run every this many steps and at the last step (default
  ``config.eval_every``; ``<= 0``: never, not even at the end);
- ``final_only``: run at the last step only.

The rest are the evaluator's own fields (its module docstring lists them).
``standard()`` gives the usual set. An unknown name or field, or an
evaluator that needs labels on a dataset without them, fails when the run
starts, listing the valid choices.

Each evaluation step embeds each split at most once, with the variables left
on the device (``_features``), and the due evaluators share those features:
when the fit measure and an evaluation fall on the same step, the train split
is embedded once and the evaluation subset is read from it. Metric names are
those of the logged rows (``eval/h/...``, ``eval/z/...``,
``eval/simplex/...``, ``fit/...``).

The package's modules, one job each: ``registry`` (``REGISTRY``, the
evaluators by name), ``validate`` (the checks of ``config.evals``),
``runner`` (``build`` and the ``Runner`` the loop calls), ``defaults``
(``standard()``) and one module per evaluator (its fields in its
docstring). What the training objective sees (``with_classifier``,
``objective_features``) is ``cljax.training.objective``, which the train step
imports too.
"""

from __future__ import annotations

# evaluators.objective is the objective's module, cljax.training.objective
# (documented there, so not in __all__); its functions are in __all__.
from cljax.training import objective
from cljax.training.evaluators.defaults import standard
from cljax.training.evaluators.fit import first_fit_step
# Also the constants GENERIC_FIELDS and EVAL_BATCH_SIZE (the run's startup
# reads the default batch as evaluators.EVAL_BATCH_SIZE).
from cljax.training.evaluators.registry import GENERIC_FIELDS
from cljax.training.evaluators.registry import REGISTRY
from cljax.training.evaluators.runner import EVAL_BATCH_SIZE
from cljax.training.evaluators.runner import Context
from cljax.training.evaluators.runner import Evaluation
from cljax.training.evaluators.runner import Runner
from cljax.training.evaluators.runner import build
from cljax.training.evaluators.simplex import simplex_geometry
from cljax.training.objective import is_cross_entropy
from cljax.training.objective import objective_features
from cljax.training.objective import with_classifier

__all__ = ["REGISTRY", "Context", "Evaluation", "Runner", "build", "standard",
           "first_fit_step", "is_cross_entropy", "objective_features",
           "simplex_geometry", "with_classifier"]
