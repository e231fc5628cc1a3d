"""MLP encoder for vector data and flattened small images.

The encoder of the small-scale experiments (Gaussian-mixture classes, P1's gap
versus the number of classes; P2's noisy-label miniature): a stack of
``Dense -> [BatchNorm] -> activation`` layers whose last output is the feature
vector ``h``.
"""

from __future__ import annotations

from typing import Any, Optional, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from cljax.models import _layers


class MLPEncoder(nn.Module):
  """``Dense -> [BN] -> act`` repeated; inputs are flattened to vectors.

  Layer ``i`` maps to ``widths[i]`` features. A Dense layer followed by
  BatchNorm has no bias, because BatchNorm's mean subtraction would cancel it
  (its shift plays that role).

  Attributes:
    widths: output width of each layer; the feature dimension is
      ``widths[-1]``.
    activation: name in ``_layers.ACTIVATIONS`` (``"relu"``, ``"gelu"``, ...).
    use_bn: BatchNorm after every Dense layer that is followed by an
      activation. Off by default so that a sample's features do not depend on
      the rest of its batch (convenient for theory experiments).
    activate_final: apply BN/activation after the last layer too, so features
      are post-activation like a ResNet's pooled features. False makes the
      last layer a plain affine map.
    dtype: compute dtype; parameters stay float32.
    bn_axis_name: mapped axis to average BN statistics over under
      ``shard_map``/``pmap`` (not needed under ``jit``).
  """
  widths: Sequence[int] = (512, 512)
  activation: str = "relu"
  use_bn: bool = False
  activate_final: bool = True
  dtype: Any = jnp.float32
  bn_axis_name: Optional[str] = None

  def __post_init__(self):
    # Fail at construction (i.e. in models.build), not deep inside init.
    _layers.check_positive_ints(self.widths, "widths", "MLPEncoder")
    _layers.get_activation(self.activation)
    super().__post_init__()

  @nn.compact
  def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
    """Encodes a batch.

    Args:
      x: ``float[B, D]`` vectors, or ``float[B, ...]`` (e.g. ``[B, H, W, C]``
        images), flattened to ``[B, prod(...)]``.
      train: BN uses batch statistics and updates ``batch_stats`` when True.

    Returns:
      Features ``h``: ``[B, widths[-1]]`` in the compute dtype.
    """
    if x.ndim < 2:
      raise ValueError(
          f"MLPEncoder expects a batch [B, D] (or [B, ...], flattened); got "
          f"shape {tuple(x.shape)}. Add a batch axis with x[None].")
    _layers.check_float(x, "MLPEncoder")
    widths = _layers.check_positive_ints(self.widths, "widths", "MLPEncoder")
    act = _layers.get_activation(self.activation)
    x = x.reshape(x.shape[0], -1)
    for i, width in enumerate(widths):
      activated = i < len(widths) - 1 or self.activate_final
      normed = self.use_bn and activated
      x = nn.Dense(width, use_bias=not normed, dtype=self.dtype,
                   param_dtype=jnp.float32, name=f"dense_{i}")(x)
      if normed:
        x = _layers.batch_norm(train, dtype=self.dtype,
                               axis_name=self.bn_axis_name, name=f"bn_{i}")(x)
      if activated:
        x = act(x)
    return x
