"""The getting-started notebook executes end to end on a tiny run made here.

Each paper's notebook has its own test module (tests/test_colab_*.py) that
builds the tiny sweep that notebook reads.
"""

import os

import nbclient
import nbformat
import pytest

from cljax import train
from experiments import default

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NOTEBOOKS = ["getting_started.ipynb"]


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
  path = str(tmp_path_factory.mktemp("run"))
  config = default.get_config("smoke")
  config.eval.linear_probe_steps = 0
  train.train_and_evaluate(config, path, verbose=False)
  return path


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_executes(name, workdir, monkeypatch):
  monkeypatch.setenv("CLJAX_WORKDIR", workdir)
  monkeypatch.setenv("JAX_NUM_CPU_DEVICES", "1")
  monkeypatch.setenv("MPLBACKEND", "Agg")
  nb = nbformat.read(os.path.join(ROOT, "colabs", name), as_version=4)
  client = nbclient.NotebookClient(nb, timeout=600, kernel_name="python3",
                                   resources={"metadata": {"path": ROOT}})
  client.execute()
  errors = [o for c in nb.cells if c.cell_type == "code"
            for o in c.get("outputs", []) if o.get("output_type") == "error"]
  assert not errors
