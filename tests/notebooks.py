"""Executes a notebook of colabs/ the way a user runs it, for the colab tests."""

import os

import nbclient
import nbformat

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def execute(name: str, monkeypatch, env: dict[str, str]) -> nbformat.NotebookNode:
  """Runs colabs/<name> top to bottom with ``env`` set; fails on any error.

  The kernel sees one CPU device and the Agg backend, as on a laptop.
  """
  for key, value in env.items():
    monkeypatch.setenv(key, value)
  monkeypatch.setenv("JAX_NUM_CPU_DEVICES", "1")
  monkeypatch.setenv("MPLBACKEND", "Agg")
  nb = nbformat.read(os.path.join(ROOT, "colabs", name), as_version=4)
  client = nbclient.NotebookClient(nb, timeout=600, kernel_name="python3",
                                   resources={"metadata": {"path": ROOT}})
  client.execute()
  errors = [o for c in nb.cells if c.cell_type == "code"
            for o in c.get("outputs", []) if o.get("output_type") == "error"]
  assert not errors, errors
  return nb
