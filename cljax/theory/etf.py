"""The simplex equiangular tight frame (ETF), the target of class collapse."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from cljax.theory._numerics import as_float, as_int

def simplex_etf(num_classes: int, dim: int, *, radius: float = 1.0,
                dtype: Any = np.float64) -> np.ndarray:
  """Deterministic simplex equiangular tight frame (ETF) of class means.

  Row ``c`` is row ``c`` of the centring matrix ``I - 11^T / C`` rescaled to
  norm ``radius`` and written in the orthonormal Helmert basis of the sum-zero
  subspace of ``R^C`` (whose ``k``-th vector is
  ``(1, ..., 1, -k, 0, ..., 0) / sqrt(k (k + 1))`` with ``k`` ones), padded
  with zeros from ``C - 1`` to ``dim`` coordinates. The result satisfies
  ``||mu_c|| = radius``, ``<mu_c, mu_c'> = -radius^2 / (C - 1)`` for
  ``c != c'`` and ``sum_c mu_c = 0``. Apply an orthogonal matrix to the rows
  for a randomly oriented ETF.

  Args:
    num_classes: ``C >= 2``, the number of vertices.
    dim: embedding dimension, ``>= C - 1`` (the ETF spans ``C - 1`` dims).
    radius: norm of every row, ``> 0``.
    dtype: NumPy floating dtype of the result (float64 by default so that
      closed-form checks are exact to round-off; pass ``np.float32`` or wrap
      in ``jnp.asarray`` for JAX).

  Returns:
    A NumPy array of shape ``[C, dim]`` and dtype ``dtype`` (not a JAX array).

  Raises:
    ValueError: if ``C < 2``, ``dim < C - 1``, ``radius <= 0`` or ``dtype`` is
      not floating.

  References:
    Papyan, Han, Donoho (2020) neural-collapse ETF; P1 Theorem 2 (section
    2.4) and P3 (section 4.2): unit norm, zero sum, equal inner products
    -1/(C-1); P2 (section 3.2): regular simplex inscribed in the rho-sphere.

  Examples:
    >>> import numpy as np
    >>> from cljax import theory
    >>> m = theory.simplex_etf(3, 2)
    >>> m.shape
    (3, 2)
    >>> np.round(m @ m.T, 6).tolist()
    [[1.0, -0.5, -0.5], [-0.5, 1.0, -0.5], [-0.5, -0.5, 1.0]]
  """
  num_classes = as_int(num_classes, "num_classes", 2)
  dim = as_int(dim, "dim", 1)
  if dim < num_classes - 1:
    raise ValueError(
        f"`dim` must be >= num_classes - 1 = {num_classes - 1} (a simplex ETF "
        f"of {num_classes} vertices spans {num_classes - 1} dimensions); got "
        f"dim={dim}.")
  radius = as_float(radius, "radius")
  if not np.issubdtype(np.dtype(dtype), np.floating):
    raise ValueError(f"`dtype` must be a floating dtype; got {dtype!r}.")
  c = num_classes
  # Helmert rows h_k (k = 1..C-1) are orthonormal and orthogonal to 1, so the
  # coordinates of row c of (I - 11^T/C) in that basis are simply H[:, c]:
  # no QR or random numbers are needed and the result is bit-reproducible.
  helmert = np.zeros((c - 1, c), dtype=np.float64)
  for k in range(1, c):
    norm = math.sqrt(k * (k + 1))
    helmert[k - 1, :k] = 1.0 / norm
    helmert[k - 1, k] = -k / norm
  # Rows of I - 11^T/C have norm sqrt((C-1)/C); rescale to `radius`.
  means = np.zeros((c, dim), dtype=np.float64)
  means[:, :c - 1] = helmert.T * (radius * math.sqrt(c / (c - 1)))
  return means.astype(dtype)


