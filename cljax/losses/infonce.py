"""Self-supervised InfoNCE losses: SimCLR's NT-Xent and Luthra et al.'s
decoupled contrastive loss (positives: the other views of each sample).
"""

from __future__ import annotations

import jax

from cljax._src import engine
from cljax import theory
from cljax.losses._common import AnchorCounts
from cljax.losses._common import ArrayLike
from cljax.losses._common import check_common
from cljax.losses._common import code_form
from cljax.losses._common import finish
from cljax.losses._common import own_mean


def ntxent(z: ArrayLike, *, temperature: float, normalize: str = "sphere",
           double_count_positive: bool = False,
           axis_name: str | None = None, reduction: str = "mean",
           return_counts: bool = False, block_size: int | str = "auto"):
  """SimCLR's NT-Xent (InfoNCE) loss; the positive is in the denominator.

  For anchor view a of sample i with positives P(a) (the other K-1 views of
  sample i) and denominator D(a) = every view b != a:

    l_a = mean_{p in P(a)} [ -s_ap + log sum_{b in D(a)} exp(s_ab) ].

  With ``double_count_positive`` the positive enters the denominator twice,
  log(exp(s_ap) + sum_{b != a} exp(s_ab)): the "ContrastiveLoss" that Luthra
  et al.'s code logs as ``cl_loss`` (docs/conventions.md#code-variants; its gap
  to NSCL obeys ``theory.double_counted_gap_bound``, not Theorem 1).

  Args:
    z: float[N, K, D] embeddings, K >= 2.
    temperature: softmax temperature tau > 0.
    normalize: "sphere" (default), "ball" or "none".
    double_count_positive: reproduce the authors' code's CL variant.
    axis_name: see the module docstring.
    reduction: "mean" | "sum" | "batch" | "none".
    return_counts: also return ``AnchorCounts``.

  Returns:
    Scalar loss (float32), or per-anchor float[N, K] for reduction="none".

  Raises:
    ValueError: z not [N, K, D] float, K < 2, temperature <= 0.

  References:
    Chen et al. 2020 (SimCLR), Eq. 1; generalised to K views by averaging over
    positives. Luthra et al. 2025's code calls this loss "DCL"
    (docs/conventions.md#code-variants).

  Examples:
    >>> z = jax.random.normal(jax.random.key(0), (8, 2, 16))
    >>> float(ntxent(z, temperature=0.5)) > 0
    True
  """
  check_common(temperature, reduction)
  views = engine.prepare(z, None, normalize_mode=normalize,
                          axis_name=axis_name, min_views=2)
  s_own = engine.own_sample_logits(views, temperature)
  (lse,) = engine.row_reductions(views, temperature, [
      engine.Term("lse", "not_self",
                   bound=engine.logit_bound(normalize, temperature))],
                              block_size=block_size)
  valid = engine.nonempty(lse)
  if double_count_positive:
    per_anchor = code_form(s_own, False, lse, valid)
  else:
    per_anchor = lse - own_mean(s_own, False)
  return finish(per_anchor, valid, views, reduction, return_counts)


def dcl(z: ArrayLike, *, temperature: float = 1.0,
        include_self_pairs: bool = False, normalize: str = "sphere",
        axis_name: str | None = None, reduction: str = "mean",
        return_counts: bool = False, block_size: int | str = "auto"):
  """The self-supervised (decoupled) contrastive loss of Luthra et al.

  Positives and the denominator exclude every view of the anchor's sample:

    l_a = mean_{p in P(a)} [ -s_ap + log sum_{b: sample(b) != sample(a)}
                                       exp(s_ab) ],

  with P(a) the other views of the anchor's sample, or all K of them
  (including a itself) when ``include_self_pairs``; the mean over anchors then
  equals the paper's -1/(K^2 N) sum_{i,l1,l2} form (with self pairs) or its
  K(K-1)N form (without, the default, as in the authors' code and SimCLR).
  Invalid anchors: none of another sample (N = 1).

  Args:
    z: float[N, K, D] embeddings; K >= 2 unless ``include_self_pairs``.
    temperature: tau > 0; the theorem uses tau = 1 (default).
    include_self_pairs: include the l1 = l2 terms of the paper's double sum.
    normalize, axis_name, reduction, return_counts: see the module docstring.

  Returns:
    Scalar loss, or float[N, K] for reduction="none".

  Raises:
    ValueError: bad shape or dtype, K < 2 without self pairs, tau <= 0.

  References:
    Luthra, Yang, Galanti 2025, the definition of L^DCL before Theorem 1
    (docs/conventions.md#dcl-nscl-paper); Yeh et al. 2022 (decoupled contrastive
    learning).

  Examples:
    >>> z = jax.random.normal(jax.random.key(0), (8, 2, 16))
    >>> float(dcl(z)) > 0
    True
  """
  check_common(temperature, reduction)
  views = engine.prepare(z, None, normalize_mode=normalize,
                          axis_name=axis_name,
                          min_views=1 if include_self_pairs else 2)
  pos_mean = own_mean(engine.own_sample_logits(views, temperature),
                       include_self_pairs)
  (lse,) = engine.row_reductions(views, temperature, [
      engine.Term("lse", "other_sample",
                   bound=engine.logit_bound(normalize, temperature))],
                              block_size=block_size)
  valid = engine.nonempty(lse)
  return finish(lse - pos_mean, valid, views, reduction, return_counts)
