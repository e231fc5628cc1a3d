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

_SWEEP_DIR = flags.DEFINE_string("sweep_dir", None, "Root of the sweep.")
_GRID = flags.DEFINE_multi_string(
    "grid", [], "dotted.field=[v1, v2, ...] (a Python literal list).")
_ZIP = flags.DEFINE_multi_string(
    "zip", [], "dotted.field=[v1, v2, ...]; all --zip fields vary together "
    "(equal lengths) as one axis of the product.")
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


def _set(config, field: str, value: Any) -> None:
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


def _point_name(point: dict[str, Any]) -> str:
  return ",".join(f"{k}={v}" for k, v in point.items()).replace(
      "/", "_").replace(" ", "")


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
      _set(cfg, field, value)
    yield point, cfg, os.path.join(sweep_dir, _point_name(point) or "base")


def _write_index(sweep_dir, config_arg, grid, zipped, entries) -> None:
  index = {"config": config_arg, "grid": dict(grid),
           "zip": dict(zipped or []),
           "points": [{**e, "dir": os.path.relpath(e["workdir"], sweep_dir)}
                      for e in entries]}
  with open(os.path.join(sweep_dir, "sweep.json"), "w") as f:
    json.dump(index, f, indent=2)


def run_sweep(config, grid, sweep_dir: str, *, zipped=None,
              config_arg: str = "", print_only: bool = False,
              verbose: bool = True) -> list[dict]:
  """Runs (or prints) every point; returns the sweep.json entries.

  Args:
    config: the base config.
    grid: ``parse_grid`` output (product axes).
    sweep_dir: root of the sweep; ``sweep.json`` and one work dir per point.
    zipped: ``parse_grid`` output of the ``--zip`` fields (one joint axis).
    config_arg: the ``--config`` argument, recorded and printed.
    print_only: print one ``cljax.main`` command per point, run nothing.
    verbose: print each work dir before it runs.

  Returns:
    ``[{"overrides": {field: value}, "workdir": path}]`` in sweep order.

  Raises:
    ValueError: a grid field the config does not have.
    SystemExit: a point's run ended in a fault or was interrupted (its
      message and exit status are ``cljax.main``'s).
  """
  planned = list(points(config, grid, sweep_dir, zipped))
  entries = [{"overrides": point, "workdir": workdir}
             for point, _, workdir in planned]
  if not print_only:  # Printing the commands writes nothing.
    os.makedirs(sweep_dir, exist_ok=True)
    # Indexed before anything runs: an interrupted sweep stays readable.
    _write_index(sweep_dir, config_arg, grid, zipped, entries)
  for point, cfg, workdir in planned:
    if print_only:
      flags_ = [f"--config={config_arg}", f"--workdir={workdir}"] + [
          f"--config.{k}={json.dumps(v) if isinstance(v, (list, tuple)) else v}"
          for k, v in point.items()]
      print(" ".join(["python", "-m", "cljax.main"] +
                     [shlex.quote(f) for f in flags_]))
      continue
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


def read_sweep(sweep_dir: str) -> list[dict]:
  """The points of a sweep, with work dirs resolved against ``sweep_dir``.

  Args:
    sweep_dir: a directory written by :func:`run_sweep` (possibly copied
      elsewhere since).

  Returns:
    ``[{"overrides": {field: value}, "workdir": absolute path}]`` in sweep
    order.

  Raises:
    FileNotFoundError: ``sweep_dir`` has no ``sweep.json``.
  """
  path = os.path.join(sweep_dir, "sweep.json")
  if not os.path.exists(path):
    raise FileNotFoundError(
        f"{path} not found: pass the --sweep_dir of a `python -m cljax.sweep` "
        f"run.")
  with open(path) as f:
    index = json.load(f)
  entries = []
  for entry in index["points"]:
    # "dir" is relative to the sweep dir; older indexes only have "workdir".
    rel = entry.get("dir")
    workdir = (os.path.join(sweep_dir, rel) if rel is not None
               else entry["workdir"])
    entries.append({"overrides": entry["overrides"],
                    "workdir": os.path.abspath(workdir)})
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
  try:
    grid, zipped = parse_grid(_GRID.value), parse_grid(_ZIP.value)
    # Every point is built before the first runs: a typo fails at once.
    list(points(config, grid, _SWEEP_DIR.value, zipped))
  except ValueError as e:
    if main_lib.debugging():
      raise
    main_lib.fail(str(e), errors.EXIT_CONFIG)
  run_sweep(config, grid, _SWEEP_DIR.value, zipped=zipped,
            config_arg=config_arg, print_only=_PRINT_ONLY.value)


if __name__ == "__main__":
  app.run(main, flags_parser=main_lib.parse_flags)
