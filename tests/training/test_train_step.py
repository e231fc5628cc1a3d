"""The metrics of ``cljax.training.train_step`` against independent computations.

One compiled ``checked_step`` on a small batch of the smoke run, checked
against a separately written objective (its gradient by ``jax.grad``), the
float64 NumPy losses of ``naive_losses`` on the same head outputs, the
closed-form learning rate and SGD's update; the single-view and
cross-entropy branches of ``loss_and_monitors`` run eagerly on small arrays.
"""

import functools
import math

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest
from tests import naive_losses as naive
from tests.training import test_train

from cljax import data as data_lib
from cljax import losses
from cljax import models
from cljax.training.optim import make_optimizer
from cljax.training.train_step import checked_step
from cljax.training.train_step import loss_and_monitors

BATCH, STEPS, WARMUP, PEAK, STEP = 8, 10, 2, 0.05, 3
TRAIN_TAU, MONITOR_TAU = 0.5, 1.0
# float32 losses and norms against float64 references, and two separately
# compiled float32 programs (the step and the reference objective) whose
# sums XLA may order differently: a few float32 ulps, relative.
RTOL = 2e-5


def _global_norm(leaves):
  return math.sqrt(sum(float(np.sum(np.asarray(x, np.float64) ** 2))
                       for x in leaves))


@pytest.fixture(scope="module")
def step():
  """One step of the smoke model by checked_step, and what it started from.

  Plain SGD (no momentum, no decay) so that the update is -lr * grad, at
  step 3 of a 10-step cosine schedule with 2 warmup steps. The first three
  steps run too: the rate the optimiser applies comes from its own step
  count in opt_state, which only a run from step 0 keeps equal to the
  logged ``schedule(state["step"])``.
  """
  config = test_train._config(**{
      "steps": STEPS, "data.batch_size": BATCH, "optim.name": "sgd",
      "optim.momentum": 0.0, "optim.weight_decay": 0.0,
      "optim.learning_rate": PEAK, "optim.warmup_steps": WARMUP,
      "optim.schedule": "cosine"})
  assert config.loss.name == "nscl"
  assert config.loss.kwargs.temperature == TRAIN_TAU
  assert config.monitor.temperature == MONITOR_TAU
  data = data_lib.build(config.data, seed=0)
  batch = next(data)
  batch = {"x": np.asarray(batch["x"]), "label": np.asarray(batch["label"])}
  model = models.build(config.model)
  tx, schedule = make_optimizer(config.optim, STEPS)
  variables = model.init(jax.random.key(0),
                         jnp.zeros((2,) + tuple(data.input_shape)),
                         train=False)
  state = {"params": variables["params"],
           "batch_stats": variables.get("batch_stats", {}),
           "opt_state": tx.init(variables["params"]),
           "step": jnp.int32(0)}
  base_key = jax.random.key(1)
  run = jax.jit(functools.partial(checked_step, model=model, tx=tx,
                                  schedule=schedule, config=config, data=data))
  for _ in range(STEP):
    state, _, first_bad = run(state, batch, jnp.int32(-1), base_key)
    assert int(first_bad) == -1
  assert int(state["step"]) == STEP
  new_state, metrics, first_bad = run(state, batch, jnp.int32(-1), base_key)
  yield dict(config=config, data=data, batch=batch, model=model, state=state,
             base_key=base_key, run=run, new_state=new_state,
             metrics={k: float(v) for k, v in metrics.items()},
             first_bad=int(first_bad))
  data.close()


@pytest.fixture(scope="module")
def reference(step):
  """The step's objective written again from the model and cljax.losses.

  The views are the data pipeline's, at the documented key fold_in(base_key,
  step); the loss is losses.nscl called directly, its gradient jax.grad's.
  """
  s = step
  views = jax.jit(s["data"].make_views)(
      jax.random.fold_in(s["base_key"], STEP), s["batch"]["x"])
  b, k = views.shape[:2]
  flat = views.reshape((b * k,) + views.shape[2:])
  labels = s["batch"]["label"]

  def objective(params):
    (h, z), updates = s["model"].apply(
        {"params": params, "batch_stats": s["state"]["batch_stats"]}, flat,
        train=True, mutable=["batch_stats"])
    z = z.reshape(b, k, -1)
    loss = losses.nscl(z, labels, temperature=TRAIN_TAU)
    return loss, (z, updates["batch_stats"])

  (loss, (z, batch_stats)), grads = jax.jit(
      jax.value_and_grad(objective, has_aux=True))(s["state"]["params"])
  return dict(loss=float(loss), z=np.asarray(z, np.float64), labels=labels,
              grads=grads, batch_stats=batch_stats, num_views=k)


def test_the_batch_has_two_views_and_several_classes(step, reference):
  # The checks below need a batch where every anchor has a negative.
  assert reference["num_views"] == 2
  assert len(set(reference["labels"].tolist())) > 1


def test_loss_is_nscl_of_the_head_outputs(step, reference):
  expected, valid = naive.nscl(reference["z"], reference["labels"],
                               temperature=TRAIN_TAU)
  np.testing.assert_allclose(step["metrics"]["train/loss"], expected,
                             rtol=RTOL)
  np.testing.assert_allclose(reference["loss"], expected, rtol=RTOL)
  assert valid == BATCH * 2


def test_grad_norm_is_the_global_norm_of_jax_grad(step, reference):
  expected = _global_norm(jax.tree.leaves(reference["grads"]))
  assert expected > 0
  np.testing.assert_allclose(step["metrics"]["train/grad_norm"], expected,
                             rtol=RTOL)


def test_lr_update_and_param_norms_follow_plain_sgd(step, reference):
  # Cosine after a linear warmup: step 3 is 1 step into an 8-step decay.
  lr = PEAK * 0.5 * (1 + math.cos(math.pi * (STEP - WARMUP) /
                                  (STEPS - WARMUP)))
  metrics = step["metrics"]
  np.testing.assert_allclose(metrics["train/lr"], lr, rtol=RTOL)
  grads = jax.tree.leaves(reference["grads"])
  np.testing.assert_allclose(metrics["train/update_norm"],
                             lr * _global_norm(grads), rtol=RTOL)
  params = jax.tree.leaves(step["state"]["params"])
  expected = [np.asarray(p, np.float64) - lr * np.asarray(g, np.float64)
              for p, g in zip(params, grads)]
  np.testing.assert_allclose(metrics["train/param_norm"],
                             _global_norm(expected), rtol=RTOL)
  # And the state itself moved by exactly that update.
  # The absolute term: a gradient that is 0 in exact arithmetic (a bias
  # that BatchNorm cancels) is float32 noise the two programs round apart.
  for got, want in zip(jax.tree.leaves(step["new_state"]["params"]),
                       expected):
    np.testing.assert_allclose(np.asarray(got, np.float64), want,
                               rtol=RTOL, atol=lr * 1e-5)


def test_state_advances_with_the_forward_passs_batch_statistics(step,
                                                                reference):
  new = step["new_state"]
  assert int(new["step"]) == STEP + 1
  assert step["first_bad"] == -1
  for got, want in zip(jax.tree.leaves(new["batch_stats"]),
                       jax.tree.leaves(reference["batch_stats"])):
    np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=RTOL,
                               atol=1e-6)


def _naive_monitors(z, labels, tau):
  """Every monitored loss of a K >= 2 batch, from naive_losses (float64)."""
  out = {
      "ntxent": naive.ntxent(z, tau)[0],
      "cl_code": naive.cl_double_counted(z, tau)[0],
      "dcl": naive.dcl(z, tau)[0],
      "nscl": naive.nscl(z, labels, tau)[0],
      "nscl_code": naive.nscl(z, labels, tau,
                              positive_in_denominator=True)[0],
      "supcon_out": naive.supcon(z, labels, tau, variant="out")[0],
      "supcon_in": naive.supcon(z, labels, tau, variant="in")[0],
      # Jiang et al.'s estimators at beta = 0, labelled positives incl. self,
      # on the sphere like every other monitor.
      "scl": naive.hard_contrastive(z, labels, 0.0, "different_class", tau,
                                    normalize="sphere")[0],
      "ucl": naive.hard_contrastive(z, labels, 0.0, "all", tau,
                                    normalize="sphere")[0],
  }
  # Every anchor has a negative here, so the gap is over all anchors.
  out["gap"] = out["dcl"] - out["nscl"]
  return out


def test_monitors_are_the_losses_of_the_same_head_outputs(step, reference):
  expected = _naive_monitors(reference["z"], reference["labels"], MONITOR_TAU)
  metrics = step["metrics"]
  for name, value in expected.items():
    np.testing.assert_allclose(metrics[f"train/{name}"], value, rtol=RTOL,
                               atol=1e-6, err_msg=name)
  # No beta in the monitor config: no hard-negative monitors.
  assert "train/hscl" not in metrics and "train/hucl" not in metrics


def _count_anchors_with_a_negative(labels, num_views):
  view_labels = np.repeat(labels, num_views)
  return int(sum(np.any(view_labels != y) for y in view_labels))


def test_valid_anchors_counts_the_anchors_with_a_negative(step, reference):
  count = _count_anchors_with_a_negative(reference["labels"], 2)
  assert step["metrics"]["train/valid_anchors"] == count
  assert step["metrics"]["train/nscl_valid"] == count


def test_one_class_batch_trains_nothing_and_says_so(step):
  # Every label equal: no anchor has a negative, so NSCL has no valid
  # anchor; its loss and gradient are 0 and the state does not move.
  s = step
  batch = {"x": s["batch"]["x"], "label": np.zeros_like(s["batch"]["label"])}
  assert _count_anchors_with_a_negative(batch["label"], 2) == 0
  new_state, metrics, first_bad = s["run"](s["state"], batch, jnp.int32(-1),
                                           s["base_key"])
  assert float(metrics["train/valid_anchors"]) == 0
  assert float(metrics["train/loss"]) == 0.0
  assert float(metrics["train/grad_norm"]) == 0.0
  assert float(metrics["train/update_norm"]) == 0.0
  assert int(first_bad) == -1
  for got, want in zip(jax.tree.leaves(new_state["params"]),
                       jax.tree.leaves(s["state"]["params"])):
    np.testing.assert_array_equal(np.asarray(got), np.asarray(want))


def test_first_bad_records_the_first_non_finite_step_and_keeps_it(step):
  s = step
  nan_batch = {"x": np.full_like(s["batch"]["x"], np.nan),
               "label": s["batch"]["label"]}
  # The step from 3 to 4 is non-finite: the flag records the new step, 4.
  # (Compiled on CPU, the loss and gradient of this batch come out finite:
  # past the first BatchNorm the NaNs become zeros. Its running statistics
  # keep them, and they are among what the flag checks.)
  bad_state, _, first_bad = s["run"](s["state"], nan_batch, jnp.int32(-1),
                                     s["base_key"])
  assert not all(np.all(np.isfinite(np.asarray(leaf)))
                 for leaf in jax.tree.leaves(bad_state["batch_stats"]))
  assert int(first_bad) == STEP + 1
  # A later finite step keeps the first bad one (from a finite state, so the
  # flag is all that carries the fault).
  _, _, first_bad = s["run"](s["state"], s["batch"], first_bad,
                             s["base_key"])
  assert int(first_bad) == STEP + 1


# --- the single-view and cross-entropy branches (eager, no model) ------------

def _config(loss_name, kwargs):
  return ml_collections.ConfigDict({
      "loss": {"name": loss_name, "kwargs": kwargs},
      "monitor": {"temperature": MONITOR_TAU, "beta": None,
                  "normalize": "sphere"}})


def test_single_view_monitors_supcon_and_counts_anchors_with_a_positive():
  # With one view an anchor's only positives are other samples of its class:
  # labels 1, 2 and 4 occur once, so 5 of the 8 anchors are valid.
  labels = np.array([0, 0, 1, 2, 3, 3, 3, 4], np.int32)
  rng = np.random.default_rng(0)
  h = rng.normal(size=(8, 1, 6)).astype(np.float32)
  z = rng.normal(size=(8, 1, 5)).astype(np.float32)
  config = _config("supcon", {"temperature": 0.2})
  loss, monitors = loss_and_monitors(jnp.asarray(h), jnp.asarray(z), labels,
                                     config, jax.random.key(0))
  counts = np.bincount(labels)
  assert int(monitors["valid_anchors"]) == int(np.sum(counts[labels] > 1))
  assert int(monitors["valid_anchors"]) == 5
  np.testing.assert_allclose(float(loss), naive.supcon(z, labels, 0.2)[0],
                             rtol=RTOL)
  assert sorted(monitors) == ["supcon_in", "supcon_out", "valid_anchors"]
  for variant in ("out", "in"):
    np.testing.assert_allclose(
        float(monitors[f"supcon_{variant}"]),
        naive.supcon(z, labels, MONITOR_TAU, variant=variant)[0], rtol=RTOL,
        err_msg=variant)


def test_cross_entropy_monitors_the_encoder_features():
  # P2's CE: the loss is on the classifier's logits (every view labelled
  # with its sample's class); the monitors see h, and there are no anchors.
  labels = np.array([0, 1, 2, 0, 1, 2], np.int32)
  rng = np.random.default_rng(1)
  h = rng.normal(size=(6, 2, 5)).astype(np.float32)
  logits = rng.normal(size=(6, 2, 3)).astype(np.float32)
  config = _config("cross_entropy", {})
  loss, monitors = loss_and_monitors(jnp.asarray(h), jnp.asarray(logits),
                                     labels, config, jax.random.key(0))
  expected, _ = naive.cross_entropy(logits.reshape(12, 3),
                                    np.repeat(labels, 2))
  np.testing.assert_allclose(float(loss), expected, rtol=RTOL)
  assert "valid_anchors" not in monitors
  for name, value in _naive_monitors(h, labels, MONITOR_TAU).items():
    np.testing.assert_allclose(float(monitors[name]), value, rtol=RTOL,
                               atol=1e-6, err_msg=name)
