"""P1's claims judged from the colab's JSON, each against its null.

The judges of ``cljax.reproduce.luthra`` (which re-exports :data:`THRESHOLDS`,
:data:`RULES`, :data:`BOUNDS`, :data:`NEW_BOUNDS` and :func:`claims`): every
verdict goes through the interval rules of ``cljax.reproduce._render``
(``above``, ``below``, ``within``, ``combine``, ``all_of``), as graf's, jiang's
and unconstrained's do, so one seed (or a missing interval) is 'undecided'
here as there. Theorem 1 is a theorem check (a deterministic inequality, no
null); (f) is a property of the bound, judged only on features whose
m -> infinity floor does not fix the answer.

>>> sorted(THRESHOLDS)  # doctest: +NORMALIZE_WHITESPACE
['etf_share', 'exponent_excess', 'fewshot_margin', 'gap_over_null',
 'nscl_share', 'tightness']
"""

from __future__ import annotations

from cljax.reproduce import _base
from cljax.reproduce import _render
from cljax.reproduce._render import cell

# Thresholds of the verdicts. Every claim about learning is judged against
# its null (what the same measurement reads without the effect), never
# against a fixed value that the null also passes.
THRESHOLDS = {
    # (b) the exact gap of the trained features is at least 1.1x the gap of
    # the same features with permuted labels at every C (the class structure
    # the encoder learnt adds at least 10 % to what batch composition gives).
    "gap_over_null": 1.1,
    # (b) the log-log exponent of the trained gap minus the null's (paired
    # by seed) below 0.25: the trained gap falls with C about as fast as the
    # class-agnostic one or faster.
    "exponent_excess": 0.25,
    # (c) the DCL run achieves at least 80 % of the decrease of NSCL that
    # NSCL training itself achieves ...
    "nscl_share": 0.8,
    # (c) ... judged only where the NSCL run covers at least half the way
    # from its start to the ETF minimum (Theorem 2).
    "etf_share": 0.5,
    # (e) "similar few-shot error": |error(DCL) - error(NSCL)| below 0.05 at
    # the largest m (a paired difference, both ends of its interval), with
    # the error below the permuted-label null's.
    "fewshot_margin": 0.05,
    # (f) "tight estimate": the 2-way bound at the largest m at most 3x the
    # measured 2-way NCC error (per-seed ratio); not judged on features whose
    # m -> infinity floor 4 x directional CDNV already exceeds 3x the error.
    "tightness": 3.0,
}
# The rules, as the rendered text states them.
RULES = (
    "Rules: (a) per seed, atanh r(DCL, NSCL) of the DCL run minus atanh of "
    "the null r (the run's NSCL curve against the NSCL curve of the DCL run "
    "of another seed: a decreasing curve unrelated to this run); 'yes' if "
    "the paired interval lies above 0. (b) per dataset, at every C the "
    "per-seed ratio exact gap / permuted-label gap (same features, same "
    "class counts) above gap_over_null, and the paired difference of the "
    "log-log exponents (trained − null) below exponent_excess. (c) the "
    "share of the NSCL run's decrease reached by the DCL run above "
    "nscl_share, judged only where the NSCL run covers at least etf_share "
    "of the way from the start to the ETF minimum. (e) the paired error "
    "differences inside ±fewshot_margin and the DCL run's NCC error below "
    "the permuted-label null's. (f) the per-seed ratio bound/error below "
    "tightness, on feature sets whose m → ∞ floor 4 × directional CDNV / "
    "error is not already above it. Theorem 1 is a theorem check (no null).")
_N, _U = _render.NONNEGATIVE, _render.UNIT
# The ranges the quantities cannot leave (``_render.bounded``): their
# intervals are clipped to them. Gaps are left alone: DCL - NSCL >= 0 is
# Theorem 1, which the runs test, not a definition.
BOUNDS = [
    (("paired", "*", "pearson_dcl_nscl"), (-1.0, 1.0)),
    (("paired", "*", "bound_final"), _N),
    (("paired", "*", "exact_bound_final"), _N),
    (("fewshot", "*", "cdnv"), _N),
    (("fewshot", "*", "directional_cdnv"), _N),
    (("fewshot", "*", "error_ncc_Cway", "*"), _U),
    (("fewshot", "*", "error_ncc_2way", "*"), _U),
    (("fewshot", "*", "error_probe_2way", "*"), _U),
    (("fewshot", "*", "error_bound_2way", "*"), _N),
    *[((sweep, key, "*"), bounds)
      for sweep in ("gap_vs_classes", "gap_vs_classes_digits")
      for key, bounds in (("ncc_test_acc", _U), ("batch_bound", _N),
                          ("exact_bound", _N), ("class_blind_gap", _N))],
    *[((sweep, fit, "r2"), (None, 1.0))
      for sweep in ("gap_vs_classes", "gap_vs_classes_digits")
      for fit in ("fit_per_batch", "fit_exact")],
    (("temperature", "batch_bound", "*"), _N),
    (("attempts", "fewshot", "error"), _U),
    *[(("attempts", "fewshot", key), _N)
      for key in ("bound", "ratio", "cdnv", "directional_cdnv")],
]
# Paths the colab writes since the nulls: kept apart from BOUNDS, whose every
# path must reach the committed JSON (tests/reproduce/test_reproduce.py),
# until that JSON is rerun with them; ``claims`` and ``render`` apply both.
NEW_BOUNDS = [(("attempts", "fewshot", "floor_ratio"), _N)]


# --- verdicts: every claim about learning against its null -----------------


def seeds_of(summary: dict) -> int:
  """The number of seeds the colab's summary was measured over."""
  return len(summary.get("seeds", []))


def _theorem1(summary: dict) -> _base.Claim:
  t1 = summary["theorem1"]
  ok = (t1["min_gap"] >= 0 and t1["max_gap_over_bound"] <= 1 and
        t1["exact_min_gap"] >= 0 and t1["exact_max_gap_over_bound"] <= 1)
  return _base.Claim(
      "P1", "Theorem 1: 0 ≤ DCL − NSCL ≤ log(1 + e^{2/τ}/(C − 1)) for any "
      "encoder, at every logged step",
      f"a theorem check (a deterministic inequality, no learning in it): "
      f"{t1['steps']} logged batches of {t1['runs']} runs: min gap "
      f"{t1['min_gap']:.3g}, max gap/bound {t1['max_gap_over_bound']:.3f}; "
      f"{t1['exact_values']} exact whole-split values: min "
      f"{t1['exact_min_gap']:.3g}, max gap/bound "
      f"{t1['exact_max_gap_over_bound']:.3f}",
      "yes" if ok else "no (an inequality violated)",
      "— (a theorem check: it holds for every encoder, so it has no null)")


def _claim_a(summary: dict) -> _base.Claim | None:
  """(a): r(DCL, NSCL) against r of NSCL with an unrelated curve.

  Rule: per seed, ``atanh r(DCL, NSCL)`` of the DCL run minus ``atanh`` of
  the null r, the Pearson r of the same run's NSCL curve with the NSCL curve
  of the DCL run of another seed (same trend, other initialisation and
  batches: a decreasing curve unrelated to this run's losses); 'yes' when
  the paired interval of that difference lies above 0 (DCL follows NSCL
  beyond the shared downward trend), 'no' below 0, else 'undecided'. Rows:
  the paired sweep and, where measured, its C = 2 and MNIST versions
  (``paired_c2``, ``paired_mnist``), combined by ``_render.combine``.
  """
  rows = [(summary["paired"].get("dcl"), "")]
  rows += [(summary.get(key, {}).get("dcl"), label)
           for key, label in (("paired_c2", " (C = 2)"),
                              ("paired_mnist", " (MNIST)"))]
  rows = [(run, label) for run, label in rows if run]
  if not rows:
    return None
  parts, nulls, verdicts = [], [], []
  for run, label in rows:
    r = run["pearson_dcl_nscl"]
    text = (f"r(DCL, NSCL) over the DCL run{label} {cell(r, '.4f')} "
            f"({r['n']} seeds)")
    if "pearson_null" not in run or "pearson_z_minus_null" not in run:
      parts.append(text)
      nulls.append(f"{_render.NULL_MISSING}")
      verdicts.append(_render.NO_NULL)
      continue
    diff = run["pearson_z_minus_null"]
    ranges = run.get("gap_range_over_nscl_range")
    parts.append(text + f", paired atanh r − atanh r_null "
                 f"{cell(diff, '.3f')}" + (
                     f", range of the gap / range of NSCL "
                     f"{cell(ranges, '.3f')} (r ≈ 1 follows from Theorem 1 "
                     f"when this is small)" if ranges else ""))
    nulls.append(f"r of NSCL with an unrelated decreasing loss (NSCL of the "
                 f"DCL run of another seed){label} "
                 f"{cell(run['pearson_null'], '.4f')}")
    verdicts.append(_render.above(diff, 0.0))
  holds = _render.combine_rows(verdicts)
  no_null = holds == _render.NO_NULL
  return _base.Claim(
      "P1", "(a) CL and NSCL are highly correlated over training",
      "; ".join(parts) + ("" if no_null else
                          "; rule: 'yes' if the paired interval lies above 0"),
      holds,
      "; ".join(nulls) + ("" if no_null else "; judged against it"))


def _claim_b(summary: dict) -> _base.Claim | None:
  """(b): the exact gap against the permuted-label gap, per C and exponent.

  Rule, per dataset: (i) at every C, the per-seed ratio of the exact
  whole-split gap to the gap of the same features with the labels permuted
  (class-agnostic: only the batch's class counts remain) has its interval
  above ``THRESHOLDS["gap_over_null"]`` ('no' at a C whose interval lies
  below it); (ii) the paired difference of the log-log exponents, trained
  minus null, has its interval below ``THRESHOLDS["exponent_excess"]`` (the
  trained gap falls with C at least about as fast as the null's; 'no' above).
  A dataset is 'yes' when every part is and 'no' when any is
  (``_render.all_of``); the claim combines the datasets
  (``_render.combine_rows``: 'partly' when some are 'yes').
  """
  verdicts, parts, nulls = [], [], []
  for key, label in GAP_SECTIONS:
    g = summary.get(key)
    if not g or "fit_exact" not in g:
      continue
    p = g["fit_exact"]["loglog_exponent"]
    text = (f"{label}: exact-gap exponent {cell(p, '.2f')} over C = "
            f"{', '.join(str(int(c)) for c in g['C'])} ({len(g['C'])} points, "
            f"2-parameter fit)")
    if "exact_gap_over_null" not in g or "exponent_minus_null" not in g:
      verdicts.append(_render.NO_NULL)
      parts.append(text)
      nulls.append(f"{label}: {_render.NULL_MISSING}")
      continue
    ratios = g["exact_gap_over_null"]
    verdicts.append(_render.all_of(
        [_render.above(r, THRESHOLDS["gap_over_null"]) for r in ratios] +
        [_render.below(g["exponent_minus_null"],
                       THRESHOLDS["exponent_excess"])]))
    parts.append(text + "; gap / null per C: " + ", ".join(
        f"{int(c)}: {cell(r, '.2f')}" for c, r in zip(g["C"], ratios))
        + f"; exponent − null exponent {cell(g['exponent_minus_null'], '.2f')}")
    nulls.append(f"{label}: permuted-label gap, exponent "
                 f"{cell(g['fit_exact_null']['loglog_exponent'], '.2f')}")
  if not verdicts:
    return None
  holds = _render.combine_rows(verdicts)
  return _base.Claim(
      "P1", "(b) the gap decays like O(1/C)",
      "; ".join(parts) + f" ({seeds_of(summary)} seeds; rule: gap/null "
      f"above {THRESHOLDS['gap_over_null']} at every C and exponent − null "
      f"exponent below {THRESHOLDS['exponent_excess']})",
      holds, "; ".join(nulls) + (
          "" if holds == _render.NO_NULL else "; judged against it"))


def _claim_c(summary: dict, key: str, label: str) -> _base.Claim | None:
  """(c) at one C: the DCL run's NSCL decrease against the NSCL run's.

  Rule: 'yes' when the per-seed share of the NSCL run's own decrease that
  the DCL run reaches has its interval above ``THRESHOLDS["nscl_share"]``
  and the NSCL run covers at least ``THRESHOLDS["etf_share"]`` of the way
  from the start to the ETF minimum (interval above it); 'no' when the
  share's interval lies below its threshold; 'undecided' when the NSCL run
  itself stays short of that (closeness to a value neither run approaches
  says little). The null is the untrained start (share 0 of the way).
  """
  reached = summary.get(key, {})
  if "dcl" not in reached or "nscl" not in reached:
    return None
  share = reached["dcl"]["share_of_nscl_decrease"]
  claim = (f"(c) minimising CL brings NSCL close to what minimising NSCL "
           f"reaches{label}")
  measured = (f"share of the NSCL run's NSCL decrease reached by the DCL run "
              f"{cell(share, '.3f')} ({share['n']} seeds)")
  way = {k: reached[k].get("share_of_etf_way") for k in ("dcl", "nscl")}
  if way["nscl"] is None:
    return _base.Claim("P1", claim, measured, _render.NO_NULL,
                       _render.NULL_MISSING)
  measured += (f"; share of the way from the start to the ETF minimum "
               f"{reached['etf_minimum']:.3f}: DCL run "
               f"{cell(way['dcl'], '.3f')}, NSCL run "
               f"{cell(way['nscl'], '.3f')}")
  etf = reached.get("etf_distance")
  if etf:
    measured += "; ETF distance of the class means: " + ", ".join(
        f"{k} {cell(v, '.3f')}" for k, v in etf.items())
  measured += (f"; rule: share above {THRESHOLDS['nscl_share']} and the NSCL "
               f"run at least {THRESHOLDS['etf_share']} of the way")
  v_share = _render.above(share, THRESHOLDS["nscl_share"])
  v_way = _render.above(way["nscl"], THRESHOLDS["etf_share"])
  if v_share == "no":
    holds = "no"
  elif v_way != "yes":
    holds = "undecided: the NSCL run covers too little of the way"
  else:
    holds = v_share
  null = (f"untrained start {cell(reached.get('start'), '.3f')} (share 0 "
          f"of the way)")
  if "etf_distance_random_means" in reached:
    null += (f"; ETF distance of random class means "
             f"{reached['etf_distance_random_means']:.3f}, of an orthonormal "
             f"frame {reached['etf_distance_orthonormal_frame']:.3f}")
  return _base.Claim("P1", claim, measured, holds, null + "; judged against it")


def _claim_e(summary: dict) -> _base.Claim | None:
  """(e): similar few-shot error, where the features beat chance.

  Rule: 'yes' when the paired 2-way error difference DCL − NSCL at the
  largest m lies inside ±``THRESHOLDS["fewshot_margin"]`` for NCC and the
  probe, and the DCL run's NCC error lies below the null's (the same
  features with permuted labels); 'no' when a difference lies outside or
  the error is not below the null's.
  """
  fs = summary.get("fewshot", {})
  fdiff = fs.get("paired_difference", {}).get("dcl-nscl")
  if not fdiff:
    return None
  m, margin = fs["shots"][-1], THRESHOLDS["fewshot_margin"]
  v = [_render.within(fdiff["ncc_2way"][-1], -margin, margin),
       _render.within(fdiff["probe_2way"][-1], -margin, margin)]
  measured = (f"paired 2-way error DCL − NSCL at m = {m}: NCC "
              f"{cell(fdiff['ncc_2way'][-1], '.3f')}, {fs['probe']} "
              f"{cell(fdiff['probe_2way'][-1], '.3f')} (margin ±{margin})")
  null_err = fs.get("dcl", {}).get("error_ncc_2way_null")
  if null_err is None:
    return _base.Claim("P1", "(e) CL and NSCL features give similar few-shot "
                       "error", measured, _render.NO_NULL,
                       _render.NULL_MISSING)
  below_null = fs["dcl"].get("error_minus_null")
  measured += (f"; DCL NCC error − null {cell(below_null, '.3f')} (must be "
               f"below 0)")
  v.append(_render.below(below_null, 0.0))
  return _base.Claim(
      "P1", "(e) CL and NSCL features give similar few-shot error", measured,
      _render.combine(v),
      f"2-way NCC error of the DCL features with permuted labels "
      f"{cell(null_err, '.3f')}; judged against it")


# (f)'s verdict on a feature set whose m -> infinity floor already exceeds
# the tightness threshold: the bound's finite-m terms cannot change it.
NOT_TIGHT = "undecided: not tight by construction"


def _tight(ratio: dict | None, floor: dict | None) -> str:
  """(f)'s rule for one feature set: bound/error below ``tightness``.

  'yes' / 'no' as ``_render.below`` of the per-seed ratio; :data:`NOT_TIGHT`
  where the floor 4 x directional CDNV / error lies wholly above the
  threshold (the features fixed the answer, not the bound).
  """
  if _render.above(floor, THRESHOLDS["tightness"]) == "yes":
    return NOT_TIGHT
  return _render.below(ratio, THRESHOLDS["tightness"])


def _fewshot_row(f: dict, m: int, label: str):
  """(verdict, text) of the tightness of one feature set's bound at m."""
  ratio = f.get("bound_over_error_2way")
  floor = f.get("floor_over_error_2way")
  text = (f"{label}, m = {m}: bound {cell(f['error_bound_2way'][-1])} vs "
          f"error {cell(f['error_ncc_2way'][-1], '.3f')}, directional CDNV "
          f"{cell(f.get('directional_cdnv'), '.3f')}")
  if ratio is None or floor is None:
    return _render.NO_NULL, text + " (no per-seed ratio in this JSON)"
  text += (f", bound/error {cell(ratio[-1])} (per seed), m → ∞ floor "
           f"4·directional CDNV/error {cell(floor[-1])}")
  return _tight(ratio[-1], floor[-1]), text


def _claim_f(summary: dict) -> _base.Claim | None:
  """(f): the 2-way bound against the measured NCC error.

  A property of the bound (its validity is a theorem check): 'yes' when the
  per-seed ratio bound/error at the largest m has its interval below
  ``THRESHOLDS["tightness"]``, 'no' above; a feature set whose m → ∞ floor
  of the bound, 4 (C' − 1) × directional CDNV, is already above that many
  times the error is not judged (the answer 'no' was fixed by the features,
  not by the bound). Rows: the paired DCL run and the collapsed SupCon
  encoders (``fewshot_collapsed``).
  """
  fs = summary.get("fewshot", {})
  rows = []
  if "dcl" in fs:
    rows.append((fs["dcl"], fs["shots"][-1], "DCL run"))
  col = summary.get("fewshot_collapsed")
  if col:
    rows.append((col, col["shots"][-1], f"collapsed {col['loss']} on "
                 f"{col['dataset']}"))
  if not rows:
    return None
  judged = [_fewshot_row(*row) for row in rows]
  heads = [v for v, _ in judged]
  decided = [v for v in heads if v in ("yes", "no", "undecided")]
  if all(v == _render.NO_NULL for v in heads):
    holds = _render.NO_NULL
  elif decided:
    holds = _render.combine(decided)
  else:
    holds = f"{NOT_TIGHT} on every feature set"
  return _base.Claim(
      "P1", "(f) the CDNV few-shot bound is a tight estimate of the 2-way "
      "NCC error",
      "; ".join(t for _, t in judged) + f" (tight: bound/error ≤ "
      f"{THRESHOLDS['tightness']}; a row whose floor already exceeds it is "
      f"not judged)", holds,
      "— (a property of the bound, not of learning; the m → ∞ floor is "
      "shown per row)")


def _claim_attempt(summary: dict) -> _base.Claim | None:
  attempt = summary.get("attempts", {}).get("fewshot")
  if not attempt:
    return None
  short, long = attempt["steps"]
  floor = attempt.get("floor_ratio")
  verdict = _tight(attempt["ratio"], floor)
  return _base.Claim(
      "P1", f"attempt: (f) with a larger budget ({long} instead of {short} "
      f"steps of DCL training)",
      f"m = {attempt['shots']}: bound {cell(attempt['bound'])} vs error "
      f"{cell(attempt['error'], '.3f')}, bound/error "
      f"{cell(attempt['ratio'])} (per seed; tight: ≤ "
      f"{THRESHOLDS['tightness']}), m → ∞ floor 4·directional CDNV/error "
      f"{cell(floor)}; directional CDNV "
      f"{cell(attempt['directional_cdnv'], '.3f')}, change from {short} "
      f"steps paired by seed "
      f"{cell(attempt['directional_cdnv/change'], '.3f')}",
      verdict, "— (a property of the bound, not of learning)")


# The summary sections of (b) and of (c), with the label of each.
GAP_SECTIONS = (("gap_vs_classes", "image mixture"),
                ("gap_vs_classes_digits", "digits"),
                ("gap_vs_classes_mnist", "MNIST"))
REACHED = (("nscl_reached", ""), ("nscl_reached_c2", " (C = 2)"),
           ("nscl_reached_mnist", " (MNIST)"))


def claims(summary: dict, *, scale: str | None = None) -> list[_base.Claim]:
  """P1's claims judged from the colab's JSON ``summary``.

  Each claim about learning is judged against its null (the rule is in its
  row and in the docstrings of ``_claim_a`` .. ``_claim_f``); Theorem 1 and
  (f) are properties of the losses and of the bound, not of learning, and
  say so. A summary written before the nulls were measured renders each
  null as ``_render.NULL_MISSING`` and its verdict as ``_render.NO_NULL``.
  At ``scale="tiny"`` every claim reads ``_render.NOT_JUDGED``.
  """
  summary = _render.bounded(summary, BOUNDS + NEW_BOUNDS)
  out = [_theorem1(summary), _claim_b(summary), _claim_a(summary)]
  out += [_claim_c(summary, key, label) for key, label in REACHED]
  out += [_claim_e(summary), _claim_f(summary), _claim_attempt(summary)]
  return _render.judged([c for c in out if c is not None], scale)

