"""The mini-ImageNet builder on a tiny fake copy in Ravi & Larochelle's layout.

The fake copy has the real structure (100 wnids split 64/16/20 across
train/val/test.csv, an images/ folder of JPEGs named like the real ones) with
6 images per class instead of 600 and images of 40x30 pixels, so that the
resize to 84x84 is exercised. No downloads.
"""

import csv
import os

import numpy as np
import pytest
import tensorflow_datasets as tfds
from PIL import Image

from cljax import data
from cljax.data import mini_imagenet

PER_CLASS = 6


def _wnids():
  return [f"n{1000000 + 7 * i:08d}" for i in range(100)]


def _colour(c, k):
  """A flat RGB colour that names the class and image: decodable after JPEG."""
  return (int(2 * c + 28), int(40 * k + 20), 200)


def _fake_copy(root, *, per_class=PER_CLASS):
  """Writes the CSV + images layout; returns {filename: (wnid, colour)}."""
  os.makedirs(root / "images")
  wnids = _wnids()
  # Shuffle the class order so the CSV splits are not alphabetical blocks.
  order = np.random.default_rng(1).permutation(100)
  csv_classes = {"train.csv": order[:64], "val.csv": order[64:80],
                 "test.csv": order[80:]}
  truth = {}
  for name, classes in csv_classes.items():
    with open(root / name, "w", newline="") as f:
      w = csv.writer(f)
      w.writerow(["filename", "label"])
      for c in classes:
        for k in range(per_class):
          filename = f"{wnids[c]}{k + 1:08d}.jpg"
          colour = _colour(c, k)
          Image.new("RGB", (40, 30), colour).save(
              root / "images" / filename, quality=95)
          w.writerow([filename, wnids[c]])
          truth[filename] = (wnids[c], colour)
  return truth


@pytest.fixture(scope="module")
def fake(tmp_path_factory):
  base = tmp_path_factory.mktemp("mini")
  manual = base / "manual"
  truth = _fake_copy(manual / "mini-imagenet")
  return base, manual, truth


def _read(builder, split):
  source = builder.as_data_source(split=split)
  return [source[i] for i in range(len(source))]


def test_all_config_pools_100_classes_with_a_fixed_split(fake):
  base, manual, truth = fake
  builder = mini_imagenet.prepare(str(manual), data_dir=str(base / "dd"))
  assert builder.info.features["label"].num_classes == 100
  train, test = _read(builder, "train"), _read(builder, "test")
  assert len(train) == 100 * 5 and len(test) == 100 * 1
  wnids = sorted(_wnids())
  seen = set()
  for ex in train + test:
    filename = ex["filename"].decode() if isinstance(
        ex["filename"], bytes) else ex["filename"]
    wnid, colour = truth[filename]
    assert ex["image"].shape == (84, 84, 3) and ex["image"].dtype == np.uint8
    np.testing.assert_allclose(ex["image"].reshape(-1, 3).mean(0), colour,
                               atol=3)
    assert ex["label"] == wnids.index(wnid)
    seen.add(filename)
  assert seen == set(truth)   # every image exactly once across the splits
  assert np.bincount([ex["label"] for ex in test], minlength=100).tolist() \
      == [1] * 100


def test_ravi_config_keeps_the_csv_splits(fake):
  base, manual, truth = fake
  builder = mini_imagenet.prepare(str(manual), data_dir=str(base / "dd"),
                                  config="ravi")
  counts = {s: len(_read(builder, s)) for s in ("train", "validation", "test")}
  assert counts == {"train": 64 * PER_CLASS, "validation": 16 * PER_CLASS,
                    "test": 20 * PER_CLASS}
  labels = {s: {ex["label"] for ex in _read(builder, s)} for s in counts}
  assert [len(v) for v in labels.values()] == [64, 16, 20]
  assert not labels["train"] & labels["test"]


def test_config_data_name_reads_it_through_the_pipeline(fake):
  base, manual, _ = fake
  mini_imagenet.prepare(str(manual), data_dir=str(base / "dd"))
  it = data.build({"name": "mini_imagenet", "data_dir": str(base / "dd"),
                   "batch_size": 8, "sampler": "balanced",
                   "augment": {"mode": "identity"}}, seed=0)
  batch = next(it)
  x_test, y_test = data.load_split("mini_imagenet", "test",
                                   data_dir=str(base / "dd"))
  assert it.num_classes == 100 and it.input_shape == (84, 84, 3)
  assert batch["x"].shape == (8, 84, 84, 3)
  assert x_test.shape == (100, 84, 84, 3) and sorted(y_test) == list(range(100))


def test_missing_directory_says_where_to_put_the_files(tmp_path):
  with pytest.raises(mini_imagenet.MiniImageNetFilesError,
                     match=r"(?s)not found.*manual.*train.csv.*images/"):
    mini_imagenet.prepare(str(tmp_path / "nowhere"), data_dir=str(tmp_path))
  # Through TFDS with its default manual dir, <data_dir>/downloads/manual.
  with pytest.raises(mini_imagenet.MiniImageNetFilesError,
                     match=str(tmp_path / "dd" / "downloads" / "manual")):
    tfds.builder("mini_imagenet", data_dir=str(tmp_path / "dd")
                 ).download_and_prepare()


def test_broken_copies_name_the_problem(tmp_path):
  truth = _fake_copy(tmp_path / "m", per_class=1)
  os.remove(tmp_path / "m" / "images" / sorted(truth)[0])
  with pytest.raises(mini_imagenet.MiniImageNetFilesError,
                     match="named in the CSVs but missing"):
    mini_imagenet.prepare(str(tmp_path / "m"), data_dir=str(tmp_path / "dd"))
  train_row = (tmp_path / "m" / "train.csv").read_text().splitlines()[1]
  with open(tmp_path / "m" / "val.csv", "a") as f:
    f.write(train_row + "\n")
  with pytest.raises(ValueError, match="share classes across splits"):
    mini_imagenet.prepare(str(tmp_path / "m"), data_dir=str(tmp_path / "d2"))


def test_unprepared_name_in_a_config_says_where_to_put_the_files(tmp_path):
  with pytest.raises(data.DatasetNotPreparedError,
                     match=r"(?s)downloads/manual.*mini_imagenet.prepare"
                           r".*train.csv"):
    data.build({"name": "mini_imagenet", "data_dir": str(tmp_path)}, seed=0)
