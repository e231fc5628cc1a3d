"""The tiled (blockwise) engine: the same values and gradients as the dense
one and as the NumPy loops, on one device and on eight, in O(V·D) memory."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import AxisType
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from cljax._src import engine as sim
from cljax import losses
from tests import naive_losses as naive

NUM_DEVICES = 8
# Unbalanced labels with a one-member class; N = 24 is divisible by the
# devices; V = 48 views make ragged tiles of 5 and whole tiles of 16.
N, K, D = 24, 2, 6
LABELS = np.array([0] * 9 + [1] * 7 + [2] * 5 + [3] * 2 + [4], np.int32)
BLOCKS = [5, 16]


def _data(seed=0, scale=1.0):
  rng = np.random.default_rng(seed)
  z = (scale * rng.normal(size=(N, K, D))).astype(np.float32)
  return z, rng.permutation(LABELS)


def _all_total(z, y, **kw):
  out = losses.all_losses(z, y, temperature=0.5, beta=3.0, **kw)
  return sum(v for name, v in out.items() if name != "nscl_valid")


LOSSES = {
    "ntxent": lambda z, y, **kw: losses.ntxent(z, temperature=0.5, **kw),
    "ntxent_double": lambda z, y, **kw: losses.ntxent(
        z, temperature=0.5, double_count_positive=True, **kw),
    "dcl_self_pairs": lambda z, y, **kw: losses.dcl(
        z, include_self_pairs=True, **kw),
    "nscl": lambda z, y, **kw: losses.nscl(z, y, temperature=0.5, **kw),
    "nscl_code": lambda z, y, **kw: losses.nscl(
        z, y, positive_in_denominator=True, **kw),
    "supcon_out": lambda z, y, **kw: losses.supcon(z, y, **kw),
    "supcon_in_weighted": lambda z, y, **kw: losses.supcon(
        z, y, variant="in", same_class_weight=0.3, **kw),
    "supcon_batch_none": lambda z, y, **kw: losses.supcon(
        z, y, normalize="none", reduction="batch", **kw),
    "scl": lambda z, y, **kw: losses.hard_contrastive(z, y, **kw),
    "hscl": lambda z, y, **kw: losses.hard_contrastive(z, y, beta=5.0, **kw),
    "hucl_none": lambda z, y, **kw: losses.hard_contrastive(
        z, y, beta=2.0, negatives="all", normalize="none", **kw),
    "debiased": lambda z, y, **kw: losses.hard_contrastive(
        z, beta=1.0, estimator="debiased", normalize="sphere", **kw),
    "all_losses": _all_total,
}


def _value_and_grad(name, block_size, z, y):
  fn = functools.partial(LOSSES[name], block_size=block_size)
  return jax.jit(jax.value_and_grad(fn))(z, y)


def _assert_same(got, want):
  np.testing.assert_allclose(float(got[0]), float(want[0]), rtol=1e-6,
                             atol=1e-6)
  scale = float(jnp.max(jnp.abs(want[1])))
  np.testing.assert_allclose(np.asarray(got[1]), np.asarray(want[1]),
                             rtol=1e-5, atol=1e-6 * scale)


@pytest.fixture(scope="module")
def dense():
  z, y = _data()
  return {name: _value_and_grad(name, "dense", z, y) for name in LOSSES}


@pytest.mark.parametrize("block", BLOCKS)
@pytest.mark.parametrize("name", sorted(LOSSES))
def test_tiled_equals_dense(name, block, dense):
  z, y = _data()
  _assert_same(_value_and_grad(name, block, z, y), dense[name])


@pytest.mark.parametrize("name", ["nscl", "all_losses"])
def test_general_path_on_one_device(name):
  # A traced temperature rules out the symmetric (upper-triangle) path, so
  # this is the row-block x column-block sweep on one device.
  z, y = _data(seed=5)

  def fn(z, t, block_size):
    if name == "nscl":
      return losses.nscl(z, y, temperature=t, block_size=block_size)
    return _all_total_at(z, y, t, block_size)

  want = jax.value_and_grad(fn)(z, 0.5, "dense")
  got = jax.jit(jax.value_and_grad(fn), static_argnums=2)(
      z, jnp.float32(0.5), 5)
  _assert_same(got, want)


def _all_total_at(z, y, t, block_size):
  out = losses.all_losses(z, y, temperature=t, beta=3.0,
                          block_size=block_size)
  return sum(v for name, v in out.items() if name != "nscl_valid")


def test_one_tile_larger_than_the_matrix(dense):
  z, y = _data()
  _assert_same(_value_and_grad("all_losses", 64, z, y), dense["all_losses"])


@pytest.mark.parametrize("name,reference", [
    ("nscl", lambda z, y: naive.nscl(z, y, temperature=0.5)[0]),
    ("supcon_out", lambda z, y: naive.supcon(z, y)[0]),
    ("hscl", lambda z, y: naive.hard_contrastive(z, y, beta=5.0)[0]),
])
def test_tiled_matches_numpy_loops(name, reference):
  z, y = _data(seed=3)
  got = LOSSES[name](z, y, block_size=7)
  np.testing.assert_allclose(float(got), reference(z, y), rtol=2e-5)


def test_per_anchor_losses_and_counts_match_dense():
  z, y = _data(seed=1)
  kw = dict(temperature=0.5, reduction="none", return_counts=True)
  want, want_counts = losses.nscl(z, y, block_size="dense", **kw)
  got, counts = losses.nscl(z, y, block_size=5, **kw)
  assert got.shape == (N, K)
  np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=1e-6,
                             atol=1e-6)
  assert int(counts.num_valid) == int(want_counts.num_valid) == N * K


def test_bfloat16_inputs_match_dense():
  z, y = _data(seed=2)
  zb = jnp.asarray(z, jnp.bfloat16)
  want = jax.value_and_grad(
      lambda z: losses.supcon(z, y, block_size="dense"))(zb)
  got = jax.value_and_grad(lambda z: losses.supcon(z, y, block_size=8))(zb)
  assert got[1].dtype == jnp.bfloat16
  np.testing.assert_allclose(float(got[0]), float(want[0]), rtol=1e-5)
  np.testing.assert_allclose(np.asarray(got[1], np.float32),
                             np.asarray(want[1], np.float32), atol=2e-3)


def test_no_valid_anchor_gives_zero_not_nan():
  z, _ = _data()
  one_class = np.zeros(N, np.int32)
  value, grad = jax.value_and_grad(
      lambda z: losses.nscl(z, one_class, block_size=5))(z)
  assert float(value) == 0.0
  assert np.all(np.asarray(grad) == 0.0)


def test_large_logits_stay_finite_without_normalisation():
  # |s| up to ~1e4: the online log-sum-exp must shift per tile.
  z, y = _data(seed=4, scale=12.0)
  fn = lambda z, b: losses.supcon(z, y, normalize="none", temperature=0.1,
                                  block_size=b)
  want = jax.value_and_grad(fn)(z, "dense")
  got = jax.value_and_grad(fn)(z, 5)
  assert np.isfinite(float(got[0]))
  assert np.all(np.isfinite(np.asarray(got[1])))
  reference, _ = naive.supcon(z, y, temperature=0.1, normalize="none")
  np.testing.assert_allclose(float(got[0]), reference, rtol=1e-6)
  # A softmax of logits of size |s| is known to float32 only to about
  # |s| * eps in relative terms, in either summation order.
  s_max = float(np.max(np.abs(naive.logit_matrix(z, 0.1, "none")[0])))
  scale = float(jnp.max(jnp.abs(want[1])))
  np.testing.assert_allclose(np.asarray(got[1]), np.asarray(want[1]),
                             atol=8 * s_max * 1.2e-7 * scale)


# --- eight devices ---------------------------------------------------------

MULTI = ["nscl", "supcon_in_weighted", "hscl", "all_losses"]


@pytest.mark.parametrize("name", MULTI)
def test_jit_on_explicit_mesh_equals_one_device(name, dense):
  assert jax.device_count() == NUM_DEVICES
  z, y = _data()
  mesh = jax.make_mesh((NUM_DEVICES,), ("data",),
                       axis_types=(AxisType.Explicit,))
  zs = jax.device_put(z, NamedSharding(mesh, P("data")))
  ys = jax.device_put(y, NamedSharding(mesh, P("data")))
  got = _value_and_grad(name, 5, zs, ys)
  assert got[1].sharding.spec[0] == "data"
  _assert_same(got, dense[name])


@pytest.mark.parametrize("name", MULTI)
def test_shard_map_with_axis_name_equals_one_device(name, dense):
  z, y = _data()
  mesh = jax.make_mesh((NUM_DEVICES,), ("data",))
  fn = functools.partial(LOSSES[name], block_size=5, axis_name="data")
  mapped = jax.jit(jax.shard_map(
      jax.value_and_grad(fn), mesh=mesh, in_specs=(P("data"), P("data")),
      out_specs=(P(), P("data"))))
  zs = jax.device_put(z, NamedSharding(mesh, P("data")))
  ys = jax.device_put(y, NamedSharding(mesh, P("data")))
  _assert_same(mapped(zs, ys), dense[name])


# Under pmap the tiled engine is tested on a shared encoder's parameter
# gradient with the standard pmean idiom (tests/losses/test_parallel.py,
# test_parameter_gradient_is_the_global_one); the per-device embedding
# gradient there is n_devices x its slice by design.


# --- memory, dispatch and errors -------------------------------------------

def _temp_bytes(block_size, n, d=128):
  z = jax.ShapeDtypeStruct((n, 2, d), jnp.float32)
  y = jax.ShapeDtypeStruct((n,), jnp.int32)
  grad = jax.jit(jax.grad(
      lambda z, y: losses.nscl(z, y, block_size=block_size)))
  return grad.lower(z, y).compile().memory_analysis().temp_size_in_bytes


def test_tiled_memory_does_not_grow_with_the_square():
  n = 8192                       # 16 384 views: dense logits are 1 GiB
  views = 2 * n
  dense_bytes = _temp_bytes("dense", n)
  tiled_bytes = _temp_bytes(256, n)
  assert dense_bytes >= 4 * views * views       # the [V, V] residual
  # O(V·D + B²): keys, their gradient, a few tiles; far from 4·V² bytes.
  assert tiled_bytes < 16 * views * 128 * 4 + 16 * 256 * 256 * 4
  assert tiled_bytes * 20 < dense_bytes


def test_auto_picks_tiles_for_large_matrices():
  assert sim.resolve_block_size("auto", 64, 64) is None
  side = int(np.sqrt(sim.TILED_MIN_ENTRIES["cpu"]))
  assert sim.resolve_block_size("auto", side, side) == (
      losses.DEFAULT_BLOCK_SIZE["cpu"])
  assert sim.resolve_block_size("auto", side, side, num_terms=9) == (
      losses.DEFAULT_BLOCK_SIZE["cpu"] // 2)
  assert sim.resolve_block_size("dense", 10 ** 6, 10 ** 6) is None
  assert sim.resolve_block_size(32, 8, 8) == 32


@pytest.mark.parametrize("bad", [0, -4, 2.5, True, "tiles"])
def test_bad_block_size_is_rejected(bad):
  z, y = _data()
  with pytest.raises(ValueError, match="block_size"):
    losses.nscl(z, y, block_size=bad)


def test_sampled_estimator_cannot_be_tiled():
  z, y = _data()
  with pytest.raises(ValueError, match="expectation"):
    losses.hard_contrastive(z, y, beta=1.0, estimator="sampled",
                            key=jax.random.key(0), block_size=8)
