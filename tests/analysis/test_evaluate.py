"""cljax.analysis.evaluate: exact whole-dataset losses and the streaming geometry."""

import numpy as np
import pytest

from cljax.analysis import checkpoints
from cljax.analysis import evaluate
from cljax import geometry
from cljax import losses
from cljax.training import train
from cljax.data import pipeline
from experiments import default
from tests import naive_losses as naive


def _data(n=30, k=2, d=5, classes=4, seed=0):
  rng = np.random.default_rng(seed)
  return (rng.normal(size=(n, k, d)).astype(np.float32),
          rng.integers(0, classes, n).astype(np.int32))


def test_cl_nscl_equals_all_losses():
  z, y = _data()
  every = losses.all_losses(z, y, temperature=0.7)
  subset = losses.cl_nscl(z, y, temperature=0.7)
  assert set(subset) == {"ntxent", "cl_code", "dcl", "nscl", "nscl_code",
                         "gap", "gap_bound", "nscl_valid"}
  for name, value in subset.items():
    np.testing.assert_allclose(float(value), float(every[name]), rtol=1e-6)


@pytest.mark.parametrize("block_size", ["dense", 7])
def test_dataset_losses_match_numpy_loops(block_size):
  z, y = _data(seed=1)
  got = evaluate.dataset_losses(z, y, block_size=block_size)
  dcl, _ = naive.dcl(z)
  nscl, _ = naive.nscl(z, y)
  np.testing.assert_allclose(got["dcl"], dcl, rtol=1e-5)
  np.testing.assert_allclose(got["nscl"], nscl, rtol=1e-5)
  np.testing.assert_allclose(got["gap"], dcl - nscl, rtol=1e-4, atol=1e-6)
  assert 0.0 <= got["gap"] <= got["gap_bound"]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
  workdir = str(tmp_path_factory.mktemp("run"))
  config = default.get_config("smoke")
  config.evals.linear_probe.every = 0
  train.train_and_evaluate(config, workdir, verbose=False)
  return checkpoints.load(workdir)


def test_evaluate_split_streams_the_geometry_of_the_clean_features(run):
  out = evaluate.evaluate_split(run, "test", batch_size=64, max_examples=200,
                                block_size=16)
  assert out["num_examples"] == 200
  values = out["losses"]
  assert all(np.isfinite(v) for v in values.values())
  assert 0.0 <= values["gap"] <= values["gap_bound"]
  # The streamed statistics equal the metrics of all clean features at once.
  x, y = pipeline.load_split(run.config.data, "test", normalize=False)
  h, z = run.features(x[:200])
  z = z / np.linalg.norm(z, axis=-1, keepdims=True)
  num_classes = int(y[:200].max()) + 1
  np.testing.assert_allclose(
      out["geometry_h"]["nc1"],
      float(geometry.nc1(h, y[:200], num_classes=num_classes)), rtol=1e-3)
  np.testing.assert_allclose(
      out["geometry_z"]["nc1"],
      float(geometry.nc1(z, y[:200], num_classes=num_classes)), rtol=1e-3)


def test_evaluate_split_is_deterministic_and_tiles_like_dense(run):
  kw = dict(batch_size=100, max_examples=200, view_mode="augmented")
  dense = evaluate.evaluate_split(run, "test", block_size="dense", **kw)
  tiled = evaluate.evaluate_split(run, "test", block_size=32, **kw)
  for name, value in dense["losses"].items():
    np.testing.assert_allclose(tiled["losses"][name], value, rtol=1e-5)


def test_evaluate_split_forward_passes_hold_at_most_batch_size_views(
    run, monkeypatch):
  # A batch's K views used to go through the model in one pass of K x
  # batch_size: P1's ResNet-50x2 at 84 px then asked for 31 GB.
  passes = []
  apply = evaluate.models._eval_apply(run.model)
  monkeypatch.setattr(evaluate.models, "_eval_apply",
                      lambda model: lambda v, x: passes.append(len(x))
                      or apply(v, x))
  out = evaluate.evaluate_split(run, "test", batch_size=64, max_examples=100,
                                num_views=3, block_size=16)
  assert out["num_examples"] == 100
  # 64 + 36 examples, 3 views each: 192 = 3 x 64 and 108 = 64 + 44 views.
  assert passes == [64, 64, 64, 64, 44]


def test_evaluate_split_rejects_bad_arguments(run):
  with pytest.raises(ValueError, match="num_views"):
    evaluate.evaluate_split(run, "test", num_views=1)
  with pytest.raises(ValueError, match="view_mode"):
    evaluate.evaluate_split(run, "test", view_mode="clean")
