"""The progress bar: drawn on a terminal, never into a log file or pipe.

tqdm redraws its line with carriage returns; in a log every redraw lands on
one line (10 KB for the default job). ``python -m cljax.main`` draws the bar
only when stderr is a terminal, and never with ``--no_progress``.
"""

import io
import os
import subprocess
import sys

from absl import flags
from absl import logging

from cljax import main
from cljax.training import cli
from cljax.training import train

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class _Terminal(io.StringIO):

  def isatty(self):
    return True


def test_a_run_piped_to_a_log_has_no_carriage_return(tmp_path):
  # A fresh TFDS dir: preparing the embedded data has progress bars too.
  proc = subprocess.run(
      [sys.executable, "-m", "cljax.main",
       "--config=experiments/default.py:smoke", f"--workdir={tmp_path / 'w'}",
       f"--config.data.data_dir={tmp_path / 'tfds'}", "--config.steps=4",
       # The bar is the loop's: the probes' compilations would only cost.
       "--config.evals.fewshot.every=0", "--config.evals.linear_probe.every=0"],
      cwd=ROOT, capture_output=True, text=True, timeout=600)
  assert proc.returncode == 0, proc.stderr
  assert "== summary after step 4" in proc.stdout
  assert "\r" not in proc.stdout
  assert "\r" not in proc.stderr, proc.stderr[:500]


def test_the_bar_is_drawn_only_on_a_terminal(monkeypatch):
  monkeypatch.delitem(sys.modules, "ipykernel", raising=False)
  monkeypatch.setattr(sys, "stderr", io.StringIO())
  assert not train.show_progress(None)
  assert train.show_progress(True)
  monkeypatch.setattr(sys, "stderr", _Terminal())
  assert train.show_progress(None)
  assert not train.show_progress(False)


def test_no_progress_flag_turns_the_bar_off(tmp_path, monkeypatch):
  calls = []
  monkeypatch.setitem(cli.MODES, "train",
                      lambda config, workdir, **kw: calls.append(kw))
  argv = ["cljax.main", "--config=experiments/default.py:smoke",
          f"--workdir={tmp_path}"]
  verbosity = logging.get_verbosity()  # main() lowers it for orbax.
  try:
    for extra in ([], ["--no_progress"]):
      flags.FLAGS.unparse_flags()
      flags.FLAGS(argv + extra)
      main.main(["cljax.main"])
  finally:
    flags.FLAGS.unparse_flags()
    logging.set_verbosity(verbosity)
  assert [kw["progress"] for kw in calls] == [None, False]
