"""Naive float64 NumPy reference implementations of the cljax losses.

These are the ground truth that the fast JAX losses in ``cljax/losses.py`` are
tested against. They are written straight from the formulas in
``docs/conventions.md`` (#notation, #dcl-nscl-paper, #code-variants, #supcon,
#hard-negatives) with explicit
Python loops over anchors and positives, deliberately slow and obvious: no
masking tricks, no vectorised log-sum-exp across anchors. Nothing here is
imported from ``cljax``.

Conventions shared by every function
------------------------------------
* ``z`` is ``float[N, K, D]`` (N samples, K views); ``labels`` is ``int[N]``.
* Views are flattened sample-major: view index ``a = i * K + l`` (sample
  ``i = a // K``, view ``l = a % K``). Index arrays such as ``neg_indices``
  refer to this flattened order.
* ``normalize`` in {"sphere": z/||z||, "ball": z/max(1, ||z||), "none"} is
  applied per view vector, before the logits.
* Logits ``s_ab = <z_a, z_b> / temperature``.
* Every function returns ``(loss, num_valid_anchors)`` with ``loss`` a Python
  float and ``num_valid_anchors`` a Python int. Invalid anchors are excluded
  from the mean; when no anchor is valid the loss is ``0.0``.
* ``cross_entropy`` follows the same convention: ``(loss, N)``.
"""

from __future__ import annotations

import math

import numpy as np

_NORMALIZATIONS = ("sphere", "ball", "none")


# ---------------------------------------------------------------------------
# Small helpers (scalar, per-anchor; nothing vectorised across anchors).
# ---------------------------------------------------------------------------


def logsumexp_list(values) -> float:
  """log(sum(exp(values))) of a non-empty 1-D list, max subtracted."""
  v = np.asarray(values, dtype=np.float64)
  if v.size == 0:
    raise ValueError("logsumexp of an empty set")
  m = np.max(v)
  return float(m + np.log(np.sum(np.exp(v - m))))


def normalize_views(z, normalize: str) -> np.ndarray:
  """Normalises every view vector of ``z[N, K, D]``; returns float64 copy."""
  z = np.array(z, dtype=np.float64)
  if z.ndim != 3:
    raise ValueError(f"z must be [N, K, D]; got shape {z.shape}")
  if normalize not in _NORMALIZATIONS:
    raise ValueError(f"normalize must be one of {_NORMALIZATIONS}")
  n, k, _ = z.shape
  out = np.empty_like(z)
  for i in range(n):
    for l in range(k):
      v = z[i, l]
      norm = math.sqrt(float(np.dot(v, v)))
      if normalize == "sphere":
        out[i, l] = v / norm
      elif normalize == "ball":
        out[i, l] = v / max(1.0, norm)
      else:
        out[i, l] = v
  return out


def flatten_views(z, normalize: str):
  """Returns (flat[N*K, D], N, K), sample-major, normalised."""
  zn = normalize_views(z, normalize)
  n, k, d = zn.shape
  flat = np.empty((n * k, d), dtype=np.float64)
  for i in range(n):
    for l in range(k):
      flat[i * k + l] = zn[i, l]
  return flat, n, k


def logit_matrix(z, temperature: float, normalize: str):
  """s[a, b] = <z_a, z_b> / temperature on flattened views; also N, K."""
  flat, n, k = flatten_views(z, normalize)
  m = n * k
  s = np.empty((m, m), dtype=np.float64)
  for a in range(m):
    for b in range(m):
      s[a, b] = float(np.dot(flat[a], flat[b])) / float(temperature)
  return s, n, k


def _check_labels(labels, n: int) -> np.ndarray:
  labels = np.asarray(labels)
  if labels.shape != (n,):
    raise ValueError(f"labels must have shape ({n},); got {labels.shape}")
  return labels


def _view_labels(labels, n: int, k: int):
  """Label of every flattened view."""
  return [labels[a // k] for a in range(n * k)]


def _mean(xs) -> float:
  return float(sum(xs) / len(xs))


def _finish(per_anchor_losses) -> tuple[float, int]:
  """Mean over valid anchors, (0.0, 0) when there is none."""
  if not per_anchor_losses:
    return 0.0, 0
  return _mean(per_anchor_losses), len(per_anchor_losses)


def _own_sample_positives(a: int, k: int, include_self: bool):
  i = a // k
  return [b for b in range(i * k, (i + 1) * k) if include_self or b != a]


# ---------------------------------------------------------------------------
# 1. NT-Xent (SimCLR / InfoNCE)
# ---------------------------------------------------------------------------


def ntxent(z, temperature, normalize="sphere") -> tuple[float, int]:
  """SimCLR NT-Xent for K >= 2 views.

  P(a) = other views of a's sample, D(a) = {b != a};
  l_a = mean_{p in P(a)} [ -s_ap + log sum_{b in D(a)} e^{s_ab} ];
  loss = mean over all N*K anchors.
  """
  s, n, k = logit_matrix(z, temperature, normalize)
  if k < 2:
    raise ValueError("ntxent needs K >= 2 views")
  m = n * k
  losses = []
  for a in range(m):
    positives = _own_sample_positives(a, k, include_self=False)
    denominator = [s[a, b] for b in range(m) if b != a]
    lse = logsumexp_list(denominator)
    losses.append(_mean([-s[a, p] + lse for p in positives]))
  return _finish(losses)


def ntxent_two_view(z1, z2, temperature, normalize="sphere") -> float:
  """Separate textbook 2-view NT-Xent (Chen et al. 2020), returns the loss.

  Written independently of ``ntxent``: views are stacked *view-major* as
  h = [z1; z2] (2N rows), the positive of row r is row (r + N) mod 2N, and
  each row's term is the cross-entropy of its positive against all 2N - 1
  other rows. Mean over the 2N rows.
  """
  z1 = np.array(z1, dtype=np.float64)
  z2 = np.array(z2, dtype=np.float64)
  n = z1.shape[0]
  h = np.concatenate([z1, z2], axis=0)
  if normalize == "sphere":
    h = h / np.linalg.norm(h, axis=1, keepdims=True)
  elif normalize == "ball":
    h = h / np.maximum(1.0, np.linalg.norm(h, axis=1, keepdims=True))
  elif normalize != "none":
    raise ValueError(normalize)
  total = 0.0
  for r in range(2 * n):
    pos = (r + n) % (2 * n)
    logits = []
    for c in range(2 * n):
      if c != r:
        logits.append(float(h[r] @ h[c]) / temperature)
    pos_logit = float(h[r] @ h[pos]) / temperature
    total += -pos_logit + logsumexp_list(logits)
  return total / (2 * n)


# ---------------------------------------------------------------------------
# 2. DCL (Luthra et al.'s self-supervised loss; positive not in denominator)
# ---------------------------------------------------------------------------


def dcl(z, temperature=1.0, include_self_pairs=False,
        normalize="sphere") -> tuple[float, int]:
  """Decoupled contrastive loss (P1 paper form).

  P(a) = other views of a's sample (all K views incl. a when
  include_self_pairs); D(a) = {b : sample(b) != sample(a)};
  l_a = mean_{p in P(a)} [ -s_ap + log sum_{D(a)} e^{s_ab} ].
  Invalid anchor: D(a) empty (N == 1) or P(a) empty (K == 1 without self
  pairs). Mean over valid anchors.
  """
  s, n, k = logit_matrix(z, temperature, normalize)
  m = n * k
  losses = []
  for a in range(m):
    positives = _own_sample_positives(a, k, include_self_pairs)
    denominator = [s[a, b] for b in range(m) if b // k != a // k]
    if not positives or not denominator:
      continue
    lse = logsumexp_list(denominator)
    losses.append(_mean([-s[a, p] + lse for p in positives]))
  return _finish(losses)


# ---------------------------------------------------------------------------
# 3. NSCL (negatives-only supervised contrastive) and the P1 code's
#    double-counting "ContrastiveLoss"
# ---------------------------------------------------------------------------


def nscl(z, labels, temperature=1.0, positive_in_denominator=False,
         include_self_pairs=False, normalize="sphere") -> tuple[float, int]:
  """NSCL, paper form (default) or the authors' code form.

  P(a) as in ``dcl``; D(a) = {b : label(b) != label(a)}.
  Paper form:  l_a = mean_p [ -s_ap + log sum_{D(a)} e^{s_ab} ].
  Code form:   l_a = mean_p [ -s_ap + log(e^{s_ap} + sum_{D(a)} e^{s_ab}) ].
  Invalid anchor: D(a) empty (or P(a) empty, K == 1 without self pairs).
  Mean over valid anchors.
  """
  s, n, k = logit_matrix(z, temperature, normalize)
  labels = _check_labels(labels, n)
  vlab = _view_labels(labels, n, k)
  m = n * k
  losses = []
  for a in range(m):
    positives = _own_sample_positives(a, k, include_self_pairs)
    denominator = [s[a, b] for b in range(m) if vlab[b] != vlab[a]]
    if not positives or not denominator:
      continue
    terms = []
    for p in positives:
      if positive_in_denominator:
        lse = logsumexp_list([s[a, p]] + denominator)
      else:
        lse = logsumexp_list(denominator)
      terms.append(-s[a, p] + lse)
    losses.append(_mean(terms))
  return _finish(losses)


def cl_double_counted(z, temperature, normalize="sphere") -> tuple[float, int]:
  """P1 code's "ContrastiveLoss": the positive is counted twice.

  l_a = mean_{p in P(a)} [ -s_ap + log(e^{s_ap} + sum_{b != a} e^{s_ab}) ],
  P(a) = other views of a's sample (K >= 2). Mean over all N*K anchors.
  """
  s, n, k = logit_matrix(z, temperature, normalize)
  if k < 2:
    raise ValueError("cl_double_counted needs K >= 2 views")
  m = n * k
  losses = []
  for a in range(m):
    positives = _own_sample_positives(a, k, include_self=False)
    others = [s[a, b] for b in range(m) if b != a]
    terms = [-s[a, p] + logsumexp_list([s[a, p]] + others) for p in positives]
    losses.append(_mean(terms))
  return _finish(losses)


# ---------------------------------------------------------------------------
# 4. SupCon (Khosla et al.; Graf et al.)
# ---------------------------------------------------------------------------


def supcon(z, labels, temperature=0.1, variant="out", reduction="mean",
           same_class_weight=1.0, normalize="sphere") -> tuple[float, int]:
  """Supervised contrastive loss, L_out or L_in, K >= 1.

  P(a) = {b != a : label(b) == label(a)}.
  denominator(a) = sum_{b != a} w_b e^{s_ab}, w_b = same_class_weight if
  b in P(a) else 1 (terms with w_b == 0 are dropped).
  "out": l_a = mean_{p in P(a)} [-s_ap] + log denominator(a).
  "in":  l_a = -log(mean_{p in P(a)} e^{s_ap}) + log denominator(a).
  Invalid anchor: P(a) empty, or the denominator has no term.
  reduction: "mean" (over valid anchors), "sum" (over valid anchors),
  "batch" (sum over valid anchors / (N*K)).
  Returns (loss, num_valid_anchors).
  """
  if variant not in ("out", "in"):
    raise ValueError(f"variant must be 'out' or 'in'; got {variant!r}")
  if reduction not in ("mean", "sum", "batch"):
    raise ValueError(f"bad reduction {reduction!r}")
  w = float(same_class_weight)
  if w < 0:
    raise ValueError("same_class_weight must be >= 0")
  s, n, k = logit_matrix(z, temperature, normalize)
  labels = _check_labels(labels, n)
  vlab = _view_labels(labels, n, k)
  m = n * k
  losses = []
  for a in range(m):
    positives = [b for b in range(m) if b != a and vlab[b] == vlab[a]]
    # Denominator terms log(w_b e^{s_ab}) = s_ab + log w_b, zero weights dropped.
    log_terms = []
    for b in range(m):
      if b == a:
        continue
      if b in positives:
        if w > 0:
          log_terms.append(s[a, b] + math.log(w))
      else:
        log_terms.append(s[a, b])
    if not positives or not log_terms:
      continue
    log_denominator = logsumexp_list(log_terms)
    if variant == "out":
      numerator = _mean([-s[a, p] for p in positives])
    else:
      pos_logits = [s[a, p] for p in positives]
      numerator = -(logsumexp_list(pos_logits) - math.log(len(pos_logits)))
    losses.append(numerator + log_denominator)
  valid = len(losses)
  if valid == 0:
    return 0.0, 0
  total = float(sum(losses))
  if reduction == "mean":
    return total / valid, valid
  if reduction == "sum":
    return total, valid
  return total / m, valid


# ---------------------------------------------------------------------------
# 5. Hard-negative contrastive losses (Jiang et al. P3; Robinson et al.)
# ---------------------------------------------------------------------------


def _hard_sets(a, n, k, vlab, labels_given, negatives, include_self_positive):
  """Positive list P(a) and negative pool Q(a) for ``hard_contrastive``."""
  m = n * k
  if labels_given:
    positives = [b for b in range(m) if vlab[b] == vlab[a]
                 and (include_self_positive or b != a)]
  else:
    positives = _own_sample_positives(a, k, include_self=False)
  if negatives == "different_class":
    pool = [b for b in range(m) if vlab[b] != vlab[a]]
  else:
    pool = list(range(m))
  return positives, pool


def _hard_setup(z, labels, negatives, temperature, normalize):
  if negatives not in ("different_class", "all"):
    raise ValueError("negatives must be 'different_class' or 'all'")
  s, n, k = logit_matrix(z, temperature, normalize)
  if labels is None:
    if negatives != "all":
      raise ValueError("labels=None requires negatives='all'")
    if k < 2:
      raise ValueError("labels=None requires K >= 2 views")
    vlab = None
  else:
    labels = _check_labels(labels, n)
    vlab = _view_labels(labels, n, k)
  return s, n, k, vlab


def _pair_losses(s, a, positives, expectation):
  """log(1 + E_a / e^{s_ap}) for every positive p, computed stably."""
  out = []
  log_e = math.log(expectation)
  for p in positives:
    t = log_e - s[a, p]
    out.append(float(np.logaddexp(0.0, t)))  # log(1 + e^t)
  return out


def hard_contrastive(z, labels, beta=0.0, negatives="different_class",
                     temperature=1.0, normalize="ball",
                     include_self_positive=True) -> tuple[float, int]:
  """SCL/HSCL (negatives="different_class") and UCL/HUCL ("all"), exact.

  P(a) = {b : label(b) == label(a)} (a itself included iff
  include_self_positive); with labels=None, P(a) = other views of a's sample
  (K >= 2, negatives must be "all"; include_self_positive is then ignored).
  Q(a): "different_class" -> {b : label(b) != label(a)}; "all" -> every view.
  q_a(b) = e^{beta s_ab} / sum_{b' in Q(a)} e^{beta s_ab'};
  E_a = sum_{b in Q(a)} q_a(b) e^{s_ab};
  pair loss = log(1 + E_a / e^{s_ap}); loss = mean over all (anchor,
  positive) pairs of valid anchors. Invalid anchor: P(a) or Q(a) empty.
  Returns (loss, num_valid_anchors).
  """
  s, n, k, vlab = _hard_setup(z, labels, negatives, temperature, normalize)
  if vlab is None:
    vlab = list(range(n * k))  # unused for pools when negatives == "all"
  m = n * k
  pair_losses = []
  valid = 0
  for a in range(m):
    positives, pool = _hard_sets(a, n, k, vlab, labels is not None, negatives,
                                 include_self_positive)
    if not positives or not pool:
      continue
    valid += 1
    # Tilted weights, max subtracted: q(b) = exp(beta s_ab - max) / Z.
    tilt = [beta * s[a, b] for b in pool]
    tmax = max(tilt)
    weights = [math.exp(t - tmax) for t in tilt]
    z_norm = sum(weights)
    expectation = 0.0
    for wb, b in zip(weights, pool):
      expectation += (wb / z_norm) * math.exp(s[a, b])
    pair_losses.extend(_pair_losses(s, a, positives, expectation))
  if not pair_losses:
    return 0.0, 0
  return _mean(pair_losses), valid


def hard_contrastive_outside(z, labels, beta=0.0, negatives="different_class",
                             temperature=1.0, normalize="ball",
                             include_self_positive=True) -> tuple[float, int]:
  """Jiang et al.'s k = 1 objective, the expectation outside the log.

  Sets P(a), Q(a) and weights q_a(b) as in ``hard_contrastive``; pair loss
  = sum_{b in Q(a)} q_a(b) log(1 + e^{s_ab - s_ap}); loss = mean over all
  (anchor, positive) pairs of valid anchors. Returns (loss, num_valid).
  """
  s, n, k, vlab = _hard_setup(z, labels, negatives, temperature, normalize)
  if vlab is None:
    vlab = list(range(n * k))
  pair_losses = []
  valid = 0
  for a in range(n * k):
    positives, pool = _hard_sets(a, n, k, vlab, labels is not None, negatives,
                                 include_self_positive)
    if not positives or not pool:
      continue
    valid += 1
    tmax = max(beta * s[a, b] for b in pool)
    weights = [math.exp(beta * s[a, b] - tmax) for b in pool]
    z_norm = sum(weights)
    for p in positives:
      total = 0.0
      for wb, b in zip(weights, pool):
        total += (wb / z_norm) * float(np.logaddexp(0.0, s[a, b] - s[a, p]))
      pair_losses.append(total)
  if not pair_losses:
    return 0.0, 0
  return _mean(pair_losses), valid


def hard_contrastive_sampled_given_indices(
    z, labels, neg_indices, beta=0.0, negatives="different_class",
    temperature=1.0, normalize="ball", include_self_positive=True,
    check_pool=True) -> tuple[float, int]:
  """``hard_contrastive`` with E_a = mean_m e^{s_{a, neg_indices[a, m]}}.

  ``neg_indices`` is int[N*K, M] of flattened view indices (the draws of the
  sampled estimator). ``beta`` is accepted for call-compatibility and unused
  (the tilt only affects how the indices were drawn). Anchor validity is the
  same as in ``hard_contrastive``; rows of invalid anchors are ignored. With
  ``check_pool`` a ValueError is raised if a valid anchor's index lies outside
  its pool Q(a). Returns (loss, num_valid_anchors).
  """
  del beta
  s, n, k, vlab = _hard_setup(z, labels, negatives, temperature, normalize)
  if vlab is None:
    vlab = list(range(n * k))
  m = n * k
  neg_indices = np.asarray(neg_indices)
  if neg_indices.ndim != 2 or neg_indices.shape[0] != m:
    raise ValueError(f"neg_indices must be [N*K={m}, M]; got "
                     f"{neg_indices.shape}")
  pair_losses = []
  valid = 0
  for a in range(m):
    positives, pool = _hard_sets(a, n, k, vlab, labels is not None, negatives,
                                 include_self_positive)
    if not positives or not pool:
      continue
    valid += 1
    draws = [int(j) for j in neg_indices[a]]
    if check_pool:
      for j in draws:
        if j not in pool:
          raise ValueError(f"anchor {a}: index {j} is not in its pool")
    expectation = _mean([math.exp(s[a, j]) for j in draws])
    pair_losses.extend(_pair_losses(s, a, positives, expectation))
  if not pair_losses:
    return 0.0, 0
  return _mean(pair_losses), valid


def debiased_contrastive(z, beta=1.0, tau_plus=0.1, temperature=0.5,
                         normalize="sphere") -> tuple[float, int]:
  """Robinson et al. (2021) hard-negative debiased contrastive loss.

  P(a) = other views of a's sample; Q(a) = {b : sample(b) != sample(a)},
  Nneg = |Q(a)|; w_b = e^{beta s_ab};
  reweighted = sum_Q w_b e^{s_ab} / mean_Q w_b;
  N_g = max((-tau_plus Nneg e^{s_ap} + reweighted) / (1 - tau_plus),
            Nneg e^{-1/temperature});
  pair loss = -log(e^{s_ap} / (e^{s_ap} + N_g)); mean over all (a, p) pairs.
  Invalid anchor: P(a) or Q(a) empty. Returns (loss, num_valid_anchors).
  """
  s, n, k = logit_matrix(z, temperature, normalize)
  m = n * k
  pair_losses = []
  valid = 0
  for a in range(m):
    positives = _own_sample_positives(a, k, include_self=False)
    pool = [b for b in range(m) if b // k != a // k]
    if not positives or not pool:
      continue
    valid += 1
    n_neg = len(pool)
    weights = [math.exp(beta * s[a, b]) for b in pool]
    mean_w = sum(weights) / n_neg
    reweighted = sum(wb * math.exp(s[a, b])
                     for wb, b in zip(weights, pool)) / mean_w
    for p in positives:
      pos = math.exp(s[a, p])
      n_g = (-tau_plus * n_neg * pos + reweighted) / (1.0 - tau_plus)
      n_g = max(n_g, n_neg * math.exp(-1.0 / temperature))
      pair_losses.append(-math.log(pos / (pos + n_g)))
  if not pair_losses:
    return 0.0, 0
  return _mean(pair_losses), valid


# ---------------------------------------------------------------------------
# 6. Cross-entropy
# ---------------------------------------------------------------------------


def cross_entropy(logits, labels) -> tuple[float, int]:
  """mean_i -log softmax(logits[i])[labels[i]]; returns (loss, N)."""
  logits = np.array(logits, dtype=np.float64)
  if logits.ndim != 2:
    raise ValueError("logits must be [N, C]")
  labels = _check_labels(labels, logits.shape[0])
  losses = []
  for i in range(logits.shape[0]):
    row = [float(x) for x in logits[i]]
    losses.append(-(row[int(labels[i])] - logsumexp_list(row)))
  return _finish(losses)


# ---------------------------------------------------------------------------
# 7. H-SCL 2022 (rjiang03/H-SCL, docs/conventions.md#hscl-2022)
# ---------------------------------------------------------------------------


def hscl_2022(z, labels, beta=1.0, temperature=0.5, normalize="sphere",
              weights_from=None) -> tuple[float, int]:
  """Mean over (anchor a, positive p) pairs of

    -log(e^{s_ap} / (e^{s_ap} + (N K - 2) sum_j w_j e^{s_aj} / sum_j w_j)),

  positives p = the other views with a's label, j over the views with another
  label, w_j = exp(beta s_aj). ``weights_from`` (an array like ``z``) computes
  the weights from those embeddings instead, so finite differences in ``z``
  with ``weights_from=z0`` give the gradient with detached weights. Anchors
  without a negative are invalid.
  """
  s, n, k = logit_matrix(z, temperature, normalize)
  s_w = s if weights_from is None else logit_matrix(
      weights_from, temperature, normalize)[0]
  vlab = _view_labels(_check_labels(labels, n), n, k)
  m = n * k
  multiplier = m - 2
  pair_losses = []
  valid = 0
  for a in range(m):
    positives = [b for b in range(m) if b != a and vlab[b] == vlab[a]]
    negatives = [b for b in range(m) if vlab[b] != vlab[a]]
    if not negatives:
      continue
    valid += 1
    weights = [math.exp(beta * s_w[a, j]) for j in negatives]
    tilted = sum(w * math.exp(s[a, j])
                 for w, j in zip(weights, negatives)) / sum(weights)
    for p in positives:
      pos = math.exp(s[a, p])
      pair_losses.append(-math.log(pos / (pos + multiplier * tilted)))
  if not pair_losses:
    return 0.0, 0
  return _mean(pair_losses), valid
