"""The unconstrained-features notebook executes on tiny sweeps made here.

The sweeps are produced by the sweep launcher (``cljax.sweep.run_sweep``) from
the experiment configs' smoke presets, laid out as the notebook expects, and
the notebook draws every figure from them.
"""

import json
import os

from tests import notebooks
import numpy as np
import pytest
from scipy import stats as scipy_stats

from cljax.analysis import checkpoints
from cljax import sweep
from cljax import unconstrained
from experiments.unconstrained import luthra_thm2 as luthra
from experiments.unconstrained import graf_batch
from experiments.unconstrained import graf_ce
from experiments.unconstrained import graf_multisets
from experiments.unconstrained import jiang


@pytest.fixture(scope="module")
def runs_dir(tmp_path_factory):
  root = tmp_path_factory.mktemp("unconstrained")
  sweeps = {
      "luthra_thm2": (luthra, ["loss.kwargs.temperature=[0.2]"]),
      "graf_batches": (graf_batch, ["class_counts=[(7,1,1),(3,3,3)]"]),
      "jiang_beta": (jiang, ["loss.kwargs.beta=[30.0]"]),
  }
  for name, (module, grid) in sweeps.items():
    # One sweep over seeds exercises the notebook's intervals (section 4).
    seeds = [0, 1] if name == "luthra_thm2" else None
    sweep.run_sweep(module.get_config("smoke"), sweep.parse_grid(grid),
                    str(root / name), seeds=seeds, verbose=False)
  for name, module in [("graf_multisets", graf_multisets),
                       ("graf_ce", graf_ce)]:
    unconstrained.run(module.get_config("smoke"), str(root / name),
                      verbose=False)
  return str(root)


def test_unconstrained_features_notebook_executes(runs_dir, tmp_path,
                                                  monkeypatch):
  figures = tmp_path / "figures"
  summary = tmp_path / "summary.json"
  nb = notebooks.execute("unconstrained_features.ipynb", monkeypatch, {
      "CLJAX_UNCONSTRAINED_DIR": notebooks.from_root(runs_dir),
      "CLJAX_FIGURES": str(figures), "CLJAX_SUMMARY": str(summary)})
  names = sorted(os.listdir(figures))
  assert names == ["unconstrained_graf_batches.png",
                   "unconstrained_graf_multisets.png",
                   "unconstrained_jiang_beta.png",
                   "unconstrained_luthra_thm2.png",
                   "unconstrained_seeds.png"]
  # The seeded sweep has an interval over its 2 seeds; the others none.
  with open(summary) as f:
    numbers = json.load(f)
  (row,) = numbers["luthra_thm2"]
  assert row["seeds"] == [0, 1] and row["excess"]["n"] == 2
  excess = [checkpoints.read_json(os.path.join(
      runs_dir, "luthra_thm2", f"loss.kwargs.temperature=0.2,seed={s}",
      "summary.json")) for s in (0, 1)]
  values = [e["final_loss"] - e["closed_form_minimum"] for e in excess]
  half = scipy_stats.t.ppf(0.975, 1) * np.std(values, ddof=1) / np.sqrt(2)
  np.testing.assert_allclose([row["excess"]["low"], row["excess"]["high"]],
                             [np.mean(values) - half, np.mean(values) + half],
                             rtol=1e-9)
  # Its null, the same excess at the runs' initial (random) embeddings, is
  # what a run that cannot move ends with (learning rate 0), per seed.
  still = []
  for seed in (0, 1):
    config = luthra.get_config("smoke")
    config.update({"seed": seed, "learning_rate": 0.0, "steps": 1,
                   "log_every": 1})
    config.loss.kwargs.temperature = 0.2
    s = unconstrained.run(config, verbose=False)
    still.append(s["final_loss"] - s["closed_form_minimum"])
  assert row["excess_init"]["n"] == 2
  np.testing.assert_allclose(row["excess_init"]["mean"], np.mean(still),
                             rtol=1e-5)
  assert row["excess_init"]["mean"] > row["excess"]["mean"] + 1.0
  assert numbers["graf_batches"] == numbers["jiang_beta"] == []
  text = notebooks.text_output(nb)
  assert f"CLJAX_UNCONSTRAINED_DIR: reading {runs_dir}\n" in text
  assert "2002 multisets of size 9 from 6 points" in text
  assert "(7, 1, 1)" in text and "(3, 3, 3)" in text
