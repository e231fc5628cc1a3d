"""cljax.reproduce.luthra: sweeps, colab env, interval verdicts, markdown.

The end-to-end tests run the module's tiny sweeps as the driver does, then
the driver itself (``python -m cljax.reproduce luthra --scale=tiny``) on
them: it skips the finished points, executes ``colabs/luthra.ipynb`` once,
adds the few-shot attempt and renders the markdown, whose JSON, figures and
text are checked.
"""

import copy
import json
import os
import subprocess
import sys

import pytest

from cljax import sweep as sweep_lib
from cljax.reproduce import _base
from cljax.reproduce import _driver
from cljax.reproduce import luthra
from experiments import luthra_cl_vs_nscl
from experiments import luthra_gap_vs_classes
from experiments import luthra_temperature

# One worker runs the module: its tiny reproduction is a module fixture.
pytestmark = pytest.mark.xdist_group("reproduce_luthra")

_MODULES = {"luthra_cl_vs_nscl": luthra_cl_vs_nscl,
            "luthra_gap_vs_classes": luthra_gap_vs_classes,
            "luthra_temperature": luthra_temperature}


def _config(s: _base.Sweep):
  path, _, preset = s.config.partition(":")
  module = _MODULES[os.path.splitext(os.path.basename(path))[0]]
  config = module.get_config(preset)
  config.lock()
  return config


def _grid(s: _base.Sweep):
  # Overrides become one-valued axes: the same validation as the sweep's.
  overrides = [f"{o.removeprefix('--config.').split('=', 1)[0]}="
               f"[{o.split('=', 1)[1]}]" for o in s.overrides]
  grid = sweep_lib.parse_grid(list(s.grid) + overrides)
  return sweep_lib.with_seeds(
      grid, list(range(s.seeds)) if s.seeds > 1 else None)


@pytest.mark.parametrize("scale", _base.SCALES)
def test_sweeps_build_valid_configs(scale, tmp_path):
  sweeps = luthra.sweeps(scale)
  assert [s.name for s in sweeps] == ["cl_vs_nscl", "gap_vs_classes",
                                      "gap_vs_classes_digits", "temperature"]
  assert all(s.seeds == luthra.SEEDS[scale] >= 2 for s in sweeps)
  for s in sweeps:
    pts = list(sweep_lib.points(_config(s), _grid(s), str(tmp_path / s.name),
                                sweep_lib.parse_grid(list(s.zipped))))
    assert len({workdir for _, _, workdir in pts}) == len(pts)
    assert len(pts) >= 2 * s.seeds
    assert all(cfg.seed == point.get("seed", cfg.seed) for point, cfg, _ in pts)
  digits = _config(sweeps[2])
  assert digits.data.name == "cljax_digits"
  # Every C of the digits sweep divides the batch: exactly balanced batches.
  for c in (2, 5, 10):
    assert digits.data.batch_size % c == 0
  tiny = dict(o.split("=", 1) for o in sweeps[2].overrides)
  assert (tiny.get("steps") == "6") == (scale == "tiny")


def test_bad_scale_names_the_choices():
  with pytest.raises(ValueError, match="tiny"):
    luthra.sweeps("huge")


def test_colab_env_maps_every_sweep_and_refuses_a_missing_one():
  dirs = {s.name: f"runs/luthra/cpu/{s.name}" for s in luthra.sweeps("cpu")}
  env = luthra.colab_env(dirs, summary="out/luthra.json", figures="out/fig")
  assert env["CLJAX_LUTHRA_PAIRED"] == "runs/luthra/cpu/cl_vs_nscl"
  assert env["CLJAX_LUTHRA_GAP_DIGITS"].endswith("gap_vs_classes_digits")
  assert env["CLJAX_LUTHRA_SUMMARY"] == "out/luthra.json"
  assert "CLJAX_LUTHRA_PROJECTION" not in env  # UMAP at cpu scale
  del dirs["temperature"]
  with pytest.raises(ValueError, match="temperature"):
    luthra.colab_env(dirs, summary="s", figures="f")


def _iv(mean, low, high, n=3):
  return {"mean": mean, "low": low, "high": high, "n": n, "confidence": 0.95}


def _summary(*, r, share, exponent, ncc_diff, bound, error, min_gap=0.01):
  fit = {"slope_vs_inv_C": _iv(1.4, 1.3, 1.5), "intercept": _iv(0, -.1, .1),
         "r2": _iv(.99, .98, 1.0), "loglog_exponent": exponent}
  return {
      "seeds": [0, 1, 2],
      "theorem1": {"runs": 9, "steps": 90, "min_gap": min_gap,
                   "max_gap_over_bound": 0.2, "exact_min_gap": 0.05,
                   "exact_max_gap_over_bound": 0.3, "exact_values": 9},
      "paired": {"dcl": {"pearson_dcl_nscl": r}},
      "nscl_reached": {"dcl": {"share_of_nscl_decrease": share}},
      "paired_difference": {"dcl-nscl": {"nscl_final": _iv(0, -.1, .1)}},
      "gap_vs_classes": {"fit_per_batch": fit, "fit_exact": fit},
      "fewshot": {"shots": [1, 5], "probe": "ridge",
                  "paired_difference": {"dcl-nscl": {
                      "ncc_2way": [ncc_diff, ncc_diff],
                      "probe_2way": [ncc_diff, ncc_diff]}},
                  "dcl": {"error_bound_2way": [bound, bound],
                          "error_ncc_2way": [error, error]}},
  }


def _verdicts(summary):
  return {c.claim.split(" ")[0]: c.holds for c in luthra.claims(summary)}


def test_claims_verdicts_follow_the_intervals():
  above = _summary(r=_iv(.99, .98, 1.0), share=_iv(.95, .9, 1.0),
                   exponent=_iv(-1.2, -1.3, -1.1),
                   ncc_diff=_iv(.01, -.02, .04),
                   bound=_iv(.2, .15, .25), error=_iv(.1, .09, .11))
  assert set(_verdicts(above).values()) == {"yes"}
  below = _summary(r=_iv(.5, .4, .6), share=_iv(.3, .2, .4),
                   exponent=_iv(-.3, -.4, -.2), ncc_diff=_iv(.2, .1, .3),
                   bound=_iv(50, 40, 60), error=_iv(.1, .09, .11),
                   min_gap=-1e-3)
  v = _verdicts(below)
  assert all(h.startswith("no") for h in v.values()), v
  straddle = _summary(r=_iv(.9, .8, .95), share=_iv(.8, .7, .9),
                      exponent=_iv(-.75, -1.0, -.5),
                      ncc_diff=_iv(.05, .0, .1),
                      bound=_iv(.3, .2, .4), error=_iv(.1, .05, .15))
  v = _verdicts(straddle)
  assert v.pop("Theorem") == "yes"
  assert set(v.values()) == {"undecided"}, v
  one_seed = copy.deepcopy(above)
  one_seed["paired"]["dcl"]["pearson_dcl_nscl"] = {
      "mean": .99, "low": None, "high": None, "n": 1, "confidence": .95}
  assert _verdicts(one_seed)["(a)"].startswith("undecided")


@pytest.fixture(scope="module")
def tiny_reproduction(tmp_path_factory):
  """The tiny sweeps run for real, as the driver runs them: their root."""
  root = str(tmp_path_factory.mktemp("reproduce"))
  _driver.run_sweeps(_driver.sweep_dirs(luthra, "luthra", "tiny", root))
  return root


@pytest.fixture(scope="module")
def driven(tiny_reproduction, tmp_path_factory):
  """The driver on the tiny sweeps (finished points are skipped): it
  executes the colab once, adds the attempt and writes the markdown."""
  root = tiny_reproduction
  out = tmp_path_factory.mktemp("out")
  subprocess.run([sys.executable, "-m", "cljax.reproduce", "luthra",
                  "--scale=tiny", f"--runs_dir={root}", f"--out={out}"],
                 check=True, env={**os.environ, "JAX_NUM_CPU_DEVICES": "1"})
  return out


def test_tiny_colab_summary_renders_and_is_judged(driven):
  summary = json.loads((driven / "luthra.json").read_text())
  assert summary["seeds"] == [0, 1]
  # Intervals over the two seeds everywhere, and paired differences.
  r = summary["paired"]["dcl"]["pearson_dcl_nscl"]
  assert r["n"] == 2 and r["low"] <= r["mean"] <= r["high"]
  diff = summary["paired_difference"]["dcl-nscl"]["nscl_final"]
  assert diff["paired"] and diff["n"] == 2
  assert summary["gap_vs_classes_digits"]["dataset"] == "cljax_digits"
  assert summary["gap_vs_classes"]["fit_exact"]["r2"]["n"] == 2
  t1 = summary["theorem1"]
  assert t1["min_gap"] >= 0 and t1["max_gap_over_bound"] <= 1
  assert t1["exact_min_gap"] >= 0 and t1["exact_max_gap_over_bound"] <= 1
  figures = sorted(os.listdir(driven / "figures"))
  assert figures == sorted(f"luthra_{n}.png" for n in (
      "a_losses", "a_gap_exact", "c_nscl_reached", "d_umap", "ef_fewshot",
      "b_gap_vs_classes", "b_gap_vs_classes_digits", "temperature"))

  claims = luthra.claims(summary)
  assert claims[0].holds == "yes"  # Theorem 1 at every logged batch
  assert all(c.holds.split(" ")[0] in ("yes", "no", "partly", "undecided")
             for c in claims)
  text = (driven / "luthra.md").read_text()
  assert "python -m cljax.sweep --config=experiments/luthra_cl_vs_nscl.py" \
      in text
  assert "(figures/luthra_d_umap.png)" in text
  # Every number of the markdown is read from the summary: here, the mean
  # Pearson r of the DCL run as the claims table writes it.
  assert f"{r['mean']:.4f} [{r['low']:.4f}, {r['high']:.4f}]" in text
  for c in claims:
    assert c.measured.replace("|", "\\|") in text


def test_driver_adds_the_fewshot_attempt(driven):
  summary = json.loads((driven / "luthra.json").read_text())
  # At tiny scale the attempt reads the DCL runs themselves: it must then
  # measure what the colab's (f) measured at its largest m (same episodes).
  attempt = summary["attempts"]["fewshot"]
  assert attempt["shots"] == summary["fewshot"]["shots"][-1]
  for key, colab in (("error", "error_ncc_2way"), ("bound", "error_bound_2way")):
    want = summary["fewshot"]["dcl"][colab][-1]
    assert attempt[key]["mean"] == pytest.approx(want["mean"], rel=1e-5), key
  assert attempt["ratio/change"]["mean"] == 0.0
  assert "### Attempt: (f) with a larger budget" in (
      driven / "luthra.md").read_text()


def test_fewshot_attempt_is_judged_by_its_interval_and_rendered():
  base = _summary(r=_iv(.99, .98, 1.0), share=_iv(.95, .9, 1.0),
                  exponent=_iv(-1.2, -1.3, -1.1), ncc_diff=_iv(.01, -.02, .04),
                  bound=_iv(50, 40, 60), error=_iv(.1, .09, .11))
  assert not [c for c in luthra.claims(base) if c.claim.startswith("attempt")]
  for ratio, verdict in ((_iv(2.0, 1.5, 2.5), "yes"), (_iv(40, 30, 50), "no"),
                         (_iv(3.0, 2.0, 4.0), "undecided")):
    attempt = {"shots": 50, "episodes": 200, "steps": [400, 3200],
               "ratio": ratio, "ratio/change": _iv(-1.0, -2.0, 0.0)}
    for key in ("error", "bound", "cdnv", "directional_cdnv"):
      attempt[key] = _iv(.1, .09, .11)
      attempt[key + "/change"] = _iv(-.01, -.02, .0)
    summary = {**base, "attempts": {"fewshot": attempt}}
    (claim,) = [c for c in luthra.claims(summary)
                if c.claim.startswith("attempt")]
    assert claim.holds.startswith(verdict), (ratio, claim.holds)
    assert "3200 instead of 400 steps" in claim.claim
