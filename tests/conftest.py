"""Test-wide JAX set-up: 8 simulated CPU devices, before any JAX operation.

Where a test lives: ``tests/<package>/test_<module>.py`` tests
``cljax/<package>/<module>.py``; a property that spans a package's modules
(every loss on 8 devices, labels out of range for every metric) gets a
``test_<property>.py`` in that package's folder; the paper-specific tests
(experiments' configs, colabs, claims and reproductions) are in
``tests/reproduce/``; tests of the whole repository (layout, docs, README,
doctests, signatures, benchmarks) and of the top-level entry points
(``cljax/sweep.py``) sit in ``tests/`` itself. The CPU-scale reproductions
are marked ``slow`` (deselected by default, ``pytest -m slow``).
"""

import os

# Must run before the first JAX operation; every pytest(-xdist) worker imports
# this file first.
os.environ.setdefault("JAX_NUM_CPU_DEVICES", "8")
os.environ.setdefault("JAX_PLATFORMS", "cpu")
# The tests compile thousands of small programs and run each a few times, so
# XLA's CPU backend compiles without LLVM's optimisation passes: compiling
# tests/losses/test_tiled.py took 0.6x as long side by side on this host.
# IEEE semantics are unchanged (XLA's CPU fast-math stays off), so every
# value and tolerance is the same; the subprocesses the tests start inherit
# it. Benchmarks never run under this file.
if "--xla_backend_optimization_level" not in os.environ.get("XLA_FLAGS", ""):
  os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") +
                             " --xla_backend_optimization_level=0").strip()

import jax  # noqa: E402

jax.config.update("jax_num_cpu_devices", int(os.environ["JAX_NUM_CPU_DEVICES"]))


def pytest_configure(config):
  # One compilation cache per pytest run, shared by its xdist workers (they
  # start after this hook and inherit the environment) and by the commands the
  # tests run as subprocesses: a program compiled by one test is read by the
  # next. It is fresh per run, so no test depends on an earlier run.
  import tempfile
  if not hasattr(config, "workerinput"):
    os.environ["CLJAX_COMPILATION_CACHE"] = tempfile.mkdtemp(
        prefix="cljax-test-jax-cache-")
    config._cljax_cache = os.environ["CLJAX_COMPILATION_CACHE"]
  from cljax.training import compile_cache
  compile_cache.enable(os.environ["CLJAX_COMPILATION_CACHE"])


def pytest_unconfigure(config):
  import shutil
  if getattr(config, "_cljax_cache", None):
    shutil.rmtree(config._cljax_cache, ignore_errors=True)
