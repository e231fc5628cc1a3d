"""Free-feature ("layer-peeled") reproductions of the three papers' theory."""

import json
import math
import os
import shutil
import subprocess
import sys

import jax
import numpy as np
import pytest

from cljax import sweep
from cljax import theory
from cljax import unconstrained
from cljax.unconstrained import problem
from experiments.unconstrained import luthra_thm2 as luthra
from experiments.unconstrained import graf_batch
from experiments.unconstrained import graf_ce
from experiments.unconstrained import graf_multisets
from experiments.unconstrained import jiang


# ----------------------------------------------------------------------------
# P1 (Luthra et al.) Theorem 2.
# ----------------------------------------------------------------------------


@pytest.mark.parametrize("c,n,k,tau,dim", [
    (10, 8, 2, 0.5, 16),   # the config's default
    (4, 3, 3, 0.2, 3),     # dim = C - 1, K = 3, small tau
])
def test_nscl_free_features_reach_the_theorem_2_minimum(c, n, k, tau, dim):
  # Augmentation collapse, within-class collapse, simplex ETF, and the value
  # log(K(N - n)) - C/((C - 1) tau).
  config = luthra.get_config()
  config.num_classes, config.samples_per_class, config.num_views = c, n, k
  config.dim = dim
  config.loss.kwargs.temperature = tau
  config.steps = 600
  summary = unconstrained.run(config, None, verbose=False)
  want = theory.nscl_at_etf(c, n, k, temperature=tau)
  assert summary["closed_form_minimum"] == pytest.approx(want, rel=1e-12)
  assert summary["final_loss"] == pytest.approx(want, abs=2e-5)
  assert summary["loss_at_etf"] == pytest.approx(want, abs=2e-5)
  assert summary["nc1"] < 1e-6
  assert summary["etf_distance"] < 1e-4
  assert summary["augmentation_collapse"] < 1e-7
  assert summary["unit_norm"] < 1e-4
  assert summary["class_mean_rank"] == c - 1
  assert summary["effective_rank"] == pytest.approx(c - 1, abs=1e-3)
  cosines = np.array(summary["class_mean_cosines"])
  np.testing.assert_allclose(
      cosines, np.where(np.eye(c), 1.0, -1.0 / (c - 1)), atol=1e-4)
  assert 0 <= summary["gap"] <= summary["gap_bound"]


# ----------------------------------------------------------------------------
# P2 (Graf et al.): the toy study on the circle.
# ----------------------------------------------------------------------------


def test_all_multisets_of_six_points_of_size_nine():
  batches = problem.all_multisets(6, 9)
  assert batches.shape == (2002, 9)
  assert len({tuple(b) for b in batches}) == 2002
  assert (np.diff(batches, axis=1) >= 0).all()
  with pytest.raises(ValueError, match="batch_size"):
    problem.all_multisets(50, 20)


def test_supcon_over_all_multisets_reaches_the_bound_at_the_triangle():
  config = graf_multisets.get_config()
  bound = theory.supcon_multiset_bound(3, 2, 9, temperature=0.5)
  labels = problem.labels_of(config)
  objective = problem.make_objective(config, labels)
  # A random configuration on the circle lies strictly above the bound.
  rng = np.random.default_rng(0)
  angles = rng.uniform(0, 2 * np.pi, 6)
  random_z = np.stack([np.cos(angles), np.sin(angles)], -1)[:, None, :]
  assert float(objective({"z": random_z.astype(np.float32)})) > bound * 1.01

  summary = unconstrained.run(config, None, verbose=False)
  assert summary["closed_form_minimum"] == pytest.approx(bound, rel=1e-12)
  # Float32 sums of 2002 x 9 anchors: ~1e-7 relative is the floor.
  assert summary["loss_at_etf"] == pytest.approx(bound, rel=1e-6)
  assert summary["final_loss"] == pytest.approx(bound, rel=1e-6)
  assert summary["within_class_distance"] < 1e-4
  assert summary["etf_distance"] < 1e-5
  np.testing.assert_allclose(np.array(summary["class_mean_cosines"]),
                             np.where(np.eye(3), 1.0, -0.5), atol=1e-5)


@pytest.mark.parametrize("counts", [(7, 1, 1), (4, 4, 1)])
def test_single_batch_minimisers_of_skewed_batches_are_not_simplices(counts):
  # P2 Figure 6: the triangle is not even a local answer for one skewed
  # batch: the optimiser finds a strictly lower loss far from the ETF.
  config = graf_batch.get_config()
  config.class_counts = counts
  summary = unconstrained.run(config, None, verbose=False)
  assert summary["closed_form_minimum"] is None
  assert summary["final_loss"] < summary["loss_at_etf"] - 0.05
  assert summary["etf_distance"] > 0.1
  assert summary["equal_inner_product_max"] > 0.2


def test_balanced_batch_minimiser_is_the_triangle():
  config = graf_batch.get_config()
  config.class_counts = (3, 3, 3)
  summary = unconstrained.run(config, None, verbose=False)
  assert summary["final_loss"] == pytest.approx(summary["loss_at_etf"],
                                                rel=1e-6)
  assert summary["etf_distance"] < 1e-5
  assert summary["within_class_distance"] < 1e-4


def test_graf_batch_config_lists_the_twelve_label_configurations():
  configs = graf_batch.LABEL_CONFIGURATIONS
  assert len(set(configs)) == 12
  assert all(sum(c) == 9 and list(c) == sorted(c, reverse=True)
             for c in configs)


def test_cross_entropy_with_free_classifier_reaches_the_simplex():
  config = graf_ce.get_config()
  summary = unconstrained.run(config, None, verbose=False)
  want = theory.cross_entropy_at_simplex(3, feature_radius=1.0,
                                         weight_radius=1.0)
  assert want == pytest.approx(math.log(1 + 2 * math.exp(-1.5)))
  assert summary["closed_form_minimum"] == pytest.approx(want, rel=1e-12)
  assert summary["final_loss"] == pytest.approx(want, abs=1e-6)
  assert summary["etf_distance"] < 1e-5
  assert summary["nc3_self_duality"] < 1e-5   # rows of W on the same triangle


# ----------------------------------------------------------------------------
# P3 (Jiang et al.): SCL/HSCL/UCL minimised by neural collapse.
# ----------------------------------------------------------------------------


@pytest.mark.parametrize("negatives,normalize,beta,closed_form", [
    ("different_class", "ball", 0.0, "scl"),
    ("different_class", "sphere", 30.0, "scl"),
    ("all", "ball", 0.0, "ucl"),
])
def test_hard_contrastive_free_features_reach_neural_collapse(
    negatives, normalize, beta, closed_form):
  config = jiang.get_config("smoke")
  config.steps = 400
  config.loss.kwargs.update(
      {"negatives": negatives, "normalize": normalize, "beta": beta})
  summary = unconstrained.run(config, None, verbose=False)
  c, n = config.num_classes, config.samples_per_class
  want = (theory.scl_at_etf(c) if closed_form == "scl" else
          theory.ucl_at_etf(c, n, c * n))
  assert summary["closed_form_minimum"] == pytest.approx(want, rel=1e-12)
  assert summary["final_loss"] == pytest.approx(want, abs=1e-5)
  assert summary["etf_distance"] < 1e-3
  assert summary["zero_sum"] < 1e-3 and summary["unit_norm"] < 1e-3
  assert summary["class_mean_rank"] == c - 1


def test_unnormalised_scl_has_no_minimum_and_grows_norms():
  config = jiang.get_config("smoke")
  config.steps = 200
  config.loss.kwargs.normalize = "none"
  summary = unconstrained.run(config, None, verbose=False)
  assert summary["closed_form_minimum"] is None
  # Inner products grow without bound, so the loss falls below the NC value.
  assert summary["final_loss"] < summary["loss_at_etf"]
  assert summary["feature_norm"] > 1.5


# ----------------------------------------------------------------------------
# Config errors, work dirs, sweeps and the command line.
# ----------------------------------------------------------------------------


@pytest.mark.parametrize("field,value,match", [
    ("objective", "multisets", "config.objective"),
    ("optimizer", "lbfgs", "config.optimizer"),
    ("class_counts", (3, 3), "config.class_counts"),
])
def test_bad_config_names_the_field(field, value, match):
  config = luthra.get_config("smoke")
  config[field] = value
  with pytest.raises(ValueError, match=match):
    unconstrained.run(config, None, verbose=False)


def test_closed_form_uses_each_losses_own_defaults():
  # SupCon's default temperature is 0.1, NSCL's 1.0; no kwargs given.
  config = luthra.get_config("smoke")
  config.loss.kwargs = {}
  assert problem.closed_form_minimum(config) == pytest.approx(
      theory.nscl_at_etf(4, 3, 2, temperature=1.0))
  config.loss.name = "supcon"
  assert problem.closed_form_minimum(config) == pytest.approx(
      theory.supcon_at_etf(4, 3, 2, temperature=0.1))
  config.dim = 2  # dim < C - 1: the theorem does not apply.
  assert problem.closed_form_minimum(config) is None


def test_cross_entropy_needs_the_full_batch_objective():
  config = graf_ce.get_config("smoke")
  config.objective = "all_multisets"
  with pytest.raises(ValueError, match="full_batch"):
    unconstrained.run(config, None, verbose=False)


def test_sweep_writes_runs_that_load_back(tmp_path):
  config = graf_batch.get_config("smoke")
  grid = sweep.parse_grid(["class_counts=[(7,1,1),(3,3,3)]"])
  sweep.run_sweep(config, grid, str(tmp_path), verbose=False)
  loaded = unconstrained.load_sweep(str(tmp_path))
  assert [tuple(o["class_counts"]) for o, _ in loaded] == [(7, 1, 1),
                                                           (3, 3, 3)]
  for overrides, result in loaded:
    assert tuple(result.config.class_counts) == tuple(overrides["class_counts"])
    assert result.z.shape == (9, 1, 2)
    np.testing.assert_array_equal(
        np.bincount(result.labels, minlength=3), overrides["class_counts"])
    assert result.metrics[-1]["step"] == config.steps
    assert result.summary["final_loss"] == pytest.approx(
        result.metrics[-1]["train/loss"], rel=1e-2)
    np.testing.assert_allclose(np.linalg.norm(result.features(), axis=1), 1.0,
                               atol=1e-6)
  with pytest.raises(FileNotFoundError, match="sweep.json"):
    unconstrained.load_sweep(str(tmp_path / "nothing"))
  # A sweep copied elsewhere (next to a colab) loads from the copy.
  copy = tmp_path.parent / (tmp_path.name + "_copy")
  shutil.copytree(tmp_path, copy)
  moved = unconstrained.load_sweep(str(copy))
  assert [r.summary for _, r in moved] == [r.summary for _, r in loaded]
  assert all(r.workdir.startswith(str(copy)) for _, r in moved)


def _main(*args, cwd):
  env = dict(os.environ, JAX_NUM_CPU_DEVICES="1")
  return subprocess.run([sys.executable, "-m", "cljax.main", *args],
                        cwd=cwd, env=env, capture_output=True, text=True,
                        timeout=300)


def test_main_command_smoke_preset_and_override(tmp_path):
  root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
  out = _main("--config=experiments/unconstrained/luthra_thm2.py:smoke",
              f"--workdir={tmp_path}", "--config.loss.kwargs.temperature=0.2",
              cwd=root)
  assert out.returncode == 0, out.stderr
  summary = json.load(open(tmp_path / "summary.json"))
  assert summary["closed_form_minimum"] == pytest.approx(
      theory.nscl_at_etf(4, 3, 2, temperature=0.2))
  assert unconstrained.load(str(tmp_path)).config.loss.kwargs.temperature == 0.2
  bad = _main("--config=experiments/unconstrained/luthra_thm2.py:smoke",
              f"--workdir={tmp_path}", "--config.loss.temprature=0.2",
              cwd=root)
  assert bad.returncode != 0
  assert "temprature" in bad.stderr


# ----------------------------------------------------------------------------
# Checkpoints, resume and the two work-dir layouts.
# ----------------------------------------------------------------------------


def _small(steps, every=0):
  config = luthra.get_config("smoke")
  config.steps, config.log_every = steps, 5
  config.checkpoint.every = every
  return config


def test_checkpoints_resume_exactly_and_load_with_orbax(tmp_path):
  import orbax.checkpoint as ocp

  from cljax.analysis import checkpoints

  whole = str(tmp_path / "whole")
  unconstrained.run(_small(20, every=10), whole, verbose=False)
  assert checkpoints.saved_steps(whole) == [20]   # keep=1: the latest only.
  # Half the steps, then the same command with more steps resumes.
  halves = str(tmp_path / "halves")
  unconstrained.run(_small(10, every=10), halves, verbose=False)
  assert checkpoints.saved_steps(halves) == [10]
  summary = unconstrained.run(_small(20, every=10), halves, verbose=False)
  a, b = unconstrained.load(whole), unconstrained.load(halves)
  np.testing.assert_allclose(b.z, a.z, rtol=1e-6, atol=1e-7)
  np.testing.assert_array_equal(b.labels, problem.labels_of(a.config))
  assert [r["step"] for r in b.metrics] == [5, 10, 15, 20]
  assert summary["final_loss"] == pytest.approx(a.summary["final_loss"],
                                                rel=1e-6)
  # Plain orbax reads the free features without cljax.
  manager = ocp.CheckpointManager(os.path.join(halves, "checkpoints"),
                                  item_names=("model", "meta"))
  restored = manager.restore(20, args=ocp.args.Composite(
      model=ocp.args.StandardRestore(), meta=ocp.args.JsonRestore()))
  manager.close()
  np.testing.assert_allclose(np.asarray(restored["model"]["params"]["z"]),
                             b.z)
  assert restored["meta"]["step"] == 20


def test_resume_with_another_config_is_refused(tmp_path):
  from cljax.training import errors

  unconstrained.run(_small(10), str(tmp_path), verbose=False)
  changed = _small(10)
  changed.learning_rate = 0.5
  with pytest.raises(errors.ResumeMismatchError, match="learning_rate"):
    unconstrained.run(changed, str(tmp_path), verbose=False)


def test_load_reads_runs_written_before_checkpoints(tmp_path):
  config = _small(10)
  summary = unconstrained.run(config, None, verbose=False)
  # The layout of earlier runs: config, metrics, summary and features.npz.
  with open(tmp_path / "config.json", "w") as f:
    f.write(config.to_json_best_effort(indent=2))
  with open(tmp_path / "summary.json", "w") as f:
    json.dump(summary, f)
  labels = problem.labels_of(config)
  z = np.random.default_rng(0).normal(
      size=(len(labels), config.num_views, config.dim))
  np.savez(tmp_path / "features.npz", labels=labels, z=z)
  result = unconstrained.load(str(tmp_path))
  np.testing.assert_array_equal(result.z, z)
  np.testing.assert_array_equal(result.labels, labels)
  assert result.w is None
  assert result.summary["final_loss"] == summary["final_loss"]
  with pytest.raises(FileNotFoundError, match="features.npz"):
    unconstrained.load(str(tmp_path / "nothing"))


def test_bad_checkpoint_every_names_the_field():
  config = _small(10)
  config.checkpoint.every = -1
  with pytest.raises(ValueError, match="config.checkpoint.every"):
    unconstrained.run(config, None, verbose=False)


def test_initial_geometry_is_the_runs_starting_point():
  # The null of the free-feature claims: a run that cannot move (learning
  # rate 0) ends where it started, so its summary is the initial geometry.
  config = jiang.get_config("smoke")
  config.loss.kwargs.normalize = "ball"
  config.learning_rate = 0.0
  config.steps = 1
  config.log_every = 1
  start = unconstrained.initial_geometry(config)
  end = unconstrained.run(config, verbose=False)
  for key in ("etf_distance", "effective_rank", "feature_norm", "nc1"):
    np.testing.assert_allclose(start[key], end[key], rtol=1e-5, err_msg=key)
  np.testing.assert_allclose(start["initial_loss"], end["final_loss"],
                             rtol=1e-6)
  # Inside the ball (init_scale 0.01): the mean norm of the raw draws.
  z = config.init_scale * np.asarray(jax.random.normal(
      jax.random.split(jax.random.key(config.seed))[0],
      (config.num_classes * config.samples_per_class, 1, config.dim)))
  np.testing.assert_allclose(start["feature_norm"],
                             np.linalg.norm(z, axis=-1).mean(), rtol=1e-5)
  assert start["feature_norm"] < 0.1
