"""The hard-negative supervised contrastive estimator of the 2022 H-SCL paper.

The predecessor of Jiang et al.'s HSCL (``hard.hard_contrastive``), kept
distinct because its estimator differs: the positive's own term stays in the
denominator and the tilted mean of the negatives is scaled by the fixed
``N K - 2`` whatever the number of negatives. See
``docs/conventions.md#hscl-2022``.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from cljax._src import engine
from cljax.losses._common import ArrayLike
from cljax.losses._common import check_common
from cljax.losses._common import check_scalar
from cljax.losses._common import finish


def _masked_logsumexp(x: jax.Array, mask: jax.Array,
                      has_any: jax.Array) -> jax.Array:
  # Rows without an entry get a dummy finite row: logsumexp of an all -inf
  # row has a NaN gradient, which a later where would not mask.
  x = jnp.where(mask, x, -jnp.inf)
  x = jnp.where(has_any[:, None], x, 0.0)
  return jax.nn.logsumexp(x, axis=-1)


def hscl_2022(z: ArrayLike, labels: ArrayLike, *, beta: float = 1.0,
              temperature: float = 0.5, detach_weights: bool = False,
              normalize: str = "sphere", axis_name: str | None = None,
              reduction: str = "mean", return_counts: bool = False):
  r"""H-SCL 2022: supervised contrastive loss with reweighted negatives.

  Views are flattened as in ``cljax.losses`` (V = N K views). For an anchor
  view a with logits ``s_ab = <z_a, z_b> / temperature`` (the reference's
  ``exp(2 <z_a, z_b>)`` is ``temperature = 0.5`` on the sphere), positives
  P(a) are the other views with the anchor's label and negatives Q(a) the
  views with a different label. With importance weights
  ``w_b = exp(beta s_ab)`` over Q(a) and ``M = N K - 2`` (the reference's
  ``2B - 2`` for K = 2 views of B samples: every view but the anchor and its
  twin, whatever the number of negatives), each (anchor, positive) pair
  contributes

    l_ap = -log( e^{s_ap} / (e^{s_ap} + M sum_b w_b e^{s_ab} / sum_b w_b) )

  and the loss is the mean over all pairs (anchors with more positives weigh
  more). ``beta = 0`` gives uniform weights (the paper's SCL estimator); with
  all labels distinct and K = 2 it is NT-Xent, and for ``beta > 0``
  Robinson et al.'s HCL with ``tau_plus = 0``. Anchors with no negative (their
  class fills the batch) are invalid: excluded and counted, as in
  ``cljax.losses``. Dense: it builds the [local anchors, V] logits.

  The reference detaches the weights when ``gradient_imp=False`` and also
  whenever ``beta < 1``; here ``detach_weights`` alone decides.

  Args:
    z: float[N, K, D] embeddings, K >= 2 (each anchor's twin is a positive).
    labels: int[N] class ids.
    beta: hardness >= 0 (a Python number or a scalar traced under jit; no
      gradient flows to it). The reference's default is 1.
    temperature: tau > 0 (reference: 0.5).
    detach_weights: stop the gradient through ``w_b`` (the reference's
      ``gradient_imp=False``); by default it flows through them.
    normalize: "sphere" (default, the reference's unit vectors), "ball" or
      "none".
    axis_name, reduction, return_counts: see ``cljax.losses``; "mean" is over
      (anchor, positive) pairs and "none" gives per-anchor sums over pairs.

  Returns:
    Scalar loss, or float[N, K] for reduction="none".

  Raises:
    ValueError: bad shapes or dtypes, K < 2, beta < 0, tau <= 0, or a
      non-bool ``detach_weights``.

  References:
    Jiang, Nguyen, Aeron, Ishwar 2022, H-SCL (``rjiang03/H-SCL``,
    ``nce_supervised_hard``); docs/conventions.md#hscl-2022.

  Examples:
    >>> z = jax.random.normal(jax.random.key(0), (8, 2, 16))
    >>> y = jnp.array([0, 0, 1, 1, 2, 2, 3, 3])
    >>> bool(hscl_2022(z, y, beta=1.0) >= hscl_2022(z, y, beta=0.0))
    True
  """
  check_common(temperature, reduction)
  check_scalar(beta, "beta", allow_zero=True)
  if not isinstance(detach_weights, bool):
    raise ValueError(
        f"`detach_weights` must be a bool; got {detach_weights!r}. Pass "
        f"`detach_weights=True` to stop the gradient through the weights.")
  if labels is None:
    raise ValueError(
        "`labels` are required: H-SCL's positives and negatives come from "
        "the class ids; pass int[N] labels.")
  views = engine.prepare(z, labels, normalize_mode=normalize,
                          axis_name=axis_name, min_views=2)
  s = engine.logits(views, temperature)                         # [A, V]
  col = jnp.arange(s.shape[-1])
  same = views.anchor_label[:, None] == views.key_label[None, :]
  neg = ~same
  pos = same & (views.anchor_index[:, None] != col[None, :])
  has_neg = jnp.any(neg, axis=-1)
  log_q = beta * s - _masked_logsumexp(beta * s, neg, has_neg)[:, None]
  if detach_weights:
    log_q = jax.lax.stop_gradient(log_q)
  log_e = _masked_logsumexp(s + log_q, neg, has_neg)        # log sum q e^s
  # N K - 2 < 1 only for one sample, whose anchors have no negatives.
  log_m = math.log(max(views.num_samples * views.num_views - 2, 1))
  log_e = jnp.where(has_neg, log_e, 0.0)
  # -log(e^s / (e^s + M E)) = softplus(log M + log E - s).
  pair = jax.nn.softplus(log_m + log_e[:, None] - s)
  pair_sum = jnp.sum(jnp.where(pos, pair, 0.0), axis=-1)
  weight = jnp.sum(pos, axis=-1).astype(jnp.float32)
  return finish(pair_sum, has_neg, views, reduction, return_counts,
                weight=weight)
