"""The train step of ``cljax.training.train``: loss, monitors, update, finiteness.

``train_step`` is pure (jit it): one optimisation step on a global batch that
returns the new state and float32 scalars. Besides the optimised loss it
monitors every loss of ``losses.all_losses`` on the same batch at
``config.monitor.temperature`` (Luthra et al. evaluate the DCL-NSCL gap at
tau = 1), with no gradient through them. ``checked_step`` wraps it with the
on-device finiteness flag the loop reads only where it logs or saves.

>>> import jax.numpy as jnp
>>> bool(all_finite({"a": jnp.ones(3), "b": jnp.zeros(())}))
True
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax

from cljax import losses
from cljax.training.objective import is_cross_entropy


def loss_and_monitors(h, z, labels, config, key):
  """The optimised loss and the monitored (no-gradient) losses of a batch.

  Args:
    h: float[B, K, D] encoder features.
    z: float[B, K, P] head outputs (logits for cross-entropy).
    labels: int[B].
    config: the run config.
    key: PRNG key of the step, for losses that sample (Jiang et al.'s
      ``hard_contrastive(estimator="sampled")``).

  Returns:
    (loss, {name: scalar}) where the monitors are every loss of
    ``losses.all_losses`` when K >= 2, else SupCon (both variants), the one
    loss of the monitor set defined for single views. Cross-entropy runs
    monitor their encoder features (as P2 tracks SupCon of CE models), the
    others what the loss sees, and add "valid_anchors": how many anchors
    entered the optimised loss (0: the step trained nothing).
  """
  if is_cross_entropy(config):
    b, k, c = z.shape
    loss = losses.cross_entropy(z.reshape(b * k, c), jnp.repeat(labels, k))
    watched = h
  else:
    kwargs = dict(config.loss.get("kwargs", {}))
    if losses.spec(config.loss.name).needs_key_for(kwargs):
      kwargs["key"] = key
    loss, counts = losses.get(config.loss.name)(z, labels, **kwargs,
                                                return_counts=True)
    watched = z
  monitor = config.monitor
  watched = jax.lax.stop_gradient(watched)
  normalize = monitor.get("normalize", "sphere")
  if watched.shape[1] >= 2:
    others = losses.all_losses(
        watched, labels, temperature=monitor.temperature,
        beta=monitor.get("beta", None), normalize=normalize)
  else:
    others = {f"supcon_{variant}": losses.supcon(
        watched, labels, temperature=monitor.temperature, variant=variant,
        normalize=normalize) for variant in ("out", "in")}
  if not is_cross_entropy(config):
    others["valid_anchors"] = counts.num_valid
  return loss, others


def train_step(state, batch, *, model, tx, schedule, config, data, base_key):
  """One optimisation step on a global batch (pure; jit it).

  Args:
    state: {"params", "batch_stats", "opt_state", "step"} (replicated).
    batch: {"x": float[B, ...] inputs in [0, 1], "label": int[B]} (sharded).
    model: the Flax module (returns (features, head outputs)).
    tx, schedule: the optimiser and its learning-rate schedule.
    config: the run config.
    data: the data source (its ``make_views`` augments on device).
    base_key: the run's augmentation key; step t uses ``fold_in(key, t)``.

  Returns:
    (new_state, metrics): metrics are float32 scalars.
  """
  step = state["step"]
  step_key = jax.random.fold_in(base_key, step)
  views = data.make_views(step_key, batch["x"])
  b, k = views.shape[:2]
  flat = views.reshape((b * k,) + views.shape[2:])
  labels = batch["label"]

  def objective(params):
    (feats, proj), updates = model.apply(
        {"params": params, "batch_stats": state["batch_stats"]}, flat,
        train=True, mutable=["batch_stats"])
    z = proj.reshape(b, k, -1)
    loss, others = loss_and_monitors(feats.reshape(b, k, -1), z, labels,
                                     config, jax.random.fold_in(step_key, 1))
    return loss, (others, updates["batch_stats"])

  (loss, (others, batch_stats)), grads = jax.value_and_grad(
      objective, has_aux=True)(state["params"])
  updates, opt_state = tx.update(grads, state["opt_state"], state["params"])
  params = optax.apply_updates(state["params"], updates)
  metrics = {
      "train/loss": loss,
      "train/lr": schedule(step),
      "train/grad_norm": optax.tree.norm(grads),
      "train/param_norm": optax.tree.norm(params),
      "train/update_norm": optax.tree.norm(updates),
  }
  metrics.update({f"train/{name}": value for name, value in others.items()})
  new_state = {"params": params, "batch_stats": batch_stats,
               "opt_state": opt_state, "step": step + 1}
  return new_state, metrics


def all_finite(tree) -> jax.Array:
  """bool[] whether every leaf of ``tree`` is finite everywhere."""
  return jax.tree.reduce(lambda ok, x: ok & jnp.all(jnp.isfinite(x)), tree,
                         jnp.bool_(True))


def checked_step(state, batch, first_bad, key, **step_kwargs):
  """``train_step`` that also tracks the first non-finite step on device.

  Args:
    state, batch: as for ``train_step``.
    first_bad: int32[] the first step whose loss, gradient, parameters or
      BatchNorm statistics were non-finite since the last check, or -1.
    key: the run's augmentation key. An argument, not a closed-over
      constant: embedding a device array as a constant would copy it to the
      host when the step compiles.
    **step_kwargs: the keyword arguments of ``train_step`` but ``base_key``.

  Returns:
    (new_state, metrics, first_bad).
  """
  new_state, metrics = train_step(state, batch, base_key=key, **step_kwargs)
  finite = (jnp.isfinite(metrics["train/loss"]) &
            jnp.isfinite(metrics["train/grad_norm"]) &
            all_finite((new_state["params"], new_state["batch_stats"])))
  # The first bad step stays on device: the loop reads it only where it logs
  # or saves, so a step that does neither moves nothing to the host.
  first_bad = jnp.where((first_bad < 0) & ~finite, new_state["step"],
                        first_bad)
  return new_state, metrics, first_bad
