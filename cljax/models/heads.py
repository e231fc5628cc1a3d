"""Projection heads: the map g from features h to the embedding the loss sees.

Heads return the **unnormalised** projection; the losses normalise (sphere or
ball), so one head serves every normalisation option.

* ``"none"`` (``IdentityHead``): the loss uses ``h`` itself (P2).
* ``"linear"`` (``LinearHead``): one Dense layer.
* ``"classifier"`` (``ClassifierHead``): a bias-free linear classifier
  producing logits, for cross-entropy training (P2's CE, CE on the sphere
  and CE-fix); ``h`` stays the feature the geometry is measured on.
* ``"mlp"`` (``MLPHead``): ``(Dense no-bias -> BN -> act) x (num_layers - 1)
  -> Dense [-> BN]``. The two paper heads:

  - P1 (Luthra et al.): ``MLPHead(hidden_dims=2048, output_dim=p,
    final_bn=True)``: Linear(4096->2048, no bias) -> BN -> ReLU ->
    Linear(2048->p, no bias) -> BN with its bias frozen at 0.
  - P3 (Jiang et al.): ``MLPHead(hidden_dims=512, output_dim=C-1)``:
    Linear(2048->512, no bias) -> BN -> ReLU -> Linear(512->C-1, with bias).

**How the final BN's bias is "frozen at 0".** The final BatchNorm is built with
``use_bias=False``: it has a trainable ``scale`` and no ``bias`` parameter at
all, which is exactly a shift fixed at 0. Nothing can move it (no gradient, no
weight decay, no LARS trust ratio), checkpoints carry no dead entry, and no
optimizer masking is needed. In train mode each output coordinate therefore
has batch mean exactly 0.
"""

from __future__ import annotations

import numbers
from typing import Any, Optional, Sequence, Union

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from cljax import losses
from cljax.models import _layers


class IdentityHead(nn.Module):
  """No projection: returns the features unchanged (``head="none"``)."""

  @nn.compact
  def __call__(self, h: jax.Array, *, train: bool) -> jax.Array:
    """``[B, D] -> [B, D]``; ``train`` is accepted for a uniform interface."""
    del train
    return h


class LinearHead(nn.Module):
  """One Dense layer ``[B, D] -> [B, output_dim]`` (``head="linear"``).

  Attributes:
    output_dim: projection dimension.
    use_bias: add a bias.
    dtype: compute dtype; parameters stay float32.
  """
  output_dim: int = 128
  use_bias: bool = True
  dtype: Any = jnp.float32

  def __post_init__(self):
    _layers.check_positive_ints((self.output_dim,), "output_dim", "LinearHead")
    super().__post_init__()

  @nn.compact
  def __call__(self, h: jax.Array, *, train: bool) -> jax.Array:
    """``[B, D] -> [B, output_dim]``."""
    del train
    return nn.Dense(self.output_dim, use_bias=self.use_bias, dtype=self.dtype,
                    param_dtype=jnp.float32, name="dense")(h)


def mlp_head_widths(hidden_dims: Union[int, Sequence[int]],
                    num_layers: Optional[int]) -> tuple[int, ...]:
  """Resolves ``MLPHead``'s hidden widths; see its docstring for the rules."""
  if isinstance(hidden_dims, numbers.Integral) and not isinstance(
      hidden_dims, bool):
    layers = 2 if num_layers is None else num_layers
    if isinstance(layers, bool) or not isinstance(
        layers, numbers.Integral) or layers < 1:
      raise ValueError(
          f"MLPHead: `num_layers` must be an int >= 1 (Dense layers, the "
          f"output layer included); got {num_layers!r}.")
    if layers > 1:
      return _layers.check_positive_ints((hidden_dims,) * (layers - 1),
                                         "hidden_dims", "MLPHead")
    return ()
  # An empty sequence is allowed: a single output layer, as num_layers=1.
  widths = (_layers.check_positive_ints(hidden_dims, "hidden_dims", "MLPHead")
            if not hasattr(hidden_dims, "__len__") or len(hidden_dims)
            else ())
  if num_layers is not None and num_layers != len(widths) + 1:
    raise ValueError(
        f"MLPHead: `num_layers`={num_layers!r} contradicts `hidden_dims`="
        f"{tuple(widths)!r}, which implies {len(widths) + 1} Dense layers. "
        "Give hidden_dims as one int to repeat it, or drop num_layers.")
  return widths


class MLPHead(nn.Module):
  """``(Dense no-bias -> BN -> act) x (num_layers - 1) -> Dense [-> BN]``.

  Attributes:
    hidden_dims: an int (the width of every hidden layer, repeated
      ``num_layers - 1`` times) or a sequence with one width per hidden layer
      (then ``num_layers``, if given, must equal ``len(hidden_dims) + 1``).
    output_dim: projection dimension.
    num_layers: Dense layers including the output layer; default 2 with an
      int ``hidden_dims``. 1 gives a single Dense (plus the optional final BN).
    activation: name in ``_layers.ACTIVATIONS``.
    use_bn: BatchNorm after each hidden Dense (which then has no bias, since
      BN's shift replaces it); without BN hidden layers get a bias.
    final_bn: BatchNorm on the output with trainable scale and **no bias**
      (the shift is frozen at 0, P1's projector; see the module docstring).
    final_bias: bias of the output Dense. None (default) means "unless
      final_bn", because BN would subtract a bias right away.
    dtype: compute dtype; parameters stay float32.
    bn_axis_name: mapped axis to average BN statistics over under
      ``shard_map``/``pmap`` (not needed under ``jit``).
  """
  hidden_dims: Union[int, Sequence[int]] = 2048
  output_dim: int = 128
  num_layers: Optional[int] = None
  activation: str = "relu"
  use_bn: bool = True
  final_bn: bool = False
  final_bias: Optional[bool] = None
  dtype: Any = jnp.float32
  bn_axis_name: Optional[str] = None

  def __post_init__(self):
    mlp_head_widths(self.hidden_dims, self.num_layers)
    _layers.check_positive_ints((self.output_dim,), "output_dim", "MLPHead")
    _layers.get_activation(self.activation)
    super().__post_init__()

  @nn.compact
  def __call__(self, h: jax.Array, *, train: bool) -> jax.Array:
    """Projects features.

    Args:
      h: ``float[B, D]`` features.
      train: BN uses batch statistics and updates ``batch_stats`` when True.

    Returns:
      ``[B, output_dim]`` unnormalised projection, compute dtype.
    """
    act = _layers.get_activation(self.activation)
    bn = lambda name, **kw: _layers.batch_norm(  # noqa: E731
        train, dtype=self.dtype, axis_name=self.bn_axis_name, name=name, **kw)
    x = h
    for i, width in enumerate(mlp_head_widths(self.hidden_dims,
                                              self.num_layers)):
      x = nn.Dense(width, use_bias=not self.use_bn, dtype=self.dtype,
                   param_dtype=jnp.float32, name=f"dense_{i}")(x)
      if self.use_bn:
        x = bn(f"bn_{i}")(x)
      x = act(x)
    final_bias = (not self.final_bn if self.final_bias is None
                  else self.final_bias)
    x = nn.Dense(self.output_dim, use_bias=final_bias, dtype=self.dtype,
                 param_dtype=jnp.float32, name="output")(x)
    if self.final_bn:
      # use_bias=False: scale only, shift fixed at 0 (P1).
      x = bn("output_bn", use_bias=False)(x)
    return x


# ClassifierHead.fixed: a learned W, or W frozen at a regular simplex.
CLASSIFIER_KINDS = ("none", "simplex")


class ClassifierHead(nn.Module):
  """Bias-free linear classifier ``[B, D] -> [B, num_classes]`` logits.

  The cross-entropy models of Graf et al. (P2): no projection head, logits
  ``W phi(x)``. ``head="classifier"`` with ``loss.name="cross_entropy"`` in
  the train loop. Three variants:

  * CE: ``W`` learned (``fixed="none"``, ``normalize=False``).
  * CE on the sphere: the features are projected to the unit sphere before
    the classifier (``normalize=True``).
  * CE-fix: ``W`` frozen at a regular simplex with rows of norm ``radius``
    (``fixed="simplex"``). The weights are a constant of the module, not a
    parameter, so no optimiser, weight decay or checkpoint ever touches them.
    The closed-form simplex (``losses.simplex_classifier``) lives in the
    first ``C - 1`` coordinates; it is turned by a fixed random rotation
    (``rotation_seed``), because features after a final ReLU lie in the
    positive orthant, where some of the axis-aligned vertices can never win
    the argmax (P2's Riesz-energy simplex has a random orientation too).

  Attributes:
    num_classes: C >= 2 logits.
    normalize: project the features to the unit sphere first.
    fixed: ``"none"`` (learned ``W``) or ``"simplex"`` (CE-fix).
    radius: row norm of the fixed simplex.
    rotation_seed: seed of the fixed simplex's rotation; None keeps the
      closed form's axes.
    dtype: compute dtype; parameters stay float32.
  """
  num_classes: int = 10
  normalize: bool = False
  fixed: str = "none"
  radius: float = 1.0
  rotation_seed: Optional[int] = 0
  dtype: Any = jnp.float32

  def __post_init__(self):
    _layers.check_positive_ints((self.num_classes,), "num_classes",
                                "ClassifierHead")
    if self.num_classes < 2:
      raise ValueError(
          f"ClassifierHead: `num_classes` must be >= 2; got "
          f"{self.num_classes}.")
    if self.fixed not in CLASSIFIER_KINDS:
      raise ValueError(
          f"ClassifierHead: `fixed` must be one of {CLASSIFIER_KINDS}; got "
          f"{self.fixed!r}.")
    if not self.radius > 0:
      raise ValueError(
          f"ClassifierHead: `radius` must be > 0; got {self.radius}.")
    super().__post_init__()

  def weights(self, dim: int) -> jax.Array:
    """The frozen simplex ``float32[num_classes, dim]`` of CE-fix."""
    w = losses.simplex_classifier(self.num_classes, dim, radius=self.radius)
    if self.rotation_seed is None:
      return w
    rng = np.random.default_rng(self.rotation_seed)
    q, r = np.linalg.qr(rng.standard_normal((dim, dim)))
    q = q * np.sign(np.diag(r))  # Haar-distributed, deterministic.
    return w @ jnp.asarray(q, jnp.float32)

  @nn.compact
  def __call__(self, h: jax.Array, *, train: bool) -> jax.Array:
    """Logits.

    Args:
      h: ``float[B, D]`` features (``D >= num_classes - 1`` for CE-fix).
      train: unused (no BatchNorm).

    Returns:
      ``[B, num_classes]`` logits in the compute dtype.
    """
    del train
    if self.normalize:
      h32 = h.astype(jnp.float32)
      h = (h32 / jnp.maximum(jnp.linalg.norm(h32, axis=-1, keepdims=True),
                             1e-12)).astype(h.dtype)
    if self.fixed == "simplex":
      dim = h.shape[-1]
      if dim < self.num_classes - 1:
        raise ValueError(
            f"ClassifierHead(fixed='simplex'): the features have dimension "
            f"{dim} < num_classes - 1 = {self.num_classes - 1}, too few for "
            f"a regular simplex; widen the encoder.")
      w = self.weights(dim).astype(self.dtype)
      return h.astype(self.dtype) @ w.T
    return nn.Dense(self.num_classes, use_bias=False, dtype=self.dtype,
                    param_dtype=jnp.float32, name="dense")(h)

