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
"""

import os


from absl import app
from absl import flags
from absl import logging
from ml_collections import config_flags

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

MODES = {"train": train.train_and_evaluate,
          "unconstrained": unconstrained.run}


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
  # Orbax logs every save step at INFO; the progress bar is the run's output.
  logging.set_verbosity(logging.WARNING)
  if _DISTRIBUTED.value:
    import jax
    jax.distributed.initialize(coordinator_address=_COORDINATOR.value,
                               num_processes=_NUM_PROCESSES.value,
                               process_id=_PROCESS_ID.value)
  config = CONFIG.value
  if config is None:
    raise app.UsageError("--config is required, e.g. "
                         "--config=experiments/default.py")
  if not _WORKDIR.value:
    raise app.UsageError("--workdir is required.")
  mode = config.get("mode", "train")
  if mode not in MODES:
    raise app.UsageError(f"Unknown config.mode {mode!r}; choose one of "
                         f"{sorted(MODES)}.")
  MODES[mode](config, _WORKDIR.value)


if __name__ == "__main__":
  app.run(main)
