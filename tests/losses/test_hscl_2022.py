"""cljax.losses.hscl_2022 against the NumPy loop of tests/naive_losses.py,
its beta = 0 closed form, NT-Xent / Robinson et al.'s HCL where they coincide,
finite-difference gradients (weights kept or detached), the mapped axis and
bad input."""

import functools
import math

import jax
from jax.sharding import AxisType
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P
import numpy as np
import pytest

from cljax import losses
from tests import naive_losses as naive
from tests.losses.test_losses import _numerical_grad

# Unbalanced, with a one-member class (3): its views have only their twin as
# a positive.
LABELS = np.array([0, 0, 0, 1, 1, 2, 2, 3], np.int32)


def _z(n=8, k=2, d=5, seed=0, scale=1.0):
  rng = np.random.default_rng(seed + 10 * k)
  return (scale * rng.normal(size=(n, k, d))).astype(np.float32)


@pytest.mark.parametrize("k", [2, 3])
@pytest.mark.parametrize("beta", [0.0, 1.0, 4.0])
@pytest.mark.parametrize("normalize", ["sphere", "ball"])
def test_matches_naive_loop(k, beta, normalize):
  z = _z(k=k, scale=1.5)
  loss, counts = losses.hscl_2022(z, LABELS, beta=beta, normalize=normalize,
                                  return_counts=True)
  want, valid = naive.hscl_2022(z, LABELS, beta=beta, normalize=normalize)
  np.testing.assert_allclose(float(loss), want, rtol=2e-5, atol=2e-5)
  assert int(counts.num_valid) == valid == 8 * k
  # Detaching changes the gradient only, never the value.
  detached = losses.hscl_2022(z, LABELS, beta=beta, normalize=normalize,
                              detach_weights=True)
  np.testing.assert_allclose(float(detached), float(loss), rtol=1e-6)


def test_temperature_and_sum_reduction_match_naive():
  z = _z(seed=3)
  got = losses.hscl_2022(z, LABELS, beta=2.0, temperature=0.2,
                         reduction="sum")
  want, _ = naive.hscl_2022(z, LABELS, beta=2.0, temperature=0.2)
  # "sum" adds the pair sums: mean times the number of pairs.
  num_pairs = sum(int(np.sum(np.repeat(LABELS, 2) == y)) - 1
                  for y in np.repeat(LABELS, 2))
  np.testing.assert_allclose(float(got), want * num_pairs, rtol=2e-5)


def test_beta_zero_closed_form():
  # beta = 0: uniform weights, M mean_j e^{s_aj} = (M / |Q(a)|) sum_j e^{s_aj}.
  z = _z(seed=5)
  flat = z.reshape(16, -1).astype(np.float64)
  flat /= np.linalg.norm(flat, axis=1, keepdims=True)
  s = flat @ flat.T / 0.5
  vlab = np.repeat(LABELS, 2)
  same = vlab[:, None] == vlab[None, :]
  neg_mean = np.where(~same, np.exp(s), 0.0).sum(1) / (~same).sum(1)
  pair = np.log1p(14 * neg_mean[:, None] / np.exp(s))
  pos = same & ~np.eye(16, dtype=bool)
  want = pair[pos].mean()
  got = losses.hscl_2022(z, LABELS, beta=0.0)
  np.testing.assert_allclose(float(got), want, rtol=2e-5)


def test_distinct_labels_is_ntxent_and_hcl():
  # Every sample its own class, K = 2: the negatives are the 2N - 2 views of
  # the other samples and M = 2N - 2, so beta = 0 is NT-Xent and beta > 0 is
  # Robinson et al.'s HCL with tau_plus = 0 (weights not detached in both).
  z = _z(seed=7)
  labels = np.arange(8, dtype=np.int32)
  f0 = lambda x: losses.hscl_2022(x, labels, beta=0.0)  # noqa: E731
  g0 = lambda x: losses.ntxent(x, temperature=0.5)  # noqa: E731
  f2 = lambda x: losses.hscl_2022(x, labels, beta=2.0)  # noqa: E731
  g2 = lambda x: losses.debiased_contrastive(  # noqa: E731
      x, beta=2.0, tau_plus=0.0, temperature=0.5)
  for f, g in ((f0, g0), (f2, g2)):
    (fv, fg), (gv, gg) = jax.value_and_grad(f)(z), jax.value_and_grad(g)(z)
    np.testing.assert_allclose(float(fv), float(gv), rtol=1e-5)
    np.testing.assert_allclose(np.asarray(fg), np.asarray(gg), rtol=1e-4,
                               atol=1e-6)


def test_harder_negatives_never_lower_the_loss():
  z = _z(seed=9)
  values = [float(losses.hscl_2022(z, LABELS, beta=b))
            for b in (0.0, 0.5, 1.0, 3.0)]
  assert values == sorted(values)


@pytest.mark.parametrize("detach", [False, True])
def test_gradient_matches_finite_differences_of_naive(detach):
  z = _z(n=5, d=3, scale=0.8)
  labels = np.array([0, 0, 1, 1, 2], np.int32)
  got = jax.grad(lambda x: losses.hscl_2022(
      x, labels, beta=2.0, detach_weights=detach))(z)
  frozen = np.asarray(z, np.float64) if detach else None
  want = _numerical_grad(
      lambda x: naive.hscl_2022(x, labels, beta=2.0, weights_from=frozen)[0],
      z)
  np.testing.assert_allclose(np.asarray(got, np.float64), want, rtol=1e-3,
                             atol=1e-4)


def test_detaching_changes_the_gradient():
  z = _z(seed=2)
  grads = [np.asarray(jax.grad(lambda x, d=d: losses.hscl_2022(
      x, LABELS, beta=2.0, detach_weights=d))(z)) for d in (False, True)]
  assert np.max(np.abs(grads[0] - grads[1])) > 1e-4


def test_anchor_without_negatives_is_invalid_and_finite():
  z = _z(n=4, seed=4)
  labels = np.array([0, 0, 0, 0], np.int32)
  value, grad = jax.value_and_grad(lambda x: losses.hscl_2022(
      x, labels, return_counts=True)[0])(z)
  _, counts = losses.hscl_2022(z, labels, return_counts=True)
  assert float(value) == 0.0 and int(counts.num_valid) == 0
  assert np.all(np.asarray(grad) == 0.0)
  # One class with a single other-class sample: only its negatives count.
  labels = np.array([0, 0, 0, 1], np.int32)
  got, counts = losses.hscl_2022(z, labels, return_counts=True)
  want, valid = naive.hscl_2022(z, labels)
  np.testing.assert_allclose(float(got), want, rtol=2e-5)
  assert int(counts.num_valid) == valid


def test_jit_and_shard_map_match_single_device():
  z, y = _z(seed=6), LABELS
  ref_v, ref_g = jax.value_and_grad(
      lambda x: losses.hscl_2022(x, y, beta=1.5))(z)
  mesh = jax.make_mesh((4,), ("data",), axis_types=(AxisType.Explicit,),
                       devices=jax.devices()[:4])
  zs = jax.device_put(z, NamedSharding(mesh, P("data")))
  ys = jax.device_put(y, NamedSharding(mesh, P("data")))
  fn = functools.partial(losses.hscl_2022, beta=1.5, axis_name="data")
  mapped = jax.shard_map(fn, mesh=mesh, in_specs=(P("data"), P("data")),
                         out_specs=P())
  value, grad = jax.jit(jax.value_and_grad(mapped))(zs, ys)
  np.testing.assert_allclose(float(value), float(ref_v), rtol=1e-5)
  np.testing.assert_allclose(np.asarray(grad), np.asarray(ref_g), rtol=1e-4,
                             atol=1e-6)
  # Plain jit on the sharded batch (no axis_name).
  value, grad = jax.jit(jax.value_and_grad(
      lambda x, t: losses.hscl_2022(x, t, beta=1.5)))(zs, ys)
  np.testing.assert_allclose(float(value), float(ref_v), rtol=1e-5)
  np.testing.assert_allclose(np.asarray(grad), np.asarray(ref_g), rtol=1e-4,
                             atol=1e-6)


def test_registry_entry():
  spec = losses.spec("hscl_2022")
  assert spec.needs_labels and spec.min_views == 2 and not spec.required
  z = _z(seed=8)
  np.testing.assert_allclose(
      float(losses.get("hscl_2022")(z, LABELS, beta=1.0)),
      float(losses.hscl_2022(z, LABELS, beta=1.0)), rtol=1e-6)


@pytest.mark.parametrize("call,match", [
    (lambda z: losses.hscl_2022(z[:, :1], LABELS), "K>=2"),
    (lambda z: losses.hscl_2022(z[0], LABELS), "rank 3"),
    (lambda z: losses.hscl_2022(z, LABELS[:3]), "labels"),
    (lambda z: losses.hscl_2022(z, None), "labels"),
    (lambda z: losses.hscl_2022(z, LABELS.astype(np.float32)), "integer"),
    (lambda z: losses.hscl_2022(z, LABELS, beta=-1.0), "beta"),
    (lambda z: losses.hscl_2022(z, LABELS, temperature=0.0), "temperature"),
    (lambda z: losses.hscl_2022(z, LABELS, detach_weights=1), "detach"),
    (lambda z: losses.hscl_2022(z, LABELS, normalize="l2"), "normalize"),
    (lambda z: losses.hscl_2022(z, LABELS, reduction="max"), "reduction"),
    (lambda z: losses.hscl_2022(z.astype(np.int32), LABELS), "floating"),
])
def test_bad_input(call, match):
  with pytest.raises(ValueError, match=match):
    call(_z())


def test_positional_hyper_parameters_are_refused():
  with pytest.raises(TypeError):
    # pylint: disable-next=too-many-function-args
    losses.hscl_2022(_z(), LABELS, 1.0)


def test_multiplier_is_views_less_two():
  # Two samples of different classes, K = 2: each anchor has its twin as the
  # positive and the other sample's two views as negatives; M = 2.
  z = _z(n=2, seed=1)
  got = float(losses.hscl_2022(z, np.array([0, 1], np.int32), beta=0.0))
  flat = z.reshape(4, -1).astype(np.float64)
  flat /= np.linalg.norm(flat, axis=1, keepdims=True)
  s = 2.0 * flat @ flat.T
  pairs = [math.log1p(2 * np.mean(np.exp(s[a, [b for b in range(4)
                                                 if b // 2 != a // 2]]))
                      / math.exp(s[a, a ^ 1])) for a in range(4)]
  np.testing.assert_allclose(got, np.mean(pairs), rtol=2e-5)
