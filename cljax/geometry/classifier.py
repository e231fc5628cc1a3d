"""Neural collapse of the classifier: NC3 and NC4 (Papyan et al., PNAS 2020).

Self-duality (NC3: the classifier's rows align with the centred class means)
and agreement of the classifier with the nearest class centre (NC4). Both
take the last layer's weights beside the features; the collapse of the
features alone (NC1, NC2) is ``cljax.geometry.collapse``. Conventions
(masking, centring, NaN) are in ``cljax.geometry``.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike
import numpy as np

from cljax._src import checks
from cljax._src import class_stats as cs
from cljax.geometry import _dispatch as dp
from cljax.geometry import _formulas as fm

F32 = dp.F32


def _nc3_local(z, labels, w, *, axis_name, num_classes, center):
  counts, means, present = dp.stats(z, labels, num_classes, axis_name)
  mc = fm.center_means(means, counts, present, center, jnp)
  return fm.self_duality_from(w, mc, present, jnp)


def nc3_self_duality(features: ArrayLike, labels: ArrayLike,
                     weights: ArrayLike, *, num_classes: int | None = None,
                     center: bool | str = True,
                     axis_name: Any = None) -> jax.Array:
  """Self-duality NC3: || W/||W||_F - M/||M||_F ||_F.

  Args:
    features: float[N, D] features.
    labels: int[N] class ids in ``[0, num_classes)``; out of range: a
      ValueError when concrete, NaN when traced.
    weights: float[C, D] classifier rows, one per class; rows of empty
      classes are ignored.
    num_classes: number of classes; defaults to ``weights.shape[0]`` (so it is
      optional under ``jit``).
    center: centring of the class means M (rows); see ``equinorm``.
    axis_name: mapped axis (per-device call); ``weights`` is replicated.

  Returns:
    float32 scalar in [0, 2], 0 when W is proportional to M.

  Raises:
    ValueError: on malformed inputs or when ``weights`` does not have
      ``num_classes`` rows of width D.

  References:
    Papyan, Han & Donoho, PNAS 2020, NC3.

  Examples:
    >>> z = jnp.array([[1., 0.], [-1., 0.]])
    >>> float(nc3_self_duality(z, jnp.array([0, 1]), 2 * z))
    0.0
  """
  z = dp.prepare_features(features, axis_name)
  w, c = dp.check_weights(weights, num_classes, z.shape[1])
  z, labels, c = dp.prepare(z, labels, c, axis_name)
  return dp.run(_nc3_local, (z, labels), (w,), axis_name=axis_name,
                num_classes=c, center=dp.normalize_center(center))


def _nc4_local(z, labels, w, b, *, axis_name, num_classes):
  _, means, present = dp.stats(z, labels, num_classes, axis_name)
  logits = fm.matmul(z, w.T, jnp) + b
  lin_pred = jnp.argmax(jnp.where(present, logits, -jnp.inf), axis=-1)
  ncc_pred = jnp.argmax(cs.ncc_scores(z, means, present), axis=-1)
  agree = cs.psum(jnp.sum((lin_pred == ncc_pred).astype(F32)), axis_name)
  finite = jnp.isfinite(cs.psum(jnp.sum(z), axis_name))
  return fm.nan_unless(finite, agree / dp.global_count(z.shape[0], axis_name),
                       jnp)


def nc4_ncc_agreement(features: ArrayLike, labels: ArrayLike,
                      weights: ArrayLike, bias: ArrayLike | None = None, *,
                      num_classes: int | None = None,
                      axis_name: Any = None) -> jax.Array:
  """NC4: fraction of samples where the classifier agrees with the NCC.

  Compares ``argmax_c (W z + b)_c`` with the nearest class centre
  ``argmin_c ||z - mu_c||_2``, the centres computed from
  ``(features, labels)`` (scores shifted by the mean centre against float32
  cancellation, as in ``cljax.probes``). Empty classes are excluded from
  both argmaxes (they have no centre).

  Args:
    features: float[N, D] features to classify.
    labels: int[N] class ids (used only to compute the centres); out of
      range: a ValueError when concrete, NaN when traced.
    weights: float[C, D] classifier rows.
    bias: optional float[C] classifier bias.
    num_classes: number of classes; defaults to ``weights.shape[0]``.
    axis_name: mapped axis (per-device call); weights and bias replicated.

  Returns:
    float32 scalar in [0, 1]; 1 at NC4. NaN for NaN/Inf features.

  Raises:
    ValueError: on malformed inputs.

  References:
    Papyan, Han & Donoho, PNAS 2020, NC4.

  Examples:
    >>> z = jnp.array([[0., 1.], [0., 3.], [4., 0.]])
    >>> w = jnp.array([[0., 1.], [1., 0.]])
    >>> float(nc4_ncc_agreement(z, jnp.array([0, 0, 1]), w))
    1.0
  """
  z = dp.prepare_features(features, axis_name)
  w, c = dp.check_weights(weights, num_classes, z.shape[1])
  z, labels, c = dp.prepare(z, labels, c, axis_name)
  if bias is None:
    b = jnp.zeros((c,), F32)
  else:
    bias = dp.as_array(bias)
    if np.shape(bias) != (c,):
      raise ValueError(
          f"`bias` must have shape [{c}] (one entry per class); got "
          f"{tuple(np.shape(bias))}.")
    checks.check_float(bias, "bias")
    b = jnp.asarray(bias).astype(F32)
  return dp.run(_nc4_local, (z, labels), (w, b), axis_name=axis_name,
                num_classes=c)
