"""Labels outside [0, num_classes) never give a plausible number.

Every public function of ``cljax.geometry`` and ``cljax.probes`` that takes
class ids and a number of classes raises a ``ValueError`` on concrete bad
labels and, on traced ones, returns a result whose every float element is
NaN and every integer element -1: under ``jax.jit``, ``jit`` on a batch
sharded over the 8-device mesh, per device inside ``jax.shard_map`` and
``jax.pmap`` (``axis_name``). The bad id sits on the last shard only, so
the mapped paths must agree across devices. The same functions on in-range
labels (same shapes: no new compilation) must not be poisoned.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from cljax._src import checks
from cljax import geometry
from cljax import probes

NDEV, N, D, C = 8, 16, 3, 2
KEY = jax.random.key(0)


def _make_data():
  rng = np.random.default_rng(0)
  labels = (np.arange(N) % C).astype(np.int32)
  features = (3.0 * np.eye(C, D)[labels]
              + rng.normal(size=(N, D))).astype(np.float32)
  views = (features[:, None] + 0.3 * rng.normal(size=(N, 2, D))
           ).astype(np.float32)
  weights = rng.normal(size=(C, D)).astype(np.float32)
  bias = rng.normal(size=(C,)).astype(np.float32)
  bad = labels.copy()
  bad[N - 1] = C  # On the last shard only; dropped by the class sums.
  return features, labels, bad, views, weights, bias


FEATURES, LABELS, BAD, VIEWS, WEIGHTS, BIAS = _make_data()


def _kw(a):
  return dict(num_classes=C, axis_name=a)


g, p = geometry, probes
# name -> fn(features, labels, views, weights, bias, axis_name).
MAPPED_FNS = {
    "class_counts": lambda f, y, v, w, b, a: g.class_counts(y, **_kw(a)),
    "class_means": lambda f, y, v, w, b, a: g.class_means(f, y, **_kw(a)),
    "nc1": lambda f, y, v, w, b, a: g.nc1(f, y, **_kw(a)),
    "equinorm": lambda f, y, v, w, b, a: g.equinorm(f, y, **_kw(a)),
    "equiangularity": lambda f, y, v, w, b, a: g.equiangularity(
        f, y, **_kw(a)),
    "max_angle": lambda f, y, v, w, b, a: g.max_angle(f, y, **_kw(a)),
    "etf_distance": lambda f, y, v, w, b, a: g.etf_distance(f, y, **_kw(a)),
    "orthogonal_frame_distance": lambda f, y, v, w, b, a:
        g.orthogonal_frame_distance(f, y, **_kw(a)),
    "class_mean_gram": lambda f, y, v, w, b, a: g.class_mean_gram(
        f, y, **_kw(a)),
    "nc3_self_duality": lambda f, y, v, w, b, a: g.nc3_self_duality(
        f, y, w, **_kw(a)),
    "nc4_ncc_agreement": lambda f, y, v, w, b, a: g.nc4_ncc_agreement(
        f, y, w, b, **_kw(a)),
    "cdnv": lambda f, y, v, w, b, a: g.cdnv(f, y, **_kw(a)),
    "directional_cdnv": lambda f, y, v, w, b, a: g.directional_cdnv(
        f, y, **_kw(a)),
    "augmentation_collapse": lambda f, y, v, w, b, a:
        g.augmentation_collapse(v, y, **_kw(a)),
    "class_mean_spectrum": lambda f, y, v, w, b, a: g.class_mean_spectrum(
        f, y, **_kw(a)),
    "zero_sum": lambda f, y, v, w, b, a: g.zero_sum(f, y, **_kw(a)),
    "unit_norm": lambda f, y, v, w, b, a: g.unit_norm(f, y, **_kw(a)),
    "equal_inner_product": lambda f, y, v, w, b, a: g.equal_inner_product(
        f, y, **_kw(a)),
    "within_class_distance": lambda f, y, v, w, b, a:
        g.within_class_distance(f, y, **_kw(a)),
    "update": lambda f, y, v, w, b, a: g.update(g.init(C, D), f, y,
                                                axis_name=a),
    "class_centers": lambda f, y, v, w, b, a: p.class_centers(f, y, **_kw(a)),
    "ncc_accuracy": lambda f, y, v, w, b, a: p.ncc_accuracy(
        f, y, f, y, **_kw(a)),
    "mean_classifier_accuracy": lambda f, y, v, w, b, a:
        p.mean_classifier_accuracy(f, y, f, y, **_kw(a)),
    "knn_predict": lambda f, y, v, w, b, a: p.knn_predict(
        f, y, f, k=1, **_kw(a)),
    "knn_accuracy": lambda f, y, v, w, b, a: p.knn_accuracy(
        f, y, f, y, k=1, **_kw(a)),
}
# name -> fn(features, labels, weights): functions without `axis_name`.
GLOBAL_FNS = {
    "mean_classifier_loss": lambda f, y, w: p.mean_classifier_loss(f, y, w),
    "linear_probe": lambda f, y, w: p.linear_probe(
        f, y, f, y, num_classes=C, key=KEY, steps=2),
    "ridge_probe": lambda f, y, w: p.ridge_probe(f, y, f, y, num_classes=C),
    # `labels` must be concrete; the traced ones are the test labels.
    "fewshot_episodes": lambda f, y, w: p.fewshot_episodes(
        f, LABELS, shots=1, ways=2, num_episodes=2, key=KEY,
        test_features=f, test_labels=y, classifier="ridge"),
}
MAPPED, GLOBAL_ONLY = sorted(MAPPED_FNS), sorted(GLOBAL_FNS)
# `update` scatters without an output sharding: it cannot take a batch
# sharded on an Explicit mesh under jit whatever the labels (it runs per
# device with `axis_name` instead).
NOT_SHARDED_JIT = ("update",)


def _mapped(f, y, v, w, b, axis_name, skip=()):
  return {n: fn(f, y, v, w, b, axis_name) for n, fn in MAPPED_FNS.items()
          if n not in skip}


def _global_only(f, y, v, w, b):
  del v, b
  return {n: fn(f, y, w) for n, fn in GLOBAL_FNS.items()}


PATHS = ("jit", "sharded_jit", "shard_map", "pmap")


def _mesh():
  return jax.make_mesh((NDEV,), ("data",))


@functools.lru_cache(maxsize=None)
def _compiled(path):
  """One jitted program per path, reused for good and bad labels."""
  if path == "jit":
    return jax.jit(lambda *a: {**_mapped(*a, axis_name=None),
                               **_global_only(*a)})
  if path == "sharded_jit":
    return jax.jit(functools.partial(_mapped, axis_name=None,
                                     skip=NOT_SHARDED_JIT))
  if path == "shard_map":
    def stacked(*a):
      # out_specs P("data") stacks every device's value: all are checked.
      return jax.tree.map(lambda x: x[None], _mapped(*a, axis_name="data"))
    return jax.jit(jax.shard_map(
        stacked, mesh=_mesh(), in_specs=(jax.P("data"),) * 3
        + (jax.P(),) * 2, out_specs=jax.P("data")))
  if path == "pmap":
    return jax.pmap(functools.partial(_mapped, axis_name="data"),
                    axis_name="data", in_axes=(0, 0, 0, None, None))
  raise AssertionError(path)


@functools.lru_cache(maxsize=None)
def _run(path, bad):
  args = [FEATURES, BAD if bad else LABELS, VIEWS, WEIGHTS, BIAS]
  if path in ("sharded_jit", "shard_map"):
    batch = jax.NamedSharding(_mesh(), jax.P("data"))
    args[:3] = [jax.device_put(a, batch) for a in args[:3]]
  elif path == "pmap":
    args[:3] = [a.reshape((NDEV, -1) + a.shape[1:]) for a in args[:3]]
  return jax.device_get(_compiled(path)(*args))


def _numbers(tree):
  """The leaves that carry numbers (no bool masks, no PRNG keys)."""
  out = []
  for leaf in jax.tree.leaves(tree):
    if jnp.issubdtype(leaf.dtype, jax.dtypes.prng_key):
      continue
    leaf = np.asarray(leaf)
    if leaf.dtype != bool:
      out.append(leaf)
  return out


CASES = ([(path, name) for path in PATHS for name in MAPPED
          if path != "sharded_jit" or name not in NOT_SHARDED_JIT]
         + [("jit", name) for name in GLOBAL_ONLY])


@pytest.mark.parametrize("path,name", CASES, ids=["-".join(c) for c in CASES])
def test_traced_bad_labels_poison_every_element(path, name):
  leaves = _numbers(_run(path, True)[name])
  assert leaves, name
  for leaf in leaves:
    if np.issubdtype(leaf.dtype, np.integer):
      assert np.all(leaf == -1), (name, leaf)
    else:
      assert np.all(np.isnan(leaf)), (name, leaf)


@pytest.mark.parametrize("path", PATHS)
def test_in_range_labels_are_not_poisoned(path):
  # Same program, same shapes: the guard only fires on a bad id.
  got = _run(path, False)
  for name in got:
    for leaf in _numbers(got[name]):
      if np.issubdtype(leaf.dtype, np.integer):
        assert np.all(leaf >= 0), name
      else:
        assert np.all(np.isfinite(leaf)), name


def _eager(name, labels):
  if name in MAPPED_FNS:
    return MAPPED_FNS[name](FEATURES, labels, VIEWS, WEIGHTS, BIAS, None)
  return GLOBAL_FNS[name](FEATURES, labels, WEIGHTS)


@pytest.mark.parametrize("name", MAPPED + GLOBAL_ONLY)
@pytest.mark.parametrize("bad_id", [C, -1])
def test_concrete_bad_labels_raise(name, bad_id):
  labels = LABELS.copy()
  labels[N - 1] = bad_id
  with pytest.raises(ValueError, match=r"labels` must lie in \[0, 2\)"):
    _eager(name, labels)


@pytest.mark.parametrize("bad_id", [C, -1, 100])
def test_the_guard_counts_both_ends_and_every_shard(bad_id):
  labels = LABELS.copy()
  labels[3] = bad_id  # First shard.
  fn = jax.jit(lambda y: checks.labels_out_of_range(y, num_classes=C))
  assert bool(fn(labels)) and not bool(fn(LABELS))
  per_device = jax.pmap(
      lambda y: checks.labels_out_of_range(y, num_classes=C,
                                            axis_name="i"), axis_name="i")
  assert np.all(per_device(labels.reshape(NDEV, -1)))
  assert not np.any(per_device(LABELS.reshape(NDEV, -1)))
