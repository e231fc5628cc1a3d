"""Graf, Hofer, Niethammer, Kwitt 2021 (SupCon vs cross-entropy), over seeds.

Two sweeps: SupCon vs CE under shared seeds (``experiments/
graf_supcon_vs_ce.py``; the runs of one seed see the same batches and start
from the same encoder, so SupCon − CE is paired by seed), and iterations to
fit noisy labels against the noise rate (``graf_noisy_labels.py``). The
colab ``colabs/graf.ipynb`` fits the growth exponent per seed and reports
every number as a mean with its Student-t interval.

>>> [(s.name, s.seeds) for s in sweeps("cpu")]
[('supcon_vs_ce', 5), ('noisy', 3)]
"""

from __future__ import annotations

from cljax.reproduce import _base
from cljax.reproduce import _render

COLAB = "colabs/graf.ipynb"
_LOSSES = 'loss.name=["supcon","cross_entropy"]'
# Why the noisy sweep has 3 seeds at cpu scale: its one-seed run of 12
# points took 14 min on 2 shared cores (~70 s a point), so 5 seeds would
# take 70 min; 3 seeds take 42 min. supcon_vs_ce: ~4-7 min a run, 10 runs.
NOISY_SEEDS_WHY = ("3 seeds for the noise sweep: a point costs ~70 s on 2 "
                   "shared CPU cores (the one-seed 12-point sweep took 14 "
                   "min), so 5 seeds would take 70 min")


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
                  grid=(_LOSSES,
                        "data.label_noise=[0.0,0.2,0.4,0.6,0.8,1.0]"),
                  seeds=3),
  ]


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


def claims(summary: dict) -> list[_base.Claim]:
  """P2's claims, from paired differences and exponents over seeds."""
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
  return out


def render(summary: dict, *, scale: str, commands: list[str],
           figures: str) -> str:
  """``experiments/results/graf.md`` from the colab's JSON."""
  note = ("2 seeds (tiny: a check that the pipeline runs)" if scale == "tiny"
          else f"5 seeds for SupCon vs CE; {NOISY_SEEDS_WHY}")
  parts = [_render.header(
      "Graf, Hofer, Niethammer, Kwitt 2021 (SupCon vs cross-entropy)",
      scale=scale, seeds=note),
      "## Commands\n", _render.commands(commands),
      "\n## Claims\n", _render.claims(claims(summary))]
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
  parts += ["\n## Figures\n",
            "Drawn by the colab: curves are means over seeds with 95 % "
            "Student-t bands, points means with 95 % Student-t error bars.\n",
            _render.figure_list(figures, ["graf_curves", "graf_angular",
                                          "graf_noisy_fit"])]
  return "\n".join(parts) + "\n"
