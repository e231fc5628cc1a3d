"""The command line's flags, config loading and error reporting.

``cljax.main`` (one training run) and ``cljax.sweep`` (a grid of them) share
these: the ``--config`` flag and its presets, the run flags, the drivers by
``config.mode`` (:data:`MODES`), and :func:`fail`/:func:`run_reported`,
which turn a config mistake or a fault into one ``cljax: error:`` line and
the exit status of ``cljax.training.errors``.
"""

from __future__ import annotations

import importlib.util
import os
import re
import sys
import traceback

from absl import app
from absl import flags
from ml_collections import config_flags

from cljax.training import compile_cache
from cljax.training import errors
from cljax.training import train
from cljax import unconstrained

CONFIG = config_flags.DEFINE_config_file(
    "config", None, "Path to an ml_collections config file (file.py[:preset]).",
    lock_config=True)
WORKDIR = flags.DEFINE_string(
    "workdir", None, "Directory for metrics.jsonl and summary.json.")

DISTRIBUTED = flags.DEFINE_bool(
    "distributed", os.environ.get("CLJAX_DISTRIBUTED", "0") == "1",
    "Call jax.distributed.initialize() before anything else (multi-host).")

COORDINATOR = flags.DEFINE_string(
    "coordinator_address", None,
    "host:port of process 0 for --distributed (default: auto-detected on "
    "TPU/SLURM/... or $JAX_COORDINATOR_ADDRESS).")
NUM_PROCESSES = flags.DEFINE_integer(
    "num_processes", None, "Number of processes for --distributed.")
PROCESS_ID = flags.DEFINE_integer(
    "process_id", None, "This process's index for --distributed.")
RERUN_FINAL_EVAL = flags.DEFINE_bool(
    "rerun_final_eval", False,
    "On a work dir whose run has finished, evaluate its last checkpoint "
    "again (otherwise a finished run is left untouched).")
NO_PROGRESS = flags.DEFINE_bool(
    "no_progress", False,
    "Never draw the progress bar. Without it the bar is drawn only when "
    "stderr is a terminal, so a log file gets no carriage-return line.")
flags.DEFINE_bool(
    "debug", False, "Show the traceback of config mistakes and run faults "
    "(also CLJAX_DEBUG=1).")
PRINT_CONFIG = flags.DEFINE_bool(
    "print_config", False,
    "Print every field of --config (with its --config.<field>=<value> "
    "overrides) and exit; needs no --workdir.")

# absl's own help flags exit with status 1; these exit with 0.
COMPILATION_CACHE = flags.DEFINE_string(
    "compilation_cache", None,
    "Directory of JAX's persistent compilation cache, or 'off' (default: "
    f"${compile_cache.ENV}, else ~/.cache/cljax/jax). Reruns, sweep points "
    "and seeds read their compiled programs from it.")
HELP_FLAGS = ("--help", "-?", "-h", "--helpshort", "--helpfull")

MODES = {"train": train.train_and_evaluate,
         "unconstrained": unconstrained.run}


def debugging(argv=None) -> bool:
  """--debug or CLJAX_DEBUG=1 (readable before the flags are parsed)."""
  argv = sys.argv if argv is None else argv
  return os.environ.get("CLJAX_DEBUG", "0") == "1" or any(
      a in ("--debug", "--debug=true", "--debug=1") for a in argv)


def fail(message: str, code: int) -> None:
  """Ends the program with a short message and ``code`` (no traceback)."""
  # One write: a line written in pieces can be cut by another thread's text.
  sys.stderr.write(f"cljax: error: {message}\n")
  sys.stderr.flush()
  sys.exit(code)


_AFTER_FAILED_SAVE = ("Event loop is closed",
                      "cannot schedule new futures after shutdown")


def report_unraisable(unraisable) -> None:
  """``sys.unraisablehook`` that writes each report in one piece.

  Python's default hook writes a report in several pieces, so a report from
  a writer thread can split the ``cljax: error:`` line that ends the run.
  When a checkpoint save fails, tensorstore's callbacks for orbax's other
  writes still arrive after orbax closed their event loop; the resulting
  "Event loop is closed" reports say nothing the error line does not, and
  are dropped (so are "cannot schedule new futures after shutdown", their
  twin at interpreter exit).
  """
  error = unraisable.exc_value
  if isinstance(error, RuntimeError) and str(error) in _AFTER_FAILED_SAVE:
    return
  lines = ([f"{unraisable.err_msg or 'Exception ignored in'}: "
            f"{unraisable.object!r}\n"] if unraisable.object is not None
           else [])
  lines += traceback.format_exception(unraisable.exc_type, error,
                                      unraisable.exc_traceback)
  sys.stderr.write("".join(lines))
  sys.stderr.flush()


def _config_mistake(error: BaseException, argv) -> str:
  """One line naming the flag or field of a config/flag parsing error."""
  text = str(error)
  missing = re.search(r"'([^'\\]+)\\?'.*Did you mean \"([^\"]+)\"", text,
                      re.S)
  if missing:
    key, suggestion = missing.groups()
    flag = next((a.split("=", 1)[0] for a in argv
                 if a.startswith("--config.") and
                 re.search(rf"\.{re.escape(key)}(=|\.|$)", a.split("=")[0])),
                f"--config...{key}")
    return (f"{flag}: the config has no field {key!r}; did you mean "
            f"{suggestion!r}?")
  if isinstance(error, AttributeError | KeyError):
    key = text.strip("'\"\\n ").split("'")[0]
    flag = next((a.split("=", 1)[0] for a in argv
                 if a.startswith("--config.") and key in a.split("=")[0]),
                "--config")
    return f"{flag}: the config has no field {key!r}."
  if "No such file or directory" in text or "Failed loading config" in text:
    path = _config_path(argv)
    return (f"--config: the config file {os.path.abspath(path)!r} does not "
            f"exist (relative paths are read from {os.getcwd()!r}).")
  if "Traceback (most recent call last)" in text:
    # config_flags embeds get_config's traceback; its last line is the news.
    flag = re.split(r": Error whilst|: Traceback", text, maxsplit=1)[0]
    last = [line for line in text.splitlines() if line.strip()][-1].strip()
    return f"{flag}: {last}"
  return " ".join(text.split())


def _config_path(argv) -> str:
  given = next((a.split("=", 1)[1] for a in argv
                if a.startswith("--config=")), "")
  return given.split(":", 1)[0]


def _presets(path: str) -> str:
  """The presets the config file ``path`` accepts, in its own words."""
  try:
    spec = importlib.util.spec_from_file_location("_cljax_help_config", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
  except Exception as e:  # pylint: disable=broad-except
    return f"(it does not load: {' '.join(str(e).split())})"
  presets = getattr(module, "PRESETS", None)
  if presets is not None:
    return ", ".join(repr(p) for p in presets)
  try:
    module.get_config("<no such preset>")
  except Exception as e:  # pylint: disable=broad-except
    # Every config names its presets when given an unknown one.
    text = " ".join(str(e).split())
    return text.split("; ", 1)[-1]
  return "(it names none: any preset string is accepted)"


def print_help(argv) -> None:
  """Prints the usage, the presets of ``--config`` and how to list its
  fields, then exits with status 0."""
  app.usage(shorthelp="--helpfull" not in argv, writeto_stdout=True)
  path = _config_path(argv)
  if path:
    print(f"Presets of {path} (--config={path}:PRESET): {_presets(path)}")
  print("List a config's fields and values with --config=FILE[:PRESET] "
        "--print_config, and set any of them with --config.<field>=<value>.")
  sys.exit(errors.EXIT_OK)


def parse_flags(argv):
  """``app.run``'s flag parser, with config mistakes in one line (exit 2)."""
  given = argv[1:argv.index("--")] if "--" in argv else argv[1:]
  if any(a in HELP_FLAGS for a in given):
    print_help(given)
  try:
    return flags.FLAGS(argv)
  except Exception as e:  # pylint: disable=broad-except
    if debugging(argv):
      raise
    fail(_config_mistake(e, argv), errors.EXIT_CONFIG)


def get_config(argv=None):
  """``--config``'s value, failing in one line if the file does not load."""
  argv = sys.argv if argv is None else argv
  try:
    config = CONFIG.value
    if config is not None:
      config.get("mode", "train")  # A file that failed to load raises here.
    return config
  except Exception as e:  # pylint: disable=broad-except
    if debugging(argv):
      raise
    fail(_config_mistake(e, argv), errors.EXIT_CONFIG)


def run_reported(fn, *args, **kwargs):
  """Calls a driver; faults become a short message and their exit status."""
  try:
    return fn(*args, **kwargs)
  except KeyboardInterrupt:
    # Ctrl-C before the loop had started (set-up, compilation).
    fail("interrupted before the first step; nothing was saved.",
         errors.EXIT_ABORTED)
  except (errors.ConfigError, errors.WorkdirLockedError, errors.WriteError,
          errors.NonFiniteError) as e:
    if debugging():
      raise
    fail(str(e), errors.exit_code(e))


