"""colabs/luthra.ipynb executes end to end on a tiny sweep made here.

One sweep of three tiny runs stands in for the notebook's three sweep dirs:
a CL (DCL) and an NSCL run that differ only in the loss (the paired
figures), and a second CL run with another number of classes and another
temperature (the gap-vs-C fit and the temperature plot need two values).
The notebook's JSON summary is then checked against what must hold.
"""

import json
import os

import notebooks
import numpy as np
import pytest

from cljax import sweep
from experiments import luthra_cl_vs_nscl


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
  })
  text = notebooks.text_output(nb)
  for name in ("PAIRED", "GAP_VS_CLASSES", "TEMPERATURE"):
    assert f"CLJAX_LUTHRA_{name}: reading {sweep_dir}\n" in text
  summary = json.loads(summary_path.read_text())

  paired = summary["paired"]
  assert sorted(paired) == ["dcl", "nscl"]
  for s in paired.values():
    assert s["gap_min"] >= 0 and s["max_gap_over_bound"] <= 1  # Theorem 1
    assert -1 <= s["pearson_dcl_nscl"] <= 1
  # Shared initialisation and first batch: the same losses at step 1.
  np.testing.assert_allclose(paired["dcl"]["nscl_first"],
                             paired["nscl"]["nscl_first"], rtol=1e-6)
  np.testing.assert_allclose(paired["dcl"]["dcl_first"],
                             paired["nscl"]["dcl_first"], rtol=1e-6)
  # Theorem 2: no batch gets below NSCL's value at the collapsed ETF.
  floor = summary["nscl_reached"]["etf_minimum"]
  assert all(s["nscl_final"] >= floor for s in paired.values())

  fewshot = summary["fewshot"]
  assert fewshot["shots"] == [1, 5]
  for name in ("dcl", "nscl"):
    assert all(0 <= e <= 1 for e in fewshot[name]["error_2way"])
    assert all(b > 0 for b in fewshot[name]["bound_2way"])

  gap = summary["gap_vs_classes"]
  assert gap["C"] == [2.0, 4.0]
  assert all(0 <= g <= b for g, b in zip(gap["gap"], gap["batch_bound"]))
  assert np.isfinite(gap["slope_vs_inv_C"])
  assert summary["temperature"]["tau"] == [0.5, 1.0]
  assert all(r <= 1 for r in summary["temperature"]["max_gap_over_bound"])

  names = sorted(os.listdir(figures))
  assert names == sorted(f"luthra_{n}.png" for n in (
      "a_losses", "c_nscl_reached", "ef_fewshot", "b_gap_vs_classes",
      "temperature"))
  assert all(os.path.getsize(figures / n) < 200_000 for n in names)
