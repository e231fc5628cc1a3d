"""Reading the larger-budget attempts' runs: values per seed, intervals.

An attempt (``attempts(scale)`` of a paper module) is judged against the
scale's own runs of the same seeds, so its numbers are per-seed values
(read from each run's ``summary.json`` or checkpoint), their mean with a
Student-t interval, and paired differences over the seeds both sweeps ran.

>>> interval([1.0, 2.0, 3.0])["n"], interval([1.0])
(3, {'mean': 1.0, 'n': 1})
>>> round(paired({0: 2.0, 1: 3.0, 2: 5.0}, {0: 1.0, 1: 2.0, 3: 9.0})["mean"], 3)
1.0
"""

from __future__ import annotations

import json

from cljax.analysis import sweeps
from cljax.analysis import stats


def runs(sweep_dir: str, where: dict | None = None) -> list[dict]:
  """The finished runs of ``sweep_dir`` whose overrides match ``where``.

  Args:
    sweep_dir: a sweep with a seed axis.
    where: swept fields and the values a run must have
      (``{"loss.name": "supcon"}``); None takes every run. Configs are
      compared within each value of its first field (CE brings a classifier
      head that SupCon lacks).

  Returns:
    ``[{"seed": int, "workdir": path, "overrides": {...}, "summary": {...}}]``
    in sweep order.

  Raises:
    ValueError / FileNotFoundError: a run of the sweep has not finished, or
      the runs' configs differ beyond the swept fields
      (``cljax.analysis.sweeps.aggregate``'s check).
  """
  return [{"seed": int(run["seed"]), **{k: run[k] for k in (
              "workdir", "overrides", "summary")}}
          for run in sweeps._runs(  # pylint: disable=protected-access
              sweep_dir, arm=next(iter(where or {}), None))
          if all(run["overrides"].get(k) == v for k, v in (where or {}).items())]


def runs_by_seed(sweep_dir: str, where: dict | None = None) -> dict[int, dict]:
  """:func:`runs` keyed by seed.

  Raises:
    ValueError: two matching runs share a seed (narrow ``where``), or as
      :func:`runs`.
  """
  out = {}
  for run in runs(sweep_dir, where):
    if run["seed"] in out:
      raise ValueError(f"{sweep_dir}: runs {out[run['seed']]['workdir']} and "
                       f"{run['workdir']} both have seed {run['seed']}; give "
                       f"where= the swept fields that tell them apart.")
    out[run["seed"]] = run
  return out


def interval(values) -> dict:
  """Mean and 95 % Student-t interval (``stats.as_dict``); one value: its mean."""
  values = [float(v) for v in values]
  if len(values) < 2:
    return {"mean": values[0], "n": len(values)}
  return stats.as_dict(stats.mean_interval(values))


def paired(a: dict, b: dict) -> dict | None:
  """``a - b`` paired over the seeds both have (None if fewer than 2)."""
  seeds = sorted(set(a) & set(b), key=json.dumps)
  if len(seeds) < 2:
    return None
  return stats.as_dict(stats.paired_difference([a[s] for s in seeds],
                                               [b[s] for s in seeds]))
