"""Spectra: singular values, effective rank, class-mean spectrum (P3).

On one device the singular values come from the SVD of the (centred) [N, D]
matrix (through its QR factor when N > D); per device or sharded, from the eigenvalues of the psum'd D x D
centred Gram matrix, so nothing of size N leaves a device.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from cljax._src import checks
from cljax._src import class_stats as cs
from cljax.geometry import _dispatch as dp
from cljax.geometry import _formulas as fm
from cljax.geometry import collapse


def _singular_values_local(x, *, axis_name, center):
  if axis_name is None:
    if center:
      x = x - jnp.mean(x, axis=0)
    if x.shape[0] > x.shape[1]:
      # Householder R of a tall matrix has its singular values: the SVD then
      # works on [D, D], where XLA's SVD of [N, D] needs an [N, N] workspace
      # (4 TB at N = 1M).
      x = jnp.linalg.qr(x, mode="r")
    s = jnp.sort(jnp.linalg.svd(x, compute_uv=False))[::-1]
    return fm.nan_unless(jnp.all(jnp.isfinite(x)), s, jnp)
  n = dp.global_count(x.shape[0], axis_name)
  if center:
    x = x - cs.psum(jnp.sum(x, axis=0), axis_name) / n
  gram = cs.psum(fm.matmul(x.T, x, jnp), axis_name)
  rows = x.shape[0] * jax.lax.axis_size(axis_name)
  return fm.singular_values_from_cov(gram, rows, jnp)


def _effective_rank_local(x, eps, *, axis_name, center):
  s = _singular_values_local(x, axis_name=axis_name, center=center)
  return fm.effective_rank_from(s, eps, jnp)


def singular_values(x: ArrayLike, *, center: bool = True,
                    axis_name: Any = None) -> jax.Array:
  """Singular values of a feature matrix, sorted descending.

  Args:
    x: float[N, D] matrix (features, class means, ...).
    center: subtract the column mean (mean over rows) first. Static.
    axis_name: mapped axis (per-device call on row shards); the values are
      then those of the global [N, D] matrix, via its D x D Gram matrix.

  Returns:
    float32[min(N, D)] singular values, descending; NaN for NaN/Inf input.

  Raises:
    ValueError: on a wrong rank, no rows, or non-float input.

  References:
    Golub & Van Loan, Matrix Computations (SVD); used by RankMe (Garrido et
    al., ICML 2023).

  Examples:
    >>> singular_values(jnp.array([[3., 0.], [0., 4.]]), center=False).tolist()
    [4.0, 3.0]
  """
  x = dp.prepare_features(x, axis_name, "x")
  return dp.run(_singular_values_local, (x,), axis_name=axis_name,
                center=bool(center))


def effective_rank(x: ArrayLike, *, center: bool = True, eps: float = 1e-7,
                   axis_name: Any = None) -> jax.Array:
  r"""Effective rank ``exp(-sum_i p_i log p_i)``, ``p_i = s_i/sum_j s_j + eps``.

  Args:
    x: float[N, D] matrix (e.g. embeddings, or class means for P3's
      dimensional-collapse view).
    center: subtract the column mean first (static).
    eps: the RankMe epsilon added to each ``p_i``.
    axis_name: mapped axis (per-device call); see ``singular_values``.

  Returns:
    float32 scalar in about [1, min(N, D)]; NaN for NaN/Inf input.

  Raises:
    ValueError: on a wrong rank, non-float input or ``eps < 0``.

  References:
    Roy & Vetterli, EUSIPCO 2007, Def. 1; Garrido et al., RankMe, ICML 2023,
    Eq. 1.

  Examples:
    >>> round(float(effective_rank(jnp.eye(3), center=False)), 4)
    3.0
  """
  checks.check_positive(eps, "eps", allow_zero=True)
  x = dp.prepare_features(x, axis_name, "x")
  return dp.run(_effective_rank_local, (x,), (eps,), axis_name=axis_name,
                center=bool(center))


@collapse.raw_means_metric("class_mean_spectrum")
def class_mean_spectrum() -> jax.Array:
  """P3's dimensional-collapse spectrum of the class means.

  Singular values (= eigenvalues) of the covariance of the class means
  across classes, ``1/(C-1) sum_c (mu_c - mubar)(mu_c - mubar)^T`` with
  ``mubar`` the mean of the C non-empty class means (raw means, no sample
  weighting). Computed from the [C, D] mean matrix, so it costs O(C^2 D).
  P3 plots ``log(s_i / s_max)``; values below ~1e-7 relative are float32
  round-off.

  Args:
    {data_args}
    {axis_name_arg}

  Returns:
    float32[min(num_classes, D)], descending; the covariance's remaining
    singular values are exactly 0 (its rank is at most C - 1, so when
    D >= num_classes the last returned value is ~0 as well). An ETF gives
    C - 1 equal values.

  {malformed_raises}

  References:
    Jiang et al., TMLR (P3), dimensional collapse;
    ``docs/conventions.md#dimensional-collapse``.

  Examples:
    >>> z = jnp.array([[1., 0.], [-1., 0.]])
    >>> [round(float(v), 4) for v in class_mean_spectrum(z, jnp.array([0, 1]))]
    [2.0, 0.0]
  """
