"""Tests of the streaming grain pipeline behind cljax.data.build.

Host memory, worker errors and worker processes are checked in subprocesses
(a fresh RSS, a hang turned into a timeout, grain's spawned workers).
"""

import json
import os
import subprocess
import sys
import textwrap

import jax
import numpy as np
import pytest
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from cljax import data
from cljax.data import _records
from cljax.data import sources

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# Generous: a worker error must surface, a hang must fail the test.
TIMEOUT_S = 600


def _run(script: str, *args: str, env: dict | None = None) -> dict:
  result = subprocess.run(
      [sys.executable, "-c", textwrap.dedent(script), *args],
      capture_output=True, text=True, timeout=TIMEOUT_S, cwd=ROOT,
      env={**os.environ, "PYTHONPATH": ROOT, **(env or {})})
  assert result.returncode == 0, result.stderr[-4000:]
  return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def digits_dir(tmp_path_factory):
  path = str(tmp_path_factory.mktemp("tfds"))
  data.get_builder("cljax_digits", path)
  return path


def _digits(data_dir, **overrides):
  return {"name": "cljax_digits", "data_dir": data_dir, "batch_size": 32,
          "augment": {"mode": "identity"}, **overrides}


def _assert_same(first, second):
  assert len(first) == len(second)
  for a, b in zip(first, second):
    assert a.keys() == b.keys()
    for key in a:
      np.testing.assert_array_equal(np.asarray(a[key]), np.asarray(b[key]))


# -- host memory -----------------------------------------------------------------

_RSS_SCRIPT = """
import json, sys

def status_mb(field):
  with open("/proc/self/status") as f:
    for line in f:
      if line.startswith(field + ":"):
        return int(line.split()[1]) / 1024

def main():
  import jax
  jax.devices()
  from cljax import data
  cfg = json.loads(sys.argv[1])
  # VmHWM is this process's peak RSS (ru_maxrss would include the parent's
  # RSS at fork); "5" resets it to the current RSS (Linux >= 4.0).
  with open("/proc/self/clear_refs", "w") as f:
    f.write("5")
  start = status_mb("VmRSS")
  it = data.build(cfg, seed=0)
  seen = set()
  for _ in range(2 * it.steps_per_epoch):
    seen.update(next(it)["index"].tolist())
  print(json.dumps({"growth_mb": status_mb("VmHWM") - start,
                    "seen": len(seen), "num_examples": it.num_examples}))

if __name__ == "__main__":
  main()
"""


def test_training_split_is_streamed_not_held(tmp_path):
  budget_mb = 48
  # 300 vectors of 512 KiB: a 150 MiB split, three times the budget.
  config = data.gaussian_mixture_config(
      num_classes=2, dim=131072, train_per_class=150, test_per_class=1,
      noise=0.5, seed=0)
  name = f"cljax_gaussian_mixture/{config.name}"
  split_mb = 2 * 150 * 131072 * 4 / 2**20
  assert split_mb >= 3 * budget_mb
  data.get_builder(name, str(tmp_path))  # prepared here, read in the child
  cfg = {"name": name, "data_dir": str(tmp_path), "batch_size": 4,
         "augment": {"mode": "identity"}, "worker_threads": 2, "prefetch": 2}
  # glibc gives each reading thread a heap arena whose freed pages stay in
  # the RSS; two arenas make the peak RSS measure what the pipeline holds.
  out = _run(_RSS_SCRIPT, json.dumps(cfg), env={"MALLOC_ARENA_MAX": "2"})
  assert out["seen"] == out["num_examples"] == 300  # two whole epochs read
  assert out["growth_mb"] < budget_mb, (out, split_mb)


# -- worker errors ---------------------------------------------------------------

_ERROR_SCRIPT = """
import json, sys
import numpy as np
from cljax import data
from cljax.data import sources


class CorruptRecord:
  # A data source whose record `bad` holds a truncated input, as a damaged
  # file would give; its label reads fine, so only the workers see it.
  def __init__(self, source, bad):
    self.source, self.bad = source, bad

  def __len__(self):
    return len(self.source)

  def __getitem__(self, i):
    record = dict(self.source[i])
    if i == self.bad:
      record["image"] = np.asarray(record["image"]).reshape(-1)[:10]
    return record


def main():
  cfg = json.loads(sys.argv[1])
  bad = int(data.build(cfg, seed=0).global_indices(0, 2)[5])
  open_split = sources.open_split

  def corrupt_open_split(name, split, data_dir=None):
    builder, source = open_split(name, split, data_dir)
    return builder, CorruptRecord(source, bad)

  sources.open_split = corrupt_open_split
  out = {"bad": bad}
  for workers in (0, 2):
    it = data.build({**cfg, "num_workers": workers}, seed=0)
    try:
      for _ in range(it.steps_per_epoch):
        next(it)
      out[str(workers)] = None
    except Exception as e:
      out[str(workers)] = [type(e).__name__, str(e)]
    it.close()
  print(json.dumps(out))

if __name__ == "__main__":
  main()
"""


def test_worker_error_names_the_record_and_dataset(digits_dir):
  out = _run(_ERROR_SCRIPT, json.dumps(_digits(digits_dir)))
  for workers in ("0", "2"):  # reader threads, then worker processes
    assert out[workers] is not None, f"no error with {workers} workers"
    kind, message = out[workers]
    assert kind == "RecordReadError", out[workers]
    assert f"record {out['bad']} of split 'train'" in message, message
    assert "'cljax_digits'" in message and "(10,)" in message, message


def test_reader_decodes_numeric_inputs_like_tfds(digits_dir):
  # A plain float Tensor input is parsed from the raw records directly.
  reader = sources.Reader("cljax_digits", "train", data_dir=digits_dir)
  assert reader._parse is not None
  rows = np.arange(reader.num_examples)[::-1]
  # Which records take the in-place view depends on the order in which
  # protobuf serialised the Example's map when the dataset was prepared
  # (not fixed from run to run); whichever path a record takes, its values
  # must be TFDS's. The in-place layout itself is checked on hand-made
  # records in test_numeric_parser_reads_what_protobuf_reads.
  fast = reader.inputs(rows)
  want = np.stack([np.asarray(r["image"]) for r in reader.records(rows)])
  assert fast.dtype == want.dtype == np.float32
  np.testing.assert_array_equal(fast, want)


def _example(entries, packed=True) -> bytes:
  """A serialized tf.train.Example with its map entries in the given order."""
  from tensorflow_datasets.core import example_parser
  varint = _records.varint
  body = b""
  for key, values in entries:
    one = example_parser.tf_example_pb2.Example()
    one.features.feature[key].float_list.value.extend(values)
    raw = one.SerializeToString()
    body += raw[1 + len(varint(len(raw) - 2)):]  # Features' one entry
  if not packed:  # FloatList.value as one fixed32 field per float
    (key, values), = entries
    floats = b"".join(b"\x0d" + np.float32(v).tobytes() for v in values)
    float_list = b"\x12" + varint(len(floats)) + floats
    value = b"\x12" + varint(len(float_list)) + float_list
    name = b"\x0a" + varint(len(key)) + key.encode()
    body = b"\x0a" + varint(len(name) + len(value)) + name + value
  return b"\x0a" + varint(len(body)) + body


@pytest.mark.parametrize("layout", ["image_first", "label_first", "repeated",
                                    "unpacked"])
def test_numeric_parser_reads_what_protobuf_reads(layout):
  # The in-place view applies to TFDS's layout only; every other layout
  # falls back to protobuf, whose answer (a map's last entry wins) is the
  # reference.
  from tensorflow_datasets.core import example_parser
  rng = np.random.default_rng(0)
  image, other = rng.normal(size=6), rng.normal(size=6)
  label = [3.0]
  entries = {"image_first": [("image", image), ("label", label)],
             "label_first": [("label", label), ("image", image)],
             "repeated": [("image", other), ("label", label),
                          ("image", image)],
             "unpacked": [("image", image)]}[layout]
  raw = _example(entries, packed=layout != "unpacked")
  parse = _records.NumericParser("image", (2, 3), np.float32)
  want = np.asarray(example_parser.tf_example_pb2.Example.FromString(
      raw).features.feature["image"].float_list.value, np.float32)
  np.testing.assert_array_equal(want, image.astype(np.float32))
  np.testing.assert_array_equal(parse([raw])[0].ravel(), want)
  assert (parse._in_place(raw) is not None) == (layout == "image_first")


def test_raw_records_route_rows_to_their_shards(digits_dir):
  # Two "shards" of one file (rows 0-49 are records 100-149, rows 50-79
  # records 0-29) check the row -> shard -> position arithmetic; the reader
  # pickles unopened, as grain worker processes receive it.
  import pickle
  reader = sources.Reader("cljax_digits", "train", data_dir=digits_dir)
  shard = reader._raw._shards[0][0]
  raw = _records.RawRecords([(shard, 100, 50), (shard, 0, 30)])
  rows = [79, 0, 49, 50, 3, 60]
  want = reader.source.data_source.__getitems__([29, 100, 149, 0, 103, 10])
  assert raw(rows) == want
  assert pickle.loads(pickle.dumps(raw))(rows) == want
  with pytest.raises(IndexError, match=r"rows outside \[0, 80\)"):
    raw([80])


def test_reader_reads_a_sliced_split_like_tfds(digits_dir):
  reader = sources.Reader("cljax_digits", "train[100:140]",
                          data_dir=digits_dir)
  assert reader._raw is not None and reader._parse is not None
  rows = np.arange(reader.num_examples)
  want = np.stack([np.asarray(r["image"]) for r in reader.records(rows)])
  np.testing.assert_array_equal(reader.inputs(rows), want)


def test_reader_names_unreadable_records(digits_dir):
  reader = sources.Reader("cljax_digits", "train", data_dir=digits_dir)
  with pytest.raises(sources.RecordReadError,
                     match="record 5000 of split 'train'.*cljax_digits"):
    reader.inputs([0, 5000])


# -- worker processes, threads and resume ----------------------------------------


def test_worker_processes_give_the_thread_batches(digits_dir):
  cfg = _digits(digits_dir, sampler="balanced")
  threads = data.build(cfg, seed=4)
  expected = [next(threads) for _ in range(50)]  # crosses an epoch boundary
  procs = data.build({**cfg, "num_workers": 2, "prefetch": 3}, seed=4)
  try:
    _assert_same([next(procs) for _ in range(47)], expected[:47])
    state = procs.state()
  finally:
    procs.close()
  assert state == threads.state() | {"epoch": state["epoch"],
                                     "step": state["step"]}
  # Resume on another worker layout: the batch sequence is the same.
  resumed = data.build({**cfg, "worker_threads": 0, "prefetch": 1}, seed=4)
  resumed.restore(json.loads(json.dumps(state)))
  _assert_same([next(resumed) for _ in range(3)], expected[47:])


def test_device_batches_prefetch_and_count_only_handed_out_batches(
    digits_dir):
  mesh = jax.make_mesh((jax.device_count(),), ("data",))
  sharding = NamedSharding(mesh, P("data"))
  cfg = _digits(digits_dir, prefetch=3)
  host = data.build(cfg, seed=1)
  expected = [next(host) for _ in range(8)]
  it = data.build(cfg, seed=1)
  batches = it.device_batches(sharding, keys=("x", "label", "index"))
  got = [next(batches) for _ in range(5)]
  assert batches.in_flight == 3  # prefetched, not yet handed out
  for batch in got:
    assert batch["x"].sharding == sharding
  _assert_same(got, [{k: b[k] for k in ("x", "label", "index")}
                     for b in expected[:5]])
  state = it.state()
  assert state["step"] == 5  # what a checkpoint between steps stores
  with pytest.raises(RuntimeError, match="device_batches"):
    next(it)
  it.restore(state)
  assert batches.in_flight == 0
  _assert_same([next(batches) for _ in range(3)],
               [{k: b[k] for k in ("x", "label", "index")}
                for b in expected[5:]])


def test_single_process_transfer_lays_out_what_the_multi_process_one_does():
  # One process takes jax.device_put; several take
  # make_array_from_process_local_data (tests/training/test_multihost.py). Both must
  # give the same global array, shard by shard.
  from cljax.data import _stream
  mesh = jax.make_mesh((jax.device_count(),), ("data",))
  sharding = NamedSharding(mesh, P("data"))
  for local in (np.random.default_rng(0).random((16, 8, 8, 1), np.float32),
                np.arange(16, dtype=np.int32)):
    got = _stream.to_global(local, sharding)
    want = jax.make_array_from_process_local_data(sharding, local)
    assert got.sharding == want.sharding and got.dtype == want.dtype
    assert len(got.addressable_shards) == jax.device_count()
    for a, b in zip(got.addressable_shards, want.addressable_shards):
      assert a.device == b.device and a.index == b.index
      np.testing.assert_array_equal(np.asarray(a.data), np.asarray(b.data))


def test_train_arrays_reads_a_subset_on_demand(digits_dir):
  it = data.build(_digits(digits_dir, classes=[7, 2]), seed=0)
  x, y, clean = it.train_arrays(normalize=False)
  rows = np.array([3, 0, 17])
  x_sub, y_sub, _ = it.train_arrays(normalize=False, indices=rows)
  np.testing.assert_array_equal(x_sub, x[rows])
  np.testing.assert_array_equal(y_sub, y[rows])
  assert x.shape[0] == it.num_examples and set(np.unique(clean)) == {0, 1}
  with pytest.raises(ValueError, match="indices"):
    it.train_arrays(indices=[it.num_examples])
