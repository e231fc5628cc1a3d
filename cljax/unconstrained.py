"""Unconstrained ("layer-peeled") features: optimise the embeddings directly.

The theory of all three papers is about minimisers over free features: with
the encoder removed, the N×K embeddings themselves (and, for cross-entropy,
the classifier) are the parameters. This driver minimises a ``cljax.losses``
loss over them and reports how close the result is to the predicted geometry
(augmentation collapse, within-class collapse, simplex ETF, dimensional
collapse) and to the value the theory predicts.

Objectives (``config.objective``):

* ``"full_batch"``: the loss of all N samples as one batch (P1 Theorem 2, P3's
  hardness sweep, P2's per-batch minimisers when ``config.class_counts`` gives
  one batch's label counts, and cross-entropy with a free classifier).
* ``"all_multisets"``: the loss summed over every multiset of
  ``config.batch_size`` of the N samples (P2's toy study: 3 classes x 2 points
  on the circle, batch 9, 2002 multisets), each with ``reduction="sum"``.

``config.optimizer`` is ``"adam"`` or ``"sgd"`` (plain or momentum gradient
steps); with ``config.project`` every step is followed by a projection of the
features onto the unit sphere and of the classifier rows onto the ball of
radius ``config.weight_radius`` (P2's projected gradient descent).

A work dir holds ``config.json``, ``metrics.jsonl`` (read them with
``cljax.checkpoint.read_config`` / ``read_metrics``), ``summary.json`` and
``features.npz`` (final z, labels and classifier); ``load`` reads all of it.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import itertools
import json
import math
import os
import time
from typing import Any, Callable

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from cljax import _similarity
from cljax import checkpoint
from cljax import geometry
from cljax import losses
from cljax import metric_writer
from cljax import optim
from cljax import theory

OBJECTIVES = ("full_batch", "all_multisets")
OPTIMIZERS = ("adam", "sgd")
# Cross-entropy over a free bias-free classifier W: float[C, dim] (Graf et
# al.); not in the contrastive registry because it needs logits, not views.
CROSS_ENTROPY = "cross_entropy"
# Spectrum values below this fraction of the largest count as collapsed
# directions in ``class_mean_rank`` (float32 round-off sits near 1e-7).
RANK_TOLERANCE = 1e-3


def default_config() -> ml_collections.ConfigDict:
  """Every field ``run`` reads, with P1 Theorem 2's NSCL set-up as values.

  The experiment configs (``experiments/unconstrained*.py``) start from this,
  so every field exists and can be overridden from the command line or a
  ``cljax.sweep`` grid.
  """
  config = ml_collections.ConfigDict()
  config.mode = "unconstrained"
  config.seed = 0
  config.num_classes = 10
  config.samples_per_class = 8
  # Per-class counts, e.g. (7, 1, 1): one unbalanced batch. () = balanced.
  config.class_counts = ()
  config.num_views = 2
  config.dim = 16
  config.init_scale = 1.0
  config.objective = "full_batch"
  config.batch_size = 9  # Only for objective="all_multisets".
  config.optimizer = "adam"
  config.learning_rate = 0.05
  config.momentum = 0.0
  config.project = False
  config.weight_radius = 1.0  # Row-norm bound of the CE classifier.
  config.steps = 2000
  config.log_every = 200
  config.loss = ml_collections.ConfigDict()
  config.loss.name = "nscl"
  config.loss.kwargs = ml_collections.ConfigDict(
      {"temperature": 0.5, "normalize": "sphere"})
  return config


# ----------------------------------------------------------------------------
# Problem set-up.
# ----------------------------------------------------------------------------


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
      h = _similarity.normalize(params["z"][:, 0], normalize)
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
  out["z"] = _similarity.normalize(params["z"], "sphere")
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


# ----------------------------------------------------------------------------
# Geometry of a solution.
# ----------------------------------------------------------------------------


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


def features_of(config, z: Any) -> np.ndarray:
  """float[N, dim] features the loss sees: normalised, mean over views."""
  zn = _similarity.normalize(jnp.asarray(z), _normalize_mode(config))
  return np.asarray(jnp.mean(zn, axis=1))


def geometry_metrics(config: ml_collections.ConfigDict, z: Any,
                     labels: np.ndarray, w: Any = None) -> dict[str, Any]:
  """Collapse and simplex metrics of free features z: float[N, K, dim].

  Features are taken after the loss's normalisation and averaged over views.
  Scalars are NaN where undefined (fewer than two non-empty classes).

  Returns:
    nc1, etf_distance, max_angle (Papyan, centred), P3's zero_sum, unit_norm,
    equal_inner_product (mean/max, raw means), within_class_distance,
    effective_rank of the class means, their spectrum and class_mean_rank
    (spectrum values above RANK_TOLERANCE of the largest; P3's DC view),
    augmentation_collapse (K >= 2), mean feature norm, class_mean_cosines
    (C x C, raw means) and, for cross-entropy, the self-duality NC3.
  """
  c = config.num_classes
  arrays = jax.device_get(_geometry_arrays(
      jnp.asarray(z), jnp.asarray(labels), None if w is None else
      jnp.asarray(w), num_classes=c, normalize=_normalize_mode(config)))
  present = np.bincount(labels, minlength=c) > 0
  means = arrays.pop("means")[present]
  unit = means / np.maximum(np.linalg.norm(means, axis=1, keepdims=True),
                            1e-12)
  spectrum = arrays.pop("class_mean_spectrum")
  out = {k: float(v) for k, v in arrays.items()}
  out.update({
      "effective_rank": float(geometry.effective_rank(means)),
      "class_mean_spectrum": spectrum.tolist(),
      # P3 reads dimensional collapse off a cliff in this spectrum.
      "class_mean_rank": int(np.sum(
          spectrum > RANK_TOLERANCE * max(float(spectrum[0]), 1e-30))),
      "class_mean_cosines": (unit @ unit.T).tolist(),
  })
  return out


@functools.partial(jax.jit, static_argnames=("num_classes", "normalize"))
def _geometry_arrays(z, labels, w, *, num_classes, normalize):
  """The metrics of ``geometry_metrics`` as one jitted computation.

  One compilation per problem shape instead of one per metric: the metrics
  dominate the compile time of a seconds-long run.
  """
  c = num_classes
  zn = _similarity.normalize(z, normalize)
  feats = jnp.mean(zn, axis=1)
  eip = geometry.equal_inner_product(feats, labels, num_classes=c)
  out = {
      "nc1": geometry.nc1(feats, labels, num_classes=c),
      "etf_distance": geometry.etf_distance(feats, labels, num_classes=c),
      "max_angle": geometry.max_angle(feats, labels, num_classes=c),
      "zero_sum": geometry.zero_sum(feats, labels, num_classes=c),
      "unit_norm": geometry.unit_norm(feats, labels, num_classes=c),
      "equal_inner_product": eip.mean,
      "equal_inner_product_max": eip.max,
      "within_class_distance": geometry.within_class_distance(
          feats, labels, num_classes=c),
      "feature_norm": jnp.mean(jnp.linalg.norm(zn, axis=-1)),
      "means": geometry.class_means(feats, labels, num_classes=c),
      "class_mean_spectrum": geometry.class_mean_spectrum(
          feats, labels, num_classes=c),
  }
  if zn.shape[1] >= 2:
    out["augmentation_collapse"] = geometry.augmentation_collapse(
        zn)["view_variance"]
  if w is not None:
    out["nc3_self_duality"] = geometry.nc3_self_duality(
        feats, labels, w, num_classes=c)
  return out


# ----------------------------------------------------------------------------
# The driver.
# ----------------------------------------------------------------------------


def run(config: ml_collections.ConfigDict, workdir: str | None = None,
        *, verbose: bool = True) -> dict[str, Any]:
  """Minimises the configured objective over free features.

  Args:
    config: fields num_classes, samples_per_class, class_counts (optional
      per-class counts, e.g. (7, 1, 1)), num_views, dim, seed, init_scale,
      objective ("full_batch" | "all_multisets"), batch_size (multisets),
      optimizer ("adam" | "sgd"), learning_rate, momentum, project,
      weight_radius, steps, log_every, loss.name (a ``cljax.losses`` registry
      name or "cross_entropy"), loss.kwargs (passed to the loss).
    workdir: if given, ``config.json``, ``metrics.jsonl`` (one row per logged
      step), ``summary.json`` and ``features.npz`` are written there.
    verbose: print a progress line per logged step and the summary.

  Returns:
    The summary dict: final loss, ``closed_form_minimum`` (None if no theorem
    applies), ``loss_at_etf`` (the objective evaluated at the collapsed ETF,
    when dim >= C - 1), the final DCL-NSCL gap and its bound (K >= 2), and
    ``geometry_metrics``.

  Raises:
    ValueError: a malformed config (the message names the field).
    FloatingPointError: the objective became non-finite (names the step).
  """
  for field in ("steps", "log_every"):
    if int(config[field]) < 1:
      raise ValueError(f"config.{field} must be >= 1; got {config[field]}.")
  labels = labels_of(config)
  objective = make_objective(config, labels)
  tx = _optimizer(config)
  params = _project(_init_params(config, len(labels)), config)
  opt_state = tx.init(params)

  @jax.jit
  def step(params, opt_state):
    value, grad = jax.value_and_grad(objective)(params)
    updates, opt_state = tx.update(grad, opt_state, params)
    params = _project(optax.apply_updates(params, updates), config)
    return params, opt_state, value

  monitor = None
  if config.num_views >= 2 and config.loss.name != CROSS_ENTROPY:
    tau = _loss_arg(config, "temperature", 1.0)
    monitor = jax.jit(lambda z: losses.all_losses(
        z, jnp.asarray(labels), temperature=tau,
        normalize=_normalize_mode(config)))

  rows = []
  writer = None
  if workdir:
    os.makedirs(workdir, exist_ok=True)
    with open(os.path.join(workdir, "config.json"), "w") as f:
      f.write(config.to_json_best_effort(indent=2))
    writer = metric_writer.MetricWriter(workdir, 0, tensorboard=False)
    rows = writer.rows
  start = time.time()
  try:
    for i in range(config.steps):
      params, opt_state, value = step(params, opt_state)
      if not np.isfinite(float(value)):
        raise FloatingPointError(
            f"non-finite loss {float(value)} at step {i + 1}; lower "
            f"config.learning_rate or normalise the features.")
      if (i + 1) % config.log_every == 0 or i + 1 == config.steps:
        row = {"train/loss": float(value)}
        if monitor is not None:
          row.update({f"train/{k_}": float(v)
                      for k_, v in monitor(params["z"]).items()})
        if writer is not None:
          writer.write(i + 1, row)
        else:
          rows.append({"step": i + 1, **row})
        if verbose:
          print(f"step {i + 1:5d}/{config.steps}  loss {float(value):.6f}",
                flush=True)
  finally:
    if writer is not None:
      writer.close()

  evaluate = jax.jit(objective)
  final = float(evaluate(params))
  loss_at_etf = None
  if config.dim >= config.num_classes - 1:
    loss_at_etf = float(evaluate(jax.tree.map(
        jnp.asarray, etf_params(config, labels))))
  summary = {
      "loss": config.loss.name,
      "objective": config.objective,
      "final_loss": final,
      "closed_form_minimum": closed_form_minimum(config),
      "loss_at_etf": loss_at_etf,
      "steps": config.steps,
      "seconds": time.time() - start,
      **{k_.split("/", 1)[1]: v for k_, v in rows[-1].items()
         if k_.startswith("train/") and k_ != "train/loss"},
      **geometry_metrics(config, params["z"], labels, params.get("w")),
  }
  if workdir:
    with open(os.path.join(workdir, "summary.json"), "w") as f:
      json.dump(summary, f, indent=2)
    np.savez(os.path.join(workdir, "features.npz"), labels=labels,
             **{k_: np.asarray(v) for k_, v in params.items()})
  if verbose:
    print(json.dumps({k_: v for k_, v in summary.items()
                      if not isinstance(v, list)}, indent=2))
  return summary


# ----------------------------------------------------------------------------
# Loading runs and sweeps for analysis.
# ----------------------------------------------------------------------------


@dataclasses.dataclass
class Result:
  """A finished unconstrained-features run (see ``load``).

  Attributes:
    workdir: the run's directory.
    config: its ``ml_collections.ConfigDict``.
    metrics: the logged rows of ``metrics.jsonl``.
    summary: ``summary.json``.
    z: float[N, K, dim] final free features (before normalisation).
    labels: int[N].
    w: float[C, dim] classifier (cross-entropy runs) or None.
  """
  workdir: str
  config: ml_collections.ConfigDict
  metrics: list
  summary: dict
  z: np.ndarray
  labels: np.ndarray
  w: np.ndarray | None

  def features(self) -> np.ndarray:
    """float[N, dim] features as the loss sees them (normalised, view mean)."""
    return features_of(self.config, self.z)


def load(workdir: str) -> Result:
  """Loads a run of ``run`` (config, logs, summary, final features).

  Raises:
    FileNotFoundError: ``workdir`` holds no finished run.
  """
  path = os.path.join(workdir, "features.npz")
  if not os.path.exists(path):
    raise FileNotFoundError(
        f"{path} not found: is {workdir!r} the work dir of a finished "
        f"`python -m cljax.main --config=experiments/unconstrained*.py` run?")
  arrays = np.load(path)
  with open(os.path.join(workdir, "summary.json")) as f:
    summary = json.load(f)
  return Result(workdir=workdir, config=checkpoint.read_config(workdir),
                metrics=checkpoint.read_metrics(workdir), summary=summary,
                z=arrays["z"], labels=arrays["labels"],
                w=arrays["w"] if "w" in arrays else None)


def load_sweep(sweep_dir: str) -> list[tuple[dict, Result]]:
  """``(overrides, Result)`` for every point of a ``cljax.sweep`` sweep dir.

  Raises:
    FileNotFoundError: no ``sweep.json`` in ``sweep_dir``.
  """
  index = os.path.join(sweep_dir, "sweep.json")
  if not os.path.exists(index):
    raise FileNotFoundError(
        f"{index} not found: run `python -m cljax.sweep --sweep_dir="
        f"{sweep_dir} ...` first.")
  with open(index) as f:
    points = json.load(f)["points"]
  return [(p["overrides"], load(p["workdir"])) for p in points]
