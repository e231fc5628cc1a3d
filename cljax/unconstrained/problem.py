"""The free-features problem: samples, objective, optimiser, theory's value.

The problem half of ``cljax.unconstrained`` (no training machinery): the
labels of the N samples (balanced, or one batch's ``config.class_counts``),
the objective over the free features (and classifier), their projection,
and what the theory predicts: the collapsed simplex ETF (``etf_params``) and
the minimum value a theorem gives (``closed_form_minimum``).

>>> all_multisets(3, 2).tolist()
[[0, 0], [0, 1], [0, 2], [1, 1], [1, 2], [2, 2]]
"""

from __future__ import annotations

import inspect
import itertools
import math
from typing import Any, Callable

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from cljax._src import engine
from cljax import losses
from cljax.training import optim
from cljax.training.objective import CROSS_ENTROPY
from cljax import theory

OBJECTIVES = ("full_batch", "all_multisets")
OPTIMIZERS = ("adam", "sgd")
# CROSS_ENTROPY (one name for the train loop and this driver) is here the
# cross-entropy over a free bias-free classifier W: float[C, dim] (Graf et
# al.); not in the contrastive registry because it needs logits, not views.


def class_counts(config: ml_collections.ConfigDict) -> tuple[int, ...]:
  """Samples per class: ``config.class_counts`` if set, else balanced.

  Raises:
    ValueError: class_counts of the wrong length or with a negative entry.
  """
  counts = tuple(config.get("class_counts", ()) or ())
  if not counts:
    return (int(config.samples_per_class),) * int(config.num_classes)
  if len(counts) != config.num_classes or min(counts) < 0 or sum(counts) < 2:
    raise ValueError(
        f"`config.class_counts` must list num_classes={config.num_classes} "
        f"non-negative counts summing to >= 2, e.g. (7, 1, 1); got {counts}.")
  return tuple(int(c) for c in counts)


def labels_of(config: ml_collections.ConfigDict) -> np.ndarray:
  """int32[N] labels, class-major: class c repeated class_counts[c] times."""
  counts = class_counts(config)
  return np.repeat(np.arange(len(counts), dtype=np.int32), counts)


def all_multisets(num_points: int, batch_size: int) -> np.ndarray:
  """Every multiset of ``batch_size`` indices from ``range(num_points)``.

  Args:
    num_points: N >= 1.
    batch_size: b >= 1.

  Returns:
    int32[((N b)), b] sorted index tuples (6 points, batch 9: 2002 rows).

  Raises:
    ValueError: non-positive sizes, or more than a million multisets.
  """
  if num_points < 1 or batch_size < 1:
    raise ValueError(f"`num_points` and `batch_size` must be >= 1; got "
                     f"{num_points}, {batch_size}.")
  count = math.comb(num_points + batch_size - 1, batch_size)
  if count > 10**6:
    raise ValueError(
        f"{count} multisets of size batch_size={batch_size} from {num_points} "
        f"points is too many to enumerate; lower `batch_size` or the number "
        f"of samples.")
  return np.array(list(itertools.combinations_with_replacement(
      range(num_points), batch_size)), np.int32).reshape(count, batch_size)


def _loss_kwargs(config) -> dict[str, Any]:
  kwargs = dict(config.loss.kwargs)
  if config.objective == "all_multisets":
    # P2's theory sums per-anchor losses over each batch (no division).
    kwargs["reduction"] = "sum"
  return kwargs


def make_objective(config: ml_collections.ConfigDict, labels: np.ndarray
                   ) -> Callable[[dict[str, jax.Array]], jax.Array]:
  """The scalar objective over ``params = {"z": float[N, K, dim], "w"?}``.

  Raises:
    ValueError: unknown objective or loss, or cross-entropy with multisets.
  """
  if config.objective not in OBJECTIVES:
    raise ValueError(f"Unknown config.objective {config.objective!r}; choose "
                     f"one of {OBJECTIVES}.")
  y = jnp.asarray(labels)
  kwargs = _loss_kwargs(config)
  if config.loss.name == CROSS_ENTROPY:
    if config.objective != "full_batch":
      raise ValueError("loss.name='cross_entropy' needs "
                       "objective='full_batch'.")
    normalize = kwargs.pop("normalize", "sphere")
    def ce(params):
      h = engine.normalize(params["z"][:, 0], normalize)
      # NumPy labels stay concrete under jit, so their range is checked.
      return losses.cross_entropy(h @ params["w"].T, labels, **kwargs)
    return ce
  loss_fn = losses.get(config.loss.name)
  if config.objective == "full_batch":
    return lambda params: loss_fn(params["z"], y, **kwargs)
  batches = jnp.asarray(all_multisets(len(labels), config.batch_size))
  def multiset_sum(params):
    per_batch = jax.vmap(
        lambda idx: loss_fn(jnp.asarray(params["z"])[idx], y[idx], **kwargs)
    )(batches)
    return jnp.sum(per_batch)
  return multiset_sum


def _init_params(config, num_samples: int) -> dict[str, jax.Array]:
  kz, kw = jax.random.split(jax.random.key(config.seed))
  params = {"z": config.init_scale * jax.random.normal(
      kz, (num_samples, config.num_views, config.dim))}
  if config.loss.name == CROSS_ENTROPY:
    params["w"] = config.init_scale * jax.random.normal(
        kw, (config.num_classes, config.dim))
  return params


def _project(params, config):
  """Features onto the unit sphere, classifier rows into the r_W ball."""
  if not config.project:
    return params
  out = dict(params)
  out["z"] = engine.normalize(params["z"], "sphere")
  if "w" in params:
    w = params["w"]
    norm = jnp.linalg.norm(w, axis=-1, keepdims=True)
    out["w"] = w * jnp.minimum(1.0, config.weight_radius /
                               jnp.maximum(norm, 1e-12))
  return out


def _optimizer(config) -> optax.GradientTransformation:
  """The training loop's optimiser factory at a constant learning rate."""
  if config.optimizer not in OPTIMIZERS:
    raise ValueError(f"Unknown config.optimizer {config.optimizer!r}; choose "
                     f"one of {OPTIMIZERS}.")
  tx, _ = optim.make_optimizer(
      {"name": config.optimizer, "learning_rate": config.learning_rate,
       "schedule": "constant", "momentum": config.momentum or 0.0,
       "weight_decay": 0.0}, config.steps)
  return tx



# ----------------------------------------------------------------------------
# What the theory predicts.
# ----------------------------------------------------------------------------


def etf_params(config: ml_collections.ConfigDict, labels: np.ndarray
               ) -> dict[str, np.ndarray]:
  """The collapsed simplex ETF: every view of class c at the unit vertex c.

  Classifier rows (cross-entropy) are the vertices scaled to
  ``config.weight_radius``. Needs ``dim >= num_classes - 1``.
  """
  vertices = theory.simplex_etf(config.num_classes, config.dim)
  z = np.repeat(vertices[labels][:, None, :], config.num_views, axis=1)
  params = {"z": z.astype(np.float32)}
  if config.loss.name == CROSS_ENTROPY:
    params["w"] = (config.weight_radius * vertices).astype(np.float32)
  return params


def closed_form_minimum(config: ml_collections.ConfigDict) -> float | None:
  """The minimum value a theorem gives for this problem, else None.

  P1 Theorem 2 (NSCL), SupCon at the ETF (P2, full batch, balanced), P2's
  multiset bound (all multisets), CE at the simplex under the row-norm bound
  (P2), and P3's SCL/HSCL (any beta) and UCL (beta = 0) values at neural
  collapse. None when the theorem's hypotheses (balanced classes,
  dim >= C - 1, unit-norm features) do not hold.
  """
  c, n, k = config.num_classes, config.samples_per_class, config.num_views
  kw = dict(config.loss.kwargs)
  name = config.loss.name
  tau = _loss_arg(config, "temperature", 1.0)
  normalize = _normalize_mode(config)
  balanced = not tuple(config.get("class_counts", ()) or ())
  if not balanced or config.dim < c - 1:
    return None
  if config.objective == "all_multisets":
    if name == "supcon" and kw.get("variant", "out") == "out" and (
        normalize == "sphere" and k == 1):
      return theory.supcon_multiset_bound(c, n, config.batch_size,
                                          temperature=tau)
    return None
  if name == CROSS_ENTROPY:
    if normalize == "sphere" and config.project and kw.get(
        "reduction", "mean") == "mean":
      return theory.cross_entropy_at_simplex(
          c, feature_radius=1.0, weight_radius=config.weight_radius)
    return None
  if kw.get("reduction", "mean") != "mean" or normalize == "none":
    return None
  if name == "nscl":
    return theory.nscl_at_etf(
        c, n, k, temperature=tau,
        positive_in_denominator=kw.get("positive_in_denominator", False))
  if name == "supcon" and kw.get("same_class_weight", 1.0) == 1.0:
    return theory.supcon_at_etf(c, n, k, temperature=tau)
  if (name == "hard_contrastive" and
      kw.get("estimator", "expectation") == "expectation" and
      kw.get("include_self_positive", True)):
    if kw.get("negatives", "different_class") == "different_class":
      return theory.scl_at_etf(c, temperature=tau)
    if kw.get("beta", 0.0) == 0.0:
      return theory.ucl_at_etf(c, n * k, c * n * k, temperature=tau)
  return None


def _loss_arg(config, name: str, fallback: Any) -> Any:
  """``config.loss.kwargs[name]``, else the loss function's own default.

  The defaults differ between losses (SupCon: tau = 0.1, NSCL: 1;
  hard_contrastive normalises onto the ball, the others onto the sphere).
  """
  if name in config.loss.kwargs:
    return config.loss.kwargs[name]
  fn = getattr(losses, config.loss.name, None)
  param = inspect.signature(fn).parameters.get(name) if fn else None
  if param is None or param.default is inspect.Parameter.empty:
    return fallback
  return param.default


def _normalize_mode(config) -> str:
  return _loss_arg(config, "normalize", "sphere")

