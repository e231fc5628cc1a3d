"""Closed-form theory of contrastive learning: bounds, optima and geometry.

Everything here is a closed-form utility evaluated in float64 (plain Python
floats, NumPy float64 arrays, exact Python integers for combinatorics). Nothing
is traced or trained: use these values as targets for tests and plots of the
losses in :mod:`cljax.losses` and the metrics in :mod:`cljax.geometry`.

Notation (``docs/conventions.md#notation``): ``C`` classes,
``n`` samples per class, ``N = C * n`` samples, ``K`` views per sample,
``tau`` the temperature (logits are ``similarity / tau``). Throughout,
``e = exp(-C / ((C - 1) * tau))`` is the exponentiated logit of a negative
relative to a positive at a unit-norm simplex ETF. The References of each
function name the anchor of ``docs/conventions.md`` that states the formula
(with its provenance: paper, authors' code, or derived).

Papers:
  * P1: Luthra, Yang, Galanti, "Self-Supervised Contrastive Learning is
    Approximately Supervised Contrastive Learning", NeurIPS 2025
    (arXiv 2506.04411).
  * P2: Graf, Hofer, Niethammer, Kwitt, "Dissecting Supervised Contrastive
    Learning", ICML 2021 (arXiv 2102.08817).
  * P3: Jiang, Nguyen, Aeron, Ishwar, "Hard-Negative Sampling for Contrastive
    Learning: Optimal Representation Geometry and Neural- vs
    Dimensional-Collapse", TMLR (arXiv 2311.05139).

Modules (each with one job): :mod:`~cljax.theory.etf` (the simplex ETF),
:mod:`~cljax.theory.gap` (P1 Theorem 1), :mod:`~cljax.theory.at_etf` (loss
values at the collapsed ETF), :mod:`~cljax.theory.multiset` (P2's SupCon
bound), :mod:`~cljax.theory.fewshot` (P1's few-shot NCC bound). Every
hyper-parameter (temperature, radius, beta, ways, ...) is keyword-only.
"""

from cljax.theory.at_etf import cross_entropy_at_simplex
from cljax.theory.at_etf import dcl_at_etf
from cljax.theory.at_etf import nscl_at_etf
from cljax.theory.at_etf import ntxent_at_etf
from cljax.theory.at_etf import scl_at_etf
from cljax.theory.at_etf import supcon_at_etf
from cljax.theory.at_etf import ucl_at_etf
from cljax.theory.etf import simplex_etf
from cljax.theory.fewshot import FewShotBound
from cljax.theory.fewshot import fewshot_bound
from cljax.theory.gap import batch_gap_bound
from cljax.theory.gap import batch_gap_bound_from_labels
from cljax.theory.gap import check_gap
from cljax.theory.gap import double_counted_gap_bound
from cljax.theory.gap import gap_bound
from cljax.theory.gap import gap_bound_from_counts
from cljax.theory.multiset import supcon_multiset_bound
from cljax.theory.multiset import supcon_multiset_counts

__all__ = [
    "FewShotBound",
    "batch_gap_bound",
    "batch_gap_bound_from_labels",
    "check_gap",
    "cross_entropy_at_simplex",
    "dcl_at_etf",
    "double_counted_gap_bound",
    "fewshot_bound",
    "gap_bound",
    "gap_bound_from_counts",
    "nscl_at_etf",
    "ntxent_at_etf",
    "scl_at_etf",
    "simplex_etf",
    "supcon_at_etf",
    "supcon_multiset_bound",
    "supcon_multiset_counts",
    "ucl_at_etf",
]
