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
from experiments.luthra import cl_vs_nscl as luthra_cl_vs_nscl
from experiments.luthra import gap_vs_classes as luthra_gap_vs_classes
from experiments.luthra import temperature as luthra_temperature

# One worker runs the module: its tiny reproduction is a module fixture.
pytestmark = pytest.mark.xdist_group("reproduce_luthra")

_MODULES = {"cl_vs_nscl": luthra_cl_vs_nscl,
            "gap_vs_classes": luthra_gap_vs_classes,
            "temperature": luthra_temperature}


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
  assert [s.name for s in sweeps] == [
      "cl_vs_nscl", "cl_vs_nscl_c2", "fewshot_collapsed", "cl_vs_nscl_mnist",
      "gap_vs_classes_mnist", "gap_vs_classes", "gap_vs_classes_digits",
      "temperature"]
  mnist = {"cl_vs_nscl_mnist", "gap_vs_classes_mnist"}
  assert all(s.seeds == (luthra.MNIST_SEEDS if s.name in mnist else
                         luthra.SEEDS)[scale] >= 2 for s in sweeps)
  for s in sweeps:
    pts = list(sweep_lib.points(_config(s), _grid(s), str(tmp_path / s.name),
                                sweep_lib.parse_grid(list(s.zipped))))
    assert len({workdir for _, _, workdir in pts}) == len(pts)
    assert len(pts) >= s.seeds
    assert all(cfg.seed == point.get("seed", cfg.seed) for point, cfg, _ in pts)
    if s.name == "cl_vs_nscl_c2":
      assert all(cfg.data.classes == 2 for _, cfg, _ in pts)
    if s.name == "fewshot_collapsed":
      assert all(cfg.loss.name == "supcon" and
                 cfg.loss.kwargs.temperature == 0.1 for _, cfg, _ in pts)
    if s.name in mnist:
      # Real MNIST at cpu scale; tiny keeps the embedded tiny data.
      names = {cfg.data.name for _, cfg, _ in pts}
      assert (names == {"cljax_mnist"}) == (scale != "tiny"), names
  digits = _config(sweeps[6])
  assert digits.data.name == "cljax_digits"
  # Every C of the digits sweep divides the batch: exactly balanced batches.
  for c in (2, 5, 10):
    assert digits.data.batch_size % c == 0
  tiny = dict(o.split("=", 1) for o in sweeps[6].overrides)
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


def test_claims_without_nulls_are_undecided():
  # A summary in the pre-null schema (the committed JSON's): every claim
  # about learning says its null was not measured; tests/reproduce/test_claims_luthra
  # covers the verdicts against the nulls.
  summary = {
      "seeds": [0, 1, 2],
      "theorem1": {"runs": 9, "steps": 90, "min_gap": 0.01,
                   "max_gap_over_bound": 0.2, "exact_min_gap": 0.05,
                   "exact_max_gap_over_bound": 0.3, "exact_values": 9},
      "paired": {"dcl": {"pearson_dcl_nscl": _iv(.99, .98, 1.0)}},
      "nscl_reached": {"etf_minimum": 4.0, "dcl": {
          "share_of_nscl_decrease": _iv(.95, .9, 1.0)}, "nscl": {
              "share_of_nscl_decrease": _iv(1., 1., 1.)}},
  }
  claims = {c.claim.split(" ")[0]: c for c in luthra.claims(summary)}
  assert claims["Theorem"].holds == "yes"
  for key in ("(a)", "(c)"):
    assert claims[key].holds == "undecided: no null"
    assert claims[key].null == "not measured in this JSON"
  summary["theorem1"]["min_gap"] = -1e-3
  assert luthra.claims(summary)[0].holds.startswith("no")


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
      "b_gap_vs_classes", "b_gap_vs_classes_digits", "b_gap_vs_classes_mnist",
      "temperature"))
  # The nulls, measured by the same code on the same runs.
  dcl = summary["paired"]["dcl"]
  assert dcl["pearson_null"]["n"] == 2 and dcl["pearson_z_minus_null"]["paired"]
  for key in ("gap_vs_classes", "gap_vs_classes_digits",
              "gap_vs_classes_mnist"):
    g = summary[key]
    assert len(g["exact_gap_over_null"]) == len(g["C"]) == 2
    assert all(v["mean"] > 0 for v in g["null_exact_gap"])
    assert g["exponent_minus_null"]["n"] == 2
  for key, C in (("nscl_reached", 10), ("nscl_reached_c2", 2),
                 ("nscl_reached_mnist", 10)):
    reached = summary[key]
    assert reached["C"] == C
    assert reached["nscl"]["share_of_etf_way"]["n"] == 2
    # Random means sit away from the ETF that an orthonormal frame of
    # C = 2 (cosine 0 instead of -1) misses too.
    assert 0 < reached["etf_distance_random_means"] <= 2
  assert summary["fewshot_collapsed"]["loss"] == "supcon"
  f = summary["fewshot"]["dcl"]
  assert len(f["bound_over_error_2way"]) == len(summary["fewshot"]["shots"])
  assert 0 <= f["error_ncc_2way_null"]["mean"] <= 1

  claims = luthra.claims(summary)
  assert claims[0].holds == "yes"  # Theorem 1 at every logged batch
  # A qualified verdict reads "undecided: <why>".
  assert all(c.holds.split(" ")[0].rstrip(":") in (
      "yes", "no", "partly", "undecided") for c in claims), [
          c.holds for c in claims]
  text = (driven / "luthra.md").read_text()
  assert "python -m cljax.sweep --config=experiments/luthra/cl_vs_nscl.py" \
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
  base = {"seeds": [0, 1, 2], "paired": {},
          "theorem1": {"runs": 9, "steps": 90, "min_gap": 0.01,
                       "max_gap_over_bound": 0.2, "exact_min_gap": 0.05,
                       "exact_max_gap_over_bound": 0.3, "exact_values": 9}}
  assert not [c for c in luthra.claims(base) if c.claim.startswith("attempt")]
  for ratio, floor, verdict in (
      (_iv(2.0, 1.5, 2.5), _iv(1., .8, 1.2), "yes"),
      (_iv(40, 30, 50), _iv(1., .8, 1.2), "no"),
      (_iv(3.0, 2.0, 4.0), _iv(1., .8, 1.2), "undecided"),
      # The features' floor 4 x directional CDNV already exceeds 3x the
      # error: 'not tight' was fixed before the bound's finite-m terms.
      (_iv(40, 30, 50), _iv(9., 8., 10.), "undecided: not tight")):
    attempt = {"shots": 50, "episodes": 200, "steps": [400, 3200],
               "ratio": ratio, "ratio/change": _iv(-1.0, -2.0, 0.0),
               "floor_ratio": floor, "floor_ratio/change": _iv(0, -1, 1)}
    for key in ("error", "bound", "cdnv", "directional_cdnv"):
      attempt[key] = _iv(.1, .09, .11)
      attempt[key + "/change"] = _iv(-.01, -.02, .0)
    summary = {**base, "attempts": {"fewshot": attempt}}
    (claim,) = [c for c in luthra.claims(summary)
                if c.claim.startswith("attempt")]
    assert claim.holds.startswith(verdict), (ratio, claim.holds)
    assert "3200 instead of 400 steps" in claim.claim
