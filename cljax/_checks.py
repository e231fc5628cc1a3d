"""Input validation shared by the pure core.

Every public function validates what it can at trace time (ranks, shapes,
dtypes, Python-number hyper-parameters) and raises a ``ValueError`` that names
the argument and says how to fix it. Values that are only known at run time
(label ranges) are checked when the array is concrete, i.e. outside ``jit``;
under ``jit`` they are documented as the caller's responsibility.
"""

from __future__ import annotations

import numbers
from typing import Any

import jax
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
  concrete and ``num_classes`` is given.
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
