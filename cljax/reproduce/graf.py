"""Graf, Hofer, Niethammer, Kwitt 2021 (SupCon vs cross-entropy), over seeds.

Two sweeps: SupCon vs CE under shared seeds (``experiments/
graf_supcon_vs_ce.py``; the runs of one seed see the same batches and start
from the same encoder, so SupCon − CE is paired by seed), and iterations to
fit noisy labels against the noise rate (``graf_noisy_labels.py``). The
colab ``colabs/graf.ipynb`` fits the growth exponent per seed and reports
every number as a mean with its Student-t interval.

Two claims do not hold at the cpu budget, so ``attempts("cpu")`` makes one
deliberate attempt at each with a larger one (``attempt_summary`` reads
them; no colab): SupCon trained 4x longer (does it approach the simplex?),
and CE's iterations to fit on a training set 3.5x larger (5 000 images
instead of 1 437: does memorisation then grow about linearly with p?).

>>> [(s.name, s.seeds) for s in sweeps("cpu")]
[('supcon_vs_ce', 5), ('noisy', 5)]
>>> [(s.name, s.seeds) for s in attempts("cpu")]
[('attempt_simplex', 3), ('attempt_ce_noise', 3)]
"""

from __future__ import annotations

from cljax import stats
from cljax.reproduce import _attempt
from cljax.reproduce import _base
from cljax.reproduce import _render

COLAB = "colabs/graf.ipynb"
_LOSSES = 'loss.name=["supcon","cross_entropy"]'
# Measured cost at cpu scale, one run per CPU core: a noisy point 24-33 s
# (60 runs for 5 seeds), a supcon_vs_ce run 35-65 s (10 runs).
_NOISE = "data.label_noise=[0.0,0.2,0.4,0.6,0.8,1.0]"
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


def sweeps(scale: str) -> list[_base.Sweep]:
  """'tiny': one noisy sweep (2 losses, p = 0.3, 2 seeds) doubles as both."""
  if scale == "tiny":
    return [_base.Sweep("noisy", "experiments/graf_noisy_labels.py:tiny",
                        grid=(_LOSSES, "data.label_noise=[0.3]"), seeds=2)]
  preset = ":cpu" if scale == "cpu" else ""
  return [
      _base.Sweep("supcon_vs_ce",
                  f"experiments/graf_supcon_vs_ce.py{preset}",
                  grid=(_LOSSES,), seeds=5),
      _base.Sweep("noisy", f"experiments/graf_noisy_labels.py{preset}",
                  grid=(_LOSSES, _NOISE), seeds=5),
  ]


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


def _seed_exponents(sweep_dir: str, loss: str) -> tuple[dict, list[dict]]:
  """``{seed: k}`` of ``a + b p^k`` over the noise rates each seed fit."""
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
  return exponents, rows


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
  exponents, rows = _seed_exponents(ce_dir, "cross_entropy")
  return {"simplex": simplex,
          "ce_noise": {"fit": rows, "exponents": exponents,
                       "exponent": (_attempt.interval(exponents.values())
                                    if exponents else None)}}


def colab_env(dirs: dict[str, str], *, summary: str,
              figures: str) -> dict[str, str]:
  """Curves and paired differences from ``supcon_vs_ce`` (else ``noisy``)."""
  runs = dirs.get("supcon_vs_ce", dirs["noisy"])
  return {"CLJAX_GRAF_RUNS": runs, "CLJAX_GRAF_PAIRED": runs,
          "CLJAX_GRAF_SWEEP": dirs["noisy"], "CLJAX_SUMMARY": summary,
          "CLJAX_FIGURES": figures}


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


def claims(summary: dict, *, scale: str | None = None) -> list[_base.Claim]:
  """P2's claims, from paired differences and exponents over seeds.

  At ``scale="tiny"`` every claim reads ``_render.NOT_JUDGED``.
  """
  summary = _render.bounded(summary, BOUNDS)
  out = []
  for group in summary["paired"][:1]:
    dist = group["metrics"]["eval/simplex/distance"]
    acc = group["metrics"]["fit/test_acc"]
    where = f" at {_where(group)}" if group["overrides"] else ""
    out.append(_base.Claim(
        "P2", "SupCon's class means end closer to a regular simplex than "
        "CE's",
        f"SupCon − CE simplex distance{where}, paired by seed: "
        f"{_render.cell(dist)} ({dist['n']} seeds); test accuracy "
        f"SupCon − CE {_render.cell(acc)}", _render.below(dist, 0.0)))
  exponent = summary["exponent"]
  for name, claim, verdict in (
      ("supcon", "SupCon's iterations to fit grow superlinearly with the "
       "label-noise rate (exponent k > 1)",
       lambda iv: _render.above(iv, 1.0)),
      ("CE", "CE's iterations to fit grow roughly linearly (k in [0.5, 1.5])",
       lambda iv: _within(iv, 0.5, 1.5))):
    iv = exponent.get(name)
    measured = (f"k fitted per seed: {_render.cell(iv, '.2f')} ({iv['n']} "
                f"seeds)" if iv else "fewer than 2 seeds with 3 fitted "
                "noise rates: no interval")
    out.append(_base.Claim("P2", claim, measured, verdict(iv)))
  paired = summary["exponent_paired"]
  out.append(_base.Claim(
      "P2", "SupCon's fit time grows faster with the noise than CE's",
      (f"k(SupCon) − k(CE), paired by seed: {_render.cell(paired, '.2f')}"
       if paired else "no seed fit both at 3 or more noise rates"),
      _render.above(paired, 0.0)))
  return _render.judged(out + _attempt_claims(summary.get("attempts")), scale)


def _attempt_claims(attempts: dict | None) -> list[_base.Claim]:
  """The larger-budget attempts' verdicts (none before they ran)."""
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
  out = [_base.Claim(
      "P2", f"attempt: trained SupCon approaches the regular simplex with a "
      f"larger budget ({long} instead of {short} iterations)",
      f"simplex distance after {long}: {_render.cell(dist)} ({dist['n']} "
      f"seeds; near: < {SIMPLEX_NEAR}); change from {short}, paired by "
      f"seed: {_render.cell(change)}", verdict)]
  ce = attempts["ce_noise"]
  iv = ce["exponent"]
  out.append(_base.Claim(
      "P2", "attempt: CE's iterations to fit grow roughly linearly (k in "
      "[0.5, 1.5]) on a 3.5x larger training set (5 000 images)",
      (f"k fitted per seed: {_render.cell(iv, '.2f')} ({iv['n']} seeds)"
       if iv else "no seed fit 3 or more noise rates: no exponent; seeds "
       "fitted per noise rate: " + ", ".join(
           f"p={r['p']:g}: {r.get('fitted', '?')}/{r['n']}"
           for r in ce["fit"])),
      _within(iv, 0.5, 1.5)))
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


def render(summary: dict, *, scale: str, commands: list[str],
           figures: str) -> str:
  """``experiments/results/graf.md`` from the colab's JSON."""
  summary = _render.bounded(summary, BOUNDS)
  note = ("2 seeds (tiny: a check that the pipeline runs)" if scale == "tiny"
          else "5 seeds for both sweeps, 3 for each attempt")
  parts = [_render.header(
      "Graf, Hofer, Niethammer, Kwitt 2021 (SupCon vs cross-entropy)",
      scale=scale, seeds=note),
      "## Commands\n", _render.commands(commands),
      "\n## Claims\n", _render.claims(claims(summary, scale=scale))]
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
  parts += _attempt_section(summary.get("attempts"))
  parts += ["\n## Figures\n",
            "Drawn by the colab: curves are means over seeds with 95 % "
            "Student-t bands, points means with 95 % Student-t error bars.\n",
            _render.figure_list(figures, ["graf_curves", "graf_angular",
                                          "graf_noisy_fit"])]
  return "\n".join(parts) + "\n"
