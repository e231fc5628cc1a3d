"""What a paper's reproduction declares: its sweeps, its colab, its claims.

Each paper has one module ``cljax/reproduce/<paper>.py`` with:

* ``COLAB``: the notebook (path from the repository root) that turns the
  sweeps into the paper's tables and figures;
* ``sweeps(scale) -> list[Sweep]``: every sweep the results need at
  ``scale`` (one of ``SCALES``);
* ``colab_env(dirs, *, summary, figures) -> dict[str, str]``: the environment
  variables that point the colab at the sweep dirs (``dirs`` maps each
  ``Sweep.name`` to its directory), at the JSON file the colab writes its
  numbers to (``summary``) and at the directory for its PNG figures
  (``figures``);
* ``claims(summary, *, scale=None) -> list[Claim]``: the paper's claims
  judged from that JSON (verdicts rest on intervals over seeds, never on one
  run); at ``scale="tiny"`` each reads ``_render.NOT_JUDGED`` instead
  (``_render.judged``);
* ``BOUNDS``: ``[(path, (low, high))]``, the summary's quantities that cannot
  leave a range (distances, ranks, accuracies); ``claims``, ``render`` and
  the driver clip their intervals to it (``_render.bounded``);
* ``render(summary, *, scale, commands, figures) -> str``: the markdown of
  ``experiments/results/<paper>.md``, every number read from ``summary``.

Optionally, for claims that do not hold at the scale's budget:

* ``attempts(scale) -> list[Sweep]``: one deliberate attempt per such claim
  with a larger budget (longer training, a harder or larger dataset); their
  runs are not the colab's (it never sees their directories);
* ``attempt_summary(dirs, *, scale) -> dict``: the attempts' numbers, read
  from the runs (``dirs`` as for ``colab_env``, attempt sweeps included); the
  driver stores them as ``summary["attempts"]`` before ``claims`` and
  ``render`` read the summary.

The driver (``python -m cljax.reproduce``) runs the sweeps resumably, executes
the colab, and writes the markdown; no number of a results file is typed.
"""

from __future__ import annotations

import dataclasses

SCALES = ("tiny", "cpu", "paper")


@dataclasses.dataclass(frozen=True)
class Sweep:
  """One ``python -m cljax.sweep`` invocation of a reproduction.

  Attributes:
    name: short identifier, unique within the paper (e.g. ``"cl_vs_nscl"``);
      the sweep's directory is ``<runs_dir>/<paper>/<scale>/<name>``.
    config: the ``--config`` argument, ``"experiments/<file>.py[:preset]"``.
    grid: ``--grid`` specs (product axes), e.g.
      ``('loss.name=["dcl","nscl"]',)``.
    zipped: ``--zip`` specs (one joint axis).
    seeds: number of seeds swept as the last axis (``--seeds``); 1 sweeps
      no seed (the config's own seed).
    overrides: ``--config.<field>=<value>`` flags applied to every point.
  """
  name: str
  config: str
  grid: tuple[str, ...] = ()
  zipped: tuple[str, ...] = ()
  seeds: int = 1
  overrides: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True)
class Claim:
  """A paper's claim and what the runs say of it.

  Attributes:
    paper: ``"P1"``, ``"P2"`` or ``"P3"``.
    claim: the claim in one line.
    measured: the measurement in one line, with its interval and seeds.
    holds: ``"yes"``, ``"no"``, ``"partly"`` or ``"undecided"`` (an interval
      that straddles the threshold), with a short qualifier if needed.
    null: what the same measurement reads without the effect, computed by
      the same code on the same data (class-agnostic features, random class
      means, permuted labels, ...), and whether the verdict was judged
      against it; ``"—"`` only where the claim is a closed-form check with
      no learning in it (say so in ``measured``). A verdict about learning
      whose threshold the null also passes is a defect.
  """
  paper: str
  claim: str
  measured: str
  holds: str
  null: str = "—"
