"""Shared building blocks: BatchNorm, activations, dtypes, input checks.

One place fixes the conventions that the encoders and heads must agree on:

* **BatchNorm** uses ``momentum=0.9`` and ``epsilon=1e-5``. Flax's momentum is
  the weight of the *old* running statistic
  (``ra <- 0.9 * ra + 0.1 * batch``), so 0.9 is PyTorch's ``momentum=0.1``,
  the default of every reference implementation (torchvision, kuangliu's CIFAR
  ResNet). Two small differences from PyTorch remain: Flax stores the biased
  batch variance in ``var`` (PyTorch the unbiased one), and the statistics are
  reduced in float32 even when the compute dtype is bfloat16
  (``force_float32_reductions``).
* **Which batch the statistics come from.** Under ``jax.jit`` over a globally
  sharded batch (cljax's training path) the mean and variance are reductions
  over the *global* batch axis, so BatchNorm is synchronised across devices
  (SimCLR's and P1's sync-BN) with no extra code. Inside ``jax.shard_map`` or
  ``jax.pmap`` each device only sees its shard; pass ``bn_axis_name`` (the
  mapped axis name) to average the statistics over it, otherwise they are
  per-device. Leave it None under plain ``jit``: there the name is unbound and
  JAX raises.
* **Dtypes.** ``dtype`` is the compute dtype (float32 or bfloat16); parameters
  and batch statistics are always float32 (``param_dtype``), so a checkpoint
  does not depend on the precision a run used.
"""

from __future__ import annotations

import numbers
from typing import Any, Callable, Optional

import flax.linen as nn
import jax
import jax.numpy as jnp

# Flax's momentum is the decay of the running average: 0.9 == PyTorch's 0.1.
BN_MOMENTUM = 0.9
BN_EPSILON = 1e-5

DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16}

ACTIVATIONS: dict[str, Callable[[jax.Array], jax.Array]] = {
    "relu": nn.relu,
    "gelu": nn.gelu,
    "silu": nn.silu,
    "swish": nn.swish,
    "tanh": jnp.tanh,
    "elu": nn.elu,
    "leaky_relu": nn.leaky_relu,
    "identity": lambda x: x,
}

# torchvision's ResNet init, kaiming_normal_(mode="fan_out",
# nonlinearity="relu"): an untruncated normal with variance 2 / fan_out. In JAX
# "normal" is the untruncated one ("truncated_normal", he_normal's default,
# clips at 2 std).
kaiming_normal_fan_out = nn.initializers.variance_scaling(
    2.0, "fan_out", "normal")


def get_dtype(name: Any) -> jnp.dtype:
  """Resolves a compute-dtype name (``"float32"`` or ``"bfloat16"``).

  Args:
    name: a key of ``DTYPES`` or a dtype object that is one of its values.

  Returns:
    The jnp dtype.

  Raises:
    ValueError: for any other dtype.
  """
  if isinstance(name, str):
    if name not in DTYPES:
      raise ValueError(
          f"Unknown model dtype {name!r}; valid: {sorted(DTYPES)}. It is the "
          "compute dtype; parameters always stay float32.")
    return DTYPES[name]
  for dtype in DTYPES.values():
    if jnp.dtype(name) == jnp.dtype(dtype):
      return dtype
  raise ValueError(
      f"Unknown model dtype {name!r}; valid: {sorted(DTYPES)}.")


def get_activation(name: str) -> Callable[[jax.Array], jax.Array]:
  """Looks an activation up by name; ValueError lists the valid names."""
  if name not in ACTIVATIONS:
    raise ValueError(
        f"Unknown activation {name!r}; valid: {sorted(ACTIVATIONS)}.")
  return ACTIVATIONS[name]


def batch_norm(train: bool, *, dtype: Any, axis_name: Optional[str],
               name: Optional[str] = None, use_bias: bool = True,
               use_scale: bool = True,
               scale_init: Callable[..., Any] = nn.initializers.ones
               ) -> nn.BatchNorm:
  """A BatchNorm with cljax's conventions (see the module docstring).

  Must be called inside a compact ``__call__`` (it creates a submodule).

  Args:
    train: batch statistics (and running-average updates) when True, the
      stored running averages when False.
    dtype: compute dtype; parameters and statistics stay float32.
    axis_name: mapped axis to average the statistics over under
      ``shard_map``/``pmap``; None under ``jit`` (already global there).
    name: submodule name.
    use_bias: False drops the shift entirely, i.e. fixes it at 0.
    use_scale: False drops the scale (fixed at 1).
    scale_init: initialiser of the scale (zeros for zero-init residuals).

  Returns:
    An ``nn.BatchNorm`` module.
  """
  return nn.BatchNorm(
      use_running_average=not train,
      momentum=BN_MOMENTUM,
      epsilon=BN_EPSILON,
      dtype=dtype,
      param_dtype=jnp.float32,
      use_bias=use_bias,
      use_scale=use_scale,
      scale_init=scale_init,
      axis_name=axis_name,
      name=name)


def check_images(x: jax.Array, module: str) -> None:
  """Raises a ValueError unless ``x`` is a float NHWC batch ``[B, H, W, C]``."""
  if x.ndim != 4:
    hint = (" It looks like a batch of vectors: use the 'mlp' encoder, or "
            "reshape to [B, H, W, C]." if x.ndim == 2 else "")
    raise ValueError(
        f"{module} expects images of shape [batch, height, width, channels] "
        f"(NHWC); got shape {tuple(x.shape)}.{hint}")
  check_float(x, module)


def check_float(x: jax.Array, module: str) -> None:
  if not jnp.issubdtype(x.dtype, jnp.floating):
    raise ValueError(
        f"{module} expects floating-point inputs; got dtype {x.dtype}. Convert "
        "uint8 images with `x.astype(jnp.float32) / 255` (and normalise).")


def check_positive_ints(values: Any, name: str, module: str) -> tuple[int, ...]:
  """Returns ``values`` as a tuple of ints after checking each is >= 1."""
  try:
    values = tuple(values)
  except TypeError:
    raise ValueError(
        f"{module}: `{name}` must be a sequence of positive ints; got "
        f"{values!r}.") from None
  if not values or any(isinstance(v, bool)
                       or not isinstance(v, numbers.Integral) or v < 1
                       for v in values):
    raise ValueError(
        f"{module}: `{name}` must be a non-empty sequence of positive ints; "
        f"got {values!r}.")
  return tuple(int(v) for v in values)
