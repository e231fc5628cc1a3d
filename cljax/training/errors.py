"""The errors a training run ends with, and the exit status of each.

``python -m cljax.main`` turns each into a one- or two-line message and the
exit status below (``--debug`` or ``CLJAX_DEBUG=1`` shows the traceback):

====  ==========================================================================
code  meaning
====  ==========================================================================
0     finished (or had already finished: nothing was written); ``--help``
1     an unexpected error (a bug: the traceback is printed)
2     a config or command-line mistake (``ConfigError``, ``ResumeMismatchError``,
      ``NoValidAnchorsError``)
3     interrupted by SIGTERM or SIGINT; the current step was saved; rerun the
      same command to resume
4     a write failed (``WriteError``: disk full, ...); earlier checkpoints stay
5     the loss or gradient became non-finite (``NonFiniteError``)
6     another process holds the work dir (``WorkdirLockedError``)
130   a second Ctrl-C aborted at once (the last complete checkpoint stays)
====  ==========================================================================
"""

from __future__ import annotations

import errno
import os

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_CONFIG = 2
EXIT_INTERRUPTED = 3
EXIT_WRITE = 4
EXIT_NON_FINITE = 5
EXIT_LOCKED = 6
EXIT_ABORTED = 130


class ConfigError(ValueError):
  """A config that cannot run; the message names the field and the fix."""


class ResumeMismatchError(ConfigError):
  """The work dir holds a run of another config (lists the changed fields)."""


class NoValidAnchorsError(ConfigError):
  """A logged step's loss had no valid anchor: its batches cannot train it."""


class CheckpointsUnreadableError(ConfigError):
  """The checkpoint asked for, or (without a step) every checkpoint of a work
  dir, does not restore; names each step's error and the fix (damaged files,
  or a config whose model differs from the run's)."""


class WorkdirLockedError(RuntimeError):
  """Another live process trains in this work dir (names its pid and host)."""


class WriteError(OSError):
  """A metric, event or checkpoint write failed (names the file system)."""


class NonFiniteError(FloatingPointError):
  """The loss or gradient became NaN/inf; the message names the step."""


def exit_code(error: BaseException) -> int:
  """The documented exit status of a run that raised ``error``."""
  for kind, code in ((WorkdirLockedError, EXIT_LOCKED),
                     (ConfigError, EXIT_CONFIG),
                     (WriteError, EXIT_WRITE),
                     (NonFiniteError, EXIT_NON_FINITE)):
    if isinstance(error, kind):
      return code
  return EXIT_ERROR


def _mount_point(path: str) -> str:
  path = os.path.abspath(path)
  while not os.path.ismount(path):
    path = os.path.dirname(path)
  return path


def write_error(path: str, error: BaseException) -> WriteError:
  """A ``WriteError`` naming the file system that refused to write ``path``.

  Args:
    path: the file or directory being written.
    error: what the writer raised (``OSError`` ENOSPC, an orbax error, ...).
  """
  mount = _mount_point(path)
  try:
    stat = os.statvfs(mount)
    free = f"{stat.f_bavail * stat.f_frsize / 2**20:.1f} MiB free"
  except OSError:
    free = "free space unknown"
  code = getattr(error, "errno", None)
  reason = getattr(error, "strerror", None) or " ".join(str(error).split())
  if code is None and "No space left on device" in reason:
    # Orbax/tensorstore report ENOSPC as a ValueError with the OS text.
    code = errno.ENOSPC
  if code is not None:
    reason = os.strerror(code) if len(reason) > 160 else reason
  return WriteError(errno.EIO if code is None else code,
                    f"writing {path} failed on the file system mounted at "
                    f"{mount} ({free}): {reason or type(error).__name__}")
