"""Config files loaded by their path, as ``--config`` loads them.

``python -m cljax.main --config=experiments/x.py:preset`` (the config flags
of ``ml_collections``) executes the file at that path and calls its
``get_config(preset)``. A config that extends another (every network config
starts from ``experiments/default.py``; ``experiments/luthra/
gap_vs_classes.py`` from ``cl_vs_nscl.py``) loads it the same way, by a path
relative to its own file (:func:`sibling`), and ``python -m cljax.reproduce``
loads a sweep's config by its path (:func:`get_config`): no config needs the
repository root on ``sys.path``, so each works from any working directory.

>>> import os, tempfile
>>> folder = tempfile.mkdtemp()
>>> with open(os.path.join(folder, "base.py"), "w") as f:
...   _ = f.write("def get_config(preset=None):\\n"
...               "  return {'preset': preset}\\n")
>>> sibling(os.path.join(folder, "paper.py"), "base.py").get_config("cpu")
{'preset': 'cpu'}
>>> get_config(os.path.join(folder, "base.py") + ":cpu"), get_config(
...     os.path.join(folder, "base.py"))
({'preset': 'cpu'}, {'preset': None})
"""

from __future__ import annotations

import importlib.util
import os
import re
import types


def load(path: str) -> types.ModuleType:
  """The Python file at ``path``, executed as a fresh module.

  The module is not put in ``sys.modules`` (two configs of one name in two
  folders never collide) and nothing is added to ``sys.path``.

  Raises:
    FileNotFoundError: no file at ``path``.
  """
  path = os.path.abspath(path)
  if not os.path.isfile(path):
    raise FileNotFoundError(f"config file {path} not found.")
  name = "_cljax_config_" + re.sub(r"\W", "_", path)
  spec = importlib.util.spec_from_file_location(name, path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def sibling(anchor: str, relative: str) -> types.ModuleType:
  """The config file at ``relative`` to the folder of the file ``anchor``.

  Args:
    anchor: the calling config's ``__file__``.
    relative: e.g. ``"../default.py"`` or ``"cl_vs_nscl.py"``.
  """
  return load(os.path.join(os.path.dirname(os.path.abspath(anchor)),
                           relative))


def get_config(config_arg: str):
  """The config of a ``--config`` argument, ``"file.py[:preset]"``.

  ``file.py:preset`` calls the file's ``get_config(preset)`` and ``file.py``
  its ``get_config()``, as ``--config`` of ``cljax.main`` does.
  """
  path, colon, preset = config_arg.partition(":")
  module = load(path)
  return module.get_config(preset) if colon else module.get_config()
