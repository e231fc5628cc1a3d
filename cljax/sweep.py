r"""Run a grid of configs, one work dir per point, under one sweep dir.

  python -m cljax.sweep --config=experiments/default.py:smoke \
      --sweep_dir=runs/gap_vs_c \
      --grid='data.classes=[2,5,10]' --grid='loss.name=["dcl","nscl"]'

Each ``--grid`` is ``dotted.field=<Python literal list>``; the sweep is the
product of all grids. Every point runs ``cljax.main``'s driver for the config
with those overrides in ``<sweep_dir>/<field>=<value>,.../``, sequentially on
this machine (a point whose work dir already holds a finished run resumes or
is skipped by the train loop's own resume), or, with ``--print_only``, the
sweep prints one ``python -m cljax.main`` command per point for a cluster.
``<sweep_dir>/sweep.json`` lists the points and their work dirs, which is what
the colabs read.
"""

from __future__ import annotations

import ast
import copy
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
from cljax import main as main_lib

_SWEEP_DIR = flags.DEFINE_string("sweep_dir", None, "Root of the sweep.")
_GRID = flags.DEFINE_multi_string(
    "grid", [], "dotted.field=[v1, v2, ...] (a Python literal list).")
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


def _set(config, field: str, value: Any) -> None:
  node = config
  *parents, leaf = field.split(".")
  for name in parents:
    if name not in node:
      raise ValueError(f"--grid field {field!r}: the config has no {name!r}.")
    node = node[name]
  if leaf not in node:
    raise ValueError(f"--grid field {field!r}: the config has no {leaf!r}.")
  node[leaf] = value


def _point_name(point: dict[str, Any]) -> str:
  return ",".join(f"{k}={v}" for k, v in point.items()).replace(
      "/", "_").replace(" ", "")


def points(config, grid, sweep_dir: str):
  """Yields (overrides, config, workdir) for every point of the grid."""
  fields = [f for f, _ in grid]
  for values in itertools.product(*[v for _, v in grid]):
    point = dict(zip(fields, values))
    cfg = copy.deepcopy(config)
    for field, value in point.items():
      _set(cfg, field, value)
    yield point, cfg, os.path.join(sweep_dir, _point_name(point) or "base")


def run_sweep(config, grid, sweep_dir: str, *, config_arg: str = "",
              print_only: bool = False, verbose: bool = True) -> list[dict]:
  """Runs (or prints) every point; returns the sweep.json entries."""
  os.makedirs(sweep_dir, exist_ok=True)
  entries = []
  for point, cfg, workdir in points(config, grid, sweep_dir):
    entries.append({"overrides": point, "workdir": workdir})
    if print_only:
      flags_ = [f"--config={config_arg}", f"--workdir={workdir}"] + [
          f"--config.{k}={json.dumps(v) if isinstance(v, (list, tuple)) else v}"
          for k, v in point.items()]
      print(" ".join(["python", "-m", "cljax.main"] +
                     [shlex.quote(f) for f in flags_]))
      continue
    if verbose:
      print(f"== {workdir}", flush=True)
    main_lib.MODES[cfg.get("mode", "train")](cfg, workdir)
  with open(os.path.join(sweep_dir, "sweep.json"), "w") as f:
    json.dump({"config": config_arg, "grid": dict(grid), "points": entries},
              f, indent=2)
  return entries


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
  config = main_lib.CONFIG.value
  if config is None or not _SWEEP_DIR.value:
    raise app.UsageError("--config and --sweep_dir are required.")
  logging.set_verbosity(logging.WARNING)
  config_arg = next((a.split("=", 1)[1] for a in sys.argv
                     if a.startswith("--config=")), "")
  run_sweep(config, parse_grid(_GRID.value), _SWEEP_DIR.value,
            config_arg=config_arg, print_only=_PRINT_ONLY.value)


if __name__ == "__main__":
  app.run(main)
