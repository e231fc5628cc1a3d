"""``cljax.training.optim.make_optimizer`` against closed forms and NumPy references.

Every expected value here is written from the formula (the schedules, SGD,
Adam, AdamW, LARS, global-norm clipping), in float64 NumPy, never by calling
optax: a field that ``make_optimizer`` wires to the wrong optax argument (or a
default that drifts) shows up as a numeric mismatch.
"""

import math
import re

import jax
import ml_collections
import numpy as np
import pytest

from cljax.training import optim

# float32 arithmetic in optax against float64 references: a few ulps of
# float32 (2^-23 ~ 1.2e-7) per operation, over a handful of operations.
RTOL = 1e-5


def _optim(**fields):
  return ml_collections.ConfigDict({"learning_rate": 0.1, "name": "sgd",
                                    **fields})


def _lr(schedule, step):
  return float(schedule(step))


# --- learning-rate schedules --------------------------------------------------

STEPS, WARMUP, PEAK = 100, 10, 0.4
# Step 0, mid-warmup, end of warmup, mid-decay, the run's last step (the loop
# evaluates the schedule at steps 0 .. steps - 1).
PROBES = (0, 5, WARMUP, 55, STEPS - 1)


def _warmup_then(decay):
  """Linear warmup from 0 to PEAK over WARMUP steps, then decay(t - WARMUP)."""
  return lambda t: PEAK * t / WARMUP if t < WARMUP else decay(t - WARMUP)


def _cosine(t):
  horizon = STEPS - WARMUP
  return PEAK * 0.5 * (1 + math.cos(math.pi * min(t, horizon) / horizon))


def _poly(power):
  horizon = STEPS - WARMUP
  return lambda t: PEAK * (1 - min(t, horizon) / horizon) ** power


@pytest.mark.parametrize("kind,fields,decay", [
    ("cosine", {}, _cosine),
    ("poly", {}, _poly(5.0)),               # the documented default power
    ("poly", {"power": 2.0}, _poly(2.0)),
    ("constant", {}, lambda t: PEAK),
])
def test_schedule_with_warmup_matches_its_closed_form(kind, fields, decay):
  _, schedule = optim.make_optimizer(
      _optim(learning_rate=PEAK, warmup_steps=WARMUP, schedule=kind,
             **fields), STEPS)
  expected = _warmup_then(decay)
  for step in PROBES:
    # The absolute term: near the end the cosine's 1 + cos(...) cancels, so
    # float32 keeps an absolute, not a relative, error of a few ulps of PEAK.
    np.testing.assert_allclose(_lr(schedule, step), expected(step),
                               rtol=RTOL, atol=PEAK * 1e-6,
                               err_msg=f"{kind} at step {step}")


def test_schedule_values_at_the_probes_are_the_intended_ones():
  # The closed forms themselves, at points where they are known exactly: the
  # warmup starts at 0, is halfway at step 5, and the decay starts at the peak.
  _, schedule = optim.make_optimizer(
      _optim(learning_rate=PEAK, warmup_steps=WARMUP, schedule="cosine"),
      STEPS)
  assert _lr(schedule, 0) == 0.0
  np.testing.assert_allclose(_lr(schedule, 5), PEAK / 2, rtol=RTOL)
  np.testing.assert_allclose(_lr(schedule, WARMUP), PEAK, rtol=RTOL)
  # Halfway through the decay the cosine is at half the peak.
  np.testing.assert_allclose(_lr(schedule, WARMUP + (STEPS - WARMUP) // 2),
                             PEAK / 2, rtol=RTOL)


def test_cosine_is_the_default_schedule_and_no_warmup_starts_at_the_peak():
  _, schedule = optim.make_optimizer(
      ml_collections.ConfigDict({"name": "adam", "learning_rate": PEAK}),
      STEPS)
  for step in (0, 25, 50, STEPS - 1):
    expected = PEAK * 0.5 * (1 + math.cos(math.pi * step / STEPS))
    np.testing.assert_allclose(_lr(schedule, step), expected, rtol=RTOL,
                               atol=PEAK * 1e-6)


def test_a_plain_dict_config_works():
  # The docstring promises "a ConfigDict (or mapping)".
  _, schedule = optim.make_optimizer(
      {"name": "sgd", "learning_rate": 0.3, "schedule": "constant"}, 10)
  np.testing.assert_allclose(_lr(schedule, 7), 0.3, rtol=RTOL)


@pytest.mark.parametrize("field,value,choices", [
    ("schedule", "linear", optim.SCHEDULES),
    ("name", "rmsprop", optim.OPTIMIZERS),
])
def test_unknown_names_list_the_valid_ones(field, value, choices):
  message = (f"Unknown config.optim.{field} {value!r}; choose one of "
             f"{list(choices)}.")
  with pytest.raises(ValueError, match=re.escape(message)):
    optim.make_optimizer(_optim(**{field: value}), 10)


# --- optimisers on a tiny parameter tree --------------------------------------

def _tree(seed, scale=1.0, zero_bias=False):
  """A Dense layer and a BatchNorm scale, the leaves a mask would skip."""
  rng = np.random.default_rng(seed)
  return {
      "dense": {"kernel": scale * rng.normal(size=(3, 4)),
                "bias": (np.zeros(4) if zero_bias else
                         scale * rng.normal(size=4))},
      "bn": {"scale": 1.0 + 0.1 * rng.normal(size=4)},
  }


def _f32(tree):
  return jax.tree.map(lambda x: np.asarray(x, np.float32), tree)


def _run(optim_fields, steps, params, grads_list):
  """Applies make_optimizer's tx for len(grads_list) steps; float64 results."""
  tx, _ = optim.make_optimizer(ml_collections.ConfigDict(optim_fields), steps)
  params = _f32(params)
  state = tx.init(params)
  out = []
  for grads in grads_list:
    updates, state = tx.update(_f32(grads), state, params)
    out.append(jax.tree.map(lambda u: np.asarray(u, np.float64), updates))
    params = jax.tree.map(lambda p, u: p + u, params, updates)
  return out


def _assert_trees_close(actual, expected, rtol=RTOL, atol=0.0):
  flat_a = jax.tree_util.tree_flatten_with_path(actual)[0]
  flat_e = jax.tree.leaves(expected)
  assert len(flat_a) == len(flat_e)
  for (path, a), e in zip(flat_a, flat_e):
    np.testing.assert_allclose(a, e, rtol=rtol, atol=atol,
                               err_msg=jax.tree_util.keystr(path))


def _cosine_lr(peak, steps):
  """The default schedule with no warmup: the rate of update t (0-based)."""
  return lambda t: peak * 0.5 * (1 + math.cos(math.pi * t / steps))


def _leaves(tree):
  return [np.asarray(x, np.float64) for x in jax.tree.leaves(tree)]


def _bias_correction(decay, count):
  """1 - decay^count as optax computes it: the power rounded to float32.

  The subtraction cancels: 1 - 0.999^2 = 0.002 keeps only the float32
  rounding of 0.999^2 (6e-8 absolute), a 3e-5 relative error in the
  correction that exact float64 would not share. Rounding the power the same
  way keeps the comparison at float32 precision instead of widening it.
  """
  return 1.0 - float(np.float32(np.float32(decay) ** count))


def _numpy_optimizer(kind, lr, wd, momentum=0.9, b1=0.9, b2=0.999, eps=1e-8,
                     trust=1e-3):
  """The update rule of ``kind`` on a list of float64 leaves, per the papers.

  sgd: coupled L2 (g + wd p) into heavy-ball momentum m = g' + mu m, u = -lr m.
  adam: coupled L2 into Adam (Kingma & Ba) with bias correction.
  adamw: Adam on g, decoupled decay: u = -lr (m_hat / (sqrt(v_hat) + eps) +
    wd p) (Loshchilov & Hutter).
  lars: g' = g + wd p, per-leaf trust ratio r = trust ||p|| / ||g'|| (1 when
    either norm is 0), momentum on the scaled step: m = -lr r g' + mu m, u = m
    (You et al., in optax's placement of the learning rate).
  """
  state = {"m": None, "v": None, "t": 0}

  def step(params, grads):
    t = state["t"]
    if state["m"] is None:
      state["m"] = [np.zeros_like(g) for g in grads]
      state["v"] = [np.zeros_like(g) for g in grads]
    updates = []
    for i, (p, g) in enumerate(zip(params, grads)):
      if kind == "sgd":
        state["m"][i] = (g + wd * p) + momentum * state["m"][i]
        updates.append(-lr(t) * state["m"][i])
      elif kind in ("adam", "adamw"):
        g_eff = g + wd * p if kind == "adam" else g
        state["m"][i] = b1 * state["m"][i] + (1 - b1) * g_eff
        state["v"][i] = b2 * state["v"][i] + (1 - b2) * g_eff ** 2
        m_hat = state["m"][i] / _bias_correction(b1, t + 1)
        v_hat = state["v"][i] / _bias_correction(b2, t + 1)
        u = m_hat / (np.sqrt(v_hat) + eps)
        if kind == "adamw":
          u = u + wd * p
        updates.append(-lr(t) * u)
      elif kind == "lars":
        g_eff = g + wd * p
        p_norm, g_norm = np.linalg.norm(p), np.linalg.norm(g_eff)
        ratio = 1.0 if p_norm == 0 or g_norm == 0 else trust * p_norm / g_norm
        state["m"][i] = -lr(t) * ratio * g_eff + momentum * state["m"][i]
        updates.append(state["m"][i])
    state["t"] = t + 1
    return updates

  return step


@pytest.mark.parametrize("name,wd,momentum", [
    ("sgd", 0.0, 0.0),     # momentum 0: plain SGD, as documented
    ("sgd", 0.05, 0.9),
    ("adam", 0.0, None),
    ("adam", 0.05, None),  # coupled L2 through Adam's normalisation
    ("adamw", 0.05, None),  # decoupled, scaled by the learning rate
    ("lars", 0.05, 0.9),
    ("lars", 0.0, 0.5),
])
def test_two_steps_match_the_numpy_update_rule(name, wd, momentum):
  steps, peak = 4, 0.1
  fields = {"name": name, "learning_rate": peak, "weight_decay": wd}
  if momentum is not None:
    fields["momentum"] = momentum
  params = _tree(0)
  grads = [_tree(1, scale=0.3), _tree(2, scale=0.3)]
  actual = _run(fields, steps, params, grads)

  reference = _numpy_optimizer(name, _cosine_lr(peak, steps), wd,
                               momentum=0.9 if momentum is None else momentum)
  # The reference steps from the float32 parameters the optimiser saw.
  p = _leaves(_f32(params))
  for got, g in zip(actual, grads):
    expected = reference(p, _leaves(_f32(g)))
    _assert_trees_close(got, jax.tree.unflatten(jax.tree.structure(params),
                                                expected))
    p = [pi + ui for pi, ui in zip(p, _leaves(got))]


def test_lars_trust_ratio_scales_each_leaf_by_its_own_norms():
  # One step, no momentum history, no decay: u = -lr * 1e-3 * ||p|| / ||g|| *
  # g per leaf, so every leaf's update has norm lr * 1e-3 * ||p||, whatever
  # the size of its gradient. A zero (fresh) bias has ||p|| = 0 and takes the
  # plain step -lr * g.
  peak = 0.5
  params = _tree(0, zero_bias=True)
  grads = _tree(3, scale=7.0)
  [updates] = _run({"name": "lars", "learning_rate": peak,
                    "schedule": "constant"}, 10, params, [grads])
  p32, g32 = _f32(params), _f32(grads)
  for leaf in ("dense/kernel", "bn/scale"):
    a, b = leaf.split("/")
    np.testing.assert_allclose(
        np.linalg.norm(updates[a][b]),
        peak * 1e-3 * np.linalg.norm(p32[a][b].astype(np.float64)),
        rtol=RTOL, err_msg=leaf)
  np.testing.assert_allclose(updates["dense"]["bias"],
                             -peak * g32["dense"]["bias"], rtol=RTOL)


@pytest.mark.parametrize("name", ["sgd", "adamw", "lars"])
def test_weight_decay_reaches_every_leaf(name):
  # make_optimizer documents no weight-decay mask: biases and BatchNorm
  # scales decay like kernels. With a zero gradient the decay is the whole
  # update, so a masked leaf would show a zero update.
  wd, peak = 0.1, 0.2
  params = _tree(0)
  zero = jax.tree.map(np.zeros_like, params)
  [updates] = _run({"name": name, "learning_rate": peak, "weight_decay": wd,
                    "schedule": "constant", "momentum": 0.0}, 10, params,
                   [zero])
  p32 = _f32(params)
  for path, u in jax.tree_util.tree_flatten_with_path(updates)[0]:
    p = np.asarray(p32[path[0].key][path[1].key], np.float64)
    if name == "lars":
      # g' = wd p, so the trust ratio 1e-3 ||p|| / ||g'|| is 1e-3 / wd and
      # the update -lr (1e-3 / wd) wd p = -lr 1e-3 p.
      expected = -peak * 1e-3 * p
    else:
      expected = -peak * wd * p
    np.testing.assert_allclose(u, expected, rtol=RTOL,
                               err_msg=jax.tree_util.keystr(path))


# --- gradient clipping --------------------------------------------------------

def _global_norm(tree):
  return math.sqrt(sum(float(np.sum(np.asarray(x, np.float64) ** 2))
                       for x in jax.tree.leaves(tree)))


def test_clipping_scales_a_large_gradient_to_exactly_the_threshold():
  # Plain SGD at rate 1: the update is minus the clipped gradient.
  clip = 0.5
  grads = _tree(4, scale=3.0)
  assert _global_norm(_f32(grads)) > 10 * clip
  [updates] = _run({"name": "sgd", "learning_rate": 1.0, "momentum": 0.0,
                    "schedule": "constant", "clip_norm": clip}, 10,
                   _tree(0), [grads])
  np.testing.assert_allclose(_global_norm(updates), clip, rtol=RTOL)
  # Scaled as a whole (the global norm), not leaf by leaf: the direction stays.
  factor = clip / _global_norm(_f32(grads))
  _assert_trees_close(updates, jax.tree.map(
      lambda g: -factor * np.asarray(g, np.float64), _f32(grads)))


def test_clipping_leaves_a_small_gradient_alone():
  grads = _tree(4, scale=0.01)
  clip = 10 * _global_norm(_f32(grads))
  [updates] = _run({"name": "sgd", "learning_rate": 1.0, "momentum": 0.0,
                    "schedule": "constant", "clip_norm": clip}, 10,
                   _tree(0), [grads])
  _assert_trees_close(updates, jax.tree.map(
      lambda g: -np.asarray(g, np.float64), _f32(grads)))


def test_clipping_comes_before_adams_moments():
  # Clipped first, Adam's first update is still lr * g / (|g| + eps): the
  # clip scales m_hat and sqrt(v_hat) alike. Two steps of different sizes
  # tell the order apart: unclipped, the second (10x larger) gradient would
  # dominate the moments; clipped, both enter with norm `clip`.
  clip, peak, steps = 1.0, 0.1, 4
  g1, g2 = _tree(5, scale=1.0), _tree(6, scale=10.0)
  actual = _run({"name": "adam", "learning_rate": peak, "clip_norm": clip},
                steps, _tree(0), [g1, g2])
  clipped = [[x * min(1.0, clip / _global_norm(_f32(g)))
              for x in _leaves(_f32(g))] for g in (g1, g2)]
  reference = _numpy_optimizer("adam", _cosine_lr(peak, steps), 0.0)
  p = _leaves(_f32(_tree(0)))
  for got, g in zip(actual, clipped):
    expected = reference(p, g)
    _assert_trees_close(got, jax.tree.unflatten(
        jax.tree.structure(_tree(0)), expected))
    p = [pi + ui for pi, ui in zip(p, _leaves(got))]
