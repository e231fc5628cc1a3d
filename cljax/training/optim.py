"""The optimiser factory of the training drivers: ``config.optim`` -> optax.

Both drivers (``cljax.training.train`` and ``cljax.unconstrained``) build their
optimiser here, so a field means the same thing in every experiment config.
"""

from __future__ import annotations

import optax

SCHEDULES = ("constant", "cosine", "poly")
OPTIMIZERS = ("adam", "adamw", "lars", "sgd")


def make_optimizer(optim, steps: int
                   ) -> tuple[optax.GradientTransformation, optax.Schedule]:
  """An optax optimiser and its learning-rate schedule from ``config.optim``.

  Args:
    optim: a ConfigDict (or mapping) with fields name (sgd | adam | adamw |
      lars), learning_rate, and optionally warmup_steps (0), schedule
      (constant | cosine | poly; default cosine), power (poly, 5), momentum
      (0.9; 0 is plain SGD), weight_decay (0), clip_norm (0 = none).
    steps: the run's number of optimisation steps (the decay horizon).

  Returns:
    ``(tx, schedule)``: schedule maps a step to its learning rate.

  Raises:
    ValueError: an unknown name or schedule (listing the valid ones).

  >>> import ml_collections
  >>> tx, lr = make_optimizer(ml_collections.ConfigDict(
  ...     {"name": "sgd", "learning_rate": 0.1, "schedule": "constant"}), 10)
  >>> round(float(lr(3)), 6)
  0.1
  """
  lr = float(optim["learning_rate"])
  warmup = int(optim.get("warmup_steps", 0))
  kind = optim.get("schedule", "cosine")
  if kind == "cosine":
    decay = optax.cosine_decay_schedule(lr, max(steps - warmup, 1))
  elif kind == "poly":
    decay = optax.polynomial_schedule(lr, 0.0, optim.get("power", 5.0),
                                      max(steps - warmup, 1))
  elif kind == "constant":
    decay = optax.constant_schedule(lr)
  else:
    raise ValueError(f"Unknown config.optim.schedule {kind!r}; choose one of "
                     f"{list(SCHEDULES)}.")
  schedule = decay if warmup == 0 else optax.join_schedules(
      [optax.linear_schedule(0.0, lr, warmup), decay], [warmup])
  name = optim["name"]
  wd = float(optim.get("weight_decay", 0.0))
  momentum = float(optim.get("momentum", 0.9))
  if name == "sgd":
    tx = optax.chain(optax.add_decayed_weights(wd),
                     optax.sgd(schedule, momentum=momentum))
  elif name == "adam":
    tx = optax.chain(optax.add_decayed_weights(wd), optax.adam(schedule))
  elif name == "adamw":
    tx = optax.adamw(schedule, weight_decay=wd)
  elif name == "lars":
    tx = optax.lars(schedule, weight_decay=wd, momentum=momentum)
  else:
    raise ValueError(f"Unknown config.optim.name {name!r}; choose one of "
                     f"{list(OPTIMIZERS)}.")
  clip = float(optim.get("clip_norm", 0.0))
  if clip > 0:
    tx = optax.chain(optax.clip_by_global_norm(clip), tx)
  return tx, schedule
