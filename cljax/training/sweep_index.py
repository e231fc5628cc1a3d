"""The writer of a sweep dir's index, ``<sweep_dir>/sweep.json``.

``cljax.sweep`` indexes every point before it runs: :func:`write_index` adds
the points to the index under ``<sweep_dir>/.sweep.lock`` and writes it
atomically (a temporary file moved into place), so concurrent workers never
lose each other's points and an interrupted sweep stays readable. A sweep
dir holds one base config: a grid whose ``--config`` file or
``--config.*`` overrides (:func:`fixed_overrides`) differ from the recorded
ones, or that gives a recorded point dir other overrides, is refused with a
:class:`SweepConflictError` naming the fix. ``cljax.analysis.sweeps`` reads
the index back.
"""

from __future__ import annotations

import json
import os
import tempfile
from typing import Any

from cljax.training import _lock
from cljax.training import errors
from cljax.analysis.sweeps import INDEX_VERSION
from cljax.analysis.sweeps import read_index


class SweepConflictError(errors.ConfigError):
  """A grid that does not fit the sweep dir's index (names the fix)."""


def _jsonable(value: Any) -> Any:
  """``value`` as sweep.json stores it (tuples as lists, dicts as dicts)."""
  if hasattr(value, "to_dict"):  # A ConfigDict override of a whole node.
    value = value.to_dict()
  return json.loads(json.dumps(value, default=repr))


def fixed_overrides(config, base_flags) -> dict[str, Any]:
  """The ``--config.<field>`` flags as ``{field: value in config}``.

  Args:
    config: the config the flags were applied to.
    base_flags: ``--config.a.b=v`` strings (or ``--config.a.b`` whose value
      is the next argument); ``--config=...`` itself is not among them.

  Returns:
    ``{"a.b": v}`` with ``v`` read from ``config`` (so ``--config.steps=4``
    gives the int 4), in flag order; a later flag of one field wins.
  """
  fixed = {}
  for flag in base_flags:
    field, _, text = flag.removeprefix("--config.").partition("=")
    node = config
    try:
      for name in field.split("."):
        node = node[name]
    except (KeyError, TypeError, AttributeError):
      node = text  # Not a path of the config: recorded as written.
    fixed.pop(field, None)
    fixed[field] = _jsonable(node)
  return fixed


def _config_file(config_arg: str) -> tuple[str, str]:
  path, _, preset = config_arg.partition(":")
  return os.path.normpath(path), preset


def _same_config(recorded: str, given: str) -> bool:
  """Two ``--config`` arguments name one file and preset ('' is unknown)."""
  if not recorded or not given:
    return True
  (a, preset_a), (b, preset_b) = _config_file(recorded), _config_file(given)
  if preset_a != preset_b:
    return False
  if a == b:
    return True
  # Another spelling of the same file (relative vs absolute, a symlink).
  return os.path.exists(a) and os.path.exists(b) and os.path.samefile(a, b)


def _flags(fixed: dict[str, Any]) -> str:
  return " ".join(f"--config.{k}={json.dumps(v)}" for k, v in fixed.items()
                  ) or "no --config.* flags"


def _check_fits(index: dict, sweep_dir: str, config_arg: str,
                fixed: dict[str, Any], entries: list[dict]) -> None:
  """Raises SweepConflictError if the new points do not fit ``index``."""
  path = os.path.join(sweep_dir, "sweep.json")
  if not _same_config(index["config"], config_arg):
    raise SweepConflictError(
        f"{path} indexes runs of --config={index['config']}; this sweep has "
        f"--config={config_arg}. Pass --config={index['config']} to add "
        f"points to that sweep, or choose another --sweep_dir.")
  recorded = index["fixed"]
  if recorded is not None and recorded != fixed:
    def shown(overrides, field):
      return (json.dumps(overrides[field]) if field in overrides
              else "not overridden")
    changed = [f"{field}: recorded {shown(recorded, field)}, now "
               f"{shown(fixed, field)}"
               for field in dict.fromkeys([*recorded, *fixed])
               if shown(recorded, field) != shown(fixed, field)]
    raise SweepConflictError(
        f"{path} indexes runs with the overrides {_flags(recorded)}; this "
        f"sweep's differ ({'; '.join(changed)}). One sweep dir holds one base "
        f"config: pass the recorded --config.* flags to add points to it, "
        f"sweep a field with --grid to vary it, or choose another "
        f"--sweep_dir.")
  known = {p["dir"]: p for p in index["points"] if p["dir"] is not None}
  for entry in entries:
    point = known.get(entry["dir"])
    if point is not None and point["overrides"] != entry["overrides"]:
      # Two values that name one work dir ('a/b' and 'a_b').
      raise SweepConflictError(
          f"{path} indexes {entry['dir']!r} with the overrides "
          f"{json.dumps(point['overrides'])}; this sweep gives that work dir "
          f"{json.dumps(entry['overrides'])}. Choose another --sweep_dir.")


def _write_json_atomic(path: str, obj: Any) -> None:
  """Writes ``obj`` to ``path`` via a temporary file and ``os.replace``."""
  fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path) or ".",
                             prefix=".sweep.json.", suffix=".tmp")
  try:
    with os.fdopen(fd, "w") as f:
      json.dump(obj, f, indent=2)
      f.flush()
      os.fsync(f.fileno())
    os.replace(tmp, path)   # Readers see the old index or the new, whole.
  except BaseException:
    if os.path.exists(tmp):
      os.remove(tmp)
    raise


def write_index(sweep_dir, config_arg, grid, zipped, entries,
                 seeds=None, fixed=None) -> dict:
  """Adds ``entries`` to ``<sweep_dir>/sweep.json`` (the union); the index.

  Under ``<sweep_dir>/.sweep.lock``: read the index, refuse a conflicting
  grid, add the points it lacks, write it atomically (only if it changed).

  Args:
    sweep_dir: the sweep's root (exists).
    config_arg: the ``--config`` argument ('' if unknown).
    grid, zipped, seeds: this command's axes (``zipped``: ``--zip``).
    entries: ``[{"overrides": {field: value}, "workdir": path}]``.
    fixed: the ``--config.*`` overrides (:func:`fixed_overrides`); None: {}.

  Returns:
    The index as written (``cljax.analysis.sweeps.read_index``'s layout).

  Raises:
    SweepConflictError: another config file or other fixed overrides than
      the recorded ones, or a recorded point dir with other overrides.
  """
  fixed = _jsonable(dict(fixed or {}))
  latest = _jsonable({"grid": dict(grid), "zip": dict(zipped or []),
                      "seeds": seeds})
  new = [{"overrides": _jsonable(e["overrides"]), "fixed": fixed,
          "dir": os.path.relpath(e["workdir"], sweep_dir),
          "workdir": e["workdir"]} for e in entries]
  with _lock.exclusive(os.path.join(sweep_dir, ".sweep.lock")):
    old = read_index(sweep_dir)
    if old is None:
      old = {"version": INDEX_VERSION, "config": config_arg, "fixed": fixed,
             **latest, "sweeps": [], "points": []}
    _check_fits(old, sweep_dir, config_arg, fixed, new)
    known = {p["dir"] for p in old["points"]}
    index = {
        "version": INDEX_VERSION, "config": old["config"] or config_arg,
        "fixed": fixed, **latest,
        "sweeps": old["sweeps"] + [latest] * (latest not in old["sweeps"]),
        "points": old["points"] + [p for p in new if p["dir"] not in known]}
    if index != old or not os.path.exists(
        os.path.join(sweep_dir, "sweep.json")):
      _write_json_atomic(os.path.join(sweep_dir, "sweep.json"), index)
  return index
