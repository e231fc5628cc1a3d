"""JAX's persistent compilation cache, on by default for cljax's commands.

``python -m cljax.main``, ``python -m cljax.sweep`` and
``python -m cljax.reproduce`` call :func:`enable` before their first
compilation, so a second run of the same job, every point and seed of a sweep
after the first, and every reproduction after the first read their compiled
XLA programs from disk instead of compiling them again.

Where the cache lives, in order of precedence:

1. ``--compilation_cache=DIR`` (or ``off``) on the command line;
2. the environment variable ``CLJAX_COMPILATION_CACHE`` (a directory, or
   ``off``);
3. ``$XDG_CACHE_HOME/cljax/jax`` (``~/.cache/cljax/jax`` when unset).

Entries go to a subdirectory named after the jax and jaxlib versions, so a
program compiled by another jax or jaxlib is never read. Within it JAX keys
each entry by the program, the devices, the compile options and ``XLA_FLAGS``,
so a run with other flags compiles its own program. A user who set JAX's own
``JAX_COMPILATION_CACHE_DIR`` keeps it: cljax then changes none of JAX's cache
settings. An unwritable directory costs only the cache (JAX warns and
compiles as usual).

The cache is trusted code: do not point it at a directory others can write.
"""

from __future__ import annotations

import os

ENV = "CLJAX_COMPILATION_CACHE"
OFF = ("off", "none", "false", "0")


def default_directory() -> str:
  """``$XDG_CACHE_HOME/cljax/jax`` (``~/.cache/cljax/jax`` when unset)."""
  base = os.environ.get("XDG_CACHE_HOME") or os.path.join(
      os.path.expanduser("~"), ".cache")
  return os.path.join(base, "cljax", "jax")


def _versioned(directory: str) -> str:
  import jax
  import jaxlib
  return os.path.join(os.path.abspath(os.path.expanduser(directory)),
                      f"jax-{jax.__version__}_jaxlib-{jaxlib.__version__}")


def enable(setting: str | None = None) -> str | None:
  """Turns JAX's persistent compilation cache on; call before compiling.

  Args:
    setting: a directory, or ``"off"``; ``None`` or ``""`` reads
      ``CLJAX_COMPILATION_CACHE``, then falls back to
      :func:`default_directory`.

  The setting is also exported as ``CLJAX_COMPILATION_CACHE``, so child
  processes (the notebooks ``cljax.reproduce`` executes) share it.

  Returns:
    The directory the entries go to (the versioned subdirectory), or
    ``None`` when the cache is off. When ``JAX_COMPILATION_CACHE_DIR`` is set,
    JAX's own setting is returned unchanged.

  Example:
    >>> from cljax.training import compile_cache
    >>> compile_cache.enable("off") is None
    True
  """
  import jax
  from jax.experimental.compilation_cache import compilation_cache
  own = os.environ.get("JAX_COMPILATION_CACHE_DIR")
  if own:
    return own
  setting = setting or os.environ.get(ENV) or default_directory()
  # The cache is set up at the first compilation; forget an earlier set-up.
  compilation_cache.reset_cache()
  os.environ[ENV] = setting   # Child processes (notebooks) use it too.
  if setting.strip().lower() in OFF:
    # Off entirely: with the cache merely unset, JAX still hashes every
    # program for its key.
    jax.config.update("jax_enable_compilation_cache", False)
    jax.config.update("jax_compilation_cache_dir", None)
    return None
  directory = _versioned(setting)
  jax.config.update("jax_enable_compilation_cache", True)
  jax.config.update("jax_compilation_cache_dir", directory)
  # cljax's programs are many and small (a step, evaluators, probes): with
  # JAX's defaults (1 s of compile time, any size) most would not be kept.
  jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
  jax.config.update("jax_persistent_cache_min_entry_size_bytes", -1)
  return directory
