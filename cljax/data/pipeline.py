"""The training-batch iterator: dataset + transforms + sampler + process slice.

:class:`Pipeline` streams the training split with grain: records are read on
demand from the TFDS ``data_source`` (array_record, random access), in
``worker_threads`` threads (and optionally ``num_workers`` processes), with
``prefetch`` batches in flight, so no split is held in host memory; only the
label vector is (8 bytes an example). It yields this process's slice of each
global batch. The global batch sequence depends only on the data config and
the run seed, never on the number of processes, threads or workers: process
``p`` of ``P`` takes rows ``[p*b, (p+1)*b)`` with ``b = batch_size // P``, so
the slices concatenated in process order are the single-process batch and
``jax.make_array_from_process_local_data`` assembles it
(:meth:`Pipeline.device_batches` does that ahead of the step). Its position is
``(epoch, step)``; :meth:`Pipeline.state` and :meth:`Pipeline.restore` save
and reload it for a bit-exact resume (also on a different number of
processes or workers). The grain graph is in :mod:`cljax.data._stream`.

Images are yielded as float32 in ``[0, 1]``, *not* normalised: colour
augmentation needs that range, so normalisation happens on device after
augmenting, in :meth:`Pipeline.make_views` (or :meth:`Pipeline.normalize` when
no views are made).
"""

from __future__ import annotations

from typing import Any

import jax
import numpy as np

from cljax.data import _stream
from cljax.data import augment as augment_lib
from cljax.data import config as config_lib
from cljax.data import samplers
from cljax.data import sources
from cljax.data import transforms

_STATE_VERSION = 1


def _check_seed(seed: Any, name: str) -> int:
  if isinstance(seed, bool) or int(seed) != seed or seed < 0:
    raise ValueError(f"`{name}` must be a non-negative int; got {seed!r}.")
  return int(seed)


class Pipeline:
  """Host-side iterator of training batches (build it with :func:`build`).

  Each ``next()`` returns this process's part of the next global batch::

    {"x": float32[b, ...],        # images in [0, 1] or vectors
     "label": int32[b],           # training labels (after any label noise)
     "clean_label": int32[b],     # labels before label noise
     "index": int32[b]}           # example index in the original split

  with ``b = batch_size // process_count``. The iterator is infinite; epochs
  roll over on their own. Records are read by grain threads (and worker
  processes with ``num_workers > 0``) ahead of use; :meth:`device_batches`
  also sends ``prefetch`` batches to the devices ahead of the step, and
  :meth:`close` stops the readers. A record that cannot be read raises
  :class:`~cljax.data.sources.RecordReadError` naming it. Transforms apply in the order class subset, then
  label noise, and the ``"balanced"`` sampler balances the training labels
  (after noise), which are the labels the loss sees.

  Attributes:
    config: the resolved data config (a plain dict).
    seed: the run seed driving the sampler (and, by default, label noise).
    num_classes: classes after any class subset.
    num_examples: training examples after any class subset.
    batch_size: the global batch size.
    local_batch_size: the per-process batch size.
    steps_per_epoch: global batches per epoch.
    mean, std: ``float32[C]`` normalisation statistics, or None (vectors or
      ``normalize=False``).
    labels, clean_labels: ``int64[num_examples]`` training labels with and
      without label noise.
  """

  def __init__(self, data_config: Any, *, seed: int, process_index: int = 0,
               process_count: int = 1):
    cfg = config_lib.resolve(data_config)
    self.config = cfg
    self.seed = _check_seed(seed, "seed")
    if int(process_count) != process_count or process_count < 1:
      raise ValueError(
          f"`process_count` must be a positive int; got {process_count}.")
    if not 0 <= process_index < process_count:
      raise ValueError(
          f"`process_index` must lie in [0, {process_count}); got "
          f"{process_index}.")
    if cfg["batch_size"] % process_count:
      raise ValueError(
          f"The global `batch_size` ({cfg['batch_size']}) must be divisible "
          f"by the number of processes ({process_count}); each process loads "
          f"batch_size // process_count examples. Change "
          f"`config.data.batch_size`.")
    self.process_index = int(process_index)
    self.process_count = int(process_count)
    self.batch_size = int(cfg["batch_size"])
    self.local_batch_size = self.batch_size // self.process_count

    reader = sources.Reader(cfg["name"], cfg["split"],
                            data_dir=cfg["data_dir"],
                            label_key=cfg["label_key"],
                            input_key=cfg["input_key"])
    self.input_key = reader.input_key
    self._check_augment(reader)
    all_labels = reader.labels()
    split_classes = reader.num_classes(all_labels)
    classes = transforms.class_list(cfg["classes"], split_classes)
    if classes is None:
      self._index, labels = np.arange(all_labels.size), all_labels
      self.num_classes = split_classes
    else:
      self._index, labels = transforms.select_classes(all_labels, classes)
      self.num_classes = len(classes)
      if not self._index.size:
        raise ValueError(
            f"`classes` {classes} has no example in split {cfg['split']!r}.")
    self._reader = reader
    self._index = self._index.astype(np.int64)
    self.clean_labels = labels
    if cfg["label_noise"] > 0:
      noise_seed = (self.seed if cfg["label_noise_seed"] is None else
                    _check_seed(cfg["label_noise_seed"], "label_noise_seed"))
      self.labels = transforms.add_label_noise(
          labels, cfg["label_noise"], self.num_classes, seed=noise_seed,
          mode=cfg["label_noise_mode"])
    else:
      self.labels = labels
    self.num_examples = int(labels.size)

    stats = (sources.normalization_stats(
        cfg["name"], cfg["data_dir"], input_key=cfg["input_key"])
             if cfg["normalize"] else None)
    self.mean, self.std = stats if stats is not None else (None, None)

    self.sampler = cfg["sampler"]
    self.steps_per_epoch = samplers.steps_per_epoch(
        self.sampler, self.labels, self.batch_size)
    if self.steps_per_epoch < 1:
      raise ValueError(
          f"`batch_size` ({self.batch_size}) exceeds the "
          f"{samplers.epoch_length(self.sampler, self.labels)} examples of "
          f"one epoch; lower `config.data.batch_size`.")
    self._position = 0  # Global batches handed out (over all epochs).
    self._host = None  # The grain iterator, started on the first batch.
    self._device = None

  def _check_augment(self, reader: sources.Reader) -> None:
    mode = self.config["augment"]["mode"]
    if mode in ("simclr", "crop_flip") and not reader.is_image:
      raise ValueError(
          f"Augmentation mode {mode!r} needs images, but "
          f"{self.config['name']!r} has examples of shape "
          f"{tuple(reader.example_shape)}. Use "
          f"`augment.mode='noise'` or `'identity'` for vectors.")

  # -- iteration --------------------------------------------------------------

  @property
  def input_shape(self) -> tuple[int, ...]:
    """Shape of one example, e.g. ``(32, 32, 3)`` or ``(D,)``."""
    return tuple(self._reader.example_shape)

  @property
  def epoch(self) -> int:
    return self._position // self.steps_per_epoch

  @property
  def step(self) -> int:
    """Global batches already yielded (over all epochs)."""
    return self._position

  def global_indices(self, epoch: int, step: int) -> np.ndarray:
    """``int64[batch_size]`` row indices of one global batch (all processes)."""
    return samplers.epoch_indices(
        self.sampler, self.labels, seed=self.seed, epoch=epoch,
        batch_size=self.batch_size)[step]

  def _next_host(self) -> dict[str, np.ndarray]:
    if self._host is None:
      # Started (or restarted after close/restore) at the first batch not yet
      # handed out, so prefetched-but-unused batches are read again.
      cfg, b = self.config, self.local_batch_size
      rows = _stream._BatchRows(  # pylint: disable=protected-access
          sampler=self.sampler, labels=self.labels, seed=self.seed,
          batch_size=self.batch_size, steps_per_epoch=self.steps_per_epoch,
          lo=self.process_index * b, hi=(self.process_index + 1) * b,
          start=self._position)
      self._host = _stream.host_iterator(
          rows,
          _stream._ReadBatch(self._reader, self._index),  # pylint: disable=protected-access
          worker_threads=cfg["worker_threads"], prefetch=cfg["prefetch"],
          num_workers=cfg["num_workers"])
    batch = next(self._host)
    rows = batch["row"]
    return {
        "x": batch["x"],
        "label": self.labels[rows].astype(np.int32),
        "clean_label": self.clean_labels[rows].astype(np.int32),
        "index": self._index[rows].astype(np.int32),
    }

  def _advance(self) -> None:
    self._position += 1

  def __iter__(self) -> "Pipeline":
    return self

  def __next__(self) -> dict[str, np.ndarray]:
    if self._device is not None and self._device.in_flight:
      raise RuntimeError(
          "This pipeline feeds a device_batches() iterator that holds "
          "prefetched batches; take batches from that iterator only.")
    batch = self._next_host()
    self._advance()
    return batch

  def device_batches(self, sharding: jax.sharding.Sharding, *,
                     keys: tuple[str, ...] = ("x", "label")
                     ) -> _stream.DevicePrefetch:
    """Global batches as ``jax.Array`` s, ``config.prefetch`` sent ahead.

    Replaces ``next(pipeline)`` followed by
    ``jax.make_array_from_process_local_data``: each item is
    ``{key: jax.Array[batch_size, ...]}`` laid out by ``sharding`` (e.g.
    ``NamedSharding(mesh, P("data"))``), and while the step runs the next
    ``prefetch`` batches are already being transferred. :meth:`state` counts
    only the batches this iterator has handed out, so a checkpoint taken
    between steps resumes exactly.

    Args:
      sharding: the global batch's sharding (leading axis split over the
        devices of every process).
      keys: the batch entries to transfer.

    Returns:
      An iterator; :meth:`restore` empties its prefetched batches.

    Examples:
      >>> from jax.sharding import NamedSharding, PartitionSpec as P
      >>> mesh = jax.make_mesh((jax.device_count(),), ("data",))
      >>> it = build({"name": "cljax_digits", "batch_size": 64}, seed=0)
      >>> batches = it.device_batches(NamedSharding(mesh, P("data")))
      >>> batch = next(batches)
      >>> batch["x"].shape, it.state()["step"]
      ((64, 8, 8, 1), 1)
    """
    if self._device is not None and self._device.in_flight:
      raise RuntimeError("This pipeline already feeds a device_batches() "
                         "iterator; use that one.")
    self._device = _stream.DevicePrefetch(
        self._next_host, sharding, keys=keys, depth=self.config["prefetch"],
        on_consume=self._advance)
    return self._device

  def close(self) -> None:
    """Stops the reading threads and worker processes (restarted on demand)."""
    if self._host is not None:
      self._host.close()
    self._host = None
    if self._device is not None:
      self._device.clear()

  # -- checkpointing -----------------------------------------------------------

  def state(self) -> dict[str, Any]:
    """JSON-serialisable position of the iterator (for orbax ``JsonSave``).

    The fields after ``epoch`` and ``step`` identify the batch sequence; a
    restore checks them so a changed data config cannot resume silently.
    The process count is not part of the state: a run may resume on another
    topology.
    """
    return {
        "version": _STATE_VERSION,
        "epoch": int(self.epoch),
        "step": int(self._position % self.steps_per_epoch),
        "seed": int(self.seed),
        "sampler": self.sampler,
        "batch_size": int(self.batch_size),
        "num_examples": int(self.num_examples),
        "steps_per_epoch": int(self.steps_per_epoch),
    }

  def restore(self, state: dict[str, Any]) -> None:
    """Continues from a :meth:`state`; the next batches are the same.

    Raises:
      ValueError: the state comes from a different seed, sampler, batch size
        or dataset (after transforms), or is malformed.
    """
    expected = self.state()
    if not isinstance(state, dict) or set(state) != set(expected):
      raise ValueError(
          f"`state` must be a dict with keys {sorted(expected)} as returned "
          f"by Pipeline.state(); got {state!r}.")
    for key in ("version", "seed", "sampler", "batch_size", "num_examples",
                "steps_per_epoch"):
      if state[key] != expected[key]:
        raise ValueError(
            f"Cannot restore the data iterator: saved {key}={state[key]!r} "
            f"but this pipeline has {key}={expected[key]!r}. Resume with the "
            f"data config and seed of the saved run.")
    if not (0 <= state["step"] < self.steps_per_epoch and state["epoch"] >= 0):
      raise ValueError(f"`state` has an out-of-range position: {state}.")
    self.close()
    self._position = (int(state["epoch"]) * self.steps_per_epoch +
                      int(state["step"]))

  # -- device-side helpers (jittable) ------------------------------------------

  def normalize(self, x: jax.typing.ArrayLike) -> jax.Array:
    """Per-channel normalisation (identity for vectors or normalize=False)."""
    if self.mean is None:
      return jax.numpy.asarray(x)
    return augment_lib.normalize(x, self.mean, self.std)

  def make_views(self, key: jax.Array, x: jax.typing.ArrayLike) -> jax.Array:
    """``config.num_views`` augmented, normalised views ``[B, K, ...]``.

    Jittable; call it inside the train step on the (global, sharded) batch
    with a key such as ``fold_in(base_key, step)``.
    """
    views = augment_lib.make_views(key, x, self.config["num_views"],
                                   self.config["augment"])
    return self.normalize(views)

  # -- whole arrays ------------------------------------------------------------

  def train_arrays(self, *, normalize: bool = True, indices=None
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The transformed training split as arrays, for probes and train accuracy.

    Read from the data source on each call (the pipeline holds no examples).

    Args:
      normalize: normalise as the pipeline does (when it normalises).
      indices: optional ``int[n]`` positions in ``[0, num_examples)`` to read
        instead of the whole split (e.g. a random evaluation subset).

    Returns:
      ``(x, labels, clean_labels)``: ``float32[n, ...]``, ``int32[n]``
      training labels (with label noise) and ``int32[n]`` clean labels.
    """
    positions = (np.arange(self.num_examples) if indices is None else
                 np.asarray(indices, np.int64))
    if positions.ndim != 1 or (positions.size and (
        positions.min() < 0 or positions.max() >= self.num_examples)):
      raise ValueError(
          f"`indices` must be a 1-D array of positions in "
          f"[0, {self.num_examples}); got shape {positions.shape}.")
    x = np.empty((positions.size,) + self.input_shape, np.float32)
    for start, part in self._reader.chunks(self._index[positions]):
      x[start:start + part.size] = sources.to_float(self._reader.inputs(part))
    if normalize and self.mean is not None:
      x -= self.mean
      x /= self.std
    return (x, self.labels[positions].astype(np.int32),
            self.clean_labels[positions].astype(np.int32))

  def eval_split(self, split: str | None = None, *, normalize: bool = True
                 ) -> tuple[np.ndarray, np.ndarray]:
    """An evaluation split with this pipeline's dataset, classes and labels.

    Args:
      split: defaults to ``config.eval_split``.
      normalize: apply this pipeline's normalisation.

    Returns:
      ``(x, y)`` as from :func:`load_split` (clean labels).
    """
    return load_split(self.config, split,
                      normalize=normalize and self.config["normalize"])


def load_split(data: str | Any, split: str | None = None, *,
               data_dir: str | None = None, label_key: str | None = None,
               input_key: str | None = None, classes: Any = None,
               normalize: bool | None = None
               ) -> tuple[np.ndarray, np.ndarray]:
  """A whole split as NumPy arrays, for evaluation and probes.

  Label noise is never applied here: evaluation uses clean labels.

  Args:
    data: a dataset name, or a data config whose ``name``, ``data_dir``,
      ``label_key``, ``input_key``, ``classes`` and ``normalize`` are used
      (keyword arguments that are not None override them).
    split: TFDS split (slicing allowed); defaults to the config's
      ``eval_split``, or ``"test"`` with a bare name.
    data_dir: TFDS data dir.
    label_key: label feature (default ``"label"``).
    input_key: input feature (default: ``"image"``, else ``"x"``).
    classes: class subset, as in the data config (remapped the same way).
    normalize: per-channel normalisation of images (default True).

  Returns:
    ``(x, y)``: ``float32[N, ...]`` inputs and ``int32[N]`` labels.

  Raises:
    ValueError: unknown dataset, split, feature or class.
    DatasetNotPreparedError: a stock dataset is not prepared.
  """
  if isinstance(data, str):
    cfg = config_lib.resolve({"name": data})
    cfg["eval_split"] = "test"
  else:
    cfg = config_lib.resolve(data)
  overrides = dict(data_dir=data_dir, label_key=label_key,
                   input_key=input_key, classes=classes, normalize=normalize)
  cfg.update({k: v for k, v in overrides.items() if v is not None})
  split = cfg["eval_split"] if split is None else split
  loaded = sources.load(cfg["name"], split, data_dir=cfg["data_dir"],
                        label_key=cfg["label_key"], input_key=cfg["input_key"])
  x, y = loaded.x, loaded.labels
  kept = transforms.class_list(cfg["classes"], loaded.num_classes)
  if kept is not None:
    rows, y = transforms.select_classes(y, kept)
    x = x[rows]
  x = sources.to_float(x)
  if cfg["normalize"]:
    stats = sources.normalization_stats(cfg["name"], cfg["data_dir"],
                                        input_key=cfg["input_key"])
    if stats is not None:
      x = (x - stats[0]) / stats[1]
  return x, y.astype(np.int32)


def build(data_config: Any, *, seed: int, process_index: int = 0,
          process_count: int = 1) -> Pipeline:
  """Builds the training-batch iterator of a data config.

  Args:
    data_config: ``config.data`` (see :mod:`cljax.data.config`).
    seed: non-negative run seed (``config.seed``); with the config it fixes
      the whole batch sequence.
    process_index: ``jax.process_index()``.
    process_count: ``jax.process_count()``.

  Returns:
    A :class:`Pipeline`.

  Raises:
    ValueError: bad config, unknown dataset/sampler/augmentation, global batch
      not divisible by ``process_count``, class out of range, noise rate
      outside ``[0, 1]``.
    DatasetNotPreparedError: a stock dataset is not prepared in ``data_dir``.

  Examples:
    >>> from cljax import data
    >>> it = data.build({"name": "cljax_digits", "batch_size": 64}, seed=0)
    >>> batch = next(it)
    >>> batch["x"].shape, batch["label"].shape
    ((64, 8, 8, 1), (64,))
  """
  return Pipeline(data_config, seed=seed, process_index=process_index,
                  process_count=process_count)
