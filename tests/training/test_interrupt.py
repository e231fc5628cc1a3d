"""Repeated SIGTERMs: one stop, however many signals and whenever they come.
A scheduler or a user may send SIGTERM again and again while a run saves its
last step and exits; each further signal repeats the request under way, so the
run still ends with exit status 3, its "saved ... rerun" line and a complete
checkpoint (never with status 143, SIGTERM's default action).
"""
import os
import signal
import subprocess
import sys
import time

from tests.training import test_train
from cljax.analysis import checkpoints
from cljax.training import errors

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_sigterm_after_the_stop_and_restore_changes_nothing():
  # The loop restores the handlers before the process exits; a SIGTERM after
  # that must not kill it. A handler of the caller's own comes back as it was.
  script = (
      "import os, signal, sys\n"
      "from cljax.training import _interrupt\n"
      "interrupts = _interrupt.Interrupts(1, announce=print)\n"
      "for _ in range(3):\n"
      "  os.kill(os.getpid(), signal.SIGTERM)\n"
      "assert interrupts.reached(1) and interrupts.signal == 'SIGTERM'\n"
      "interrupts.restore()\n"
      "for _ in range(3):\n"
      "  os.kill(os.getpid(), signal.SIGTERM)\n"
      "print('alive after restore', flush=True)\n"
      "own = lambda signum, frame: print('own handler', flush=True)\n"
      "signal.signal(signal.SIGTERM, own)\n"
      "again = _interrupt.Interrupts(1, announce=print)\n"
      "os.kill(os.getpid(), signal.SIGTERM)\n"
      "again.restore()\n"
      "assert signal.getsignal(signal.SIGTERM) is own\n"
      "sys.exit(3)\n")
  proc = subprocess.run([sys.executable, "-c", script], cwd=ROOT,
                        capture_output=True, text=True, timeout=120)
  assert proc.returncode == errors.EXIT_INTERRUPTED, (proc.returncode,
                                                      proc.stderr)
  assert "alive after restore" in proc.stdout
  assert proc.stdout.count("SIGTERM: saving the current step") == 2
  assert "own handler" not in proc.stdout   # Only restored, never called.


_wait_for_first_row = test_train._wait_for_first_row


def test_a_burst_of_sigterm_during_the_save_still_exits_3(tmp_path):
  workdir = str(tmp_path / "run")
  env = dict(os.environ, PYTHONUNBUFFERED="1")
  # A checkpoint and a row every step: the signals arrive during saves.
  proc = subprocess.Popen(
      [sys.executable, "-m", "cljax.main",
       "--config=experiments/default.py:smoke", f"--workdir={workdir}",
       "--config.steps=100000", "--config.checkpoint.every=1",
       "--config.log_every=1", "--config.eval_every=0",
       "--config.evals.linear_probe.every=0"],
      cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
      text=True)
  try:
    _wait_for_first_row(workdir, proc)
    # 50 ms apart until the process has exited (the event), so signals also
    # meet the final save, the summary, the last line and the exit itself.
    sent = 0
    while proc.poll() is None and sent < 4000:
      proc.send_signal(signal.SIGTERM)
      sent += 1
      time.sleep(0.05)   # The burst's spacing, not a wait for an event.
    out, _ = proc.communicate(timeout=600)
  finally:
    proc.kill()
  assert sent > 1, out
  assert proc.returncode == errors.EXIT_INTERRUPTED, (proc.returncode, out)
  assert "Traceback" not in out, out
  assert out.count("SIGTERM: saving the current step") == 1, out
  steps = checkpoints.saved_steps(workdir)
  assert steps, out
  step = steps[-1]
  assert (f"SIGTERM: saved step {step} of 100000 in "
          f"{os.path.join(workdir, 'checkpoints')}; rerun the same command "
          f"to resume (exit status 3).") in out, out
  assert checkpoints.looks_intact(workdir, step)
  assert checkpoints.load(workdir).step == step   # Restores, not just listed.
