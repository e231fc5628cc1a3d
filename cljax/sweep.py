r"""Run a grid of configs, one work dir per point, under one sweep dir.

  python -m cljax.sweep --config=experiments/default.py:smoke \
      --sweep_dir=runs/gap_vs_c \
      --grid='data.classes=[2,5,10]' --grid='loss.name=["dcl","nscl"]'

Each ``--grid`` is ``dotted.field=<Python literal list>``; the sweep is the
product of all grids. ``--zip`` fields (same syntax, lists of one length)
vary together as one more axis of that product, e.g. a loss temperature and
the monitor temperature that must match it:

  python -m cljax.sweep --config=experiments/luthra_temperature.py:cpu \
      --sweep_dir=runs/temperature \
      --zip='loss.kwargs.temperature=[0.1,1.0]' \
      --zip='monitor.temperature=[0.1,1.0]' --grid='seed=[0,1]'

``--seeds=5`` (seeds 0..4) or ``--seeds=3,7,11`` is the same as a ``seed``
grid, the last axis of the product, so every point x seed gets its own work
dir (``.../loss.name=dcl,seed=3``). :func:`aggregate` then reports, per
group of runs that differ only in the seed, each final metric's mean and
Student-t 95 % interval over seeds; :func:`paired` reports the per-seed
difference between two values of one field (e.g. ``loss.name``), which
shares each seed's randomness (the same batches and initialization), with
its interval. Both refuse runs whose configs differ beyond the swept fields.

Every point runs ``cljax.main``'s driver for the config
with those overrides in ``<sweep_dir>/<field>=<value>,.../``, sequentially on
this machine (a point whose work dir already holds a finished run resumes or
is skipped by the train loop's own resume), or, with ``--print_only``, the
sweep prints one ``python -m cljax.main`` command per point for a cluster.
``<sweep_dir>/sweep.json`` lists the points, their overrides and their work
dirs (relative to the sweep dir, so a copied sweep dir stays readable); it is
written before the first point runs, so an interrupted sweep is indexed too.
:func:`read_sweep` reads it back, which is what the colabs do.
"""

from __future__ import annotations

import ast
import copy
import difflib
import itertools
import json
import os
import shlex
import sys
from typing import Any

from absl import app
from absl import flags
from absl import logging

# The --config flag (and the drivers) are cljax.main's.
from cljax import errors
from cljax import main as main_lib
# Reading a sweep back lives in its own module; re-exported here.
from cljax._sweep_read import aggregate  # pylint: disable=unused-import
from cljax._sweep_read import paired  # pylint: disable=unused-import
from cljax._sweep_read import point_name as _point_name
from cljax._sweep_read import read_sweep  # pylint: disable=unused-import

_SWEEP_DIR = flags.DEFINE_string("sweep_dir", None, "Root of the sweep.")
_GRID = flags.DEFINE_multi_string(
    "grid", [], "dotted.field=[v1, v2, ...] (a Python literal list).")
_ZIP = flags.DEFINE_multi_string(
    "zip", [], "dotted.field=[v1, v2, ...]; all --zip fields vary together "
    "(equal lengths) as one axis of the product.")
_SEEDS = flags.DEFINE_string(
    "seeds", None, "N (seeds 0..N-1) or s1,s2,...: one more axis of the "
    "product, the same as --grid='seed=[...]'.")
_PRINT_ONLY = flags.DEFINE_bool(
    "print_only", False, "Print one command per point instead of running.")


def parse_grid(specs: list[str]) -> list[tuple[str, list[Any]]]:
  """['a.b=[1,2]'] -> [('a.b', [1, 2])], with clear errors."""
  grid = []
  for spec in specs:
    if "=" not in spec:
      raise ValueError(f"--grid {spec!r} must look like field=[v1, v2].")
    field, values = spec.split("=", 1)
    try:
      values = ast.literal_eval(values)
    except (ValueError, SyntaxError) as e:
      raise ValueError(f"--grid {spec!r}: {values!r} is not a Python literal "
                       f"list ({e}).") from None
    if not isinstance(values, (list, tuple)) or not values:
      raise ValueError(f"--grid {spec!r}: give a non-empty list of values.")
    grid.append((field.strip(), list(values)))
  return grid


def parse_seeds(spec: str | None) -> list[int] | None:
  """'5' -> [0, 1, 2, 3, 4]; '3,7,11' -> [3, 7, 11]; None -> None.

  Raises:
    ValueError: not a positive count or a list of distinct integers.
  """
  if spec is None or not str(spec).strip():
    return None
  spec = str(spec).strip()
  parts = [p.strip() for p in spec.split(",") if p.strip()]
  try:
    values = [int(p) for p in parts]
  except ValueError:
    raise ValueError(f"--seeds={spec!r}: give a count (--seeds=5 for seeds "
                     f"0..4) or integers (--seeds=3,7,11).") from None
  if "," not in spec:
    if values[0] < 1:
      raise ValueError(f"--seeds={spec!r}: the count must be at least 1 "
                       f"(--seeds=5 for seeds 0..4).")
    return list(range(values[0]))
  if len(set(values)) != len(values):
    raise ValueError(f"--seeds={spec!r}: a seed is listed twice.")
  return values


def with_seeds(grid: list[tuple[str, list[Any]]],
               seeds: list[int] | None) -> list[tuple[str, list[Any]]]:
  """``grid`` with ``seed`` as its last axis (unchanged when seeds is None).

  Raises:
    ValueError: ``grid`` already sweeps ``seed``.
  """
  if seeds is None:
    return list(grid)
  if any(field == "seed" for field, _ in grid):
    raise ValueError("--seeds and --grid='seed=[...]' both sweep the seed; "
                     "give one of them.")
  return list(grid) + [("seed", list(seeds))]


def zip_axis(zipped: list[tuple[str, list[Any]]]
             ) -> list[tuple[tuple[str, ...], list[tuple[Any, ...]]]]:
  """Zipped fields -> one axis of value tuples; [] when nothing is zipped.

  Args:
    zipped: ``parse_grid`` output of the ``--zip`` specs.

  Returns:
    ``[(fields, [values_0, values_1, ...])]`` with one tuple of values per
    position, or ``[]``.

  Raises:
    ValueError: the lists differ in length (naming every field and length).
  """
  if not zipped:
    return []
  lengths = {field: len(values) for field, values in zipped}
  if len(set(lengths.values())) > 1:
    raise ValueError(f"--zip lists must have one length; got {lengths}.")
  fields = tuple(field for field, _ in zipped)
  return [(fields, list(zip(*[values for _, values in zipped])))]


def _no_field(field: str, name: str, node) -> ValueError:
  close = difflib.get_close_matches(name, list(node.keys()), n=1)
  hint = f"; did you mean {close[0]!r}?" if close else "."
  return ValueError(f"--grid field {field!r}: the config has no "
                    f"{name!r}{hint}")


def set_field(config, field: str, value: Any) -> None:
  """Sets dotted ``field`` of ``config``; ValueError naming a missing one."""
  node = config
  *parents, leaf = field.split(".")
  for name in parents:
    if name not in node:
      raise _no_field(field, name, node)
    node = node[name]
  if leaf not in node:
    raise _no_field(field, leaf, node)
  try:
    node[leaf] = value
  except TypeError as e:  # A locked ConfigDict checks the value's type.
    raise ValueError(f"--grid field {field!r}: {e}") from None


def _axes(grid, zipped):
  """Every axis as (fields tuple, list of value tuples)."""
  axes = [((field,), [(v,) for v in values]) for field, values in grid]
  return axes + zip_axis(zipped or [])


def points(config, grid, sweep_dir: str, zipped=None):
  """Yields (overrides, config, workdir) for every point of the sweep.

  Args:
    config: the base config (not modified).
    grid: ``parse_grid`` output; the sweep is the product of its lists.
    sweep_dir: root of the work dirs.
    zipped: ``parse_grid`` output of fields that vary together (one axis).

  Yields:
    ``(overrides, config, workdir)``: ``overrides`` maps each dotted field to
    its value at this point (grid fields first, then zipped ones).
  """
  axes = _axes(grid, zipped)
  fields = [f for names, _ in axes for f in names]
  if len(set(fields)) != len(fields):
    raise ValueError(f"A field is swept twice across --grid/--zip: {fields}.")
  for combo in itertools.product(*[values for _, values in axes]):
    point = {}
    for (names, _), values in zip(axes, combo):
      point.update(zip(names, values))
    cfg = copy.deepcopy(config)
    for field, value in point.items():
      set_field(cfg, field, value)
    yield point, cfg, os.path.join(sweep_dir, _point_name(point) or "base")


def _write_index(sweep_dir, config_arg, grid, zipped, entries,
                 seeds=None) -> None:
  index = {"config": config_arg, "grid": dict(grid),
           "zip": dict(zipped or []), "seeds": seeds,
           "points": [{**e, "dir": os.path.relpath(e["workdir"], sweep_dir)}
                      for e in entries]}
  with open(os.path.join(sweep_dir, "sweep.json"), "w") as f:
    json.dump(index, f, indent=2)


def _finished(workdir: str, config) -> bool:
  """A free-feature run of ``config`` has finished in ``workdir``.

  Exits with a config error if ``workdir`` finished another config.
  """
  path = os.path.join(workdir, "config.json")
  if not os.path.exists(os.path.join(workdir, "summary.json")):
    return False
  with open(path) as f:
    if f.read() == config.to_json_best_effort(indent=2):
      return True
  main_lib.fail(f"{workdir} holds a finished run of another config; delete "
                f"it or choose another --sweep_dir.", errors.EXIT_CONFIG)


def run_sweep(config, grid, sweep_dir: str, *, zipped=None, seeds=None,
              config_arg: str = "", base_flags=(), print_only: bool = False,
              verbose: bool = True) -> list[dict]:
  """Runs (or prints) every point; returns the sweep.json entries.

  Args:
    config: the base config.
    grid: ``parse_grid`` output (product axes).
    sweep_dir: root of the sweep; ``sweep.json`` and one work dir per point.
    zipped: ``parse_grid`` output of the ``--zip`` fields (one joint axis).
    seeds: ``parse_seeds`` output: the seeds, swept as the last axis (as a
      ``seed`` grid would be); None sweeps no seed.
    config_arg: the ``--config`` argument, recorded and printed.
    base_flags: the ``--config.<field>=<value>`` flags already applied to
      ``config``; printed with every point's command, so that it runs the
      point's config and not the file's.
    print_only: print one ``cljax.main`` command per point, run nothing.
    verbose: print each work dir before it runs.

  Returns:
    ``[{"overrides": {field: value}, "workdir": path}]`` in sweep order.

  Raises:
    ValueError: a grid field the config does not have.
    SystemExit: a point's run ended in a fault or was interrupted (its
      message and exit status are ``cljax.main``'s).
  """
  grid = with_seeds(grid, seeds)
  planned = list(points(config, grid, sweep_dir, zipped))
  entries = [{"overrides": point, "workdir": workdir}
             for point, _, workdir in planned]
  if not print_only:  # Printing the commands writes nothing.
    os.makedirs(sweep_dir, exist_ok=True)
    # Indexed before anything runs: an interrupted sweep stays readable.
    _write_index(sweep_dir, config_arg, grid, zipped, entries, seeds)
  for point, cfg, workdir in planned:
    if print_only:
      flags_ = [f"--config={config_arg}", f"--workdir={workdir}",
                *base_flags] + [
          f"--config.{k}={json.dumps(v) if isinstance(v, (list, tuple)) else v}"
          for k, v in point.items()]
      print(" ".join(["python", "-m", "cljax.main"] +
                     [shlex.quote(f) for f in flags_]))
      continue
    if cfg.get("mode", "train") != "train" and _finished(workdir, cfg):
      continue  # The train loop skips its own finished runs; this one can't.
    if verbose:
      print(f"== {workdir}", flush=True)
    summary = main_lib.run_reported(main_lib.MODES[cfg.get("mode", "train")],
                                    cfg, workdir)
    if isinstance(summary, dict) and summary.get("interrupted"):
      # The interrupted point resumes, and the sweep goes on, when rerun.
      print(f"Sweep interrupted at {workdir}; rerun the same command to "
            f"resume it.", flush=True)
      sys.exit(errors.EXIT_INTERRUPTED)
  return entries


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
  config = main_lib.get_config()
  if config is None or not _SWEEP_DIR.value:
    main_lib.fail("--config and --sweep_dir are required.",
                  errors.EXIT_CONFIG)
  logging.set_verbosity(logging.WARNING)
  config_arg = next((a.split("=", 1)[1] for a in sys.argv
                     if a.startswith("--config=")), "")
  base_flags = [a for a in sys.argv[1:] if a.startswith("--config.")]
  try:
    grid, zipped = parse_grid(_GRID.value), parse_grid(_ZIP.value)
    seeds = parse_seeds(_SEEDS.value)
    # Every point is built before the first runs: a typo fails at once.
    list(points(config, with_seeds(grid, seeds), _SWEEP_DIR.value, zipped))
  except ValueError as e:
    if main_lib.debugging():
      raise
    main_lib.fail(str(e), errors.EXIT_CONFIG)
  run_sweep(config, grid, _SWEEP_DIR.value, zipped=zipped, seeds=seeds,
            config_arg=config_arg, base_flags=base_flags,
            print_only=_PRINT_ONLY.value)


if __name__ == "__main__":
  app.run(main, flags_parser=main_lib.parse_flags)
