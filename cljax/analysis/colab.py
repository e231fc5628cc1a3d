"""Where the analysis notebooks of colabs/ read their runs from.

A notebook's kernel starts in the notebook's folder (``colabs/``) under
Jupyter and ``jupyter nbconvert --execute``, and elsewhere in other front
ends. So the ``runs/...`` defaults of the notebooks, and relative paths in
their environment variables, are taken relative to the repository (the
nearest folder above the working directory with setup.py and cljax/), and
outside a checkout (cljax pip-installed in Colab) relative to the working
directory.

>>> import os
>>> os.environ["CLJAX_EXAMPLE_DIR"] = "/tmp/cljax_example"
>>> from_env("CLJAX_EXAMPLE_DIR", "runs/default")
CLJAX_EXAMPLE_DIR: reading /tmp/cljax_example
'/tmp/cljax_example'
"""

import os

_MARKER = "setup.py"


def repo_root(start: str | None = None) -> str | None:
  """The nearest folder at or above ``start`` (default: cwd) holding cljax's
  setup.py, or None outside a checkout."""
  path = os.path.abspath(start or os.getcwd())
  while True:
    setup = os.path.join(path, _MARKER)
    if os.path.isfile(setup) and os.path.isdir(os.path.join(path, "cljax")):
      return path
    parent = os.path.dirname(path)
    if parent == path:
      return None
    path = parent


def resolve(path: str) -> str:
  """``path`` made absolute: relative paths start at the repository root
  (the working directory outside a checkout); ``~`` is expanded."""
  path = os.path.expanduser(path)
  if os.path.isabs(path):
    return os.path.normpath(path)
  return os.path.normpath(os.path.join(repo_root() or os.getcwd(), path))


def from_env(name: str, default: str) -> str:
  """The directory (or ``os.pathsep``-separated directories) a notebook reads.

  Args:
    name: the environment variable that overrides ``default``.
    default: the ``runs/...`` path of the README's command for this notebook.

  Returns:
    The value of ``name`` (else ``default``) with every entry made absolute
    by :func:`resolve`; the entries are printed, so the notebook's output
    says which directories it read.
  """
  value = os.environ.get(name) or default
  paths = [resolve(p) for p in value.split(os.pathsep) if p]
  source = "" if name in os.environ else " (default; set it to read another)"
  print(f"{name}{source}: reading {', '.join(paths)}")
  return os.pathsep.join(paths)
