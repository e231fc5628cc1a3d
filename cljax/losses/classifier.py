"""Cross-entropy (optax's) and the fixed simplex classifier of Graf et
al.'s CE-fix.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax

from cljax._src import checks
from cljax import theory
from cljax.losses._common import ArrayLike


def cross_entropy(logits: ArrayLike, labels: ArrayLike, *,
                  reduction: str = "mean") -> jax.Array:
  """Softmax cross-entropy with integer labels.

  Args:
    logits: float[N, C] classifier outputs (e.g. ``features @ W.T`` with a
      bias-free head, as in Graf et al.).
    labels: int[N] in [0, C) (checked when concrete).
    reduction: "mean" or "sum" over samples, or "none" (float[N]).

  Returns:
    Scalar float32 loss, or float[N].

  Raises:
    ValueError: logits not [N, C] float, labels of the wrong shape or (when
      concrete) outside [0, C).

  References:
    Graf et al. 2021, Section 3 (the CE baseline).

  Examples:
    >>> logits = jnp.array([[2.0, 0.0], [0.0, 2.0]])
    >>> round(float(cross_entropy(logits, jnp.array([0, 1]))), 4)
    0.1269
  """
  logits = jnp.asarray(logits)
  checks.check_rank(logits, 2, "logits", "[N, C]")
  checks.check_float(logits, "logits")
  checks.check_labels(labels, logits.shape[0], "labels",
                       num_classes=logits.shape[1])
  checks.check_choice(reduction, "reduction", ("mean", "sum", "none"))
  if logits.shape[0] == 0 and reduction == "mean":
    raise ValueError(
        "`logits` has N=0 rows: the mean cross-entropy of no sample is "
        "undefined. Skip the call on an empty batch or use reduction='sum'.")
  per_sample = optax.losses.softmax_cross_entropy_with_integer_labels(
      logits.astype(jnp.float32), jnp.asarray(labels))
  if reduction == "none":
    return per_sample
  return jnp.sum(per_sample) if reduction == "sum" else jnp.mean(per_sample)


def simplex_classifier(num_classes: int, dim: int,
                       radius: float = 1.0) -> jax.Array:
  """Fixed classifier weights on a regular simplex (Graf et al.'s CE-fix).

  Closed form (rows of the simplex ETF of ``cljax.theory``), not the
  reference code's Riesz-energy approximation.

  Args:
    num_classes: C >= 2.
    dim: feature dimension >= C - 1.
    radius: norm of each row.

  Returns:
    float32[C, dim] weights W; use logits = features @ W.T, and keep W out
    of the optimiser (or under ``jax.lax.stop_gradient``).

  Examples:
    >>> w = simplex_classifier(3, 4)
    >>> w.shape, round(float(w[0] @ w[1]), 4)
    ((3, 4), -0.5)
  """
  return jnp.asarray(theory.simplex_etf(num_classes, dim, radius=radius),
                     jnp.float32)
