"""Markdown pieces and interval verdicts shared by the paper modules.

Intervals are the dicts of ``cljax.analysis.stats.as_dict`` (mean, low, high, n,
confidence), as the colabs write them.

>>> iv = {"mean": 0.5, "low": 0.2, "high": 0.8, "n": 5, "confidence": 0.95}
>>> cell(iv, ".2f")
'0.50 [0.20, 0.80]'
>>> below(iv, 1.0), below(iv, 0.5), above(iv, 0.0)
('yes', 'undecided', 'yes')

A quantity that cannot leave a range (a distance or a rank is >= 0, an
accuracy in [0, 1]) has its interval clipped to it (:func:`bounded`,
``cljax.analysis.stats.clip``), and a clipped cell says so:

>>> cell({"mean": 0.01, "low": 0.0, "high": 0.03, "n": 2,
...       "clipped": ["low"]}, ".2f")
'0.01 [0.00, 0.03] (low end clipped to the range)'
"""

from __future__ import annotations

import dataclasses
import os

from cljax.analysis import stats
from cljax.reproduce import _base

NONNEGATIVE = (0.0, None)
UNIT = (0.0, 1.0)
# What every claim says at tiny scale: its budget tests the pipeline (a few
# steps, 2 seeds), not the paper, so no verdict is drawn from it.
NOT_JUDGED = "not judged at tiny scale"


def cell(interval: dict | None, spec: str = ".3g") -> str:
  """'mean [low, high]' of an interval dict; '—' for None or {}."""
  if not interval:
    return "—"
  if interval.get("n", 0) < 2 or "low" not in interval:
    return f"{interval['mean']:{spec}} (1 seed)"
  return (f"{interval['mean']:{spec}} [{interval['low']:{spec}}, "
          f"{interval['high']:{spec}}]") + stats.clip_note(interval)


def _is_interval(node) -> bool:
  return isinstance(node, dict) and {"mean", "low", "high"} <= set(node)


def _clip_at(node, path: tuple, bounds):
  if not path:
    return stats.clip(node, bounds) if _is_interval(node) else node
  key, rest = path[0], path[1:]
  if key == "*" and isinstance(node, list):
    return [_clip_at(v, rest, bounds) for v in node]
  if key == "*" and isinstance(node, dict) and not _is_interval(node):
    return {k: _clip_at(v, rest, bounds) for k, v in node.items()}
  if isinstance(node, dict) and key in node:
    return {**node, key: _clip_at(node[key], rest, bounds)}
  return node


def bounded(summary: dict, spec) -> dict:
  """``summary`` with the intervals at ``spec``'s paths clipped to a range.

  The colabs write plain Student-t intervals; a paper module declares which
  of its quantities cannot leave a range (``BOUNDS``) and this intersects
  their intervals with it (``cljax.analysis.stats.clip``: same coverage, the clipped
  ends recorded). Missing paths are skipped (a summary of a smaller scale
  lacks some sections); clipping twice changes nothing.

  Args:
    summary: a colab's JSON (not modified).
    spec: ``[(path, (low, high))]``; a path is a tuple of keys, ``"*"``
      standing for every list item or dict value at that level.

  Returns:
    A new summary.

  >>> s = {"rows": [{"etf": {"mean": 0.1, "low": -0.2, "high": 0.4}}]}
  >>> bounded(s, [(("rows", "*", "etf"), NONNEGATIVE)])["rows"][0]["etf"]
  {'mean': 0.1, 'low': 0.0, 'high': 0.4, 'clipped': ['low']}
  """
  for path, bounds in spec:
    summary = _clip_at(summary, tuple(path), bounds)
  return summary


def judged(claims: list, scale: str | None) -> list:
  """``claims`` as rendered at ``scale``: at tiny scale none is judged.

  Args:
    claims: ``_base.Claim`` objects with their verdicts.
    scale: the reproduction's scale; None (unknown) keeps the verdicts.

  >>> from cljax.reproduce import _base
  >>> c = _base.Claim("P1", "a claim", "1.0 [0.5, 1.5]", "yes")
  >>> judged([c], "tiny")[0].holds, judged([c], "cpu")[0].holds
  ('not judged at tiny scale', 'yes')
  """
  if scale != "tiny":
    return list(claims)
  return [dataclasses.replace(c, holds=NOT_JUDGED) for c in claims]


def tiny_note(scale: str) -> str:
  """The sentence that says why a tiny reproduction judges nothing."""
  if scale != "tiny":
    return ""
  return (f"At `tiny` scale every claim reads '{NOT_JUDGED}': a few steps "
          f"and 2 seeds check that the pipeline runs end to end; a verdict "
          f"would judge that budget, not the paper.")


def below(interval: dict | None, threshold: float) -> str:
  """'yes' if the whole interval is below ``threshold``, 'no' if above it.

  Fewer than 2 seeds (or no interval) is 'undecided': one run is no evidence.
  """
  if not interval or interval.get("n", 0) < 2:
    return "undecided"
  if interval["high"] < threshold:
    return "yes"
  return "no" if interval["low"] > threshold else "undecided"


def above(interval: dict | None, threshold: float) -> str:
  """'yes' if the whole interval is above ``threshold``, 'no' if below it."""
  if not interval or interval.get("n", 0) < 2:
    return "undecided"
  if interval["low"] > threshold:
    return "yes"
  return "no" if interval["high"] < threshold else "undecided"


def combine(verdicts: list[str]) -> str:
  """One verdict from several: 'yes' / 'no' when all are, 'partly' when some
  are 'yes', else 'no' when some are 'no', else 'undecided'.

  >>> combine(["yes", "undecided"]), combine(["no", "undecided"])
  ('partly', 'no')
  """
  if verdicts and all(v == "yes" for v in verdicts):
    return "yes"
  if "yes" in verdicts:
    return "partly"
  return "no" if "no" in verdicts else "undecided"


def table(headers: list[str], rows: list[list[str]]) -> str:
  lines = ["| " + " | ".join(headers) + " |",
           "|" + "---|" * len(headers)]
  lines += ["| " + " | ".join(str(c).replace("|", "\\|") for c in row) + " |"
            for row in rows]
  return "\n".join(lines)


def commands(cmds: list[str]) -> str:
  return "```bash\n" + "\n".join(cmds) + "\n```"


def claims(items) -> str:
  """The paper's claims as a table (``_base.Claim`` objects)."""
  return table(["paper", "claim", "measured (mean [95 % Student-t interval])",
                "null (the same measurement without the effect)", "holds?"],
               [[c.paper, c.claim, c.measured, c.null, c.holds]
                for c in items])


def figure_list(figures: str, names: list[str]) -> str:
  """Markdown images of ``figures/<name>.png`` (paths relative to the .md)."""
  return "\n\n".join(f"![{n}]({os.path.join(figures, n)}.png)" for n in names)


def header(title: str, *, scale: str, seeds: str) -> str:
  return (f"# {title}\n\n"
          f"Generated by `python -m cljax.reproduce` at scale `{scale}`: "
          f"every number below is read from the JSON that the colab (and, "
          f"for the larger-budget attempts, the driver) wrote from the runs "
          f"(none is typed in). Each value is the mean over seeds "
          f"with its two-sided 95 % Student-t interval `[low, high]` "
          f"(`cljax.analysis.stats.mean_interval`); {seeds}. A verdict is 'yes' or "
          f"'no' only when the whole interval lies on one side of the "
          f"claim's threshold, else 'undecided'. {BOUNDED_NOTE} "
          f"{tiny_note(scale)}".rstrip() + "\n")


BOUNDED_NOTE = (
    "The interval of a quantity that cannot leave a range (a distance or a "
    "rank is never negative, an accuracy lies in [0, 1]) is the Student-t "
    "interval intersected with that range (`cljax.analysis.stats.clip`: the same "
    "coverage), and a cell whose end was cut back says so.")


# --- appended for P1 (luthra) ---------------------------------------------

# What a claim's null column and verdict read when the summary predates the
# nulls (a JSON written before they were measured).
NULL_MISSING = "not measured in this JSON"
NO_NULL = "undecided: no null"


def within(interval: dict | None, low: float, high: float) -> str:
  """'yes' if the whole interval lies inside (low, high), 'no' if it lies
  wholly outside it, else 'undecided' (fewer than 2 seeds: 'undecided').

  >>> within({"mean": 0.0, "low": -0.01, "high": 0.02, "n": 3}, -0.05, 0.05)
  'yes'
  >>> within({"mean": 0.2, "low": 0.1, "high": 0.3, "n": 3}, -0.05, 0.05)
  'no'
  """
  if not interval or interval.get("n", 0) < 2 or interval.get("low") is None:
    return "undecided"
  if low < interval["low"] and interval["high"] < high:
    return "yes"
  if interval["low"] >= high or interval["high"] <= low:
    return "no"
  return "undecided"


def all_of(verdicts: list[str]) -> str:
  """The verdict of a conjunction: 'no' if any part is 'no', 'yes' if all
  are 'yes', else 'undecided'.

  >>> all_of(["yes", "no"]), all_of(["yes", "undecided"]), all_of(["yes"])
  ('no', 'undecided', 'yes')
  """
  if "no" in verdicts:
    return "no"
  return "yes" if verdicts and all(v == "yes" for v in verdicts) else (
      "undecided")


def combine_rows(verdicts: list[str]) -> str:
  """One verdict from rows that are each judged against their own null.

  :data:`NO_NULL` when no row had its null measured; else :func:`combine`
  of the rows' verdicts, where a row without its null (or with any other
  qualified verdict, 'undecided: ...') counts as 'undecided'.

  >>> combine_rows([NO_NULL, NO_NULL]), combine_rows(["yes", NO_NULL])
  ('undecided: no null', 'partly')
  >>> combine_rows(["no", "undecided: the null passes too"])
  'no'
  """
  if verdicts and all(v == NO_NULL for v in verdicts):
    return NO_NULL
  return combine([v.split(":")[0] for v in verdicts])


def against_null(verdict: str, null_verdict: str | None) -> str:
  """A verdict about learning, judged against its null.

  Args:
    verdict: the measurement's verdict against the claim's threshold.
    null_verdict: the null's verdict against the same threshold (the same
      measurement without the effect); None when the JSON lacks the null.

  Returns:
    ``verdict`` when the null does not pass the threshold; 'undecided: the
    null passes too' when it does (the threshold cannot tell learning from
    none); 'undecided: no null' (with the bare verdict after it) when the
    null was not measured.

  >>> against_null("yes", "no"), against_null("yes", "yes")
  ('yes', 'undecided: the null passes too')
  >>> against_null("no", None)
  'undecided: no null (without it: no)'
  """
  if null_verdict is None:
    return f"{NO_NULL} (without it: {verdict})"
  if verdict == "yes" and null_verdict != "no":
    return ("undecided: the null passes too" if null_verdict == "yes" else
            "undecided: the null's interval straddles the threshold")
  return verdict


def tidy_verdict(claim: _base.Claim) -> _base.Claim:
  """The verdict column holds 'yes', 'no', 'partly', 'undecided' or
  'undecided: no null'; a qualifier moves to the column it is about.

  Without a null, what the measurement alone says goes to ``measured``;
  a null that passes the threshold too (or straddles it) is said in the
  ``null`` column; other qualifiers go to ``measured``.
  """
  prefix = "undecided: no null (without it: "
  if claim.holds.startswith(prefix):
    bare = claim.holds[len(prefix):-1]
    return dataclasses.replace(
        claim, holds="undecided: no null",
        measured=f"{claim.measured} (without a null this would read: "
        f"{bare})")
  head, _, why = claim.holds.partition(": ")
  if head != "undecided" or not why or claim.holds == "undecided: no null":
    return claim
  if why.startswith("the null"):
    return dataclasses.replace(claim, holds="undecided",
                               null=f"{claim.null}; undecided: {why}")
  return dataclasses.replace(claim, holds="undecided",
                             measured=f"{claim.measured} ({why})")
