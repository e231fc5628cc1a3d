"""Graf, Hofer, Niethammer, Kwitt 2021 (SupCon vs cross-entropy), over seeds.

Sweeps (``sweeps("cpu")``):

* ``supcon_vs_ce``: SupCon vs CE under shared seeds (``experiments/
  graf/supcon_vs_ce.py:cpu``; the runs of one seed see the same batches and
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
  (``graf/noisy_labels.py:cpu``, lr 0.1); ``noisy_slow``: the same at lr
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
# The judges, their thresholds and bounds live in _graf_claims (one module,
# one job); they are this paper's contract (``cljax.reproduce._base``).
from cljax.reproduce._graf_claims import AIC_MARGIN
from cljax.reproduce._graf_claims import BOUNDS
from cljax.reproduce._graf_claims import NEW_BOUNDS
from cljax.reproduce._graf_claims import NO_NULL
from cljax.reproduce._graf_claims import SIMPLEX_NEAR
from cljax.reproduce._graf_claims import UNDECIDED_NO_NULL
from cljax.reproduce._graf_claims import claims
from cljax.reproduce._graf_claims import roughly_linear
from cljax.reproduce._graf_claims import superlinear
from cljax.reproduce._graf_claims import vs_null

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
CE_DATA = "cljax_gaussian_mixture/images_c10"


def sweeps(scale: str) -> list[_base.Sweep]:
  """The sweeps of ``scale``.

  'tiny': the noisy sweep (2 losses, p = 0.3, 2 seeds; its signed-feature
  runs double as SupCon vs CE and as the slow regime) and ``nonneg`` (2
  losses, 2 seeds, post-ReLU features); no MNIST (tests never download it).
  """
  if scale == "tiny":
    return [_base.Sweep("noisy", "experiments/graf/noisy_labels.py:tiny",
                        grid=(_LOSSES, "data.label_noise=[0.3]"), seeds=2),
            _base.Sweep("nonneg", "experiments/graf/supcon_vs_ce.py:tiny",
                        grid=(_LOSSES,), seeds=2, overrides=(_NONNEG,))]
  preset = ":cpu" if scale == "cpu" else ""
  out = [
      _base.Sweep("supcon_vs_ce",
                  f"experiments/graf/supcon_vs_ce.py{preset}",
                  grid=(_LOSSES,), seeds=5),
      _base.Sweep("nonneg", f"experiments/graf/supcon_vs_ce.py{preset}",
                  grid=(_LOSSES,), seeds=5, overrides=(_NONNEG,)),
  ]
  if scale == "cpu":
    out.append(_base.Sweep("mnist", "experiments/graf/supcon_vs_ce.py:mnist",
                           grid=(_LOSSES,), seeds=3))
  out.append(_base.Sweep("noisy", f"experiments/graf/noisy_labels.py{preset}",
                         grid=(_LOSSES, _NOISE), seeds=5))
  if scale == "cpu":
    out.append(_base.Sweep("noisy_slow",
                           "experiments/graf/noisy_labels.py:cpu_slow",
                           grid=(_LOSSES, _NOISE), seeds=3))
  return out


def attempts(scale: str) -> list[_base.Sweep]:
  """The larger-budget attempts (cpu scale only; tiny reads its own runs)."""
  if scale != "cpu":
    return []
  return [
      _base.Sweep("attempt_simplex", "experiments/graf/supcon_vs_ce.py:cpu",
                  grid=('loss.name=["supcon"]',), seeds=3,
                  overrides=(f"steps={SIMPLEX_STEPS}", "eval_every=500",
                             "evals.fit.every=500")),
      _base.Sweep("attempt_ce_noise", "experiments/graf/noisy_labels.py:cpu",
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


def _where(group: dict) -> str:
  return ", ".join(f"{k}={v}" for k, v in group["overrides"].items())


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
