"""Multi-view augmentations in JAX, applied on device inside or beside jit.

:func:`make_views` turns a batch ``[B, ...]`` into ``K`` views per example,
``[B, K, ...]``, the layout every cljax loss takes. Each (example, view) pair
gets its own key from ``jax.random.split``, the work is ``vmap``-ed over both
axes (no Python loop over the batch), and the result is a pure function of
``key``: the train loop derives the key from ``fold_in(base_key, step)`` and a
resumed run augments bit-identically.

Modes (``config["mode"]``):

* ``"simclr"``: random resized crop (area scale ``crop_scale`` = 0.08-1,
  aspect ``crop_ratio`` = 3/4-4/3, resized bilinearly back to the input size),
  horizontal flip with ``flip_prob`` = 0.5, colour jitter with probability
  ``jitter_prob`` = 0.8, grayscale with ``grayscale_prob`` = 0.2, no blur, as
  in SimCLR's CIFAR recipe. Colour jitter follows torchvision's
  ``ColorJitter(b, c, s, h)`` (P1 is a PyTorch code base): brightness
  multiplies by ``U[1-b, 1+b]``, contrast blends with the mean grey level by
  ``U[1-c, 1+c]``, saturation blends with the per-pixel grey image by
  ``U[1-s, 1+s]``, hue shifts by ``U[-h, h]`` turns; the four ops run in a
  random order and each clips to ``[0, 1]``. Strength ``s`` gives SimCLR's
  ``(0.8s, 0.8s, 0.8s, 0.2s)``:

  ====================================  ==========================  =====
  recipe                                ``(b, c, s, h)``            p
  ====================================  ==========================  =====
  P1 CIFAR/SVHN, SimCLR CIFAR (s=0.5)   (0.4, 0.4, 0.4, 0.1)        0.8
  P1 ImageNet (s=1.0)                   (0.8, 0.8, 0.8, 0.2)        1.0
  P3 UCL folder, CIFAR-10/STL-10        (0.4, 0.4, 0.4, 0.1)        0.8
  ====================================  ==========================  =====

  ``color_jitter=(b, c, s, h)`` overrides ``jitter_strength``. P1's
  ImageNet blur is not implemented. For 1-channel images saturation, hue and
  grayscale are no-ops (the grey image *is* the image); brightness and
  contrast still apply.
* ``"crop_flip"``: zero-pad by ``pad`` = 4, random crop back to the input
  size, horizontal flip with ``flip_prob`` (P2's "standard" augmentation).
* ``"noise"``: ``x + noise_std * N(0, 1)``, for vector data.
* ``"identity"``: ``K`` exact copies (P3's CIFAR-100 runs, P2's no-aug runs).

Inputs must be float images in ``[0, 1]`` with layout ``[B, H, W, C]`` (the
colour ops assume that range): normalise *after* augmenting, with
:func:`normalize`.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

MODES = ("simclr", "crop_flip", "noise", "identity")

# One flat set of fields for every mode: a mode reads the fields it needs and
# ignores the rest, so a locked ml_collections config can switch `mode` from
# the command line without adding fields.
DEFAULTS = {
    "mode": "simclr",
    "crop_scale": (0.08, 1.0),
    "crop_ratio": (3.0 / 4.0, 4.0 / 3.0),
    "flip_prob": 0.5,
    "jitter_strength": 0.5,
    "color_jitter": None,
    "jitter_prob": 0.8,
    "grayscale_prob": 0.2,
    "pad": 4,
    "noise_std": 0.1,
}

# torchvision's rgb_to_grayscale weights (ITU-R 601-2 luma).
_LUMA = (0.2989, 0.587, 0.114)
_CROP_TRIES = 10


def default_config(mode: str = "simclr") -> dict[str, Any]:
  """All augmentation fields with their defaults, for the given mode."""
  cfg = dict(DEFAULTS)
  cfg["mode"] = mode
  return resolve_config(cfg)


def resolve_config(config: str | Mapping[str, Any] | None) -> dict[str, Any]:
  """Validates an augmentation config and fills in defaults.

  Args:
    config: a mode name, or a mapping (dict, ``ml_collections.ConfigDict``)
      with ``mode`` and any fields of :data:`DEFAULTS`.

  Returns:
    A plain dict with every field of :data:`DEFAULTS`.

  Raises:
    ValueError: unknown mode or field, or a value out of range.
  """
  if config is None:
    raise ValueError(
        f"An augmentation config is required; pass a mode name from {MODES} "
        f"or a mapping such as `default_config('simclr')`.")
  if isinstance(config, str):
    config = {"mode": config}
  if hasattr(config, "to_dict"):
    config = config.to_dict()
  unknown = sorted(set(config) - set(DEFAULTS))
  if unknown:
    raise ValueError(
        f"Unknown augmentation fields {unknown}; valid fields are "
        f"{sorted(DEFAULTS)}.")
  cfg = {**DEFAULTS, **config}
  if cfg["mode"] not in MODES:
    raise ValueError(
        f"Unknown augmentation mode {cfg['mode']!r}; `mode` must be one of "
        f"{MODES}.")
  for name in ("flip_prob", "jitter_prob", "grayscale_prob"):
    if not 0.0 <= cfg[name] <= 1.0:
      raise ValueError(f"`{name}` is a probability in [0, 1]; got {cfg[name]}.")
  lo, hi = cfg["crop_scale"]
  if not 0.0 < lo <= hi <= 1.0:
    raise ValueError(
        f"`crop_scale` must satisfy 0 < min <= max <= 1 (fractions of the "
        f"image area); got {cfg['crop_scale']}.")
  lo, hi = cfg["crop_ratio"]
  if not 0.0 < lo <= hi:
    raise ValueError(
        f"`crop_ratio` must satisfy 0 < min <= max; got {cfg['crop_ratio']}.")
  if int(cfg["pad"]) != cfg["pad"] or cfg["pad"] < 0:
    raise ValueError(f"`pad` must be a non-negative int; got {cfg['pad']}.")
  if cfg["noise_std"] < 0 or cfg["jitter_strength"] < 0:
    raise ValueError("`noise_std` and `jitter_strength` must be >= 0.")
  jitter = jitter_params(cfg)
  if min(jitter) < 0 or jitter[3] > 0.5:
    raise ValueError(
        f"`color_jitter` (brightness, contrast, saturation, hue) must be >= 0 "
        f"with hue <= 0.5; got {jitter}.")
  cfg["crop_scale"] = tuple(float(v) for v in cfg["crop_scale"])
  cfg["crop_ratio"] = tuple(float(v) for v in cfg["crop_ratio"])
  return cfg


def jitter_params(config: Mapping[str, Any]) -> tuple[float, ...]:
  """``(brightness, contrast, saturation, hue)`` of a resolved config."""
  if config.get("color_jitter") is not None:
    values = tuple(float(v) for v in config["color_jitter"])
    if len(values) != 4:
      raise ValueError(
          f"`color_jitter` must be (brightness, contrast, saturation, hue); "
          f"got {config['color_jitter']}.")
    return values
  s = float(config.get("jitter_strength", DEFAULTS["jitter_strength"]))
  return (0.8 * s, 0.8 * s, 0.8 * s, 0.2 * s)


def normalize(x: jax.typing.ArrayLike, mean: jax.typing.ArrayLike,
              std: jax.typing.ArrayLike) -> jax.Array:
  """``(x - mean) / std`` over the trailing channel axis.

  Args:
    x: ``float[..., C]`` images in ``[0, 1]`` (any leading axes: ``[B, H, W,
      C]`` or views ``[B, K, H, W, C]``).
    mean: ``float[C]`` per-channel mean.
    std: ``float[C]`` per-channel standard deviation.

  Returns:
    ``float[..., C]``, same shape and dtype as ``x``.
  """
  x = jnp.asarray(x)
  return ((x - jnp.asarray(mean, x.dtype)) / jnp.asarray(std, x.dtype))


def make_views(key: jax.Array, images: jax.typing.ArrayLike, num_views: int,
               config: str | Mapping[str, Any]) -> jax.Array:
  """``num_views`` random views of every example.

  Jittable (``num_views`` and ``config`` are static Python values; close over
  them). The output for example ``i``, view ``k`` depends only on ``key``,
  ``B``, ``i``, ``k`` and the image.

  Args:
    key: a PRNG key.
    images: ``float[B, H, W, C]`` in ``[0, 1]`` for ``"simclr"`` and
      ``"crop_flip"`` (``C`` = 1 or 3 when colour ops are on); ``float[B,
      ...]`` for ``"noise"`` and ``"identity"``.
    num_views: ``K >= 1``.
    config: a mode name or an augmentation config (see module docstring and
      :data:`DEFAULTS`).

  Returns:
    ``float[B, K, ...]`` views, same dtype as ``images``. ``"simclr"`` and
    ``"crop_flip"`` stay in ``[0, 1]``.

  Raises:
    ValueError: bad config, ``num_views < 1``, non-float input, or a layout
      the mode cannot handle.

  Examples:
    >>> import jax
    >>> import jax.numpy as jnp
    >>> from cljax import data
    >>> x = jnp.zeros((4, 8, 8, 3))
    >>> data.make_views(jax.random.key(0), x, 2, "crop_flip").shape
    (4, 2, 8, 8, 3)
  """
  cfg = resolve_config(config)
  if int(num_views) != num_views or num_views < 1:
    raise ValueError(f"`num_views` must be an int >= 1; got {num_views}.")
  images = jnp.asarray(images)
  if not jnp.issubdtype(images.dtype, jnp.floating):
    raise ValueError(
        f"`images` must be floating point in [0, 1]; got {images.dtype}. "
        f"Convert uint8 with `x.astype(jnp.float32) / 255`.")
  mode = cfg["mode"]
  if images.ndim < 2:
    raise ValueError(
        f"`images` must have a batch axis, [B, ...]; got shape {images.shape}.")
  batch = images.shape[0]
  if mode == "identity":
    return jnp.broadcast_to(images[:, None],
                            (batch, num_views) + images.shape[1:])
  if mode in ("simclr", "crop_flip"):
    if images.ndim != 4:
      raise ValueError(
          f"Mode {mode!r} needs images [B, H, W, C]; got shape "
          f"{images.shape}. Use mode 'noise' or 'identity' for vectors.")
    if mode == "simclr" and images.shape[-1] not in (1, 3) and (
        _jitter_active(cfg) or cfg["grayscale_prob"] > 0):
      raise ValueError(
          f"Colour jitter and grayscale need 1 or 3 channels; got "
          f"{images.shape[-1]}. Set `jitter_prob=0` and `grayscale_prob=0`.")
  one_view = functools.partial(_VIEW_FNS[mode], cfg=cfg)
  keys = jax.random.split(key, batch * num_views)
  keys = _shard_like_batch(
      keys.reshape((batch, num_views) + keys.shape[1:]), images)
  per_example = jax.vmap(one_view, in_axes=(0, None))   # over views
  return jax.vmap(per_example, in_axes=(0, 0))(keys, images)  # over batch


def _shard_like_batch(keys: jax.Array, images: jax.Array) -> jax.Array:
  """Gives the per-example keys the batch-axis sharding of ``images``.

  On an Explicit mesh (JAX's default) ``vmap`` requires all mapped inputs to
  be sharded alike along the mapped axis, and the freshly split keys are
  replicated while the global batch is sharded on ``"data"``. On unsharded
  inputs and Auto meshes this is a no-op. The keys' values do not depend on
  their sharding, so the views are the same on any device count.
  """
  sharding = jax.typeof(images).sharding
  mesh = getattr(sharding, "mesh", None)
  spec = getattr(sharding, "spec", ())
  if mesh is None or mesh.empty or not spec or spec[0] is None:
    return keys
  return jax.reshard(
      keys, NamedSharding(mesh, P(spec[0], *([None] * (keys.ndim - 1)))))


def _jitter_active(cfg: Mapping[str, Any]) -> bool:
  return cfg["jitter_prob"] > 0 and max(jitter_params(cfg)) > 0


# ----------------------------------------------------------------------------
# One view of one example. Shapes are static; every random choice is traced.
# Each view draws all its uniforms in ONE `jax.random.uniform` call and slices
# them: every call site inlines a threefry hash, and on CPU a dozen of them
# made the SimCLR pipeline take several times longer to compile.

# Layout of the per-view uniform vector of "simclr".
_U_AREA = slice(0, _CROP_TRIES)
_U_RATIO = slice(_CROP_TRIES, 2 * _CROP_TRIES)
_U_OFFSET = slice(2 * _CROP_TRIES, 2 * _CROP_TRIES + 2)
_U_FLIP = 2 * _CROP_TRIES + 2
_U_JITTER_APPLY = _U_FLIP + 1
_U_GRAY = _U_FLIP + 2
_U_JITTER = slice(_U_FLIP + 3, _U_FLIP + 11)  # 4 factors, 4 order keys
_SIMCLR_UNIFORMS = _U_FLIP + 11


def _simclr_view(key, img, *, cfg):
  u = jax.random.uniform(key, (_SIMCLR_UNIFORMS,))
  img = _random_resized_crop(u[_U_AREA], u[_U_RATIO], u[_U_OFFSET], img,
                             cfg["crop_scale"], cfg["crop_ratio"])
  img = _maybe_flip(u[_U_FLIP], img, cfg["flip_prob"])
  if _jitter_active(cfg):
    jittered = _color_jitter(u[_U_JITTER], img, jitter_params(cfg))
    img = jnp.where(u[_U_JITTER_APPLY] < cfg["jitter_prob"], jittered, img)
  if cfg["grayscale_prob"] > 0 and img.shape[-1] == 3:
    img = jnp.where(u[_U_GRAY] < cfg["grayscale_prob"], _grayscale(img), img)
  return jnp.clip(img, 0.0, 1.0)


def _crop_flip_view(key, img, *, cfg):
  u = jax.random.uniform(key, (3,))
  pad = int(cfg["pad"])
  if pad:
    padded = jnp.pad(img, ((pad, pad), (pad, pad), (0, 0)))
    # Offsets uniform over 0..2*pad; min() guards the u -> 1 rounding edge.
    offset = jnp.minimum(jnp.floor(u[:2] * (2 * pad + 1)),
                         2 * pad).astype(jnp.int32)
    img = jax.lax.dynamic_slice(padded, (offset[0], offset[1], 0), img.shape)
  return _maybe_flip(u[2], img, cfg["flip_prob"])


def _noise_view(key, x, *, cfg):
  return x + cfg["noise_std"] * jax.random.normal(key, x.shape, x.dtype)


_VIEW_FNS = {"simclr": _simclr_view, "crop_flip": _crop_flip_view,
             "noise": _noise_view}


def _maybe_flip(u, img, prob):
  """Horizontal flip when the uniform ``u < prob``."""
  if prob <= 0:
    return img
  return jnp.where(u < prob, img[:, ::-1], img)


def _random_resized_crop(u_area, u_ratio, u_offset, img, scale, ratio):
  """torchvision's RandomResizedCrop box sampling, vectorised over tries.

  Ten candidate boxes (area fraction uniform in ``scale``, log aspect ratio
  uniform in ``log(ratio)``) are drawn at once and the first that fits is
  used; if none fits, the central crop with the aspect ratio clamped to
  ``ratio`` (torchvision's fallback). Sizes and offsets are integers, as there.

  Args:
    u_area, u_ratio: ``float[10]`` uniforms for the candidate boxes.
    u_offset: ``float[2]`` uniforms for the top-left corner.
    img: ``float[H, W, C]``.
    scale, ratio: ``(min, max)`` pairs.
  """
  height, width = img.shape[0], img.shape[1]
  area = height * width * (scale[0] + (scale[1] - scale[0]) * u_area)
  log_lo, log_hi = math.log(ratio[0]), math.log(ratio[1])
  aspect = jnp.exp(log_lo + (log_hi - log_lo) * u_ratio)
  w = jnp.round(jnp.sqrt(area * aspect))
  h = jnp.round(jnp.sqrt(area / aspect))
  fits = (w >= 1) & (w <= width) & (h >= 1) & (h <= height)
  first = jnp.argmax(fits)
  # Static fallback box (depends only on shapes and `ratio`).
  in_ratio = width / height
  if in_ratio < ratio[0]:
    fw, fh = width, round(width / ratio[0])
  elif in_ratio > ratio[1]:
    fw, fh = round(height * ratio[1]), height
  else:
    fw, fh = width, height
  found = fits.any()
  h = jnp.where(found, h[first], fh)
  w = jnp.where(found, w[first], fw)
  y0 = jnp.where(found, jnp.floor(u_offset[0] * (height - h + 1)),
                 (height - fh) // 2)
  x0 = jnp.where(found, jnp.floor(u_offset[1] * (width - w + 1)),
                 (width - fw) // 2)
  return _crop_and_resize(img, y0, x0, h, w)


def _crop_and_resize(img, y0, x0, h, w):
  """Crops box ``[y0, y0+h) x [x0, x0+w)`` and resizes it to the image size.

  Bilinear with half-pixel centres, clamped at the box edges, like
  torchvision's ``resized_crop`` (the box is never larger than the image, so
  this only upsamples and needs no antialiasing). Written as two small
  interpolation matrices, ``out = Wy @ img @ Wx^T``: cheaper to compile and run
  under ``vmap`` than a general resampler.
  """
  height, width = img.shape[0], img.shape[1]
  wy = _interp_matrix(height, y0, h, img.dtype)  # [H_out, H_in]
  wx = _interp_matrix(width, x0, w, img.dtype)   # [W_out, W_in]
  return jnp.einsum("oi,ijc,pj->opc", wy, img, wx)


def _interp_matrix(size, start, length, dtype):
  """Linear-interpolation weights ``[size, size]`` sampling one box axis."""
  # Output pixel o has its centre at start + (o + 0.5) * length / size - 0.5
  # in input pixel coordinates; clamp to the box so no outside pixel leaks in.
  centres = start + (jnp.arange(size) + 0.5) * (length / size) - 0.5
  centres = jnp.clip(centres, start, start + length - 1)
  lo = jnp.floor(centres)
  frac = (centres - lo).astype(dtype)
  lo = lo.astype(jnp.int32)
  hi = jnp.minimum(lo + 1, size - 1)
  return ((1 - frac)[:, None] * jax.nn.one_hot(lo, size, dtype=dtype)
          + frac[:, None] * jax.nn.one_hot(hi, size, dtype=dtype))


def _gray(img):
  """``[H, W, 1]`` luma of an RGB image; the image itself if 1-channel."""
  if img.shape[-1] == 1:
    return img
  weights = jnp.asarray(_LUMA, img.dtype)
  return jnp.sum(img * weights, axis=-1, keepdims=True)


def _grayscale(img):
  return jnp.broadcast_to(_gray(img), img.shape)


def _blend(img, other, factor):
  return jnp.clip(factor * img + (1.0 - factor) * other, 0.0, 1.0)


def _color_jitter(u, img, strengths):
  """torchvision ColorJitter: the active ops in a random order.

  Args:
    u: ``float[8]`` uniforms: four factors, then four sort keys whose argsort
      is the (uniformly random) order of the ops.
    img: ``float[H, W, C]`` in ``[0, 1]``.
    strengths: ``(brightness, contrast, saturation, hue)``.
  """
  b, c, s, h = strengths
  ops = []

  def factor(ui, x):
    lo = max(0.0, 1.0 - x)
    return lo + (1.0 + x - lo) * ui

  if b > 0:
    fb = factor(u[0], b)
    ops.append(lambda x: jnp.clip(x * fb, 0.0, 1.0))
  if c > 0:
    fc = factor(u[1], c)
    ops.append(lambda x: _blend(x, jnp.mean(_gray(x)), fc))
  # Saturation and hue act on colour only; on a 1-channel image the grey
  # image equals the image, so both are exact no-ops and are skipped.
  if s > 0 and img.shape[-1] == 3:
    fs = factor(u[2], s)
    ops.append(lambda x: _blend(x, _gray(x), fs))
  if h > 0 and img.shape[-1] == 3:
    fh = -h + 2.0 * h * u[3]
    ops.append(lambda x: _adjust_hue(x, fh))
  if not ops:
    return img
  # A random order per example: the loop body holds each op once (a Python
  # loop would inline every op in every slot); under vmap the switch
  # evaluates all branches and selects, which is cheap at CIFAR sizes.
  order = jnp.argsort(u[4:4 + len(ops)])
  return jax.lax.fori_loop(
      0, len(ops), lambda slot, x: jax.lax.switch(order[slot], ops, x), img)


def _adjust_hue(img, shift):
  hsv = _rgb_to_hsv(img)
  hue = jnp.mod(hsv[..., 0] + shift, 1.0)
  return _hsv_to_rgb(jnp.stack([hue, hsv[..., 1], hsv[..., 2]], axis=-1))


def _rgb_to_hsv(img):
  r, g, b = img[..., 0], img[..., 1], img[..., 2]
  maxc = jnp.max(img, axis=-1)
  minc = jnp.min(img, axis=-1)
  flat = maxc == minc
  chroma = maxc - minc
  sat = chroma / jnp.where(flat, 1.0, maxc)
  divisor = jnp.where(flat, 1.0, chroma)
  rc, gc, bc = (maxc - r) / divisor, (maxc - g) / divisor, (maxc - b) / divisor
  hue = jnp.where(maxc == r, bc - gc,
                  jnp.where(maxc == g, 2.0 + rc - bc, 4.0 + gc - rc))
  hue = jnp.where(flat, 0.0, jnp.mod(hue / 6.0, 1.0))
  return jnp.stack([hue, sat, maxc], axis=-1)


def _hsv_to_rgb(hsv):
  h, s, v = hsv[..., 0], hsv[..., 1], hsv[..., 2]
  i = jnp.floor(h * 6.0)
  f = h * 6.0 - i
  i = jnp.mod(i, 6).astype(jnp.int32)
  p = jnp.clip(v * (1.0 - s), 0.0, 1.0)
  q = jnp.clip(v * (1.0 - s * f), 0.0, 1.0)
  t = jnp.clip(v * (1.0 - s * (1.0 - f)), 0.0, 1.0)
  # Sector i of the hue circle picks (r, g, b) from (v, p, q, t).
  table = jnp.stack([
      jnp.stack([v, q, p, p, t, v], axis=-1),
      jnp.stack([t, v, v, q, p, p], axis=-1),
      jnp.stack([p, p, t, v, v, q], axis=-1),
  ], axis=-2)  # [H, W, 3, 6]
  return jnp.take_along_axis(table, i[..., None, None], axis=-1)[..., 0]
