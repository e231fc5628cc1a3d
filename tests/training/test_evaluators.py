"""Evaluators as plug-ins: each on a tiny embedded run, one embedding per
split and step with the variables on device, and the start-up errors."""

import json
import math
import types

import jax
import ml_collections
import numpy as np
import pytest

from cljax.analysis import checkpoints
from cljax import data as data_lib
from cljax.training import evaluators
from cljax import geometry
from cljax.training import startup
from cljax.training import train
from cljax.training.evaluators import _features
from experiments import default
from experiments.graf import noisy_labels as graf_noisy_labels
from tests import naive_losses as naive


def _rows(workdir):
  return [json.loads(line) for line in open(workdir / "metrics.jsonl")]


def _naive_ncc_accuracy(train_x, train_y, test_x, test_y):
  """Nearest class centre by Euclidean distance, one sample at a time."""
  classes = sorted(set(train_y.tolist()))
  centres = {c: np.mean(train_x[train_y == c], axis=0) for c in classes}
  hits = 0
  for x, y in zip(test_x.astype(np.float64), test_y):
    dists = [np.sum((x - centres[c]) ** 2) for c in classes]
    hits += classes[int(np.argmin(dists))] == y
  return hits / len(test_y)


def _naive_mean_classifier_accuracy(x, y):
  """argmax_c <x, mean_c> over the training set itself."""
  classes = sorted(set(y.tolist()))
  means = np.stack([np.mean(x[y == c], axis=0) for c in classes])
  hits = sum(classes[int(np.argmax(means @ xi))] == yi for xi, yi in zip(x, y))
  return hits / len(y)


def _naive_whole_split_losses(run, max_examples):
  """DCL, NSCL, their gap and the Theorem-1 bound by NumPy loops.

  The dataset_gap evaluator (``evaluate_split`` with its defaults: K = 2
  views, "augmented_and_clean", tau = 1, sphere) reads the first
  ``max_examples`` rows of the clean train split in file order; view 1 is
  the augmented input and view 2 the clean one. P2's runs augment with
  "identity", so both views are the clean input and the run's own forward
  pass gives them.
  """
  assert run.config.data.augment.mode == "identity"
  x, y = data_lib.load_split(run.config.data, "train", normalize=False)
  x, y = x[:max_examples], y[:max_examples]
  _, z = run.features(x)
  views = np.stack([z, z], axis=1).astype(np.float64)
  dcl, dcl_valid = naive.dcl(views)
  nscl, nscl_valid = naive.nscl(views, y)
  n = len(y)
  # Every anchor has a negative (two or more classes) and a positive (K = 2),
  # so both losses average all 2N anchors and the gap is their difference.
  assert dcl_valid == nscl_valid == 2 * n
  # Theorem 1 per anchor, log(1 + e^{2/tau} (n_y - 1) / (N - n_y)) with n_y
  # the anchor's class count among the N examples, averaged over anchors
  # (docs/conventions.md#gap-bound-batch); tau = 1.
  counts = {c: int(np.sum(y == c)) for c in set(y.tolist())}
  bound = sum(math.log1p(math.exp(2.0) * (counts[c] - 1) / (n - counts[c]))
              for c in y.tolist()) / n
  return {"dcl": dcl, "nscl": nscl, "gap": dcl - nscl, "gap_bound": bound}


def _all_evaluators_config():
  # P2's noisy-label run on 10-class vectors (an MLP: seconds), stopping at
  # 50 % training accuracy, with every evaluator of the registry attached.
  config = graf_noisy_labels.get_config("tiny")
  # P2's configs judge "fit" by a retrained linear layer (tests/reproduce/test_graf.py
  # checks it); here the class-mean rule, whose reference is a NumPy loop.
  config.evals.fit.classifier = "mean"
  config.evals.fewshot.every = 1000
  config.evals.fewshot.update({"shots": 2, "ways": 3, "episodes": 4})
  config.evals.knn = ml_collections.ConfigDict({"type": "knn", "k": 5,
                                                "num_train": 500})
  config.evals.probe = ml_collections.ConfigDict(
      {"type": "linear_probe", "num_train": 500, "steps": 20,
       "final_only": True})
  config.evals.gap = ml_collections.ConfigDict(
      {"type": "dataset_gap", "final_only": True, "max_examples": 200})
  return config


@pytest.fixture(scope="module")
def stopped_run(tmp_path_factory):
  workdir = tmp_path_factory.mktemp("all_evaluators")
  config = _all_evaluators_config()
  summary = train.train_and_evaluate(config, str(workdir), verbose=False)
  return config, workdir, summary


def test_every_evaluator_logs_its_keys_at_the_stop_step(stopped_run):
  config, workdir, summary = stopped_run
  rows = _rows(workdir)
  # The fit evaluator's stop ended the run before config.steps; the final
  # evaluations (the probe, the whole-split gap) ran at that step.
  assert summary["fit/step"] == summary["step"] < config.steps
  last = rows[-1]
  assert last["step"] == summary["step"]
  expected = ["fit/train_acc", "fit/clean_train_acc", "fit/test_acc",
              "fit/fitted", "eval/simplex/distance", "eval/gap/gap",
              "eval/gap/gap_bound", "eval/gap/nscl", "eval/gap/dcl"]
  for name in ("h", "z"):
    expected += [f"eval/{name}/{k}" for k in (
        "nc1", "etf_distance", "cdnv", "directional_cdnv", "effective_rank",
        "ncc_train_acc", "ncc_test_acc", "knn_test_acc",
        "fewshot_3way_2shot_ncc_acc", "linear_probe_test_acc")]
  for key in expected:
    assert key in last and np.isfinite(last[key]), key
  for r in rows[:-1]:   # Final-only evaluators ran once.
    assert "eval/h/linear_probe_test_acc" not in r and "eval/gap/gap" not in r
  # Fit was measured on its own cadence only (and at the stop).
  assert all(r["step"] % config.evals.fit.every == 0
             for r in rows if "fit/train_acc" in r)
  assert last["fit/fitted"] == 1.0 and last["fit/train_acc"] >= 0.5


def test_logged_metrics_match_references_on_the_checkpoint(stopped_run):
  config, workdir, summary = stopped_run
  last = _rows(workdir)[-1]
  run = checkpoints.load(str(workdir))
  assert run.step == summary["step"]
  data = data_lib.build(run.config.data, seed=run.config.seed)
  x_tr, y_tr, _ = data.train_arrays(normalize=False)
  x_te, y_te = data.eval_split(normalize=False)
  h_tr, _ = run.features(x_tr)
  h_te, _ = run.features(x_te)
  tol = 2.0 / len(y_tr)   # one borderline prediction either way
  # fit: SupCon's class-mean classifier on the sphere, whole train split.
  u = h_tr / np.linalg.norm(h_tr, axis=-1, keepdims=True)
  np.testing.assert_allclose(last["fit/train_acc"],
                             _naive_mean_classifier_accuracy(u, y_tr),
                             atol=tol)
  # NCC on the seeded evaluation subset (500 of the train split).
  idx = np.random.default_rng(config.seed).permutation(len(y_tr))[:500]
  np.testing.assert_allclose(
      last["eval/h/ncc_test_acc"],
      _naive_ncc_accuracy(h_tr[idx], y_tr[idx], h_te, y_te),
      atol=2.0 / len(y_te))
  np.testing.assert_allclose(
      last["eval/h/ncc_train_acc"],
      _naive_ncc_accuracy(h_tr[idx], y_tr[idx], h_tr[idx], y_tr[idx]),
      atol=2.0 / 500)
  # P1's whole-split losses on the NumPy loops of naive_losses.
  ref = _naive_whole_split_losses(run, config.evals.gap.max_examples)
  for k in ("gap", "gap_bound", "nscl", "dcl"):
    np.testing.assert_allclose(last[f"eval/gap/{k}"], ref[k], rtol=1e-4,
                               atol=1e-5, err_msg=k)


def test_each_split_is_embedded_once_per_step_on_device(tmp_path,
                                                        monkeypatch):
  calls = []
  original = _features.Embedder.__call__

  def counting(self, variables, inputs):
    leaves = jax.tree.leaves(variables)
    calls.append((inputs.shape[0],
                  all(isinstance(v, jax.Array) for v in leaves)))
    return original(self, variables, inputs)

  monkeypatch.setattr(_features.Embedder, "__call__", counting)
  config = graf_noisy_labels.get_config("tiny")
  config.evals.fit.stop = False
  config.evals.fit.threshold = 1.0
  config.evals.fit.every = 4
  config.eval_every = 2
  config.steps = 4
  config.log_every = 4
  train.train_and_evaluate(config, str(tmp_path), verbose=False)
  data = data_lib.build(config.data, seed=config.seed)
  n_train, n_test = data.num_examples, data.eval_split()[1].shape[0]
  # Step 2: the evaluation subset (500 rows) and the test split. Step 4, fit
  # and evaluation together: the whole train split once (the subset is read
  # from it) and the test split once.
  assert calls == [(500, True), (n_test, True), (n_train, True),
                   (n_test, True)]
  rows = _rows(tmp_path)
  assert [r["step"] for r in rows] == [2, 4]
  assert "fit/train_acc" in rows[1] and "eval/h/nc1" in rows[1]
  assert "fit/train_acc" not in rows[0] and "eval/h/nc1" in rows[0]


def test_feature_cache_reads_subsets_from_the_whole_split():
  rng = np.random.default_rng(0)
  splits = types.SimpleNamespace(
      x_train=rng.normal(size=(50, 3)).astype(np.float32),
      y_train=rng.integers(0, 4, 50).astype(np.int32),
      y_train_clean=rng.integers(0, 4, 50).astype(np.int32),
      x_test=rng.normal(size=(7, 3)).astype(np.float32),
      y_test=rng.integers(0, 4, 7).astype(np.int32),
      permutation=rng.permutation(50))
  seen = []

  def embed(variables, x):
    seen.append(x.shape[0])
    return x, 2 * x

  cache = _features.FeatureCache(splits, embed, None, train_rows=_features.ALL)
  sub = cache.train(20)
  full = cache.train(None)
  idx = splits.permutation[:20]
  np.testing.assert_array_equal(sub.h, splits.x_train[idx])
  np.testing.assert_array_equal(sub.labels, splits.y_train[idx])
  np.testing.assert_array_equal(sub.clean_labels, splits.y_train_clean[idx])
  np.testing.assert_array_equal(full.z_raw, 2 * splits.x_train)
  np.testing.assert_allclose(np.linalg.norm(full.z, axis=-1), 1.0, rtol=1e-6)
  assert seen == [50]
  # A subset plan embeds only the largest subset; smaller ones are prefixes.
  seen.clear()
  cache = _features.FeatureCache(splits, embed, None, train_rows=30)
  np.testing.assert_array_equal(cache.train(10).h,
                                splits.x_train[splits.permutation[:10]])
  np.testing.assert_array_equal(cache.train(30).h,
                                splits.x_train[splits.permutation[:30]])
  cache.test()
  cache.test()
  assert seen == [30, 7]


def _start(config, tmp_path):
  return train.train_and_evaluate(config, str(tmp_path), verbose=False)


def test_unknown_evaluator_fails_at_start_listing_the_names(tmp_path):
  config = default.get_config("smoke")
  config.evals.probe = ml_collections.ConfigDict({"type": "linear_prob"})
  with pytest.raises(ValueError, match=r"Unknown evaluator 'linear_prob' "
                     r"\(config.evals.probe\); valid names: \[.*'geometry'"
                     r".*'linear_probe'"):
    _start(config, tmp_path)
  assert not (tmp_path / "checkpoints").exists()


@pytest.mark.parametrize("bad", [0, 2.5, "64"])
def test_bad_eval_batch_size_fails_at_start(tmp_path, bad):
  config = default.get_config("smoke")
  config.eval_batch_size = bad
  with pytest.raises(ValueError, match=r"config.eval_batch_size must be a "
                     r"positive int .*lower it if evaluation runs out of "
                     r"memory"):
    _start(config, tmp_path)
  assert not (tmp_path / "checkpoints").exists()


def test_unknown_field_and_bad_cadence_fail_at_start(tmp_path):
  config = default.get_config("smoke")
  config.evals.ncc.shots = 3
  with pytest.raises(ValueError, match=r"Unknown fields \['shots'\] in "
                     r"config.evals.ncc .*valid: \['every', 'final_only', "
                     r"'num_train', 'type'\]"):
    _start(config, tmp_path / "a")
  config = default.get_config("smoke")
  config.evals.ncc = ml_collections.ConfigDict({"type": "ncc",
                                               "every": "often"})
  with pytest.raises(ValueError, match=r"config.evals.ncc.every must be an "
                     r"int"):
    _start(config, tmp_path / "b")


def test_replaced_config_sections_fail_with_the_new_key(tmp_path):
  config = default.get_config("smoke")
  config.eval = ml_collections.ConfigDict({"num_train": 300})
  with pytest.raises(ValueError, match=r"config.eval were replaced by "
                     r"config.evals"):
    _start(config, tmp_path)


def test_label_evaluators_on_a_dataset_without_labels_list_the_valid_ones():
  config = default.get_config("smoke")
  unlabeled = types.SimpleNamespace(num_classes=None, input_shape=(4,),
                                    mean=None, std=None)
  with pytest.raises(ValueError, match=r"Evaluator '(\w+)' "
                     r"\(config.evals.\1\) needs labels.*valid names "
                     r"without labels: \['spectrum'\]"):
    evaluators.build(config, data=unlabeled, model=None, workdir="",
                     mesh=startup.make_mesh(1))
  # The label-free evaluator alone is accepted.
  config.evals = ml_collections.ConfigDict(
      {"spectrum": {"type": "spectrum", "every": 0}})
  runner = evaluators.build(config, data=unlabeled, model=None, workdir="",
                            mesh=startup.make_mesh(1))
  assert runner.names == ["spectrum"]
  assert runner.run(10, None, last=True).metrics == {}


def test_standard_evaluators_share_one_subset_size():
  evals = evaluators.standard(num_train=300, linear_probe_steps=5)
  evals.ncc.num_train = 100
  assert {e.get("num_train", 100) for e in evals.values()} == {100}
  assert evals.linear_probe.final_only
  assert "fewshot" not in evaluators.standard(episodes=0)


def test_runs_with_the_replaced_config_sections_still_load(stopped_run,
                                                           tmp_path):
  # Runs written before config.evals recorded config.eval and config.fit;
  # checkpoints.load reads config.json as it is.
  import shutil
  _, workdir, summary = stopped_run
  old = tmp_path / "old_run"
  shutil.copytree(workdir, old)
  config = json.load(open(old / "config.json"))
  del config["evals"]
  config["eval"] = {"num_train": 500, "linear_probe_steps": 0,
                    "fewshot": {"shots": 5, "ways": 1, "episodes": 100}}
  config["fit"] = {"every": 5, "threshold": 0.5, "stop": True,
                   "classifier": "auto", "linear_steps": 1000}
  with open(old / "config.json", "w") as f:
    json.dump(config, f)
  run = checkpoints.load(str(old))
  assert run.step == summary["step"] and run.config.fit.threshold == 0.5
  assert evaluators.first_fit_step(run.metrics, run.config.fit.threshold) \
      == summary["fit/step"]


def test_features_field_chooses_the_reported_features_and_checks_them(
    tmp_path):
  config = default.get_config("smoke")
  context = evaluators.Context(
      name="fewshot", config=config, num_classes=3, model=None,
      input_shape=(4,), input_mean=None, input_std=None, workdir="")
  rng = np.random.default_rng(0)
  test = _features.Features(rng.normal(size=(30, 4)).astype(np.float32),
                            rng.normal(size=(30, 2)).astype(np.float32),
                            np.repeat(np.arange(3), 10).astype(np.int32))
  cache = types.SimpleNamespace(test=lambda: test)
  only_h = evaluators.REGISTRY["fewshot"](
      context=context, shots=2, ways=3, episodes=4, features=("h",))
  both = evaluators.REGISTRY["fewshot"](context=context, shots=2, ways=3,
                                        episodes=4)
  got_h, got_both = only_h.run(cache, step=1), both.run(cache, step=1)
  assert list(got_h) == ["eval/h/fewshot_3way_2shot_ncc_acc"]
  assert sorted(got_both) == ["eval/h/fewshot_3way_2shot_ncc_acc",
                              "eval/z/fewshot_3way_2shot_ncc_acc"]
  assert got_h["eval/h/fewshot_3way_2shot_ncc_acc"] == (
      got_both["eval/h/fewshot_3way_2shot_ncc_acc"])
  # The main job reports the encoder's few-shot and probe accuracy only.
  assert config.evals.fewshot.features == ("h",)
  assert config.evals.linear_probe.features == ("h",)
  for bad in ((), ("h", "h"), ("w",)):
    config = default.get_config("smoke")
    config.evals.linear_probe.features = bad
    with pytest.raises(ValueError, match=r"config.evals.linear_probe."
                       r"features=.*give distinct names from \('h', 'z'\)"):
      _start(config, tmp_path / str(len(bad)))


def test_geometry_evaluator_equals_the_geometry_functions():
  """One jitted program for the four metrics gives each metric's value."""
  config = default.get_config("smoke")
  context = evaluators.Context(
      name="geometry", config=config, num_classes=4, model=None,
      input_shape=(6,), input_mean=None, input_std=None, workdir="")
  rng = np.random.default_rng(3)
  labels = np.repeat(np.arange(4), 25).astype(np.int32)
  h = (rng.normal(size=(100, 6)) + 2 * np.eye(4, 6)[labels]).astype(np.float32)
  z = rng.normal(size=(100, 3)).astype(np.float32)
  train = _features.Features(h, z, labels)
  cache = types.SimpleNamespace(train=lambda num_train=None: train)
  got = evaluators.REGISTRY["geometry"](context=context).run(cache, step=1)
  assert len(got) == 8
  for name, feats in (("h", h), ("z", train.z)):
    for metric, fn in (("nc1", geometry.nc1),
                       ("etf_distance", geometry.etf_distance),
                       ("cdnv", geometry.cdnv),
                       ("directional_cdnv", geometry.directional_cdnv)):
      np.testing.assert_allclose(
          float(got[f"eval/{name}/{metric}"]),
          float(fn(feats, labels, num_classes=4)), rtol=1e-6)


def test_the_mean_fit_never_predicts_a_class_absent_from_the_train_split():
  # Class 2 has no train example, hence a zero centre; the test point scores
  # below zero against both present centres, where an unmasked zero centre
  # (score 0) would win.
  from cljax.training.evaluators import fit
  config = ml_collections.ConfigDict(
      {"loss": {"name": "supcon", "kwargs": {"normalize": "none"}}})
  h_tr = np.array([[1.0, 0.0], [0.0, 1.0]])
  train_split = types.SimpleNamespace(h=h_tr, z_raw=h_tr,
                                      labels=np.array([0, 1]),
                                      clean_labels=np.array([0, 1]))
  h_te = np.array([[-1.0, -1.0]])
  test_split = types.SimpleNamespace(h=h_te, z_raw=h_te,
                                     labels=np.array([0]))
  out = fit.measure_fit(train_split, test_split, kind="mean", config=config,
                        num_classes=3)
  assert out["fit/train_acc"] == 1.0
  # Scores: class 0 -1, class 1 -1 (a tie, to the lower id), class 2 masked.
  assert out["fit/test_acc"] == 1.0
