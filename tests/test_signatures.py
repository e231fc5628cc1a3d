"""help() of the public pure-core API shows array types as written.

An annotation such as ``jax.typing.ArrayLike`` evaluated at import expands to
a ten-member ``Union[jax.Array, numpy.ndarray, numpy.bool, ...]`` in
``help()`` and ``inspect.signature``; the modules keep their annotations
unevaluated (``from __future__ import annotations``) so they read
``ArrayLike`` / ``jax.Array``.
"""

import importlib
import inspect
import pydoc

import pytest

PACKAGES = ("cljax.geometry", "cljax.probes", "cljax.losses", "cljax.theory")
MAX_MEMBERS = 3  # e.g. `int | None` or `bool | str` is fine
MAX_CHARS = 80


def _public_functions(package):
  mod = importlib.import_module(package)
  names = getattr(mod, "__all__", None) or [
      n for n in dir(mod) if not n.startswith("_")]
  for name in sorted(names):
    obj = getattr(mod, name)
    if inspect.isclass(obj):
      continue  # result NamedTuples; their fields are documented, not typed
    if callable(obj) and getattr(obj, "__module__", "").startswith("cljax."):
      yield f"{package}.{name}", obj


FUNCTIONS = [f for p in PACKAGES for f in _public_functions(p)]


def _members(text):
  """Top-level members of a union annotation's text (1 for a non-union)."""
  text = text.strip()
  if text.startswith(("Union[", "typing.Union[")) and text.endswith("]"):
    text = text[text.index("[") + 1:-1]
    sep = ","
  else:
    sep = "|"
  depth, count = 0, 1
  for ch in text:
    depth += ch in "[("
    depth -= ch in "])"
    count += depth == 0 and ch == sep
  return count


def _annotations(fn):
  sig = inspect.signature(fn)
  anns = [(p.name, p.annotation) for p in sig.parameters.values()]
  anns.append(("return", sig.return_annotation))
  return [(name, inspect.formatannotation(a)) for name, a in anns
          if a is not inspect.Parameter.empty]


def test_the_check_catches_an_evaluated_array_like():
  # The failure this file guards against, built from jax.typing.ArrayLike.
  from jax.typing import ArrayLike  # pylint: disable=import-outside-toplevel

  def bad(x: ArrayLike):
    return x

  (_, text), = _annotations(bad)
  assert _members(text) > MAX_MEMBERS or len(text) > MAX_CHARS


def test_every_package_has_public_functions():
  for package in PACKAGES:
    assert any(n.startswith(package + ".") for n, _ in FUNCTIONS), package


@pytest.mark.parametrize("name,fn", FUNCTIONS, ids=[n for n, _ in FUNCTIONS])
def test_annotations_render_readably(name, fn):
  for arg, text in _annotations(fn):
    assert _members(text) <= MAX_MEMBERS and len(text) <= MAX_CHARS, (
        f"{name}({arg}: {text}): write the annotation as `ArrayLike` / "
        f"`jax.Array` under `from __future__ import annotations`.")
  doc = pydoc.render_doc(fn, renderer=pydoc.plaintext)
  assert "jaxlib" not in doc and "numpy.bool" not in doc, name
