"""Unconstrained ("layer-peeled") features: optimise the embeddings directly.

The theory of all three papers is about minimisers over free features: with
the encoder removed, the N×K embeddings themselves are the parameters. This
driver minimises any ``cljax.losses`` loss over them with optax and reports
how close the result is to the predicted geometry (augmentation collapse,
within-class collapse, simplex ETF) and to the closed-form minimum.

It is the CPU-seconds reproduction of Luthra et al.'s Theorem 2 (NSCL
minimisers) and the smallest end-to-end use of the pure core.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from cljax import _similarity
from cljax import geometry
from cljax import losses
from cljax import theory


def _closed_form_minimum(config) -> float | None:
  """The loss value the theory predicts at the collapsed ETF, if known."""
  c, n, k = config.num_classes, config.samples_per_class, config.num_views
  kw = dict(config.loss.kwargs)
  tau = kw.get("temperature", 1.0)
  if config.loss.name == "nscl":
    return theory.nscl_at_etf(
        c, n, k, temperature=tau,
        positive_in_denominator=kw.get("positive_in_denominator", False))
  if config.loss.name == "supcon":
    return theory.supcon_at_etf(c, n, k, temperature=tau)
  return None


def _metrics(z: jax.Array, labels: jax.Array, num_classes: int,
             normalize: str) -> dict[str, float]:
  zn = _similarity.normalize(z, normalize)
  feats = jnp.mean(zn, axis=1)
  aug = geometry.augmentation_collapse(zn)["view_variance"]
  return {
      "nc1": float(geometry.nc1(feats, labels, num_classes=num_classes)),
      "etf_distance": float(geometry.etf_distance(
          feats, labels, num_classes=num_classes)),
      "augmentation_collapse": float(aug),
      "effective_rank": float(geometry.effective_rank(
          geometry.class_means(feats, labels, num_classes=num_classes))),
  }


def run(config: ml_collections.ConfigDict, workdir: str | None = None,
        *, verbose: bool = True) -> dict[str, Any]:
  """Minimises ``config.loss`` over free embeddings z: float[N, K, dim].

  Args:
    config: with fields num_classes, samples_per_class, num_views, dim, seed,
      steps, learning_rate, log_every, loss.name, loss.kwargs (passed to the
      loss; ``normalize`` and ``temperature`` live there).
    workdir: if given, ``metrics.jsonl`` (one row per logged step) and
      ``summary.json`` are written there.
    verbose: print a progress line per logged step and the summary.

  Returns:
    The summary dict: final loss, closed-form minimum (if the theory gives
    one), all_losses of the final features, and geometry metrics.
  """
  c, n, k = config.num_classes, config.samples_per_class, config.num_views
  labels = jnp.repeat(jnp.arange(c, dtype=jnp.int32), n)
  loss_fn = losses.get(config.loss.name)
  kwargs = dict(config.loss.kwargs)
  normalize = kwargs.get("normalize", "sphere")
  tau = kwargs.get("temperature", 1.0)

  def objective(z):
    return loss_fn(z, labels, **kwargs)

  tx = optax.adam(config.learning_rate)
  z = jax.random.normal(jax.random.key(config.seed), (c * n, k, config.dim))
  opt_state = tx.init(z)

  @jax.jit
  def step(z, opt_state):
    value, grad = jax.value_and_grad(objective)(z)
    updates, opt_state = tx.update(grad, opt_state, z)
    return optax.apply_updates(z, updates), opt_state, value

  monitor = jax.jit(lambda z: losses.all_losses(
      z, labels, temperature=tau, normalize=normalize))

  rows = []
  log_file = None
  if workdir:
    os.makedirs(workdir, exist_ok=True)
    log_file = open(os.path.join(workdir, "metrics.jsonl"), "w")
  start = time.time()
  try:
    for i in range(config.steps):
      z, opt_state, value = step(z, opt_state)
      if not np.isfinite(float(value)):
        raise FloatingPointError(
            f"non-finite loss {float(value)} at step {i + 1}")
      if (i + 1) % config.log_every == 0 or i + 1 == config.steps:
        row = {"step": i + 1, "train/loss": float(value)}
        row.update({f"train/{k_}": float(v)
                    for k_, v in monitor(z).items()})
        rows.append(row)
        if log_file:
          log_file.write(json.dumps(row) + "\n")
        if verbose:
          print(f"step {i + 1:5d}/{config.steps}  loss {float(value):.4f}  "
                f"dcl-nscl gap {row['train/gap']:.4f} "
                f"(bound {row['train/gap_bound']:.4f})", flush=True)
  finally:
    if log_file:
      log_file.close()

  summary = {
      "loss": config.loss.name,
      "final_loss": rows[-1]["train/loss"],
      "closed_form_minimum": _closed_form_minimum(config),
      "seconds": time.time() - start,
      **{k_.split("/", 1)[1]: v for k_, v in rows[-1].items()
         if k_.startswith("train/") and k_ != "train/loss"},
      **_metrics(z, labels, c, normalize),
  }
  if workdir:
    with open(os.path.join(workdir, "summary.json"), "w") as f:
      json.dump(summary, f, indent=2)
  if verbose:
    print(json.dumps(summary, indent=2))
  return summary
