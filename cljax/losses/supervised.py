"""Supervised contrastive losses: Luthra et al.'s NSCL and Khosla et al.'s
SupCon (as used by Graf et al.).
"""

from __future__ import annotations

import jax  # noqa: F401  (the examples)
import jax.numpy as jnp

from cljax._src import checks
from cljax._src import engine
from cljax.losses._common import ArrayLike
from cljax.losses._common import check_common
from cljax.losses._common import check_scalar
from cljax.losses._common import code_form
from cljax.losses._common import finish
from cljax.losses._common import own_mean


def nscl(z: ArrayLike, labels: ArrayLike, *, temperature: float = 1.0,
         positive_in_denominator: bool = False,
         include_self_pairs: bool = False, normalize: str = "sphere",
         axis_name: str | None = None, reduction: str = "mean",
         return_counts: bool = False, block_size: int | str = "auto"):
  """Negatives-only supervised contrastive loss (NSCL) of Luthra et al.

  Same positives as ``dcl`` (other views of the anchor's own sample: NSCL does
  not pull same-class samples together); the denominator keeps only views of
  samples of a different class:

    paper form:  l_a = mean_p [ -s_ap + log sum_{b: y_b != y_a} exp(s_ab) ]
    code form:   l_a = mean_p [ -s_ap + log(exp(s_ap)
                                            + sum_{b: y_b != y_a} exp(s_ab)) ]

  The code form (``positive_in_denominator=True``) is the authors'
  ``WeakNTXentLoss``/``NegSupConLoss``. The paper form can be negative. An
  anchor whose batch holds no view of another class is invalid (excluded and
  counted), in both forms.

  Args:
    z: float[N, K, D] embeddings; K >= 2 unless ``include_self_pairs``.
    labels: int[N] class ids.
    temperature: tau > 0 (theorem: 1, the default).
    positive_in_denominator: the code form instead of the paper form.
    include_self_pairs, normalize, axis_name, reduction, return_counts: as
      for ``dcl`` (the same positives; only the negatives differ).

  Returns:
    Scalar loss, or float[N, K] for reduction="none".

  Raises:
    ValueError: bad shapes or dtypes (z or labels), K < 2 without self
      pairs, tau <= 0.

  References:
    Luthra, Yang, Galanti 2025, definition of L^NSCL
    (docs/conventions.md#dcl-nscl-paper, docs/conventions.md#code-variants).

  Examples:
    >>> z = jax.random.normal(jax.random.key(0), (8, 2, 16))
    >>> y = jnp.array([0, 0, 1, 1, 2, 2, 3, 3])
    >>> loss, counts = nscl(z, y, temperature=0.5, return_counts=True)
    >>> int(counts.num_valid), int(counts.num_anchors)
    (16, 16)
  """
  check_common(temperature, reduction)
  views = engine.prepare(z, labels, normalize_mode=normalize,
                          axis_name=axis_name,
                          min_views=1 if include_self_pairs else 2)
  (lse,) = engine.row_reductions(views, temperature, [
      engine.Term("lse", "diff_label",
                   bound=engine.logit_bound(normalize, temperature))],
                                  block_size=block_size)
  valid = engine.nonempty(lse)
  s_own = engine.own_sample_logits(views, temperature)
  if not positive_in_denominator:
    per_anchor = lse - own_mean(s_own, include_self_pairs)
  else:
    per_anchor = code_form(s_own, include_self_pairs, lse, valid)
  return finish(per_anchor, valid, views, reduction, return_counts)


SUPCON_VARIANTS = ("out", "in")


def supcon(z: ArrayLike, labels: ArrayLike, *, temperature: float = 0.1,
           variant: str = "out", same_class_weight: float = 1.0,
           normalize: str = "sphere", axis_name: str | None = None,
           reduction: str = "mean", return_counts: bool = False,
           block_size: int | str = "auto"):
  """Supervised contrastive loss (Khosla et al.), as used by Graf et al.

  Positives P(a) = every other view with the anchor's label (other views of
  its sample and all views of same-class samples; duplicates of a sample in an
  i.i.d. batch are positives). Denominator Z_a = sum_{b != a} w_b exp(s_ab),
  w_b = ``same_class_weight`` for b in P(a) and 1 otherwise:

    variant "out":  l_a = -mean_{p in P(a)} s_ap + log Z_a      (L_out)
    variant "in":   l_a = -log mean_{p in P(a)} exp(s_ap) + log Z_a  (L_in)

  L_out >= L_in by Jensen; they agree at class collapse. Anchors without a
  positive (or with an empty denominator, possible when
  ``same_class_weight=0``) are invalid. ``same_class_weight=0`` gives the
  negatives-only denominator of the v2 "HybridSupCon" loss of Luthra et al.

  Args:
    z: float[N, K, D] embeddings; K = 1 is allowed.
    labels: int[N] class ids.
    temperature: tau > 0 (Graf et al.: 0.1).
    variant: "out" or "in".
    same_class_weight: w >= 0, Graf et al.'s ``SupConLossWeighted``.
    normalize, axis_name, return_counts: see the module docstring.
    reduction: "mean" over anchors with positives (training), "sum" (Graf et
      al.'s theory: positive-less anchors contribute 0), "batch" (their
      training code: divide by N·K including positive-less anchors), "none".

  Returns:
    Scalar loss, or float[N, K] for reduction="none".

  Raises:
    ValueError: bad shapes, unknown variant, tau <= 0, weight < 0.

  References:
    Khosla et al. 2020, Eq. 2 (L_out) and Eq. 3 (L_in); Graf et al. 2021,
    the batch loss of Section 3 (docs/conventions.md#supcon).

  Examples:
    >>> z = jax.random.normal(jax.random.key(0), (8, 2, 16))
    >>> y = jnp.array([0, 0, 1, 1, 2, 2, 3, 3])
    >>> bool(supcon(z, y) >= supcon(z, y, variant="in"))
    True
  """
  check_common(temperature, reduction)
  checks.check_choice(variant, "variant", SUPCON_VARIANTS)
  check_scalar(same_class_weight, "same_class_weight", allow_zero=True)
  views = engine.prepare(z, labels, normalize_mode=normalize,
                          axis_name=axis_name)
  bound = engine.logit_bound(normalize, temperature)
  positive_term = (engine.Term("sum", "positive") if variant == "out" else
                   engine.Term("lse", "positive", bound=bound))
  lse_den, pos = engine.row_reductions(views, temperature, [
      engine.Term("lse", "not_self", bound=bound, weight=same_class_weight),
      positive_term], block_size=block_size)
  num_pos = engine.row_count(views, "positive")
  has_pos = num_pos > 0
  safe_num = jnp.maximum(num_pos, 1).astype(jnp.float32)
  if variant == "out":
    pos_term = pos / safe_num
  else:
    pos_term = jnp.where(has_pos, pos - jnp.log(safe_num), 0.0)
  valid = has_pos & engine.nonempty(lse_den)
  return finish(lse_den - pos_term, valid, views, reduction, return_counts)
