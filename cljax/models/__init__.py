"""Model zoo: encoders, projection heads, and ``build(config.model)``.

Every model is a Flax **Linen** module used through pure ``init``/``apply``
with two collections, ``params`` and ``batch_stats``. A checkpoint of
``{"params", "batch_stats"}`` (the orbax ``model`` item) is therefore all that
is needed to rebuild and run a model; the optimizer state is never involved.

Typical use::

  model = models.build({"encoder": "resnet18", "head": "mlp",
                        "head_kwargs": {"hidden_dims": 512,
                                        "output_dim": 128}})
  variables = model.init(key, images, train=False)
  # Training: batch statistics are used and updated.
  (h, z), updates = model.apply(variables, images, train=True,
                                mutable=["batch_stats"])
  variables = {"params": new_params, "batch_stats": updates["batch_stats"]}
  # Evaluation: running averages, nothing mutable.
  h, z = model.apply(variables, images, train=False)

``h`` (encoder output) and ``z`` (head output) are both unnormalised and
returned in float32 whatever the compute dtype; the losses normalise ``z``.

BatchNorm (momentum 0.9 in Flax's convention = PyTorch's 0.1, eps 1e-5):
under ``jax.jit`` over a globally sharded batch its statistics are global
(sync-BN) automatically; inside ``shard_map``/``pmap`` set ``bn_axis_name`` to
the mapped axis to get the same. See :mod:`cljax.models._layers`.

Config schema of :func:`build` (a dict or ``ml_collections.ConfigDict``;
:func:`default_config` returns one with these defaults):

=================  ===========  ===============================================
field              default      meaning
=================  ===========  ===============================================
``encoder``        (required)   ``"mlp"``, ``"convnet"``, ``"resnet18"``,
                                ``"resnet50"`` (keys of ``ENCODERS``)
``encoder_kwargs`` ``{}``       fields of the encoder class, e.g.
                                ``{"stem": "cifar", "width_multiplier": 2}``
``head``           ``"none"``   ``"none"``, ``"linear"``, ``"mlp"``,
                                ``"classifier"`` (logits; ``HEADS`` and
                                ``CLASSIFIERS``)
``head_kwargs``    ``{}``       fields of the head class, e.g.
                                ``{"hidden_dims": 2048, "output_dim": 128,
                                "final_bn": True}``
``dtype``          float32      compute dtype, ``"float32"`` or ``"bfloat16"``;
                                params and batch stats stay float32
``bn_axis_name``   None         mapped axis for BN statistics under
                                ``shard_map``/``pmap``
=================  ===========  ===============================================
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, Mapping, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from cljax.models import _layers
from cljax.models.convnet import ConvNet
from cljax.models.heads import (ClassifierHead, IdentityHead, LinearHead,
                                MLPHead)
from cljax.models.mlp import MLPEncoder
from cljax.models.resnet import ResNet, ResNet18, ResNet50

__all__ = [
    "CLASSIFIERS",
    "ENCODERS",
    "HEADS",
    "ClassifierHead",
    "ContrastiveModel",
    "ConvNet",
    "IdentityHead",
    "LinearHead",
    "MLPEncoder",
    "MLPHead",
    "ResNet",
    "ResNet18",
    "ResNet50",
    "build",
    "default_config",
    "embed",
    "describe",
    "param_count",
]

ENCODERS: dict[str, type[nn.Module]] = {
    "mlp": MLPEncoder,
    "convnet": ConvNet,
    "resnet18": ResNet18,
    "resnet50": ResNet50,
}

HEADS: dict[str, type[nn.Module]] = {
    "none": IdentityHead,
    "linear": LinearHead,
    "mlp": MLPHead,
}

# Heads that output logits rather than a projection (P2's cross-entropy
# models); ``build`` accepts them as ``head`` too.
CLASSIFIERS: dict[str, type[nn.Module]] = {
    "classifier": ClassifierHead,
}

_CONFIG_FIELDS = ("encoder", "encoder_kwargs", "head", "head_kwargs", "dtype",
                  "bn_axis_name")
# Set once at the top level of the config so encoder and head always agree.
_SHARED_FIELDS = ("dtype", "bn_axis_name")


class ContrastiveModel(nn.Module):
  """Encoder f followed by projection head g: ``x -> (h, z) = (f(x), g(f(x)))``.

  Parameters live under ``params/encoder`` and ``params/head`` (likewise for
  ``batch_stats``), so the encoder can be restored or analysed on its own.

  Attributes:
    encoder: module mapping inputs to features ``[B, D]``.
    head: module mapping features to projections ``[B, P]``.
  """
  encoder: nn.Module
  head: nn.Module

  def __call__(self, x: jax.Array, *, train: bool
               ) -> tuple[jax.Array, jax.Array]:
    """Encodes and projects a batch.

    Args:
      x: ``float[B, H, W, C]`` images for conv encoders, ``float[B, D]``
        (or anything flattened to it) for the MLP encoder.
      train: a Python bool. True: BN uses batch statistics and, with
        ``mutable=["batch_stats"]``, updates its running averages. False: BN
        uses the running averages (evaluation, feature extraction).

    Returns:
      ``(features, projection)``: the encoder output ``h`` ``float32[B, D]``
      and the head output ``z`` ``float32[B, P]``, both unnormalised.
    """
    _check_train(train)
    h = self.encoder(x, train=train)
    z = self.head(h, train=train)
    # float32 outputs whatever the compute dtype: losses and metrics take
    # logsumexps and Gram matrices of these, which bfloat16 would round.
    return h.astype(jnp.float32), z.astype(jnp.float32)

  def encode(self, x: jax.Array, *, train: bool = False) -> jax.Array:
    """Features ``h`` only (``model.apply(v, x, method="encode")``).

    Skips the head, e.g. for probes and geometry on frozen features. Note that
    ``init`` through this method would create no head parameters.
    """
    _check_train(train)
    return self.encoder(x, train=train).astype(jnp.float32)


def _check_train(train: Any) -> None:
  # BatchNorm branches on it in Python; a traced bool cannot pick the branch.
  if not isinstance(train, (bool, np.bool_)):
    raise ValueError(
        f"`train` must be a Python bool (it selects batch vs running BN "
        f"statistics at trace time); got {type(train).__name__}. Mark it "
        "static under jit, e.g. functools.partial(model.apply, train=True).")


def default_config() -> ml_collections.ConfigDict:
  """The ``config.model`` defaults; set ``encoder`` before calling build."""
  return ml_collections.ConfigDict({
      "encoder": ml_collections.config_dict.placeholder(str),
      "encoder_kwargs": {},
      "head": "none",
      "head_kwargs": {},
      "dtype": "float32",
      "bn_axis_name": ml_collections.config_dict.placeholder(str),
  })


def build(model_config: Any) -> ContrastiveModel:
  """Builds a ``ContrastiveModel`` from ``config.model`` (schema: module doc).

  Args:
    model_config: a dict or ``ml_collections.ConfigDict`` with ``encoder``
      (required), ``encoder_kwargs``, ``head``, ``head_kwargs``, ``dtype`` and
      ``bn_axis_name``.

  Returns:
    An unbound ``ContrastiveModel``; call ``init``/``apply`` on it.

  Raises:
    ValueError: unknown or missing names or fields, bad values; the message
      lists the valid choices.

  Examples:
    >>> import jax
    >>> import jax.numpy as jnp
    >>> from cljax import models
    >>> model = models.build({"encoder": "mlp", "head": "linear",
    ...                       "encoder_kwargs": {"widths": [32]},
    ...                       "head_kwargs": {"output_dim": 8}})
    >>> x = jnp.ones((2, 5))
    >>> variables = model.init(jax.random.key(0), x, train=False)
    >>> h, z = model.apply(variables, x, train=False)
    >>> h.shape, z.shape
    ((2, 32), (2, 8))
  """
  cfg = _to_dict(model_config, "model config")
  unknown = sorted(set(cfg) - set(_CONFIG_FIELDS))
  if unknown:
    raise ValueError(
        f"Unknown model config field(s) {unknown}; valid: "
        f"{list(_CONFIG_FIELDS)}.")
  shared = {"dtype": _layers.get_dtype(cfg.get("dtype") or "float32"),
            "bn_axis_name": cfg.get("bn_axis_name")}
  encoder = _make("encoder", cfg.get("encoder"), ENCODERS,
                  cfg.get("encoder_kwargs"), shared)
  head = _make("head", cfg.get("head") or "none", {**HEADS, **CLASSIFIERS},
               cfg.get("head_kwargs"), shared)
  return ContrastiveModel(encoder=encoder, head=head)


def _make(kind: str, name: Any, registry: Mapping[str, type[nn.Module]],
          kwargs: Any, shared: Mapping[str, Any]) -> nn.Module:
  """Instantiates ``registry[name](**kwargs, **shared)`` with clear errors."""
  if not isinstance(name, str) or name not in registry:
    raise ValueError(
        f"Unknown {kind} {name!r} in the model config; valid: "
        f"{sorted(registry)}.")
  cls = registry[name]
  kwargs = {k: _tuplify(v) for k, v in
            _to_dict(kwargs or {}, f"{kind}_kwargs").items()}
  fields = [f.name for f in dataclasses.fields(cls)
            if f.init and f.name not in ("parent", "name")]
  clashes = sorted(set(kwargs) & set(_SHARED_FIELDS))
  if clashes:
    raise ValueError(
        f"{kind}_kwargs must not set {clashes}: set them once at the top of "
        "the model config, so encoder and head agree.")
  tunable = [f for f in fields if f not in _SHARED_FIELDS]
  unknown = sorted(set(kwargs) - set(tunable))
  if unknown:
    raise ValueError(
        f"Unknown {kind}_kwargs {unknown} for {kind} {name!r} "
        f"({cls.__name__}); valid: {tunable}.")
  kwargs.update({k: v for k, v in shared.items() if k in fields})
  try:
    return cls(**kwargs)
  except ValueError as e:
    raise ValueError(f"Bad {kind}_kwargs for {kind} {name!r}: {e}") from e


def _to_dict(value: Any, what: str) -> dict[str, Any]:
  if isinstance(value, ml_collections.ConfigDict):
    return value.to_dict()
  if isinstance(value, Mapping):
    return dict(value)
  raise ValueError(
      f"The {what} must be a dict or ml_collections.ConfigDict; got "
      f"{type(value).__name__}.")


def _tuplify(value: Any) -> Any:
  # Config files and JSON give lists; Linen module fields should be hashable.
  if isinstance(value, (list, tuple)):
    return tuple(_tuplify(v) for v in value)
  return value


@functools.lru_cache(maxsize=16)
def _eval_apply(model: nn.Module):
  # Cached per (hashable) module so repeated evaluations reuse one compile.
  return jax.jit(lambda variables, x: model.apply(variables, x, train=False))


def embed(model: nn.Module, variables: Any, inputs: Any, *,
          batch_size: int = 512) -> tuple[np.ndarray, np.ndarray]:
  """Eval-mode features of many inputs, in batches.

  Args:
    model: a ``ContrastiveModel``.
    variables: ``{"params", "batch_stats"}``.
    inputs: float[N, ...] model inputs (already normalised).
    batch_size: forward-pass batch size.

  Returns:
    (h: float32[N, D_enc], z: float32[N, D_head]) NumPy arrays.
  """
  apply = _eval_apply(model)
  hs, zs = [], []
  for start in range(0, np.shape(inputs)[0], batch_size):
    h, z = apply(variables, jnp.asarray(inputs[start:start + batch_size]))
    hs.append(np.asarray(h))
    zs.append(np.asarray(z))
  return np.concatenate(hs), np.concatenate(zs)


def param_count(tree: Any) -> int:
  """Number of scalars in a pytree (arrays or ``jax.ShapeDtypeStruct``)."""
  return int(sum(np.prod(np.shape(leaf), dtype=np.int64)
                 for leaf in jax.tree.leaves(tree)))


def describe(model_config: Any, input_shape: Sequence[int]) -> dict[str, Any]:
  """Shapes and parameter counts of a config, without running the model.

  Uses ``jax.eval_shape``, so nothing is allocated or compiled: cheap even for
  ResNet-50x2.

  Args:
    model_config: as for :func:`build`.
    input_shape: one batch's shape, e.g. ``(2, 32, 32, 3)`` or ``(2, 64)``.

  Returns:
    A dict with ``feature_dim``, ``projection_dim``, and parameter counts
    ``params_encoder``, ``params_head``, ``params_total`` and
    ``batch_stats_total`` (running means and variances, not trained).
  """
  model = build(model_config)
  x = jax.ShapeDtypeStruct(tuple(input_shape), jnp.float32)
  variables = jax.eval_shape(
      lambda x: model.init(jax.random.key(0), x, train=False), x)
  h, z = jax.eval_shape(
      lambda v, x: model.apply(v, x, train=False), variables, x)
  params = variables["params"]
  return {
      "feature_dim": h.shape[-1],
      "projection_dim": z.shape[-1],
      "params_encoder": param_count(params.get("encoder", {})),
      "params_head": param_count(params.get("head", {})),
      "params_total": param_count(params),
      "batch_stats_total": param_count(variables.get("batch_stats", {})),
  }
