"""The evaluators by name: ``config.evals.<entry>.type`` -> its class.

Every class takes ``context=`` (a ``runner.Context``) and its own fields as
keyword arguments, and says whether it ``needs_labels``.
"""

from __future__ import annotations

from cljax.training.evaluators import dataset_gap
from cljax.training.evaluators import fewshot
from cljax.training.evaluators import fit
from cljax.training.evaluators import geometry
from cljax.training.evaluators import knn
from cljax.training.evaluators import linear_probe
from cljax.training.evaluators import ncc
from cljax.training.evaluators import simplex
from cljax.training.evaluators import spectrum

REGISTRY = {
    "geometry": geometry.Evaluator,
    "spectrum": spectrum.Evaluator,
    "ncc": ncc.Evaluator,
    "knn": knn.Evaluator,
    "linear_probe": linear_probe.Evaluator,
    "fewshot": fewshot.Evaluator,
    "simplex": simplex.Evaluator,
    "fit": fit.Evaluator,
    "dataset_gap": dataset_gap.Evaluator,
}
# The fields of config.evals.<entry> that every evaluator understands (the
# runner reads them; the rest go to the evaluator's class).
GENERIC_FIELDS = ("type", "every", "final_only")
