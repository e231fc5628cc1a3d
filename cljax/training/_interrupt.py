"""SIGTERM and SIGINT at step boundaries, agreed by every process.

The first SIGTERM or SIGINT (Ctrl-C) asks the loop to save the current step
and stop; a second SIGINT aborts at once (exit status 130; the last complete
checkpoint stays, since orbax finalises a checkpoint atomically).

Further SIGTERMs repeat a request already under way, so they change nothing,
however many arrive and whenever: not during the save, not after ``restore``
(the process is on its way out, and restoring the default action would let
the next one kill it with status 143 before it says where it saved and exits
with status 3), and not at interpreter exit (Python resets handled signals to
the default action late in its finalisation; an exit hook ignores SIGTERM
first). A caller whose own SIGTERM handler was installed gets it back.

With several processes a per-process flag would make the signalled process
save alone while orbax's save waits for all of them, so there every process
asks JAX's preemption service at every step
(``multihost_utils.reached_preemption_sync_point``): the coordination service
turns a notice on any process into one agreed step on all. That service
receives SIGTERM itself (its handler is installed by
``jax.distributed.initialize``), so no Python SIGTERM handler is installed
then, and a Ctrl-C is forwarded to it as a SIGTERM of this process.
"""

from __future__ import annotations

import atexit
import os
import signal
import threading

from cljax.training import errors

_NAMES = {signal.SIGTERM: "SIGTERM", signal.SIGINT: "SIGINT"}


def _write_stderr(message: str) -> None:
  # Not print: a handler can run inside sys.stderr's own write (a progress
  # bar's, interrupted by the signal), where print raises "reentrant call".
  os.write(2, (message + "\n").encode())


def _absorb(signum, frame) -> None:
  """SIGTERM once a stop is under way: the same request again."""
  del signum, frame


_exit_hook_registered = False


def _ignore_sigterm_at_exit() -> None:
  # Runs before Python's finalisation puts back SIG_DFL for every handled
  # signal; a SIGTERM after that would replace the exit status 3 by 143.
  # Only while _absorb is installed: a handler installed since then (the
  # caller's) is left alone.
  try:
    if signal.getsignal(signal.SIGTERM) is _absorb:
      signal.signal(signal.SIGTERM, signal.SIG_IGN)
  except ValueError:  # Not the main thread of the main interpreter.
    pass


class Interrupts:
  """Installs the handlers (main thread only) until ``restore``.

  Args:
    process_count: ``jax.process_count()``.
    announce: where the one-line notice of the first signal goes (default:
      straight to file descriptor 2, unbuffered).
  """

  def __init__(self, process_count: int, announce=None):
    self.signal = None
    self._multi = process_count > 1
    self._announce = announce or _write_stderr
    self._previous = {}
    if threading.current_thread() is not threading.main_thread():
      return  # signal.signal works only there; the caller keeps its own.
    self._install(signal.SIGINT)
    if not self._multi:
      self._install(signal.SIGTERM)

  def _install(self, signum) -> None:
    self._previous[signum] = signal.signal(signum, self._handle)

  def _handle(self, signum, frame) -> None:
    del frame
    if self.signal is not None:
      if signum == signal.SIGINT:
        # Hard exit: a KeyboardInterrupt could wait in orbax's threads.
        os.write(2, b"\nSecond Ctrl-C: aborted; the last complete checkpoint "
                 b"stays.\n")
        os._exit(errors.EXIT_ABORTED)  # pylint: disable=protected-access
      return  # A repeated SIGTERM: the save and stop are already under way.
    self.signal = _NAMES.get(signum, str(signum))
    self._announce(f"\n{self.signal}: saving the current step, then stopping "
                   f"(Ctrl-C again aborts at once).")
    if self._multi and signum == signal.SIGINT:
      os.kill(os.getpid(), signal.SIGTERM)  # To JAX's preemption service.

  def reached(self, step: int) -> bool:
    """Whether to save ``step`` and stop (the same answer on every process).

    Called once per step, by every process, in step order.
    """
    if self._multi:
      from jax.experimental import multihost_utils
      try:
        if multihost_utils.reached_preemption_sync_point(step):
          self.signal = self.signal or "SIGTERM"
          return True
        return False
      except RuntimeError:
        pass  # Preemption service off: fall back to this process's flag.
    return self.signal is not None

  def restore(self) -> None:
    """Puts back the handlers found at construction (idempotent).

    After a stop, SIGTERM's default action (kill) is not put back: a
    repeated SIGTERM stays absorbed for the rest of the process, which is
    exiting, and is ignored from the start of the interpreter's exit.
    """
    global _exit_hook_registered
    for signum, previous in self._previous.items():
      if (signum == signal.SIGTERM and self.signal is not None and
          previous in (signal.SIG_DFL, None)):
        previous = _absorb
        if not _exit_hook_registered:
          atexit.register(_ignore_sigterm_at_exit)
          _exit_hook_registered = True
      elif previous is None:  # Installed outside Python: nothing to restore.
        continue
      signal.signal(signum, previous)
    self._previous = {}
