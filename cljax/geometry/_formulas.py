"""Formulas on class statistics, generic over the array backend.

``xp`` is ``jnp`` (float32, on device, inside jit or a mapped function) or
``np`` (float64, the ``FeatureStatistics`` reference), so the streaming
accumulators and the full-batch metrics share one implementation of every
formula on class means and scatter matrices.
"""

import jax
import jax.numpy as jnp
import numpy as np

from cljax._src import class_stats as cs


def matmul(a, b, xp):
  if xp is np:
    return a @ b
  # TPU/GPU default to reduced-precision matmuls; metrics need full float32.
  return jnp.matmul(a, b, precision=jax.lax.Precision.HIGHEST)


def coincidence_tol(xp, dtype):
  """Relative distance below which two means are one point in round-off.

  Means of the same points summed in a different order (another fusion,
  another device split) differ by a few ulps of the features' scale; 128 ulps
  leaves a wide margin and is still far below any resolvable distance.
  """
  return 128.0 * float((np if xp is np else jnp).finfo(dtype).eps)


def safe_div(num, den, xp):
  # NaN numerators propagate: `den > 0` only guards the division.
  ok = den > 0
  return xp.where(ok, num / xp.where(ok, den, 1), xp.nan)


def nan_unless(ok, value, xp):
  return xp.where(ok, value, xp.nan)


def pair_mask(present, xp, ordered=True):
  c = present.shape[0]
  both = present[:, None] & present[None, :]
  if ordered:
    return both & ~xp.eye(c, dtype=bool)
  return both & xp.triu(xp.ones((c, c), dtype=bool), 1)


def masked_mean(values, mask, xp):
  return safe_div(xp.sum(xp.where(mask, values, 0.0)),
                  xp.sum(mask.astype(values.dtype)), xp)


def coincident(d2, scale, xp):
  """bool[C, C]: pairs whose squared distance is round-off of ``scale``.

  ``scale`` float[C] is each class's mean squared norm ``E_c ||z||^2``. NaN
  distances are *not* coincident, so a NaN feature reaches the result.
  """
  tol = coincidence_tol(xp, d2.dtype)
  return d2 <= tol * tol * (scale[:, None] + scale[None, :])


def pairwise_sq_dists(m, xp):
  if xp is np:
    # Row by row: C x C x D float64 can exceed host memory for large C.
    return np.stack([np.sum((m - m[i]) ** 2, axis=-1) for i in range(len(m))])
  # Differences, not the Gram identity: nearly coincident means must not
  # drown in cancellation. Inside jit XLA fuses the broadcast into the
  # reduction, so [C, C, D] is never stored.
  return jnp.sum(jnp.square(m[:, None, :] - m[None, :, :]), axis=-1)


def center_means(means, counts, present, center, xp):
  """Masked (zero rows for empty classes) class means minus the reference."""
  if center == "none":
    ref = xp.zeros(means.shape[1:], means.dtype)
  elif center == "global":
    ref = matmul(counts, means, xp) / xp.sum(counts)
  else:  # "classes"
    w = present.astype(means.dtype)
    ref = matmul(w, means, xp) / xp.sum(w)
  return xp.where(present[:, None], means - ref, 0.0)


def cosines(m, xp):
  u = cs.unit_rows(m) if xp is np else cs.unit_rows(jnp.asarray(m))
  return matmul(u, u.T, xp)


def equinorm_from(mc, present, xp):
  norms = xp.sqrt(xp.sum(mc * mc, axis=-1))
  c = xp.sum(present.astype(mc.dtype))
  mean = safe_div(xp.sum(xp.where(present, norms, 0.0)), c, xp)
  var = safe_div(xp.sum(xp.where(present, (norms - mean) ** 2, 0.0)), c, xp)
  return safe_div(xp.sqrt(var), mean, xp)


def equiangularity_from(mc, present, xp):
  cos = cosines(mc, xp)
  mask = pair_mask(present, xp)
  mean = masked_mean(cos, mask, xp)
  return xp.sqrt(masked_mean((cos - mean) ** 2, mask, xp))


def simplex_deviation_from(m, present, xp):
  """(mean, max) over ordered pairs of |cos + 1/(C-1)|, C = non-empty."""
  cos = cosines(m, xp)
  mask = pair_mask(present, xp)
  c = xp.sum(present.astype(m.dtype))
  dev = xp.abs(cos + safe_div(xp.ones((), m.dtype), c - 1, xp))
  mean = masked_mean(dev, mask, xp)
  mx = xp.max(xp.where(mask, dev, -xp.inf))
  mx = xp.where(xp.any(mask), mx, xp.nan)
  nan = xp.any(xp.isnan(dev) & mask)
  return mean, xp.where(nan, xp.nan, mx)


def etf_distance_from(mc, present, xp):
  u = cs.unit_rows(mc) if xp is np else cs.unit_rows(jnp.asarray(mc))
  g = matmul(u, u.T, xp)
  g = safe_div(g, xp.sqrt(xp.sum(g * g)), xp)
  c = xp.sum(present.astype(mc.dtype))
  both = (present[:, None] & present[None, :]).astype(mc.dtype)
  eye = xp.eye(present.shape[0], dtype=mc.dtype)
  # (I - 11^T/C)/sqrt(C-1) restricted to the non-empty classes; it has unit
  # Frobenius norm, like the normalised Gram matrix it is compared with.
  target = both * safe_div(eye - 1.0 / c, xp.sqrt(c - 1), xp)
  return xp.sqrt(xp.sum((g - target) ** 2))


def orthogonal_frame_distance_from(m, present, xp):
  """``|| G/||G||_F - I/sqrt(C) ||_F`` on the non-empty classes.

  ``etf_distance_from`` with the orthogonal frame's Gram as target: ``G`` is
  the Gram matrix of the unit-normalised (uncentred) means, and the identity
  restricted to the C non-empty classes, divided by ``sqrt(C)``, has unit
  Frobenius norm like ``G/||G||_F``.
  """
  u = cs.unit_rows(m) if xp is np else cs.unit_rows(jnp.asarray(m))
  g = matmul(u, u.T, xp)
  g = safe_div(g, xp.sqrt(xp.sum(g * g)), xp)
  c = xp.sum(present.astype(m.dtype))
  target = xp.diag(present.astype(m.dtype)) / xp.sqrt(c)
  return xp.sqrt(xp.sum((g - target) ** 2))


def self_duality_from(w, mc, present, xp):
  w = xp.where(present[:, None], w, 0.0)
  wn = safe_div(w, xp.sqrt(xp.sum(w * w)), xp)
  mn = safe_div(mc, xp.sqrt(xp.sum(mc * mc)), xp)
  return xp.sqrt(xp.sum((wn - mn) ** 2))


def nc1_from(means, counts, present, sigma_w, rcond, xp):
  """tr(Sigma_W Sigma_B^+) / C from the class means and Sigma_W [D, D].

  With M the [C, D] matrix of globally centred means, Sigma_B = M^T M / C
  has eigenvalues s_k^2 / C along the right singular vectors w_k, so
  tr(Sigma_W Sigma_B^+)/C = sum_k w_k^T Sigma_W w_k / s_k^2 (the C's cancel).
  Singular values of M (not eigenvalues of M M^T) keep ``rcond`` reliable in
  float32. Directions whose s_k is round-off of the features' scale are
  dropped too, so coincident means do not give 1/eps^2.
  NaN when fewer than two classes are present or no direction is kept.
  """
  m = center_means(means, counts, present, "global", xp)
  _, s, vt = xp.linalg.svd(m, full_matrices=False)
  quad = xp.sum(matmul(vt, sigma_w, xp) * vt, axis=-1)
  s2 = s * s
  # Round-off of a mean is relative to the raw features' scale E ||z||^2.
  raw = xp.trace(sigma_w) + xp.sum(
      counts * xp.sum(means * means, axis=-1)) / xp.sum(counts)
  tol = coincidence_tol(xp, s.dtype)
  floor = tol * tol * xp.sum(present.astype(s.dtype)) * raw
  keep = (s2 > rcond * s2[0]) & (s2 > floor)
  value = xp.sum(xp.where(keep, quad / xp.where(keep, s2, 1.0), 0.0))
  defined = (xp.sum(present) >= 2) & xp.any(keep)
  finite = xp.all(xp.isfinite(m)) & xp.all(xp.isfinite(sigma_w))
  return xp.where(defined & finite, value, xp.nan)


def cdnv_from(var_sums, counts, present, means, convention, xp):
  """Mean CDNV over valid unordered pairs; var_sums_c = sum ||z - mu_c||^2."""
  if convention == "galanti":
    var = var_sums / xp.maximum(counts, 1.0)
    ok = present
    scale = 0.5
  else:
    # Unbiased 1/(n-1) variance is undefined for a one-member class: such
    # classes are skipped rather than given a made-up variance.
    var = var_sums / xp.maximum(counts - 1.0, 1.0)
    ok = counts >= 2
    scale = 1.0
  d2 = pairwise_sq_dists(means, xp)
  sq = var_sums / xp.maximum(counts, 1.0) + xp.sum(means * means, axis=-1)
  valid = pair_mask(ok, xp, ordered=False) & ~coincident(d2, sq, xp)
  v = scale * (var[:, None] + var[None, :]) / xp.where(valid, d2, 1.0)
  return masked_mean(v, valid, xp)


def directional_cdnv_from(q, var_sums, counts, present, means, xp):
  """q_ij = sum_{x in i} <z_x - mu_i, mu_j - mu_i>^2; ordered valid pairs."""
  d2 = pairwise_sq_dists(means, xp)
  sq = var_sums / xp.maximum(counts, 1.0) + xp.sum(means * means, axis=-1)
  valid = pair_mask(present, xp) & ~coincident(d2, sq, xp)
  den = xp.maximum(counts, 1.0)[:, None] * d2 * d2
  return masked_mean(q / xp.where(valid, den, 1.0), valid, xp)


def class_mean_spectrum_from(means, present, xp):
  mc = center_means(means, None, present, "classes", xp)
  s = xp.linalg.svd(mc, compute_uv=False)
  c = xp.sum(present.astype(means.dtype))
  return safe_div(s * s, c - 1.0, xp)


def effective_rank_from(s, eps, xp):
  total = xp.sum(s)
  p = xp.where(total > 0, s / xp.where(total > 0, total, 1.0), 0.0) + eps
  return nan_unless(xp.isfinite(total), xp.exp(-xp.sum(p * xp.log(p))), xp)


def p3_raw_from(means, present, xp):
  c = xp.sum(present.astype(means.dtype))
  raw = xp.where(present[:, None], means, 0.0)
  zs = xp.sqrt(xp.sum((xp.sum(raw, axis=0) / c) ** 2))
  norms = xp.sqrt(xp.sum(raw * raw, axis=-1))
  un = xp.sum(xp.where(present, xp.abs(norms - 1.0), 0.0)) / c
  return zs, un


def singular_values_from_cov(cov, n, xp):
  """Descending singular values [min(N, D)] of a matrix from its Gram."""
  eig = xp.linalg.eigvalsh((cov + cov.T) / 2)[::-1]
  sv = xp.sqrt(xp.maximum(eig, 0.0))[:min(n, cov.shape[0])]
  return nan_unless(xp.all(xp.isfinite(cov)), sv, xp)
