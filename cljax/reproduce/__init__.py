r"""Reproduce a paper's results from its sweeps: ``python -m cljax.reproduce``.

  python -m cljax.reproduce unconstrained --scale=cpu
  python -m cljax.reproduce graf --scale=paper --print_only   # for a cluster

For the paper's module ``cljax.reproduce.<paper>`` (the contract is
``cljax.reproduce._base``) the driver runs every sweep of the scale with
``cljax.sweep.run_sweep`` into ``<runs_dir>/<paper>/<scale>/<sweep>``
(resumable: finished points are skipped, an interrupted sweep resumes),
executes the paper's colab on those directories (it writes
``<out>/<paper>.json`` and ``<out>/figures/*.png``), writes
``<out>/<paper>.md`` from the paper's ``render`` and rewrites the claims
table of the results file (between its marker comments) from every paper's
JSON in ``<out>``. What the runs print goes to ``<sweep dir>.log``; the
console gets one line per sweep, then the claims with their verdicts and
the files written.

Provenance: every run records the code that trained it
(``<workdir>/provenance.json``, ``cljax.training.provenance``), and the JSON records
the commit it was rendered at (and whether the tree was dirty), the cljax
and JAX versions, and each run's work dir (relative to ``--runs_dir``),
config hash and commit; the markdown shows the commits. Runs trained by
other loss, model or data code than the current one (or without a record),
and runs of several commits in one reproduction, are refused with their
names unless ``--allow_stale`` is given; a JSON without provenance is not
rendered. At ``--scale=tiny`` no claim is judged.

``--out`` defaults to ``experiments/results`` at cpu scale (the results
file is then ``experiments/RESULTS.md``) and to ``<runs_dir>/<paper>/<scale>``
otherwise (results file ``<out>/RESULTS.md``), so a tiny CI run never
overwrites the committed results. ``--print_only`` prints the commands
(one ``python -m cljax.sweep`` per sweep, then the colab's) and writes
nothing.

>>> PAPERS
('luthra', 'graf', 'jiang', 'unconstrained')
"""

from cljax.reproduce._base import Claim
from cljax.reproduce._base import SCALES
from cljax.reproduce._base import Sweep
from cljax.reproduce._driver import PAPERS
from cljax.reproduce._run import reproduce

__all__ = ["Claim", "PAPERS", "SCALES", "Sweep", "reproduce"]
