"""The markdown of ``experiments/results/luthra.md`` (P1), read from the JSON.

``cljax.reproduce.luthra.render`` calls :func:`markdown` with the sections
its sweeps leave out; every number is read from the summary, none is typed.
"""

from __future__ import annotations

from cljax.reproduce import _luthra_claims
from cljax.reproduce import _render
from cljax.reproduce._render import cell

def _image(figures: str, name: str, alt: str) -> str:
  return f"![{alt}]({figures}/luthra_{name}.png)"


def _gap_section(g: dict, figures: str, name: str, title: str) -> str:
  has_null = "null_exact_gap" in g
  rows = [[str(int(c)), cell(g["gap"][j], ".4f"),
           cell(g["exact_gap"][j], ".4f"),
           cell(g["batch_bound"][j], ".4f"), f"{g['bound'][j]:.4f}",
           f"{g['class_blind_gap'][j]['mean']:.4f}",
           cell(g["null_exact_gap"][j], ".4f") if has_null
           else _render.NULL_MISSING,
           cell(g["exact_gap_over_null"][j], ".3f") if has_null else "—",
           cell(g["ncc_test_acc"][j], ".3f")]
          for j, c in enumerate(g["C"])]
  text = [f"### (b) the gap against the number of classes: {title}", "",
          f"Dataset `{g['dataset']}`, seeds {g['seeds']}.", "",
          _image(figures, name, f"gap vs C, {title}"), "",
          _render.table(["C", "per-batch gap", "exact whole-split gap",
                  "per-batch bound", "bound log(1 + e²/(C − 1))",
                  "class-blind gap", "null: exact gap, permuted labels",
                  "exact gap / null (same views, per seed)",
                  "NCC test accuracy of h"], rows)]
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
               f"gap = a + s/C with s = {cell(f['slope_vs_inv_C'], '.4f')}, "
               f"a = {cell(f['intercept'], '.4f')}, R² = "
               f"{cell(f['r2'], '.4f')}; log-log exponent "
               f"{cell(f['loglog_exponent'], '.3f')}."]
  if "exponent_minus_null" in g:
    text += ["", f"Null: the exact gap of the same features and views with "
             f"the labels permuted has log-log exponent "
             f"{cell(g['fit_exact_null']['loglog_exponent'], '.3f')}; the "
             f"trained exponent minus the null's, paired by seed: "
             f"{cell(g['exponent_minus_null'], '.3f')} ({len(g['C'])} values "
             f"of C for a 2-parameter fit)."]
  return "\n".join(text)


def _reached_text(reached: dict, label: str) -> list[str]:
  """(c)'s paragraph for one paired sweep: start, ETF minimum, shares."""
  if "start" not in reached:
    return []
  runs = {k: v for k, v in reached.items()
          if isinstance(v, dict) and "share_of_nscl_decrease" in v}
  text = (f"(c){label}: NSCL starts at {cell(reached['start'], '.4f')} "
          f"(shared initialisation); NSCL's ETF minimum for one batch is "
          f"{reached['etf_minimum']:.4f}. Share of the NSCL run's own "
          f"decrease of NSCL reached: " + ", ".join(
              f"{k} {cell(v['share_of_nscl_decrease'], '.3f')}"
              for k, v in runs.items()) + ".")
  if all("share_of_etf_way" in v for v in runs.values()):
    text += (" Share of the way from the start to the ETF minimum: " +
             ", ".join(f"{k} {cell(v['share_of_etf_way'], '.3f')}"
                       for k, v in runs.items()) + ".")
  if "etf_distance" in reached:
    text += (" ETF distance of the class means of z (uncentred, "
             "`geometry.etf_distance`): " + ", ".join(
                 f"{k} {cell(v, '.3f')}"
                 for k, v in reached["etf_distance"].items()) +
             f"; null: random class means "
             f"{reached['etf_distance_random_means']:.3f}; reference: an "
             f"orthonormal frame "
             f"{reached['etf_distance_orthonormal_frame']:.3f}.")
  return [text, ""]


def markdown(summary: dict, *, scale: str, commands: list[str], figures: str,
             colab: str, missing: list[str]) -> str:
  """The markdown of ``experiments/results/luthra.md`` from ``summary``.

  Args:
    summary: the JSON the colab wrote (``CLJAX_LUTHRA_SUMMARY``).
    scale: one of ``_base.SCALES``.
    commands: the shell commands that made the runs and the summary.
    figures: the figures folder relative to the markdown file.
    colab: the notebook that wrote ``summary`` (``luthra.COLAB``).
    missing: the sweeps whose sections ``summary`` lacks (said, not
      carried over from elsewhere).

  Returns:
    The markdown text; every number is read from ``summary``.
  """
  summary = _render.bounded(
      summary, _luthra_claims.BOUNDS + _luthra_claims.NEW_BOUNDS)
  n = _luthra_claims.seeds_of(summary)
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
      f"colab `{colab}` (and, for the attempt, the driver) wrote from the "
      f"runs; none is typed in. Each value is "
      f"the mean over seeds with its two-sided 95 % Student-t interval "
      f"`[low, high]` (`cljax.analysis.stats.mean_interval`); differences between "
      f"losses are paired by seed (`cljax.analysis.stats.paired_difference`): "
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
  if missing:
    out += [f"Not in this summary (sweeps not run or not finished when the "
            f"colab ran): {', '.join(missing)}; their claims and sections "
            f"are left out, not carried over from elsewhere.", ""]
  out += ["## Claims, measured", "",
          _render.claims(_luthra_claims.claims(summary, scale=scale)), "",
          "Thresholds of the verdicts (`cljax.reproduce.luthra.THRESHOLDS`): "
          + ", ".join(f"{k} {v}"
                      for k, v in _luthra_claims.THRESHOLDS.items()) + ". "
          + _luthra_claims.RULES, ""]

  rows = [[name, cell(s["dcl_final"], ".4f"), cell(s["nscl_final"], ".4f"),
           cell(s["gap_final"], ".4f"), cell(s["bound_final"], ".4f"),
           cell(s["exact_gap_final"], ".4f"),
           cell(s["pearson_dcl_nscl"], ".4f"),
           cell(s["max_gap_over_bound"], ".3f")] for name, s in p.items()]
  out += ["### (a) the losses over training, (c) the NSCL value reached", "",
          _image(figures, "a_losses", "CL and NSCL over training"), "",
          _image(figures, "a_gap_exact", "per-batch and exact gap"), "",
          _image(figures, "c_nscl_reached", "NSCL reached"), "",
          f"Final values (mean over the last quarter of the logged steps, "
          f"τ = 1; {p[losses[0]]['steps']} steps):", "",
          _render.table(["trained with", "DCL", "NSCL", "per-batch gap",
                  "per-batch bound", "exact whole-split gap",
                  "r(DCL, NSCL)", "max gap/bound"], rows), ""]
  for key, label in _luthra_claims.REACHED:
    out += _reached_text(summary.get(key, {}), label)
  for pair, d in summary.get("paired_difference", {}).items():
    out += [f"Paired differences {pair.upper()} (per seed): " + ", ".join(
        f"{k} {cell(v, '.4f')}" for k, v in d.items()) + ".", ""]

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
        rows.append([name, str(m), cell(f["error_ncc_2way"][j], ".3f"),
                     cell(f["error_probe_2way"][j], ".3f"),
                     cell(f["error_bound_2way"][j]),
                     cell(f["error_ncc_Cway"][j], ".3f")])
    out += ["### (e, f) few-shot error and the bound", "",
            _image(figures, "ef_fewshot", "few-shot error and bound"), "",
            f"Encoder features of the clean test split, {fs['episodes']} "
            f"episodes per m; linear classifier `{fs['probe']}`; bound = "
            f"`theory.fewshot_bound` from the CDNV and directional CDNV of "
            f"all test classes (DCL run: CDNV "
            f"{cell(fs['dcl']['cdnv'])}, directional "
            f"{cell(fs['dcl']['directional_cdnv'])}).", "",
            _render.table(["trained with", "m", "2-way NCC error",
                    f"2-way {fs['probe']} error", "2-way bound",
                    f"{fs['ways']}-way NCC error"], rows), ""]

  col = summary.get("fewshot_collapsed")
  if col:
    rows = [[str(m), cell(col["error_ncc_2way"][j], ".3f"),
             cell(col["error_bound_2way"][j]),
             cell(col["bound_over_error_2way"][j]),
             cell(col["floor_over_error_2way"][j])]
            for j, m in enumerate(col["shots"])]
    out += ["### (f) on collapsed features", "",
            f"Sweep `fewshot_collapsed`: `{col['loss']}` encoders on "
            f"`{col['dataset']}` (seeds {col['seeds']}), directional CDNV "
            f"{cell(col['directional_cdnv'], '.3f')}, CDNV "
            f"{cell(col['cdnv'], '.3f')}; 2-way NCC error with permuted "
            f"labels (null) {cell(col['error_ncc_2way_null'], '.3f')}.", "",
            _render.table(["m", "2-way NCC error", "2-way bound",
                           "bound / error (per seed)",
                           "floor 4·directional CDNV / error"], rows), ""]

  for key, name, title in (
      ("gap_vs_classes", "b_gap_vs_classes", "image mixture"),
      ("gap_vs_classes_digits", "b_gap_vs_classes_digits",
       "real digits (scikit-learn 8×8)"),
      ("gap_vs_classes_mnist", "b_gap_vs_classes_mnist",
       "real MNIST digits (28×28, small ConvNet)")):
    if key in summary:
      out += [_gap_section(summary[key], figures, name, title), ""]

  t = summary.get("temperature")
  if t:
    rows = [[f"{tau:g}", cell(t["gap"][j], ".4f"),
             cell(t["batch_bound"][j], ".4g"),
             cell(t["gap_over_bound"][j], ".3f")]
            for j, tau in enumerate(t["tau"])]
    out += ["### gap against the temperature", "",
            _image(figures, "temperature", "gap vs temperature"), "",
            _render.table(["τ (trained and monitored)", "gap",
                           "per-batch bound", "gap / bound"], rows), "",
            f"The class-blind gap at this C and B is "
            f"{t['class_blind_gap']:.4f} at every τ.", ""]

  attempt = summary.get("attempts", {}).get("fewshot")
  if attempt:
    short, long = attempt["steps"]
    rows = [[key, cell(attempt[key], ".4g"),
             cell(attempt[key + "/change"], ".4g")]
            for key in ("error", "bound", "ratio", "floor_ratio", "cdnv",
                        "directional_cdnv") if key in attempt]
    out += ["### Attempt: (f) with a larger budget", "",
            f"The paired DCL runs trained for {long} steps instead of {short} "
            f"(sweep `attempt_fewshot`: the cpu preset with its cosine "
            f"schedule stretched); 2-way NCC error and bound at m = "
            f"{attempt['shots']} over {attempt['episodes']} episodes of the "
            f"test split's features h, as in the colab's (f).", "",
            _render.table(["quantity", f"after {long} steps",
                    f"change from {short} steps, paired by seed"], rows), ""]

  out += ["## What this scale can and cannot say", "",
          "- Each claim about learning is judged against its null, measured "
          "on the same runs (the column `null` of the claims table); a "
          "summary written before the nulls existed says 'not measured in "
          "this JSON' and leaves those claims undecided.",
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

