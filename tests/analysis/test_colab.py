"""The getting-started notebook executes end to end on a tiny run made here.

Each paper's notebook has its own test module (tests/reproduce/test_colab_*.py) that
builds the tiny run or sweep that notebook reads, and runs it with
``notebooks.execute``.
"""

import os

from tests import notebooks
import pytest

from cljax.analysis import colab
from cljax.training import train
from experiments import default


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
  path = str(tmp_path_factory.mktemp("run"))
  config = default.get_config("smoke")
  config.evals.linear_probe.every = 0
  train.train_and_evaluate(config, path, verbose=False)
  return path


@pytest.mark.parametrize("cwd", ["", "colabs"])
def test_getting_started_executes(workdir, monkeypatch, cwd):
  # The run dir is given relative to the repository root, as the default is.
  nb = notebooks.execute("getting_started.ipynb", monkeypatch,
                         {"CLJAX_WORKDIR": notebooks.from_root(workdir)},
                         cwd=cwd)
  assert f"CLJAX_WORKDIR: reading {workdir}\n" in notebooks.text_output(nb)


def test_notebook_paths_start_at_the_repository_root(tmp_path, monkeypatch):
  root = notebooks.ROOT
  for cwd in (root, os.path.join(root, "colabs"), os.path.join(root, "tests")):
    monkeypatch.chdir(cwd)
    assert colab.repo_root() == root
    assert colab.resolve("runs/default") == os.path.join(root, "runs",
                                                         "default")
  monkeypatch.chdir(tmp_path)  # Outside a checkout: the working directory.
  assert colab.repo_root() is None
  assert colab.resolve("runs/x") == str(tmp_path / "runs" / "x")
  assert colab.resolve("/abs/x/../y") == "/abs/y"
  monkeypatch.setenv("CLJAX_TEST_DIRS", os.pathsep.join(["a", "/b"]))
  assert colab.from_env("CLJAX_TEST_DIRS", "c") == os.pathsep.join(
      [str(tmp_path / "a"), "/b"])
  monkeypatch.delenv("CLJAX_TEST_DIRS")
  assert colab.from_env("CLJAX_TEST_DIRS", "c") == str(tmp_path / "c")
