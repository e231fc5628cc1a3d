"""Shared argument descriptions for docstrings, written once.

Functions of the pure core that take the same arguments with the same meaning
(``cljax.geometry``'s ``features, labels, num_classes, axis_name``,
``cljax.theory``'s validated ``C, n, K, tau``) name the shared descriptions by
placeholder lines such as ``{data_args}``; a filler made by ``filler`` from a
table expands them at import, so ``help()`` and the doctests read the full
text. A placeholder may also stand for a whole section (e.g. a Raises
section), at section indent.
"""

from typing import Callable, Mapping, Sequence, TypeVar

_F = TypeVar("_F", bound=Callable)

GEOMETRY = {
    "{data_args}": (
        "features: float[N, D] features.",
        "labels: int[N] class ids in ``[0, num_classes)``; out of range: a",
        "  ValueError when concrete, an all-NaN result when traced.",
        "num_classes: number of classes (static under ``jit``).",
    ),
    "{center_arg}": (
        "center: ``True``/``\"global\"`` (global sample mean),",
        "  ``\"classes\"`` (mean of class means) or ``False``/``\"none\"``",
        "  (raw means). Static.",
    ),
    "{center_raises}": (
        "ValueError: on malformed inputs or an unknown ``center``.",
    ),
    "{malformed_raises}": (  # a whole section: it stands at section indent
        "Raises:",
        "  ValueError: on malformed inputs.",
    ),
    "{axis_name_arg}": (
        "axis_name: mapped axis (per-device call); see ``cljax.geometry``.",
    ),
}

# The closed forms at the simplex ETF (``cljax.theory``; ``etf_args`` checks
# these ranges).
THEORY = {
    "{etf_args}": (
        "num_classes: ``C >= 2``.",
        "samples_per_class: ``n >= 1``.",
        "num_views: ``K >= 2``.",
        "temperature: ``tau > 0``.",
    ),
    "{range_raises}": (  # a whole section
        "Raises:",
        "  ValueError: on out-of-range arguments.",
    ),
}


def fill_doc(doc: str, table: Mapping[str, Sequence[str]]) -> str:
  """``doc`` with every placeholder line replaced by its descriptions.

  Args:
    doc: a docstring whose placeholder lines hold only the placeholder
      (indented as the argument lines around it).
    table: placeholder -> its lines (continuation lines indented by 2).

  Returns:
    The expanded docstring.

  Raises:
    ValueError: if a placeholder shares its line with other text.

  Examples:
    >>> doc = fill_doc("  Args:\\n    {axis_name_arg}", GEOMETRY)
    >>> print(doc.splitlines()[1])
        axis_name: mapped axis (per-device call); see ``cljax.geometry``.
  """
  out = []
  for line in doc.splitlines():
    key = line.strip()
    if key in table:
      indent = line[:len(line) - len(line.lstrip())]
      out.extend(indent + text for text in table[key])
    elif any(k in line for k in table):
      raise ValueError(f"A placeholder must stand alone on its line: {line!r}")
    else:
      out.append(line)
  return "\n".join(out)


def filler(table: Mapping[str, Sequence[str]]) -> Callable[[_F], _F]:
  """A decorator that expands the placeholders of ``table`` in ``fn.__doc__``.

  Args:
    table: placeholder -> its lines, as for ``fill_doc``.

  Returns:
    The decorator; it returns ``fn`` itself, its docstring expanded.

  Examples:
    >>> fill = filler(GEOMETRY)
    >>> @fill
    ... def f():
    ...   '''Doc.
    ...
    ...   Args:
    ...     {data_args}
    ...   '''
    >>> "labels: int[N] class ids in" in f.__doc__
    True
  """
  def fill(fn: _F) -> _F:
    fn.__doc__ = fill_doc(fn.__doc__, table)
    return fn
  return fill


fill_geometry = filler(GEOMETRY)
fill_theory = filler(THEORY)
