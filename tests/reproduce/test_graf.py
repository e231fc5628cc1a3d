"""Graf et al. (P2) in the train loop: CE variants, shared randomness, fit."""

import json
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from cljax.analysis import checkpoints
from cljax import data as data_lib
from cljax.training import evaluators
from cljax import models
from cljax import probes
from cljax import theory
from cljax.training import train
from experiments.graf import noisy_labels as graf_noisy_labels
from experiments.graf import supcon_vs_ce as graf_supcon_vs_ce


def _rows(workdir):
  return [json.loads(line) for line in open(workdir / "metrics.jsonl")]


# --- the classifier head -----------------------------------------------------

def _classifier_model(**head_kwargs):
  return models.build({"encoder": "mlp",
                       "encoder_kwargs": {"widths": (16, 12)},
                       "head": "classifier",
                       "head_kwargs": {"num_classes": 4, **head_kwargs}})


def test_ce_fix_has_no_trainable_classifier_and_is_a_simplex():
  model = _classifier_model(fixed="simplex", radius=2.0)
  x = jax.random.normal(jax.random.key(0), (5, 7))
  variables = model.init(jax.random.key(1), x, train=False)
  assert set(variables["params"]) == {"encoder"}
  w = np.asarray(model.head.weights(12))
  # Rows of norm r with inner products -r^2/(C-1): a regular simplex.
  want = 4.0 * (np.eye(4) * (1 + 1 / 3) - 1 / 3)
  np.testing.assert_allclose(w @ w.T, want, atol=1e-5)
  h, logits = model.apply(variables, x, train=False)
  np.testing.assert_allclose(logits, h @ w.T, rtol=1e-5, atol=1e-5)


def test_ce_on_the_sphere_ignores_the_feature_norm():
  model = _classifier_model(normalize=True)
  x = jax.random.normal(jax.random.key(0), (5, 7))
  variables = model.init(jax.random.key(1), x, train=False)
  assert variables["params"]["head"]["dense"]["kernel"].shape == (12, 4)
  assert "bias" not in variables["params"]["head"]["dense"]
  h, logits = model.apply(variables, x, train=False)
  w = variables["params"]["head"]["dense"]["kernel"]
  unit = h / np.linalg.norm(h, axis=-1, keepdims=True)
  np.testing.assert_allclose(logits, unit @ w, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("kwargs,match", [
    ({"fixed": "riesz"}, "fixed"),
    ({"num_classes": 1}, "num_classes"),
    ({"radius": 0.0}, "radius"),
])
def test_bad_classifier_fails_naming_the_field(kwargs, match):
  with pytest.raises(ValueError, match=match):
    models.build({"encoder": "mlp", "head": "classifier",
                  "head_kwargs": {"num_classes": 4, **kwargs}})


def test_ce_fix_needs_enough_feature_dimensions():
  model = _classifier_model(fixed="simplex", num_classes=20)
  with pytest.raises(ValueError, match="widen the encoder"):
    model.init(jax.random.key(0), jnp.ones((2, 7)), train=False)


# --- pairing CE with SupCon --------------------------------------------------

def test_supcon_and_ce_runs_share_encoder_init_and_batches():
  supcon = graf_supcon_vs_ce.get_config("tiny")
  encoders, batches = [], []
  for loss, extra in (("supcon", {}), ("cross_entropy", {}),
                      ("cross_entropy", {"fixed": "simplex"})):
    config = graf_supcon_vs_ce.get_config("tiny")
    config.loss.name = loss
    config.classifier.update(extra)
    data = data_lib.build(config.data, seed=config.seed)
    config = evaluators.with_classifier(config, data.num_classes)
    model = models.build(config.model)
    init_key, _ = jax.random.split(jax.random.key(config.seed))
    x = jnp.zeros((2,) + data.input_shape)
    encoders.append(model.init(init_key, x, train=False)["params"]["encoder"])
    batches.append([next(data)["index"] for _ in range(3)])
  assert supcon.loss.name == "supcon"
  for other in encoders[1:]:
    jax.tree.map(np.testing.assert_array_equal, encoders[0], other)
  for other in batches[1:]:
    np.testing.assert_array_equal(np.stack(batches[0]), np.stack(other))


# --- the loop ----------------------------------------------------------------

def test_ce_run_fits_stops_and_loads(tmp_path):
  config = graf_noisy_labels.get_config("tiny")
  config.loss.name = "cross_entropy"
  config.evals.fit.classifier = "head"   # P2's configs use "linear"
  config.evals.fit.threshold = 0.7
  config.data.label_noise = 0.2
  summary = train.train_and_evaluate(config, str(tmp_path), verbose=False)
  rows = _rows(tmp_path)
  fits = [r for r in rows if "fit/train_acc" in r]
  assert fits and all(r["step"] % config.evals.fit.every == 0 for r in fits)
  first = next(r["step"] for r in fits if r["fit/train_acc"] >= 0.7)
  assert summary["fit/step"] == first == summary["step"] < config.steps
  # 20 % of the labels are flipped to a wrong class: a prediction matches at
  # most one of the noisy and the clean label there, so the two accuracies
  # sum to at most 2 - 0.2.
  last = fits[-1]
  assert last["fit/train_acc"] + last["fit/clean_train_acc"] <= 1.8 + 1e-6
  # The checkpoint reloads as a classifier; its own predictions give the
  # logged training accuracy.
  run = checkpoints.load(str(tmp_path))
  assert run.config.model.head == "classifier"
  data = data_lib.build(run.config.data, seed=run.config.seed)
  x, y_noisy, _ = data.train_arrays(normalize=False)
  _, logits = run.features(x)
  assert logits.shape == (x.shape[0], 10)
  np.testing.assert_allclose(np.mean(np.argmax(logits, -1) == y_noisy),
                             last["fit/train_acc"], atol=1e-6)
  # Re-running the finished work dir trains no further.
  again = train.train_and_evaluate(config, str(tmp_path), verbose=False)
  assert again["step"] == summary["step"]
  assert again["fit/step"] == first


def _naive_mean_classifier_hits(h, y, num_classes):
  """Correct predictions of P2's class-mean rule, one sample at a time.

  The fit evaluator's "mean" classifier on SupCon's objective features
  (``h`` on the unit sphere; no projection head): the centres are the plain
  means of the normalised training features, not renormalised, and a
  sample goes to ``argmax_c <u, mu_c>``, the lowest id on a tie. Computed
  in float64.

  Returns:
    (hits, near_ties): the number of correct predictions and of samples
    whose best two scores differ by less than 1e-5 (float32 round-off of
    scores of order 1), which a float32 classifier may break either way.
  """
  u = np.asarray(h, np.float64)
  u = np.stack([v / math.sqrt(float(v @ v)) for v in u])
  # Every class occurs: an empty class would be a zero centre (score 0),
  # which the evaluator does not mask.
  assert sorted(set(y.tolist())) == list(range(num_classes))
  centres = [np.mean(u[y == c], axis=0) for c in range(num_classes)]
  hits = near_ties = 0
  for v, label in zip(u, y):
    scores = [float(v @ m) for m in centres]
    best = 0
    for c in range(1, num_classes):
      if scores[c] > scores[best]:   # strict: ties keep the lower id
        best = c
    hits += int(best == label)
    runner_up = max(scores[c] for c in range(num_classes) if c != best)
    near_ties += int(scores[best] - runner_up < 1e-5)
  return hits, near_ties


def test_supcon_fit_uses_the_class_mean_classifier(tmp_path):
  config = graf_supcon_vs_ce.get_config("tiny")
  config.evals.fit.classifier = "mean"   # P2's configs use "linear"
  summary = train.train_and_evaluate(config, str(tmp_path), verbose=False)
  rows = _rows(tmp_path)
  assert "train/supcon_out" in rows[-1] and "train/dcl" not in rows[-1]
  np.testing.assert_allclose(rows[-1]["train/loss"],
                             rows[-1]["train/supcon_out"], rtol=1e-5)
  run = checkpoints.load(str(tmp_path))
  data = data_lib.build(run.config.data, seed=run.config.seed)
  x, y, _ = data.train_arrays(normalize=False)
  h, _ = run.features(x)
  hits, near_ties = _naive_mean_classifier_hits(h, y, num_classes=10)
  # The run predicts in float32: only a sample whose two best scores lie
  # within float32 round-off of each other may go the other way.
  assert abs(hits - round(summary["fit/train_acc"] * len(y))) <= near_ties
  for name in ("distance", "angular_mean", "angular_std"):
    assert np.isfinite(summary[f"eval/simplex/{name}"])


def test_ce_monitors_supcon_of_its_features(tmp_path):
  config = graf_supcon_vs_ce.get_config("tiny")
  config.loss.name = "cross_entropy"
  config.classifier.normalize = True
  config.steps = 5
  train.train_and_evaluate(config, str(tmp_path), verbose=False)
  row = _rows(tmp_path)[-1]
  # CE of 10 classes starts near log 10; the tracked SupCon is another number.
  assert 0.0 < row["train/loss"] < 2 * np.log(10)
  assert np.isfinite(row["train/supcon_out"])
  assert row["train/supcon_out"] != pytest.approx(row["train/loss"])


# --- metrics and errors ------------------------------------------------------

def test_simplex_geometry_is_zero_at_a_regular_simplex():
  means = theory.simplex_etf(5, 8, radius=3.0)
  rng = np.random.default_rng(0)
  q, _ = np.linalg.qr(rng.standard_normal((8, 8)))
  labels = np.repeat(np.arange(5), 4)
  out = evaluators.simplex_geometry(means[labels] @ q, labels, 5)
  assert out["distance"] == pytest.approx(0.0, abs=1e-5)
  assert out["angular_mean"] == pytest.approx(out["angular_target"], abs=1e-6)
  assert out["angular_target"] == pytest.approx(
      1 - np.arccos(-1 / 4) / np.pi)
  assert out["angular_std"] == pytest.approx(0.0, abs=1e-6)
  assert out["sample_angular"] == pytest.approx(1.0, abs=1e-6)
  # Orthogonal class means (cos 0) are not a simplex.
  ortho = evaluators.simplex_geometry(np.eye(5)[labels], labels, 5)
  assert ortho["distance"] > 0.2 and ortho["angular_mean"] == pytest.approx(
      0.5)


@pytest.mark.parametrize("override,match", [
    ({"loss.name": "cross_entropy", "model.head": "mlp"}, "head='none'"),
    ({"model.head": "classifier"}, "cross_entropy"),
    ({"evals.fit.classifier": "head"}, "trained classifier head"),
    ({"evals.fit.classifier": "knn"}, "fit.classifier"),
    ({"evals.fit.threshold": 1.5}, "threshold"),
    ({"loss.name": "crossentropy"}, "cross_entropy"),
])
def test_bad_graf_config_fails_at_start(tmp_path, override, match):
  config = graf_supcon_vs_ce.get_config("tiny")
  for path, value in override.items():
    node = config
    *parents, leaf = path.split(".")
    for p in parents:
      node = node[p]
    node[leaf] = value
  with pytest.raises(ValueError, match=match):
    train.train_and_evaluate(config, str(tmp_path), verbose=False)


def test_ce_is_fit_by_the_same_retrained_linear_rule_as_supcon(tmp_path):
  """P2's configs judge CE's fit by a linear layer retrained on its frozen
  features (as SupCon's), not by CE's own head."""
  config = graf_supcon_vs_ce.get_config("tiny")
  config.loss.name = "cross_entropy"
  summary = train.train_and_evaluate(config, str(tmp_path), verbose=False)
  run = checkpoints.load(str(tmp_path))
  data = data_lib.build(run.config.data, seed=run.config.seed)
  x, y, _ = data.train_arrays(normalize=False)
  h, logits = run.features(x)
  probe = probes.linear_probe(
      h, y, num_classes=10, key=jax.random.key(config.seed), steps=1000,
      learning_rate=0.1, batch_size=256, weight_decay=1e-3, optimizer="sgd",
      momentum=0.9, decay_power=5.0)
  acc = np.mean(np.asarray(probes.linear_probe_predict(h, probe.weights))
                == y)
  np.testing.assert_allclose(acc, summary["fit/train_acc"], atol=1e-6)
  # At 20 steps the head has not fit the training set: had the head decided
  # "fit", the logged accuracy would have been its own.
  assert logits.shape == (x.shape[0], 10)
  assert np.mean(np.argmax(logits, -1) == y) != pytest.approx(acc, abs=1e-6)


@pytest.mark.parametrize("module", [graf_supcon_vs_ce, graf_noisy_labels])
def test_presets(module):
  paper = module.get_config()
  assert paper.data.name == "cifar10" and paper.steps == 100_000
  assert paper.model.encoder == "resnet18"
  assert paper.data.sampler == "iid" and paper.data.batch_size == 256
  assert (paper.optim.name, paper.optim.learning_rate, paper.optim.momentum,
          paper.optim.weight_decay, paper.optim.schedule,
          paper.optim.power) == ("sgd", 0.1, 0.9, 1e-4, "poly", 5.0)
  assert module.get_config("cpu").data.name.startswith("cljax_")
  # One fit rule for both losses at every scale (P2's retrained_linear).
  for preset in ("", "cpu", "tiny"):
    assert module.get_config(preset).evals.fit.classifier == "linear"
  with pytest.raises(ValueError, match="preset"):
    module.get_config("huge")


def test_regime_presets():
  mnist = graf_supcon_vs_ce.get_config("mnist")
  assert (mnist.data.name, mnist.model.encoder) == ("cljax_mnist", "convnet")
  assert mnist.data.augment.flip_prob == 0.0
  slow, cpu = (graf_noisy_labels.get_config(p) for p in ("cpu_slow", "cpu"))
  assert slow.optim.learning_rate == cpu.optim.learning_rate / 10
  assert slow.data.name == cpu.data.name and slow.steps > cpu.steps
  # The cpu presets' features are signed: the MLP's last layer is affine.
  assert not graf_supcon_vs_ce.get_config("cpu").model.encoder_kwargs[
      "activate_final"]


# --- CPU-scale reproduction (minutes; pytest -m slow) -----------------------

@pytest.mark.slow
def test_supcon_iterations_to_fit_grow_superlinearly(tmp_path):
  """P2 Section 5.3 at the 'cpu' preset: SupCon's fit step is convex in p.

  experiments/results/graf.md measured 50, 375 and 2850 iterations at
  p = 0, 0.4 and 0.8 (seed 0); the tiny version of this pipeline runs in CI
  through tests/reproduce/test_colab_graf.py.
  """
  steps = []
  for p in (0.0, 0.4, 0.8):
    config = graf_noisy_labels.get_config("cpu")
    config.data.label_noise = p
    summary = train.train_and_evaluate(config, str(tmp_path / f"p{p}"),
                                       verbose=False)
    assert summary["fit/step"] is not None, f"p={p} did not fit"
    steps.append(summary["fit/step"])
  assert steps[0] < steps[1] < steps[2]
  # Superlinear: the second increment of p costs more than the first.
  assert steps[2] - steps[1] > steps[1] - steps[0]
