"""The command line: mistakes end in one line naming the field, no traceback."""

import os
import subprocess
import sys

import pytest

from cljax.training import errors

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _run(module, *args, env=None):
  return subprocess.run([sys.executable, "-m", module, *args], cwd=ROOT,
                        capture_output=True, text=True, timeout=600,
                        env=dict(os.environ, **(env or {})))


def _one_line_error(proc):
  assert proc.returncode == errors.EXIT_CONFIG, proc.stderr
  assert "Traceback" not in proc.stderr, proc.stderr
  lines = [l for l in proc.stderr.splitlines() if l.strip()]
  assert lines and lines[-1].startswith("cljax: error: "), proc.stderr
  return lines[-1]


@pytest.mark.parametrize("override,expected", [
    ("--config.optim.learning_rat=0.1",
     "--config.optim.learning_rat: the config has no field 'learning_rat'; "
     "did you mean 'learning_rate'?"),
    ("--config.log_every=0", "config.log_every must be >= 1"),
    ("--config.checkpoint.keep=0", "config.checkpoint.keep must be >= 1"),
    ("--config.loss.name=simclr", "Unknown config.loss.name 'simclr'"),
])
def test_config_mistakes_end_in_one_line(tmp_path, override, expected):
  proc = _run("cljax.main", "--config=experiments/default.py:smoke",
              f"--workdir={tmp_path / 'run'}", override)
  assert expected in _one_line_error(proc)
  assert not os.path.exists(tmp_path / "run" / "config.json")


def test_a_missing_config_file_is_named_with_its_path(tmp_path):
  proc = _run("cljax.main", "--config=experiments/no_such_file.py",
              f"--workdir={tmp_path}")
  line = _one_line_error(proc)
  assert os.path.join(ROOT, "experiments", "no_such_file.py") in line


def test_debug_shows_the_traceback(tmp_path):
  proc = _run("cljax.main", "--config=experiments/default.py:smoke",
              f"--workdir={tmp_path}", "--config.optim.learning_rat=0.1",
              env={"CLJAX_DEBUG": "1"})
  assert proc.returncode != 0 and "Traceback" in proc.stderr


def test_a_grid_typo_suggests_the_field(tmp_path):
  proc = _run("cljax.sweep", "--config=experiments/default.py:smoke",
              f"--sweep_dir={tmp_path / 'sweep'}",
              "--grid=optim.learning_rat=[0.1,0.2]")
  assert ("--grid field 'optim.learning_rat': the config has no "
          "'learning_rat'; did you mean 'learning_rate'?") in (
              _one_line_error(proc))
  assert not os.path.exists(tmp_path / "sweep")


def test_print_only_writes_nothing(tmp_path):
  sweep_dir = tmp_path / "sweep"
  proc = _run("cljax.sweep", "--config=experiments/default.py:smoke",
              f"--sweep_dir={sweep_dir}", "--grid=seed=[0,1]", "--print_only")
  assert proc.returncode == 0, proc.stderr
  commands = [l for l in proc.stdout.splitlines() if l.startswith("python")]
  assert len(commands) == 2 and "--config.seed=1" in commands[1]
  assert not sweep_dir.exists()


class _Pieces:
  """A stream that records each write call separately."""

  def __init__(self):
    self.writes = []

  def write(self, text):
    self.writes.append(text)

  def flush(self):
    pass


def _unraisable(error, obj=None):
  import types
  try:
    raise error
  except type(error) as e:
    return types.SimpleNamespace(exc_type=type(e), exc_value=e,
                                 exc_traceback=e.__traceback__, err_msg=None,
                                 object=obj)


def test_the_error_line_is_written_in_one_piece(monkeypatch):
  # A writer thread's text can land between two writes; one write cannot be
  # split (the CI run that lost its "cljax: error:" line to such a report).
  from cljax.training import cli
  stream = _Pieces()
  monkeypatch.setattr(sys, "stderr", stream)
  with pytest.raises(SystemExit) as stop:
    cli.fail("the disk is full", errors.EXIT_WRITE)
  assert stop.value.code == errors.EXIT_WRITE
  assert stream.writes == ["cljax: error: the disk is full\n"]


def test_unraisable_reports_are_written_in_one_piece(monkeypatch):
  from cljax.training import cli
  stream = _Pieces()
  monkeypatch.setattr(sys, "stderr", stream)
  cli.report_unraisable(_unraisable(ValueError("bad callback"), "cb"))
  [report] = stream.writes
  assert report.startswith("Exception ignored in: 'cb'\nTraceback")
  assert report.endswith("ValueError: bad callback\n")


def test_event_loop_closed_reports_after_a_failed_save_are_dropped(
    monkeypatch):
  from cljax.training import cli
  stream = _Pieces()
  monkeypatch.setattr(sys, "stderr", stream)
  cli.report_unraisable(_unraisable(RuntimeError("Event loop is closed")))
  cli.report_unraisable(_unraisable(
      RuntimeError("cannot schedule new futures after shutdown")))
  assert stream.writes == []
  cli.report_unraisable(_unraisable(RuntimeError("Event loop is open")))
  assert len(stream.writes) == 1
