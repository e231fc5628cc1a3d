"""Every loss and the CL-NSCL gap of Luthra et al.'s Theorem 1 from one
sweep over the logits (the training loop's per-step monitor).
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp

from cljax._src import engine
from cljax.losses._common import ArrayLike
from cljax.losses._common import check_scalar
from cljax.losses._common import code_form
from cljax.losses._common import finite
from cljax.losses._common import mean_over
from cljax.losses._common import own_mean


def _luthra_entries(views, s_own, lse_all, lse_other, lse_diff, *,
                    temperature, include_self_pairs, mean):
  """CL, DCL, NSCL, the gap and its bound from the three log-sum-exps."""
  valid_all = engine.nonempty(lse_all)
  valid_other = engine.nonempty(lse_other)
  valid_diff = engine.nonempty(lse_diff)
  pos_pair = own_mean(s_own, False)
  pos_dn = own_mean(s_own, True) if include_self_pairs else pos_pair
  out = {}
  if views.num_views >= 2:
    out["ntxent"] = mean(lse_all - pos_pair, valid_all)
    out["cl_code"] = mean(
        code_form(s_own, False, lse_all, valid_all), valid_all)
  dcl_anchor = lse_other - pos_dn
  nscl_anchor = lse_diff - pos_dn
  out["dcl"] = mean(dcl_anchor, valid_other)
  out["nscl"] = mean(nscl_anchor, valid_diff)
  out["nscl_code"] = mean(
      code_form(s_own, include_self_pairs, lse_diff, valid_diff),
      valid_diff)
  both = valid_other & valid_diff
  out["gap"] = mean(dcl_anchor - nscl_anchor, both)
  # Per-anchor Theorem-1 bound: log(1 + e^{2/tau} (b_y - 1) / (B - b_y)) with
  # b_y the anchor's class count in the batch
  # (docs/conventions.md#gap-bound-batch).
  b_y = engine.row_count(views, "same_label") / views.num_views
  b_total = float(views.num_samples)
  bound = jnp.log1p(jnp.exp(2.0 / temperature) * (b_y - 1.0) /
                    jnp.maximum(b_total - b_y, 1.0))
  out["gap_bound"] = mean(bound, both)
  out["nscl_valid"] = engine.reduce_anchors(lse_diff, valid_diff, "sum",
                                             views.axis_name)[1]
  return out


def cl_nscl(z: ArrayLike, labels: ArrayLike, *, temperature: float = 1.0,
            include_self_pairs: bool = False, normalize: str = "sphere",
            axis_name: str | None = None,
            block_size: int | str = "auto") -> dict[str, jax.Array]:
  """Luthra et al.'s CL and NSCL losses and their gap, in one sweep.

  The subset of ``all_losses`` that Theorem 1 is about, at a third of its
  cost: three log-sum-exps per anchor. ``cljax.analysis.evaluate`` uses it for the
  exact whole-dataset losses (with tiles, any N).

  Args:
    z: float[N, K, D], K >= 2 unless ``include_self_pairs``.
    labels: int[N].
    temperature: tau > 0 (the theorem: 1).
    include_self_pairs, normalize, axis_name, block_size: as for ``nscl``.

  Returns:
    dict of float32 scalars "ntxent" and "cl_code" (K >= 2), "dcl", "nscl",
    "nscl_code", "gap", "gap_bound" and "nscl_valid", as in ``all_losses``.

  Examples:
    >>> z = jax.random.normal(jax.random.key(0), (8, 2, 16))
    >>> y = jnp.array([0, 0, 1, 1, 2, 2, 3, 3])
    >>> out = cl_nscl(z, y)
    >>> bool(0 <= out["gap"] <= out["gap_bound"])
    True
  """
  check_scalar(temperature, "temperature")
  views = engine.prepare(z, labels, normalize_mode=normalize,
                          axis_name=axis_name,
                          min_views=1 if include_self_pairs else 2)
  bound = engine.logit_bound(normalize, temperature)
  lse_all, lse_other, lse_diff = engine.row_reductions(views, temperature, [
      engine.Term("lse", "not_self", bound=bound),
      engine.Term("lse", "other_sample", bound=bound),
      engine.Term("lse", "diff_label", bound=bound)], block_size=block_size)
  return _luthra_entries(
      views, engine.own_sample_logits(views, temperature), lse_all, lse_other,
      lse_diff, temperature=temperature,
      include_self_pairs=include_self_pairs,
      mean=mean_over(views.axis_name))


def all_losses(z: ArrayLike, labels: ArrayLike, *, temperature: float,
               beta: float | None = None, include_self_pairs: bool = False,
               normalize: str = "sphere", axis_name: str | None = None,
               block_size: int | str = "auto") -> dict[str, jax.Array]:
  """Every loss of this module, and the CL-NSCL gap, from one similarity matrix.

  The training loop logs these on each batch next to the optimised loss.
  Values equal the individual functions called with the same arguments.

  Args:
    z: float[N, K, D], K >= 2.
    labels: int[N].
    temperature: tau > 0 for every loss.
    beta: hardness for "hscl"/"hucl" (exact expectation, stop-gradient tilt);
      None skips them (the two extra passes over the matrix they need).
    include_self_pairs: for "dcl" and "nscl".
    normalize: one normalisation for every loss (default "sphere").
    axis_name, block_size: see the module docstring.

  Returns:
    dict with float32 scalars: "ntxent", "cl_code" (ntxent with the positive
    counted twice, the authors' logged CL), "dcl", "nscl" (paper form),
    "nscl_code" (positive in the denominator), "supcon_out", "supcon_in",
    "scl", "ucl" (Jiang et al.'s estimators at beta = 0 with labelled
    positives incl. self), "hscl" and "hucl" (if beta is given), "gap"
    (dcl - nscl over anchors valid for both) and "gap_bound" (the per-batch
    Theorem-1 bound, averaged over the same anchors), and "nscl_valid" (the
    number of anchors with a negative).

  References:
    Luthra et al. 2025, Theorem 1 (gap and bound;
    docs/conventions.md#gap-bound).

  Examples:
    >>> z = jax.random.normal(jax.random.key(0), (8, 2, 16))
    >>> y = jnp.array([0, 0, 1, 1, 2, 2, 3, 3])
    >>> out = all_losses(z, y, temperature=1.0, beta=2.0)
    >>> bool(out["hscl"] >= out["scl"])
    True
  """
  check_scalar(temperature, "temperature")
  if beta is not None:
    check_scalar(beta, "beta", allow_zero=True)
  views = engine.prepare(z, labels, normalize_mode=normalize,
                          axis_name=axis_name,
                          min_views=1 if include_self_pairs else 2)
  lse_bound = engine.logit_bound(normalize, temperature)
  mean = mean_over(views.axis_name)

  s_own = engine.own_sample_logits(views, temperature)
  s_self = jnp.diagonal(s_own, axis1=1, axis2=2).reshape(-1)
  # Label counts per anchor: same-label views (incl. itself) and positives.
  hard_num = engine.row_count(views, "same_label")
  num_cols = views.keys.shape[0]

  terms = [engine.Term("lse", "not_self", bound=lse_bound),
           engine.Term("lse", "other_sample", bound=lse_bound),
           engine.Term("lse", "diff_label", bound=lse_bound),
           engine.Term("sum", "positive"),
           engine.Term("lse", "positive", bound=lse_bound)]
  if beta is not None:
    for pool in ("diff_label", "all"):
      terms += [engine.Term("lse", pool, alpha=1.0 + beta, grad_scale=1.0,
                             bound=lse_bound),
                engine.Term("lse", pool, alpha=beta, grad_scale=0.0,
                             bound=lse_bound)]
  num_hard = 2 if beta is None else 4
  terms += [engine.Term("softplus", "same_label")] * num_hard
  combine = functools.partial(_all_log_expectations, num_cols=num_cols)
  aux = (hard_num, s_self)
  outs = engine.row_reductions(views, temperature, terms, combine=combine,
                                aux=aux, block_size=block_size)
  lse_all, lse_other, lse_diff, pos_sum, lse_pos = outs[:5]
  pair_sums = outs[-num_hard:]
  out = _luthra_entries(views, s_own, lse_all, lse_other, lse_diff,
                        temperature=temperature,
                        include_self_pairs=include_self_pairs, mean=mean)
  valid_all = engine.nonempty(lse_all)
  valid_diff = engine.nonempty(lse_diff)

  num_pos = hard_num - 1.0
  has_pos = num_pos > 0
  safe_num = jnp.maximum(num_pos, 1.0)
  sup_valid = has_pos & valid_all
  out["supcon_out"] = mean(lse_all - pos_sum / safe_num, sup_valid)
  out["supcon_in"] = mean(
      lse_all - jnp.where(has_pos, lse_pos - jnp.log(safe_num), 0.0),
      sup_valid)

  always = jnp.ones_like(valid_diff)
  names = ["scl", "ucl"] + (["hscl", "hucl"] if beta is not None else [])
  valids = [valid_diff, always, valid_diff, always]
  for name, pair_sum, valid in zip(names, pair_sums, valids):
    out[name] = mean(pair_sum, valid, weight=hard_num)
  return out


def _all_log_expectations(outs, aux, *, num_cols):
  """log E_a of SCL, UCL (and HSCL, HUCL) for ``all_losses``.

  SCL's uniform pool reuses the different-label log-sum-exp; UCL's pool of
  all views adds the anchor itself to the not-self one.
  """
  lse_all, _, lse_diff, _, _, *tilted = outs
  hard_num, s_self = aux
  cs = [lse_diff - jnp.log(jnp.maximum(num_cols - hard_num, 1.0)),
        jnp.logaddexp(lse_all, s_self) - math.log(num_cols)]
  for i in range(0, len(tilted), 2):
    cs.append(tilted[i] - tilted[i + 1])
  return tuple(finite(c) for c in cs)
