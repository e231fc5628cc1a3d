"""Metric rows of a run: ``metrics.jsonl`` and TensorBoard event files.

One writer serves both drivers (``cljax.training.train``, ``cljax.unconstrained``).
Only process 0 writes. Every write is synchronous and flushed, so a failing
disk surfaces at once as a ``WriteError`` naming the file system, instead of
hanging: tensorboardX's own ``SummaryWriter`` hands events to a bounded
queue whose writer thread dies on the first error, after which the training
process blocks forever in ``queue.put`` (and ignores SIGTERM). So the
TensorBoard file is written here with tensorboardX's synchronous
``EventsWriter`` (TensorBoard without TensorFlow, when tensorboardX is
installed).

``metrics.jsonl`` is only ever appended to, a whole row at a time, or
replaced whole: a resume writes the rows it keeps to a temporary file and
renames it over the old one, so a kill or a full disk at that moment leaves
the old history. A kill or a full disk during an append can still cut off
the last line; ``read_rows`` drops such a line with a warning (and a resume
then rewrites the file without it), while a damaged line before the last is
an error naming the file and the line.
"""

from __future__ import annotations

import json
import os
import time
import warnings

import jax

from cljax.training import errors


FILE = "metrics.jsonl"


class MetricsFileError(ValueError):
  """A line of ``metrics.jsonl`` before its last one is not a JSON row."""


def _parse(line: str) -> dict:
  row = json.loads(line)
  if not isinstance(row, dict) or not isinstance(row.get("step"), int):
    raise ValueError('not an object with an integer "step"')
  return row


def read_rows(workdir: str) -> list[dict]:
  """The rows of ``workdir/metrics.jsonl`` (empty if absent).

  A last line that is not a complete row (cut off by a kill or a full disk
  during its append) is left out with a ``RuntimeWarning`` naming the file
  and the line number.

  Raises:
    MetricsFileError: a line before the last one is not a row; names the
      file and the line number.
  """
  path = os.path.join(workdir, FILE)
  if not os.path.exists(path):
    return []
  with open(path, encoding="utf-8", errors="replace") as f:
    lines = [(number, line) for number, line in enumerate(f, start=1)
             if line.strip()]
  rows = []
  for index, (number, line) in enumerate(lines):
    try:
      rows.append(_parse(line))
    except ValueError as e:
      reason = (f"{e.msg}: column {e.colno}"
                if isinstance(e, json.JSONDecodeError) else str(e))
      if index < len(lines) - 1:
        raise MetricsFileError(
            f"{path} line {number} is not a metric row ({reason}) although "
            f"rows follow it: repair or delete that line (the checkpoints do "
            f"not depend on this file).") from None
      warnings.warn(
          f"{path} line {number} is cut off ({reason}; a kill or a full disk "
          f"during its write); that row is left out.", RuntimeWarning,
          stacklevel=2)
  return rows


def _replace(path: str, rows: list[dict]) -> None:
  """Replaces ``path`` by ``rows`` whole: the old file or the new, never part.

  Raises:
    OSError: from the temporary file; ``path`` is then unchanged.
  """
  temporary = path + ".tmp"
  try:
    with open(temporary, "w", encoding="utf-8") as f:
      f.writelines(json.dumps(r) + "\n" for r in rows)
      f.flush()
      # On disk before the rename, so that a crash cannot leave an empty
      # file under the old name.
      os.fsync(f.fileno())
    os.replace(temporary, path)
  except BaseException:
    try:
      os.remove(temporary)
    except OSError:
      pass
    raise


class MetricWriter:
  """Appends ``{"step": s, **metrics}`` rows (process 0 only).

  Args:
    workdir: the run's directory.
    start_step: the step the run starts from. Rows after it were logged by
      an interrupted run and are replayed by this one, so they are dropped
      rather than duplicated; 0 (a fresh run) starts an empty file.
    tensorboard: also write ``workdir/tb/events.*`` when tensorboardX is
      importable.
    active: write at all (default: on process 0 only).

  Attributes:
    rows: every row of the run so far (replayed and new).

  Raises:
    WriteError: a write failed (disk full, read-only file system, ...).
  """

  def __init__(self, workdir: str, start_step: int, *,
               tensorboard: bool = True, active: bool | None = None):
    self.active = jax.process_index() == 0 if active is None else active
    self.rows = []
    self.path = os.path.join(workdir, FILE)
    self._file = None
    self._tb = None
    if not self.active:
      return
    self.rows = [r for r in read_rows(workdir) if r["step"] <= start_step]
    try:
      _replace(self.path, self.rows)
      # Unbuffered: a failed write leaves nothing behind to fail again when
      # the file is closed or collected.
      self._file = open(self.path, "ab", buffering=0)
    except OSError as e:
      raise errors.write_error(self.path, e) from e
    if tensorboard:
      self._open_tensorboard(os.path.join(workdir, "tb"))

  def _open_tensorboard(self, logdir: str) -> None:
    try:
      from tensorboardX import event_file_writer
      from tensorboardX import summary
    except ImportError:  # Optional: TensorBoard without TensorFlow.
      return
    try:
      os.makedirs(logdir, exist_ok=True)
      self._tb = event_file_writer.EventsWriter(
          os.path.join(logdir, "events"))
      self._tb.flush()
    except OSError as e:
      raise errors.write_error(logdir, e) from e
    self._tb_path = self._tb._file_name  # pylint: disable=protected-access
    self._scalar = summary.scalar

  def write(self, step: int, metrics: dict[str, float]) -> None:
    """Appends one row (and its TensorBoard scalars), flushed to disk."""
    if not self.active:
      return
    row = {"step": int(step), **metrics}
    data = memoryview((json.dumps(row) + "\n").encode())
    try:
      # An unbuffered write may write part of the row and return its length
      # (a nearly full disk); the rest goes in the next call, which raises
      # if the disk is full, so only a last line is ever cut off.
      while data:
        data = data[self._file.write(data):]
    except OSError as e:
      raise errors.write_error(self.path, e) from e
    self.rows.append(row)
    if self._tb is not None:
      from tensorboardX.proto import event_pb2
      try:
        for name, value in metrics.items():
          if isinstance(value, (int, float)):
            self._tb.write_event(event_pb2.Event(
                wall_time=time.time(), step=int(step),
                summary=self._scalar(name, float(value))))
        self._tb.flush()
      except OSError as e:
        raise errors.write_error(self._tb_path, e) from e

  def close(self) -> None:
    """Closes the files; never raises (the run's own error comes first)."""
    for closable in (self._file, self._tb):
      if closable is not None:
        try:
          closable.close()
        except OSError:
          pass
    self._file = self._tb = None
