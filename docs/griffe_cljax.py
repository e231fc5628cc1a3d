"""A griffe extension for cljax's API pages (mkdocs.yml loads it).

The API pages read cljax by inspection (the imported objects), because the
pure core completes its docstrings and some signatures at import. Two things
of cljax's docstrings and classes that griffe does not read as written:

* An ``Args:`` entry may describe several arguments at once
  (``normalize, axis_name: see the module docstring.``); griffe would take
  ``normalize, axis_name`` for one unknown name. The entry is given to each
  name in turn.
* Inspection places a function under the module named by its
  ``__module__``. A metric built by a decorator of
  ``cljax/geometry/collapse.py`` keeps that module's name wherever it is
  defined (``geometry.zero_sum`` lives in ``jiang.py``), so griffe would
  alias a name that does not exist and drop the function. Such functions
  are rebuilt from the imported object.
* Inspection turns a class field whose default is an object from another
  package (a Flax module's ``dtype: Any = jnp.float32``) into an alias of
  that package, which griffe cannot resolve without loading it; such fields
  become plain attributes whose value is the default's dotted name.

Nothing of cljax's source changes: only what griffe renders.
"""

import inspect
import re
import sys
import types

import griffe

_SECTION = re.compile(r"^(Args|Arguments|Parameters):\s*$")
_GROUPED = re.compile(r"^(\s+)(\w+(?:, \w+)+):(.*)$")


def split_grouped_args(doc: str) -> str:
  """``doc`` with each ``a, b: text`` entry of its Args section split."""
  lines = doc.splitlines()
  out, in_args, i = [], False, 0
  while i < len(lines):
    line = lines[i]
    if _SECTION.match(line):
      in_args = True
    elif line and not line[0].isspace():
      in_args = False
    match = _GROUPED.match(line) if in_args else None
    if not match:
      out.append(line)
      i += 1
      continue
    indent, names, text = match.groups()
    # The entry's continuation lines are those indented deeper than it.
    j = i + 1
    while j < len(lines) and lines[j].strip() and (
        len(lines[j]) - len(lines[j].lstrip()) > len(indent)):
      j += 1
    for name in names.split(", "):
      out.append(f"{indent}{name}:{text}")
      out.extend(lines[i + 1:j])
    i = j
  return "\n".join(out)


def _annotation(value) -> str | None:
  if value is inspect.Parameter.empty:
    return None
  return value if isinstance(value, str) else inspect.formatannotation(value)


def runtime_function(name: str, obj, parent: griffe.Module) -> griffe.Function:
  """A griffe function read from the imported ``obj``: signature and doc."""
  signature = inspect.signature(obj)
  parameters = griffe.Parameters(*(
      griffe.Parameter(
          p.name, kind=griffe.ParameterKind(p.kind.description),
          annotation=_annotation(p.annotation),
          default=None if p.default is p.empty else repr(p.default))
      for p in signature.parameters.values()))
  function = griffe.Function(
      name, parameters=parameters,
      returns=_annotation(signature.return_annotation), parent=parent)
  if obj.__doc__:
    function.docstring = griffe.Docstring(
        split_grouped_args(inspect.cleandoc(obj.__doc__)), parent=function)
  return function


def _misplaced(member, runtime) -> bool:
  """Whether griffe's alias ``member`` misses the function ``runtime``."""
  if not isinstance(runtime, types.FunctionType):
    return False
  if not member.is_alias:
    return False
  module, _, attr = member.target_path.rpartition(".")
  return getattr(sys.modules.get(module), attr, None) is not runtime


class CljaxDocstrings(griffe.Extension):
  """The three repairs of the module docstring, applied while griffe loads."""

  def on_function_instance(self, *, func: griffe.Function, **kwargs) -> None:
    if func.docstring is not None:
      func.docstring.value = split_grouped_args(func.docstring.value)

  def on_module_members(self, *, mod: griffe.Module, **kwargs) -> None:
    # Inspection has imported the module already (it reads the object).
    module = sys.modules.get(mod.path)
    if module is None or not mod.path.startswith("cljax"):
      return
    for name, member in list(mod.members.items()):
      runtime = getattr(module, name, None)
      if _misplaced(member, runtime):
        mod.set_member(name, runtime_function(name, runtime, mod))

  def on_class_members(self, *, cls: griffe.Class, **kwargs) -> None:
    for name, member in list(cls.members.items()):
      if member.is_alias and not member.target_path.startswith("cljax."):
        cls.set_member(name, griffe.Attribute(
            name, value=member.target_path, parent=cls))
