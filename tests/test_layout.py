"""The package's layout and its import rules, read from the source.

``ls cljax/`` shows the architecture: the science packages (``losses``,
``geometry``, ``probes``, ``theory``), ``models`` and ``data``, the training
runtime (``training``), analysis of finished runs (``analysis``), the
free-feature driver (``unconstrained``), the reproductions (``reproduce``)
and private helpers (``_src``); besides ``__init__.py`` only the entry
points ``main`` and ``sweep`` sit at the top. Imports run one way, checked
here on every module-level import of every module:

  _src < losses, geometry, probes, theory < models, data < analysis
       < training < unconstrained < sweep, main < reproduce

(one exception: ``cljax.training.cli``'s table of drivers by
``config.mode`` names ``cljax.unconstrained.run`` beside the train loop; the
command line is the one place that knows both drivers). No function-local
import of cljax exists, so none can hide a cycle, and there is no cycle.
No module has more than ``MAX_LINES`` (500) lines: one module, one job.
"""

import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "cljax"
CORE = ("losses", "geometry", "probes", "theory")
PACKAGES = {"_src", "analysis", "data", "geometry", "losses", "models",
            "probes", "reproduce", "theory", "training", "unconstrained"}
LOOSE = {"__init__.py", "main.py", "sweep.py"}
# What each layer may import (besides itself and the cljax package's
# version): the rank of every package, lower imports nothing higher.
RANK = {"_src": 0, "losses": 1, "geometry": 1, "probes": 1, "theory": 1,
        "models": 2, "data": 2, "analysis": 3, "training": 4,
        "unconstrained": 5, "sweep": 6, "main": 6, "reproduce": 7}
# Lines a module may have (issue 25): one module, one job.
MAX_LINES = 500
ENGINE_ORDER = ["views", "reduce", "masks", "terms", "dense", "tiled",
                "dispatch"]
# The training modules analysis may read: the exit statuses, the metrics
# file's reader, the config flattening and the provenance record. Never the
# loop, the step, the checkpoint writer, the evaluators or the command line.
ANALYSIS_MAY_READ = {"cljax.training", "cljax.training.errors",
                     "cljax.training.metric_writer",
                     "cljax.training.run_identity",
                     "cljax.training.provenance"}


def _module_name(path):
  parts = list(path.relative_to(ROOT).with_suffix("").parts)
  if parts[-1] == "__init__":
    parts = parts[:-1]
  return ".".join(parts)


MODULES = {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))
           if "__pycache__" not in p.parts}


def _resolve(node, name):
  """Module names one import statement refers to."""
  if isinstance(node, ast.Import):
    return [a.name for a in node.names]
  if node.level:  # No relative imports in cljax; flag them if one appears.
    return [f"<relative import in {name}>"]
  out = []
  for alias in node.names:
    full = f"{node.module}.{alias.name}"
    out.append(full if full in MODULES else node.module)
  return out


def _imports(name):
  """(module-level cljax imports, function-local cljax imports) of ``name``."""
  tree = ast.parse(MODULES[name].read_text())
  top, local = [], []
  for node in ast.walk(tree):
    if isinstance(node, (ast.Import, ast.ImportFrom)):
      mods = [m for m in _resolve(node, name) if m.startswith(("cljax", "<"))]
      (top if node.col_offset == 0 else local).extend(mods)
  return top, local


GRAPH = {name: _imports(name)[0] for name in MODULES}


def _package(module):
  parts = module.split(".")
  return parts[1] if len(parts) > 1 else "cljax"


def test_the_top_level_shows_the_architecture():
  entries = {p.name for p in PACKAGE.iterdir() if p.name != "__pycache__"}
  assert {e for e in entries if e.endswith(".py")} == LOOSE
  assert {e for e in entries if not e.endswith(".py")} == PACKAGES


@pytest.mark.parametrize("name", sorted(MODULES))
def test_imports_run_downward(name):
  here = _package(name)
  if here == "cljax":
    return  # The package root: test_the_package_root_imports_only_the_science
  for module in GRAPH[name]:
    if (name, module) == ("cljax.training.cli", "cljax.unconstrained"):
      continue  # The drivers' table (see the module docstring).
    assert not module.startswith("<"), module
    there = _package(module)
    if there in ("cljax", here) or module in ANALYSIS_MAY_READ and (
        here == "analysis"):
      continue
    assert RANK[there] <= RANK[here], (
        f"{name} imports {module}: {here} may not import {there}")


@pytest.mark.parametrize("name", sorted(MODULES))
def test_no_function_local_import(name):
  assert not _imports(name)[1], name


@pytest.mark.parametrize("name", sorted(MODULES))
def test_no_module_over_500_lines(name):
  # A module that grows past this does more than one job: split it.
  lines = len(MODULES[name].read_text().splitlines())
  assert lines <= MAX_LINES, f"{name}: {lines} lines > {MAX_LINES}"


def test_the_package_root_imports_only_the_science():
  assert set(GRAPH["cljax"]) == {f"cljax.{p}" for p in CORE}


def test_nothing_imports_the_entry_points_or_the_reproductions():
  for name, imported in GRAPH.items():
    for module in imported:
      if module.startswith("cljax.reproduce"):
        assert name.startswith("cljax.reproduce"), (name, module)
      assert module != "cljax.main", name


def test_no_import_cycle():
  state, stack = {}, []

  def visit(name):
    state[name] = "open"
    stack.append(name)
    for module in GRAPH[name]:
      if module not in MODULES:
        continue
      if state.get(module) == "open":
        cycle = stack[stack.index(module):] + [module]
        pytest.fail("import cycle: " + " -> ".join(cycle))
      if module not in state:
        visit(module)
    stack.pop()
    state[name] = "done"

  for name in MODULES:
    if name not in state:
      visit(name)


def test_engine_imports_only_downward():
  engine = PACKAGE / "_src" / "engine"
  assert sorted(p.stem for p in engine.glob("*.py")) == sorted(
      ENGINE_ORDER + ["__init__"])
  for i, name in enumerate(ENGINE_ORDER):
    for module in GRAPH[f"cljax._src.engine.{name}"]:
      if module.startswith("cljax._src.engine."):
        assert module.split(".")[-1] in ENGINE_ORDER[:i], (name, module)
      else:
        assert module == "cljax._src.checks", (name, module)


def test_every_module_is_reached_by_a_test_file_of_its_package():
  # Tests mirror the code: tests/<package>/ holds the tests of cljax/<package>.
  tests = ROOT / "tests"
  missing = [p for p in sorted(PACKAGES - {"_src"})
             if not list((tests / p).glob("test_*.py"))]
  assert not missing, missing

