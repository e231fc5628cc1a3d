r"""Command-line entry point.

  python -m cljax.main --config=experiments/default.py --workdir=runs/default
  python -m cljax.main --config=experiments/default.py:smoke \
      --workdir=/tmp/smoke --config.loss.kwargs.temperature=0.2

``--config`` names an ml_collections config file (``file.py:preset`` passes
the preset string to its ``get_config``); ``--config.a.b=v`` overrides a
field. The config is locked, so a misspelled override is an error.

``config.mode`` picks the driver: "train" (``cljax.training.train``, the default)
or "unconstrained" (``cljax.unconstrained``: free features, no encoder).
With ``--distributed`` (or CLJAX_DISTRIBUTED=1) ``jax.distributed`` is
initialised first, for multi-host runs (TPU pods, several GPU hosts).

Mistakes in the config or the flags, and the faults a run can end with, are
reported in one or two lines with the exit status of ``cljax.training.errors`` (2 for
a config mistake, 3 for an interrupted run, ...); ``--debug`` or
``CLJAX_DEBUG=1`` shows the traceback instead.
"""

import sys

from absl import app
from absl import logging

from cljax.training import cli
from cljax.training import compile_cache
from cljax.training import errors
from cljax.training import train


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
  # Orbax logs every save step at INFO; the progress bar is the run's output.
  logging.set_verbosity(logging.WARNING)
  compile_cache.enable(cli.COMPILATION_CACHE.value)
  if cli.DISTRIBUTED.value:
    import jax
    jax.distributed.initialize(coordinator_address=cli.COORDINATOR.value,
                               num_processes=cli.NUM_PROCESSES.value,
                               process_id=cli.PROCESS_ID.value)
  config = cli.get_config()
  if config is None:
    cli.fail("--config is required, e.g. --config=experiments/default.py",
         errors.EXIT_CONFIG)
  if cli.PRINT_CONFIG.value:
    print(config)
    return
  if not cli.WORKDIR.value:
    cli.fail("--workdir is required.", errors.EXIT_CONFIG)
  mode = config.get("mode", "train")
  if mode not in cli.MODES:
    cli.fail(f"--config.mode: unknown mode {mode!r}; choose one of "
         f"{sorted(cli.MODES)}.", errors.EXIT_CONFIG)
  progress = False if cli.NO_PROGRESS.value else None
  if not train.show_progress(progress):
    # TFDS draws bars of its own while it prepares an embedded dataset.
    import tensorflow_datasets as tfds
    tfds.disable_progress_bar()
  kwargs = ({"rerun_final_eval": cli.RERUN_FINAL_EVAL.value,
             "progress": progress} if mode == "train" else {})
  summary = cli.run_reported(cli.MODES[mode], config, cli.WORKDIR.value, **kwargs)
  if isinstance(summary, dict) and summary.get("interrupted"):
    sys.exit(errors.EXIT_INTERRUPTED)


def run():
  sys.unraisablehook = cli.report_unraisable
  app.run(main, flags_parser=cli.parse_flags)


if __name__ == "__main__":
  run()
