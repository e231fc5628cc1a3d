"""Tests of cljax.data: TFDS builders, loading, samplers, transforms, views.

Everything runs offline: the embedded datasets are prepared into a temporary
TFDS data dir and stock datasets go through `tfds.testing.mock_data`.
"""

import colorsys
import json
import sys

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest
import tensorflow_datasets as tfds

from cljax import data
from cljax.data import augment
from cljax.data import gaussian_mixture
from cljax.data import samplers
from cljax.data import sources
from cljax.data import transforms

# Whether this environment starts without TensorFlow; the no-TF assertions
# only mean something then.
TF_ABSENT = "tensorflow" not in sys.modules

GM = gaussian_mixture.NAME
SMALL_VECTORS = data.gaussian_mixture_config(
    num_classes=4, dim=6, train_per_class=12, test_per_class=3, noise=0.5,
    seed=3)
SMALL_IMAGES = data.gaussian_mixture_config(
    kind="images", num_classes=3, image_size=8, channels=3, template_size=2,
    train_per_class=10, test_per_class=2, noise=0.1, seed=1)
VECTORS = f"{GM}/{SMALL_VECTORS.name}"
IMAGES = f"{GM}/{SMALL_IMAGES.name}"


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
  path = str(tmp_path_factory.mktemp("tfds"))
  for name in (VECTORS, IMAGES, "cljax_digits"):
    data.get_builder(name, path)
  return path


def _config(data_dir, **overrides):
  cfg = {"name": VECTORS, "data_dir": data_dir, "batch_size": 8,
         "augment": {"mode": "noise"}}
  cfg.update(overrides)
  return cfg


def _take(iterator, n):
  return [next(iterator) for _ in range(n)]


# -- embedded TFDS builders ----------------------------------------------------


def test_embedded_builders_read_back_without_tensorflow(data_dir):
  cases = [(VECTORS, "x", (6,), 4, 12, 3),
           (IMAGES, "image", (8, 8, 3), 3, 10, 2)]
  for name, key, shape, classes, n_train, n_test in cases:
    builder = tfds.builder(name, data_dir=data_dir)
    assert builder.is_prepared()
    assert builder.info.features["label"].num_classes == classes
    splits = builder.as_data_source()
    for split, per_class in (("train", n_train), ("test", n_test)):
      source = tfds.data_source(name, split=split, data_dir=data_dir,
                                download=False)
      assert len(source) == len(splits[split]) == classes * per_class
      example = source[0]
      assert example[key].shape == shape
      assert example[key].dtype == np.float32
      labels = [int(source[i]["label"]) for i in range(len(source))]
      np.testing.assert_array_equal(np.bincount(labels, minlength=classes),
                                    per_class)
  images = sources.load(IMAGES, "train", data_dir=data_dir).x
  assert images.min() >= 0.0 and images.max() <= 1.0
  if TF_ABSENT:
    assert "tensorflow" not in sys.modules


def test_digits_builder(data_dir):
  train = sources.load("cljax_digits", "train", data_dir=data_dir)
  test = sources.load("cljax_digits", "test", data_dir=data_dir)
  assert train.x.shape == (1438, 8, 8, 1) and test.x.shape == (359, 8, 8, 1)
  assert train.x.dtype == np.float32
  assert train.x.min() == 0.0 and train.x.max() == 1.0
  assert train.num_classes == 10
  assert set(np.unique(test.labels)) == set(range(10))
  split = data.digits.split_indices()
  assert not set(split["train"]) & set(split["test"])
  if TF_ABSENT:
    assert "tensorflow" not in sys.modules


def test_gaussian_mixture_is_deterministic(tmp_path):
  cfg = data.gaussian_mixture_config(num_classes=3, dim=5, train_per_class=6,
                                     test_per_class=2, seed=7)
  name = f"{GM}/{cfg.name}"
  first = sources.load(name, "train", data_dir=str(tmp_path / "a"))
  second = sources.load(name, "train", data_dir=str(tmp_path / "b"))
  np.testing.assert_array_equal(first.x, second.x)
  np.testing.assert_array_equal(first.labels, second.labels)
  # The stored data is the generated data (TFDS only reorders it).
  x, labels = gaussian_mixture.generate(cfg, "train")
  order = np.lexsort(x.T)
  stored = np.lexsort(first.x.T)
  np.testing.assert_array_equal(first.x[stored], x[order])
  np.testing.assert_array_equal(first.labels[stored], labels[order])
  other = gaussian_mixture.generate(
      data.gaussian_mixture_config(num_classes=3, dim=5, train_per_class=6,
                                   test_per_class=2, seed=8), "train")[0]
  assert not np.allclose(other, x)


def test_gaussian_mixture_configs():
  names = {c.name for c in data.GaussianMixture.BUILDER_CONFIGS}
  assert {"vectors_c10", "images_c10", "vectors_c100", "images_c100"} <= names
  for cfg in (SMALL_VECTORS, SMALL_IMAGES):
    parsed = gaussian_mixture.parse_config_name(cfg.name)
    assert dataclass_params(parsed) == dataclass_params(cfg)
  x, labels = gaussian_mixture.generate(SMALL_VECTORS, "test")
  assert x.shape == (12, 6) and np.bincount(labels).tolist() == [3] * 4
  with pytest.raises(ValueError, match="num_classes"):
    data.gaussian_mixture_config(num_classes=1)
  with pytest.raises(ValueError, match="channels"):
    data.gaussian_mixture_config(kind="images", num_classes=2, channels=2)


def dataclass_params(cfg):
  return {k: getattr(cfg, k) for k in (
      "kind", "num_classes", "dim", "image_size", "channels", "template_size",
      "train_per_class", "test_per_class", "noise", "seed")}


# -- stock datasets through mock_data ------------------------------------------


def test_stock_cifar10_through_build(tmp_path):
  with tfds.testing.mock_data(num_examples=24):
    it = data.build({"name": "cifar10", "data_dir": str(tmp_path),
                     "batch_size": 8, "sampler": "balanced",
                     "augment": {"mode": "identity"}}, seed=0)
    batch = next(it)
    x_test, y_test = data.load_split("cifar10", "test",
                                     data_dir=str(tmp_path))
  assert batch["x"].shape == (8, 32, 32, 3) and batch["x"].dtype == np.float32
  assert 0.0 <= batch["x"].min() and batch["x"].max() <= 1.0
  assert it.num_classes == 10 and it.input_shape == (32, 32, 3)
  np.testing.assert_allclose(it.mean, sources.STATS["cifar10"][0])
  np.testing.assert_allclose(it.std, sources.STATS["cifar10"][1])
  assert x_test.shape == (24, 32, 32, 3) and y_test.dtype == np.int32
  assert 0 <= y_test.min() and y_test.max() < 10
  # Evaluation arrays are normalised; training batches are normalised on
  # device after augmentation.
  views = it.make_views(jax.random.key(0), batch["x"])
  assert views.shape == (8, 2, 32, 32, 3)
  np.testing.assert_allclose(views[:, 0], (batch["x"] - it.mean) / it.std,
                             rtol=1e-5, atol=1e-5)
  if TF_ABSENT:
    assert "tensorflow" not in sys.modules


def test_stock_cifar100_coarse_labels(tmp_path):
  with tfds.testing.mock_data(num_examples=16):
    it = data.build({"name": "cifar100", "data_dir": str(tmp_path),
                     "batch_size": 4, "label_key": "coarse_label",
                     "augment": {"mode": "identity"}}, seed=0)
    _, y_fine = data.load_split("cifar100", "test", data_dir=str(tmp_path))
    with pytest.raises(ValueError, match="coarse_label"):
      data.build({"name": "cifar100", "data_dir": str(tmp_path),
                  "label_key": "superclass"}, seed=0)
  assert it.num_classes == 20
  assert it.labels.max() < 20 and y_fine.max() < 100


def test_stock_dataset_not_prepared_explains_how(tmp_path):
  with pytest.raises(data.DatasetNotPreparedError,
                     match="tfds build cifar10 --file_format=array_record"):
    data.build({"name": "cifar10", "data_dir": str(tmp_path)}, seed=0)


def test_unknown_dataset_lists_known_names(tmp_path):
  with pytest.raises(ValueError, match="cljax_digits.*cifar10"):
    data.build({"name": "no_such_dataset_xyz"}, seed=0)
  with pytest.raises(ValueError, match="vectors_c10.*gaussian_mixture_config"):
    data.build({"name": f"{GM}/vectors_c3", "data_dir": str(tmp_path)},
               seed=0)


# -- samplers ------------------------------------------------------------------


def test_shuffle_sampler_covers_each_index_once_per_epoch():
  labels = np.arange(24) % 3
  tables = [samplers.epoch_indices("shuffle", labels, seed=1, epoch=e,
                                   batch_size=6) for e in range(2)]
  for table in tables:
    assert table.shape == (4, 6)
    np.testing.assert_array_equal(np.sort(table.ravel()), np.arange(24))
  assert not np.array_equal(tables[0], tables[1])
  dropped = samplers.epoch_indices("shuffle", labels, seed=1, epoch=0,
                                   batch_size=7)
  assert dropped.shape == (3, 7) and np.unique(dropped).size == 21


def test_iid_sampler_draws_with_replacement():
  labels = np.zeros(10, np.int64)
  table = samplers.epoch_indices("iid", labels, seed=0, epoch=0,
                                 batch_size=5)
  assert table.shape == (2, 5)
  big = samplers.epoch_indices("iid", np.zeros(400, np.int64), seed=0,
                               epoch=0, batch_size=400)
  assert np.unique(big).size < 400  # repeats: with replacement
  assert big.min() >= 0 and big.max() < 400
  again = samplers.epoch_indices("iid", np.zeros(400, np.int64), seed=0,
                                 epoch=0, batch_size=400)
  np.testing.assert_array_equal(big, again)


@pytest.mark.parametrize("batch_size", [8, 6])
def test_balanced_sampler_balances_every_batch(batch_size):
  labels = np.repeat(np.arange(4), [5, 8, 3, 8])  # unbalanced classes
  table = samplers.epoch_indices("balanced", labels, seed=2, epoch=0,
                                 batch_size=batch_size)
  assert table.shape == (4 * 8 // batch_size, batch_size)
  for row in table:
    counts = np.bincount(labels[row], minlength=4)
    assert counts.max() - counts.min() <= 1
    if batch_size % 4 == 0:
      assert np.all(counts == batch_size // 4)
  # The largest classes are seen exactly once per epoch when nothing drops.
  full = samplers.epoch_indices("balanced", labels, seed=2, epoch=0,
                                batch_size=8).ravel()
  for c in (1, 3):
    np.testing.assert_array_equal(np.sort(full[labels[full] == c]),
                                  np.flatnonzero(labels == c))


def _assert_batches_equal(first, second):
  assert len(first) == len(second)
  for a, b in zip(first, second):
    assert a.keys() == b.keys()
    for key in a:
      np.testing.assert_array_equal(a[key], b[key])


@pytest.mark.parametrize("sampler", samplers.SAMPLERS)
def test_state_restore_reproduces_batches(data_dir, sampler):
  cfg = _config(data_dir, sampler=sampler, batch_size=12)
  it = data.build(cfg, seed=5)
  assert it.steps_per_epoch == 4
  _take(it, 3)
  state = json.loads(json.dumps(it.state()))  # what orbax JsonSave stores
  expected = _take(it, 6)  # crosses an epoch boundary
  resumed = data.build(cfg, seed=5)
  resumed.restore(state)
  _assert_batches_equal(_take(resumed, 6), expected)
  assert resumed.state() == it.state()


@pytest.mark.parametrize("process_count", [2, 4])
def test_process_slices_assemble_the_global_batch(data_dir, process_count):
  cfg = _config(data_dir, sampler="shuffle", batch_size=8)
  single = _take(data.build(cfg, seed=0), 7)
  parts = [_take(data.build(cfg, seed=0, process_index=p,
                            process_count=process_count), 7)
           for p in range(process_count)]
  for step, whole in enumerate(single):
    for key in whole:
      joined = np.concatenate([part[step][key] for part in parts])
      np.testing.assert_array_equal(joined, whole[key])
  assert parts[0][0]["x"].shape == (8 // process_count, 6)


# -- transforms ----------------------------------------------------------------


def test_class_subset_keeps_and_remaps(data_dir):
  cfg = _config(data_dir, classes=[3, 1], batch_size=4)
  it = data.build(cfg, seed=0)
  assert it.num_classes == 2 and it.num_examples == 24
  x_all, y_all = data.load_split(VECTORS, "train", data_dir=data_dir)
  for batch in _take(it, 6):
    original = y_all[batch["index"]]
    np.testing.assert_array_equal(np.array([3, 1])[batch["label"]], original)
    np.testing.assert_array_equal(batch["x"], x_all[batch["index"]])
  x_sub, y_sub = data.load_split(cfg, "test")
  assert x_sub.shape == (6, 6) and sorted(np.unique(y_sub)) == [0, 1]
  rows, new = transforms.select_classes(np.array([0, 7, 2, 7]), (7, 2))
  assert rows.tolist() == [1, 2, 3] and new.tolist() == [0, 1, 0]
  assert data.build(_config(data_dir, classes=2), seed=0).num_classes == 2


def test_label_noise_flips_exactly_floor_pn_to_other_classes():
  labels = np.arange(1000) % 10
  for rate in (0.0, 0.29, 0.3, 1.0):
    noisy = transforms.add_label_noise(labels, rate, 10, seed=4)
    changed = noisy != labels
    assert changed.sum() == int(np.floor(rate * 1000 + 1e-9))
    assert noisy.min() >= 0 and noisy.max() < 10
  assert transforms.num_flips(0.29, 100) == 29
  again = transforms.add_label_noise(labels, 0.3, 10, seed=4)
  np.testing.assert_array_equal(
      again, transforms.add_label_noise(labels, 0.3, 10, seed=4))
  assert not np.array_equal(
      again, transforms.add_label_noise(labels, 0.3, 10, seed=5))
  np.testing.assert_array_equal(labels, np.arange(1000) % 10)  # untouched


def test_label_noise_uniform_variant_can_keep_labels():
  labels = np.arange(1000) % 10
  noisy = transforms.add_label_noise(labels, 1.0, 10, seed=0, mode="uniform")
  kept = np.sum(noisy == labels)
  assert 0 < kept < 1000  # about 1/C of the redrawn labels stay the same
  assert noisy.min() >= 0 and noisy.max() < 10


def test_pipeline_keeps_clean_labels_next_to_noisy_ones(data_dir):
  it = data.build(_config(data_dir, label_noise=0.5, batch_size=48), seed=3)
  assert np.sum(it.labels != it.clean_labels) == 24
  batch = next(it)
  np.testing.assert_array_equal(batch["clean_label"],
                                it.clean_labels[batch["index"]])
  assert np.sum(batch["label"] != batch["clean_label"]) == 24
  x, labels, clean = it.train_arrays()
  assert x.shape == (48, 6) and np.sum(labels != clean) == 24


# -- augmentations -------------------------------------------------------------


@pytest.fixture(scope="module")
def rgb():
  rng = np.random.default_rng(0)
  return jnp.asarray(rng.uniform(size=(4, 8, 8, 3)).astype(np.float32))


@pytest.fixture(scope="module")
def simclr_fn():
  return jax.jit(lambda key, x: augment.make_views(key, x, 2, "simclr"))


def test_simclr_views_shape_range_determinism(rgb, simclr_fn):
  views = simclr_fn(jax.random.key(0), rgb)
  assert views.shape == (4, 2, 8, 8, 3) and views.dtype == jnp.float32
  assert float(views.min()) >= 0.0 and float(views.max()) <= 1.0
  np.testing.assert_array_equal(views, simclr_fn(jax.random.key(0), rgb))
  assert not np.allclose(views, simclr_fn(jax.random.key(1), rgb))
  assert not np.allclose(views[:, 0], views[:, 1])


def test_simclr_on_grayscale_images():
  rng = np.random.default_rng(1)
  gray = jnp.asarray(rng.uniform(size=(3, 8, 8, 1)).astype(np.float32))
  views = jax.jit(lambda k, x: augment.make_views(k, x, 3, "simclr"))(
      jax.random.key(2), gray)
  assert views.shape == (3, 3, 8, 8, 1)
  assert float(views.min()) >= 0.0 and float(views.max()) <= 1.0


def test_simclr_without_randomness_is_the_identity(rgb):
  cfg = {"mode": "simclr", "crop_scale": (1.0, 1.0), "crop_ratio": (1.0, 1.0),
         "flip_prob": 0.0, "jitter_prob": 0.0, "grayscale_prob": 0.0}
  views = jax.jit(lambda k, x: augment.make_views(k, x, 2, cfg))(
      jax.random.key(0), rgb)
  np.testing.assert_allclose(views, jnp.repeat(rgb[:, None], 2, 1), atol=1e-6)


def test_hue_conversion_matches_colorsys():
  rng = np.random.default_rng(3)
  pixels = rng.uniform(size=(64, 3)).astype(np.float32)
  hsv = np.asarray(augment._rgb_to_hsv(jnp.asarray(pixels)))
  expected = np.array([colorsys.rgb_to_hsv(*p) for p in pixels])
  np.testing.assert_allclose(hsv, expected, atol=1e-6)
  back = np.asarray(augment._hsv_to_rgb(jnp.asarray(hsv)))
  np.testing.assert_allclose(back, pixels, atol=1e-6)


def test_jitter_strength_maps_to_simclr_parameters():
  assert augment.jitter_params(augment.default_config()) == pytest.approx(
      (0.4, 0.4, 0.4, 0.1))
  assert augment.jitter_params({"jitter_strength": 1.0}) == pytest.approx(
      (0.8, 0.8, 0.8, 0.2))
  assert augment.jitter_params(
      {"color_jitter": (0.1, 0.2, 0.3, 0.05)}) == (0.1, 0.2, 0.3, 0.05)


def test_crop_flip_views(rgb):
  fn = jax.jit(lambda k, x: augment.make_views(k, x, 3, "crop_flip"))
  views = fn(jax.random.key(0), rgb)
  assert views.shape == (4, 3, 8, 8, 3)
  np.testing.assert_array_equal(views, fn(jax.random.key(0), rgb))
  assert not np.array_equal(views[:, 0], views[:, 1])
  # Every output pixel is an input pixel or zero padding.
  values = set(np.asarray(rgb).ravel().tolist()) | {0.0}
  assert set(np.asarray(views).ravel().tolist()) <= values
  still = augment.make_views(jax.random.key(0), rgb, 2,
                             {"mode": "crop_flip", "pad": 0, "flip_prob": 0})
  np.testing.assert_array_equal(still, jnp.repeat(rgb[:, None], 2, 1))


def test_views_of_a_sharded_batch_match_single_device(rgb):
  # The train loop augments the global batch sharded on an Explicit mesh.
  mesh = jax.make_mesh((jax.device_count(),), ("data",))
  batch = jnp.tile(rgb, (jax.device_count() // 2, 1, 1, 1))
  fn = jax.jit(lambda k, x: augment.make_views(k, x, 2, "crop_flip"))
  expected = fn(jax.random.key(0), batch)
  with jax.set_mesh(mesh):
    sharded = jax.device_put(batch, jax.P("data"))
    views = fn(jax.random.key(0), sharded)
  assert views.sharding.spec[0] == "data"
  np.testing.assert_array_equal(views, expected)


def test_identity_and_noise_views():
  x = jnp.asarray(np.random.default_rng(0).normal(size=(5, 7)), jnp.float32)
  same = augment.make_views(jax.random.key(0), x, 3, "identity")
  assert same.shape == (5, 3, 7)
  for k in range(3):
    np.testing.assert_array_equal(same[:, k], x)
  noisy = augment.make_views(jax.random.key(0), x, 2,
                             {"mode": "noise", "noise_std": 0.5})
  assert noisy.shape == (5, 2, 7)
  assert not np.allclose(noisy[:, 0], noisy[:, 1])
  assert 0.2 < float(jnp.std(noisy - x[:, None])) < 0.8


def test_pipeline_make_views_normalises_images(data_dir):
  it = data.build({"name": IMAGES, "data_dir": data_dir, "batch_size": 6,
                   "num_views": 2, "augment": {"mode": "identity"}}, seed=0)
  batch = next(it)
  views = jax.jit(it.make_views)(jax.random.key(0), batch["x"])
  expected = (batch["x"] - it.mean) / it.std
  np.testing.assert_allclose(views[:, 1], expected, rtol=1e-5, atol=1e-6)
  x_train, _, _ = it.train_arrays()
  np.testing.assert_allclose(x_train.mean(axis=(0, 1, 2)), 0.0, atol=1e-4)


def test_default_config_is_a_config_dict_that_builds(data_dir):
  cfg = data.default_config()
  assert isinstance(cfg, ml_collections.ConfigDict)
  cfg.name = IMAGES
  cfg.data_dir = data_dir
  cfg.batch_size = 6
  cfg.classes = (0, 2)
  cfg.augment.mode = "crop_flip"
  it = data.build(cfg, seed=0)
  assert it.num_classes == 2 and next(it)["x"].shape == (6, 8, 8, 3)


# -- errors --------------------------------------------------------------------


@pytest.mark.parametrize("overrides, match", [
    ({"sampler": "weighted"}, "sampler"),
    ({"augment": {"mode": "mixup"}}, "augmentation mode"),
    ({"augment": {"mode": "noise", "blur_prob": 0.5}}, "blur_prob"),
    ({"batch_size": 9}, "divisible"),
    ({"classes": [0, 4]}, "classes"),
    ({"classes": 5}, "classes"),
    ({"classes": [1, 1]}, "repeat"),
    ({"label_noise": 1.5}, "label_noise"),
    ({"label_noise": -0.1}, "label_noise"),
    ({"label_noise_mode": "pairflip"}, "label_noise_mode"),
    ({"batch_sise": 8}, "Unknown data-config fields"),
    ({"batch_size": 64}, "exceeds"),
    ({"augment": {"mode": "simclr"}}, "needs images"),
    ({"num_views": 0}, "num_views"),
    ({"num_workers": -1}, "num_workers"),
    ({"worker_threads": 1.5}, "worker_threads"),
    ({"prefetch": 0}, "prefetch"),
])
def test_bad_config_raises_value_error(data_dir, overrides, match):
  with pytest.raises(ValueError, match=match):
    data.build(_config(data_dir, **overrides), seed=0, process_count=2)


def test_bad_arguments_raise_value_error(data_dir, rgb):
  with pytest.raises(ValueError, match="process_index"):
    data.build(_config(data_dir), seed=0, process_index=2, process_count=2)
  with pytest.raises(ValueError, match="seed"):
    data.build(_config(data_dir), seed=-1)
  with pytest.raises(ValueError, match="label_noise"):
    transforms.add_label_noise(np.zeros(4, np.int64), 2.0, 3, seed=0)
  with pytest.raises(ValueError, match="augmentation mode"):
    augment.make_views(jax.random.key(0), rgb, 2, "autoaugment")
  with pytest.raises(ValueError, match="floating"):
    augment.make_views(jax.random.key(0), jnp.zeros((2, 8, 8, 3), jnp.uint8),
                       2, "crop_flip")
  with pytest.raises(ValueError, match="num_views"):
    augment.make_views(jax.random.key(0), rgb, 0, "identity")
  it = data.build(_config(data_dir), seed=0)
  state = it.state()
  with pytest.raises(ValueError, match="seed"):
    data.build(_config(data_dir), seed=1).restore(state)
  with pytest.raises(ValueError, match="batch_size"):
    data.build(_config(data_dir, batch_size=4), seed=0).restore(state)
