"""Argument checks and small helpers shared by the probes (private).

Thin wrappers over :mod:`cljax._src.checks`: shapes, dtypes and Python
hyper-parameters are checked at trace time; label ranges raise when the labels
are concrete and make the probe's result NaN when they are traced
(``checks.nan_if_labels_out_of_range``).
"""

from __future__ import annotations

from typing import Any, Optional

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec
from jax.typing import ArrayLike

from cljax._src import checks

HIGHEST = jax.lax.Precision.HIGHEST


def acc_dtype(x: ArrayLike) -> jnp.dtype:
  # Accumulate in at least float32: bfloat16 class means lose ~3 digits.
  return jnp.promote_types(jnp.result_type(x), jnp.float32)


def explicit_batch_mesh(x: jax.Array):
  """The mesh when ``x``'s rows are sharded on an Explicit mesh, else None.

  Under ``jit`` on such arrays, scatters and row-by-row matmuls need an
  explicit output sharding (JAX raises a ShardingTypeError otherwise).
  """
  sharding = getattr(jax.typeof(x), "sharding", None)
  mesh = getattr(sharding, "mesh", None)
  if mesh is None or mesh.empty or not sharding.spec:
    return None
  if sharding.spec[0] is None:
    return None
  return mesh


def replicated(x: jax.Array) -> jax.Array:
  """``x`` all-gathered when its rows are sharded on an Explicit mesh."""
  mesh = explicit_batch_mesh(x)
  if mesh is None:
    return x
  return jax.reshard(x, NamedSharding(mesh, PartitionSpec()))


def check_features(x: ArrayLike, name: str) -> None:
  checks.check_rank(x, 2, name, "[N, D]")
  checks.check_float(x, name)


def check_same_dim(a: ArrayLike, b: ArrayLike, name_a: str,
                   name_b: str) -> None:
  if np.shape(a)[-1] != np.shape(b)[-1]:
    raise ValueError(
        f"`{name_a}` and `{name_b}` must have the same feature dimension D; "
        f"got shapes {tuple(np.shape(a))} and {tuple(np.shape(b))}. Use "
        f"features from the same embedding.")


def check_int(value, name: str, minimum: int) -> int:
  if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
    raise ValueError(
        f"`{name}` must be a Python int >= {minimum}; got {value!r}.")
  if value < minimum:
    raise ValueError(f"`{name}` must be >= {minimum}; got {value}.")
  return int(value)


def check_nonempty(x: ArrayLike, name: str) -> None:
  if np.shape(x)[0] == 0:
    raise ValueError(f"`{name}` is empty; pass at least one sample.")


def check_class_mask(class_mask: Optional[ArrayLike], num_classes: int
                     ) -> None:
  if class_mask is None:
    return
  if np.shape(class_mask) != (num_classes,):
    raise ValueError(
        f"`class_mask` must be a boolean vector of shape [{num_classes}] (one "
        f"flag per centre); got shape {tuple(np.shape(class_mask))}.")
  if checks.is_concrete(class_mask) and not np.any(np.asarray(class_mask)):
    raise ValueError(
        "`class_mask` excludes every class; at least one class must be "
        "predictable.")


def check_hyper(value: Any, name: str, allow_zero: bool = False) -> None:
  """A real scalar hyper-parameter (> 0, or >= 0): no bool, no vector.

  Traced scalars pass (their value is the caller's responsibility).
  """
  if isinstance(value, (bool, np.bool_)):
    raise ValueError(f"`{name}` must be a real number; got {value!r}.")
  if np.ndim(value) != 0:
    raise ValueError(
        f"`{name}` must be a scalar; got shape {tuple(np.shape(value))}. "
        f"Run one probe per value to sweep it.")
  checks.check_positive(value, name, allow_zero=allow_zero)


def check_top_k(top_k, num_classes: int) -> int:
  top_k = check_int(top_k, "top_k", 1)
  if top_k > num_classes:
    raise ValueError(
        f"`top_k` must be <= num_classes={num_classes}; got {top_k}.")
  return top_k


def check_key(key: Any, name: str = "key") -> jax.Array:
  """A typed PRNG key, or a ValueError that says how to make one."""
  if isinstance(key, (bool, int, np.integer)) or (
      np.ndim(key) == 0 and not jnp.issubdtype(jnp.result_type(key),
                                               jax.dtypes.prng_key)):
    raise ValueError(
        f"`{name}` must be a JAX PRNG key; got {key!r}. Pass "
        f"`{name}=jax.random.key({key if isinstance(key, int) else 0})`.")
  if jnp.issubdtype(jnp.result_type(key), jax.dtypes.prng_key):
    if np.ndim(key) != 0:
      raise ValueError(
          f"`{name}` must be a single PRNG key (shape ()); got shape "
          f"{tuple(np.shape(key))}. Split it first and pass one key.")
    return key
  # A legacy uint32[2] key from jax.random.PRNGKey.
  if np.shape(key) == (2,) and jnp.result_type(key) == jnp.uint32:
    return jax.random.wrap_key_data(key)
  raise ValueError(
      f"`{name}` must be a JAX PRNG key (jax.random.key(0)); got an array "
      f"of shape {tuple(np.shape(key))} and dtype {jnp.result_type(key)}.")


def check_axis_name(axis_name: Any) -> None:
  """Fails early, and clearly, when ``axis_name`` is not a bound axis."""
  if axis_name is None:
    return
  try:
    jax.lax.axis_size(axis_name)
  except NameError:
    raise ValueError(
        f"`axis_name`={axis_name!r} is not bound here: call the probe inside "
        f"`jax.shard_map` or `jax.pmap` over that axis (each device passes "
        f"its shard), or leave `axis_name=None` for one global batch.") \
        from None


def check_test_set(features, features_name, test_features, test_labels,
                   num_classes) -> None:
  """Validates an optional (test_features, test_labels) pair."""
  if (test_features is None) != (test_labels is None):
    raise ValueError(
        "`test_features` and `test_labels` must be given together (or both "
        "left as None).")
  if test_features is not None:
    check_features(test_features, "test_features")
    check_nonempty(test_features, "test_features")
    check_same_dim(features, test_features, features_name, "test_features")
    checks.check_labels(test_labels, np.shape(test_features)[0],
                         "test_labels", num_classes)


def check_num_classes_for_classifier(num_classes: int) -> None:
  # One class gives a loss of 0 and 100 % accuracy whatever the features.
  if num_classes < 2:
    raise ValueError(
        f"`num_classes` must be >= 2 to train a classifier; got "
        f"{num_classes} (the labels hold a single class). Pass "
        f"`num_classes=` or labels of at least two classes.")


def classifier_inputs(train_features, train_labels, test_features,
                      test_labels, num_classes):
  """Validates a trained classifier's data; returns them in >= float32.

  Returns:
    ``(num_classes, x, y, xt, yt)``; ``xt`` and ``yt`` are None without a
    test set.
  """
  check_features(train_features, "train_features")
  check_nonempty(train_features, "train_features")
  n = np.shape(train_features)[0]
  num_classes = checks.infer_num_classes(train_labels, num_classes,
                                          "train_labels")
  checks.check_labels(train_labels, n, "train_labels", num_classes)
  check_num_classes_for_classifier(num_classes)
  check_test_set(train_features, "train_features", test_features,
                 test_labels, num_classes)
  dtype = acc_dtype(train_features)
  x = jnp.asarray(train_features, dtype)
  xt = None if test_features is None else jnp.asarray(test_features, dtype)
  yt = None if test_labels is None else jnp.asarray(test_labels)
  return num_classes, x, jnp.asarray(train_labels), xt, yt


def summary(name: str, fields: dict[str, Any]) -> str:
  """One-line ``Name(field=value, ...)`` with arrays shown as shapes."""
  parts = []
  for key, value in fields.items():
    if value is None or isinstance(value, (str, int, float, bool)):
      parts.append(f"{key}={value!r}")
    elif np.ndim(value) == 0:
      try:
        parts.append(f"{key}={float(value):.4g}")
      except TypeError:  # a PRNG key
        parts.append(f"{key}=<key>")
    else:
      dtype = jnp.result_type(value)
      parts.append(f"{key}={dtype}{list(np.shape(value))}")
  return f"{name}({', '.join(parts)})"


def result_repr(result: tuple) -> str:
  """``summary`` of a result NamedTuple under its class name (its __repr__)."""
  return summary(type(result).__name__, result._asdict())
