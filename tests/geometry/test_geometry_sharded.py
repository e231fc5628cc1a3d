"""Geometry metrics on 8 devices: per device (axis_name), pmap, sharded jit.

Every metric of ``test_geometry._all_metrics`` is evaluated on one device,
per device inside ``jax.shard_map`` and ``jax.pmap`` with ``axis_name``
(where every device must return the global value) and under ``jit`` on a
batch sharded over an 8-device Explicit mesh; all equal each other and the
float64 NumPy loop references. The data have unbalanced classes, a class
present on one shard only and a class absent everywhere. The on-device
streaming accumulator is checked against the same float64 loop references,
computed from the raw features and labels (not ``FeatureStatistics``, which
shares ``metrics_from_moments`` with it).
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from cljax import geometry
from tests.geometry import test_geometry as tg

NDEV, N, D, K, C = 8, 48, 5, 3, 6
TIGHT = dict(rtol=2e-5, atol=1e-6)  # 1 device vs 8 devices (float32 both)
REF = dict(rtol=tg.RTOL, atol=tg.ATOL)  # float32 vs float64 loop reference


def _make_data():
  rng = np.random.default_rng(11)
  # Class 4 has 3 samples, all on the first shard; class 5 has none.
  labels = np.concatenate([[4, 4, 4], rng.permutation(
      np.repeat([0, 1, 2, 3], [3, 7, 14, 21]))]).astype(np.int32)
  centers = 2.0 * rng.normal(size=(C, D))
  features = (centers[labels] + rng.normal(size=(N, D))).astype(np.float32)
  views = (features[:, None] + 0.5 * rng.normal(size=(N, K, D))
           ).astype(np.float32)
  return dict(features=features, labels=labels, views=views,
              weights=rng.normal(size=(C, D)).astype(np.float32),
              bias=rng.normal(size=(C,)).astype(np.float32), num_classes=C)


DATA = _make_data()
BATCH_KEYS = ("features", "labels", "views")


def _all_metrics(features, labels, views, weights, bias, axis_name=None):
  """Every metric with the axis name, as test_geometry._all_metrics."""
  f, y, c, a = features, labels, C, axis_name
  g = geometry
  eip = g.equal_inner_product(f, y, num_classes=c, axis_name=a)
  return {
      "class_means": g.class_means(f, y, num_classes=c, axis_name=a),
      "class_counts": g.class_counts(y, num_classes=c, axis_name=a),
      "nc1": g.nc1(f, y, num_classes=c, axis_name=a),
      "nc1_rcond": g.nc1(f, y, num_classes=c, rcond=1e-3, axis_name=a),
      "equinorm": g.equinorm(f, y, num_classes=c, axis_name=a),
      "equinorm_classes": g.equinorm(f, y, num_classes=c, center="classes",
                                     axis_name=a),
      "equinorm_raw": g.equinorm(f, y, num_classes=c, center=False,
                                 axis_name=a),
      "equiangularity": g.equiangularity(f, y, num_classes=c, axis_name=a),
      "equiangularity_raw": g.equiangularity(f, y, num_classes=c,
                                             center=False, axis_name=a),
      "max_angle": g.max_angle(f, y, num_classes=c, axis_name=a),
      "max_angle_classes": g.max_angle(f, y, num_classes=c,
                                       center="classes", axis_name=a),
      "etf_distance": g.etf_distance(f, y, num_classes=c, axis_name=a),
      "etf_distance_raw": g.etf_distance(f, y, num_classes=c, center=False,
                                         axis_name=a),
      "orthogonal_frame_distance": g.orthogonal_frame_distance(
          f, y, num_classes=c, axis_name=a),
      "class_mean_gram": g.class_mean_gram(f, y, num_classes=c, axis_name=a),
      "class_mean_gram_centred": g.class_mean_gram(
          f, y, num_classes=c, center=True, axis_name=a),
      "nc3": g.nc3_self_duality(f, y, weights, num_classes=c, axis_name=a),
      "nc3_raw": g.nc3_self_duality(f, y, weights, center=False,
                                    axis_name=a),
      "nc4": g.nc4_ncc_agreement(f, y, weights, bias, num_classes=c,
                                 axis_name=a),
      "nc4_nobias": g.nc4_ncc_agreement(f, y, weights, axis_name=a),
      "cdnv": g.cdnv(f, y, num_classes=c, axis_name=a),
      "cdnv_bounds": g.cdnv(f, y, num_classes=c,
                            convention="directional_bounds", axis_name=a),
      "directional_cdnv": g.directional_cdnv(f, y, num_classes=c,
                                             axis_name=a),
      "augmentation": g.augmentation_collapse(views, y, num_classes=c,
                                              axis_name=a),
      "augmentation_unlabelled": g.augmentation_collapse(views, axis_name=a),
      "singular_values": g.singular_values(f, axis_name=a),
      "singular_values_raw": g.singular_values(f, center=False, axis_name=a),
      "effective_rank": g.effective_rank(f, axis_name=a),
      "effective_rank_raw": g.effective_rank(f, center=False, eps=1e-3,
                                             axis_name=a),
      "class_mean_spectrum": g.class_mean_spectrum(f, y, num_classes=c,
                                                   axis_name=a),
      "alignment": g.alignment(views, axis_name=a),
      "alignment_alpha1": g.alignment(views, alpha=1.0, axis_name=a),
      "uniformity": g.uniformity(f, axis_name=a),
      "uniformity_t": g.uniformity(f, t=0.05, axis_name=a),
      "zero_sum": g.zero_sum(f, y, num_classes=c, axis_name=a),
      "unit_norm": g.unit_norm(f, y, num_classes=c, axis_name=a),
      "eip_mean": eip.mean,
      "eip_max": eip.max,
      "within_class_distance": g.within_class_distance(f, y, num_classes=c,
                                                       axis_name=a),
  }


def _mesh():
  return jax.make_mesh((NDEV,), ("data",))


def _args(data):
  return [data[k] for k in ("features", "labels", "views", "weights",
                            "bias")]


@functools.lru_cache(maxsize=None)
def _run(mode):
  """The metrics of DATA computed one way (each mode compiled once)."""
  args = _args(DATA)
  if mode == "single":
    return jax.device_get(jax.jit(_all_metrics)(*args))
  mesh = _mesh()
  batch = jax.NamedSharding(mesh, jax.P("data"))
  if mode == "sharded_jit":
    args = [jax.device_put(a, batch) if i < 3 else a
            for i, a in enumerate(args)]
    return jax.device_get(jax.jit(_all_metrics)(*args))
  if mode == "shard_map":
    args = [jax.device_put(a, batch) if i < 3 else a
            for i, a in enumerate(args)]
    def stacked(*a):
      # out_specs P("data") stacks what every device returned: each
      # device's value is checked, not just one.
      return jax.tree.map(lambda v: v[None], _all_metrics(*a,
                                                          axis_name="data"))

    fn = jax.shard_map(stacked, mesh=mesh, in_specs=(jax.P("data"),) * 3
                       + (jax.P(),) * 2, out_specs=jax.P("data"))
    return jax.device_get(jax.jit(fn)(*args))
  if mode == "pmap":
    per_device = [a.reshape((NDEV, -1) + a.shape[1:]) for a in args[:3]]
    fn = jax.pmap(functools.partial(_all_metrics, axis_name="data"),
                  axis_name="data", in_axes=(0, 0, 0, None, None))
    return jax.device_get(fn(*per_device, *args[3:]))
  raise AssertionError(mode)


@functools.lru_cache(maxsize=None)
def _references():
  ref_in = {k: (np.asarray(v, np.float64) if k in (
      "features", "views", "weights", "bias") else v)
            for k, v in DATA.items()}
  return tg._references(**ref_in)  # pylint: disable=protected-access


def _leaves(tree):
  return jax.tree.leaves(tree)


def _per_device(mode, value):
  """[NDEV, ...] values of a mapped mode; [1, ...] for global modes."""
  if mode in ("shard_map", "pmap"):
    return np.asarray(value)
  return np.asarray(value)[None]


MODES = ["sharded_jit", "shard_map", "pmap"]


@pytest.mark.parametrize("mode", MODES)
def test_every_metric_equals_one_device_and_reference(mode):
  assert jax.device_count() == NDEV
  single, got, ref = _run("single"), _run(mode), _references()
  assert set(got) == set(single) == set(ref)
  for name in ref:
    ref_leaves = (_leaves(ref[name]) if not isinstance(ref[name], dict)
                  else [ref[name][k] for k in sorted(ref[name])])
    one = (_leaves(single[name]) if not isinstance(single[name], dict)
           else [single[name][k] for k in sorted(single[name])])
    many = (_leaves(got[name]) if not isinstance(got[name], dict)
            else [got[name][k] for k in sorted(got[name])])
    for r, s, m in zip(ref_leaves, one, many):
      m = _per_device(mode, m)
      assert np.all(np.isfinite(m)), name
      np.testing.assert_allclose(s, r, err_msg=f"{name} 1 device", **REF)
      for device_value in m:  # every device holds the global value
        np.testing.assert_allclose(device_value, s, err_msg=name, **TIGHT)
        np.testing.assert_allclose(device_value, r, err_msg=name, **REF)


def test_eager_shard_map_equals_jitted_shard_map():
  # Un-jitted shard_map runs the per-device code op by op (slow on 8
  # simulated devices): a few metrics that cover the label check, the class
  # statistics, the pairwise class-mean distances and the scatter.
  args = [jax.device_put(a, jax.NamedSharding(_mesh(), jax.P("data")))
          for a in (DATA["features"], DATA["labels"])]

  def few(f, y):
    return {"nc1": geometry.nc1(f, y, num_classes=C, axis_name="data"),
            "cdnv": geometry.cdnv(f, y, num_classes=C, axis_name="data"),
            "etf_distance": geometry.etf_distance(f, y, num_classes=C,
                                                  axis_name="data"),
            "counts": geometry.class_counts(y, num_classes=C,
                                            axis_name="data")}

  fn = jax.shard_map(few, mesh=_mesh(), in_specs=jax.P("data"),
                     out_specs=jax.P())
  eager, jitted = jax.device_get(fn(*args)), jax.device_get(jax.jit(fn)(*args))
  for key in jitted:
    np.testing.assert_allclose(eager[key], jitted[key], err_msg=key, **TIGHT)
  np.testing.assert_allclose(eager["nc1"], _run("single")["nc1"], **TIGHT)


def test_absent_classes_are_masked_on_every_path():
  single = _run("single")
  counts = single["class_counts"]
  assert counts[5] == 0 and counts[4] == 3
  assert np.all(single["class_means"][5] == 0)
  for mode in MODES:
    np.testing.assert_array_equal(
        _per_device(mode, _run(mode)["class_counts"])[0], counts)


def test_sharded_jit_gathers_nothing_of_size_n():
  # The benchmark set (NC1, CDNV, ETF distance, effective rank) under jit on
  # a sharded batch: the compiled program reduces [C, D] and [D, D]
  # statistics and never all-gathers the [N, D] features.
  mesh = _mesh()
  batch = jax.NamedSharding(mesh, jax.P("data"))
  f = jax.device_put(DATA["features"], batch)
  y = jax.device_put(DATA["labels"], batch)

  def four(f, y):
    return (geometry.nc1(f, y, num_classes=C),
            geometry.cdnv(f, y, num_classes=C),
            geometry.etf_distance(f, y, num_classes=C),
            geometry.effective_rank(f))

  hlo = jax.jit(four).lower(f, y).compile().as_text()
  assert "all-gather" not in hlo
  assert "all-reduce" in hlo
  got = jax.device_get(jax.jit(four)(f, y))
  ref = _references()
  for value, name in zip(got, ("nc1", "cdnv", "etf_distance",
                               "effective_rank")):
    np.testing.assert_allclose(value, ref[name], **REF)


# ---------------------------------------------------------------------------
# Bad input on the mapped paths.
# ---------------------------------------------------------------------------


def test_axis_name_outside_a_mapped_context_is_named():
  f, y = DATA["features"], DATA["labels"]
  with pytest.raises(ValueError, match=r"`axis_name='data'` is not a bound"):
    geometry.nc1(f, y, num_classes=C, axis_name="data")
  with pytest.raises(ValueError, match=r"`axis_name='data'` is not a bound"):
    jax.jit(functools.partial(geometry.effective_rank, axis_name="data"))(f)
  with pytest.raises(ValueError, match=r"`axis_name='data'` is not a bound"):
    geometry.update(geometry.init(C, D), f, y, axis_name="data")


def test_num_classes_missing_per_device_is_named():
  fn = jax.shard_map(lambda f, y: geometry.cdnv(f, y, axis_name="data"),
                     mesh=_mesh(), in_specs=jax.P("data"), out_specs=jax.P())
  batch = jax.NamedSharding(_mesh(), jax.P("data"))
  with pytest.raises(ValueError, match=r"`num_classes` is required"):
    fn(jax.device_put(DATA["features"], batch),
       jax.device_put(DATA["labels"], batch))


def test_labels_out_of_range_on_one_shard_only_give_nan_everywhere():
  # Traced labels cannot raise: the psum'd count of bad ids makes the metric
  # NaN on every device, jitted or not, over Explicit and Auto axes
  # (tests/geometry/test_label_range.py covers every function and path).
  labels = DATA["labels"].copy()
  labels[N - 1] = C  # Last shard only.
  fn = jax.shard_map(
      lambda f, y: geometry.nc1(f, y, num_classes=C, axis_name="data")[None],
      mesh=_mesh(), in_specs=jax.P("data"), out_specs=jax.P("data"))
  batch = jax.NamedSharding(_mesh(), jax.P("data"))
  args = (jax.device_put(DATA["features"], batch),
          jax.device_put(labels, batch))
  assert np.all(np.isnan(jax.jit(fn)(*args)))
  assert np.all(np.isnan(fn(*args)))
  auto = jax.make_mesh((NDEV,), ("data",),
                       axis_types=(jax.sharding.AxisType.Auto,))
  auto_batch = jax.NamedSharding(auto, jax.P("data"))
  value = jax.shard_map(
      lambda f, y: geometry.nc1(f, y, num_classes=C, axis_name="data"),
      mesh=auto, in_specs=jax.P("data"), out_specs=jax.P())(
          jax.device_put(DATA["features"], auto_batch),
          jax.device_put(labels, auto_batch))
  assert np.isnan(float(value))
  # Concrete labels on the sharded-jit path are checked before any work.
  with pytest.raises(ValueError, match=r"`labels` must lie in \[0, 6\)"):
    geometry.nc1(jax.device_put(DATA["features"], batch),
                 jax.device_put(labels, batch), num_classes=C)


# ---------------------------------------------------------------------------
# The on-device streaming accumulator.
# ---------------------------------------------------------------------------

STREAM_KEYS = ("class_means", "nc1", "equinorm", "equiangularity",
               "max_angle", "etf_distance", "cdnv", "cdnv_directional_bounds",
               "zero_sum", "unit_norm", "class_mean_spectrum",
               "singular_values", "effective_rank", "nc3_self_duality")


def _loop_reference(features, labels, num_classes, weights=None):
  """Every key of ``finalize`` from the float64 loops of test_geometry.

  Each value is computed from the raw features and labels straight from the
  metric's definition (``finalize``'s defaults: ``center=True`` is the global
  sample mean, ``rcond=1e-6``, RankMe ``eps=1e-7``; the equal inner product
  is the simplex deviation of the raw means, reduced by mean and max). Not
  ``FeatureStatistics``: it evaluates its moments with the same
  ``metrics_from_moments`` as the on-device accumulator, so a bug in that
  shared function would pass a comparison between the two.
  """
  f = np.asarray(features, np.float64)
  y, c = np.asarray(labels), num_classes
  eip_mean, eip_max = tg.ref_simplex_dev(f, y, c, False)
  out = {
      "counts": tg.ref_counts(y, c),
      "class_means": tg.ref_means(f, y, c),
      "nc1": tg.ref_nc1(f, y, c),
      "equinorm": tg.ref_equinorm(f, y, c),
      "equiangularity": tg.ref_equiangularity(f, y, c),
      "max_angle": tg.ref_simplex_dev(f, y, c, True)[0],
      "etf_distance": tg.ref_etf_distance(f, y, c),
      "cdnv": tg.ref_cdnv(f, y, c),
      "cdnv_directional_bounds": tg.ref_cdnv(f, y, c, "directional_bounds"),
      "zero_sum": tg.ref_zero_sum(f, y, c),
      "unit_norm": tg.ref_unit_norm(f, y, c),
      "class_mean_spectrum": tg.ref_class_mean_spectrum(f, y, c),
      "singular_values": tg.ref_singular_values(f),
      "effective_rank": tg.ref_effective_rank(f),
      "eip_mean": eip_mean,
      "eip_max": eip_max,
  }
  if weights is not None:
    out["nc3_self_duality"] = tg.ref_nc3(f, y, np.asarray(weights, np.float64),
                                         c)
  return out


def _compare(got, ref, **tol):
  for key in STREAM_KEYS:
    np.testing.assert_allclose(np.asarray(got[key]), ref[key], err_msg=key,
                               **tol)
  np.testing.assert_allclose(
      [float(got["equal_inner_product"].mean),
       float(got["equal_inner_product"].max)],
      [ref["eip_mean"], ref["eip_max"]], err_msg="equal_inner_product",
      **tol)
  np.testing.assert_array_equal(np.asarray(got["counts"]), ref["counts"])


def test_streaming_on_device_matches_float64_loop_reference():
  f, y = DATA["features"], DATA["labels"]
  finalize = jax.jit(functools.partial(geometry.finalize,
                                       weights=DATA["weights"]))
  update = jax.jit(geometry.update)
  stats = geometry.init(C, D)
  for lo in range(0, N, 10):  # uneven batches; the last one is short
    stats = update(stats, f[lo:lo + 10], y[lo:lo + 10])
  other = geometry.update(geometry.init(C, D), f[:7], y[:7])
  merged = geometry.merge(geometry.update(geometry.init(C, D), f[7:], y[7:]),
                          other)
  ref = _loop_reference(f, y, C, DATA["weights"])
  _compare(finalize(stats), ref, **REF)
  _compare(finalize(merged), ref, **REF)


def test_streaming_per_device_equals_global():
  # Each device updates with its shard; psum'd batch statistics give every
  # device the global accumulator.
  f, y = DATA["features"], DATA["labels"]
  batch = jax.NamedSharding(_mesh(), jax.P("data"))

  def per_device(f, y):
    stats = geometry.update(geometry.init(C, D), f[:3], y[:3],
                            axis_name="data")
    stats = geometry.update(stats, f[3:], y[3:], axis_name="data")
    return geometry.finalize(stats, weights=DATA["weights"])

  got = jax.jit(jax.shard_map(per_device, mesh=_mesh(),
                              in_specs=jax.P("data"), out_specs=jax.P()))(
                                  jax.device_put(f, batch),
                                  jax.device_put(y, batch))
  _compare(jax.device_get(got), _loop_reference(f, y, C, DATA["weights"]),
           **REF)


def test_streaming_float32_survives_a_large_common_offset():
  # Features 1000 away from the origin with unit spread: a one-pass float32
  # sum of squares loses the variance (1000^2 * 2^-24 ~ 0.06 per sample);
  # the shifted, compensated accumulator keeps it.
  rng = np.random.default_rng(5)
  y = np.repeat(np.arange(4), 250).astype(np.int32)
  f = (1000.0 + rng.normal(size=(4, D))[y] + 0.1 * rng.normal(size=(1000, D))
       ).astype(np.float32)
  stats = geometry.init(4, D)
  update = jax.jit(geometry.update)
  for lo in range(0, 1000, 100):
    stats = update(stats, f[lo:lo + 100], y[lo:lo + 100])
  got = jax.device_get(jax.jit(geometry.finalize)(stats))
  ref = _loop_reference(f, y, 4)
  for key in ("nc1", "cdnv", "effective_rank", "equinorm"):
    np.testing.assert_allclose(got[key], ref[key], rtol=1e-3, err_msg=key)
