"""One reproduction, start to end: the function behind ``__main__``.

>>> import contextlib, io
>>> with contextlib.redirect_stdout(io.StringIO()) as printed:
...   _ = reproduce("unconstrained", scale="tiny", print_only=True)
>>> print(printed.getvalue().splitlines()[0])
python -m cljax.sweep --config=experiments/unconstrained/luthra_thm2.py:smoke \\
"""

from __future__ import annotations

import os

from cljax.reproduce import _driver

RESULTS_DIR = "experiments/results"


def default_out(paper: str, scale: str, runs_dir: str) -> str:
  """``experiments/results`` at cpu scale, else under ``runs_dir``."""
  if scale == "cpu":
    return os.path.join(_driver.root(), RESULTS_DIR)
  return os.path.join(runs_dir, paper, scale)


def results_file(out: str) -> str:
  """The file whose claims table is rewritten for ``out``."""
  if os.path.abspath(out) == os.path.join(_driver.root(), RESULTS_DIR):
    return os.path.join(os.path.dirname(os.path.abspath(out)), "RESULTS.md")
  return os.path.join(out, "RESULTS.md")


def reproduce(paper: str, *, scale: str, runs_dir: str = "runs/reproduce",
              out: str | None = None, print_only: bool = False,
              allow_stale: bool = False) -> list[str]:
  """Runs (or prints) one paper's reproduction; returns its commands.

  The console gets one line per sweep (the runs print into a log beside
  each sweep dir), then the claims with their verdicts and the files
  written; the numbers are in ``<out>/<paper>.json`` only.

  Args:
    paper: one of ``PAPERS``.
    scale: one of ``SCALES``.
    runs_dir: root of the sweep dirs (relative: from the repository root).
    out: where the JSON, figures and markdown go (default: ``default_out``).
    print_only: print the commands, write nothing.
    allow_stale: render runs trained by other loss/model/data code than the
      current one, or at several commits (the results list them).

  Returns:
    The shell commands: one ``python -m cljax.sweep`` per sweep, then the
    colab's.

  Raises:
    ValueError: an unknown paper or scale (naming the valid ones); runs of
      other code or of several commits without ``allow_stale`` (naming
      them).
    RuntimeError: the colab failed or wrote no summary.
  """
  module = _driver.paper_module(paper)
  _driver.check_scale(scale)
  runs_dir = os.path.join(_driver.root(), runs_dir)
  out = os.path.join(_driver.root(), out or default_out(paper, scale,
                                                        runs_dir))
  sweeps = _driver.sweep_dirs(module, paper, scale, runs_dir)
  dirs = {name: d for name, (_, d) in sweeps.items()}
  rel = lambda p: (os.path.relpath(p, _driver.root())  # As a user types it.
                   if p.startswith(_driver.root() + os.sep) else p)
  commands = [_driver.sweep_command(s, rel(d)) for s, d in sweeps.values()]
  colab_dirs = _driver.colab_dirs(module, scale, dirs)
  commands.append(_driver.colab_command(
      module, {k: rel(v) for k, v in colab_dirs.items()}, rel(out), paper))
  if print_only:
    print("\n".join(commands))
    return commands
  _driver.run_sweeps(sweeps)
  records = _driver.run_records(dirs, runs_dir)
  stale = _driver.check_runs(records, allow_stale=allow_stale)
  summary = _driver.execute_colab(module, colab_dirs, out, paper)
  summary = _driver.add_attempts(module, summary, dirs, out=out, paper=paper,
                                 scale=scale)
  prov = _driver.provenance_block(
      paper=paper, scale=scale, runs_dir=rel(runs_dir), records=records,
      stale=stale, allow_stale=allow_stale)
  summary = _driver.write_summary(module, summary, out=out, paper=paper,
                                  prov=prov)
  path = _driver.write_markdown(module, summary, scale=scale,
                                commands=commands, out=out, paper=paper)
  table_file = results_file(out)
  _driver.rewrite_claims(table_file, _driver.claims_table(
      out, os.path.dirname(table_file)))
  print(report(module, summary, scale=scale, files=[
      rel(os.path.join(out, f"{paper}.json")), rel(path),
      rel(os.path.join(out, "figures")), rel(table_file)]))
  return commands


def report(module, summary: dict, *, scale: str, files: list[str]) -> str:
  """The console's summary: the claims with their verdicts, the files.

  >>> from cljax.reproduce import unconstrained
  >>> summary = {"close": 1e-3, "luthra_thm2": [], "graf_multisets": [],
  ...            "graf_ce": [], "graf_batches": [], "jiang_beta": [],
  ...            "provenance": {"commit": None, "dirty": None, "stale": []}}
  >>> print(report(unconstrained, summary, scale="tiny", files=["a.json"]))
  unconstrained at tiny scale (commit unknown): 0 claims
  wrote a.json
  """
  prov = summary.get("provenance", {})
  commit = (prov.get("commit") or "unknown")[:12] + (
      ", uncommitted changes" if prov.get("dirty") else "")
  claims = module.claims(summary, scale=scale)
  name = module.__name__.rsplit(".", 1)[-1]
  lines = [f"{name} at {scale} scale (commit {commit}): {len(claims)} claims"]
  lines += [f"  {c.paper} {c.claim}: {c.holds}" for c in claims]
  if prov.get("stale"):
    lines.append(f"  ({len(prov['stale'])} runs of other code rendered "
                 f"with --allow_stale; listed in the markdown)")
  lines.append("wrote " + ", ".join(files))
  return "\n".join(lines)
