"""colabs/luthra.ipynb executes end to end on a tiny sweep made here.

One sweep of three tiny runs stands in for the notebook's three sweep dirs:
a CL (DCL) and an NSCL run that differ only in the loss (the paired
figures), and a second CL run with another number of classes and another
temperature (the gap-vs-C fit and the temperature plot need two values).
The notebook's JSON summary is then checked against what must hold; with
one seed every value is a mean without an interval (the multi-seed path is
tests/reproduce/test_reproduce_luthra.py's).
"""

import json
import os

from tests import notebooks
import numpy as np
import pytest

from cljax import sweep
from experiments.luthra import cl_vs_nscl as luthra_cl_vs_nscl


@pytest.fixture(scope="module")
def sweep_dir(tmp_path_factory):
  path = str(tmp_path_factory.mktemp("luthra_sweep"))
  config = luthra_cl_vs_nscl.get_config("tiny")
  config.steps = 3
  config.log_every = 1  # row 1 is the shared initialisation's first batch
  config.eval_every = 3
  config.checkpoint.every = 3
  config.evals.fewshot.episodes = 2
  zipped = sweep.parse_grid([
      "loss.name=['dcl', 'nscl', 'dcl']", "data.classes=[2, 2, 4]",
      "loss.kwargs.temperature=[0.5, 0.5, 1.0]",
      "monitor.temperature=[0.5, 0.5, 1.0]"])
  sweep.run_sweep(config, [], path, zipped=zipped, verbose=False)
  return path



def _has_umap() -> bool:
  try:
    import umap  # pylint: disable=g-import-not-at-top,unused-import
  except ImportError:
    return False
  return True

def test_luthra_notebook_executes_and_its_numbers_hold(sweep_dir, tmp_path,
                                                       monkeypatch):
  figures = tmp_path / "figures"
  summary_path = tmp_path / "summary.json"
  relative = notebooks.from_root(sweep_dir)
  nb = notebooks.execute("luthra.ipynb", monkeypatch, {
      "CLJAX_LUTHRA_PAIRED": relative,
      "CLJAX_LUTHRA_GAP_VS_CLASSES": relative,
      "CLJAX_LUTHRA_TEMPERATURE": relative,
      "CLJAX_LUTHRA_FIGURES": str(figures),
      "CLJAX_LUTHRA_SUMMARY": str(summary_path),
      "CLJAX_LUTHRA_SHOTS": "1,5",
      "CLJAX_LUTHRA_EPISODES": "4",
      "CLJAX_LUTHRA_EXACT_EXAMPLES": "300",
  })
  text = notebooks.text_output(nb)
  for name in ("PAIRED", "GAP_VS_CLASSES", "TEMPERATURE"):
    assert f"CLJAX_LUTHRA_{name}: reading {sweep_dir}\n" in text
  summary = json.loads(summary_path.read_text())
  # One seed: every value is a mean without an interval, and says so.
  assert summary["seeds"] == [0]

  def value(d):
    assert d["n"] == 1 and d["low"] is None and d["high"] is None, d
    return d["mean"]

  paired = summary["paired"]
  assert sorted(paired) == ["dcl", "nscl"]
  for s in paired.values():
    assert value(s["gap_min"]) >= 0 and value(s["max_gap_over_bound"]) <= 1
    assert -1 <= value(s["pearson_dcl_nscl"]) <= 1
    # The exact whole-split gap (evaluate_split) obeys Theorem 1 too.
    assert 0 <= value(s["exact_gap_final"]) <= value(s["exact_bound_final"])
  # Shared initialisation and first batch: the same losses at step 1.
  np.testing.assert_allclose(value(paired["dcl"]["nscl_first"]),
                             value(paired["nscl"]["nscl_first"]), rtol=1e-6)
  np.testing.assert_allclose(value(paired["dcl"]["dcl_first"]),
                             value(paired["nscl"]["dcl_first"]), rtol=1e-6)
  diff = summary["paired_difference"]["dcl-nscl"]["nscl_final"]
  np.testing.assert_allclose(
      value(diff), value(paired["dcl"]["nscl_final"]) -
      value(paired["nscl"]["nscl_final"]), rtol=1e-9, atol=1e-12)
  # Theorem 2: no batch gets below NSCL's value at the collapsed ETF.
  floor = summary["nscl_reached"]["etf_minimum"]
  assert all(value(s["nscl_final"]) >= floor for s in paired.values())
  t1 = summary["theorem1"]
  # Two paired runs; the gap and temperature sections each read both CL runs.
  assert t1["runs"] == 6
  assert t1["min_gap"] >= 0 and t1["max_gap_over_bound"] <= 1

  fewshot = summary["fewshot"]
  assert fewshot["shots"] == [1, 5] and fewshot["probe"] == "linear_probe"
  for name in ("dcl", "nscl"):
    for key in ("error_ncc_2way", "error_probe_2way", "error_ncc_Cway"):
      assert all(0 <= value(e) <= 1 for e in fewshot[name][key])
    assert all(value(b) > 0 for b in fewshot[name]["error_bound_2way"])
  # The test install has no umap-learn (a colabs extra): the colab then
  # draws (d) with PCA and says so; where umap-learn is installed, UMAP.
  assert summary["umap"]["method"] == ("UMAP" if _has_umap() else "PCA")

  gap = summary["gap_vs_classes"]
  assert gap["C"] == [2.0, 4.0]
  assert all(0 <= value(g) <= value(b)
             for g, b in zip(gap["gap"], gap["batch_bound"]))
  assert all(0 <= value(g) <= value(b)
             for g, b in zip(gap["exact_gap"], gap["exact_bound"]))
  assert np.isfinite(value(gap["fit_per_batch"]["slope_vs_inv_C"]))
  # The null's views are P1's gap evaluation rebuilt from the public pieces
  # (make_views, Run.features): with true labels they give the exact gap
  # that cljax.analysis.evaluate.evaluate_split computed (same keys and batches).
  for j in range(2):
    np.testing.assert_allclose(value(gap["exact_gap_views"][j]),
                               value(gap["exact_gap"][j]), rtol=1e-4)
    null = value(gap["null_exact_gap"][j])
    assert 0 <= null <= value(gap["exact_bound"][j])
    np.testing.assert_allclose(value(gap["exact_gap_over_null"][j]),
                               value(gap["exact_gap_views"][j]) / null,
                               rtol=1e-9)
  assert summary["temperature"]["tau"] == [0.5, 1.0]
  assert all(value(r) <= 1
             for r in summary["temperature"]["max_gap_over_bound"])
  assert "gap_vs_classes_digits" not in summary  # CLJAX_LUTHRA_GAP_DIGITS unset

  names = sorted(os.listdir(figures))
  assert names == sorted(f"luthra_{n}.png" for n in (
      "a_losses", "a_gap_exact", "c_nscl_reached", "d_umap", "ef_fewshot",
      "b_gap_vs_classes", "temperature"))
  assert all(os.path.getsize(figures / n) < 200_000 for n in names)
