"""The persistent compilation cache: where it lives, and that runs reuse it."""

import os
import subprocess
import sys

import jax
import jaxlib

from cljax.training import compile_cache

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
VERSIONS = f"jax-{jax.__version__}_jaxlib-{jaxlib.__version__}"


def _entries(directory):
  if not os.path.isdir(directory):
    return set()
  return {f for f in os.listdir(directory) if not f.endswith(".tmp")}


def _env(**extra):
  env = {k: v for k, v in os.environ.items()
         if k not in ("CLJAX_COMPILATION_CACHE", "JAX_COMPILATION_CACHE_DIR")}
  return {**env, **extra}


def _python(code, **extra):
  proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, text=True,
                        capture_output=True, timeout=600, env=_env(**extra))
  assert proc.returncode == 0, proc.stderr[-3000:]
  return proc.stdout.strip()


_ENABLE_AND_COMPILE = """
import sys, jax, jax.numpy as jnp
from cljax.training import compile_cache
print(compile_cache.enable(sys.argv[1] if len(sys.argv) > 1 else None))
jax.jit(lambda x: jnp.tanh(x) @ x.T + 1.0)(jnp.ones((3, 3))).block_until_ready()
"""


def test_the_default_directory_follows_xdg_cache_home(tmp_path):
  out = _python(_ENABLE_AND_COMPILE, XDG_CACHE_HOME=str(tmp_path))
  assert out == os.path.join(str(tmp_path), "cljax", "jax", VERSIONS)
  assert _entries(out), "nothing was written to the cache"


def test_the_environment_variable_moves_it_and_off_turns_it_off(tmp_path):
  moved = str(tmp_path / "moved")
  out = _python(_ENABLE_AND_COMPILE, CLJAX_COMPILATION_CACHE=moved,
                XDG_CACHE_HOME=str(tmp_path / "xdg"))
  assert out == os.path.join(moved, VERSIONS) and _entries(out)
  assert _python(_ENABLE_AND_COMPILE, CLJAX_COMPILATION_CACHE="off",
                 XDG_CACHE_HOME=str(tmp_path / "xdg")) == "None"
  assert not os.path.exists(tmp_path / "xdg")


def test_jax_own_setting_is_left_alone(tmp_path):
  own = str(tmp_path / "own")
  # JAX's default 1 s threshold keeps this tiny program out of the cache...
  assert _python(_ENABLE_AND_COMPILE, JAX_COMPILATION_CACHE_DIR=own) == own
  assert not _entries(own)
  # ... and the user's own threshold, not cljax's, decides.
  assert _python(_ENABLE_AND_COMPILE, JAX_COMPILATION_CACHE_DIR=own,
                 JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0") == own
  assert _entries(own)


def test_enable_exports_the_setting_for_child_processes(monkeypatch, tmp_path):
  monkeypatch.delenv("JAX_COMPILATION_CACHE_DIR", raising=False)
  # monkeypatch restores the variable; enable() then restores the set-up.
  monkeypatch.setenv(compile_cache.ENV,
                     os.environ.get(compile_cache.ENV, "off"))
  before = os.environ[compile_cache.ENV]
  try:
    assert compile_cache.enable(str(tmp_path)) == str(tmp_path / VERSIONS)
    assert os.environ[compile_cache.ENV] == str(tmp_path)
    assert jax.config.jax_enable_compilation_cache
    assert compile_cache.enable("off") is None
    assert jax.config.jax_compilation_cache_dir is None
    assert not jax.config.jax_enable_compilation_cache
  finally:
    compile_cache.enable(before)


def _smoke_run(workdir, cache, *flags):
  proc = subprocess.run(
      [sys.executable, "-m", "cljax.main", "--config=experiments/default.py:"
       "smoke", f"--workdir={workdir}", "--config.steps=2",
       f"--compilation_cache={cache}", "--no_progress", *flags], cwd=ROOT,
      text=True, capture_output=True, timeout=600, env=_env())
  assert proc.returncode == 0, proc.stderr[-3000:]


def test_a_second_run_of_the_main_job_compiles_nothing_new(tmp_path):
  # A hit reads an entry and writes none: the second run, same config in a
  # new work dir, must add no entry (every program came from the cache).
  cache = str(tmp_path / "cache")
  _smoke_run(tmp_path / "first", cache)
  written = _entries(os.path.join(cache, VERSIONS))
  assert len(written) > 5, written
  _smoke_run(tmp_path / "second", cache)
  assert _entries(os.path.join(cache, VERSIONS)) == written


def test_runs_of_another_seed_reuse_every_program(tmp_path):
  # The seed reaches the programs as an argument (key data), never as a
  # constant: a second seed of a sweep compiles nothing new either.
  cache = str(tmp_path / "cache")
  _smoke_run(tmp_path / "seed0", cache)
  written = _entries(os.path.join(cache, VERSIONS))
  _smoke_run(tmp_path / "seed1", cache, "--config.seed=1")
  assert _entries(os.path.join(cache, VERSIONS)) == written
