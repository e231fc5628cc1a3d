"""colabs/graf.ipynb executes end to end on a tiny sweep made here.

The sweep is the noisy-label grid at the 'tiny' preset: SupCon and CE, each
at two noise rates; its noise-free points double as the SupCon-vs-CE runs.
"""

import os

from tests import notebooks
import pytest

from cljax import sweep
from experiments.graf import noisy_labels as graf_noisy_labels


@pytest.fixture(scope="module")
def sweep_dir(tmp_path_factory):
  path = str(tmp_path_factory.mktemp("graf_sweep"))
  config = graf_noisy_labels.get_config("tiny")
  grid = [("loss.name", ["supcon", "cross_entropy"]),
          ("data.label_noise", [0.0, 0.3])]
  sweep.run_sweep(config, grid, path,
                  config_arg="experiments/graf/noisy_labels.py:tiny",
                  verbose=False)
  return path


def test_graf_notebook_executes(sweep_dir, monkeypatch):
  clean = [os.path.join(sweep_dir, f"loss.name={loss},data.label_noise=0.0")
           for loss in ("supcon", "cross_entropy")]
  nb = notebooks.execute("graf.ipynb", monkeypatch, {
      "CLJAX_GRAF_RUNS": os.pathsep.join(map(notebooks.from_root, clean)),
      "CLJAX_GRAF_SWEEP": notebooks.from_root(sweep_dir)})
  text = notebooks.text_output(nb)
  assert f"CLJAX_GRAF_RUNS: reading {', '.join(clean)}\n" in text
  assert f"CLJAX_GRAF_SWEEP: reading {sweep_dir}\n" in text
  # Both models were loaded and both noise rates of each were tabulated.
  assert "supcon (" in text and "CE (" in text
  assert text.count("p=0.30") == 2 and text.count("p=0.00") == 2
