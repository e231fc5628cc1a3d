"""Every ```python block of README.md runs as written, in order.

The blocks run in one fresh interpreter (a subprocess, so the README's own
imports are what makes them work), on 8 simulated CPU devices, in a temp
work dir that holds the run the blocks load (``runs/default``, made here
with the smoke preset of the job the README's set-up command runs).
"""

import ast
import json
import os
import re
import subprocess
import sys

import pytest

from cljax import train
from experiments import default

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
README = os.path.join(ROOT, "README.md")

# Runs each block in one shared namespace; a failure names the README line.
_RUNNER = r"""
import json, sys, traceback
blocks = json.load(open(sys.argv[1]))
namespace = {"__name__": "__main__"}
for line, source in blocks:
  print(f"--- README.md line {line}", flush=True)
  try:
    exec(compile(source, f"README.md:{line}", "exec"), namespace)
  except BaseException:
    traceback.print_exc()
    sys.exit(f"README.md block at line {line} failed")
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


def test_readme_has_the_documented_blocks():
  with open(README) as f:
    blocks = python_blocks(f.read())
  assert len(blocks) >= 4, blocks
  text = "".join(source for _, source in blocks)
  for needed in ("jax.shard_map", "evaluate.dataset_losses",
                 "checkpoint.load", "geometry.nc1"):
    assert needed in text, needed


def test_every_function_a_block_defines_is_called_there():
  with open(README) as f:
    blocks = python_blocks(f.read())
  for line, source in blocks:
    defined, called = _defined_and_called(source)
    assert defined <= called, (
        f"README.md block at line {line} defines {sorted(defined - called)} "
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


def test_readme_python_blocks_run_in_order(workdir):
  with open(README) as f:
    blocks = python_blocks(f.read())
  blocks_file = workdir / "blocks.json"
  blocks_file.write_text(json.dumps(blocks))
  env = dict(os.environ, JAX_NUM_CPU_DEVICES="8", JAX_PLATFORMS="cpu",
             MPLBACKEND="Agg",
             PYTHONPATH=os.pathsep.join(
                 p for p in (ROOT, os.environ.get("PYTHONPATH")) if p))
  result = subprocess.run(
      [sys.executable, "-c", _RUNNER, str(blocks_file)], cwd=workdir,
      env=env, capture_output=True, text=True, timeout=1200)
  assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-8000:]
  assert result.stdout.count("--- README.md line") == len(blocks)
