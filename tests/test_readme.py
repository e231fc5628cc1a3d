"""Every ```python block of README.md and of docs/**/*.md runs as written.

The blocks of one page run in order in one fresh interpreter (a subprocess,
so the page's own imports are what makes them work; each page starts from
nothing), on 8 simulated CPU devices, in a temp work dir that holds the run
the blocks load (``runs/default``, made here with the smoke preset of the job
the README's set-up command runs). The README's two set-up commands are the
ones the getting-started page and ``.ci/run`` give.
"""

import ast
import glob
import json
import os
import re
import subprocess
import sys

import pytest

from cljax.training import train
from experiments import default

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# The README and every docs page, relative to ROOT.
PAGES = ["README.md"] + sorted(
    os.path.relpath(p, ROOT) for p in glob.glob(
        os.path.join(ROOT, "docs", "**", "*.md"), recursive=True))

# Runs each block of one page in one shared namespace; a failure names the
# page and line.
_RUNNER = r"""
import json, sys, traceback
page = sys.argv[2]
blocks = json.load(open(sys.argv[1]))
namespace = {"__name__": "__main__"}
for line, source in blocks:
  print(f"--- {page} line {line}", flush=True)
  try:
    exec(compile(source, f"{page}:{line}", "exec"), namespace)
  except BaseException:
    traceback.print_exc()
    sys.exit(f"{page} block at line {line} failed")
"""

# Calls whose result is a function the block must then call.
_FUNCTION_MAKERS = {"jit", "shard_map", "pmap", "vmap", "grad",
                    "value_and_grad"}


def python_blocks(text: str) -> list[tuple[int, str]]:
  """(first line number, source) of each ```python block of ``text``."""
  blocks = []
  for match in re.finditer(r"^```python\n(.*?)^```", text, re.S | re.M):
    line = text.count("\n", 0, match.start()) + 2
    blocks.append((line, match.group(1)))
  return blocks


def _defined_and_called(source: str) -> tuple[set[str], set[str]]:
  defined, called = set(), set()
  for node in ast.walk(ast.parse(source)):
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
      defined.add(node.name)
    elif isinstance(node, ast.Assign) and len(node.targets) == 1 and (
        isinstance(node.targets[0], ast.Name)):
      value = node.value
      maker = isinstance(value, ast.Call) and (
          getattr(value.func, "attr", getattr(value.func, "id", None))
          in _FUNCTION_MAKERS)
      if isinstance(value, ast.Lambda) or maker:
        defined.add(node.targets[0].id)
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
      called.add(node.func.id)
  return defined, called


def _blocks(page: str) -> list[tuple[int, str]]:
  with open(os.path.join(ROOT, page), encoding="utf-8") as f:
    return python_blocks(f.read())


def _bash_lines(page: str) -> list[str]:
  with open(os.path.join(ROOT, page), encoding="utf-8") as f:
    text = f.read()
  return [line for block in re.findall(r"^```bash\n(.*?)^```", text,
                                       re.S | re.M)
          for line in block.splitlines()]


def test_readme_and_docs_have_the_documented_blocks():
  assert _blocks("README.md"), "the README shows one example"
  text = "".join(source for page in PAGES for _, source in _blocks(page))
  for needed in ("jax.shard_map", "evaluate.dataset_losses",
                 "checkpoints.load", "geometry.nc1", "jax.jit"):
    assert needed in text, needed


def test_setup_commands_agree_with_getting_started_and_ci():
  main_job = ("pip install -c constraints.txt -e . && python -m cljax.main "
              "--config=experiments/default.py --workdir=runs/default")
  tests = ('pip install -q -c constraints.txt -e ".[test]" && '
           "python -m pytest -q -n 2 tests")
  for page in ("README.md", os.path.join("docs", "getting-started.md")):
    lines = _bash_lines(page)
    assert main_job in lines and tests in lines, (page, lines)
  with open(os.path.join(ROOT, ".ci", "run"), encoding="utf-8") as f:
    assert tests in f.read().splitlines()


@pytest.mark.parametrize("page", PAGES)
def test_every_function_a_block_defines_is_called_there(page):
  for line, source in _blocks(page):
    defined, called = _defined_and_called(source)
    assert defined <= called, (
        f"{page} block at line {line} defines {sorted(defined - called)} "
        "without calling it")


def test_helpers_see_definitions_and_calls():
  defined, called = _defined_and_called(
      "f = jax.jit(g)\ndef h(x):\n  return x\nk = lambda x: x\nf(1)\n")
  assert defined == {"f", "h", "k"} and called == {"f"}
  assert python_blocks("a\n```python\nx = 1\n```\n```bash\nls\n```\n") == [
      (3, "x = 1\n")]


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
  path = tmp_path_factory.mktemp("readme")
  config = default.get_config("smoke")
  train.train_and_evaluate(config, str(path / "runs" / "default"),
                           verbose=False)
  return path


@pytest.mark.parametrize(
    "page", [p for p in PAGES if _blocks(p)])
def test_python_blocks_run_in_order(workdir, page):
  blocks = _blocks(page)
  blocks_file = workdir / (re.sub(r"\W", "_", page) + ".json")
  blocks_file.write_text(json.dumps(blocks))
  env = dict(os.environ, JAX_NUM_CPU_DEVICES="8", JAX_PLATFORMS="cpu",
             MPLBACKEND="Agg",
             PYTHONPATH=os.pathsep.join(
                 p for p in (ROOT, os.environ.get("PYTHONPATH")) if p))
  result = subprocess.run(
      [sys.executable, "-c", _RUNNER, str(blocks_file), page], cwd=workdir,
      env=env, capture_output=True, text=True, timeout=1200)
  assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-8000:]
  assert result.stdout.count(f"--- {page} line") == len(blocks)
