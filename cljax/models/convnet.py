"""A small ConvNet for 8x8 to 32x32 images that trains on a laptop CPU.

Sized for the CPU-scale experiments (the miniature versions of P1-P3 on
CIFAR-like or synthetic images): with the default widths ``(32, 64, 128)`` a
32x32x3 image costs about 10M multiply-adds forward, roughly 1/50 of a CIFAR
ResNet-18 (0.56G). Measured on a busy 2-core CPU, one SGD step (forward and
backward, with a 512-wide MLP head) on 512 images of 32x32 takes about 2 s;
``widths=(16, 32, 64)`` about 0.7 s; ResNet-18 at width 0.25 about 7 s.
"""

from __future__ import annotations

from typing import Any, Optional, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from cljax.models import _layers


class ConvNet(nn.Module):
  """Blocks of ``(Conv3x3 -> [BN] -> act) x convs_per_block``, max-pool between.

  Block ``i`` has ``widths[i]`` channels. A 2x2 stride-2 max-pool follows every
  block except the last, whose output is globally average-pooled into the
  feature vector. The pool pads ("SAME"), so an odd or tiny map shrinks to
  ``ceil(H / 2)`` and never to zero: any ``H, W >= 1`` works, 8x8 to 32x32 is
  the intended range.

  Attributes:
    widths: channels of each block; the feature dimension is ``widths[-1]``.
    convs_per_block: 3x3 convolutions per block.
    activation: name in ``_layers.ACTIVATIONS``.
    use_bn: BatchNorm after each convolution (then the conv has no bias).
    dtype: compute dtype; parameters stay float32.
    bn_axis_name: mapped axis to average BN statistics over under
      ``shard_map``/``pmap`` (not needed under ``jit``).
  """
  widths: Sequence[int] = (32, 64, 128)
  convs_per_block: int = 1
  activation: str = "relu"
  use_bn: bool = True
  dtype: Any = jnp.float32
  bn_axis_name: Optional[str] = None

  def __post_init__(self):
    _layers.check_positive_ints(self.widths, "widths", "ConvNet")
    _layers.check_positive_ints((self.convs_per_block,), "convs_per_block",
                                "ConvNet")
    _layers.get_activation(self.activation)
    super().__post_init__()

  @nn.compact
  def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
    """Encodes a batch of images.

    Args:
      x: ``float[B, H, W, C]`` images (NHWC).
      train: BN uses batch statistics and updates ``batch_stats`` when True.

    Returns:
      Features ``h``: ``[B, widths[-1]]`` in the compute dtype.

    Raises:
      ValueError: if ``x`` is not a rank-4 float array.
    """
    _layers.check_images(x, "ConvNet")
    widths = _layers.check_positive_ints(self.widths, "widths", "ConvNet")
    act = _layers.get_activation(self.activation)
    for i, width in enumerate(widths):
      for j in range(self.convs_per_block):
        x = nn.Conv(width, (3, 3), padding=((1, 1), (1, 1)),
                    use_bias=not self.use_bn, dtype=self.dtype,
                    param_dtype=jnp.float32,
                    kernel_init=_layers.kaiming_normal_fan_out,
                    name=f"conv_{i}_{j}")(x)
        if self.use_bn:
          x = _layers.batch_norm(train, dtype=self.dtype,
                                 axis_name=self.bn_axis_name,
                                 name=f"bn_{i}_{j}")(x)
        x = act(x)
      if i < len(widths) - 1:
        x = nn.max_pool(x, (2, 2), strides=(2, 2), padding="SAME")
    # Reduce in float32: a bfloat16 mean over many positions loses digits.
    return jnp.mean(x, axis=(1, 2), dtype=jnp.float32).astype(x.dtype)
