"""Input validation shared by the pure core.

Every public function validates what it can at trace time (ranks, shapes,
dtypes, Python-number hyper-parameters) and raises a ``ValueError`` that names
the argument and says how to fix it.

Label ranges are values, known only at run time. Every function of
``cljax.geometry`` and ``cljax.probes`` that takes class ids and a number of
classes C treats an id outside ``[0, C)`` the same way on every path:

* **Concrete labels** (eager call, outside ``jit``): ``check_labels`` raises a
  ``ValueError`` naming the argument before any work.
* **Traced labels** (``jax.jit``, ``jit`` on a batch sharded over a mesh,
  per device inside ``jax.shard_map`` / ``jax.pmap`` with ``axis_name``, an
  un-jitted ``shard_map``): nothing can raise, so
  ``nan_if_labels_out_of_range`` makes the *whole* result unusable instead:
  every floating-point element is NaN and every integer element (class ids,
  counts, indices) is -1. With ``axis_name`` the count of bad labels is
  psum'd, so a bad label on one shard poisons the result on every device.
  Without this, such ids would be silently dropped by the class sums and the
  metric would be a plausible, wrong number.
"""

from __future__ import annotations

import numbers
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np


def is_concrete(x: Any) -> bool:
  """True when ``x`` holds values (not a tracer inside jit/grad/vmap)."""
  return not isinstance(x, jax.core.Tracer)


def check_rank(x: Any, rank: int, name: str, layout: str) -> None:
  if np.ndim(x) != rank:
    raise ValueError(
        f"`{name}` must have rank {rank} with layout {layout}; got shape "
        f"{tuple(np.shape(x))}.")


def check_float(x: Any, name: str) -> None:
  dtype = jax.numpy.result_type(x)
  if not jax.numpy.issubdtype(dtype, jax.numpy.floating):
    raise ValueError(
        f"`{name}` must be a floating-point array (float32, bfloat16, ...); "
        f"got dtype {dtype}. Cast it with `.astype(jnp.float32)`.")


def check_labels(labels: Any, n: int, name: str = "labels",
                 num_classes: int | None = None) -> None:
  """Checks ``labels`` is an integer vector of length ``n`` (and in range).

  The range check ``0 <= labels < num_classes`` runs only when ``labels`` is
  concrete and ``num_classes`` is given; traced labels are covered by
  ``nan_if_labels_out_of_range`` (see the module docstring).
  """
  if np.ndim(labels) != 1 or np.shape(labels)[0] != n:
    raise ValueError(
        f"`{name}` must be an integer vector of shape [{n}] (one label per "
        f"sample); got shape {tuple(np.shape(labels))}.")
  dtype = jax.numpy.result_type(labels)
  if not jax.numpy.issubdtype(dtype, jax.numpy.integer):
    raise ValueError(
        f"`{name}` must have an integer dtype; got {dtype}. Class ids are "
        f"integers: use `.astype(jnp.int32)`.")
  if num_classes is not None and is_concrete(labels) and n > 0:
    # np.asarray first: np.min on a jax.Array calls its traced .min() when
    # a jitted function closes over the labels.
    values = np.asarray(labels)
    lo, hi = int(values.min()), int(values.max())
    if lo < 0 or hi >= num_classes:
      raise ValueError(
          f"`{name}` must lie in [0, {num_classes}); got values in "
          f"[{lo}, {hi}]. Remap the class ids or pass a larger "
          f"`num_classes`.")


def labels_out_of_range(*labels: Any, num_classes: int,
                        axis_name: Any = None) -> jax.Array:
  """bool scalar: some id of ``labels`` lies outside ``[0, num_classes)``.

  Args:
    *labels: int[N_i] label vectors (None entries are skipped).
    num_classes: the number of classes C (a static int).
    axis_name: mapped axis to sum the count over (per-device call), or None.

  Returns:
    A bool scalar, the same on every device of ``axis_name``.

  Examples:
    >>> bool(labels_out_of_range(jnp.array([0, 2]), num_classes=2))
    True
  """
  bad = jnp.zeros((), jnp.int32)
  for y in labels:
    if y is not None:
      y = jnp.asarray(y)
      bad = bad + jnp.sum(((y < 0) | (y >= num_classes)).astype(jnp.int32))
  if axis_name is not None:
    bad = jax.lax.psum(bad, axis_name)
  return bad > 0


def _poison(x: Any, bad: jax.Array) -> Any:
  dtype = jnp.result_type(x)
  if jnp.issubdtype(dtype, jnp.inexact):
    return jnp.where(bad, jnp.nan, x)
  if jnp.issubdtype(dtype, jnp.integer) and not isinstance(x, bool):
    return jnp.where(bad, -1, x)
  return x  # bool masks and PRNG keys carry no number to poison


def nan_if_labels_out_of_range(out: Any, *labels: Any, num_classes: int,
                               axis_name: Any = None) -> Any:
  """``out`` made unusable when a traced label lies outside the classes.

  The traced half of the label-range policy (module docstring): concrete
  labels were already range-checked by ``check_labels``, so they cost
  nothing here; for traced ones every float leaf of the pytree ``out``
  becomes NaN and every integer leaf -1 when any id of any label vector
  lies outside ``[0, num_classes)`` (on any device of ``axis_name``).

  Args:
    out: the result (any pytree of arrays).
    *labels: int[N_i] label vectors the result was computed from (None
      entries are skipped).
    num_classes: the number of classes C.
    axis_name: mapped axis of a per-device call, or None.

  Returns:
    ``out``, or the same pytree poisoned.

  Examples:
    >>> f = jax.jit(lambda y: nan_if_labels_out_of_range(
    ...     {"acc": jnp.float32(0.5), "pred": y}, y, num_classes=2))
    >>> {k: v.tolist() for k, v in f(jnp.array([0, 2])).items()}
    {'acc': nan, 'pred': [-1, -1]}
  """
  if all(y is None or is_concrete(y) for y in labels):
    return out
  bad = labels_out_of_range(*labels, num_classes=num_classes,
                            axis_name=axis_name)
  return jax.tree.map(lambda x: _poison(x, bad), out)


def check_positive(value: Any, name: str, allow_zero: bool = False) -> None:
  """Checks a hyper-parameter that is a Python number (traced: skipped)."""
  if isinstance(value, numbers.Number) or (
      isinstance(value, (np.ndarray, jax.Array)) and np.ndim(value) == 0
      and is_concrete(value)):
    v = float(value)
    ok = v >= 0 if allow_zero else v > 0
    if not ok or not np.isfinite(v):
      bound = ">= 0" if allow_zero else "> 0"
      raise ValueError(f"`{name}` must be finite and {bound}; got {v}.")


def check_choice(value: Any, name: str, choices: tuple[Any, ...]) -> None:
  if value not in choices:
    raise ValueError(
        f"`{name}` must be one of {choices}; got {value!r}.")


def infer_num_classes(labels: Any, num_classes: int | None,
                      name: str = "labels") -> int:
  """Returns ``num_classes`` or, for concrete labels, ``max(labels) + 1``."""
  if num_classes is not None:
    if int(num_classes) < 1:
      raise ValueError(f"`num_classes` must be >= 1; got {num_classes}.")
    return int(num_classes)
  if not is_concrete(labels):
    raise ValueError(
        f"`num_classes` is required when `{name}` is traced (inside jit): "
        f"array shapes depend on it. Pass `num_classes=` as a static "
        f"Python int.")
  if np.size(labels) == 0:
    raise ValueError(f"`{name}` is empty; cannot infer `num_classes`.")
  return int(np.max(labels)) + 1
