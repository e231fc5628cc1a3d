"""Orbax checkpoints of training runs: the writer the train loop uses.

It writes the ``checkpoints/<step>/`` items of a work dir (``model``,
``opt``, ``data``, ``meta``: the layout is described once, in
``cljax.analysis.checkpoints``, the reader).

The orbax v0 ``CheckpointManager`` writes each step to a temporary directory
and renames it when complete, so a run killed during a save leaves the last
complete checkpoint as ``latest_step()``; nothing here ever deletes a
finished checkpoint except the ``keep`` policy (``keep >= 1``), which only
removes older ones after a newer save has completed, so the latest one always
stays.

A checkpoint that is complete but damaged afterwards (a truncated array file,
a missing ``meta/metadata``, an empty ``opt/manifest.ocdbt``) does not stop a
resume: it falls back to the newest intact checkpoint, says which step was
corrupt, and moves it aside to ``<workdir>/corrupt_checkpoints/<step>`` so
that the run can write that step again.

Reading a run for analysis (``load``, ``read_metrics``, ``read_config``,
``saved_steps``) is ``cljax.analysis.checkpoints``; this module imports its
read-only orbax helpers.
"""

from __future__ import annotations

import os
import shutil
from typing import Any

import orbax.checkpoint as ocp

from cljax.training import errors
from cljax.analysis import checkpoints

CORRUPT_DIR = "corrupt_checkpoints"


class Manager:
  """Periodic and final checkpoints of one run (a thin orbax wrapper).

  Args:
    workdir: the run's directory; checkpoints go to ``workdir/checkpoints``.
    every: save when ``step % every == 0`` (and whenever ``force``).
    keep: how many recent checkpoints to keep, >= 1 (None: all).

  Raises:
    ValueError: ``every < 1`` or ``keep < 1`` (``keep=0`` would delete every
      checkpoint, the latest included).
  """

  def __init__(self, workdir: str, *, every: int, keep: int | None = 3):
    check_options(every=every, keep=keep)
    self.workdir = os.path.abspath(workdir)
    self.directory = os.path.join(self.workdir, "checkpoints")
    # Saves interrupted by a kill leave orbax temporary directories; they are
    # reported here and removed by the manager (cleanup_tmp_directories).
    self.partial = sorted(
        name for name in (os.listdir(self.directory)
                          if os.path.isdir(self.directory) else [])
        if "tmp" in name)
    options = ocp.CheckpointManagerOptions(
        save_interval_steps=every, max_to_keep=keep, create=True,
        cleanup_tmp_directories=True)
    self._manager = ocp.CheckpointManager(
        self.directory, options=options, item_names=checkpoints.ITEMS)
    self._closed = False

  def latest_step(self) -> int | None:
    """The newest *complete* checkpoint (partial ones are ignored)."""
    return self._manager.latest_step()

  def should_save(self, step: int) -> bool:
    """Whether ``save(step)`` (unforced) writes a checkpoint."""
    return self._manager.should_save(step)

  def all_steps(self) -> list[int]:
    return list(self._manager.all_steps())

  def save(self, step: int, *, model: Any, opt: Any, data: dict,
           meta: dict, force: bool = False) -> bool:
    """Saves asynchronously; returns whether a save was started."""
    args = ocp.args.Composite(
        model=ocp.args.StandardSave(model),
        opt=ocp.args.StandardSave(opt),
        data=ocp.args.JsonSave(data),
        meta=ocp.args.JsonSave(meta))
    try:
      return self._manager.save(step, args=args, force=force)
    except Exception as e:  # pylint: disable=broad-except
      # An earlier asynchronous save's failure surfaces here.
      raise self._write_error(e) from e

  def restore(self, step: int, *, model: Any, opt: Any) -> dict[str, Any]:
    """Restores ``step`` into the structure and shardings of the targets.

    ``model`` and ``opt`` are pytrees of arrays or ShapeDtypeStructs whose
    shardings say where the restored arrays go (so a checkpoint written on
    8 devices restores onto 1 and the other way round).
    """
    args = ocp.args.Composite(
        model=ocp.args.StandardRestore(checkpoints.abstract(model)),
        opt=ocp.args.StandardRestore(checkpoints.abstract(opt)),
        data=ocp.args.JsonRestore(),
        meta=ocp.args.JsonRestore())
    out = self._manager.restore(step, args=args)
    return {name: out[name] for name in checkpoints.ITEMS}

  def restore_latest(self, *, model: Any, opt: Any, log=print
                     ) -> tuple[int | None, dict[str, Any] | None]:
    """Restores the newest intact checkpoint (see ``restore``).

    A newer checkpoint that fails to restore while an older one restores is
    corrupt: it is moved to ``<workdir>/corrupt_checkpoints/<step>`` (so the
    run can write that step again) and ``log`` says so and how to delete it.

    Returns:
      ``(step, restored)``, or ``(None, None)`` without checkpoints.

    Raises:
      errors.CheckpointsUnreadableError: none restores (damaged files, or a
        target that does not match the saved tree: that fails on every step
        alike, so nothing is moved).
    """
    steps = self.all_steps()
    if not steps:
      return None, None
    step, restored, corrupt = checkpoints.restore_newest(
        steps, lambda s: self.restore(s, model=model, opt=opt),
        self.directory)
    if corrupt:
      aside = os.path.join(self.workdir, CORRUPT_DIR)
      os.makedirs(aside, exist_ok=True)
      for bad, error in sorted(corrupt.items()):
        target = os.path.join(aside, str(bad))
        shutil.rmtree(target, ignore_errors=True)
        shutil.move(os.path.join(self.directory, str(bad)), target)
        log(f"Checkpoint step {bad} is corrupt ({checkpoints.describe(error)}); moved it "
            f"to {target} and resumed from step {step}. Delete it with: "
            f"rm -r {target}")
      self._manager.reload()
    return step, restored

  def wait(self) -> None:
    """Waits for the pending save; raises ``WriteError`` if it failed."""
    try:
      self._manager.wait_until_finished()
      self._manager.check_for_errors()
    except Exception as e:  # pylint: disable=broad-except
      raise self._write_error(e) from e

  def _write_error(self, error: BaseException) -> Exception:
    if isinstance(error, errors.WriteError):
      return error
    cause = error
    while cause is not None and not isinstance(cause, OSError):
      cause = cause.__cause__ or cause.__context__
    return errors.write_error(self.directory, cause or error)

  def close_quietly(self) -> None:
    """Closes after an error, which stays the one reported."""
    try:
      self.close()
    except Exception:  # pylint: disable=broad-except
      pass

  def close(self) -> None:
    """Waits for the pending save and closes; raises ``WriteError``."""
    if self._closed:
      return
    self._closed = True
    try:
      self.wait()
    finally:
      try:
        self._manager.close()
      except Exception:  # pylint: disable=broad-except
        pass  # The save's own error (raised above) is the one to report.


def check_options(*, every: int, keep: int | None) -> None:
  """Fails on checkpoint options that would lose checkpoints.

  Raises:
    ValueError: ``every < 1`` or ``keep < 1``, naming the config field.
  """
  if not isinstance(every, int) or every < 1:
    raise errors.ConfigError(
        f"config.checkpoint.every must be an integer >= 1; got {every!r}.")
  if keep is not None and (not isinstance(keep, int) or keep < 1):
    raise errors.ConfigError(
        f"config.checkpoint.keep must be >= 1 (how many recent checkpoints "
        f"to keep; the latest is always kept) or None for all; got "
        f"{keep!r}.")


