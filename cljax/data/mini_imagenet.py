r"""`mini_imagenet`: mini-ImageNet (Vinyals et al. 2016), local files -> TFDS.

P1's third dataset (docs/conventions.md#mini-imagenet). mini-ImageNet is 100
ImageNet classes with 600 images each; the split of Ravi & Larochelle (2017)
puts 64 classes in ``train.csv``, 16 in ``val.csv`` and 20 in ``test.csv``.
It is not in TFDS and is never downloaded here: this builder reads the usual
files from the TFDS *manual download directory*
(``<data_dir>/downloads/manual/`` unless ``manual_dir`` is given).

Expected layout (the Ravi & Larochelle CSV + images layout, the one this
builder supports; the ``mini-imagenet-cache-*.pkl`` pickles are not read)::

  <manual_dir>/               (or <manual_dir>/mini_imagenet/ or
                               <manual_dir>/mini-imagenet/)
    train.csv                 header "filename,label", 64 classes x 600
    val.csv                   16 classes x 600
    test.csv                  20 classes x 600
    images/n0153282900000005.jpg ...   every file named in the CSVs

Each CSV row is ``<image file name>,<ImageNet wnid>``. Images of any size are
resized to ``image_size x image_size`` (84 by default, Lanczos, as Ravi &
Larochelle's preparation script does) and stored as ``uint8`` RGB tensors, so
neither preparing nor reading needs TensorFlow.

Builder configs:

* ``all`` (default): the 100 classes pooled, every class split by a fixed
  seed into ``train`` (5/6 of its images: 500 of 600) and ``test`` (1/6:
  100). P1 trains and evaluates on 100 classes with the same classes in
  train and test (docs/conventions.md#mini-imagenet: Hugging Face
  ``timm/mini-imagenet``'s train/test splits); this split has that
  structure but is not timm's file list.
* ``ravi``: the few-shot split as in the CSVs: ``train`` / ``validation`` /
  ``test`` with disjoint classes.

In both, ``label`` is the index of the image's wnid among the 100 wnids sorted
alphabetically (so a class has the same id in both configs). Examples:
``image: uint8[84, 84, 3]``, ``label: ClassLabel(100)``.

Prepare once (offline; PIL decodes the JPEGs)::

  >>> import tensorflow_datasets as tfds
  >>> import cljax.data.mini_imagenet  # registers the builder
  >>> builder = tfds.builder("mini_imagenet", data_dir=d)  # doctest: +SKIP
  >>> builder.download_and_prepare(  # doctest: +SKIP
  ...     download_config=tfds.download.DownloadConfig(
  ...         manual_dir="/path/to/mini-imagenet"))

or :func:`prepare`. Then ``config.data.name = "mini_imagenet"`` (or
``"mini_imagenet/ravi"``) reads it with ``tfds.data_source``.
"""

from __future__ import annotations

import csv
import dataclasses
import os

import numpy as np
import tensorflow_datasets as tfds

from cljax.data import _embedded

NAME = "mini_imagenet"
NUM_CLASSES = 100
IMAGE_SIZE = 84
# Ravi & Larochelle's file -> the TFDS split name of the 'ravi' config.
CSV_SPLITS = {"train.csv": "train", "val.csv": "validation",
              "test.csv": "test"}
_SUBDIRS = ("", "mini_imagenet", "mini-imagenet")
_TEST_FRACTION = 1 / 6
_SPLIT_SEED = 0

LAYOUT = (
    "Expected layout (Ravi & Larochelle's CSV + images):\n"
    "  <manual_dir>/train.csv, val.csv, test.csv  (header 'filename,label';"
    " label = ImageNet wnid)\n"
    "  <manual_dir>/images/<filename>  (every image named in the CSVs)\n"
    "(<manual_dir>/mini_imagenet/ or <manual_dir>/mini-imagenet/ also work.)")


class MiniImageNetFilesError(FileNotFoundError):
  """The mini-ImageNet files are missing from the manual download dir."""


@dataclasses.dataclass
class MiniImageNetConfig(tfds.core.BuilderConfig):
  """``split_mode``: ``"all"`` (100 classes, train/test) or ``"ravi"``."""

  split_mode: str = "all"
  image_size: int = IMAGE_SIZE


def find_root(manual_dir) -> str:
  """The folder under ``manual_dir`` holding the CSVs and ``images/``.

  Raises:
    MiniImageNetFilesError: no such folder, naming where to put the files.
  """
  manual_dir = os.fspath(manual_dir)
  for sub in _SUBDIRS:
    root = os.path.join(manual_dir, sub)
    if all(os.path.isfile(os.path.join(root, f)) for f in CSV_SPLITS):
      if not os.path.isdir(os.path.join(root, "images")):
        raise MiniImageNetFilesError(
            f"mini-ImageNet: found the CSVs in {root} but no images/ folder "
            f"next to them. Put the JPEGs in {os.path.join(root, 'images')}."
            f"\n{LAYOUT}")
      return root
  raise MiniImageNetFilesError(
      f"mini-ImageNet files not found in the TFDS manual download dir "
      f"{manual_dir} (cljax never downloads them). Put train.csv, val.csv, "
      f"test.csv and images/ there, or pass `manual_dir` to "
      f"`tfds.download.DownloadConfig` / `cljax.data.mini_imagenet.prepare`."
      f"\n{LAYOUT}")


def read_csvs(root: str) -> dict[str, list[tuple[str, str]]]:
  """``{csv file: [(filename, wnid), ...]}`` in file order, validated."""
  rows = {}
  for name in CSV_SPLITS:
    path = os.path.join(root, name)
    with open(path, newline="") as f:
      reader = csv.reader(f)
      header = next(reader, None)
      if header != ["filename", "label"]:
        raise ValueError(
            f"{path}: the header must be 'filename,label'; got {header}.\n"
            f"{LAYOUT}")
      rows[name] = [(r[0], r[1]) for r in reader if r]
  wnids = [{w for _, w in r} for r in rows.values()]
  shared = ((wnids[0] & wnids[1]) | (wnids[0] & wnids[2])
            | (wnids[1] & wnids[2]))
  if shared:
    raise ValueError(
        f"mini-ImageNet CSVs in {root} share classes across splits: "
        f"{sorted(shared)[:5]}; Ravi & Larochelle's splits have disjoint "
        f"classes.")
  return rows


def split_examples(rows: dict[str, list[tuple[str, str]]], split_mode: str
                   ) -> tuple[list[str], dict[str, list[tuple[str, str]]]]:
  """The sorted wnids and ``{TFDS split: [(filename, wnid), ...]}``.

  ``"ravi"`` keeps the CSV splits. ``"all"`` pools them and sends, per class
  (files sorted, permuted with ``numpy.random.default_rng(0)``), the first
  ``round(n_c / 6)`` to ``test`` and the rest to ``train``: a fixed split
  that no run seed changes.
  """
  wnids = sorted({w for r in rows.values() for _, w in r})
  if split_mode == "ravi":
    return wnids, {CSV_SPLITS[k]: v for k, v in rows.items()}
  if split_mode != "all":
    raise ValueError(
        f"split_mode must be 'all' or 'ravi'; got {split_mode!r}.")
  rng = np.random.default_rng(_SPLIT_SEED)
  by_class = {w: [] for w in wnids}
  for r in rows.values():
    for filename, wnid in r:
      by_class[wnid].append(filename)
  out = {"train": [], "test": []}
  for wnid in wnids:
    files = sorted(by_class[wnid])
    order = rng.permutation(len(files))
    num_test = int(round(_TEST_FRACTION * len(files)))
    for rank, i in enumerate(order):
      out["test" if rank < num_test else "train"].append((files[i], wnid))
  return wnids, out


def load_image(path: str, size: int) -> np.ndarray:
  """``uint8[size, size, 3]`` RGB; other sizes resized with Lanczos."""
  from PIL import Image  # pylint: disable=g-import-not-at-top
  with Image.open(path) as im:
    im = im.convert("RGB")
    if im.size != (size, size):
      im = im.resize((size, size), resample=Image.LANCZOS)
    return np.asarray(im, dtype=np.uint8)


class MiniImageNet(_embedded.EmbeddedBuilder):
  """TFDS builder of mini-ImageNet from local files (see module docstring)."""

  name = NAME
  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "Initial release."}
  BUILDER_CONFIGS = [
      MiniImageNetConfig(name="all", split_mode="all",
                         description="100 classes, 500/100 train/test each."),
      MiniImageNetConfig(name="ravi", split_mode="ravi",
                         description="Ravi & Larochelle 64/16/20 classes."),
  ]
  MANUAL_DOWNLOAD_INSTRUCTIONS = LAYOUT

  def _info(self) -> tfds.core.DatasetInfo:
    size = self.builder_config.image_size
    return tfds.core.DatasetInfo(
        builder=self,
        description=__doc__.split("\n\n")[0],
        features=tfds.features.FeaturesDict({
            "image": tfds.features.Tensor(shape=(size, size, 3),
                                          dtype=np.uint8),
            "label": tfds.features.ClassLabel(num_classes=NUM_CLASSES),
            "filename": tfds.features.Text(),
        }),
        supervised_keys=("image", "label"),
        homepage="https://github.com/twitter-research/meta-learning-lstm",
    )

  def _split_generators(self, dl_manager):
    manual_dir = getattr(dl_manager, "_manual_dir", None)
    root = find_root(manual_dir or os.path.join(self.data_dir_root,
                                                "downloads", "manual"))
    wnids, splits = split_examples(read_csvs(root),
                                   self.builder_config.split_mode)
    if len(wnids) != NUM_CLASSES:
      raise ValueError(
          f"mini-ImageNet in {root} has {len(wnids)} classes over its three "
          f"CSVs; it must have {NUM_CLASSES} (64 + 16 + 20).")
    index = {w: i for i, w in enumerate(wnids)}
    return {split: self._generate_examples(root, examples, index)
            for split, examples in splits.items()}

  def _generate_examples(self, root, examples, index):
    size = self.builder_config.image_size
    for filename, wnid in examples:
      path = os.path.join(root, "images", filename)
      if not os.path.isfile(path):
        raise MiniImageNetFilesError(
            f"mini-ImageNet: {path} is named in the CSVs but missing.\n"
            f"{LAYOUT}")
      yield filename, {"image": load_image(path, size), "label": index[wnid],
                       "filename": filename}


def prepare(manual_dir: str, *, data_dir: str | None = None,
            config: str = "all") -> tfds.core.DatasetBuilder:
  """Prepares ``mini_imagenet/<config>`` from ``manual_dir`` (offline).

  Args:
    manual_dir: the folder of the layout above.
    data_dir: TFDS data dir; ``None`` means TFDS's default.
    config: ``"all"`` or ``"ravi"``.

  Returns:
    The prepared builder (``as_data_source`` reads it without TensorFlow).
  """
  find_root(manual_dir)  # Fail before TFDS creates any folder.
  builder = tfds.builder(f"{NAME}/{config}", data_dir=data_dir)
  builder.download_and_prepare(
      download_config=tfds.download.DownloadConfig(manual_dir=manual_dir))
  return builder
