"""Runs the ``>>>`` examples of every module under ``cljax/``.

Modules are discovered with ``pkgutil.walk_packages``, so modules that other
teams add are covered without editing this file. Every module must import with
the test install; one that cannot fails its test (optional extras are imported
inside the functions that need them).
"""

import contextlib
import doctest
import importlib
import inspect
import io
import pkgutil

import pytest

import cljax
from cljax import probes
from cljax import theory

_FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE


def _module_names():
  return sorted(info.name for info in pkgutil.walk_packages(
      cljax.__path__, prefix="cljax."))


def _prepare_embedded_datasets():
  # The first use of an embedded dataset prepares it and TFDS prints about
  # it; prepare it here, quietly, so that the data examples' output does not
  # depend on test order or on a fresh data dir.
  from cljax import data  # pylint: disable=g-import-not-at-top
  with contextlib.redirect_stdout(io.StringIO()):
    data.build({"name": "cljax_digits", "batch_size": 8}, seed=0)


@pytest.mark.parametrize("name", _module_names())
def test_module_examples_run(name):
  # Every module imports with the test install: an ImportError is a failure
  # (a missing dependency), not a skip.
  module = importlib.import_module(name)
  if name.startswith("cljax.data"):
    _prepare_embedded_datasets()
  finder = doctest.DocTestFinder(exclude_empty=True)
  runner = doctest.DocTestRunner(optionflags=_FLAGS)
  # Each docstring runs in a copy of its module's globals, as doctest.testmod.
  for test in finder.find(module, name, globs=vars(module).copy()):
    runner.run(test)
  result = runner.summarize(verbose=False)
  assert result.failed == 0, f"{result.failed} example(s) failed in {name}"


def test_discovery_sees_the_packages():
  names = _module_names()
  for expected in ("cljax.probes.fewshot", "cljax.theory.gap",
                   "cljax.models", "cljax.data.pipeline"):
    assert expected in names


@pytest.mark.parametrize("package", [probes, theory],
                         ids=["probes", "theory"])
def test_every_public_function_has_a_runnable_example(package):
  missing = []
  for public in package.__all__:
    obj = getattr(package, public)
    if inspect.isfunction(obj) and ">>>" not in (obj.__doc__ or ""):
      missing.append(public)
  assert not missing, f"no `>>>` example in {package.__name__}: {missing}"
