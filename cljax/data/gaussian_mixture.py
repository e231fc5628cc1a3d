"""`cljax_gaussian_mixture`: the Gaussian-mixture data model as a TFDS builder.

The theory of the three papers is stated for data drawn from ``C`` latent
classes. This builder makes that data model concrete, offline and
deterministic, in two forms:

* **vectors** ``x: float32[D]``: class means ``mu_c`` are independent
  uniformly random unit vectors (normalised Gaussians, so nearly orthogonal
  when ``D >> C``) and ``x = mu_c + noise * eps / sqrt(D)`` with
  ``eps ~ N(0, I_D)``. Dividing by ``sqrt(D)`` makes ``noise`` the RMS
  distance of a sample to its class mean whatever ``D`` is, so within-class
  spread and between-class distance (about ``sqrt(2)``) stay comparable when
  the dimension changes.
* **images** ``image: float32[S, S, channels]`` in ``[0, 1]``: each class has a
  low-resolution Gaussian template ``float32[T, T, channels]``, bilinearly
  upsampled to ``S x S`` so it is spatially smooth (a ConvNet, random crops
  and flips then behave as on natural images), and
  ``image = clip(0.5 + 0.25 * template + noise * eps, 0, 1)`` with per-pixel
  ``eps ~ N(0, 1)``. The clip keeps images in the range the colour
  augmentations assume; it makes the model a *clipped* Gaussian mixture.

Every example stores ``label: ClassLabel(C)``. Classes are balanced: each has
``train_per_class`` training and ``test_per_class`` test examples. All values
come from NumPy's PCG64 generator seeded with ``seed`` (class means) and
``(seed, split)`` (noise), so two prepares with the same configuration give
identical data.

Named configurations (``BUILDER_CONFIGS``) cover the common cases; any other
parameters go through :func:`gaussian_mixture_config`, whose canonical name
(for example ``vectors_c7_d32_n500_t100_noise1.0_seed0``) TFDS also accepts as
a config name, so
``"cljax_gaussian_mixture/vectors_c7_d32_n500_t100_noise1.0_seed0"`` works
anywhere a dataset name does, and a sweep over the number of classes is a
sweep over strings. Features are ``tfds.features.Tensor`` (not ``Image``), so
preparing and reading need no TensorFlow.
"""

from __future__ import annotations

import dataclasses
import re

import numpy as np
import tensorflow_datasets as tfds

from cljax.data import _embedded

NAME = "cljax_gaussian_mixture"
_KINDS = ("vectors", "images")

# Canonical config names: every parameter appears, so the name identifies the
# data exactly and can be parsed back. `noise` uses repr(), which round-trips.
_VECTORS_RE = re.compile(
    r"^vectors_c(?P<num_classes>\d+)_d(?P<dim>\d+)_n(?P<train_per_class>\d+)"
    r"_t(?P<test_per_class>\d+)_noise(?P<noise>[0-9.e+-]+)_seed(?P<seed>\d+)$")
_IMAGES_RE = re.compile(
    r"^images_c(?P<num_classes>\d+)_s(?P<image_size>\d+)_ch(?P<channels>\d+)"
    r"_tpl(?P<template_size>\d+)_n(?P<train_per_class>\d+)"
    r"_t(?P<test_per_class>\d+)_noise(?P<noise>[0-9.e+-]+)_seed(?P<seed>\d+)$")


@dataclasses.dataclass(eq=False)
class GaussianMixtureConfig(tfds.core.BuilderConfig):
  """Parameters of one Gaussian-mixture dataset.

  Attributes:
    kind: ``"vectors"`` (feature ``x: float32[dim]``) or ``"images"``
      (feature ``image: float32[image_size, image_size, channels]``).
    num_classes: number of classes ``C >= 2``.
    dim: vector dimension ``D`` (vectors only).
    image_size: image side ``S`` (images only).
    channels: image channels, 1 or 3 (images only).
    template_size: side ``T`` of the per-class template before upsampling
      (images only; ``1 <= T <= S``).
    train_per_class: training examples per class.
    test_per_class: test examples per class.
    noise: vectors: RMS distance to the class mean; images: per-pixel standard
      deviation before clipping.
    seed: seed of the class means and of the noise.
  """

  kind: str = "vectors"
  num_classes: int = 10
  dim: int = 32
  image_size: int = 16
  channels: int = 3
  template_size: int = 4
  train_per_class: int = 500
  test_per_class: int = 100
  noise: float = 1.0
  seed: int = 0


def _validate(cfg: GaussianMixtureConfig) -> None:
  if cfg.kind not in _KINDS:
    raise ValueError(f"`kind` must be one of {_KINDS}; got {cfg.kind!r}.")
  if cfg.num_classes < 2:
    raise ValueError(
        f"`num_classes` must be >= 2 (a contrastive task needs negatives); "
        f"got {cfg.num_classes}.")
  for field in ("dim", "image_size", "template_size", "train_per_class",
                "test_per_class"):
    if getattr(cfg, field) < 1:
      raise ValueError(f"`{field}` must be >= 1; got {getattr(cfg, field)}.")
  if cfg.channels not in (1, 3):
    raise ValueError(
        f"`channels` must be 1 (grayscale) or 3 (RGB), the layouts the "
        f"augmentations support; got {cfg.channels}.")
  if cfg.template_size > cfg.image_size:
    raise ValueError(
        f"`template_size` ({cfg.template_size}) must not exceed `image_size` "
        f"({cfg.image_size}); the template is upsampled, never downsampled.")
  if not cfg.noise >= 0:
    raise ValueError(f"`noise` must be >= 0; got {cfg.noise}.")
  if cfg.seed < 0:
    raise ValueError(f"`seed` must be a non-negative integer; got {cfg.seed}.")


def canonical_name(*, kind: str, num_classes: int, dim: int = 32,
                   image_size: int = 16, channels: int = 3,
                   template_size: int = 4, train_per_class: int = 500,
                   test_per_class: int = 100, noise: float = 1.0,
                   seed: int = 0) -> str:
  """The config name that encodes every parameter (parsed back by TFDS)."""
  noise = repr(float(noise))
  if kind == "vectors":
    return (f"vectors_c{num_classes}_d{dim}_n{train_per_class}"
            f"_t{test_per_class}_noise{noise}_seed{seed}")
  return (f"images_c{num_classes}_s{image_size}_ch{channels}"
          f"_tpl{template_size}_n{train_per_class}_t{test_per_class}"
          f"_noise{noise}_seed{seed}")


def gaussian_mixture_config(*, kind: str = "vectors", num_classes: int,
                            dim: int = 32, image_size: int = 16,
                            channels: int = 3, template_size: int = 4,
                            train_per_class: int = 500,
                            test_per_class: int = 100, noise: float = 1.0,
                            seed: int = 0) -> GaussianMixtureConfig:
  """A custom Gaussian-mixture config with a canonical, parseable name.

  Use its name as ``f"cljax_gaussian_mixture/{cfg.name}"`` in a data config,
  or pass the object as ``tfds.builder("cljax_gaussian_mixture", config=cfg)``.
  Parameters are documented on :class:`GaussianMixtureConfig`.

  Returns:
    A validated :class:`GaussianMixtureConfig`.

  Raises:
    ValueError: a parameter is out of range.

  Examples:
    >>> from cljax import data
    >>> data.gaussian_mixture_config(num_classes=7, dim=16).name
    'vectors_c7_d16_n500_t100_noise1.0_seed0'
  """
  params = dict(kind=kind, num_classes=int(num_classes), dim=int(dim),
                image_size=int(image_size), channels=int(channels),
                template_size=int(template_size),
                train_per_class=int(train_per_class),
                test_per_class=int(test_per_class), noise=float(noise),
                seed=int(seed))
  cfg = GaussianMixtureConfig(
      name=canonical_name(**params),
      description=f"Gaussian mixture ({kind}), custom parameters.", **params)
  _validate(cfg)
  return cfg


def parse_config_name(name: str) -> GaussianMixtureConfig | None:
  """Parses a canonical config name back into a config (None if not one)."""
  for kind, regex in (("vectors", _VECTORS_RE), ("images", _IMAGES_RE)):
    match = regex.match(name)
    if match:
      values = match.groupdict()
      noise = float(values.pop("noise"))
      return gaussian_mixture_config(
          kind=kind, noise=noise, **{k: int(v) for k, v in values.items()})
  return None


def _named(name: str, **params) -> GaussianMixtureConfig:
  cfg = GaussianMixtureConfig(name=name, description=f"Gaussian mixture: "
                              f"{params}", **params)
  _validate(cfg)
  return cfg


def _upsample_matrix(out_size: int, in_size: int) -> np.ndarray:
  """Bilinear interpolation weights float64[out, in] (pixel-centre aligned)."""
  # Output pixel centre o+0.5 maps to input coordinate (o+0.5)*in/out - 0.5,
  # clamped at the borders (the usual half-pixel convention).
  coords = (np.arange(out_size) + 0.5) * in_size / out_size - 0.5
  coords = np.clip(coords, 0, in_size - 1)
  lo = np.floor(coords).astype(int)
  hi = np.minimum(lo + 1, in_size - 1)
  frac = coords - lo
  weights = np.zeros((out_size, in_size))
  weights[np.arange(out_size), lo] += 1 - frac
  weights[np.arange(out_size), hi] += frac
  return weights


def generate(cfg: GaussianMixtureConfig, split: str
             ) -> tuple[np.ndarray, np.ndarray]:
  """All examples of one split, in class-major order.

  Args:
    cfg: the dataset parameters.
    split: ``"train"`` or ``"test"``.

  Returns:
    ``(x, labels)``: ``x`` is ``float32[N, D]`` (vectors) or
    ``float32[N, S, S, channels]`` (images), ``labels`` is ``int64[N]`` with
    ``N = num_classes * {train,test}_per_class``.
  """
  split_id = {"train": 0, "test": 1}[split]
  per_class = cfg.train_per_class if split == "train" else cfg.test_per_class
  labels = np.repeat(np.arange(cfg.num_classes), per_class)
  # Class structure depends on `seed` only, so train and test share it.
  structure_rng = np.random.default_rng(np.random.SeedSequence([cfg.seed, 0]))
  noise_rng = np.random.default_rng(
      np.random.SeedSequence([cfg.seed, 1, split_id]))
  if cfg.kind == "vectors":
    means = structure_rng.standard_normal((cfg.num_classes, cfg.dim))
    means /= np.linalg.norm(means, axis=1, keepdims=True)
    eps = noise_rng.standard_normal((labels.size, cfg.dim))
    x = means[labels] + cfg.noise * eps / np.sqrt(cfg.dim)
  else:
    t, s = cfg.template_size, cfg.image_size
    templates = structure_rng.standard_normal(
        (cfg.num_classes, t, t, cfg.channels))
    up = _upsample_matrix(s, t)
    templates = np.einsum("ij,cjkl,mk->ciml", up, templates, up)
    eps = noise_rng.standard_normal((labels.size, s, s, cfg.channels))
    x = np.clip(0.5 + 0.25 * templates[labels] + cfg.noise * eps, 0.0, 1.0)
  return x.astype(np.float32), labels.astype(np.int64)


class GaussianMixture(_embedded.EmbeddedBuilder):
  """TFDS builder of the Gaussian-mixture data model (see module docstring)."""

  name = NAME
  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "Initial release."}
  BUILDER_CONFIGS = [
      _named("vectors_c10", kind="vectors", num_classes=10, dim=32,
             train_per_class=500, test_per_class=100, noise=1.0, seed=0),
      _named("vectors_c100", kind="vectors", num_classes=100, dim=128,
             train_per_class=100, test_per_class=20, noise=1.0, seed=0),
      _named("images_c10", kind="images", num_classes=10, image_size=16,
             channels=3, template_size=4, train_per_class=500,
             test_per_class=100, noise=0.1, seed=0),
      _named("images_c100", kind="images", num_classes=100, image_size=16,
             channels=3, template_size=4, train_per_class=100,
             test_per_class=20, noise=0.1, seed=0),
      # The main job's data: at noise 0.1 a few hundred steps already
      # classify every image, so its metrics and figures stay at 1.0; at
      # 0.5 (a third of the pixels clipped) they move over training.
      _named("images_c10_noisy", kind="images", num_classes=10,
             image_size=16, channels=3, template_size=4, train_per_class=500,
             test_per_class=100, noise=0.5, seed=0),
  ]
  DEFAULT_BUILDER_CONFIG_NAME = "vectors_c10"

  def _create_builder_config(self, builder_config, version):
    # Let TFDS accept canonical custom names ("vectors_c7_d16_...") the same
    # way it accepts the named configs, so a name string is all a data config
    # needs.
    if (isinstance(builder_config, str) and ":" not in builder_config
        and self.get_builder_config(builder_config) is None):
      parsed = parse_config_name(builder_config)
      if parsed is None:
        raise ValueError(
            f"Unknown {NAME} config {builder_config!r}. Use a named config "
            f"({', '.join(c.name for c in self.BUILDER_CONFIGS)}) or the name "
            f"of `gaussian_mixture_config(...)`, e.g. "
            f"{canonical_name(kind='vectors', num_classes=7)!r} or "
            f"{canonical_name(kind='images', num_classes=7)!r}.")
      builder_config = parsed
    return super()._create_builder_config(builder_config, version)

  def _info(self) -> tfds.core.DatasetInfo:
    cfg = self.builder_config
    if cfg.kind == "vectors":
      key = "x"
      feature = tfds.features.Tensor(shape=(cfg.dim,), dtype=np.float32)
    else:
      key = "image"
      feature = tfds.features.Tensor(
          shape=(cfg.image_size, cfg.image_size, cfg.channels),
          dtype=np.float32)
    # DatasetInfo is built directly: `dataset_info_from_configs` would look for
    # metadata files next to this module.
    return tfds.core.DatasetInfo(
        builder=self,
        description=__doc__.split("\n\n")[0],
        features=tfds.features.FeaturesDict({
            key: feature,
            "label": tfds.features.ClassLabel(num_classes=cfg.num_classes),
        }),
        supervised_keys=(key, "label"),
    )

  def _split_generators(self, dl_manager):
    del dl_manager  # Nothing to download: the data is generated.
    return {split: self._generate_examples(split)
            for split in ("train", "test")}

  def _generate_examples(self, split):
    key = "x" if self.builder_config.kind == "vectors" else "image"
    x, labels = generate(self.builder_config, split)
    for i in range(labels.size):
      yield i, {key: x[i], "label": labels[i]}
