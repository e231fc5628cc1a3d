r"""Luthra et al. 2025: the CL-NSCL gap against the temperature tau.

The bound of Theorem 1, log(1 + e^{2/tau} / (C - 1)), grows like 2/tau as
tau falls, so the approximation of NSCL by CL is a statement about moderate
temperatures. This config trains the CL (DCL) model of
``cl_vs_nscl.py`` at one temperature and monitors every loss, the gap
and its bound at that same temperature; sweep the two fields together with
``--zip`` (one axis, not a product):

Paper scale (CIFAR-100, GPU/TPU):

  python -m cljax.sweep --config=experiments/luthra/temperature.py \
      --sweep_dir=runs/luthra/temperature_cifar100 \
      --zip='loss.kwargs.temperature=[0.1,0.2,0.5,1.0]' \
      --zip='monitor.temperature=[0.1,0.2,0.5,1.0]'

CPU scale (10-class embedded images, about a minute per tau):

  python -m cljax.sweep --config=experiments/luthra/temperature.py:cpu \
      --sweep_dir=runs/luthra/temperature \
      --zip='loss.kwargs.temperature=[0.1,0.2,0.5,1.0]' \
      --zip='monitor.temperature=[0.1,0.2,0.5,1.0]'

Presets: '' (CIFAR-100), 'cpu' (300 steps), 'tiny' (seconds; CI).

Expected ('cpu'): the gap stays below the bound at every tau; the bound
grows like 2/tau as tau falls while the gap stays near the value of
class-blind features at C = 10, B = 100, which does not depend on tau. The
measured values, means with 95 % intervals over seeds, are in
experiments/results/luthra.md (``python -m cljax.reproduce luthra``).
"""

import ml_collections

from cljax._src import config_files

cl_vs_nscl = config_files.sibling(__file__, "cl_vs_nscl.py")

PRESETS = ("", "cpu", "tiny")


def get_config(preset: str | None = None) -> ml_collections.ConfigDict:
  """The per-tau CL run; zip the two temperatures. ``preset`` in PRESETS."""
  preset = cl_vs_nscl.default.check_preset(preset, PRESETS, __file__)
  config = cl_vs_nscl.get_config(preset)
  config.loss.name = "dcl"
  config.monitor.temperature = config.loss.kwargs.temperature
  if preset != "":
    config.evals.linear_probe.every = 0
  if preset == "cpu":
    cl_vs_nscl.final_only(config, steps=300)
  return config
