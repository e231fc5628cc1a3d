"""An exclusive OS lock on a work dir: one training process per run.

``fcntl.flock`` locks belong to the open file, so the kernel drops them when
the process dies, however it dies: a ``kill -9`` never blocks the next
resume, and no stale-lock clean-up exists to get wrong. ``flock`` locks of
one file taken through two ``open`` calls exclude each other even within one
process, so a process that probes a work dir (``cljax.sweep``) must release
its probe before the driver locks the work dir again.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket

from cljax.training.errors import WorkdirLockedError

LOCK_NAME = ".cljax.lock"


class WorkdirLock:
  """Holds ``<workdir>/.cljax.lock`` exclusively until ``release``.

  Usable as a context manager (``with WorkdirLock(workdir): ...``).

  Raises:
    WorkdirLockedError: another live process holds it (names its pid, host;
      the error's ``holder`` attribute is that "pid N on host H" text).
  """

  def __init__(self, workdir: str):
    self.path = os.path.join(workdir, LOCK_NAME)
    # O_RDWR without O_TRUNC: the holder's pid stays readable for the error.
    self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
      fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
      holder = os.pread(self._fd, 256, 0).decode(errors="replace").strip()
      os.close(self._fd)
      self._fd = None
      holder = holder or "pid unknown"
      error = WorkdirLockedError(
          f"{workdir} is in use by another cljax process ({holder}); wait "
          f"for it to end or stop it, or pick another --workdir.")
      error.holder = holder
      raise error from None
    os.ftruncate(self._fd, 0)
    os.pwrite(self._fd, f"pid {os.getpid()} on host {socket.gethostname()}"
              .encode(), 0)

  def release(self) -> None:
    if self._fd is not None:
      os.close(self._fd)   # Closing drops the flock.
      self._fd = None

  def __enter__(self) -> WorkdirLock:
    return self

  def __exit__(self, *exc_info) -> None:
    self.release()


@contextlib.contextmanager
def exclusive(path: str):
  """Holds an exclusive ``flock`` on ``path`` (created) for a ``with`` body.

  Unlike :class:`WorkdirLock` it waits for the holder: it guards short
  read-modify-write sections (``cljax.sweep``'s ``sweep.json``), not runs.
  """
  fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
  try:
    fcntl.flock(fd, fcntl.LOCK_EX)
    yield
  finally:
    os.close(fd)   # Closing drops the flock.
