r"""Command-line entry point.

  python -m cljax.main --config=experiments/default.py --workdir=runs/default
  python -m cljax.main --config=experiments/default.py:smoke \
      --workdir=/tmp/smoke --config.loss.kwargs.temperature=0.2

``--config`` names an ml_collections config file (``file.py:preset`` passes
the preset string to its ``get_config``); ``--config.a.b=v`` overrides a
field. The config is locked, so a misspelled override is an error.

``config.mode`` picks the driver: "train" (``cljax.train``, the default)
or "unconstrained" (``cljax.unconstrained``: free features, no encoder).
With ``--distributed`` (or CLJAX_DISTRIBUTED=1) ``jax.distributed`` is
initialised first, for multi-host runs (TPU pods, several GPU hosts).

Mistakes in the config or the flags, and the faults a run can end with, are
reported in one or two lines with the exit status of ``cljax.errors`` (2 for
a config mistake, 3 for an interrupted run, ...); ``--debug`` or
``CLJAX_DEBUG=1`` shows the traceback instead.
"""

import importlib.util
import os
import re
import sys
import traceback

from absl import app
from absl import flags
from absl import logging
from ml_collections import config_flags

from cljax import compile_cache
from cljax import errors
from cljax import train
from cljax import unconstrained

CONFIG = config_flags.DEFINE_config_file(
    "config", None, "Path to an ml_collections config file (file.py[:preset]).",
    lock_config=True)
_WORKDIR = flags.DEFINE_string(
    "workdir", None, "Directory for metrics.jsonl and summary.json.")

_DISTRIBUTED = flags.DEFINE_bool(
    "distributed", os.environ.get("CLJAX_DISTRIBUTED", "0") == "1",
    "Call jax.distributed.initialize() before anything else (multi-host).")

_COORDINATOR = flags.DEFINE_string(
    "coordinator_address", None,
    "host:port of process 0 for --distributed (default: auto-detected on "
    "TPU/SLURM/... or $JAX_COORDINATOR_ADDRESS).")
_NUM_PROCESSES = flags.DEFINE_integer(
    "num_processes", None, "Number of processes for --distributed.")
_PROCESS_ID = flags.DEFINE_integer(
    "process_id", None, "This process's index for --distributed.")
_RERUN_FINAL_EVAL = flags.DEFINE_bool(
    "rerun_final_eval", False,
    "On a work dir whose run has finished, evaluate its last checkpoint "
    "again (otherwise a finished run is left untouched).")
_NO_PROGRESS = flags.DEFINE_bool(
    "no_progress", False,
    "Never draw the progress bar. Without it the bar is drawn only when "
    "stderr is a terminal, so a log file gets no carriage-return line.")
flags.DEFINE_bool(
    "debug", False, "Show the traceback of config mistakes and run faults "
    "(also CLJAX_DEBUG=1).")
_PRINT_CONFIG = flags.DEFINE_bool(
    "print_config", False,
    "Print every field of --config (with its --config.<field>=<value> "
    "overrides) and exit; needs no --workdir.")

# absl's own help flags exit with status 1; these exit with 0.
_COMPILATION_CACHE = flags.DEFINE_string(
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


def _report_unraisable(unraisable) -> None:
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


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
  # Orbax logs every save step at INFO; the progress bar is the run's output.
  logging.set_verbosity(logging.WARNING)
  compile_cache.enable(_COMPILATION_CACHE.value)
  if _DISTRIBUTED.value:
    import jax
    jax.distributed.initialize(coordinator_address=_COORDINATOR.value,
                               num_processes=_NUM_PROCESSES.value,
                               process_id=_PROCESS_ID.value)
  config = get_config()
  if config is None:
    fail("--config is required, e.g. --config=experiments/default.py",
         errors.EXIT_CONFIG)
  if _PRINT_CONFIG.value:
    print(config)
    return
  if not _WORKDIR.value:
    fail("--workdir is required.", errors.EXIT_CONFIG)
  mode = config.get("mode", "train")
  if mode not in MODES:
    fail(f"--config.mode: unknown mode {mode!r}; choose one of "
         f"{sorted(MODES)}.", errors.EXIT_CONFIG)
  progress = False if _NO_PROGRESS.value else None
  if not train.show_progress(progress):
    # TFDS draws bars of its own while it prepares an embedded dataset.
    import tensorflow_datasets as tfds
    tfds.disable_progress_bar()
  kwargs = ({"rerun_final_eval": _RERUN_FINAL_EVAL.value,
             "progress": progress} if mode == "train" else {})
  summary = run_reported(MODES[mode], config, _WORKDIR.value, **kwargs)
  if isinstance(summary, dict) and summary.get("interrupted"):
    sys.exit(errors.EXIT_INTERRUPTED)


def run():
  sys.unraisablehook = _report_unraisable
  app.run(main, flags_parser=parse_flags)


if __name__ == "__main__":
  run()
