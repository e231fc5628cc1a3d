r"""Command-line entry point.

  python -m cljax.main --config=experiments/default.py --workdir=runs/default
  python -m cljax.main --config=experiments/default.py:smoke \
      --workdir=/tmp/smoke --config.loss.kwargs.temperature=0.2

``--config`` names an ml_collections config file (``file.py:preset`` passes
the preset string to its ``get_config``); ``--config.a.b=v`` overrides a
field. The config is locked, so a misspelled override is an error.

Today the driver is the unconstrained-features optimiser
(``cljax.unconstrained``); the full train loop will be chosen by the config's
``mode``.
"""

from absl import app
from absl import flags
from ml_collections import config_flags

from cljax import unconstrained

_CONFIG = config_flags.DEFINE_config_file(
    "config", None, "Path to an ml_collections config file (file.py[:preset]).",
    lock_config=True)
_WORKDIR = flags.DEFINE_string(
    "workdir", None, "Directory for metrics.jsonl and summary.json.")

_MODES = {"unconstrained": unconstrained.run}


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
  config = _CONFIG.value
  if config is None:
    raise app.UsageError("--config is required, e.g. "
                         "--config=experiments/default.py")
  mode = config.get("mode", "unconstrained")
  if mode not in _MODES:
    raise app.UsageError(f"Unknown config.mode {mode!r}; choose one of "
                         f"{sorted(_MODES)}.")
  _MODES[mode](config, _WORKDIR.value)


if __name__ == "__main__":
  app.run(main)
