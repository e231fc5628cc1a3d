"""Bad input to the losses: never a plausible number (issue 10.7).

NaN or Inf in ``z`` propagates NaN (anchors are not dropped as invalid),
a traced ``beta`` works under jit, and malformed hyper-parameters or an
empty batch raise an error that names the argument.
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

LABELS = np.array([0, 0, 1, 1, 2, 2, 3, 3], np.int32)


def _z(n=8, k=2, d=4):
  return np.random.default_rng(0).normal(size=(n, k, d)).astype(np.float32)


LOSSES = {
    "ntxent": lambda z, y, **kw: losses.ntxent(z, temperature=0.5, **kw),
    "cl_code": lambda z, y, **kw: losses.ntxent(
        z, temperature=0.5, double_count_positive=True, **kw),
    "dcl": lambda z, y, **kw: losses.dcl(z, **kw),
    "nscl": lambda z, y, **kw: losses.nscl(z, y, **kw),
    "nscl_code": lambda z, y, **kw: losses.nscl(
        z, y, positive_in_denominator=True, **kw),
    "supcon_out": lambda z, y, **kw: losses.supcon(z, y, **kw),
    "supcon_in": lambda z, y, **kw: losses.supcon(z, y, variant="in", **kw),
    "scl": lambda z, y, **kw: losses.hard_contrastive(z, y, **kw),
    "hscl": lambda z, y, **kw: losses.hard_contrastive(z, y, beta=2.0, **kw),
    "hucl": lambda z, y, **kw: losses.hard_contrastive(
        z, y, beta=2.0, negatives="all", **kw),
    "debiased": lambda z, y, **kw: losses.hard_contrastive(
        z, estimator="debiased", negatives="all", beta=1.0,
        normalize="sphere", **kw),
    "cl_nscl": lambda z, y, **kw: losses.cl_nscl(z, y, **kw)["nscl"],
}


@pytest.mark.parametrize("bad,block_size", [(np.nan, "dense"), (np.nan, 4),
                                            (np.inf, "dense"),
                                            (-np.inf, 4)])
@pytest.mark.parametrize("name", sorted(LOSSES))
def test_nan_or_inf_in_z_gives_nan(name, bad, block_size):
  z = _z()
  z[3, 1, 2] = bad
  value = LOSSES[name](z, LABELS, block_size=block_size)
  assert np.isnan(float(value)), float(value)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_nan_in_z_gives_nan_in_every_loss_of_all_losses(bad):
  z = _z()
  z[0, 0, 0] = bad
  out = jax.jit(functools.partial(losses.all_losses, temperature=0.5,
                                  beta=1.0))(z, LABELS)
  for name, value in out.items():
    if name in ("gap_bound", "nscl_valid"):  # functions of the labels only
      continue
    assert np.isnan(float(value)), (name, float(value))


def test_nan_in_z_gives_nan_for_the_sampled_estimator():
  z = _z()
  z[5, 0, 1] = np.nan
  value = losses.hard_contrastive(z, LABELS, beta=1.0, estimator="sampled",
                                  num_negatives=8, key=jax.random.key(0))
  assert np.isnan(float(value))


def test_empty_classes_still_give_zero_not_nan():
  # The documented value when no anchor is valid is untouched: 0, counted.
  z = _z()
  value, counts = losses.nscl(z, np.zeros(8, np.int32), return_counts=True)
  assert float(value) == 0.0 and int(counts.num_valid) == 0


BETA_LOSSES = {
    "hscl": lambda z, b, **kw: losses.hard_contrastive(z, LABELS, beta=b,
                                                       **kw),
    "hucl": lambda z, b, **kw: losses.hard_contrastive(
        z, LABELS, beta=b, negatives="all", **kw),
    "debiased": lambda z, b, **kw: losses.hard_contrastive(
        z, estimator="debiased", negatives="all", beta=b, normalize="sphere",
        **kw),
    "all_losses": lambda z, b, **kw: losses.all_losses(
        z, LABELS, temperature=0.5, beta=b, **kw)["hscl"],
}


@pytest.mark.parametrize("block_size", ["dense", 4])
@pytest.mark.parametrize("name", sorted(BETA_LOSSES))
def test_traced_beta_under_jit(name, block_size):
  z = _z()
  fn = functools.partial(BETA_LOSSES[name], block_size=block_size)
  want_value, want_grad = jax.value_and_grad(fn)(z, 2.0)
  value, grad = jax.jit(jax.value_and_grad(fn))(z, jnp.float32(2.0))
  np.testing.assert_allclose(float(value), float(want_value), rtol=1e-6)
  np.testing.assert_allclose(np.asarray(grad), np.asarray(want_grad),
                             rtol=1e-5, atol=1e-7)


def test_traced_beta_sampled_and_on_a_sharded_batch():
  z = _z(16)
  y = np.tile(LABELS, 2)
  key = jax.random.key(3)
  sampled = lambda z, b: losses.hard_contrastive(  # noqa: E731
      z, y, beta=b, estimator="sampled", num_negatives=8, key=key)
  np.testing.assert_allclose(float(jax.jit(sampled)(z, 1.5)),
                             float(sampled(z, 1.5)), rtol=1e-6)
  mesh = jax.make_mesh((8,), ("data",), axis_types=(AxisType.Explicit,))
  zs = jax.device_put(z, NamedSharding(mesh, P("data")))
  ys = jax.device_put(y, NamedSharding(mesh, P("data")))
  for block in ("dense", 2):
    fn = lambda z, y, b: losses.hard_contrastive(  # noqa: E731
        z, y, beta=b, block_size=block)
    np.testing.assert_allclose(float(jax.jit(fn)(zs, ys, 1.5)),
                               float(fn(z, y, 1.5)), rtol=1e-5)


Z = np.ones((4, 2, 8), np.float32)
Y = np.zeros(4, np.int32)


@pytest.mark.parametrize("call,match", [
    (lambda: losses.ntxent(Z, temperature=np.array([0.5, 0.5])),
     r"`temperature` must be a scalar.*shape \(2,\)"),
    (lambda: losses.supcon(Z, Y, temperature=True),
     r"`temperature` must be a real number, not the bool"),
    (lambda: losses.nscl(Z, Y, temperature=jnp.array([1.0])),
     r"`temperature` must be a scalar"),
    (lambda: losses.all_losses(Z, Y, temperature=True),
     r"`temperature` must be a real number"),
    (lambda: losses.cl_nscl(Z, Y, temperature=np.ones(2)),
     r"`temperature` must be a scalar"),
    (lambda: losses.hard_contrastive(Z, Y, beta=True),
     r"`beta` must be a real number"),
    (lambda: losses.hard_contrastive(Z, Y, beta=np.ones(3)),
     r"`beta` must be a scalar"),
    (lambda: losses.supcon(Z, Y, same_class_weight=np.ones(2)),
     r"`same_class_weight` must be a scalar"),
    (lambda: losses.hard_contrastive(Z, Y, estimator="sampled",
                                     key=jax.random.key(0),
                                     num_negatives=True),
     r"`num_negatives` must be an int >= 1"),
    (lambda: losses.ntxent(np.ones((0, 2, 8), np.float32), temperature=1.0),
     r"`z` has N=0 samples"),
    (lambda: losses.supcon(np.ones((0, 2, 8), np.float32),
                           np.zeros(0, np.int32)), r"`z` has N=0 samples"),
    (lambda: losses.all_losses(np.ones((0, 2, 8), np.float32),
                               np.zeros(0, np.int32), temperature=1.0),
     r"`z` has N=0 samples"),
    (lambda: losses.cross_entropy(np.ones((0, 3), np.float32),
                                  np.zeros(0, np.int32)),
     r"`logits` has N=0 rows"),
])
def test_bad_hyper_parameters_and_empty_batches_raise(call, match):
  with pytest.raises(ValueError, match=match):
    call()


# --- the registry and the debiased estimator --------------------------------


@pytest.mark.parametrize("kwargs,match", [
    (dict(labels=LABELS), r"takes no `labels`"),
    (dict(key=jax.random.key(0), negatives="all"), r"takes no `key`"),
    (dict(negatives="different_class"), r"negatives='different_class'"),
])
def test_debiased_estimator_refuses_what_it_would_ignore(kwargs, match):
  labels = kwargs.pop("labels", None)
  with pytest.raises(ValueError, match=match):
    losses.hard_contrastive(_z(), labels, estimator="debiased", **kwargs)


def test_debiased_contrastive_is_the_routed_estimator():
  z = _z()
  kw = dict(beta=1.5, tau_plus=0.2, temperature=0.5, normalize="sphere")
  np.testing.assert_allclose(
      float(losses.debiased_contrastive(z, **kw)),
      float(losses.hard_contrastive(z, estimator="debiased", **kw)),
      rtol=0, atol=0)
  np.testing.assert_allclose(
      float(losses.get("debiased_contrastive")(z, LABELS, **kw)),
      float(losses.debiased_contrastive(z, **kw)), rtol=0, atol=0)


@pytest.mark.parametrize("name", ["hscl", "hucl"])
def test_hard_names_require_beta(name):
  with pytest.raises(ValueError, match=r"pass `beta=`"):
    losses.get(name)(_z(), LABELS)


def test_loss_specs_state_what_a_call_needs():
  spec = losses.spec("nscl")
  assert spec.needs_labels and spec.min_views == 2
  assert spec.min_views_for({"include_self_pairs": True}) == 1
  assert not losses.spec("ntxent").needs_labels
  assert losses.spec("supcon").min_views_for({}) == 1
  assert losses.spec("hscl").required == ("beta",)
  assert losses.spec("hard_contrastive").needs_key_for(
      {"estimator": "sampled"})
  assert not losses.spec("hard_contrastive").needs_key_for({})
  assert set(losses.LOSSES) >= {"ntxent", "dcl", "nscl", "supcon",
                                "hard_contrastive", "debiased_contrastive",
                                "scl", "hscl", "ucl", "hucl"}
  with pytest.raises(ValueError, match=r"Unknown loss 'simclr'"):
    losses.spec("simclr")
