"""Jiang, Nguyen, Aeron, Ishwar 2024 (hard negatives; NC vs DC), over seeds.

The beta x negatives x normalisation sweep of ``experiments/
jiang_hardness.py`` on the Gaussian mixture and, at cpu scale, the same on
real images (preset ``cpu_digits``: scikit-learn's 8x8 digits). Runs of one
seed share batches and initialization across beta, so "largest beta minus
beta = 0" is paired by seed. ``colabs/jiang.ipynb`` recomputes every metric
from the checkpoints and writes them with Student-t intervals.

>>> [(s.name, s.seeds) for s in sweeps("cpu")]
[('beta', 5), ('digits', 5)]
"""

from __future__ import annotations

from cljax.reproduce import _base
from cljax.reproduce import _render

COLAB = "colabs/jiang.ipynb"
# At cpu scale a mixture point costs 40-90 s on one CPU core (two ran at a
# time, one per core). The paper's five betas x 2 x 3 would be 150 runs for 5
# seeds (about 1.5 hours of the 2-core machine); the cpu grid keeps the betas
# of the digits sweep, {0, 5, 30}, so 5 seeds are 90 runs.
BETA_SEEDS_WHY = ("5 seeds for the 18-point mixture grid (β in {0, 5, 30}; "
                  "the paper scale sweeps {0, 2, 5, 10, 30}): a point costs "
                  "40-90 s on one CPU core")
_BETAS = {"cpu": "[0,5,30]", "paper": "[0,2,5,10,30]"}
# The per-group metrics (columns of the final-metrics tables) and the ranges
# they cannot leave (``_render.bounded``): accuracies in [0, 1], ranks,
# distances and deviations >= 0. Paired differences are not bounded.
METRICS = (("mean_clf_test_acc", "mean-clf acc", ".3f", _render.UNIT),
           ("ncc_test_acc", "NCC acc", ".3f", _render.UNIT),
           ("rank", "rank", ".3g", _render.NONNEGATIVE),
           ("effective_rank", "eff. rank", ".3g", _render.NONNEGATIVE),
           ("nc1", "NC1", ".3g", _render.NONNEGATIVE),
           ("etf_distance", "ETF dist.", ".3f", _render.NONNEGATIVE),
           ("equal_inner_product", "equal-IP dev.", ".3f",
            _render.NONNEGATIVE),
           ("unit_norm", "unit-norm dev.", ".3f", _render.NONNEGATIVE),
           ("zero_sum", "zero-sum dev.", ".3f", _render.NONNEGATIVE))
BOUNDS = [((prefix + "groups", "*", "metrics", key), bounds)
          for prefix in ("", "digits_") for key, _, _, bounds in METRICS]


def sweeps(scale: str) -> list[_base.Sweep]:
  """'tiny': SCL at beta 0 and 5, and a 1-epoch digits run, 2 seeds each."""
  if scale == "tiny":
    return [
        _base.Sweep("beta", "experiments/jiang_hardness.py:tiny",
                    grid=("loss.kwargs.beta=[0.0,5.0]",), seeds=2),
        _base.Sweep("digits", "experiments/jiang_hardness.py:cpu_digits",
                    seeds=2, overrides=(
                        "epochs=1.0", "eval_every=7", "checkpoint.every=7",
                        "evals.geometry.num_train=256",
                        "evals.fewshot.episodes=2")),
    ]
  preset = ":cpu" if scale == "cpu" else ""
  out = [_base.Sweep(
      "beta", f"experiments/jiang_hardness.py{preset}",
      grid=('loss.kwargs.negatives=["different_class","all"]',
            f"loss.kwargs.beta={_BETAS[scale]}",
            'loss.kwargs.normalize=["ball","sphere","none"]'), seeds=5)]
  if scale == "cpu":
    out.append(_base.Sweep(
        "digits", "experiments/jiang_hardness.py:cpu_digits",
        grid=('loss.kwargs.negatives=["different_class","all"]',
              "loss.kwargs.beta=[0,5,30]"), seeds=5))
  return out


def colab_env(dirs: dict[str, str], *, summary: str,
              figures: str) -> dict[str, str]:
  env = {"CLJAX_SWEEP_DIR": dirs["beta"], "CLJAX_METRICS_OUT": summary,
         "CLJAX_FIGURE_DIR": figures}
  if "digits" in dirs:
    env["CLJAX_DIGITS_SWEEP_DIR"] = dirs["digits"]
  return env


def _group(groups, loss, normalize, beta):
  return next((g for g in groups if g["loss"] == loss and
               g["normalize"] == normalize and g["beta"] == beta), None)


def _paired(rows, loss, normalize):
  return next((p for p in rows if p["loss"] == loss and
               p["normalize"] == normalize), None)


def _claims_of(summary: dict, prefix: str, data: str) -> list[_base.Claim]:
  groups, paired = summary[f"{prefix}groups"], summary[f"{prefix}paired"]
  c = summary[f"{prefix}num_classes"] if prefix else summary["num_classes"]
  out = []
  norm = "ball" if _group(groups, "SCL", "ball", 0.0) else "sphere"
  scl = _group(groups, "SCL", norm, 0.0)
  if scl:
    rank = scl["metrics"]["rank"]
    out.append(_base.Claim(
        "P3", f"{data}: without hard negatives (SCL, β = 0), dimensional "
        f"collapse (class-mean rank < C − 1 = {c - 1})",
        f"rank {_render.cell(rank, '.3g')} ({rank['n']} seeds, {norm})",
        _render.below(rank, c - 1.5)))
  pair = _paired(paired, "SCL", norm)
  if pair:
    etf = pair["difference"]["etf_distance"]
    acc = pair["difference"]["mean_clf_test_acc"]
    beta = f"β = {pair['beta']:g}"
    out.append(_base.Claim(
        "P3", f"{data}: hard negatives move the class means towards the "
        f"simplex ETF (HSCL vs SCL, {norm})",
        f"ETF distance, {beta} − β = 0 paired by seed: {_render.cell(etf)} "
        f"({etf['n']} seeds)", _render.below(etf, 0.0)))
    out.append(_base.Claim(
        "P3", f"{data}: hard negatives raise the mean-classifier test "
        f"accuracy ({norm})",
        f"accuracy, {beta} − β = 0 paired by seed: {_render.cell(acc)} "
        f"({acc['n']} seeds)", _render.above(acc, 0.0)))
  return out


def claims(summary: dict, *, scale: str | None = None) -> list[_base.Claim]:
  """P3's claims on the mixture and, when run, on the digits.

  At ``scale="tiny"`` every claim reads ``_render.NOT_JUDGED``.
  """
  summary = _render.bounded(summary, BOUNDS)
  out = _claims_of(summary, "", "mixture")
  if summary.get("digits_groups"):
    out += _claims_of(summary, "digits_", "digits")
  return _render.judged(out, scale)


def _metrics_table(groups: list[dict]) -> str:
  """One row per (loss, normalisation, β) group: every metric's interval."""
  return _render.table(
      ["run", "normalisation", "β", "seeds"] + [h for _, h, _, _ in METRICS],
      [[g["name"], g["normalize"], f"{g['beta']:g}", str(len(g["seeds"]))] +
       [_render.cell(g["metrics"].get(key), spec)
        for key, _, spec, _ in METRICS] for g in groups])


def render(summary: dict, *, scale: str, commands: list[str],
           figures: str) -> str:
  """``experiments/results/jiang.md`` from the colab's JSON."""
  summary = _render.bounded(summary, BOUNDS)
  note = ("2 seeds (tiny: a check that the pipeline runs)" if scale == "tiny"
          else f"{BETA_SEEDS_WHY}; 5 seeds for the digits sweep")
  parts = [_render.header(
      "Jiang, Nguyen, Aeron, Ishwar 2024 (hard negatives, NC vs DC)",
      scale=scale, seeds=note),
      "## Commands\n", _render.commands(commands),
      "\n## Claims\n", _render.claims(claims(summary, scale=scale)),
      "\n## Final metrics, Gaussian mixture (mean [95 % Student-t "
      "interval] over seeds)\n", _metrics_table(summary["groups"])]
  if summary.get("digits_groups"):
    parts += ["\n## Final metrics, digits (mean [95 % Student-t interval] "
              "over seeds)\n", _metrics_table(summary["digits_groups"])]
  rows = [[label, p["loss"], p["normalize"], f"{p['beta']:g}",
           _render.cell(p["difference"]["etf_distance"]),
           _render.cell(p["difference"]["mean_clf_test_acc"]),
           _render.cell(p["difference"]["rank"])]
          for label, key in (("mixture", "paired"),
                             ("digits", "digits_paired"))
          for p in summary.get(key) or []]
  parts += ["\n## Largest β − β = 0, paired by seed\n", _render.table(
      ["data", "loss", "normalisation", "β", "ETF distance",
       "mean-clf accuracy", "rank"], rows)]
  names = ["jiang_spectra", "jiang_nc_vs_beta", "jiang_accuracy_vs_beta",
           "jiang_training"]
  if summary.get("digits_groups"):
    names.append("jiang_digits_vs_beta")
  parts += ["\n## Figures\n",
            "Drawn by the colab; error bars are 95 % Student-t intervals "
            "over seeds (spectra and training curves: one seed).\n",
            _render.figure_list(figures, names)]
  return "\n".join(parts) + "\n"
