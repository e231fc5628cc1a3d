"""Graf, Hofer, Niethammer, Kwitt 2021 (SupCon vs cross-entropy), over seeds.

Sweeps (``sweeps("cpu")``):

* ``supcon_vs_ce``: SupCon vs CE under shared seeds (``experiments/
  graf_supcon_vs_ce.py:cpu``; the runs of one seed see the same batches and
  start from the same encoder, so SupCon − CE is paired by seed); the MLP's
  last layer is affine, so the features are *signed* and the class means
  can form the centred regular simplex P2 proves optimal;
* ``nonneg``: the same with ``activate_final=True`` (post-ReLU features,
  like P2's ResNet-18): non-negative class means cannot form a centred
  simplex, and SupCon's minimisers are then an orthogonal frame (Kini et
  al., ICLR 2024), the claim this sweep judges;
* ``mnist``: the same on real images, MNIST with a small ConvNet (pooled
  post-ReLU features: non-negative), 3 seeds;
* ``noisy``: iterations to fit noisy labels against the noise rate
  (``graf_noisy_labels.py:cpu``, lr 0.1); ``noisy_slow``: the same at lr
  0.01 (``:cpu_slow``), a regime where neither loss fits instantly.

Both losses are judged "fit" by one rule (P2's ``retrained_linear``, a
bias-free linear layer retrained on the frozen objective features,
``evals.fit.classifier="linear"``).
The colab ``colabs/graf.ipynb`` fits the growth exponent per seed (free, no
search floor), compares linear, power-law and saturating growth by AICc,
and measures every geometry against its null (random class means of the
same dimension and class count, drawn 50 times, and the exact frames) with
``cljax.geometry``.

Two claims did not hold at the cpu budget, so ``attempts("cpu")`` makes one
deliberate attempt at each with a larger one (``attempt_summary`` reads
them; no colab): SupCon trained 4x longer (does it approach the simplex?),
and CE's iterations to fit on a training set 3.5x larger (5 000 images
instead of 1 437: does memorisation then grow about linearly with p?).

>>> [s.name for s in sweeps("cpu")], [s.seeds for s in sweeps("cpu")]
(['supcon_vs_ce', 'nonneg', 'mnist', 'noisy', 'noisy_slow'], [5, 5, 3, 5, 3])
>>> [(s.name, s.seeds) for s in sweeps("tiny")]
[('noisy', 2), ('nonneg', 2)]
>>> [(s.name, s.seeds) for s in attempts("cpu")]
[('attempt_simplex', 3), ('attempt_ce_noise', 3)]
"""

from __future__ import annotations

from cljax.analysis import stats
from cljax.reproduce import _attempt
from cljax.reproduce import _base
from cljax.reproduce import _render

COLAB = "colabs/graf.ipynb"
_LOSSES = 'loss.name=["supcon","cross_entropy"]'
# Measured cost at cpu scale, one run per CPU core: a noisy point 24-33 s
# (60 runs for 5 seeds), a supcon_vs_ce run 35-65 s (10 runs); nonneg as
# supcon_vs_ce (10 runs, ~8 min); noisy_slow (lr 0.01): about 20 s per 1000
# iterations, at most 10 000, so 36 runs of 0.5-3.5 min (30-60 min on 2
# cores); mnist: 100 ConvNet iterations with one evaluation took 48 s, so a
# 1000-iteration run with 10 evaluations (the fit check embeds all 60 000
# training images) about 5-7 min, 6 runs ~20 min on 2 cores. With the
# attempts about 2-2.5 hours on 2 cores: if over, cut noisy_slow's steps
# (its unfitted points then read as lower bounds), never its null.
_NOISE = "data.label_noise=[0.0,0.2,0.4,0.6,0.8,1.0]"
_NONNEG = "model.encoder_kwargs.activate_final=True"
# The attempts' budgets: SupCon 4x the cpu preset's 1000 iterations (its
# poly-5 schedule stretched to 4000); CE on the 5000 training images of the
# SupCon-vs-CE data (noise 0.1), every image in the fit check, at most 6000
# iterations, at four noise rates (enough to fit a + b p^k per seed).
SIMPLEX_STEPS = 4000
SIMPLEX_NEAR = 0.1   # "approaches the simplex": distance interval below this
CE_DATA = "cljax_gaussian_mixture/images_c10"
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
# every path must reach the committed JSON (tests/reproduce/test_reproduce.py), until
# that JSON is rerun with them; ``claims`` and ``render`` apply both.
NEW_BOUNDS = [
    (("geometry", "*", "models", "*", "*"), _N),
    (("geometry", "*", "null", "random_means", "etf_distance"), _N),
    (("geometry", "*", "null", "random_means",
      "orthogonal_frame_distance"), _N),
    (("regimes", "*", "noisy", "*", "fit_step"), _N),
]
# What a claims cell says when the summary predates the nulls.
NO_NULL = "not measured in this JSON"
UNDECIDED_NO_NULL = "undecided: no null"
# A growth model is preferred when its AICc (AIC with fewer than 5 points)
# is lower by more than this (Burnham & Anderson: below 2, weak evidence).
AIC_MARGIN = 2.0


def sweeps(scale: str) -> list[_base.Sweep]:
  """The sweeps of ``scale``.

  'tiny': the noisy sweep (2 losses, p = 0.3, 2 seeds; its signed-feature
  runs double as SupCon vs CE and as the slow regime) and ``nonneg`` (2
  losses, 2 seeds, post-ReLU features); no MNIST (tests never download it).
  """
  if scale == "tiny":
    return [_base.Sweep("noisy", "experiments/graf_noisy_labels.py:tiny",
                        grid=(_LOSSES, "data.label_noise=[0.3]"), seeds=2),
            _base.Sweep("nonneg", "experiments/graf_supcon_vs_ce.py:tiny",
                        grid=(_LOSSES,), seeds=2, overrides=(_NONNEG,))]
  preset = ":cpu" if scale == "cpu" else ""
  out = [
      _base.Sweep("supcon_vs_ce",
                  f"experiments/graf_supcon_vs_ce.py{preset}",
                  grid=(_LOSSES,), seeds=5),
      _base.Sweep("nonneg", f"experiments/graf_supcon_vs_ce.py{preset}",
                  grid=(_LOSSES,), seeds=5, overrides=(_NONNEG,)),
  ]
  if scale == "cpu":
    out.append(_base.Sweep("mnist", "experiments/graf_supcon_vs_ce.py:mnist",
                           grid=(_LOSSES,), seeds=3))
  out.append(_base.Sweep("noisy", f"experiments/graf_noisy_labels.py{preset}",
                         grid=(_LOSSES, _NOISE), seeds=5))
  if scale == "cpu":
    out.append(_base.Sweep("noisy_slow",
                           "experiments/graf_noisy_labels.py:cpu_slow",
                           grid=(_LOSSES, _NOISE), seeds=3))
  return out


def attempts(scale: str) -> list[_base.Sweep]:
  """The larger-budget attempts (cpu scale only; tiny reads its own runs)."""
  if scale != "cpu":
    return []
  return [
      _base.Sweep("attempt_simplex", "experiments/graf_supcon_vs_ce.py:cpu",
                  grid=('loss.name=["supcon"]',), seeds=3,
                  overrides=(f"steps={SIMPLEX_STEPS}", "eval_every=500",
                             "evals.fit.every=500")),
      _base.Sweep("attempt_ce_noise", "experiments/graf_noisy_labels.py:cpu",
                  grid=('loss.name=["cross_entropy"]',
                        "data.label_noise=[0.0,0.4,0.8,1.0]"), seeds=3,
                  overrides=(f"data.name={CE_DATA}",
                             "evals.geometry.num_train=5000", "steps=6000")),
  ]


def _seed_exponents(sweep_dir: str, loss: str):
  """``({seed: k}, rows, points)``: k of ``a + b p^k`` per seed, the table
  rows per noise rate, and every fitted ``(p, step)`` pooled over seeds."""
  by_p, rows, fits = {}, [], {}
  for run in _attempt.runs(sweep_dir, {"loss.name": loss}):
    p = float(run["overrides"]["data.label_noise"])
    by_p.setdefault(p, {})[run["seed"]] = run["summary"]
  for p, per_seed in sorted(by_p.items()):
    steps = {s: v.get("fit/step") for s, v in per_seed.items()}
    fitted = [v for v in steps.values() if v is not None]
    # The last train accuracy under the noisy labels: how far an unfitted
    # seed got within the budget.
    acc = [v["fit/train_acc"] for v in per_seed.values()
           if v.get("fit/train_acc") is not None]
    rows.append({"p": p, "n": len(steps), "fitted": len(fitted),
                 "all_fit": len(fitted) == len(steps),
                 "fit_step": _attempt.interval(fitted) if fitted else None,
                 "train_acc": _attempt.interval(acc) if acc else None})
    for seed, step in steps.items():
      if step is not None:
        fits.setdefault(seed, []).append((p, float(step)))
  exponents = {seed: stats.power_law_fit(*zip(*pts)).k
               for seed, pts in fits.items() if len(pts) >= 3}
  points = [pt for pts in fits.values() for pt in pts]
  return exponents, rows, points


def attempt_summary(dirs: dict[str, str], *, scale: str) -> dict:
  """The attempts' numbers; at tiny scale read from the ``noisy`` runs."""
  del scale
  base = dirs.get("supcon_vs_ce", dirs["noisy"])
  long_dir = dirs.get("attempt_simplex", base)
  where = {"loss.name": "supcon"}
  short, long = (_attempt.runs_by_seed(d, where)
                 for d in (base, long_dir))
  simplex = {"steps": [max(r["summary"]["step"] for r in short.values()),
                       max(r["summary"]["step"] for r in long.values())]}
  for metric in ("eval/simplex/distance", "eval/simplex/angular_std"):
    a = {s: r["summary"][metric] for s, r in long.items()}
    b = {s: r["summary"][metric] for s, r in short.items()}
    simplex[metric] = _attempt.interval(a.values())
    simplex[metric + "/change"] = _attempt.paired(a, b)
  ce_dir = dirs.get("attempt_ce_noise", dirs["noisy"])
  exponents, rows, points = _seed_exponents(ce_dir, "cross_entropy")
  # The growth laws compared on every fitted point (needs 3 noise rates).
  growth = (stats.growth_models(*zip(*points))
            if len({p for p, _ in points}) >= 3 else None)
  return {"simplex": simplex,
          "ce_noise": {"fit": rows, "exponents": exponents,
                       "exponent": (_attempt.interval(exponents.values())
                                    if exponents else None),
                       "growth": growth}}


def colab_env(dirs: dict[str, str], *, summary: str,
              figures: str) -> dict[str, str]:
  """Curves and paired differences from ``supcon_vs_ce`` (else ``noisy``).

  The geometry sweeps (``nonneg``, ``mnist``) and the slow noisy regime
  (``noisy_slow``) are passed when the scale has them (tiny: the ``noisy``
  runs stand for the slow regime).
  """
  runs = dirs.get("supcon_vs_ce", dirs["noisy"])
  return {"CLJAX_GRAF_RUNS": runs, "CLJAX_GRAF_PAIRED": runs,
          "CLJAX_GRAF_SWEEP": dirs["noisy"],
          "CLJAX_GRAF_SLOW": dirs.get("noisy_slow", dirs["noisy"]),
          "CLJAX_GRAF_NONNEG": dirs.get("nonneg", ""),
          "CLJAX_GRAF_MNIST": dirs.get("mnist", ""),
          "CLJAX_SUMMARY": summary, "CLJAX_FIGURES": figures}


def _within(interval: dict | None, low: float, high: float) -> str:
  """'yes' if the interval lies in [low, high], 'no' if wholly outside."""
  if not interval or interval.get("n", 0) < 2:
    return "undecided"
  if low <= interval["low"] and interval["high"] <= high:
    return "yes"
  outside = interval["high"] < low or interval["low"] > high
  return "no" if outside else "undecided"


def _where(group: dict) -> str:
  return ", ".join(f"{k}={v}" for k, v in group["overrides"].items())


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
  kv = _within(k, 0.5, 1.5)
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


def _attempt_section(attempts: dict | None) -> list[str]:
  """The attempts' tables (nothing before they ran)."""
  if not attempts:
    return []
  simplex, ce = attempts["simplex"], attempts["ce_noise"]
  short, long = simplex["steps"]
  rows = [[m.removeprefix("eval/simplex/"), _render.cell(simplex[m], ".4f"),
           _render.cell(simplex[m + "/change"], ".4f")]
          for m in ("eval/simplex/distance", "eval/simplex/angular_std")]
  parts = ["\n## Attempts with a larger budget\n",
           f"SupCon trained for {long} iterations instead of {short} "
           f"(sweep `attempt_simplex`; the cpu preset's data, encoder, "
           f"temperature 0.1 and poly-5 schedule, stretched):\n",
           _render.table(["metric", f"after {long} iterations",
                          f"change from {short}, paired by seed"], rows),
           f"\nCE's iterations to fit noisy labels on `{CE_DATA}` (5 000 "
           f"training images; sweep `attempt_ce_noise`, every image in the "
           f"fit check, at most 6 000 iterations):\n",
           _render.table(
               ["noise rate p", "seeds fitted", "fit step (fitted seeds)",
                "train acc at the end (noisy labels)"],
               [[f"{r['p']:.2f}", f"{r.get('fitted', '?')} of {r['n']}",
                 _render.cell(r["fit_step"], ".0f"),
                 _render.cell(r.get("train_acc"), ".3f")]
                for r in ce["fit"]]),
           f"\nGrowth exponent k of a + b p^k, fitted per seed: "
           f"{_render.cell(ce['exponent'], '.2f')}."]
  return parts


def _geometry_section(summary: dict) -> list[str]:
  """Trained class-mean geometry beside its nulls (nothing before them)."""
  groups = summary.get("geometry") or []
  if not groups:
    return []
  rows = []
  for g in groups:
    null = g["null"]
    for metric in ("etf_distance", "orthogonal_frame_distance"):
      cells = [_render.cell(g["models"].get(m, {}).get(metric), ".3f")
               for m in ("supcon", "CE")]
      rows.append([g["name"], f"{g['features']} ({g['data']})", metric,
                   *cells, _render.cell((g.get("paired") or {}).get(metric),
                                        ".3f"),
                   _render.cell(null["random_means"][metric], ".3f"),
                   f"{null['orthonormal_frame'][metric]:.3f}",
                   f"{null['simplex'][metric]:.3f}"])
  return ["\n## Class-mean geometry against its nulls\n",
          "Distances of the normalised class-mean Gram matrix (raw means, "
          "`cljax.geometry`) to the regular simplex (`etf_distance`) and to "
          "an orthogonal frame (`orthogonal_frame_distance`), beside the "
          "same distances of random class means (signed: Gaussian; "
          "non-negative: ReLU of Gaussian; same C and D) and of the exact "
          "frames:\n",
          _render.table(["sweep", "features", "distance", "SupCon", "CE",
                         "SupCon − CE (paired)", "random means",
                         "orthonormal frame", "regular simplex"], rows)]


def _growth_section(summary: dict) -> list[str]:
  """The growth laws compared by AICc, per regime (nothing before them)."""
  blocks = [("lr 0.1", summary)] + [
      (b.get("label", n), b) for n, b in (summary.get("regimes") or {}).items()]
  rows = []
  for label, block in blocks:
    for model, g in (block.get("growth") or {}).items():
      at = (block.get("exponent_at_bound") or {}).get(model)
      rows.append([label, model, g["n"], g["best"], *[
          f"{g['delta'][m]:+.1f}" for m in stats.GROWTH_MODELS],
          _render.cell((block.get("exponent") or {}).get(model), ".2f"),
          f"{at['at_bound']} of {at['n']}" if at else "—"])
  parts = []
  if rows:
    parts += ["\n## Growth of the iterations to fit: linear, power law or "
              "saturating\n",
              "Fitted on every (p, fit step) point of the fitted seeds "
              "(`cljax.analysis.stats.growth_models`; AICc minus the best's, < 2 is "
              "weak evidence); k of a + b p^k fitted freely per seed "
              "(`cljax.analysis.stats.power_law_fit`, searched over [1e-3, 1e3]):\n",
              _render.table(["regime", "model", "points", "best",
                             *[f"Δ {m}" for m in stats.GROWTH_MODELS],
                             "k per seed", "seeds at the search bound"],
                            rows)]
  for name, block in (summary.get("regimes") or {}).items():
    parts += [f"\n### Iterations to fit noisy labels: "
              f"{block.get('label', name)}\n", _render.table(
                  ["model", "noise rate p", "seeds", "all seeds fit?",
                   "fit step"],
                  [[r["model"], f"{r['p']:.2f}", r["n"],
                    "yes" if r["all_fit"] else "no (a lower bound)",
                    _render.cell(r["fit_step"], ".0f")]
                   for r in block.get("noisy", [])])]
  return parts


def render(summary: dict, *, scale: str, commands: list[str],
           figures: str) -> str:
  """``experiments/results/graf.md`` from the colab's JSON."""
  summary = _render.bounded(summary, BOUNDS + NEW_BOUNDS)
  note = ("2 seeds (tiny: a check that the pipeline runs)" if scale == "tiny"
          else "5 seeds for supcon_vs_ce, nonneg and noisy, 3 for mnist, "
          "noisy_slow and each attempt")
  parts = [_render.header(
      "Graf, Hofer, Niethammer, Kwitt 2021 (SupCon vs cross-entropy)",
      scale=scale, seeds=note),
      "## Commands\n", _render.commands(commands),
      "\n## Claims\n", _render.claims(claims(summary, scale=scale)),
      "\nEvery claim about learning is judged against its null: a "
      "trained class-mean geometry against random class means of the same "
      "dimension and class count (signed features against the regular "
      "simplex, non-negative ones against the orthogonal frame of Kini et "
      "al. 2024); a growth law of the iterations to fit against a line and "
      "a saturating curve (AICc), with the exponent k fitted freely per "
      "seed. Both losses are judged fit by one rule: "
      f"{summary.get('fit_rule') or NO_NULL} (`linear`: P2's "
      "retrained_linear on the frozen objective features)."]
  rows = [[_where(g) or "—", m, _render.cell(iv, ".4f")]
          for g in summary["paired"] for m, iv in g["metrics"].items()]
  parts += ["\n## SupCon − CE, paired by seed\n",
            _render.table(["point", "metric", "SupCon − CE"], rows)]
  metrics = sorted({k for v in summary["models"].values() for k in v})
  parts += ["\n## Final metrics per model\n", _render.table(
      ["model"] + metrics,
      [[name] + [_render.cell(v.get(m), ".4f") for m in metrics]
       for name, v in summary["models"].items()])]
  parts += ["\n## Iterations to fit noisy labels\n", _render.table(
      ["model", "noise rate p", "seeds", "all seeds fit?", "fit step"],
      [[r["model"], f"{r['p']:.2f}", r["n"], "yes" if r["all_fit"] else
        "no (a lower bound)", _render.cell(r["fit_step"], ".0f")]
       for r in summary["noisy"]])]
  parts += _geometry_section(summary)
  parts += _growth_section(summary)
  parts += _attempt_section(summary.get("attempts"))
  parts += ["\n## Figures\n",
            "Drawn by the colab: curves are means over seeds with 95 % "
            "Student-t bands, points means with 95 % Student-t error bars.\n",
            _render.figure_list(figures, ["graf_curves", "graf_angular",
                                          "graf_noisy_fit"] + (
                ["graf_noisy_fit_slow"] if summary.get("regimes") else []))]
  return "\n".join(parts) + "\n"
