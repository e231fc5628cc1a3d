"""P2's claims judged from the colab's JSON, each against its null.

The judges of ``cljax.reproduce.graf`` (which re-exports them with their
thresholds and :data:`BOUNDS`): signed class means against the regular
simplex and non-negative ones against the orthogonal frame, each judged
against random class means of the same dimension and class count
(:func:`vs_null`); the growth of the iterations to fit noisy labels by the
per-seed exponent and a comparison of growth laws by AICc
(:func:`superlinear`, :func:`roughly_linear`). Every single-interval verdict
is a rule of ``cljax.reproduce._render`` (``above``, ``below``, ``within``,
``combine``), as for the other papers.
"""

from __future__ import annotations

from cljax.analysis import stats
from cljax.reproduce import _base
from cljax.reproduce import _render

_N, _U = _render.NONNEGATIVE, _render.UNIT
# The ranges the quantities cannot leave (``_render.bounded``): accuracies
# and angular similarities in [0, 1], distances and steps >= 0. Paired
# differences (``paired``) and exponents are not bounded.
BOUNDS = [
    (("models", "*", "fit/train_acc"), _U),
    (("models", "*", "fit/test_acc"), _U),
    (("models", "*", "eval/simplex/distance"), _N),
    (("models", "*", "eval/simplex/angular_mean"), _U),
    (("noisy", "*", "fit_step"), _N),
    (("attempts", "simplex", "eval/simplex/distance"), _N),
    (("attempts", "simplex", "eval/simplex/angular_std"), _N),
    (("attempts", "ce_noise", "fit", "*", "fit_step"), _N),
    (("attempts", "ce_noise", "fit", "*", "train_acc"), _U),
]
# The same for the sections the colab writes since the nulls (geometry
# against random means, the slow regime). Kept apart from BOUNDS, whose
# every path must reach the committed JSON
# (tests/reproduce/test_reproduce.py), until that JSON is rerun with them;
# ``claims`` and ``render`` apply both.
NEW_BOUNDS = [
    (("geometry", "*", "models", "*", "*"), _N),
    (("geometry", "*", "null", "random_means", "etf_distance"), _N),
    (("geometry", "*", "null", "random_means",
      "orthogonal_frame_distance"), _N),
    (("regimes", "*", "noisy", "*", "fit_step"), _N),
]
# What a claims cell says when the summary predates the nulls (the shared
# wording of ``_render``).
NO_NULL = _render.NULL_MISSING
UNDECIDED_NO_NULL = _render.NO_NULL
# A growth model is preferred when its AICc (AIC with fewer than 5 points)
# is lower by more than this (Burnham & Anderson: below 2, weak evidence).
AIC_MARGIN = 2.0
# "Approaches the simplex": the attempt's distance interval lies below this.
SIMPLEX_NEAR = 0.1


def vs_null(trained: dict | None, null: dict | None) -> str:
  """'yes' if ``trained`` lies wholly below ``null``, 'no' if wholly above.

  Both are interval dicts (a distance: lower is closer). 'undecided' when
  they overlap or either has fewer than 2 values.

  >>> iv = lambda lo, hi: {"mean": (lo + hi) / 2, "low": lo, "high": hi,
  ...                      "n": 5}
  >>> vs_null(iv(0.1, 0.2), iv(0.3, 0.4)), vs_null(iv(0.7, 0.9), iv(0.3, 0.4))
  ('yes', 'no')
  """
  if not trained or not null or min(trained.get("n", 0),
                                     null.get("n", 0)) < 2:
    return "undecided"
  if trained["high"] < null["low"]:
    return "yes"
  return "no" if trained["low"] > null["high"] else "undecided"


def _groups(summary: dict, features: str) -> list[dict]:
  return [g for g in summary.get("geometry") or []
          if g.get("features") == features]


def _frames(group: dict, metric: str) -> str:
  null = group["null"]
  return (f"random class means ({null['random_means']['kind']}, "
          f"{null['random_means']['n']} draws, C = {group['classes']}, D = "
          f"{group['dim']}): {_render.cell(null['random_means'][metric])}; "
          f"orthonormal frame {null['orthonormal_frame'][metric]:.3g}; "
          f"regular simplex {null['simplex'][metric]:.3g}")


def _simplex_claims(summary: dict) -> list[_base.Claim]:
  """Signed features vs the simplex; non-negative ones vs the orthogonal
  frame; each trained distance judged against random class means."""
  out = []
  signed = _groups(summary, "signed")
  if not signed:  # A summary from before the nulls: report, do not judge.
    for group in summary.get("paired", [])[:1]:
      dist = group["metrics"]["eval/simplex/distance"]
      out.append(_base.Claim(
          "P2", "SupCon's class means end closer to a regular simplex than "
          "CE's", f"SupCon − CE simplex distance, paired by seed: "
          f"{_render.cell(dist)} ({dist['n']} seeds)", UNDECIDED_NO_NULL,
          NO_NULL))
  for group in signed:
    where = f"{group['features']} features, {group['data']}"
    for model in ("supcon", "CE"):
      iv = group["models"].get(model, {}).get("etf_distance")
      if iv is None:
        continue
      null = group["null"]["random_means"]["etf_distance"]
      out.append(_base.Claim(
          "P2", f"{_LABEL[model]}'s class means approach a regular simplex "
          f"({where})", f"ETF distance of the class means: "
          f"{_render.cell(iv)} ({iv['n']} seeds){_farther(iv, null)}",
          vs_null(iv, null),
          _frames(group, "etf_distance") + "; judged against the random "
          "means (yes: wholly below them, no: wholly above)"))
    paired = (group.get("paired") or {}).get("etf_distance")
    if paired:
      closer = _render.below(paired, 0.0)
      beats = vs_null(group["models"].get("supcon", {}).get("etf_distance"),
                      group["null"]["random_means"]["etf_distance"])
      note = ""
      if closer == "yes" and beats != "yes":
        closer, note = "partly", ("; closer than CE, but SupCon is not "
                                  "closer than random class means")
      out.append(_base.Claim(
          "P2", f"SupCon's class means end closer to a regular simplex than "
          f"CE's ({where})", f"SupCon − CE ETF distance, paired by seed: "
          f"{_render.cell(paired)} ({paired['n']} seeds){note}", closer,
          "two draws of random means differ by 0 in expectation; SupCon "
          "must also beat the random means (" + _frames(
              group, "etf_distance") + ")"))
  nonneg = _groups(summary, "non-negative")
  if not nonneg:  # Not run at this scale, or a JSON from before the nulls.
    old = "geometry" not in summary
    out.append(_base.Claim(
        "P2", "On non-negative (post-ReLU) features SupCon's class means "
        "approach an orthogonal frame (Kini et al. 2024), not a simplex",
        "no non-negative-feature runs in this JSON",
        UNDECIDED_NO_NULL if old else "undecided",
        NO_NULL if old else "no runs: nothing to compare"))
  for group in nonneg:
    iv = group["models"].get("supcon", {}).get("orthogonal_frame_distance")
    etf = group["models"].get("supcon", {}).get("etf_distance")
    if iv is None:
      continue
    null = group["null"]["random_means"]["orthogonal_frame_distance"]
    out.append(_base.Claim(
        "P2", f"On non-negative (post-ReLU) features SupCon's class means "
        f"approach an orthogonal frame (Kini et al. 2024) ({group['data']})",
        f"orthogonal-frame distance: {_render.cell(iv)} ({iv['n']} seeds)"
        f"{_farther(iv, null)}; ETF distance {_render.cell(etf)}",
        vs_null(iv, null),
        _frames(group, "orthogonal_frame_distance") + "; judged against "
        "the random non-negative means"))
  return out


_LABEL = {"supcon": "SupCon", "CE": "CE"}


def _farther(trained: dict | None, null: dict | None) -> str:
  """The note a 'no' against the random means carries in ``measured``."""
  return ("; farther than random class means" if vs_null(trained, null)
          == "no" else "")


def _growth_text(growth: dict | None) -> str:
  if not growth:
    return NO_NULL
  crit = growth["criterion"].upper().replace("AICC", "AICc")
  delta = ", ".join(f"{m} {growth['delta'][m]:+.1f}"
                    for m in stats.GROWTH_MODELS)
  k = growth["models"]["power"]["params"]["k"]
  return (f"growth laws on the {growth['n']} pooled points, {crit} minus "
          f"the best: {delta} (best: {growth['best']}; pooled power-law k "
          f"{k:.2f}); a linear law is k = 1")


def _at_bound(block: dict, model: str) -> str:
  at = (block.get("exponent_at_bound") or {}).get(model)
  return (f"; {at['at_bound']} of {at['n']} seeds at the search bound"
          if at else "")


def superlinear(k: dict | None, growth: dict | None) -> str:
  """Verdict on "grows superlinearly": k > 1 and the power law preferred.

  'yes' when the per-seed interval of k lies above 1 and the pooled points
  prefer the power law by AICc; 'no' when k lies wholly below 1, or a
  linear or saturating law beats the power law by more than ``AIC_MARGIN``;
  'undecided' without a model comparison (fewer than 3 noise rates).
  """
  if not growth:
    return "undecided"
  kv = _render.above(k, 1.0)
  if kv == "no" or growth["delta"]["power"] > AIC_MARGIN:
    return "no"
  if kv == "yes" and growth["best"] == "power":
    return "yes"
  return "undecided"


def roughly_linear(k: dict | None, growth: dict | None) -> str:
  """Verdict on "grows roughly linearly" (k in [0.5, 1.5]).

  'yes' when the pooled points prefer the linear law by AICc (or the power
  law with k's interval inside [0.5, 1.5]); 'no' when k's interval lies
  wholly outside [0.5, 1.5], or the saturating law beats the linear one by
  more than ``AIC_MARGIN``; 'undecided' without a model comparison.
  """
  if not growth:
    return "undecided"
  kv = _render.within(k, 0.5, 1.5)
  if kv == "no" or (growth["best"] == "saturating"
                    and growth["delta"]["linear"] > AIC_MARGIN):
    return "no"
  if growth["best"] == "linear" or (growth["best"] == "power"
                                    and kv == "yes"):
    return "yes"
  return "undecided"


def _fit_claims(block: dict, where: str) -> list[_base.Claim]:
  """The three fit-time claims of one noisy regime (``block``)."""
  out = []
  exponent, growth = block.get("exponent") or {}, block.get("growth") or {}
  # A JSON from before the model comparison has no "growth" at all: its
  # verdicts are not judged against a null.
  has_null = "growth" in block
  for name, claim, verdict in (
      ("supcon", "SupCon's iterations to fit grow superlinearly with the "
       "label-noise rate (k > 1, power law preferred)", superlinear),
      ("CE", "CE's iterations to fit grow roughly linearly (k in "
       "[0.5, 1.5], or a line preferred)", roughly_linear)):
    iv = exponent.get(name)
    how = ("fitted freely" if has_null else "of a JSON that searched k "
           "from 0.25 up,")
    measured = (f"k {how} per seed: {_render.cell(iv, '.2f')} "
                f"({iv['n']} seeds{_at_bound(block, name)})" if iv else
                "fewer than 2 seeds with 3 fitted noise rates: no interval")
    g = growth.get(name)
    out.append(_base.Claim(
        "P2", claim + where, measured,
        verdict(iv, g) if has_null else UNDECIDED_NO_NULL,
        _growth_text(g) if g or not has_null else
        "fewer than 3 fitted noise rates: no growth laws to compare"))
  paired = block.get("exponent_paired")
  verdict = (_render.above(paired, 0.0) if growth else "undecided"
             if has_null else UNDECIDED_NO_NULL)
  out.append(_base.Claim(
      "P2", "SupCon's fit time grows faster with the noise than CE's" + where,
      (f"k(SupCon) − k(CE), paired by seed: {_render.cell(paired, '.2f')}"
       if paired else "no seed fit both at 3 or more noise rates"), verdict,
      ("the same growth law for both gives 0; " + "; ".join(
          f"{_LABEL[m]}: best law {growth[m]['best']}" for m in growth))
      if growth else "fewer than 3 fitted noise rates: no growth laws to "
      "compare" if has_null else NO_NULL))
  return out


def claims(summary: dict, *, scale: str | None = None) -> list[_base.Claim]:
  """P2's claims, each judged against its null where it is about learning.

  The simplex claim is split by feature sign: signed features against the
  regular simplex, non-negative (post-ReLU) ones against the orthogonal
  frame; a trained distance is judged against that of random class means of
  the same dimension and class count ('no' when the trained means are
  farther). The fit-time claims rest on the free per-seed exponent and a
  linear / power-law / saturating comparison by AICc. A summary written
  before the nulls gets 'undecided: no null'. At ``scale="tiny"`` every
  claim reads ``_render.NOT_JUDGED``.
  """
  summary = _render.bounded(summary, BOUNDS + NEW_BOUNDS)
  out = _simplex_claims(summary)
  rule = summary.get("fit_rule")
  out += _fit_claims(summary, f" (lr 0.1; fit: {rule})" if rule else "")
  for name, block in (summary.get("regimes") or {}).items():
    out += _fit_claims(block, f" ({block.get('label', name)})")
  signed = _groups(summary, "signed")
  null = signed[0]["null"]["random_means"]["etf_distance"] if signed else None
  return _render.judged(out + _attempt_claims(summary.get("attempts"), null),
                        scale)


def _attempt_claims(attempts: dict | None,
                    null: dict | None = None) -> list[_base.Claim]:
  """The larger-budget attempts' verdicts (none before they ran).

  ``null``: the random class means' ETF distance of the signed-feature
  sweep (same dimension and classes as the attempt); without it the
  simplex attempt reads 'undecided: no null'.
  """
  if not attempts:
    return []
  simplex = attempts["simplex"]
  dist = simplex["eval/simplex/distance"]
  change = simplex["eval/simplex/distance/change"]
  short, long = simplex["steps"]
  near = _render.below(dist, SIMPLEX_NEAR)
  closer = _render.below(change, 0.0)
  verdict = ("yes" if near == "yes" else "partly: closer, not near"
             if closer == "yes" else _render.combine([near, closer]))
  if null is None:
    verdict = UNDECIDED_NO_NULL
  elif vs_null(dist, null) == "no":
    verdict = "no"
  out = [_base.Claim(
      "P2", f"attempt: trained SupCon approaches the regular simplex with a "
      f"larger budget ({long} instead of {short} iterations)",
      f"simplex distance after {long}: {_render.cell(dist)} ({dist['n']} "
      f"seeds; near: < {SIMPLEX_NEAR}){_farther(dist, null)}; change from "
      f"{short}, paired by seed: {_render.cell(change)}", verdict,
      (f"random class means (same C and D): {_render.cell(null)}"
       if null else NO_NULL))]
  ce = attempts["ce_noise"]
  iv, growth = ce["exponent"], ce.get("growth")
  out.append(_base.Claim(
      "P2", "attempt: CE's iterations to fit grow roughly linearly (k in "
      "[0.5, 1.5]) on a 3.5x larger training set (5 000 images)",
      (f"k fitted per seed: {_render.cell(iv, '.2f')} ({iv['n']} seeds)"
       if iv else "no seed fit 3 or more noise rates: no exponent; seeds "
       "fitted per noise rate: " + ", ".join(
           f"p={r['p']:g}: {r.get('fitted', '?')}/{r['n']}"
           for r in ce["fit"])),
      ("undecided" if not iv else roughly_linear(iv, growth)
       if "growth" in ce else UNDECIDED_NO_NULL),
      _growth_text(growth)))
  return out

