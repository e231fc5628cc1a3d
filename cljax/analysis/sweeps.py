r"""Reading a finished sweep: its index, and means and paired differences.

:func:`read_sweep` reads ``sweep.json`` (what the colabs do);
:func:`aggregate` reports, per group of runs that differ only in the seed,
each final metric's mean and Student-t 95 % interval over seeds;
:func:`paired` the per-seed difference between two values of one swept
field, with its interval. Both refuse runs whose configs differ beyond the
swept fields. ``cljax.sweep`` runs sweeps; this module reads them.

>>> import tempfile
>>> read_sweep(tempfile.mkdtemp())
Traceback (most recent call last):
...
FileNotFoundError: ...sweep.json not found: pass the --sweep_dir of a `python -m cljax.sweep` run.
"""

from __future__ import annotations

import json
import os
from typing import Any

from cljax.analysis import checkpoints
from cljax.training import run_identity
from cljax.analysis import stats


def point_name(point: dict[str, Any]) -> str:
  """A point's work-dir name: 'field=value,...' (no '/' or spaces)."""
  return ",".join(f"{k}={v}" for k, v in point.items()).replace(
      "/", "_").replace(" ", "")


INDEX_VERSION = 2


def read_index(sweep_dir: str) -> dict | None:
  """``<sweep_dir>/sweep.json`` in the current layout; None when absent.

  Indexes written before version 2 had no ``fixed`` overrides, no
  ``sweeps`` list and (the oldest) only absolute ``workdir`` s; they are
  converted here: their ``fixed`` is None (not recorded), their ``sweeps``
  the one grid they name.

  Returns:
    ``{"version": 2, "config": str, "fixed": {field: value} or None,
    "grid", "zip", "seeds" (of the latest grid), "sweeps": [{"grid",
    "zip", "seeds"}, ...], "points": [{"overrides": {field: value},
    "fixed": {field: value} or None, "dir": str or None, "workdir": str}]}``.
  """
  path = os.path.join(sweep_dir, "sweep.json")
  if not os.path.exists(path):
    return None
  with open(path) as f:
    index = json.load(f)
  latest = {k: index.get(k, default) for k, default in
            (("grid", {}), ("zip", {}), ("seeds", None))}
  fixed = index.get("fixed")
  return {
      "version": INDEX_VERSION, "config": index.get("config", ""),
      "fixed": fixed, **latest, "sweeps": index.get("sweeps", [latest]),
      "points": [{"overrides": p["overrides"],
                  "fixed": p.get("fixed", fixed),
                  "dir": p.get("dir"), "workdir": p.get("workdir")}
                 for p in index["points"]]}


def read_sweep(sweep_dir: str) -> list[dict]:
  """The points of a sweep, with work dirs resolved against ``sweep_dir``.

  Every point ever run in ``sweep_dir`` is listed (``cljax.sweep`` adds a
  later grid's points to the index), in the order they were first indexed.

  Args:
    sweep_dir: a directory written by :func:`run_sweep` (possibly copied
      elsewhere since).

  Returns:
    ``[{"overrides": {field: value}, "fixed": {field: value} or None,
    "workdir": absolute path, "seed": int or None}]`` in sweep order;
    ``overrides`` are the swept fields, ``fixed`` the sweep command's
    ``--config.<field>=<value>`` flags (None in indexes written before they
    were recorded); ``seed`` is the point's swept seed (``--seeds`` or a
    ``seed`` grid/zip), None when the seed is not swept.

  Raises:
    FileNotFoundError: ``sweep_dir`` has no ``sweep.json``.
  """
  index = read_index(sweep_dir)
  if index is None:
    raise FileNotFoundError(
        f"{os.path.join(sweep_dir, 'sweep.json')} not found: pass the "
        f"--sweep_dir of a `python -m cljax.sweep` run.")
  entries = []
  for entry in index["points"]:
    # "dir" is relative to the sweep dir; older indexes only have "workdir".
    rel = entry["dir"]
    workdir = (os.path.join(sweep_dir, rel) if rel is not None
               else entry["workdir"])
    entries.append({"overrides": entry["overrides"], "fixed": entry["fixed"],
                    "workdir": os.path.abspath(workdir),
                    "seed": entry["overrides"].get("seed")})
  return entries


def _swept(field: str, swept) -> bool:
  return any(field == f or field.startswith(f + ".") for f in swept)


def _runs(sweep_dir: str, arm: str | None = None) -> list[dict]:
  """Each finished run's overrides, seed, flat config and summary.

  With ``arm`` (the field :func:`paired` compares), configs are compared
  within each of its values: the two arms may differ in what the field
  brings with it (CE's classifier head, for ``loss.name``).

  Raises:
    FileNotFoundError / ValueError: an unfinished or interrupted run, or
      configs that differ beyond the swept fields and the seed.
  """
  runs = []
  for entry in read_sweep(sweep_dir):
    workdir = entry["workdir"]
    config = checkpoints.read_json(os.path.join(workdir, "config.json"))
    summary = checkpoints.read_json(os.path.join(workdir, "summary.json"))
    if config is None or summary is None:
      raise FileNotFoundError(
          f"{workdir} has no {'config' if config is None else 'summary'}"
          f".json: the point has not finished; rerun the sweep's command to "
          f"run it.")
    if summary.get("interrupted"):
      raise ValueError(f"{workdir} was interrupted at step "
                       f"{summary.get('step')}; rerun the sweep's command to "
                       f"finish it before aggregating.")
    flat = run_identity.flatten(config)
    runs.append({**entry, "config": flat, "summary": summary,
                 "seed": flat.get("seed", entry["seed"])})
  swept = {f for run in runs for f in run["overrides"]} | {"seed"}
  fields = sorted({f for run in runs for f in run["config"]})
  arms = {}
  for run in runs:
    arms.setdefault(json.dumps(run["overrides"].get(arm)), []).append(run)
  differing = []
  for field in fields:
    if _swept(field, swept):
      continue
    for members in arms.values():
      values = {json.dumps(run["config"].get(field, "<absent>"),
                           sort_keys=True) for run in members}
      if len(values) > 1:
        differing.append(f"{field} ({', '.join(sorted(values))})")
  if differing:
    raise ValueError(
        f"The runs of {sweep_dir} differ in config beyond the swept fields "
        f"({', '.join(sorted(swept))}) and cannot be averaged: "
        f"{'; '.join(differing)}. Rerun them with one config, or sweep the "
        f"field.")
  return runs


def _metric_names(runs, metrics, where: str) -> list[str]:
  def numeric(summary):
    return {k for k, v in summary.items() if k not in ("step", "interrupted")
            and isinstance(v, (int, float)) and not isinstance(v, bool)}
  if metrics is None:
    return sorted(set.intersection(*[numeric(r["summary"]) for r in runs]))
  for run in runs:
    missing = [m for m in metrics if m not in numeric(run["summary"])]
    if missing:
      raise ValueError(f"{where}: {run['workdir']}/summary.json has no "
                       f"numeric {missing}; it has "
                       f"{sorted(numeric(run['summary']))}.")
  return list(metrics)


def _interval(fn, where: str, metric: str, *values, confidence):
  try:
    return fn(*values, confidence=confidence)
  except ValueError as e:
    raise ValueError(f"{where}, {metric}: {e} (choose metrics= to leave a "
                     f"metric out).") from None


def _key(overrides, drop) -> tuple:
  return tuple((k, json.dumps(v)) for k, v in overrides.items()
               if k not in drop)


def _groups(runs, drop):
  groups = {}
  for run in runs:
    groups.setdefault(_key(run["overrides"], drop), []).append(run)
  return groups.values()


def _where(overrides) -> str:
  return point_name(overrides) or "the base config"


def aggregate(sweep_dir: str, *, metrics: list[str] | None = None,
              confidence: float = 0.95) -> list[dict]:
  """Mean and Student-t interval over seeds of each point's final metrics.

  Runs are grouped by their swept fields except the seed; within a group
  each metric of ``summary.json`` is averaged over seeds with the interval
  :math:`\\bar x \\pm t_{(1+c)/2,\\,n-1}\\, s/\\sqrt{n}`
  (:func:`cljax.analysis.stats.mean_interval`: Student t, not a bootstrap).

  Args:
    sweep_dir: a sweep run with ``--seeds`` (or a ``seed`` grid).
    metrics: summary keys to report (default: every numeric key all runs
      share, except ``step``).
    confidence: the interval's coverage.

  Returns:
    ``[{"overrides": {field: value} without the seed, "seeds": [...],
    "workdirs": [...], "metrics": {name: stats.Interval}}]`` in sweep order.

  Raises:
    ValueError: runs whose configs differ beyond the swept fields and the
      seed (listing those fields), a group with fewer than 2 seeds or a
      repeated seed, a non-finite or missing metric, an interrupted run.
    FileNotFoundError: no index, or a point without ``summary.json``.
  """
  out = []
  for group in _groups(_runs(sweep_dir), {"seed"}):
    overrides = {k: v for k, v in group[0]["overrides"].items()
                 if k != "seed"}
    where = _where(overrides)
    seeds = [run["seed"] for run in group]
    if len(set(map(json.dumps, seeds))) != len(seeds):
      raise ValueError(f"{where}: seeds {seeds} repeat; sweep the seed with "
                       f"--seeds=5 to get an interval over seeds.")
    out.append({
        "overrides": overrides, "seeds": seeds,
        "workdirs": [run["workdir"] for run in group],
        "metrics": {m: _interval(stats.mean_interval, where, m,
                                 [r["summary"][m] for r in group],
                                 confidence=confidence)
                    for m in _metric_names(group, metrics, where)}})
  return out


def paired(sweep_dir: str, *, field: str, a: Any, b: Any,
           metrics: list[str] | None = None,
           confidence: float = 0.95) -> list[dict]:
  """Per-seed differences ``metric(field=a) - metric(field=b)`` and intervals.

  Runs of one seed share their randomness (batches, initialization), so the
  difference is paired by seed: the interval
  (:func:`cljax.analysis.stats.paired_difference`, Student t) is over the per-seed
  differences, one group per value of the other swept fields.

  Args:
    sweep_dir: a sweep that sweeps ``field`` and the seed.
    field: the swept field that differs, e.g. ``"loss.name"``.
    a, b: its two values (``a - b`` is reported).
    metrics: summary keys (default: every numeric key all runs share).
    confidence: the interval's coverage.

  Returns:
    ``[{"overrides": {other swept fields}, "seeds": [...],
    "metrics": {name: stats.Interval of a - b}}]``.

  Raises:
    ValueError: ``field`` not swept, ``a``/``b`` not among its values,
      seeds that do not pair up, fewer than 2 pairs, or as :func:`aggregate`.
  """
  runs = _runs(sweep_dir, arm=field)
  swept = sorted({f for run in runs for f in run["overrides"]} - {"seed"})
  if field not in swept:
    raise ValueError(f"field={field!r} is not swept in {sweep_dir}; swept: "
                     f"{swept}.")
  values = [run["overrides"][field] for run in runs]
  for name, value in (("a", a), ("b", b)):
    if value not in values:
      raise ValueError(f"{name}={value!r} is not a value of {field!r}; it "
                       f"takes {list(dict.fromkeys(map(repr, values)))}.")
  out = []
  for group in _groups(runs, {"seed", field}):
    overrides = {k: v for k, v in group[0]["overrides"].items()
                 if k not in ("seed", field)}
    where = _where(overrides)
    by_seed = [{json.dumps(r["seed"]): r for r in group
                if r["overrides"][field] == v} for v in (a, b)]
    if set(by_seed[0]) != set(by_seed[1]):
      raise ValueError(
          f"{where}: {field}={a!r} has seeds {sorted(by_seed[0])} and "
          f"{field}={b!r} has {sorted(by_seed[1])}; pairs need the same "
          f"seeds.")
    seeds = list(by_seed[0])
    if not seeds:
      raise ValueError(f"{where}: no run has {field}={a!r} or {b!r}.")
    runs_a = [by_seed[0][s] for s in seeds]
    runs_b = [by_seed[1][s] for s in seeds]
    out.append({
        "overrides": overrides, "seeds": [json.loads(s) for s in seeds],
        "metrics": {m: _interval(stats.paired_difference, where, m,
                                 [r["summary"][m] for r in runs_a],
                                 [r["summary"][m] for r in runs_b],
                                 confidence=confidence)
                    for m in _metric_names(runs_a + runs_b, metrics, where)}})
  return out
