"""The getting-started notebook executes end to end on a tiny run made here.

Each paper's notebook has its own test module (tests/test_colab_*.py) that
builds the tiny run or sweep that notebook reads, and runs it with
``notebooks.execute``.
"""

import notebooks
import pytest

from cljax import train
from experiments import default


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
  path = str(tmp_path_factory.mktemp("run"))
  config = default.get_config("smoke")
  config.evals.linear_probe.every = 0
  train.train_and_evaluate(config, path, verbose=False)
  return path


def test_getting_started_executes(workdir, monkeypatch):
  notebooks.execute("getting_started.ipynb", monkeypatch,
                    {"CLJAX_WORKDIR": workdir})
