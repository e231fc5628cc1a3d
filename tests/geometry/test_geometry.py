"""Tests for cljax.geometry against float64 loop references and closed forms.

Every metric is compared with an independent NumPy float64 implementation
written with explicit Python loops straight from the formula (below), on
random data with a one-member class, unbalanced classes and odd sizes, in
eager and jit mode, with float32 and bfloat16 input, and with an empty class
that must be masked. Closed forms: a simplex ETF with exact collapse, and
hand-made 2-D point sets whose values are derived in the comments.
"""

import doctest
import functools
import itertools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from cljax import geometry

RTOL = 1e-4  # float32 computation vs float64 reference.
ATOL = 1e-6

# ---------------------------------------------------------------------------
# Independent float64 references (explicit loops, straight from the formulas).
# Classes without samples are skipped, which is the masking convention.
# ---------------------------------------------------------------------------


def _members(labels, c):
  return [i for i in range(len(labels)) if labels[i] == c]


def ref_present(labels, num_classes):
  return [c for c in range(num_classes) if _members(labels, c)]


def ref_counts(labels, num_classes):
  return np.array([len(_members(labels, c)) for c in range(num_classes)])


def ref_means(z, labels, num_classes):
  d = z.shape[1]
  out = np.zeros((num_classes, d))
  for c in range(num_classes):
    idx = _members(labels, c)
    for i in idx:
      out[c] += z[i]
    if idx:
      out[c] /= len(idx)
  return out


def ref_center(z, labels, num_classes, center):
  present = ref_present(labels, num_classes)
  mu = ref_means(z, labels, num_classes)
  if center in (True, "global"):
    ref = z.mean(axis=0)
  elif center == "classes":
    ref = sum(mu[c] for c in present) / len(present)
  else:
    ref = np.zeros(z.shape[1])
  return {c: mu[c] - ref for c in present}


def ref_cos(a, b):
  na, nb = np.linalg.norm(a), np.linalg.norm(b)
  return 0.0 if na == 0 or nb == 0 else float(a @ b / (na * nb))


def ref_nc1(z, labels, num_classes, rcond=1e-6):
  present = ref_present(labels, num_classes)
  mu = ref_means(z, labels, num_classes)
  mu_g = z.mean(axis=0)
  d = z.shape[1]
  sw = np.zeros((d, d))
  for i in range(len(z)):
    r = z[i] - mu[labels[i]]
    sw += np.outer(r, r)
  sw /= len(z)
  sb = np.zeros((d, d))
  for c in present:
    sb += np.outer(mu[c] - mu_g, mu[c] - mu_g)
  sb /= len(present)
  return np.trace(sw @ np.linalg.pinv(sb, rcond=rcond)) / len(present)


def ref_equinorm(z, labels, num_classes, center=True):
  norms = [np.linalg.norm(v) for v in
           ref_center(z, labels, num_classes, center).values()]
  return np.std(norms) / np.mean(norms)


def ref_pair_cosines(z, labels, num_classes, center):
  mc = ref_center(z, labels, num_classes, center)
  return [ref_cos(mc[a], mc[b]) for a in mc for b in mc if a != b]


def ref_equiangularity(z, labels, num_classes, center=True):
  return np.std(ref_pair_cosines(z, labels, num_classes, center))


def ref_simplex_dev(z, labels, num_classes, center):
  c = len(ref_present(labels, num_classes))
  devs = [abs(v + 1.0 / (c - 1))
          for v in ref_pair_cosines(z, labels, num_classes, center)]
  return np.mean(devs), np.max(devs)


def ref_etf_distance(z, labels, num_classes, center=True):
  mc = list(ref_center(z, labels, num_classes, center).values())
  c = len(mc)
  g = np.zeros((c, c))
  for a in range(c):
    for b in range(c):
      g[a, b] = ref_cos(mc[a], mc[b])
  target = (np.eye(c) - np.ones((c, c)) / c) / math.sqrt(c - 1)
  return np.linalg.norm(g / np.linalg.norm(g) - target)


def ref_orthogonal_frame_distance(z, labels, num_classes):
  mc = list(ref_center(z, labels, num_classes, False).values())  # raw means
  c = len(mc)
  g = np.zeros((c, c))
  for a in range(c):
    for b in range(c):
      g[a, b] = ref_cos(mc[a], mc[b])
  return np.linalg.norm(g / np.linalg.norm(g) - np.eye(c) / math.sqrt(c))


def ref_class_mean_gram(z, labels, num_classes, center=False):
  mc = ref_center(z, labels, num_classes, center)
  g = np.zeros((num_classes, num_classes))
  for a in mc:  # empty classes keep a zero row and column
    for b in mc:
      g[a, b] = ref_cos(mc[a], mc[b])
  return g


def ref_nc3(z, labels, weights, num_classes, center=True):
  mc = ref_center(z, labels, num_classes, center)
  m = np.stack([mc[c] for c in mc])
  w = np.stack([weights[c] for c in mc])
  return np.linalg.norm(w / np.linalg.norm(w) - m / np.linalg.norm(m))


def ref_nc4(z, labels, weights, bias, num_classes):
  present = ref_present(labels, num_classes)
  mu = ref_means(z, labels, num_classes)
  agree = 0
  for x in z:
    lin = max(present, key=lambda c: weights[c] @ x + bias[c])
    ncc = min(present, key=lambda c: np.linalg.norm(x - mu[c]))
    agree += int(lin == ncc)
  return agree / len(z)


def ref_class_var(z, labels, c, mu, unbiased=False):
  idx = _members(labels, c)
  total = sum(np.sum((z[i] - mu[c]) ** 2) for i in idx)
  return total / ((len(idx) - 1) if unbiased else len(idx))


def ref_cdnv(z, labels, num_classes, convention="galanti"):
  mu = ref_means(z, labels, num_classes)
  unbiased = convention == "directional_bounds"
  ok = [c for c in ref_present(labels, num_classes)
        if not unbiased or len(_members(labels, c)) >= 2]
  vals = []
  for a, b in itertools.combinations(ok, 2):
    d2 = np.sum((mu[a] - mu[b]) ** 2)
    if d2 == 0:
      continue  # Coincident means: skipped.
    va = ref_class_var(z, labels, a, mu, unbiased)
    vb = ref_class_var(z, labels, b, mu, unbiased)
    vals.append((va + vb) / (d2 if unbiased else 2 * d2))
  return np.mean(vals)


def ref_directional_cdnv(z, labels, num_classes):
  mu = ref_means(z, labels, num_classes)
  present = ref_present(labels, num_classes)
  vals = []
  for i in present:
    for j in present:
      if i == j:
        continue
      dist = np.linalg.norm(mu[j] - mu[i])
      if dist == 0:
        continue
      u = (mu[j] - mu[i]) / dist
      idx = _members(labels, i)
      proj = sum(((z[x] - mu[i]) @ u) ** 2 for x in idx) / len(idx)
      vals.append(proj / dist ** 2)
  return np.mean(vals)


def ref_within_class_distance(z, labels, num_classes):
  mu = ref_means(z, labels, num_classes)
  per_class = []
  for c in ref_present(labels, num_classes):
    idx = _members(labels, c)
    per_class.append(np.mean([np.linalg.norm(z[i] - mu[c]) for i in idx]))
  return np.mean(per_class)


def ref_zero_sum(z, labels, num_classes):
  mu = ref_means(z, labels, num_classes)
  present = ref_present(labels, num_classes)
  return np.linalg.norm(sum(mu[c] for c in present) / len(present))


def ref_unit_norm(z, labels, num_classes):
  mu = ref_means(z, labels, num_classes)
  present = ref_present(labels, num_classes)
  return np.mean([abs(np.linalg.norm(mu[c]) - 1) for c in present])


def ref_singular_values(x, center=True):
  if center:
    x = x - x.mean(axis=0)
  return np.linalg.svd(x, compute_uv=False)


def ref_effective_rank(x, center=True, eps=1e-7):
  s = ref_singular_values(x, center)
  p = s / s.sum() + eps
  return math.exp(-sum(pi * math.log(pi) for pi in p))


def ref_class_mean_spectrum(z, labels, num_classes):
  mu = ref_means(z, labels, num_classes)
  present = ref_present(labels, num_classes)
  mbar = sum(mu[c] for c in present) / len(present)
  d = z.shape[1]
  cov = np.zeros((d, d))
  for c in present:
    cov += np.outer(mu[c] - mbar, mu[c] - mbar)
  cov /= len(present) - 1
  return np.linalg.svd(cov, compute_uv=False)[:min(num_classes, d)]


def ref_augmentation(z3, labels, num_classes):
  n, k, _ = z3.shape
  vv = 0.0
  for i in range(n):
    zbar = z3[i].mean(axis=0)
    vv += sum(np.sum((z3[i, l] - zbar) ** 2) for l in range(k)) / k
  vv /= n
  mu = ref_means(z3.mean(axis=1), labels, num_classes)
  d2 = [np.sum((mu[a] - mu[b]) ** 2) for a, b in
        itertools.combinations(ref_present(labels, num_classes), 2)]
  return {"view_variance": vv, "class_mean_sq_distance": np.mean(d2),
          "augmentation_cdnv": vv / np.mean(d2)}


def ref_alignment(z3, alpha=2.0):
  n, k, _ = z3.shape
  vals = [np.linalg.norm(z3[i, a] - z3[i, b]) ** alpha
          for i in range(n) for a in range(k) for b in range(k) if a != b]
  return np.mean(vals)


def ref_uniformity(z, t=2.0):
  n = len(z)
  vals = [math.exp(-t * np.sum((z[i] - z[j]) ** 2))
          for i in range(n) for j in range(n) if i != j]
  return math.log(np.mean(vals))


# ---------------------------------------------------------------------------
# Data: N=23, D=7, K=3 views; "basic" has C=5 with a one-member class and
# unbalanced sizes; "gap" has num_classes=6 with class 3 empty.
# ---------------------------------------------------------------------------

N, D, K = 23, 7, 3


def _make_data(gap, n=N):
  rng = np.random.default_rng(7 if gap else 3)
  sizes = [1, 3, 4, 6, n - 14]
  ids = [0, 1, 2, 4, 5] if gap else [0, 1, 2, 3, 4]
  num_classes = 6 if gap else 5
  labels = rng.permutation(np.repeat(ids, sizes)).astype(np.int32)
  centers = 2.0 * rng.normal(size=(num_classes, D))
  features = (centers[labels] + rng.normal(size=(n, D))).astype(np.float32)
  views = (features[:, None, :]
           + 0.5 * rng.normal(size=(n, K, D))).astype(np.float32)
  weights = rng.normal(size=(num_classes, D)).astype(np.float32)
  bias = rng.normal(size=(num_classes,)).astype(np.float32)
  return dict(features=features, labels=labels, views=views,
              weights=weights, bias=bias, num_classes=num_classes)


DATA = {"basic": _make_data(False), "gap": _make_data(True)}


def _all_metrics(features, labels, views, weights, bias, num_classes):
  """Every public metric in one function, so jit compiles it once."""
  f, y, c = features, labels, num_classes
  g = geometry
  eip = g.equal_inner_product(f, y, num_classes=c)
  out = {
      "class_means": g.class_means(f, y, num_classes=c),
      "class_counts": g.class_counts(y, num_classes=c),
      "nc1": g.nc1(f, y, num_classes=c),
      "nc1_rcond": g.nc1(f, y, num_classes=c, rcond=1e-3),
      "equinorm": g.equinorm(f, y, num_classes=c),
      "equinorm_classes": g.equinorm(f, y, num_classes=c, center="classes"),
      "equinorm_raw": g.equinorm(f, y, num_classes=c, center=False),
      "equiangularity": g.equiangularity(f, y, num_classes=c),
      "equiangularity_raw": g.equiangularity(f, y, num_classes=c,
                                             center=False),
      "max_angle": g.max_angle(f, y, num_classes=c),
      "max_angle_classes": g.max_angle(f, y, num_classes=c,
                                       center="classes"),
      "etf_distance": g.etf_distance(f, y, num_classes=c),
      "etf_distance_raw": g.etf_distance(f, y, num_classes=c, center=False),
      "orthogonal_frame_distance": g.orthogonal_frame_distance(
          f, y, num_classes=c),
      "class_mean_gram": g.class_mean_gram(f, y, num_classes=c),
      "class_mean_gram_centred": g.class_mean_gram(f, y, num_classes=c,
                                                   center=True),
      "nc3": g.nc3_self_duality(f, y, weights, num_classes=c),
      "nc3_raw": g.nc3_self_duality(f, y, weights, center=False),
      "nc4": g.nc4_ncc_agreement(f, y, weights, bias, num_classes=c),
      "nc4_nobias": g.nc4_ncc_agreement(f, y, weights),
      "cdnv": g.cdnv(f, y, num_classes=c),
      "cdnv_bounds": g.cdnv(f, y, num_classes=c,
                            convention="directional_bounds"),
      "directional_cdnv": g.directional_cdnv(f, y, num_classes=c),
      "augmentation": g.augmentation_collapse(views, y, num_classes=c),
      "augmentation_unlabelled": g.augmentation_collapse(views),
      "singular_values": g.singular_values(f),
      "singular_values_raw": g.singular_values(f, center=False),
      "effective_rank": g.effective_rank(f),
      "effective_rank_raw": g.effective_rank(f, center=False, eps=1e-3),
      "class_mean_spectrum": g.class_mean_spectrum(f, y, num_classes=c),
      "alignment": g.alignment(views),
      "alignment_alpha1": g.alignment(views, alpha=1.0),
      "uniformity": g.uniformity(f),
      "uniformity_t": g.uniformity(f, t=0.05),
      "zero_sum": g.zero_sum(f, y, num_classes=c),
      "unit_norm": g.unit_norm(f, y, num_classes=c),
      "eip_mean": eip.mean,
      "eip_max": eip.max,
      "within_class_distance": g.within_class_distance(f, y, num_classes=c),
  }
  return out


def _references(features, labels, views, weights, bias, num_classes):
  f, y, c = features, labels, num_classes
  eip = ref_simplex_dev(f, y, c, False)
  return {
      "class_means": ref_means(f, y, c),
      "class_counts": ref_counts(y, c),
      "nc1": ref_nc1(f, y, c),
      "nc1_rcond": ref_nc1(f, y, c, rcond=1e-3),
      "equinorm": ref_equinorm(f, y, c),
      "equinorm_classes": ref_equinorm(f, y, c, "classes"),
      "equinorm_raw": ref_equinorm(f, y, c, False),
      "equiangularity": ref_equiangularity(f, y, c),
      "equiangularity_raw": ref_equiangularity(f, y, c, False),
      "max_angle": ref_simplex_dev(f, y, c, True)[0],
      "max_angle_classes": ref_simplex_dev(f, y, c, "classes")[0],
      "etf_distance": ref_etf_distance(f, y, c),
      "etf_distance_raw": ref_etf_distance(f, y, c, False),
      "orthogonal_frame_distance": ref_orthogonal_frame_distance(f, y, c),
      "class_mean_gram": ref_class_mean_gram(f, y, c),
      "class_mean_gram_centred": ref_class_mean_gram(f, y, c, True),
      "nc3": ref_nc3(f, y, weights, c),
      "nc3_raw": ref_nc3(f, y, weights, c, False),
      "nc4": ref_nc4(f, y, weights, bias, c),
      "nc4_nobias": ref_nc4(f, y, weights, np.zeros(c), c),
      "cdnv": ref_cdnv(f, y, c),
      "cdnv_bounds": ref_cdnv(f, y, c, "directional_bounds"),
      "directional_cdnv": ref_directional_cdnv(f, y, c),
      "augmentation": ref_augmentation(views, y, c),
      "augmentation_unlabelled": {
          "view_variance": ref_augmentation(views, y, c)["view_variance"]},
      "singular_values": ref_singular_values(f),
      "singular_values_raw": ref_singular_values(f, False),
      "effective_rank": ref_effective_rank(f),
      "effective_rank_raw": ref_effective_rank(f, False, 1e-3),
      "class_mean_spectrum": ref_class_mean_spectrum(f, y, c),
      "alignment": ref_alignment(views),
      "alignment_alpha1": ref_alignment(views, 1.0),
      "uniformity": ref_uniformity(f),
      "uniformity_t": ref_uniformity(f, 0.05),
      "zero_sum": ref_zero_sum(f, y, c),
      "unit_norm": ref_unit_norm(f, y, c),
      "eip_mean": eip[0],
      "eip_max": eip[1],
      "within_class_distance": ref_within_class_distance(f, y, c),
  }


METRIC_NAMES = list(_references(**{k: v for k, v in DATA["basic"].items()}))
# Eager and jit run the same jitted cores, so the empty-class data set is only
# run under jit: an eager pass would recompile every core for C = 6.
CONFIGS = [("basic", "eager", "float32"), ("basic", "jit", "float32"),
           ("basic", "eager", "bfloat16"), ("basic", "jit", "bfloat16"),
           ("gap", "jit", "float32")]

_jit_all = jax.jit(_all_metrics, static_argnames=("num_classes",))


def _cast(data, dtype):
  dt = jnp.bfloat16 if dtype == "bfloat16" else jnp.float32
  out = dict(data)
  out["features"] = jnp.asarray(data["features"], dt)
  out["views"] = jnp.asarray(data["views"], dt)
  return out


@functools.lru_cache(maxsize=None)
def _results(dataset, mode, dtype):
  """(computed, reference); each config is computed and compiled once."""
  inputs = _cast(DATA[dataset], dtype)
  fn = _jit_all if mode == "jit" else _all_metrics
  got = jax.device_get(fn(**inputs))
  # The reference sees exactly the (possibly bfloat16-rounded) inputs.
  ref_in = {k: (np.asarray(v, np.float64) if k in ("features", "views",
                                                     "weights", "bias")
                else v) for k, v in inputs.items()}
  return got, _references(**ref_in)


@pytest.mark.parametrize("config", CONFIGS, ids="-".join)
@pytest.mark.parametrize("name", METRIC_NAMES)
def test_matches_float64_reference(name, config):
  got, ref = _results(*config)
  got, ref = got[name], ref[name]
  if isinstance(ref, dict):
    assert set(got) == set(ref)
    for key in ref:
      assert np.all(np.isfinite(got[key]))
      np.testing.assert_allclose(got[key], ref[key], rtol=RTOL, atol=ATOL,
                                 err_msg=key)
  else:
    assert np.all(np.isfinite(got))
    np.testing.assert_allclose(got, ref, rtol=RTOL, atol=ATOL)


def test_batch_sharded_over_8_devices():
  # Explicit-mesh sharding along the batch (the training layout): the metrics
  # gather internally and must give the unsharded values.
  assert jax.device_count() == 8
  data = _make_data(False, n=24)
  mesh = jax.make_mesh((8,), ("data",))
  sharding = jax.NamedSharding(mesh, jax.P("data"))
  inputs = dict(data)
  for key in ("features", "labels", "views"):
    inputs[key] = jax.device_put(data[key], sharding)
  got = jax.device_get(_jit_all(**inputs))
  ref = _references(**{k: (np.asarray(v, np.float64) if k in (
      "features", "views", "weights", "bias") else v) for k, v in data.items()})
  for name in METRIC_NAMES:
    if isinstance(ref[name], dict):
      for key in ref[name]:
        np.testing.assert_allclose(got[name][key], ref[name][key], rtol=RTOL,
                                   atol=ATOL, err_msg=f"{name}/{key}")
    else:
      np.testing.assert_allclose(got[name], ref[name], rtol=RTOL, atol=ATOL,
                                 err_msg=name)
  np.testing.assert_allclose(geometry.nc1(inputs["features"],
                                          inputs["labels"]),
                             ref["nc1"], rtol=RTOL)


def test_output_dtypes_and_shapes():
  got, _ = _results("basic", "jit", "bfloat16")
  assert got["nc1"].dtype == np.float32
  assert got["class_means"].dtype == np.float32
  assert got["class_means"].shape == (5, D)
  assert got["class_counts"].dtype == np.int32
  assert got["class_mean_spectrum"].shape == (min(5, D),)
  assert got["singular_values"].shape == (D,)


def test_empty_class_equals_dropping_it():
  data = DATA["gap"]
  got, _ = _results("gap", "jit", "float32")
  compact = np.searchsorted([0, 1, 2, 4, 5], data["labels"]).astype(np.int32)
  keep = [0, 1, 2, 4, 5]
  f = data["features"]
  assert np.all(got["class_means"][3] == 0)
  np.testing.assert_allclose(got["nc1"], geometry.nc1(f, compact), rtol=1e-5)
  np.testing.assert_allclose(got["etf_distance"],
                             geometry.etf_distance(f, compact), rtol=1e-5)
  np.testing.assert_allclose(
      got["nc4"], geometry.nc4_ncc_agreement(
          f, compact, data["weights"][keep], data["bias"][keep]), rtol=1e-6)
  np.testing.assert_allclose(got["class_mean_spectrum"][:5],
                             geometry.class_mean_spectrum(f, compact),
                             rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("n,d,c", [(40, 300, 4), (23, 2, 5)])
def test_nc1_and_spectrum_wide_and_narrow(n, d, c):
  # D >> C exercises the span-of-the-means shortcut; D < C-1 the case where
  # Sigma_B has full rank D.
  rng = np.random.default_rng(n + d)
  labels = (np.arange(n) % c).astype(np.int32)
  z = (rng.normal(size=(c, d))[labels] + 0.3 * rng.normal(size=(n, d))
       ).astype(np.float32)
  zf = z.astype(np.float64)
  np.testing.assert_allclose(geometry.nc1(z, labels), ref_nc1(zf, labels, c),
                             rtol=RTOL)
  spec = geometry.class_mean_spectrum(z, labels)
  assert spec.shape == (min(c, d),)
  np.testing.assert_allclose(spec, ref_class_mean_spectrum(zf, labels, c),
                             rtol=RTOL, atol=1e-5)


# ---------------------------------------------------------------------------
# Closed forms.
# ---------------------------------------------------------------------------


def simplex_etf(num_classes, dim, seed=0):
  """Rows of I - 11^T/C scaled to unit norm, embedded by an orthonormal map."""
  e = np.eye(num_classes) - np.ones((num_classes, num_classes)) / num_classes
  e /= np.linalg.norm(e, axis=1, keepdims=True)
  rng = np.random.default_rng(seed)
  # e has rank C-1 and its rows sum to 0, so C-1 orthonormal columns suffice:
  # express e in an orthonormal basis of its row space first.
  _, _, vt = np.linalg.svd(e)
  coords = e @ vt[:num_classes - 1].T  # [C, C-1]
  q, _ = np.linalg.qr(rng.normal(size=(dim, num_classes - 1)))
  return coords @ q.T  # [C, dim], unit rows, pairwise cosine -1/(C-1).


def _collapse_metrics(z, labels, w):
  """All metrics that vanish (or are known) at a collapsed simplex ETF."""
  g = geometry
  out = {"nc1": g.nc1(z, labels, num_classes=4),
         "zero_sum": g.zero_sum(z, labels, num_classes=4),
         "unit_norm": g.unit_norm(z, labels, num_classes=4),
         "eip": g.equal_inner_product(z, labels, num_classes=4),
         "cdnv": g.cdnv(z, labels, num_classes=4),
         "directional_cdnv": g.directional_cdnv(z, labels, num_classes=4),
         "within": g.within_class_distance(z, labels, num_classes=4),
         "spectrum": g.class_mean_spectrum(z, labels, num_classes=4),
         "erank_means": g.effective_rank(g.class_means(z, labels, num_classes=4)),
         "nc3": g.nc3_self_duality(z, labels, w),
         "nc4": g.nc4_ncc_agreement(z, labels, w)}
  for center in (True, False, "classes"):
    out[f"etf_{center}"] = g.etf_distance(z, labels, num_classes=4, center=center)
    out[f"equinorm_{center}"] = g.equinorm(z, labels, num_classes=4, center=center)
    out[f"equiangularity_{center}"] = g.equiangularity(z, labels, num_classes=4,
                                                       center=center)
    out[f"max_angle_{center}"] = g.max_angle(z, labels, num_classes=4, center=center)
  return out


@pytest.mark.parametrize("dim", [3, 6])  # D = C-1 (P3's setting) and D > C.
def test_simplex_etf_with_exact_collapse(dim):
  c, n = 4, 3
  means = simplex_etf(c, dim)
  labels = np.repeat(np.arange(c), n).astype(np.int32)
  z = jnp.asarray(means[labels], jnp.float32)
  # A classifier equal to the means is self-dual and agrees with the NCC.
  w = jnp.asarray(means, jnp.float32)
  got = jax.device_get(jax.jit(_collapse_metrics)(z, labels, w))
  for center in (True, False, "classes"):
    for name in ("etf", "equinorm", "equiangularity", "max_angle"):
      assert got[f"{name}_{center}"] < 1e-5, (name, center)
  assert abs(got["nc1"]) < 1e-6
  assert got["zero_sum"] < 1e-6 and got["unit_norm"] < 1e-6
  assert got["eip"].mean < 1e-6 and got["eip"].max < 1e-6
  assert got["cdnv"] < 1e-10 and got["directional_cdnv"] < 1e-10
  assert got["within"] < 1e-6
  spec = got["spectrum"]
  assert spec.shape == (min(c, dim),)
  # Gram of unit ETF means = C/(C-1) (I - 11^T/C): C-1 eigenvalues C/(C-1),
  # divided by C-1 for the covariance.
  np.testing.assert_allclose(spec[:c - 1], c / (c - 1) ** 2, rtol=1e-5)
  assert np.all(spec[c - 1:] < 1e-6)
  np.testing.assert_allclose(got["erank_means"], c - 1, rtol=1e-5)
  assert got["nc3"] < 1e-5
  assert got["nc4"] == 1.0


def _orthogonal_frame(num_classes, dim, seed=0):
  """Mutually orthogonal rows of norms 1..C (distinct on purpose)."""
  q, _ = np.linalg.qr(np.random.default_rng(seed).normal(
      size=(dim, num_classes)))
  return q.T * np.arange(1, num_classes + 1)[:, None]  # [C, dim]


@pytest.mark.parametrize("c,dim", [(2, 2), (4, 4), (3, 7)])
def test_orthogonal_frame_distance_is_zero_at_an_orthogonal_frame(c, dim):
  # Unbalanced classes whose samples spread symmetrically around orthogonal
  # means (so the means are exact): the raw-mean Gram is the identity.
  means = _orthogonal_frame(c, dim, seed=c)
  labels = np.repeat(np.arange(c), 2 * np.arange(1, c + 1)).astype(np.int32)
  rng = np.random.default_rng(1)
  z = means[labels]
  noise = rng.normal(size=(len(labels) // 2, dim))
  z[0::2] += noise
  z[1::2] -= noise  # pairs of the same class cancel in the mean
  z = jnp.asarray(z, jnp.float32)
  got = geometry.orthogonal_frame_distance(z, labels, num_classes=c)
  assert float(got) < 1e-5
  np.testing.assert_allclose(geometry.class_mean_gram(z, labels), np.eye(c),
                             atol=1e-5)
  # The simplex target sees the frame as far from an ETF (cosines 0, not
  # -1/(C-1)).
  assert float(geometry.etf_distance(z, labels, center=False)) > 0.1
  # An empty class (id c) is masked, not a missing orthogonal direction.
  assert float(geometry.orthogonal_frame_distance(
      z, labels, num_classes=c + 1)) < 1e-5


@pytest.mark.parametrize("c", [2, 3, 4, 6])
def test_orthogonal_frame_distance_of_a_simplex_etf(c):
  # At a simplex ETF the unit means have Gram G = (C I - 11^T)/(C - 1), so
  #   ||G||_F^2 = C + C (C - 1)/(C - 1)^2 = C^2/(C - 1),
  #   G/||G||_F = (I - 11^T/C)/sqrt(C - 1) =: T   (unit Frobenius norm),
  #   <T, I/sqrt(C)>_F = tr(T)/sqrt(C) = (C - 1)/sqrt((C - 1) C)
  #                    = sqrt(1 - 1/C),
  # and ||T - I/sqrt(C)||_F^2 = 1 + 1 - 2 sqrt(1 - 1/C).
  means = simplex_etf(c, c + 1, seed=c)
  labels = np.repeat(np.arange(c), 3).astype(np.int32)
  z = jnp.asarray(means[labels], jnp.float32)
  want = math.sqrt(2.0 * (1.0 - math.sqrt(1.0 - 1.0 / c)))
  np.testing.assert_allclose(
      geometry.orthogonal_frame_distance(z, labels, num_classes=c), want,
      rtol=1e-5)
  gram = (c * np.eye(c) - np.ones((c, c))) / (c - 1)
  np.testing.assert_allclose(geometry.class_mean_gram(z, labels), gram,
                             atol=1e-5)


def test_orthogonal_frame_distance_does_not_centre():
  # Orthogonal raw means; subtracting their mean would make them an ETF.
  # The metric must see the frame (0), the centred Gram the simplex.
  means = _orthogonal_frame(3, 3, seed=9) / np.arange(1, 4)[:, None]
  labels = np.arange(3, dtype=np.int32)
  z = jnp.asarray(means, jnp.float32)
  assert float(geometry.orthogonal_frame_distance(z, labels)) < 1e-5
  np.testing.assert_allclose(
      geometry.class_mean_gram(z, labels, center="classes"),
      (3 * np.eye(3) - np.ones((3, 3))) / 2, atol=1e-5)


def test_unbalanced_simplex_depends_on_centring():
  # Unbalanced sizes move the global sample mean off the origin, so only the
  # "classes" and raw centrings still see the ETF (documented convention).
  c = 4
  means = simplex_etf(c, 5)
  labels = np.repeat(np.arange(c), [1, 2, 3, 5]).astype(np.int32)
  z = jnp.asarray(means[labels], jnp.float32)
  assert float(geometry.etf_distance(z, labels, center="classes")) < 1e-5
  assert float(geometry.etf_distance(z, labels, center=False)) < 1e-5
  assert float(geometry.etf_distance(z, labels, center=True)) > 0.05


# Hand-made 2-D set A: class 0 = {(-1,0), (1,0)}, class 1 = {(4,+-1), (4,+-3)}.
#   mu_0 = (0,0), mu_1 = (4,0), ||mu_0 - mu_1||^2 = 16.
#   Var_0 = (1+1)/2 = 1, Var_1 = (1+1+9+9)/4 = 5 (population).
#   CDNV (Galanti) = (1 + 5) / (2*16) = 0.1875.
#   Unbiased: v_0 = 2/1 = 2, v_1 = 20/3; (2 + 20/3)/16 = 13/24.
#   Directional: u_01 = (1,0): E<(+-1,0),u>^2 = 1 -> 1/16; u_10 = (-1,0):
#   class-1 deviations are vertical -> 0. Mean over 2 ordered pairs = 1/32.
#   NC1: mu_G = (16/6, 0) = (8/3, 0); Sigma_B = 1/2((8/3)^2 + (4/3)^2) e_x e_x^T
#   = 40/9 e_x e_x^T; Sigma_W = diag(2, 20)/6; pinv(Sigma_B) = 9/40 e_x e_x^T;
#   tr = (1/3)(9/40) = 3/40; NC1 = 3/80 = 0.0375 (the vertical spread of class
#   1 is outside the between-class span and does not count).
#   Within-class distance: class 0: 1; class 1: (1+1+3+3)/4 = 2; mean 1.5.
# Set B = A plus class 2 = a copy of class 0 (coincident with it): the pair
# (0,2) is skipped; CDNV pairs (0,1), (1,2) both 0.1875 -> 0.1875; directional
# valid pairs (0,1)=1/16, (1,0)=0, (2,1)=1/16, (1,2)=0 -> 1/32.
SET_A = np.array([[-1, 0], [1, 0], [4, 1], [4, -1], [4, 3], [4, -3]],
                 np.float32)
LABELS_A = np.array([0, 0, 1, 1, 1, 1], np.int32)
SET_B = np.concatenate([SET_A, [[-1, 0], [1, 0]]]).astype(np.float32)
LABELS_B = np.concatenate([LABELS_A, [2, 2]]).astype(np.int32)


def _assert_set_a_cdnvs(z, y):
  # Sets A and B share these values (B's extra pair is skipped).
  np.testing.assert_allclose(geometry.cdnv(z, y), 0.1875, rtol=1e-6)
  np.testing.assert_allclose(
      geometry.cdnv(z, y, convention="directional_bounds"), 13 / 24,
      rtol=1e-6)
  np.testing.assert_allclose(geometry.directional_cdnv(z, y), 1 / 32,
                             rtol=1e-6)


def test_hand_made_2d_set():
  z, y = SET_A, LABELS_A
  _assert_set_a_cdnvs(z, y)
  np.testing.assert_allclose(geometry.nc1(z, y), 3 / 80, rtol=1e-5)
  np.testing.assert_allclose(geometry.within_class_distance(z, y), 1.5,
                             rtol=1e-6)


def test_hand_made_coincident_means_are_skipped():
  z, y = SET_B, LABELS_B
  _assert_set_a_cdnvs(z, y)
  np.testing.assert_allclose(ref_cdnv(z.astype(float), y, 3), 0.1875)
  np.testing.assert_allclose(ref_directional_cdnv(z.astype(float), y, 3),
                             1 / 32)


def test_one_member_class_skipped_only_for_unbiased_variance():
  # Adds class 2 = {(0, 8)} to set A. Galanti: Var_2 = 0, d(0,2)^2 = 64,
  # d(1,2)^2 = 16 + 64 = 80: pairs (1+5)/32, (1+0)/128, (5+0)/160 -> mean
  # (0.1875 + 0.0078125 + 0.03125)/3. Unbiased: class 2 has no 1/(n-1)
  # variance, only pair (0,1) = 13/24 remains.
  z = np.concatenate([SET_A, [[0, 8]]]).astype(np.float32)
  y = np.concatenate([LABELS_A, [2]]).astype(np.int32)
  np.testing.assert_allclose(geometry.cdnv(z, y),
                             (0.1875 + 0.0078125 + 0.03125) / 3, rtol=1e-6)
  np.testing.assert_allclose(
      geometry.cdnv(z, y, convention="directional_bounds"), 13 / 24,
      rtol=1e-6)


def test_undefined_values_are_nan_not_zero():
  z = jnp.asarray(SET_A[:2])
  y = np.array([0, 0], np.int32)  # A single class: no pairs.
  assert np.isnan(geometry.cdnv(z, y))
  assert np.isnan(geometry.directional_cdnv(z, y))


def test_alignment_gradient_finite_at_identical_views():
  z = jnp.ones((3, 2, 4))
  grad = jax.grad(lambda x: geometry.alignment(x, alpha=1.0))(z)
  assert np.all(np.isfinite(grad))


def test_uniformity_stable_for_large_t():
  z = jnp.asarray(SET_A)
  # The smallest squared distance in set A is 4, attained by 4 unordered =
  # 8 ordered pairs out of 6*5 = 30; every other pair is >= 4 + 4 further
  # away and vanishes at t = 1000: log mean = -4000 + log(8/30). A naive
  # log(mean(exp)) underflows to -inf.
  val = float(geometry.uniformity(z, t=1000.0))
  np.testing.assert_allclose(val, -4000.0 + math.log(8 / 30), rtol=1e-6)


# ---------------------------------------------------------------------------
# FeatureStatistics.
# ---------------------------------------------------------------------------


def _stream(data, per_class=True, dtype=np.float32):
  f, y, c = data["features"], data["labels"], data["num_classes"]
  a = geometry.FeatureStatistics(c, D, per_class_second_moments=per_class)
  b = geometry.FeatureStatistics(c, D, per_class_second_moments=per_class)
  a.update(jnp.asarray(f[:5], dtype), y[:5])
  a.update(f[5:6], jnp.asarray(y[5:6]))
  a.update(f[6:6], y[6:6])  # Empty batch is a no-op.
  b.update(f[6:14], y[6:14]).update(f[14:], y[14:])
  return a.merge(b)


STREAM_KEYS = {
    "class_means": "class_means", "counts": "class_counts", "nc1": "nc1",
    "equinorm": "equinorm", "equiangularity": "equiangularity",
    "max_angle": "max_angle", "etf_distance": "etf_distance", "cdnv": "cdnv",
    "cdnv_directional_bounds": "cdnv_bounds",
    "directional_cdnv": "directional_cdnv", "zero_sum": "zero_sum",
    "unit_norm": "unit_norm", "class_mean_spectrum": "class_mean_spectrum",
    "singular_values": "singular_values", "effective_rank": "effective_rank",
    "nc3_self_duality": "nc3",
}


@pytest.mark.parametrize("dataset", ["basic", "gap"])
def test_feature_statistics_matches_full_batch(dataset):
  data = DATA[dataset]
  metrics = _stream(data).metrics(weights=data["weights"])
  got, ref = _results(dataset, "jit", "float32")
  assert set(STREAM_KEYS) <= set(metrics)
  for key, name in STREAM_KEYS.items():
    # float64 streaming vs float32 full batch.
    np.testing.assert_allclose(metrics[key], got[name], rtol=RTOL, atol=ATOL,
                               err_msg=key)
    # float64 vs float64: only summation order differs.
    np.testing.assert_allclose(metrics[key], ref[name], rtol=1e-8,
                               atol=1e-10, err_msg=key)
  eip = metrics["equal_inner_product"]
  np.testing.assert_allclose([eip.mean, eip.max],
                             [got["eip_mean"], got["eip_max"]], rtol=RTOL)


def test_feature_statistics_options():
  data = DATA["basic"]
  stats = _stream(data, per_class=False, dtype=jnp.bfloat16)
  assert stats.class_second_moments is None
  metrics = stats.metrics(center="classes")
  assert "directional_cdnv" not in metrics
  assert "nc3_self_duality" not in metrics
  f = np.asarray(jnp.asarray(data["features"][:5], jnp.bfloat16), np.float64)
  f = np.concatenate([f, data["features"][5:]])
  np.testing.assert_allclose(
      metrics["equinorm"], ref_equinorm(f, data["labels"], 5, "classes"),
      rtol=1e-8)
  assert stats.num_samples == N


# ---------------------------------------------------------------------------
# Bad input.
# ---------------------------------------------------------------------------


def test_bad_inputs_raise_helpful_errors():
  f, y = DATA["basic"]["features"], DATA["basic"]["labels"]
  g = geometry
  with pytest.raises(ValueError, match=r"`features` must have rank 2"):
    g.nc1(f[0], y)
  with pytest.raises(ValueError, match=r"`labels` must be an integer vector "
                                       r"of shape \[23\]"):
    g.cdnv(f, y[:-1])
  with pytest.raises(ValueError, match=r"integer dtype.*astype"):
    g.equinorm(f, y.astype(np.float32))
  with pytest.raises(ValueError, match=r"must lie in \[0, 3\).*num_classes"):
    g.class_means(f, y, num_classes=3)
  with pytest.raises(ValueError, match=r"must lie in \[0, 5\)"):
    g.directional_cdnv(f, np.where(y == 0, -1, y).astype(np.int32))
  with pytest.raises(ValueError, match=r"`convention` must be one of"):
    g.cdnv(f, y, convention="papyan")
  with pytest.raises(ValueError, match=r"`center` must be one of"):
    g.etf_distance(f, y, center="median")
  with pytest.raises(ValueError, match=r"floating-point"):
    g.nc1(f.astype(np.int32), y)
  with pytest.raises(ValueError, match=r"`num_classes` is required"):
    jax.jit(g.nc1)(f, y)
  with pytest.raises(ValueError, match=r"K >= 2 views"):
    g.alignment(f[:, None, :])
  with pytest.raises(ValueError, match=r"`z` must have rank 3"):
    g.augmentation_collapse(f)
  with pytest.raises(ValueError, match=r"`weights` has 4 rows but "
                                       r"`num_classes=5`"):
    g.nc3_self_duality(f, y, np.ones((4, D), np.float32), num_classes=5)
  with pytest.raises(ValueError, match=r"`weights` must have shape \[C, 7\]"):
    g.nc4_ncc_agreement(f, y, np.ones((5, 3), np.float32))
  with pytest.raises(ValueError, match=r"`bias` must have shape \[5\]"):
    g.nc4_ncc_agreement(f, y, np.ones((5, D), np.float32), np.ones(4))
  with pytest.raises(ValueError, match=r"`t` must be finite and > 0"):
    g.uniformity(f, t=-1.0)
  with pytest.raises(ValueError, match=r"`rcond` must be finite"):
    g.nc1(f, y, rcond=-1.0)


def test_feature_statistics_bad_inputs():
  f, y = DATA["basic"]["features"], DATA["basic"]["labels"]
  stats = geometry.FeatureStatistics(5, D)
  with pytest.raises(ValueError, match=r"No samples accumulated"):
    stats.metrics()
  with pytest.raises(ValueError, match=r"must have 7 columns"):
    stats.update(f[:, :3], y)
  with pytest.raises(ValueError, match=r"must lie in \[0, 5\)"):
    stats.update(f, y + 1)
  with pytest.raises(ValueError, match=r"integer dtype"):
    stats.update(f, y.astype(np.float64))
  with pytest.raises(ValueError, match=r"same \(num_classes, dim"):
    stats.merge(geometry.FeatureStatistics(5, D, per_class_second_moments=False))
  with pytest.raises(ValueError, match=r"`dim` must be a positive int"):
    geometry.FeatureStatistics(5, 0)


def test_docstring_examples():
  # geometry is a package: run the examples of each of its modules.
  import pkgutil  # pylint: disable=g-import-not-at-top
  import importlib  # pylint: disable=g-import-not-at-top
  attempted = failed = 0
  for info in pkgutil.iter_modules(geometry.__path__):
    module = importlib.import_module(f"cljax.geometry.{info.name}")
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    attempted, failed = attempted + result.attempted, failed + result.failed
  result = doctest.TestResults(failed, attempted)
  assert result.attempted > 0 and result.failed == 0


# ---------------------------------------------------------------------------
# Regressions: coincident means with 3-sample classes, non-finite input,
# degenerate sizes (issue 10, items 2 and 7).
# ---------------------------------------------------------------------------

# Classes 0 and 2 hold the same three points; 1/3 is inexact in binary, so a
# fused sums * (1/counts) used to make their means differ by ~1e-8 and the
# pair dominated the CDNV (1.2e18).
_TRIPLE = [[-0.9, 0.0], [1.1, 0.0], [0.1, 1.0]]
SET_C = np.array(_TRIPLE + [[4.0, 0.5], [4.0, -0.5]] + _TRIPLE, np.float32)
LABELS_C = np.array([0, 0, 0, 1, 1, 2, 2, 2], np.int32)


def _cdnv_trio(z, y):
  return {"cdnv": geometry.cdnv(z, y, num_classes=3),
          "directional_cdnv": geometry.directional_cdnv(z, y, num_classes=3),
          "augmentation_cdnv": geometry.augmentation_collapse(
              jnp.stack([z, z + 0.1], axis=1), y,
              num_classes=3)["augmentation_cdnv"]}


@pytest.mark.parametrize("mode", ["eager", "jit"])
def test_coincident_three_sample_classes_are_skipped(mode):
  fn = jax.jit(_cdnv_trio) if mode == "jit" else _cdnv_trio
  got = jax.device_get(fn(SET_C, LABELS_C))
  zf = SET_C.astype(np.float64)
  np.testing.assert_allclose(got["cdnv"], ref_cdnv(zf, LABELS_C, 3),
                             rtol=1e-5)
  np.testing.assert_allclose(got["directional_cdnv"],
                             ref_directional_cdnv(zf, LABELS_C, 3), rtol=1e-5)
  stream = geometry.FeatureStatistics(3, 2).update(SET_C, LABELS_C).metrics()
  np.testing.assert_allclose(got["cdnv"], stream["cdnv"], rtol=1e-5)
  np.testing.assert_allclose(got["directional_cdnv"],
                             stream["directional_cdnv"], rtol=1e-5)
  # The coincident pair counts as distance 0 in the mean squared distance.
  views = np.stack([zf, zf + 0.1], axis=1)
  np.testing.assert_allclose(
      got["augmentation_cdnv"],
      ref_augmentation(views, LABELS_C, 3)["augmentation_cdnv"], rtol=1e-5)


@pytest.mark.parametrize("mode", ["eager", "jit"])
def test_constant_features_give_the_documented_nan(mode):
  fn = jax.jit(_cdnv_trio) if mode == "jit" else _cdnv_trio
  z = np.full_like(SET_C, 0.3)
  got = jax.device_get(fn(z, LABELS_C))
  assert all(np.isnan(v) for v in got.values()), got
  assert np.isnan(geometry.nc1(z, LABELS_C))


NONFINITE_METRICS = {
    "nc1": lambda z, y: geometry.nc1(z, y),
    "cdnv": lambda z, y: geometry.cdnv(z, y),
    "directional_cdnv": lambda z, y: geometry.directional_cdnv(z, y),
    "etf_distance": lambda z, y: geometry.etf_distance(z, y),
    "equinorm": lambda z, y: geometry.equinorm(z, y),
    "within_class_distance": lambda z, y: geometry.within_class_distance(
        z, y),
    "nc4": lambda z, y: geometry.nc4_ncc_agreement(
        z, y, np.eye(3, 2, dtype=np.float32)),
    "effective_rank": lambda z, y: geometry.effective_rank(z),
    "uniformity": lambda z, y: geometry.uniformity(z),
    "alignment": lambda z, y: geometry.alignment(jnp.stack([z, z], axis=1)),
}


@pytest.mark.parametrize("bad", [np.nan, np.inf])
@pytest.mark.parametrize("name", sorted(NONFINITE_METRICS))
def test_non_finite_features_propagate_nan(name, bad):
  z = SET_C.copy()
  z[3, 0] = bad
  assert np.isnan(NONFINITE_METRICS[name](z, LABELS_C)), name


def test_nc1_with_one_class_is_nan_and_empty_input_raises():
  assert np.isnan(geometry.nc1(SET_C[:3], LABELS_C[:3]))
  assert np.isnan(geometry.FeatureStatistics(1, 2).update(
      SET_C[:3], LABELS_C[:3]).metrics()["nc1"])
  with pytest.raises(ValueError, match=r"`features` needs at least 1 row"):
    geometry.nc1(SET_C[:0], LABELS_C[:0], num_classes=3)
  with pytest.raises(ValueError, match=r"`features` needs at least 1 row"):
    geometry.cdnv(SET_C[:0], LABELS_C[:0], num_classes=3)
  with pytest.raises(ValueError, match=r"`x` needs at least 1 row"):
    geometry.effective_rank(SET_C[:0])
  with pytest.raises(ValueError, match=r"`features` needs at least 2 row"):
    geometry.uniformity(SET_C[:1])
