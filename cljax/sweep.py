r"""Run a grid of configs, one work dir per point, under one sweep dir.

  python -m cljax.sweep --config=experiments/default.py:smoke \
      --sweep_dir=runs/gap_vs_c \
      --grid='data.classes=[2,5,10]' --grid='loss.name=["dcl","nscl"]'

Each ``--grid`` is ``dotted.field=<Python literal list>``; the sweep is the
product of all grids. ``--zip`` fields (same syntax, lists of one length)
vary together as one more axis of that product, e.g. a loss temperature and
the monitor temperature that must match it:

  python -m cljax.sweep --config=experiments/luthra/temperature.py:cpu \
      --sweep_dir=runs/temperature \
      --zip='loss.kwargs.temperature=[0.1,1.0]' \
      --zip='monitor.temperature=[0.1,1.0]' --grid='seed=[0,1]'

``--seeds=5`` (seeds 0..4) or ``--seeds=3,7,11`` is the same as a ``seed``
grid, the last axis of the product, so every point x seed gets its own work
dir (``.../loss.name=dcl,seed=3``). :func:`cljax.analysis.sweeps.aggregate` then reports, per
group of runs that differ only in the seed, each final metric's mean and
Student-t 95 % interval over seeds; :func:`cljax.analysis.sweeps.paired` reports the per-seed
difference between two values of one field (e.g. ``loss.name``), which
shares each seed's randomness (the same batches and initialization), with
its interval. Both refuse runs whose configs differ beyond the swept fields.

Every point runs ``cljax.main``'s driver for the config
with those overrides in ``<sweep_dir>/<field>=<value>,.../``, sequentially on
this machine (a point whose work dir already holds a finished run resumes or
is skipped by the train loop's own resume), or, with ``--print_only``, the
sweep prints one ``python -m cljax.main`` command per point for a cluster.

Several workers may share one sweep dir: start the same command more than
once (on one machine, or on several that share the file system) and each
runs the points no other process holds. A point whose work dir another
process holds (its ``.cljax.lock``, see ``cljax.training._lock``) is
skipped, not waited for; a worker that skipped any says so at the end,
naming them and their holders, and exits with status 6
(``cljax.training.errors.EXIT_LOCKED``: not every point was finished by it)
instead of 0. Rerun the command once the other workers have ended to run
what they left unfinished (finished points are skipped). Exit 0 means this
worker saw every point finished or ran it.

``<sweep_dir>/sweep.json`` indexes every point ever run there (the union of
all grids, in the order they were first indexed): its swept ``overrides``,
its ``fixed`` overrides (the command's ``--config.<field>=<value>`` flags)
and its work dir (relative to the sweep dir, so a copied sweep dir stays
readable). It is written before the first point runs, so an interrupted
sweep is indexed too, atomically (a temporary file moved into place) under
``<sweep_dir>/.sweep.lock``, so concurrent workers never lose each other's
points. A sweep dir holds one base config: a grid whose ``--config`` file or
``--config.*`` overrides differ from the recorded ones (or that names a
recorded point dir with other overrides) is refused before anything runs
(exit 2), with the difference and the fix; vary a field with ``--grid``
instead. ``cljax.training.sweep_index`` writes the index;
``cljax.analysis.sweeps.read_sweep`` reads it back, which is what the colabs
do; indexes of older versions are converted on read.
"""

from __future__ import annotations

import ast
import copy
import dataclasses
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
from cljax.training import _lock
from cljax.training import compile_cache
from cljax.training import errors
from cljax.training import cli
from cljax.training import sweep_index
from cljax.training.sweep_index import SweepConflictError
from cljax.analysis.sweeps import point_name as _point_name

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
  cli.fail(f"{workdir} holds a finished run of another config; delete "
                f"it or choose another --sweep_dir.", errors.EXIT_CONFIG)


@dataclasses.dataclass(frozen=True)
class _Held:
  """A driver's result when another process held its work dir."""
  holder: str  # "pid N on host H"


def _holder(workdir: str) -> str | None:
  """Who holds ``workdir`` ("pid N on host H"); None when it is free.

  The probe's lock is released at once: the driver takes its own (two locks
  of one file exclude each other even within one process).
  """
  os.makedirs(workdir, exist_ok=True)
  try:
    _lock.WorkdirLock(workdir).release()
  except errors.WorkdirLockedError as e:
    return getattr(e, "holder", "pid unknown")
  return None


def _unless_held(driver, config, workdir):
  """``driver(config, workdir)``, or a ``_Held`` if its lock is taken."""
  try:
    return driver(config, workdir)
  except errors.WorkdirLockedError as e:
    # Taken between the probe and the driver's own lock: skipped likewise.
    return _Held(getattr(e, "holder", "pid unknown"))


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
      ``config``; recorded in ``sweep.json`` (with their values in
      ``config``) and printed with every point's command, so that it runs
      the point's config and not the file's.
    print_only: print one ``cljax.main`` command per point, run nothing.
    verbose: print each work dir before it runs.

  Returns:
    ``[{"overrides": {field: value}, "workdir": path}]`` in sweep order
    (this grid's points; ``sweep.json`` lists those of earlier grids too).

  Raises:
    ValueError: a grid field the config does not have.
    SweepConflictError: ``sweep_dir`` indexes another ``config_arg``, other
      ``base_flags`` overrides, or one of this grid's work dirs with other
      overrides (nothing ran).
    SystemExit: a point's run ended in a fault or was interrupted (its
      message and exit status are ``cljax.main``'s), or another process
      held some points (exit 6, ``errors.EXIT_LOCKED``, after every free
      point ran; the message names them).
  """
  grid = with_seeds(grid, seeds)
  planned = list(points(config, grid, sweep_dir, zipped))
  entries = [{"overrides": point, "workdir": workdir}
             for point, _, workdir in planned]
  if not print_only:  # Printing the commands writes nothing.
    os.makedirs(sweep_dir, exist_ok=True)
    # Indexed before anything runs: an interrupted sweep stays readable.
    sweep_index.write_index(
        sweep_dir, config_arg, grid, zipped, entries, seeds,
        fixed=sweep_index.fixed_overrides(config, base_flags))
  held = []  # (workdir, holder) of the points another process held.
  for point, cfg, workdir in planned:
    if print_only:
      flags_ = [f"--config={config_arg}", f"--workdir={workdir}",
                *base_flags] + [
          f"--config.{k}={json.dumps(v) if isinstance(v, (list, tuple)) else v}"
          for k, v in point.items()]
      print(" ".join(["python", "-m", "cljax.main"] +
                     [shlex.quote(f) for f in flags_]))
      continue
    driver = cli.MODES[cfg.get("mode", "train")]
    if cfg.get("mode", "train") != "train" and _finished(workdir, cfg):
      continue  # The train loop skips its own finished runs; this one can't.
    holder = _holder(workdir)
    if holder is None:
      if verbose:
        print(f"== {workdir}", flush=True)
      summary = cli.run_reported(_unless_held, driver, cfg, workdir)
      holder = summary.holder if isinstance(summary, _Held) else None
    if holder is not None:
      # Another worker runs this point: go on with the free ones.
      held.append((workdir, holder))
      if verbose:
        print(f"== {workdir}: held by another process ({holder}); skipped.",
              flush=True)
      continue
    if isinstance(summary, dict) and summary.get("interrupted"):
      # The interrupted point resumes, and the sweep goes on, when rerun.
      print(f"Sweep interrupted at {workdir}; rerun the same command to "
            f"resume it.", flush=True)
      sys.exit(errors.EXIT_INTERRUPTED)
  if held:
    cli.fail(
        f"{len(held)} of {len(planned)} points of {sweep_dir} were held by "
        f"another process and not run by this worker: "
        f"{', '.join(f'{os.path.basename(w)} ({h})' for w, h in held)}; the "
        f"free points ran. Rerun the same command once the other processes "
        f"have ended to run what they left unfinished (finished points are "
        f"skipped).", errors.EXIT_LOCKED)
  return entries


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
  config = cli.get_config()
  if config is None or not _SWEEP_DIR.value:
    cli.fail("--config and --sweep_dir are required.",
                  errors.EXIT_CONFIG)
  logging.set_verbosity(logging.WARNING)
  compile_cache.enable(flags.FLAGS.compilation_cache)
  config_arg = next((a.split("=", 1)[1] for a in sys.argv
                     if a.startswith("--config=")), "")
  base_flags = [a for a in sys.argv[1:] if a.startswith("--config.")]
  try:
    grid, zipped = parse_grid(_GRID.value), parse_grid(_ZIP.value)
    seeds = parse_seeds(_SEEDS.value)
    # Every point is built before the first runs: a typo fails at once.
    list(points(config, with_seeds(grid, seeds), _SWEEP_DIR.value, zipped))
  except ValueError as e:
    if cli.debugging():
      raise
    cli.fail(str(e), errors.EXIT_CONFIG)
  try:
    run_sweep(config, grid, _SWEEP_DIR.value, zipped=zipped, seeds=seeds,
              config_arg=config_arg, base_flags=base_flags,
              print_only=_PRINT_ONLY.value)
  except SweepConflictError as e:  # Raised before any point runs.
    if cli.debugging():
      raise
    cli.fail(str(e), errors.EXIT_CONFIG)


if __name__ == "__main__":
  app.run(main, flags_parser=cli.parse_flags)
