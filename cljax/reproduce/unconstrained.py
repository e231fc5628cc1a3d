"""The three papers on free ("unconstrained") features, over seeds.

Sweeps of ``experiments/unconstrained*.py`` (the embeddings are the
parameters, so the runs are the theorems' setting): P1 Theorem 2 (NSCL
minimisers at the closed form), P2's SupCon over all multisets and CE with a
free classifier (at the simplex), P2's single-batch minimisers (below the
simplex when the batch is skewed), P3's hardness x normalisation grid.
Every sweep runs over seeds (the random initial embeddings); the colab
``colabs/unconstrained_features.ipynb`` reports mean and Student-t interval.

>>> [s.name for s in sweeps("tiny")]
['luthra_thm2', 'graf_multisets', 'graf_ce', 'graf_batches', 'jiang_beta']
"""

from __future__ import annotations

import os

from cljax.reproduce import _base
from cljax.reproduce import _render

COLAB = "colabs/unconstrained_features.ipynb"
SEEDS = {"tiny": 2, "cpu": 5, "paper": 10}
# A cpu-scale run cost 5-15 s on the 2 shared cores at load 13-20, and the
# first 112 runs of this reproduction took 13 min; then the machine's load
# rose to ~25 and a P3 run took 260-350 s, so at cpu scale P3's grid is cut
# to its first point (the paper scale runs all 30 points).
JIANG_CPU_WHY = (
    "P3 at cpu scale is only SCL on the sphere at β = 0: while this ran, a "
    "P3 run took 260–350 s on the 2 shared CPU cores (load ~25; 6 s at load "
    "~13), so the 30-point β × normalisation grid (150 runs at 5 seeds) did "
    "not fit; `--scale=paper` runs the whole grid")
# The ranges the quantities cannot leave (``_render.bounded``). Losses above
# a closed-form minimum are left alone: in float32 they can dip below it by
# rounding, and the sign is part of what the table shows.
BOUNDS = [((sweep, "*", key), _render.NONNEGATIVE)
          for sweep, keys in (("luthra_thm2", ("etf_distance",
                                               "effective_rank")),
                              ("graf_multisets", ("etf_distance",)),
                              ("jiang_beta", ("etf_distance",
                                              "effective_rank")))
          for key in keys]
_GRAF_COUNTS = ("[(7,1,1),(6,2,1),(5,3,1),(5,2,2),(4,4,1),(4,3,2),(3,3,3),"
                "(8,1,0),(7,2,0),(6,3,0),(5,4,0),(9,0,0)]")


def sweeps(scale: str) -> list[_base.Sweep]:
  """The five sweeps at ``scale`` ('tiny': smoke presets, 2 seeds)."""
  seeds = SEEDS[scale]
  preset = ":smoke" if scale == "tiny" else ""
  if scale == "tiny":
    luthra = ("loss.kwargs.temperature=[0.2,1.0]",)
    counts = ("class_counts=[(7,1,1),(3,3,3)]",)
    jiang = ("loss.kwargs.beta=[0.0,30.0]",)
  else:
    luthra = ("num_classes=[3,10]", "num_views=[2,4]",
              "loss.kwargs.temperature=[0.2,1.0]")
    counts = (f"class_counts={_GRAF_COUNTS}",)
    jiang = ('loss.kwargs.negatives=["different_class","all"]',
             'loss.kwargs.normalize=["sphere","ball","none"]',
             "loss.kwargs.beta=[0.0,2.0,5.0,10.0,30.0]")
    if scale == "cpu":  # See JIANG_CPU_WHY.
      jiang = ('loss.kwargs.negatives=["different_class"]',
               'loss.kwargs.normalize=["sphere"]', "loss.kwargs.beta=[0.0]")
  return [
      _base.Sweep("luthra_thm2", f"experiments/unconstrained.py{preset}",
                  grid=luthra, seeds=seeds),
      _base.Sweep("graf_multisets",
                  f"experiments/unconstrained_graf_multisets.py{preset}",
                  seeds=seeds),
      _base.Sweep("graf_ce", f"experiments/unconstrained_graf_ce.py{preset}",
                  seeds=seeds),
      _base.Sweep("graf_batches",
                  f"experiments/unconstrained_graf_batch.py{preset}",
                  grid=counts, seeds=seeds),
      _base.Sweep("jiang_beta", f"experiments/unconstrained_jiang.py{preset}",
                  grid=jiang, seeds=seeds),
  ]


def colab_env(dirs: dict[str, str], *, summary: str,
              figures: str) -> dict[str, str]:
  """The colab reads one folder holding every sweep under its name."""
  parents = {os.path.dirname(os.path.normpath(d)) for d in dirs.values()}
  names = {os.path.basename(os.path.normpath(d)) for d in dirs.values()}
  if len(parents) != 1 or names != set(dirs):
    raise ValueError(f"{COLAB} reads its sweeps from one folder, each under "
                     f"its sweep's name; got {dirs}.")
  return {"CLJAX_UNCONSTRAINED_DIR": parents.pop(), "CLJAX_FIGURES": figures,
          "CLJAX_SUMMARY": summary}


def _label(overrides: dict) -> str:
  return ", ".join(f"{k.split('.')[-1]}={v}" for k, v in overrides.items()
                   ) or "base"


def _skewed(row: dict) -> bool:
  counts = [c for c in row["overrides"].get("class_counts", ()) if c]
  return len(set(counts)) > 1


def _nc_rows(summary: dict) -> list[dict]:
  """P3 rows with normalisation (the setting of the NC theorems)."""
  return [r for r in summary["jiang_beta"] if "etf_distance" in r and
          r["overrides"].get("loss.kwargs.normalize", "ball") != "none"]


def claims(summary: dict, *, scale: str | None = None) -> list[_base.Claim]:
  """The free-feature claims, each judged from intervals over seeds.

  At ``scale="tiny"`` every claim reads ``_render.NOT_JUDGED``.
  """
  summary = _render.bounded(summary, BOUNDS)
  close = summary["close"]
  out = []
  thm2 = [r for r in summary["luthra_thm2"] if "excess" in r]
  if thm2:
    verdicts = [_render.below(r["excess"], close) for r in thm2]
    n = thm2[0]["excess"]["n"]
    worst = max(thm2, key=lambda r: r["excess"]["high"])
    out.append(_base.Claim(
        "P1", "Theorem 2: NSCL minimisers (free features) reach "
        "log(K(N−n)) − C/((C−1)τ) at a simplex ETF",
        f"{verdicts.count('yes')} of {len(thm2)} settings have the whole "
        f"excess interval below {close:g} nats ({n} seeds); largest: "
        f"{_label(worst['overrides'])} {_render.cell(worst['excess'])}",
        _render.combine(verdicts)))
  for row in summary["graf_multisets"][:1]:
    gap = row["relative_gap"]
    out.append(_base.Claim(
        "P2", "SupCon summed over all multisets is minimised at a regular "
        "simplex (the multiset bound)",
        f"summed loss / bound − 1 = {_render.cell(gap, '.2e')} "
        f"({gap['n']} seeds)", _render.below(gap, close)))
  for row in summary["graf_ce"][:1]:
    over = row["over_simplex"]
    out.append(_base.Claim(
        "P2", "CE with a free classifier is minimised at the simplex",
        f"loss − loss at the simplex = {_render.cell(over, '.2e')} "
        f"({over['n']} seeds)", _render.below(over, close)))
  skewed = [r for r in summary["graf_batches"]
            if "over_etf" in r and _skewed(r)]
  if skewed:
    verdicts = [_render.below(r["over_etf"], 0.0) for r in skewed]
    out.append(_base.Claim(
        "P2", "single-batch minimisers need not be simplices (skewed "
        "label counts end below the simplex's loss)",
        f"{verdicts.count('yes')} of {len(skewed)} skewed batches end "
        f"below the simplex with the whole interval below 0 "
        f"({skewed[0]['over_etf']['n']} seeds)", _render.combine(verdicts)))
  nc = _nc_rows(summary)
  if nc:
    verdicts = [_render.below(r["etf_distance"], 0.05) for r in nc]
    out.append(_base.Claim(
        "P3", "with normalisation, SCL/HSCL/UCL/HUCL reach neural collapse "
        "on free features (ETF distance < 0.05)",
        f"{verdicts.count('yes')} of {len(nc)} (loss, normalisation, β) "
        f"points have the whole ETF-distance interval below 0.05 "
        f"({nc[0]['etf_distance']['n']} seeds)", _render.combine(verdicts)))
  return _render.judged(out, scale)


def render(summary: dict, *, scale: str, commands: list[str],
           figures: str) -> str:
  """``experiments/results/unconstrained.md`` from the colab's JSON."""
  summary = _render.bounded(summary, BOUNDS)
  n = sorted({v["n"] for rows in summary.values() if isinstance(rows, list)
              for r in rows for v in r.values()
              if isinstance(v, dict) and "n" in v})
  cut = f". {JIANG_CPU_WHY}" if scale == "cpu" else ""
  parts = [_render.header(
      "The three papers on free (layer-peeled) features", scale=scale,
      seeds=f"{', '.join(map(str, n))} seeds per point (the random initial "
      f"embeddings; every point of a sweep shares them){cut}"),
      "## Commands\n", _render.commands(commands),
      "\n## Claims\n", _render.claims(claims(summary, scale=scale))]
  sections = [
      ("P1 Theorem 2: excess over the closed-form minimum", "luthra_thm2",
       [("excess", "NSCL − minimum (nats)", ".2e"),
        ("etf_distance", "ETF distance", ".2e"),
        ("effective_rank", "effective rank", ".3g")]),
      ("P2: SupCon over all multisets", "graf_multisets",
       [("relative_gap", "loss / bound − 1", ".2e"),
        ("etf_distance", "ETF distance", ".2e")]),
      ("P2: CE with a free classifier", "graf_ce",
       [("over_simplex", "loss − loss at simplex (nats)", ".2e")]),
      ("P2: single batches of 9 (Figure 6)", "graf_batches",
       [("over_etf", "loss − loss at simplex (nats)", ".3g")]),
      ("P3: hardness β × normalisation", "jiang_beta",
       [("over_nc", "loss − loss at NC (nats)", ".3g"),
        ("etf_distance", "ETF distance", ".3g"),
        ("effective_rank", "effective rank", ".3g")]),
  ]
  for title, key, columns in sections:
    rows = [[_label(r["overrides"])] + [_render.cell(r.get(c), spec)
                                        for c, _, spec in columns]
            for r in summary[key]]
    parts += [f"\n## {title}\n",
              _render.table(["point"] + [h for _, h, _ in columns], rows)]
  parts += ["\n## Figures\n",
            "Drawn by the colab; error bars are 95 % Student-t intervals "
            "over seeds.\n",
            _render.figure_list(figures, [
                "unconstrained_seeds", "unconstrained_luthra_thm2",
                "unconstrained_graf_multisets", "unconstrained_graf_batches",
                "unconstrained_jiang_beta"])]
  return "\n".join(parts) + "\n"
