"""The loss packages' layout: small modules that import only downward.

``cljax/losses/`` and the private engine ``cljax/_engine/`` are the pure
core: no module over 500 lines, no import of the training machinery, and
the engine's modules form a fixed order (views, reduce, masks, terms,
dense, tiled, dispatch) in which each imports only earlier ones.
"""

import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1] / "cljax"
ENGINE_ORDER = ["views", "reduce", "masks", "terms", "dense", "tiled",
                "dispatch"]
MACHINERY = ("cljax.train", "cljax.data", "cljax.models", "cljax.checkpoint",
             "cljax.main", "cljax.sweep", "cljax.evaluate")
FILES = sorted((ROOT / "losses").glob("*.py")) + sorted(
    (ROOT / "_engine").glob("*.py"))


def _cljax_imports(path):
  out = []
  for node in ast.walk(ast.parse(path.read_text())):
    if isinstance(node, ast.ImportFrom) and node.module and (
        node.module.startswith("cljax")):
      if node.module in ("cljax", "cljax._engine", "cljax.losses"):
        out += [f"{node.module}.{a.name}" for a in node.names]
      else:
        out.append(node.module)
    elif isinstance(node, ast.Import):
      out += [a.name for a in node.names if a.name.startswith("cljax")]
  return out


@pytest.mark.parametrize("path", FILES, ids=lambda p: f"{p.parent.name}/"
                         f"{p.name}")
def test_small_pure_modules(path):
  assert len(path.read_text().splitlines()) <= 500
  for module in _cljax_imports(path):
    assert not module.startswith(MACHINERY), module


def test_engine_imports_only_downward():
  assert sorted(p.stem for p in (ROOT / "_engine").glob("*.py")) == sorted(
      ENGINE_ORDER + ["__init__"])
  for i, name in enumerate(ENGINE_ORDER):
    for module in _cljax_imports(ROOT / "_engine" / f"{name}.py"):
      if module.startswith("cljax._engine"):
        below = module.split(".")[2]
        assert below in ENGINE_ORDER[:i], (name, module)
      else:
        assert module == "cljax._checks", (name, module)


def test_engine_never_imports_the_losses():
  for path in (ROOT / "_engine").glob("*.py"):
    assert not any(m.startswith("cljax.losses")
                   for m in _cljax_imports(path)), path
