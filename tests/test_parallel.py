"""Every loss on 8 devices equals the single-device loss on the global batch.

Three multi-device paths, each compared in value and gradient with the plain
call on unsharded inputs:
  * jit on a batch sharded over an 8-device Explicit mesh (the train loop),
  * ``axis_name`` inside ``jax.shard_map`` (gradient taken inside and
    outside the map),
  * ``axis_name`` inside ``jax.pmap`` (gradient taken per device).
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import AxisType
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from cljax import losses

NUM_DEVICES = 8
N, K, D = 16, 2, 6
LABELS = np.array([0, 0, 0, 1, 1, 1, 1, 2, 2, 3, 3, 3, 4, 5, 5, 5], np.int32)
KEY = jax.random.key(11)


def _all_losses_total(z, labels, a=None):
  out = losses.all_losses(z, labels, temperature=0.5, beta=2.0,
                          axis_name=a)
  # A differentiable scalar touching every entry (gap_bound and the count
  # have no gradient).
  return sum(v for k, v in out.items() if k not in ("gap_bound",
                                                    "nscl_valid"))


LOSS_FNS = {
    "ntxent": lambda z, y, a=None: losses.ntxent(z, temperature=0.5,
                                                 axis_name=a),
    "dcl": lambda z, y, a=None: losses.dcl(z, include_self_pairs=True,
                                           axis_name=a),
    "nscl": lambda z, y, a=None: losses.nscl(z, y, temperature=0.5,
                                             axis_name=a),
    "nscl_code": lambda z, y, a=None: losses.nscl(
        z, y, positive_in_denominator=True, axis_name=a),
    "supcon_out": lambda z, y, a=None: losses.supcon(z, y, axis_name=a),
    "supcon_in_batch": lambda z, y, a=None: losses.supcon(
        z, y, variant="in", reduction="batch", axis_name=a),
    "hscl": lambda z, y, a=None: losses.hard_contrastive(z, y, beta=5.0,
                                                         axis_name=a),
    "hucl_sampled": lambda z, y, a=None: losses.hard_contrastive(
        z, y, beta=2.0, negatives="all", estimator="sampled",
        num_negatives=32, key=KEY, axis_name=a),
    "debiased": lambda z, y, a=None: losses.hard_contrastive(
        z, estimator="debiased", beta=1.0, temperature=0.5,
        normalize="sphere", negatives="all", axis_name=a),
    "all_losses": _all_losses_total,
}


def test_eight_devices():
  assert jax.device_count() == NUM_DEVICES


@pytest.fixture(scope="module")
def data():
  z = np.random.default_rng(0).normal(size=(N, K, D)).astype(np.float32)
  return z, LABELS


@pytest.fixture(scope="module")
def reference(data):
  z, y = data
  return {name: jax.value_and_grad(fn)(z, y)
          for name, fn in LOSS_FNS.items()}


def _assert_same(value, grad, ref):
  np.testing.assert_allclose(float(value), float(ref[0]), rtol=1e-5,
                             atol=1e-6)
  np.testing.assert_allclose(np.asarray(grad), np.asarray(ref[1]),
                             rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("axis_type", [AxisType.Explicit, AxisType.Auto])
@pytest.mark.parametrize("name", sorted(LOSS_FNS))
def test_jit_on_sharded_mesh(name, axis_type, data, reference):
  z, y = data
  mesh = jax.make_mesh((NUM_DEVICES,), ("data",), axis_types=(axis_type,))
  zs = jax.device_put(z, NamedSharding(mesh, P("data")))
  ys = jax.device_put(y, NamedSharding(mesh, P("data")))
  value, grad = jax.jit(jax.value_and_grad(LOSS_FNS[name]))(zs, ys)
  if axis_type == AxisType.Explicit:
    assert grad.sharding.spec[0] == "data"
  _assert_same(value, grad, reference[name])


@pytest.mark.parametrize("name", sorted(LOSS_FNS))
def test_shard_map_with_axis_name(name, data, reference):
  z, y = data
  mesh = jax.make_mesh((NUM_DEVICES,), ("data",),
                       axis_types=(AxisType.Explicit,))
  zs = jax.device_put(z, NamedSharding(mesh, P("data")))
  ys = jax.device_put(y, NamedSharding(mesh, P("data")))
  fn = functools.partial(LOSS_FNS[name], a="data")

  # Gradient taken per device, inside the map.
  inside = jax.jit(jax.shard_map(
      jax.value_and_grad(fn), mesh=mesh, in_specs=(P("data"), P("data")),
      out_specs=(P(), P("data"))))
  value, grad = inside(zs, ys)
  _assert_same(value, grad, reference[name])

  # Gradient of the mapped function, outside the map.
  mapped = jax.shard_map(fn, mesh=mesh, in_specs=(P("data"), P("data")),
                         out_specs=P())
  value, grad = jax.jit(jax.value_and_grad(mapped))(zs, ys)
  _assert_same(value, grad, reference[name])


@pytest.mark.parametrize("name", sorted(LOSS_FNS))
def test_pmap_with_axis_name(name, data, reference):
  z, y = data
  zp = z.reshape(NUM_DEVICES, N // NUM_DEVICES, K, D)
  yp = y.reshape(NUM_DEVICES, N // NUM_DEVICES)
  fn = functools.partial(LOSS_FNS[name], a="batch")
  value, grad = jax.pmap(jax.value_and_grad(fn), axis_name="batch")(zp, yp)
  np.testing.assert_allclose(np.asarray(value), float(reference[name][0]),
                             rtol=1e-5, atol=1e-6)
  _assert_same(value[0], np.asarray(grad).reshape(N, K, D), reference[name])


def test_views_of_a_sample_stay_on_one_device(data):
  # Sharding [N, K, D] on N keeps a sample's views together; the loss is the
  # global one, not the mean of per-device losses (design.md 3.4).
  z, y = data
  mesh = jax.make_mesh((NUM_DEVICES,), ("data",),
                       axis_types=(AxisType.Explicit,))
  zs = jax.device_put(z, NamedSharding(mesh, P("data")))
  local_only = jax.jit(jax.shard_map(
      lambda x: jax.lax.pmean(losses.ntxent(x, temperature=0.5), "data"),
      mesh=mesh, in_specs=P("data"), out_specs=P()))(zs)
  global_loss = losses.ntxent(z, temperature=0.5)
  assert abs(float(local_only) - float(global_loss)) > 0.1
