"""ResNet-18 (BasicBlock) and ResNet-50 (Bottleneck) with a switchable stem.

The papers' encoders, re-implemented from the architecture (torchvision's
ResNet v1.5 layout: the stride of a bottleneck sits on its 3x3 conv):

* P2: CIFAR ResNet-18 (``ResNet18(stem="cifar")``), 512-d features. Its 4x4
  average pool on 32x32 inputs is the global average pool used here.
* P3: ResNet-50 with the CIFAR stem (``ResNet50(stem="cifar")``), 2048-d.
* P1: ResNet-50x2 (``ResNet50(width_multiplier=2)``): every convolution's
  channels doubled, stem 128 channels, 4096-d features (SimCLR's "2x"; not
  torchvision's ``wide_resnet50_2``, which widens only the inner 3x3 convs and
  keeps 2048-d features). CIFAR/SVHN stem for 32x32, ImageNet stem for 224.

Stems:

* ``"cifar"``: Conv3x3 stride 1 -> BN -> ReLU, no max-pool.
* ``"imagenet"``: Conv7x7 stride 2 -> BN -> ReLU -> MaxPool3x3 stride 2.

Convolutions have no bias (BN follows each) and Kaiming-normal weights
(``fan_out``, gain 2, untruncated: torchvision's init); BN scales start at 1
and shifts at 0. Padding is explicit and symmetric as in PyTorch, so shapes and
sampling positions match the reference code (Flax's "SAME" pads stride-2 convs
asymmetrically). The output is the globally average-pooled feature vector
``h``; there is no classifier layer.

Parameter counts of the head-less trunks (``params`` only; the BN running
statistics live in ``batch_stats``), checked in ``tests/models/test_models.py``:

=======================  ============  ====================================
encoder                  params        reference
=======================  ============  ====================================
ResNet-18, CIFAR stem    11,168,832    kuangliu CIFAR ResNet18 (11,173,962)
                                       minus its 512*10+10 linear layer
ResNet-50, ImageNet stem 23,508,032    torchvision resnet50 (25,557,032)
                                       minus its 2048*1000+1000 fc layer
ResNet-50, CIFAR stem    23,500,352    the same minus 7*7*3*64 - 3*3*3*64
ResNet-18, ImageNet stem 11,176,512    torchvision resnet18 (11,689,512)
                                       minus its 512*1000+1000 fc layer
ResNet-50x2, CIFAR stem  93,891,712    P1's encoder (measured here; SimCLR
                                       reports ~94M for its R50 2x)
=======================  ============  ====================================
"""

from __future__ import annotations

from typing import Any, Optional, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from cljax.models import _layers

STEMS = ("cifar", "imagenet")
BLOCKS = ("basic", "bottleneck")
# Channels of the four stages at width_multiplier 1 (torchvision's "planes").
_STAGE_WIDTHS = (64, 128, 256, 512)
_BASE_WIDTH = 64


def _conv(features: int, kernel: int, strides: int, dtype: Any,
          name: str) -> nn.Conv:
  # PyTorch-style symmetric padding k // 2: same output size as torch for
  # every stride (3x3/s2 on even H gives H/2 and samples pixels 0, 2, ...).
  pad = kernel // 2
  return nn.Conv(features, (kernel, kernel), strides=(strides, strides),
                 padding=((pad, pad), (pad, pad)), use_bias=False, dtype=dtype,
                 param_dtype=jnp.float32,
                 kernel_init=_layers.kaiming_normal_fan_out, name=name)


class _Block(nn.Module):
  """Fields and norm layers that both residual blocks share.

  Attributes:
    features: channels of the block (the bottleneck's inner channels).
    strides: stride of the block's strided conv and of the shortcut.
    zero_init_residual: start the last BN's scale at 0 so the block begins as
      the identity (Goyal et al. 2017; torchvision's option, off by default).
    dtype: compute dtype.
    bn_axis_name: see ``_layers.batch_norm``.
  """
  features: int
  strides: int = 1
  zero_init_residual: bool = False
  dtype: Any = jnp.float32
  bn_axis_name: Optional[str] = None

  def _norms(self, train: bool) -> tuple[Any, Any]:
    """The BN factory ``bn(name, **kw)`` and the last BN's scale init."""
    bn = lambda name, **kw: _layers.batch_norm(  # noqa: E731
        train, dtype=self.dtype, axis_name=self.bn_axis_name, name=name, **kw)
    last_scale = (nn.initializers.zeros if self.zero_init_residual
                  else nn.initializers.ones)
    return bn, last_scale


class BasicBlock(_Block):
  """ResNet-18/34 block: two 3x3 convs and an identity or 1x1 shortcut.

  Attributes: as ``_Block``; the output has ``features`` channels and the
  first conv carries the stride.
  """

  @nn.compact
  def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
    """``[B, H, W, C] -> [B, H/s, W/s, features]``."""
    bn, last_scale = self._norms(train)
    y = _conv(self.features, 3, self.strides, self.dtype, "conv1")(x)
    y = nn.relu(bn("bn1")(y))
    y = _conv(self.features, 3, 1, self.dtype, "conv2")(y)
    y = bn("bn2", scale_init=last_scale)(y)
    return nn.relu(y + _shortcut(x, y, self.strides, bn, self.dtype))


class Bottleneck(_Block):
  """ResNet-50/101 block: 1x1 reduce, 3x3 (strided), 1x1 expand by 4.

  Attributes: as ``_Block``; the output has ``4 * features`` channels and the
  3x3 conv carries the stride (v1.5).
  """

  expansion = 4  # not a dataclass field: no annotation.

  @nn.compact
  def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
    """``[B, H, W, C] -> [B, H/s, W/s, 4 * features]``."""
    bn, last_scale = self._norms(train)
    y = _conv(self.features, 1, 1, self.dtype, "conv1")(x)
    y = nn.relu(bn("bn1")(y))
    y = _conv(self.features, 3, self.strides, self.dtype, "conv2")(y)
    y = nn.relu(bn("bn2")(y))
    y = _conv(self.features * self.expansion, 1, 1, self.dtype, "conv3")(y)
    y = bn("bn3", scale_init=last_scale)(y)
    return nn.relu(y + _shortcut(x, y, self.strides, bn, self.dtype))


def _shortcut(x: jax.Array, y: jax.Array, strides: int, bn: Any,
              dtype: Any) -> jax.Array:
  """Identity, or a strided 1x1 conv + BN when the shape changes."""
  if x.shape == y.shape:
    return x
  x = _conv(y.shape[-1], 1, strides, dtype, "downsample_conv")(x)
  return bn("downsample_bn")(x)


_BLOCK_CLASSES = {"basic": BasicBlock, "bottleneck": Bottleneck}


class ResNet(nn.Module):
  """ResNet trunk with a CIFAR or ImageNet stem and global average pooling.

  Attributes:
    stage_sizes: blocks per stage, e.g. ``(2, 2, 2, 2)`` for ResNet-18.
    block: ``"basic"`` or ``"bottleneck"``.
    stem: ``"cifar"`` (3x3 stride 1, no max-pool; for 32x32 and smaller) or
      ``"imagenet"`` (7x7 stride 2 + 3x3 stride-2 max-pool; for 224x224).
    width_multiplier: scales every conv's channels, the stem's included
      (``round(c * w)``); 2 is P1's ResNet-50x2. Values below 1 give narrow
      nets for tests and CPU runs.
    zero_init_residual: zero-init the last BN scale of every block.
    dtype: compute dtype; parameters stay float32.
    bn_axis_name: mapped axis to average BN statistics over under
      ``shard_map``/``pmap`` (not needed under ``jit``).
  """
  stage_sizes: Sequence[int] = (2, 2, 2, 2)
  block: str = "basic"
  stem: str = "cifar"
  width_multiplier: float = 1.0
  zero_init_residual: bool = False
  dtype: Any = jnp.float32
  bn_axis_name: Optional[str] = None

  def __post_init__(self):
    name = type(self).__name__
    _layers.check_positive_ints(self.stage_sizes, "stage_sizes", name)
    if self.block not in _BLOCK_CLASSES:
      raise ValueError(
          f"{name}: unknown block {self.block!r}; valid: {list(BLOCKS)}.")
    if self.stem not in STEMS:
      raise ValueError(
          f"{name}: unknown stem {self.stem!r}; valid: {list(STEMS)} "
          "('cifar' for 32x32 inputs, 'imagenet' for 224x224).")
    if (isinstance(self.width_multiplier, bool)
        or not isinstance(self.width_multiplier, (int, float))
        or not self.width_multiplier > 0):
      raise ValueError(
          f"{name}: `width_multiplier` must be a positive number; got "
          f"{self.width_multiplier!r}.")
    super().__post_init__()

  def _width(self, channels: int) -> int:
    return max(1, int(round(channels * self.width_multiplier)))

  @property
  def feature_dim(self) -> int:
    """Dimension of the output features ``h`` (512 / 2048 at width 1)."""
    expansion = 4 if self.block == "bottleneck" else 1
    return self._width(_STAGE_WIDTHS[-1]) * expansion

  @nn.compact
  def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
    """Encodes a batch of images.

    Args:
      x: ``float[B, H, W, C]`` images (NHWC), any ``H, W >= 8`` (smaller
        inputs run too; the spatial map just reaches 1x1 earlier).
      train: BN uses batch statistics and updates ``batch_stats`` when True.

    Returns:
      Features ``h``: ``[B, feature_dim]`` in the compute dtype.

    Raises:
      ValueError: if ``x`` is not a rank-4 float array.
    """
    _layers.check_images(x, type(self).__name__)
    if self.stem == "cifar":
      x = _conv(self._width(_BASE_WIDTH), 3, 1, self.dtype, "stem_conv")(x)
    else:
      x = _conv(self._width(_BASE_WIDTH), 7, 2, self.dtype, "stem_conv")(x)
    x = _layers.batch_norm(train, dtype=self.dtype,
                           axis_name=self.bn_axis_name, name="stem_bn")(x)
    x = nn.relu(x)
    if self.stem == "imagenet":
      # Pads with -inf, as PyTorch's MaxPool2d(3, 2, padding=1).
      x = nn.max_pool(x, (3, 3), strides=(2, 2), padding=((1, 1), (1, 1)))
    block_cls = _BLOCK_CLASSES[self.block]
    for i, num_blocks in enumerate(self.stage_sizes):
      for j in range(num_blocks):
        x = block_cls(
            features=self._width(_STAGE_WIDTHS[i]),
            strides=2 if i > 0 and j == 0 else 1,
            zero_init_residual=self.zero_init_residual,
            dtype=self.dtype,
            bn_axis_name=self.bn_axis_name,
            name=f"layer{i + 1}_{j}")(x, train=train)
    # Reduce in float32: a bfloat16 mean over many positions loses digits.
    return jnp.mean(x, axis=(1, 2), dtype=jnp.float32).astype(x.dtype)


class ResNet18(ResNet):
  """ResNet-18: BasicBlock, stages (2, 2, 2, 2), 512 * width features."""
  stage_sizes: Sequence[int] = (2, 2, 2, 2)
  block: str = "basic"


class ResNet50(ResNet):
  """ResNet-50: Bottleneck, stages (3, 4, 6, 3), 2048 * width features."""
  stage_sizes: Sequence[int] = (3, 4, 6, 3)
  block: str = "bottleneck"
