"""SIGTERM and SIGINT at step boundaries, agreed by every process.

The first SIGTERM or SIGINT (Ctrl-C) asks the loop to save the current step
and stop; a second SIGINT aborts at once (exit status 130; the last complete
checkpoint stays, since orbax finalises a checkpoint atomically).

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

import os
import signal
import sys
import threading

from cljax import errors

_NAMES = {signal.SIGTERM: "SIGTERM", signal.SIGINT: "SIGINT"}


class Interrupts:
  """Installs the handlers (main thread only) until ``restore``.

  Args:
    process_count: ``jax.process_count()``.
    announce: where the one-line notice of the first signal goes.
  """

  def __init__(self, process_count: int, announce=None):
    self.signal = None
    self._multi = process_count > 1
    self._announce = announce or (lambda msg: print(msg, file=sys.stderr,
                                                    flush=True))
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
      return
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
    for signum, previous in self._previous.items():
      signal.signal(signum, previous)
    self._previous = {}
