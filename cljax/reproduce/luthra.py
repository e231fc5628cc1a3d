r"""P1 (Luthra, Yang, Galanti 2025): self-supervised CL ~ negatives-only SCL.

The reproduction of ``cljax.reproduce._base``'s contract for P1: four
sweeps over seeds (CL vs NSCL vs SupCon paired under shared seeds, the gap
against the number of classes C on an image mixture and on real digits, the
gap against the temperature), the colab ``colabs/luthra.ipynb`` that turns
them into mean and Student-t intervals over seeds, the claims judged from
those intervals, and the markdown of ``experiments/results/luthra.md``.

Verdicts (papers.md, P1): Theorem 1, ``0 <= DCL - NSCL <= log(1 + e^{2/tau}
/ (C - 1))``, must hold at every logged batch and for every exact
whole-split value (a deterministic inequality: no interval); every other
claim is "yes" / "no" only when the whole 95 % interval over seeds lies on
one side of its threshold (:data:`THRESHOLDS`), else "undecided".

>>> [s.name for s in sweeps("tiny")]
['cl_vs_nscl', 'gap_vs_classes', 'gap_vs_classes_digits', 'temperature']
>>> sweeps("cpu")[0].seeds
5

Claim (f) (the few-shot bound is a tight estimate) fails at the cpu budget:
the bound is vacuous because the features' directional CDNV stays large.
``attempts("cpu")`` trains the paired DCL runs 8x longer (3 200 steps, the
cosine schedule stretched) and ``attempt_summary`` measures the bound, the
2-way NCC error and their ratio on those runs beside the 400-step ones,
paired by seed.

>>> [(s.name, s.seeds) for s in attempts("cpu")], attempts("tiny")
([('attempt_fewshot', 3)], [])
"""

from __future__ import annotations

import math
import os
import shlex

from cljax.reproduce import _base
from cljax.reproduce import _render

COLAB = "colabs/luthra.ipynb"
# Seeds per scale. At cpu scale a run takes about 0.5-1.5 min on one CPU core
# (two run at a time here; the rendered markdown gives the measured total),
# so a seed of the four sweeps (15 runs) costs about 8 min of a 2-core
# machine; 5 seeds at every scale but tiny (the attempt: 3).
SEEDS = {"tiny": 2, "cpu": 5, "paper": 5}
# Thresholds of the interval verdicts (the claim is judged against them).
THRESHOLDS = {
    # (a) "highly correlated": Pearson r(DCL, NSCL) over training above 0.9.
    "pearson": 0.9,
    # (c) "brings NSCL close": the DCL run achieves at least 80 % of the
    # decrease of NSCL that NSCL training itself achieves.
    "nscl_share": 0.8,
    # (b) "gap = O(1/C)": the log-log exponent of gap against C at most -0.75
    # (1/C is -1; a slower decay than C^-0.75 is not O(1/C)).
    "exponent": -0.75,
    # (e) "similar few-shot error": |error(DCL) - error(NSCL)| below 0.05 at
    # the largest m (a paired difference, both ends of its interval).
    "fewshot_margin": 0.05,
    # (f) "tight estimate": the 2-way bound at the largest m at most 3x the
    # measured 2-way NCC error (and so below 1 only if the error is).
    "tightness": 3.0,
}
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
_GAP_GRID = {"tiny": "[2,5]", "cpu": "[2,5,10,20,50]",
             "paper": "[2,5,10,20,50,100]"}
_DIGITS_GRID = {"tiny": "[2,5]", "cpu": "[2,5,10]", "paper": "[2,5,10]"}
_TAUS = {"tiny": "[0.5,1.0]", "cpu": "[0.1,0.2,0.5,1.0]",
         "paper": "[0.1,0.2,0.5,1.0]"}
# The digits preset at tiny scale: the cpu_digits recipe, six steps, a batch
# that every tiny C (2, 5) and 8 devices (the tests' mesh) divide.
_TINY_DIGITS = ("steps=6", "log_every=2", "eval_every=6", "checkpoint.every=6",
                "data.batch_size=40",
                "evals.fewshot.episodes=10", "evals.dataset_gap.every=0")
# The colab at tiny scale: few shots and episodes, PCA instead of UMAP (whose
# numba compilation alone takes a minute); both are the same code paths.
_TINY_COLAB = {"CLJAX_LUTHRA_SHOTS": "1,5", "CLJAX_LUTHRA_EPISODES": "8",
               "CLJAX_LUTHRA_PROJECTION": "pca",
               "CLJAX_LUTHRA_EXACT_EXAMPLES": "500"}


def _check_scale(scale: str) -> str:
  if scale not in _base.SCALES:
    raise ValueError(f"scale={scale!r}: choose one of {_base.SCALES}.")
  return scale


def sweeps(scale: str) -> list[_base.Sweep]:
  """The four P1 sweeps at ``scale`` (see the module docstring)."""
  _check_scale(scale)
  seeds = SEEDS[scale]
  preset = "" if scale == "paper" else f":{scale}"
  losses = ('loss.name=["dcl","nscl"]' if scale == "tiny" else
            'loss.name=["dcl","nscl","supcon"]')
  taus = _TAUS[scale]
  return [
      _base.Sweep("cl_vs_nscl", f"experiments/luthra_cl_vs_nscl.py{preset}",
                  grid=(losses,), seeds=seeds),
      _base.Sweep("gap_vs_classes",
                  f"experiments/luthra_gap_vs_classes.py{preset}",
                  grid=(f"data.classes={_GAP_GRID[scale]}",), seeds=seeds),
      _base.Sweep("gap_vs_classes_digits",
                  "experiments/luthra_gap_vs_classes.py:cpu_digits",
                  grid=(f"data.classes={_DIGITS_GRID[scale]}",), seeds=seeds,
                  overrides=_TINY_DIGITS if scale == "tiny" else ()),
      _base.Sweep("temperature", f"experiments/luthra_temperature.py{preset}",
                  zipped=(f"loss.kwargs.temperature={taus}",
                          f"monitor.temperature={taus}"), seeds=seeds),
  ]


# The few-shot attempt: 8x the cpu preset's 400 steps, evaluated twice.
FEWSHOT_STEPS = 3200
_FEWSHOT_OVERRIDES = (f"steps={FEWSHOT_STEPS}", "eval_every=1600",
                      "checkpoint.every=1600", "evals.dataset_gap.every=1600",
                      "log_every=20")
# Shots and episodes of the attempt's few-shot measurement (the colab's
# largest m and its episode count; tiny: a check that the code runs).
_FEWSHOT_MEASURE = {"cpu": (50, 200), "tiny": (5, 8), "paper": (50, 200)}


def attempts(scale: str) -> list[_base.Sweep]:
  """The larger-budget attempt at claim (f) (cpu scale only)."""
  if _check_scale(scale) != "cpu":
    return []
  return [_base.Sweep("attempt_fewshot", "experiments/luthra_cl_vs_nscl.py:cpu",
                      grid=('loss.name=["dcl"]',), seeds=3,
                      overrides=_FEWSHOT_OVERRIDES)]


def _fewshot_point(workdir: str, *, shots: int, episodes: int) -> dict:
  """CDNVs, 2-way NCC error and the bound of a run's test features (h).

  The colab's (f) measurement (same key per ``shots``), for one run.
  """
  import jax  # The analysis stack, only when measuring.
  import numpy as np
  from cljax import checkpoint, data, geometry, probes, theory
  run = checkpoint.load(workdir)
  x, y = data.load_split(run.config.data, "test", normalize=False)
  h, _ = run.features(x)
  num_classes = int(np.unique(y).size)
  cdnv = float(geometry.cdnv(h, y, num_classes=num_classes))
  dcdnv = float(geometry.directional_cdnv(h, y, num_classes=num_classes))
  res = probes.fewshot_episodes(h, y, shots=shots, ways=2,
                                num_episodes=episodes,
                                key=jax.random.key(shots),
                                num_classes=num_classes, classifier=None)
  error = 1.0 - float(res.mean_ncc_accuracy)
  bound = theory.fewshot_bound(dcdnv, cdnv, shots, ways=2)
  return {"step": run.step, "cdnv": cdnv, "directional_cdnv": dcdnv,
          "error": error, "bound": bound, "ratio": bound / max(error, 1e-12)}


def attempt_summary(dirs: dict[str, str], *, scale: str) -> dict:
  """Claim (f) after 8x training beside the cpu runs (tiny: cpu runs twice)."""
  from cljax.reproduce import _attempt
  shots, episodes = _FEWSHOT_MEASURE[scale]
  where = {"loss.name": "dcl"}
  base = _attempt.runs_by_seed(dirs["cl_vs_nscl"], where)
  long = _attempt.runs_by_seed(dirs.get("attempt_fewshot",
                                        dirs["cl_vs_nscl"]), where)
  points = [{seed: _fewshot_point(run["workdir"], shots=shots,
                                  episodes=episodes)
             for seed, run in runs.items()} for runs in (base, long)]
  out = {"shots": shots, "episodes": episodes,
         "steps": [max(p["step"] for p in pts.values()) for pts in points]}
  for key in ("error", "bound", "ratio", "cdnv", "directional_cdnv"):
    a = {seed: p[key] for seed, p in points[1].items()}
    b = {seed: p[key] for seed, p in points[0].items()}
    out[key] = _attempt.interval(a.values())
    out[key + "/change"] = _attempt.paired(a, b)
  return {"fewshot": out}


_ENV = {"cl_vs_nscl": "CLJAX_LUTHRA_PAIRED",
        "gap_vs_classes": "CLJAX_LUTHRA_GAP_VS_CLASSES",
        "gap_vs_classes_digits": "CLJAX_LUTHRA_GAP_DIGITS",
        "temperature": "CLJAX_LUTHRA_TEMPERATURE"}


def colab_env(dirs: dict[str, str], *, summary: str,
              figures: str) -> dict[str, str]:
  """The colab's environment: one variable per sweep dir, JSON, figures.

  Sweep dirs under a ``tiny`` folder (the driver's
  ``<runs>/luthra/tiny/<name>``) also get the tiny colab settings.

  >>> dirs = {n: f"r/luthra/tiny/{n}" for n in ("cl_vs_nscl", "temperature",
  ...                                         "gap_vs_classes")}
  >>> env = colab_env(dirs, summary="s.json", figures="f")
  >>> env["CLJAX_LUTHRA_PAIRED"], env["CLJAX_LUTHRA_PROJECTION"]
  ('r/luthra/tiny/cl_vs_nscl', 'pca')
  """
  missing = sorted(set(_ENV) - set(dirs) - {"gap_vs_classes_digits"})
  unknown = sorted(set(dirs) - set(_ENV))
  if missing or unknown:
    raise ValueError(f"dirs: give a directory for each of {sorted(_ENV)} "
                     f"(gap_vs_classes_digits optional); missing {missing}, "
                     f"unknown {unknown}.")
  env = {_ENV[name]: path for name, path in dirs.items()}
  env.update(CLJAX_LUTHRA_SUMMARY=summary, CLJAX_LUTHRA_FIGURES=figures)
  parts = {os.path.basename(os.path.dirname(os.path.normpath(d)))
           for d in dirs.values()}
  if parts == {"tiny"}:
    env.update(_TINY_COLAB)
  return env


# --- interval verdicts ----------------------------------------------------


def _cell(iv: dict | None, spec: str = ".3g") -> str:
  """'mean [low, high]' of an interval dict ('mean (1 seed)' without one)."""
  if iv is None:
    return "—"
  if iv.get("low") is None:
    return f"{iv['mean']:{spec}} (1 seed)"
  return _render.cell(iv, spec)


def _side(iv: dict, threshold: float, *, above: bool) -> str:
  """'yes' when the whole interval is above (below) ``threshold``.

  >>> _side({"mean": 1, "low": 0.5, "high": 1.5}, 0.4, above=True)
  'yes'
  >>> _side({"mean": 1, "low": 0.5, "high": 1.5}, 1.0, above=True)
  'undecided'
  >>> _side({"mean": 1, "low": 0.5, "high": 1.5}, 2.0, above=True)
  'no'
  """
  if iv.get("low") is None or not all(
      math.isfinite(iv[k]) for k in ("low", "high")):
    return "undecided (no interval: one seed)"
  low, high = (iv["low"], iv["high"]) if above else (-iv["high"], -iv["low"])
  threshold = threshold if above else -threshold
  if low > threshold:
    return "yes"
  return "no" if high < threshold else "undecided"


def _within(iv: dict, margin: float) -> str:
  """'yes' when the interval lies inside (-margin, margin), 'no' outside."""
  if iv.get("low") is None:
    return "undecided (no interval: one seed)"
  if -margin < iv["low"] and iv["high"] < margin:
    return "yes"
  return "no" if iv["low"] >= margin or iv["high"] <= -margin else "undecided"


def _combine(verdicts: list[str]) -> str:
  """'yes'/'no' when all agree, 'partly' when some are 'yes', else undecided.

  >>> _combine(["yes", "yes"]), _combine(["yes", "no"]), _combine(["no"])
  ('yes', 'partly', 'no')
  """
  heads = [v.split(" ")[0] for v in verdicts]
  if heads and all(h == "yes" for h in heads):
    return "yes"
  if "yes" in heads:
    return "partly"
  if heads and all(h == "no" for h in heads):
    return "no"
  return "no" if "no" in heads else "undecided"


def _n(summary: dict) -> int:
  return len(summary.get("seeds", []))


def _ratio_iv(num: dict, den: dict) -> dict:
  """A conservative interval of num / den from two positive intervals."""
  if num.get("low") is None or den.get("low") is None or den["low"] <= 0:
    return {"mean": num["mean"] / den["mean"], "low": None, "high": None}
  return {"mean": num["mean"] / den["mean"], "low": num["low"] / den["high"],
          "high": num["high"] / den["low"]}


def claims(summary: dict, *, scale: str | None = None) -> list[_base.Claim]:
  """P1's claims judged from the colab's JSON ``summary`` (see THRESHOLDS).

  At ``scale="tiny"`` every claim reads ``_render.NOT_JUDGED``.
  """
  summary = _render.bounded(summary, BOUNDS)
  out = []
  t1 = summary["theorem1"]
  ok = (t1["min_gap"] >= 0 and t1["max_gap_over_bound"] <= 1 and
        t1["exact_min_gap"] >= 0 and t1["exact_max_gap_over_bound"] <= 1)
  out.append(_base.Claim(
      "P1", "Theorem 1: 0 ≤ DCL − NSCL ≤ log(1 + e^{2/τ}/(C − 1)) for any "
      "encoder, at every logged step",
      f"{t1['steps']} logged batches of {t1['runs']} runs: min gap "
      f"{t1['min_gap']:.3g}, max gap/bound {t1['max_gap_over_bound']:.3f}; "
      f"{t1['exact_values']} exact whole-split values: min "
      f"{t1['exact_min_gap']:.3g}, max gap/bound "
      f"{t1['exact_max_gap_over_bound']:.3f}",
      "yes" if ok else "no (an inequality violated)"))

  exp = THRESHOLDS["exponent"]
  verdicts, parts = [], []
  for key, label in (("gap_vs_classes", "image mixture"),
                     ("gap_vs_classes_digits", "digits")):
    g = summary.get(key)
    if not g or "fit_per_batch" not in g:
      continue
    for kind in ("per_batch", "exact"):
      f = g[f"fit_{kind}"]
      verdicts.append(_side(f["loglog_exponent"], exp, above=False))
      parts.append(f"{label} {kind.replace('_', '-')}: exponent "
                   f"{_cell(f['loglog_exponent'], '.2f')}, R² of a + s/C "
                   f"{_cell(f['r2'], '.3f')}")
  if verdicts:
    out.append(_base.Claim(
        "P1", "(b) the gap decays like O(1/C)",
        "; ".join(parts) + f" ({_n(summary)} seeds; threshold: exponent "
        f"≤ {exp})", _combine(verdicts)))

  paired = summary["paired"]
  if "dcl" in paired:
    r = paired["dcl"]["pearson_dcl_nscl"]
    out.append(_base.Claim(
        "P1", "(a) CL and NSCL are highly correlated over training",
        f"Pearson r(DCL, NSCL) in the DCL run {_cell(r, '.4f')} "
        f"({r['n']} seeds; threshold {THRESHOLDS['pearson']})",
        _side(r, THRESHOLDS["pearson"], above=True)))
  reached = summary.get("nscl_reached", {})
  diff = summary.get("paired_difference", {}).get("dcl-nscl")
  if "dcl" in reached and diff:
    share = reached["dcl"]["share_of_nscl_decrease"]
    out.append(_base.Claim(
        "P1", "(c) minimising CL brings NSCL close to what minimising NSCL "
        "reaches",
        f"share of the NSCL run's NSCL decrease reached by the DCL run "
        f"{_cell(share, '.3f')}; paired NSCL(DCL run) − NSCL(NSCL run) "
        f"{_cell(diff['nscl_final'], '.4f')} ({share['n']} seeds; threshold "
        f"{THRESHOLDS['nscl_share']})",
        _side(share, THRESHOLDS["nscl_share"], above=True)))

  fs = summary.get("fewshot", {})
  fdiff = fs.get("paired_difference", {}).get("dcl-nscl")
  if fdiff:
    m = fs["shots"][-1]
    margin = THRESHOLDS["fewshot_margin"]
    v_ncc = _within(fdiff["ncc_2way"][-1], margin)
    v_probe = _within(fdiff["probe_2way"][-1], margin)
    out.append(_base.Claim(
        "P1", "(e) CL and NSCL features give similar few-shot error",
        f"paired 2-way error DCL − NSCL at m = {m}: NCC "
        f"{_cell(fdiff['ncc_2way'][-1], '.3f')}, {fs['probe']} "
        f"{_cell(fdiff['probe_2way'][-1], '.3f')} (margin ±{margin})",
        _combine([v_ncc, v_probe])))
  if "dcl" in fs:
    f = fs["dcl"]
    ratio = _ratio_iv(f["error_bound_2way"][-1], f["error_ncc_2way"][-1])
    out.append(_base.Claim(
        "P1", "(f) the CDNV few-shot bound is a tight estimate of the 2-way "
        "NCC error",
        f"DCL run, m = {fs['shots'][-1]}: bound "
        f"{_cell(f['error_bound_2way'][-1])} vs error "
        f"{_cell(f['error_ncc_2way'][-1], '.3f')}, bound/error "
        f"{_cell(ratio)} (tight: ≤ {THRESHOLDS['tightness']})",
        _side(ratio, THRESHOLDS["tightness"], above=False)))
  attempt = summary.get("attempts", {}).get("fewshot")
  if attempt:
    short, long = attempt["steps"]
    out.append(_base.Claim(
        "P1", f"attempt: (f) with a larger budget ({long} instead of {short} "
        f"steps of DCL training)",
        f"m = {attempt['shots']}: bound {_cell(attempt['bound'])} vs error "
        f"{_cell(attempt['error'], '.3f')}, bound/error "
        f"{_cell(attempt['ratio'])} (tight: ≤ {THRESHOLDS['tightness']}); "
        f"directional CDNV {_cell(attempt['directional_cdnv'], '.3f')}, "
        f"change from {short} steps paired by seed "
        f"{_cell(attempt['directional_cdnv/change'], '.3f')}",
        _side(attempt["ratio"], THRESHOLDS["tightness"], above=False)))
  return _render.judged(out, scale)


# --- markdown --------------------------------------------------------------


def _table(headers: list[str], rows: list[list[str]]) -> str:
  lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
  lines += ["| " + " | ".join(str(c).replace("|", "\\|") for c in row) + " |"
            for row in rows]
  return "\n".join(lines)


def _image(figures: str, name: str, alt: str) -> str:
  return f"![{alt}]({figures}/luthra_{name}.png)"


def _gap_section(g: dict, figures: str, name: str, title: str) -> str:
  rows = [[str(int(c)), _cell(g["gap"][j], ".4f"), _cell(g["exact_gap"][j], ".4f"),
           _cell(g["batch_bound"][j], ".4f"), f"{g['bound'][j]:.4f}",
           f"{g['class_blind_gap'][j]['mean']:.4f}",
           _cell(g["ncc_test_acc"][j], ".3f")]
          for j, c in enumerate(g["C"])]
  text = [f"### (b) the gap against the number of classes: {title}", "",
          f"Dataset `{g['dataset']}`, seeds {g['seeds']}.", "",
          _image(figures, name, f"gap vs C, {title}"), "",
          _table(["C", "per-batch gap", "exact whole-split gap",
                  "per-batch bound", "bound log(1 + e²/(C − 1))",
                  "class-blind gap", "NCC test accuracy of h"], rows)]
  text += ["", "Why the class-blind column matters: with b = B/C samples per "
           "class in a balanced batch, an anchor's same-class mass is "
           "(b − 1)/(B − b) of its NSCL denominator when all similarities "
           "are equal, whatever τ, so features that carry no class "
           "information already have a gap ≈ 1/(C − 1). A 1/C decay of the "
           "measured gap says something about the learnt features only "
           "where the gap rises clearly above that line."]
  for kind in ("per_batch", "exact"):
    f = g.get(f"fit_{kind}")
    if f:
      text += ["", f"Fit of the {kind.replace('_', '-')} gap, per seed: "
               f"gap = a + s/C with s = {_cell(f['slope_vs_inv_C'], '.4f')}, "
               f"a = {_cell(f['intercept'], '.4f')}, R² = "
               f"{_cell(f['r2'], '.4f')}; log-log exponent "
               f"{_cell(f['loglog_exponent'], '.3f')}."]
  return "\n".join(text)


def render(summary: dict, *, scale: str, commands: list[str],
           figures: str) -> str:
  """The markdown of ``experiments/results/luthra.md`` from ``summary``.

  Args:
    summary: the JSON the colab wrote (``CLJAX_LUTHRA_SUMMARY``).
    scale: one of ``_base.SCALES``.
    commands: the shell commands that made the runs and the summary.
    figures: the figures folder relative to the markdown file.

  Returns:
    The markdown text; every number is read from ``summary``.
  """
  _check_scale(scale)
  summary = _render.bounded(summary, BOUNDS)
  n = _n(summary)
  cost = summary.get("cost", {})
  seeds_note = (f"{n} seeds (0..{n - 1}) per setting")
  if scale == "cpu" and n < 5:
    seeds_note += (
        f", not 5: the {cost.get('runs', 0)} runs below took "
        f"{cost.get('wall_seconds', float('nan')) / 60:.0f} min of run "
        f"time (summed over runs; two ran at a time, one per CPU core), and "
        f"2 more seeds did not fit the session's 2-core budget beside the "
        f"other papers' sweeps and the attempts")
  p = summary["paired"]
  losses = list(p)
  out = [
      f"# Luthra, Yang, Galanti 2025 (P1) at {scale} scale: "
      f"self-supervised CL ≈ NSCL", "",
      f"Generated by `python -m cljax.reproduce luthra --scale={scale}` "
      f"(or the commands below): every number is read from the JSON the "
      f"colab `{COLAB}` (and, for the attempt, the driver) wrote from the "
      f"runs; none is typed in. Each value is "
      f"the mean over seeds with its two-sided 95 % Student-t interval "
      f"`[low, high]` (`cljax.stats.mean_interval`); differences between "
      f"losses are paired by seed (`cljax.stats.paired_difference`): "
      f"{seeds_note}. A verdict is 'yes' or 'no' only when the whole "
      f"interval lies on one side of the claim's threshold, else "
      f"'undecided'. {_render.BOUNDED_NOTE} {_render.tiny_note(scale)}"
      .rstrip(), "",
      "P1 claims that the self-supervised decoupled contrastive loss (DCL, "
      "\"CL\") is close to the negatives-only supervised loss (NSCL): their "
      "gap is at most log(1 + e^{2/τ}/(C − 1)) for any encoder (Theorem 1), "
      "it decays like 1/C, the two losses are highly correlated over "
      "training, CL training brings NSCL close to what NSCL training "
      "reaches, and a few-shot bound from the (directional) CDNV tracks the "
      "error of nearest-class-centre probes. The paper shows this for "
      "ResNet-50×2 on CIFAR-10/100 and mini-ImageNet over ~2 000 epochs; "
      "the cpu scale trains small encoders for 300–400 steps on embedded "
      "Gaussian-mixture images and on scikit-learn's 8×8 digits.", "",
      "## Commands", "", "```bash", *commands, "```", ""]
  if cost:
    out += [f"Measured cost: {cost['runs']} runs, "
            f"{cost['wall_seconds'] / 60:.1f} min of run time summed over "
            f"runs (each "
            f"run from its config.json to its summary.json, evaluations "
            f"included).", ""]
  missing = [k for k in _ENV if k != "cl_vs_nscl" and k not in summary]
  if missing:
    out += [f"Not in this summary (sweeps not run or not finished when the "
            f"colab ran): {', '.join(missing)}; their claims and sections "
            f"are left out, not carried over from elsewhere.", ""]
  out += ["## Claims, measured", "",
          _table(["paper", "claim", "measured (mean [95 % interval])",
                  "holds here?"],
                 [[c.paper, c.claim, c.measured, c.holds]
                  for c in claims(summary, scale=scale)]), "",
          "Thresholds of the verdicts (`cljax.reproduce.luthra.THRESHOLDS`): "
          + ", ".join(f"{k} {v}" for k, v in THRESHOLDS.items()) + ".", ""]

  rows = [[name, _cell(s["dcl_final"], ".4f"), _cell(s["nscl_final"], ".4f"),
           _cell(s["gap_final"], ".4f"), _cell(s["bound_final"], ".4f"),
           _cell(s["exact_gap_final"], ".4f"),
           _cell(s["pearson_dcl_nscl"], ".4f"),
           _cell(s["max_gap_over_bound"], ".3f")] for name, s in p.items()]
  out += ["### (a) the losses over training, (c) the NSCL value reached", "",
          _image(figures, "a_losses", "CL and NSCL over training"), "",
          _image(figures, "a_gap_exact", "per-batch and exact gap"), "",
          _image(figures, "c_nscl_reached", "NSCL reached"), "",
          f"Final values (mean over the last quarter of the logged steps, "
          f"τ = 1; {p[losses[0]]['steps']} steps):", "",
          _table(["trained with", "DCL", "NSCL", "per-batch gap",
                  "per-batch bound", "exact whole-split gap",
                  "r(DCL, NSCL)", "max gap/bound"], rows), ""]
  reached = summary.get("nscl_reached", {})
  if "start" in reached:
    out += [f"NSCL starts at {_cell(reached['start'], '.4f')} (shared "
            f"initialisation); NSCL's ETF minimum for one batch is "
            f"{reached['etf_minimum']:.4f}. Share of the NSCL run's own "
            f"decrease of NSCL reached: " + ", ".join(
                f"{k} {_cell(v['share_of_nscl_decrease'], '.3f')}"
                for k, v in reached.items()
                if isinstance(v, dict) and "share_of_nscl_decrease" in v)
            + ".", ""]
  for pair, d in summary.get("paired_difference", {}).items():
    out += [f"Paired differences {pair.upper()} (per seed): " + ", ".join(
        f"{k} {_cell(v, '.4f')}" for k, v in d.items()) + ".", ""]

  if "umap" in summary:
    u = summary["umap"]
    out += ["### (d) DCL vs NSCL features over training", "",
            _image(figures, "d_umap", "feature map over training"), "",
            f"{u['method']} of the encoder features of the test split, seed "
            f"{u['seed']}, checkpoints {u['steps']}.", ""]

  fs = summary.get("fewshot")
  if fs:
    rows = []
    for name in losses:
      f = fs[name]
      for j, m in enumerate(fs["shots"]):
        rows.append([name, str(m), _cell(f["error_ncc_2way"][j], ".3f"),
                     _cell(f["error_probe_2way"][j], ".3f"),
                     _cell(f["error_bound_2way"][j]),
                     _cell(f["error_ncc_Cway"][j], ".3f")])
    out += ["### (e, f) few-shot error and the bound", "",
            _image(figures, "ef_fewshot", "few-shot error and bound"), "",
            f"Encoder features of the clean test split, {fs['episodes']} "
            f"episodes per m; linear classifier `{fs['probe']}`; bound = "
            f"`theory.fewshot_bound` from the CDNV and directional CDNV of "
            f"all test classes (DCL run: CDNV "
            f"{_cell(fs['dcl']['cdnv'])}, directional "
            f"{_cell(fs['dcl']['directional_cdnv'])}).", "",
            _table(["trained with", "m", "2-way NCC error",
                    f"2-way {fs['probe']} error", "2-way bound",
                    f"{fs['ways']}-way NCC error"], rows), ""]

  for key, name, title in (
      ("gap_vs_classes", "b_gap_vs_classes", "image mixture"),
      ("gap_vs_classes_digits", "b_gap_vs_classes_digits",
       "real digits (scikit-learn 8×8)")):
    if key in summary:
      out += [_gap_section(summary[key], figures, name, title), ""]

  t = summary.get("temperature")
  if t:
    rows = [[f"{tau:g}", _cell(t["gap"][j], ".4f"),
             _cell(t["batch_bound"][j], ".4g"),
             _cell(t["gap_over_bound"][j], ".3f")]
            for j, tau in enumerate(t["tau"])]
    out += ["### gap against the temperature", "",
            _image(figures, "temperature", "gap vs temperature"), "",
            _table(["τ (trained and monitored)", "gap", "per-batch bound",
                    "gap / bound"], rows), "",
            f"The class-blind gap at this C and B is "
            f"{t['class_blind_gap']:.4f} at every τ.", ""]

  attempt = summary.get("attempts", {}).get("fewshot")
  if attempt:
    short, long = attempt["steps"]
    rows = [[key, _cell(attempt[key], ".4g"),
             _cell(attempt[key + "/change"], ".4g")]
            for key in ("error", "bound", "ratio", "cdnv",
                        "directional_cdnv")]
    out += ["### Attempt: (f) with a larger budget", "",
            f"The paired DCL runs trained for {long} steps instead of {short} "
            f"(sweep `attempt_fewshot`: the cpu preset with its cosine "
            f"schedule stretched); 2-way NCC error and bound at m = "
            f"{attempt['shots']} over {attempt['episodes']} episodes of the "
            f"test split's features h, as in the colab's (f).", "",
            _table(["quantity", f"after {long} steps",
                    f"change from {short} steps, paired by seed"], rows), ""]

  out += ["## What this scale can and cannot say", "",
          "- Theorem 1 is a deterministic inequality; that it holds at every "
          "step of every run is a check of the losses and the bound, not of "
          "training.",
          "- Where the measured gap sits near the class-blind line "
          "log(1 + (b − 1)/(B − b)), the correlation, the 1/C decay and the "
          "flat gap over τ are what features without class structure "
          "already give; the digits rows (whose NCC accuracy shows the "
          "encoder does separate the classes) are the informative ones for "
          "figure (b).",
          "- The few-shot bound needs features with a small directional CDNV "
          "(strong collapse) to be tight; short CPU training does not reach "
          "that, so the verdict of (f) at this scale says little about the "
          "paper's scale."]
  return "\n".join(out) + "\n"


def command_line(env: dict[str, str]) -> str:
  """The shell command that executes the colab with ``env`` (for render).

  >>> command_line({"A": "x y"})
  "A='x y' jupyter nbconvert --to notebook --execute colabs/luthra.ipynb"
  """
  assignments = " ".join(f"{k}={shlex.quote(v)}" for k, v in sorted(env.items()))
  return f"{assignments} jupyter nbconvert --to notebook --execute {COLAB}"
