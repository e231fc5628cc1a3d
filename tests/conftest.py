"""Test-wide JAX set-up: 8 simulated CPU devices, before any JAX operation."""

import os

# Must run before the first JAX operation; every pytest(-xdist) worker imports
# this file first.
os.environ.setdefault("JAX_NUM_CPU_DEVICES", "8")
os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax  # noqa: E402

jax.config.update("jax_num_cpu_devices", int(os.environ["JAX_NUM_CPU_DEVICES"]))
