"""The unconstrained-features notebook executes on tiny sweeps made here.

The sweeps are produced by the sweep launcher (``cljax.sweep.run_sweep``) from
the experiment configs' smoke presets, laid out as the notebook expects, and
the notebook draws every figure from them.
"""

import os

import notebooks
import pytest

from cljax import sweep
from cljax import unconstrained
from experiments import unconstrained as luthra
from experiments import unconstrained_graf_batch as graf_batch
from experiments import unconstrained_graf_ce as graf_ce
from experiments import unconstrained_graf_multisets as graf_multisets
from experiments import unconstrained_jiang as jiang


@pytest.fixture(scope="module")
def runs_dir(tmp_path_factory):
  root = tmp_path_factory.mktemp("unconstrained")
  sweeps = {
      "luthra_thm2": (luthra, ["loss.kwargs.temperature=[0.2]"]),
      "graf_batches": (graf_batch, ["class_counts=[(7,1,1),(3,3,3)]"]),
      "jiang_beta": (jiang, ["loss.kwargs.beta=[30.0]"]),
  }
  for name, (module, grid) in sweeps.items():
    sweep.run_sweep(module.get_config("smoke"), sweep.parse_grid(grid),
                    str(root / name), verbose=False)
  for name, module in [("graf_multisets", graf_multisets),
                       ("graf_ce", graf_ce)]:
    unconstrained.run(module.get_config("smoke"), str(root / name),
                      verbose=False)
  return str(root)


def test_unconstrained_features_notebook_executes(runs_dir, tmp_path,
                                                  monkeypatch):
  figures = tmp_path / "figures"
  nb = notebooks.execute("unconstrained_features.ipynb", monkeypatch, {
      "CLJAX_UNCONSTRAINED_DIR": notebooks.from_root(runs_dir),
      "CLJAX_FIGURES": str(figures)})
  names = sorted(os.listdir(figures))
  assert names == ["unconstrained_graf_batches.png",
                   "unconstrained_graf_multisets.png",
                   "unconstrained_jiang_beta.png",
                   "unconstrained_luthra_thm2.png"]
  text = notebooks.text_output(nb)
  assert f"CLJAX_UNCONSTRAINED_DIR: reading {runs_dir}\n" in text
  assert "2002 multisets of size 9 from 6 points" in text
  assert "(7, 1, 1)" in text and "(3, 3, 3)" in text
