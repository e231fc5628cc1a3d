"""Which code trained a run, and whether that is still the code of HEAD.

Every (re)start of a run appends one *session* to ``<workdir>/provenance.json``
(written by the train loop and by ``cljax.unconstrained.run`` next to
``config.json``)::

  {"sessions": [{"commit": "3f2a...", "dirty": false,
                 "modules_hash": "9c1e...", "cljax_version": "0.1.0",
                 "jax_version": "0.7.1", "time": "2026-12-07T19:30:00Z"}]}

``commit`` and ``dirty`` come from git (``git rev-parse HEAD``; ``dirty``:
tracked files differ from HEAD); both are None where git or the checkout is
absent (a pip-installed cljax). ``modules_hash`` is the SHA-256 of the
contents of every file of ``cljax/losses``, ``cljax/models`` and
``cljax/data`` (:data:`MODULES`), so "this run was trained by other loss,
model or data code than the current one" is decidable with or without git.

The code's identity is computed once per process (:func:`current`): a sweep
trains every point in one process, with the code it imported at its start,
whatever happens to the files meanwhile.

This module imports nothing from training, so the reproduction driver
(``cljax.reproduce``) reads it without JAX set-up.

>>> sorted(current())
['cljax_version', 'commit', 'dirty', 'jax_version', 'modules_hash']
>>> len(modules_hash())
64
"""

from __future__ import annotations

import datetime
import functools
import hashlib
import importlib.metadata
import json
import os
import subprocess

import cljax

FILE = "provenance.json"
# The packages whose code decides what a run computes (loss, model, data).
MODULES = ("losses", "models", "data")
# The cljax package folder (this module is cljax/training/provenance.py).
_PACKAGE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# What ``python -m cljax.reproduce`` writes into the checkout (the claims
# table, each paper's results and figures): not code, so not part of "the
# tree is dirty".
OUTPUTS = ("experiments/RESULTS.md", "experiments/results")


def modules_hash(package: str = _PACKAGE) -> str:
  """SHA-256 (hex) of the files of ``package``/{losses,models,data}.

  Every ``.py`` file below those folders counts, by its path relative to
  ``package`` and its bytes (so a renamed or added file changes the hash);
  caches and compiled files do not.

  Args:
    package: the ``cljax`` package folder (default: this one).

  Returns:
    64 hex digits.
  """
  digest = hashlib.sha256()
  for name in MODULES:
    top = os.path.join(package, name)
    paths = []
    for folder, dirs, files in os.walk(top):
      dirs[:] = sorted(d for d in dirs if d != "__pycache__")
      paths += [os.path.join(folder, f) for f in files if f.endswith(".py")]
    for path in sorted(paths):
      rel = os.path.relpath(path, package).replace(os.sep, "/")
      with open(path, "rb") as f:
        content = f.read()
      # Length-prefixed, so no two file sets give the same byte stream.
      digest.update(f"{rel}\0{len(content)}\0".encode())
      digest.update(content)
  return digest.hexdigest()


def _git(root: str, *args: str) -> str | None:
  try:
    done = subprocess.run(["git", "-C", root, *args], capture_output=True,
                          text=True, timeout=30, check=False)
  except (OSError, subprocess.SubprocessError):  # No git, or it hung.
    return None
  return done.stdout if done.returncode == 0 else None


def git_state(package: str = _PACKAGE) -> tuple[str | None, bool | None]:
  """``(commit, dirty)`` of the checkout holding ``package``.

  ``(None, None)`` when ``package`` is not in a git checkout of cljax (a
  pip-installed copy) or git is not installed. ``dirty`` ignores
  :data:`OUTPUTS`: a reproduction writes its results there, so without the
  exclusion the second paper reproduced in one checkout would be recorded as
  trained by uncommitted code.
  """
  root = os.path.dirname(package)
  if not os.path.exists(os.path.join(root, ".git")):
    return None, None  # Not this package's checkout (site-packages, ...).
  head = _git(root, "rev-parse", "HEAD")
  if head is None:
    return None, None
  status = _git(root, "status", "--porcelain", "--untracked-files=no", "--",
                ".", *(f":(exclude){path}" for path in OUTPUTS))
  return head.strip(), (None if status is None else bool(status.strip()))


def _version(name: str) -> str | None:
  try:
    return importlib.metadata.version(name)
  except importlib.metadata.PackageNotFoundError:
    return None


@functools.lru_cache(maxsize=None)
def current() -> dict:
  """This process's code: commit, dirty, modules hash, cljax and JAX versions.

  Computed once per process (``current.cache_clear()`` recomputes it).
  """
  commit, dirty = git_state()
  return {"commit": commit, "dirty": dirty, "modules_hash": modules_hash(),
          "cljax_version": cljax.__version__, "jax_version": _version("jax")}


def record(workdir: str) -> dict:
  """Appends this process's session to ``<workdir>/provenance.json``.

  Args:
    workdir: the run's work dir (exists).

  Returns:
    The session written.

  Raises:
    OSError: the file could not be written (the caller names the path).
  """
  path = os.path.join(workdir, FILE)
  sessions = (read(workdir) or {}).get("sessions", [])
  now = datetime.datetime.now(datetime.timezone.utc)
  session = {**current(), "time": now.strftime("%Y-%m-%dT%H:%M:%SZ")}
  tmp = path + ".tmp"
  with open(tmp, "w") as f:
    json.dump({"sessions": sessions + [session]}, f, indent=1)
  os.replace(tmp, path)  # A crash mid-write leaves the old file whole.
  return session


def read(workdir: str) -> dict | None:
  """``<workdir>/provenance.json``, or None if the run has none."""
  path = os.path.join(workdir, FILE)
  if not os.path.exists(path):
    return None
  with open(path) as f:
    return json.load(f)


def _file_hash(path: str) -> str | None:
  if not os.path.exists(path):
    return None
  with open(path, "rb") as f:
    return hashlib.sha256(f.read()).hexdigest()


def run_record(workdir: str, runs_dir: str) -> dict:
  """What a results JSON says of one run: where, which config, which code.

  Args:
    workdir: the run's work dir.
    runs_dir: the root the work dir is named relative to (``--runs_dir``).

  Returns:
    ``{"workdir": path relative to runs_dir, "config_sha256": hash of its
    config.json (None without one), "commit", "dirty", "modules_hash"}``:
    the code of its last session (the one that finished it), plus
    ``"commits"`` / ``"modules_hashes"`` listing every session's where a
    resumed run was trained by more than one; all None for a run without
    ``provenance.json`` (trained before provenance was recorded).
  """
  sessions = (read(workdir) or {}).get("sessions", [])
  last = sessions[-1] if sessions else {}
  out = {"workdir": os.path.relpath(os.path.abspath(workdir),
                                    os.path.abspath(runs_dir)),
         "config_sha256": _file_hash(os.path.join(workdir, "config.json")),
         "commit": last.get("commit"), "dirty": last.get("dirty"),
         "modules_hash": last.get("modules_hash")}
  for key, plural in (("commit", "commits"), ("modules_hash",
                                              "modules_hashes")):
    values = list(dict.fromkeys(s.get(key) for s in sessions))
    if len(values) > 1:
      out[plural] = values
  return out


def stale(record: dict, modules: str | None = None) -> str | None:
  """Why the run of ``record`` (from :func:`run_record`) is not HEAD's code.

  Args:
    record: a :func:`run_record`.
    modules: the current modules hash (default: :func:`current`'s).

  Returns:
    None when every session of the run used the current loss, model and
    data code; else the reason, in a few words.
  """
  modules = modules or current()["modules_hash"]
  if record.get("modules_hash") is None:
    return "no provenance.json (trained before provenance was recorded)"
  hashes = record.get("modules_hashes", [record["modules_hash"]])
  if any(h != modules for h in hashes):
    commits = record.get("commits", [record.get("commit")])
    return (f"trained by other loss/model/data code (commit "
            f"{', '.join(str(c)[:12] for c in commits)})")
  return None
