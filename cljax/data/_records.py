"""Raw records of an array_record split, and a fast numeric decoder.

What :class:`cljax.data.sources.Reader` reads with when it can: the
serialized records of a split straight from its array_record shards
(:class:`RawRecords`), and plain numeric inputs decoded from them without
TFDS's feature tree (:class:`NumericParser`). :func:`numeric_parser` gives
the decoder only where it reproduces TFDS's own decoding bit for bit; the
reader falls back to TFDS everywhere else.
"""

from __future__ import annotations

import threading

import numpy as np
import tensorflow_datasets as tfds
from tensorflow_datasets.core.data_sources import base as tfds_sources


class RawRecords:
  """The serialized records of a split, read from its array_record shards.

  ``ArrayRecordDataSource.__getitems__`` starts a thread pool on every call
  (1.5 of a 128-record batch's 3.5 ms on 2 cores, beside the step); grain's
  reader threads already read batches in parallel, so this reads each
  shard's ``ArrayRecordReader`` in the calling thread. Readers open lazily
  and are not pickled (grain worker processes open their own).
  """

  def __init__(self, shards: list[tuple[str, int, int]]):
    self._shards = [(str(f), int(start), int(n)) for f, start, n in shards]
    self._offsets = np.cumsum([0] + [n for _, _, n in self._shards])
    self._readers = [None] * len(self._shards)
    self._lock = threading.Lock()

  @classmethod
  def of(cls, source) -> "RawRecords | None":
    """For a TFDS array_record data source; None for any other source."""
    try:
      instructions = tfds_sources.file_instructions(source.dataset_info,
                                                    source.split)
      shards = [(i.filename, i.skip, i.take) for i in instructions]
      raw = cls(shards)
      if raw.num_records != len(source):
        return None
      rows = sorted({0, len(source) - 1})
      # TFDS's own read of the same rows, byte for byte.
      if list(raw(rows)) != list(source.data_source.__getitems__(rows)):
        return None
      return raw
    except Exception:  # pylint: disable=broad-except
      return None

  @property
  def num_records(self) -> int:
    return int(self._offsets[-1])

  def __getstate__(self):
    state = dict(self.__dict__)
    state["_readers"], state["_lock"] = [None] * len(self._shards), None
    return state

  def __setstate__(self, state):
    self.__dict__.update(state)
    self._lock = threading.Lock()

  def _reader(self, shard: int):
    if self._readers[shard] is None:
      with self._lock:
        if self._readers[shard] is None:
          from array_record.python import array_record_module  # pylint: disable=g-import-not-at-top
          # The options of array_record's own data source.
          self._readers[shard] = array_record_module.ArrayRecordReader(
              self._shards[shard][0], options="readahead_buffer_size:0",
              file_reader_buffer_size=32768)
    return self._readers[shard]

  def __call__(self, rows) -> list[bytes]:
    rows = np.asarray(rows, np.int64).reshape(-1)
    if rows.size and (rows.min() < 0 or rows.max() >= self.num_records):
      raise IndexError(f"rows outside [0, {self.num_records})")
    shard = np.searchsorted(self._offsets, rows, side="right") - 1
    out = [None] * rows.size
    for s in np.unique(shard):
      where = np.flatnonzero(shard == s)
      positions = rows[where] - self._offsets[s] + self._shards[s][1]
      for i, record in zip(where, self._reader(s).read(positions.tolist())):
        out[i] = record
    return out


def varint(value: int) -> bytes:
  out = bytearray()
  while True:
    byte, value = value & 0x7F, value >> 7
    out.append(byte | (0x80 if value else 0))
    if not value:
      return bytes(out)


class NumericParser:
  """Decodes a plain numeric ``Tensor`` input from raw records (picklable).

  TFDS decodes a record through its whole feature tree (about 30 us a record
  in Python, most of a small batch's host time). Such an input is one list in
  the record's ``tf.train.Example``: this reads just that list. A float32
  input whose map entry comes first in the record (TFDS writes the features
  in key order) has one fixed layout, so its packed floats are viewed in
  place; the key must not occur again after them (a map's last entry
  wins). Every other record is parsed with protobuf.
  """

  def __init__(self, key: str, shape: tuple, dtype: np.dtype):
    self.key, self.shape, self.dtype = key, tuple(shape), np.dtype(dtype)
    self.size = int(np.prod(self.shape, dtype=np.int64))
    self._header = self._key_entry = None
    if self.dtype == np.float32:
      name = key.encode()
      self._key_entry = b"\x0a" + varint(len(name)) + name
      packed = b"\x0a" + varint(4 * self.size)          # FloatList.value
      float_list = b"\x12" + varint(len(packed) + 4 * self.size)
      feature_len = len(float_list) + len(packed) + 4 * self.size
      value = b"\x12" + varint(feature_len)              # entry.value
      entry_len = len(self._key_entry) + len(value) + feature_len
      self._header = (b"\x0a" + varint(entry_len) + self._key_entry + value
                      + float_list + packed)

  def _in_place(self, serialized: bytes):
    """The floats viewed in the record, or None where its layout differs."""
    if len(serialized) < 2 or serialized[0] != 0x0A:   # Example.features
      return None
    length, shift, start = 0, 0, 1
    while start < len(serialized) and shift < 35:
      byte = serialized[start]
      length |= (byte & 0x7F) << shift
      shift, start = shift + 7, start + 1
      if not byte & 0x80:
        break
    end = start + len(self._header) + 4 * self.size
    if (length != len(serialized) - start or end > len(serialized) or
        not serialized.startswith(self._header, start) or
        serialized.find(self._key_entry, end) != -1):
      return None
    return np.frombuffer(serialized, "<f4", self.size,
                         start + len(self._header))

  def __call__(self, raws) -> np.ndarray:
    from tensorflow_datasets.core import example_parser  # pylint: disable=g-import-not-at-top
    parse_example = example_parser.tf_example_pb2.Example.FromString
    out = np.empty((len(raws),) + self.shape, self.dtype)
    flat = out.reshape(len(raws), -1)
    for i, serialized in enumerate(raws):
      if self._header is not None:
        values = self._in_place(serialized)
        if values is not None:
          flat[i] = values
          continue
      value = parse_example(serialized).features.feature[self.key]
      kind = value.WhichOneof("kind")
      if kind not in ("float_list", "int64_list"):
        raise ValueError(f"feature {self.key!r} is a {kind}")
      out[i] = np.asarray(getattr(value, kind).value).reshape(self.shape)
    return out


def numeric_parser(reader, features) -> NumericParser | None:
  """The fast decoder where it gives TFDS's own decoding, bit for bit.

  Checked on the split's first and last records; None (TFDS decodes) for
  any other feature, source or outcome.

  Args:
    reader: the :class:`cljax.data.sources.Reader` of the split, its raw
      records already opened.
    features: the dataset's TFDS feature dict.
  """
  try:
    feature = features[reader.input_key]
  except KeyError:
    return None
  raw = reader._raw  # pylint: disable=protected-access
  if (not isinstance(feature, tfds.features.Tensor) or raw is None
      or reader.dtype.kind not in "fiu"):
    return None
  parse = NumericParser(reader.input_key, reader.example_shape, reader.dtype)
  try:
    rows = sorted({0, reader.num_examples - 1})
    # TFDS's own decoding (inputs given the records skips the fast path).
    got = parse(raw(rows))
    want = reader.inputs(rows, reader.records(rows))
  except Exception:  # pylint: disable=broad-except
    return None
  same = np.array_equal(got, want) and got.dtype == want.dtype
  return parse if same else None
