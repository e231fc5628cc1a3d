"""Metric rows of a run: ``metrics.jsonl`` and TensorBoard event files.

One writer serves both drivers (``cljax.train``, ``cljax.unconstrained``).
Only process 0 writes. Every write is synchronous and flushed, so a failing
disk surfaces at once as a ``WriteError`` naming the file system, instead of
hanging: tensorboardX's own ``SummaryWriter`` hands events to a bounded
queue whose writer thread dies on the first error, after which the training
process blocks forever in ``queue.put`` (and ignores SIGTERM). So the
TensorBoard file is written here with tensorboardX's synchronous
``EventsWriter`` (TensorBoard without TensorFlow, when tensorboardX is
installed).
"""

from __future__ import annotations

import json
import os
import time

import jax

from cljax import errors


def read_rows(workdir: str) -> list[dict]:
  """The rows of ``workdir/metrics.jsonl`` (empty if absent)."""
  path = os.path.join(workdir, "metrics.jsonl")
  if not os.path.exists(path):
    return []
  with open(path) as f:
    return [json.loads(line) for line in f if line.strip()]


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
    self.path = os.path.join(workdir, "metrics.jsonl")
    self._file = None
    self._tb = None
    if not self.active:
      return
    self.rows = [r for r in read_rows(workdir) if r["step"] <= start_step]
    try:
      with open(self.path, "w") as f:
        f.writelines(json.dumps(r) + "\n" for r in self.rows)
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
    try:
      self._file.write((json.dumps(row) + "\n").encode())
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
