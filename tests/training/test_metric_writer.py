"""metrics.jsonl: replaced whole or appended to, and read past a cut-off end.

A kill or a full disk during an append can cut off the last line; reading
drops it with one warning naming the file and line, and resume and
``checkpoints.load`` go on. A damaged line before the last is an error naming
the file and line. A resume's rewrite of the file is atomic.
"""

import errno
import json
import os
import re
import warnings

import pytest
from tests.training import test_train

from cljax.analysis import checkpoints
from cljax.training import errors
from cljax.training import metric_writer
from cljax.training import train

ROWS = [{"step": 2, "train/loss": 4.25}, {"step": 4, "train/loss": 3.5},
        {"step": 6, "train/loss": 3.0}]


def _write_lines(workdir, lines):
  path = os.path.join(workdir, "metrics.jsonl")
  with open(path, "w") as f:
    f.write("".join(lines))
  return path


def _recorded(caught, path):
  return [w for w in caught if issubclass(w.category, RuntimeWarning) and
          path in str(w.message)]


def test_a_cut_off_last_line_is_dropped_with_one_warning(tmp_path):
  whole = [json.dumps(r) + "\n" for r in ROWS]
  path = _write_lines(str(tmp_path), whole[:2] + [whole[2][:17]])
  with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    rows = metric_writer.read_rows(str(tmp_path))
  assert rows == ROWS[:2]
  [warning] = _recorded(caught, path)
  assert f"{path} line 3 is cut off" in str(warning.message)


def test_a_damaged_line_before_the_last_names_the_file_and_line(tmp_path):
  whole = [json.dumps(r) + "\n" for r in ROWS]
  path = _write_lines(str(tmp_path), [whole[0], whole[1][:9] + "\n", whole[2]])
  with pytest.raises(ValueError,
                     match=rf"^{re.escape(path)} line 2 is not a metric row"):
    metric_writer.read_rows(str(tmp_path))


class _FailsAfterHalf:
  """A file opened for writing that writes half of what it is given, then
  fails like a full disk."""

  def __init__(self, file):
    self._file = file

  def __getattr__(self, name):
    return getattr(self._file, name)

  def __enter__(self):
    return self

  def __exit__(self, *exc):
    self._file.close()

  def write(self, text):
    self._file.write(text[:len(text) // 2])
    raise OSError(errno.ENOSPC, "No space left on device")

  def writelines(self, lines):
    self.write("".join(lines))


def test_a_failed_rewrite_keeps_the_old_history(tmp_path, monkeypatch):
  path = _write_lines(str(tmp_path), [json.dumps(r) + "\n" for r in ROWS])
  before = open(path).read()

  def failing_open(file, mode="r", *args, **kwargs):
    opened = open(file, mode, *args, **kwargs)
    return _FailsAfterHalf(opened) if "w" in mode else opened

  monkeypatch.setattr(metric_writer, "open", failing_open, raising=False)
  # A resume from step 4 rewrites the file without the row of step 6.
  with pytest.raises(errors.WriteError, match="No space left on device"):
    metric_writer.MetricWriter(str(tmp_path), 4, tensorboard=False)
  assert open(path).read() == before
  assert os.listdir(tmp_path) == ["metrics.jsonl"]


class _ShortWrites:
  """An unbuffered file that writes at most 7 bytes a call (a disk that is
  nearly full returns short counts before it fails)."""

  def __init__(self, file):
    self._file = file

  def write(self, data):
    return self._file.write(bytes(data[:7]))

  def close(self):
    self._file.close()


def test_short_writes_never_cut_a_row(tmp_path):
  writer = metric_writer.MetricWriter(str(tmp_path), 0, tensorboard=False)
  writer._file = _ShortWrites(writer._file)
  for row in ROWS:
    writer.write(row["step"], {"train/loss": row["train/loss"]})
  writer.close()
  with open(os.path.join(tmp_path, "metrics.jsonl")) as f:
    assert [json.loads(line) for line in f] == ROWS


def test_resume_and_load_read_past_a_cut_off_last_line(tmp_path):
  config = test_train._config(steps=4, log_every=2, eval_every=0)
  config.checkpoint.every = 2
  workdir = str(tmp_path)
  train.train_and_evaluate(config, workdir, verbose=False)
  path = os.path.join(workdir, "metrics.jsonl")
  with open(path) as f:
    lines = f.readlines()
  assert [json.loads(line)["step"] for line in lines] == [2, 4]
  with open(path, "w") as f:   # A kill during the append of step 4's row.
    f.write(lines[0] + lines[1][:len(lines[1]) // 2])

  with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    run = checkpoints.load(workdir)
  assert run.step == 4
  assert [r["step"] for r in run.metrics] == [2]
  [warning] = _recorded(caught, path)
  assert f"{path} line 2 is cut off" in str(warning.message)

  config.steps = 6
  with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    summary = train.train_and_evaluate(config, workdir, verbose=False)
  assert summary["step"] == 6 and not summary["interrupted"]
  assert len(_recorded(caught, path)) == 1
  # The resume rewrote the file without the cut-off line.
  with open(path) as f:
    assert [json.loads(line)["step"] for line in f] == [2, 6]
