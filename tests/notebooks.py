"""Executes a notebook of colabs/ the way a user runs it, for the colab tests."""

import os

import nbclient
import nbformat

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def from_root(path: str) -> str:
  """``path`` relative to the repository root, as a user would type it.

  The notebooks take relative paths from the repository root whatever the
  kernel's working directory; passing the test's dirs this way checks that.
  """
  return os.path.relpath(path, ROOT)


def execute(name: str, monkeypatch, env: dict[str, str],
            cwd: str = "colabs") -> nbformat.NotebookNode:
  """Runs colabs/<name> top to bottom with ``env`` set; fails on any error.

  The kernel sees one CPU device and the Agg backend, as on a laptop, and
  starts in ``cwd`` (relative to the repository root): ``"colabs"`` is where
  Jupyter and ``jupyter nbconvert --execute`` start it, ``""`` the root.
  With ``CLJAX_EXECUTED_NOTEBOOKS`` set, the kernel draws with the inline
  backend instead and the executed notebook, figures included, is written
  to that folder (to look at every figure).
  """
  for key, value in env.items():
    monkeypatch.setenv(key, value)
  monkeypatch.setenv("JAX_NUM_CPU_DEVICES", "1")
  out = os.environ.get("CLJAX_EXECUTED_NOTEBOOKS")
  # Agg draws nothing into the notebook; the inline backend keeps the figures.
  monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline"
                     if out else "Agg")
  nb = nbformat.read(os.path.join(ROOT, "colabs", name), as_version=4)
  client = nbclient.NotebookClient(
      nb, timeout=600, kernel_name="python3",
      resources={"metadata": {"path": os.path.join(ROOT, cwd)}})
  client.execute()
  if out:  # Keep the executed notebook, figures included, to look at.
    os.makedirs(out, exist_ok=True)
    nbformat.write(nb, os.path.join(out, name))
  errors = [o for c in nb.cells if c.cell_type == "code"
            for o in c.get("outputs", []) if o.get("output_type") == "error"]
  assert not errors, errors
  return nb


def text_output(nb: nbformat.NotebookNode) -> str:
  """Everything the notebook's code cells printed."""
  return "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code"
                 for o in c.get("outputs", []))
