"""The steps of ``python -m cljax.reproduce``: sweeps, colab, markdown, table.

Each step is a function of its inputs (the paper's module, the directories),
so the tests drive them one by one; ``__main__`` only parses the flags.

>>> from cljax.reproduce import _base
>>> sweep = _base.Sweep(
...     name="thm2", config="experiments/unconstrained/luthra_thm2.py:smoke",
...     grid=("num_classes=[3,4]",), seeds=2)
>>> print(sweep_command(sweep, "runs/reproduce/unconstrained/tiny/thm2"))
python -m cljax.sweep --config=experiments/unconstrained/luthra_thm2.py:smoke \\
    --sweep_dir=runs/reproduce/unconstrained/tiny/thm2 \\
    '--grid=num_classes=[3,4]' --seeds=2
"""

from __future__ import annotations

import ast
import contextlib
import importlib
import json
import os
import shlex
from typing import Any

from cljax import sweep as sweep_lib
from cljax._src import config_files
from cljax.analysis import sweeps
from cljax.analysis import colab
from cljax.training import provenance
from cljax.reproduce import _base
from cljax.reproduce import _render

PAPERS = ("luthra", "graf", "jiang", "unconstrained")
BEGIN = "<!-- claims:begin (written by python -m cljax.reproduce; do not edit) -->"
END = "<!-- claims:end -->"


def root() -> str:
  """The repository root (configs and colabs are named relative to it)."""
  found = colab.repo_root(os.path.dirname(os.path.abspath(__file__)))
  return found or os.getcwd()


def paper_module(paper: str):
  """``cljax.reproduce.<paper>``; ValueError naming the valid papers."""
  if paper not in PAPERS:
    raise ValueError(f"unknown paper {paper!r}; choose one of "
                     f"{', '.join(PAPERS)}.")
  return importlib.import_module(f"cljax.reproduce.{paper}")


def check_scale(scale: str) -> str:
  if scale not in _base.SCALES:
    raise ValueError(f"--scale={scale!r} is not a scale; choose one of "
                     f"{', '.join(_base.SCALES)}.")
  return scale


def sweep_dirs(module, paper: str, scale: str, runs_dir: str
               ) -> dict[str, tuple[_base.Sweep, str]]:
  """Each sweep of ``module`` at ``scale`` with its directory, by name.

  The colab's sweeps come first, then the paper's ``attempts(scale)`` if it
  has them (see ``colab_dirs``).
  """
  out = {}
  attempts = getattr(module, "attempts", lambda scale: [])(scale)
  for sweep in list(module.sweeps(scale)) + list(attempts):
    if sweep.name in out:
      raise ValueError(f"cljax.reproduce.{paper}: two sweeps are named "
                       f"{sweep.name!r}.")
    out[sweep.name] = (sweep, os.path.join(runs_dir, paper, scale, sweep.name))
  return out


def colab_dirs(module, scale: str, dirs: dict[str, str]) -> dict[str, str]:
  """``dirs`` less the attempt sweeps: what the paper's colab reads."""
  names = {sweep.name for sweep in module.sweeps(scale)}
  return {name: d for name, d in dirs.items() if name in names}


def add_attempts(module, summary: dict, dirs: dict[str, str], *, out: str,
                 paper: str, scale: str) -> dict:
  """``summary`` with ``module.attempt_summary``'s numbers under "attempts".

  The JSON of ``<out>/<paper>.json`` is rewritten with them, so the claims
  table (read from that file) sees them too. A module without attempts
  returns ``summary`` unchanged.
  """
  if not hasattr(module, "attempt_summary"):
    return summary
  summary = {**summary, "attempts": module.attempt_summary(dirs, scale=scale)}
  with open(os.path.join(out, f"{paper}.json"), "w") as f:
    json.dump(summary, f, indent=1)
  return summary


def _field_value(flag: str) -> tuple[str, Any]:
  """'--config.a.b=3' (or 'a.b=3') -> ('a.b', 3); strings stay strings."""
  field, sep, text = flag.removeprefix("--config.").partition("=")
  if not sep:
    raise ValueError(f"override {flag!r} must look like --config.field=value.")
  try:
    return field, ast.literal_eval(text)
  except (ValueError, SyntaxError):
    return field, text


def sweep_command(sweep: _base.Sweep, directory: str) -> str:
  """The ``python -m cljax.sweep`` command line of ``sweep`` (wrapped)."""
  flags = [f"--grid={g}" for g in sweep.grid]
  flags += [f"--zip={z}" for z in sweep.zipped]
  if sweep.seeds > 1:
    flags.append(f"--seeds={sweep.seeds}")
  flags += [o if o.startswith("--config.") else f"--config.{o}"
            for o in sweep.overrides]
  lines = [f"python -m cljax.sweep --config={sweep.config}",
           f"--sweep_dir={directory}"]
  if flags:
    lines.append(" ".join(shlex.quote(f) for f in flags))
  return " \\\n    ".join(lines)


def load_config(sweep: _base.Sweep):
  """The locked config of ``sweep.config`` with ``sweep.overrides`` applied.

  ``file.py:preset`` calls the file's ``get_config(preset)``, as
  ``--config`` of ``cljax.main`` does: the file is loaded by its path from
  the repository root (``cljax._src.config_files``), whatever the working
  directory, and the configs it extends by paths relative to it.
  """
  full = os.path.join(root(), sweep.config.partition(":")[0])
  if not os.path.isfile(full):
    raise ValueError(f"sweep {sweep.name!r}: config file {full} not found.")
  config = config_files.get_config(os.path.join(root(), sweep.config))
  config.lock()
  for flag in sweep.overrides:
    sweep_lib.set_field(config, *_field_value(flag))
  return config


def log_file(directory: str) -> str:
  """Where the runs of the sweep in ``directory`` print (beside it)."""
  return os.path.normpath(directory) + ".log"


def run_sweeps(sweeps: dict[str, tuple[_base.Sweep, str]]) -> dict[str, str]:
  """Runs every sweep resumably (finished points are skipped); name -> dir.

  What the runs print (progress, per-run summaries, the free-feature runs'
  JSON) is appended to ``log_file(dir)``, not the console: the console gets
  one line per sweep, and the log's path if the sweep stops.
  """
  for sweep, directory in sweeps.values():
    log = log_file(directory)
    print(f"== sweep {sweep.name}: {directory} (output: {log})", flush=True)
    os.makedirs(os.path.dirname(log) or ".", exist_ok=True)
    try:
      with open(log, "a") as f, contextlib.redirect_stdout(f):
        sweep_lib.run_sweep(
            load_config(sweep), sweep_lib.parse_grid(list(sweep.grid)),
            directory, zipped=sweep_lib.parse_grid(list(sweep.zipped)),
            seeds=list(range(sweep.seeds)) if sweep.seeds > 1 else None,
            config_arg=sweep.config, verbose=True,
            base_flags=[o if o.startswith("--config.") else f"--config.{o}"
                        for o in sweep.overrides])
    except BaseException:
      print(f"sweep {sweep.name} stopped; what its runs printed is in {log}.",
            flush=True)
      raise
  return {name: directory for name, (_, directory) in sweeps.items()}


def _listed(names: list[str], limit: int = 8) -> str:
  more = len(names) - limit
  return ", ".join(names[:limit]) + (f" and {more} more" if more > 0 else "")


def run_records(dirs: dict[str, str], runs_dir: str) -> list[dict]:
  """``provenance.run_record`` of every point of every sweep in ``dirs``.

  Each record also names its sweep (``"sweep"``); work dirs are relative to
  ``runs_dir`` (``--runs_dir``).
  """
  out = []
  for name, directory in dirs.items():
    for entry in sweeps.read_sweep(directory):
      out.append({"sweep": name, **provenance.run_record(entry["workdir"],
                                                          runs_dir)})
  return out


def _mixed_commits(records: list[dict]) -> dict[str, list[str]]:
  """commit -> its runs' work dirs, when the runs come from several.

  Runs without provenance are left out: they are refused as stale already.
  """
  by_commit = {}
  for r in records:
    if r.get("modules_hash") is None:
      continue
    for commit in r.get("commits", [r.get("commit")]):
      by_commit.setdefault(str(commit), []).append(r["workdir"])
  return by_commit if len(by_commit) > 1 else {}


def check_runs(records: list[dict], *, allow_stale: bool,
               modules: str | None = None) -> list[dict]:
  """Refuses runs of other code than HEAD's, and runs of several commits.

  Args:
    records: ``run_records``.
    allow_stale: accept them anyway (``--allow_stale``); the results JSON
      and markdown then list them.
    modules: the current modules hash (default: this process's code).

  Returns:
    The stale records, each with its reason (``"stale"``).

  Raises:
    ValueError: naming the stale runs (loss, model or data code differs from
      the current one, or no provenance) or the runs of each commit, and
      the fix.
  """
  stale = []
  for r in records:
    why = provenance.stale(r, modules)
    if why:
      stale.append({**r, "stale": why})
  mixed = _mixed_commits(records)
  if allow_stale:
    return stale
  problems = []
  if stale:
    problems.append(
        f"{len(stale)} of {len(records)} runs were not trained by the current "
        f"loss/model/data code: " + _listed(
            [f"{r['workdir']} ({r['stale']})" for r in stale]))
  if mixed:
    problems.append("the runs come from several commits, one table must "
                    "come from one: " + "; ".join(
                        f"{c[:12]}: {_listed(w, 4)}"
                        for c, w in mixed.items()))
  if problems:
    raise ValueError(
        "; ".join(problems) + ". Delete those work dirs so the sweeps train "
        "them again with this code, or pass --allow_stale to render them "
        "anyway (the results then list them).")
  return stale


def provenance_block(*, paper: str, scale: str, runs_dir: str,
                     records: list[dict], stale: list[dict],
                     allow_stale: bool) -> dict:
  """The ``"provenance"`` of a results JSON: the code, and every run's."""
  code = provenance.current()
  return {"paper": paper, "scale": scale, "commit": code["commit"],
          "dirty": code["dirty"], "modules_hash": code["modules_hash"],
          "cljax_version": code["cljax_version"],
          "jax_version": code["jax_version"], "runs_dir": runs_dir,
          "allow_stale": allow_stale,
          "stale": [{"workdir": r["workdir"], "why": r["stale"]}
                    for r in stale],
          "runs": records}


def check_provenance(summary: dict, source: str) -> dict:
  """``summary["provenance"]``, refusing a JSON without it or of mixed runs.

  Args:
    summary: a results JSON.
    source: its path (named in the message).

  Raises:
    ValueError: no provenance (a JSON made before it was recorded, or by
      hand), or runs from several commits not allowed by ``--allow_stale``
      (naming them).
  """
  prov = summary.get("provenance")
  if not isinstance(prov, dict) or not prov.get("runs"):
    raise ValueError(
        f"{source} has no provenance (the commit and the runs it was made "
        f"from): it predates provenance or was not written by python -m "
        f"cljax.reproduce. Run the reproduction again to write it.")
  mixed = _mixed_commits(prov["runs"])
  if mixed and not prov.get("allow_stale"):
    raise ValueError(
        f"{source}: its runs come from several commits: " + "; ".join(
            f"{c[:12]}: {_listed(w, 4)}" for c, w in mixed.items()) +
        ". Rerun the reproduction (or pass --allow_stale to it).")
  return prov


def provenance_markdown(prov: dict) -> str:
  """The markdown section that shows which code made the results."""
  def commit(c, dirty=None):
    if c is None:
      return "unknown (no git checkout)"
    return f"`{c[:12]}`" + (" (uncommitted changes)" if dirty else "")
  commits = sorted({str(r.get("commit")) for r in prov["runs"]})
  lines = [
      "## Provenance", "",
      f"Rendered at commit {commit(prov['commit'], prov['dirty'])} with "
      f"cljax {prov['cljax_version']} and JAX {prov['jax_version']}; "
      f"{len(prov['runs'])} runs under `--runs_dir` trained at commit "
      + ", ".join(commit(None if c == "None" else c) for c in commits)
      + f" (per run: work dir, config hash and commit in the JSON's "
      f"`provenance.runs`)."]
  if prov.get("stale"):
    lines += ["", f"Rendered with `--allow_stale`: {len(prov['stale'])} runs "
              f"were trained by other loss/model/data code than this: "
              + _listed([f"`{r['workdir']}` ({r['why']})"
                         for r in prov["stale"]]) + "."]
  return "\n".join(lines)


def colab_command(module, dirs: dict[str, str], out: str, paper: str) -> str:
  """The shell command that executes the paper's colab on ``dirs``."""
  env = module.colab_env(dirs, summary=os.path.join(out, f"{paper}.json"),
                         figures=os.path.join(out, "figures"))
  assignments = " ".join(f"{k}={shlex.quote(v)}" for k, v in sorted(env.items()))
  return (f"{assignments} \\\n    jupyter nbconvert --to notebook --execute "
          f"--output-dir={shlex.quote(out)} {module.COLAB}")


def execute_colab(module, dirs: dict[str, str], out: str, paper: str,
                  *, timeout: int = 1800) -> dict:
  """Executes ``module.COLAB`` with its env; returns the JSON it wrote.

  Raises:
    RuntimeError: a cell failed (its error) or the colab wrote no JSON.
  """
  import nbclient  # Notebook machinery only for this step.
  import nbformat
  summary = os.path.join(out, f"{paper}.json")
  figures = os.path.join(out, "figures")
  os.makedirs(figures, exist_ok=True)
  env = module.colab_env(dirs, summary=summary, figures=figures)
  # The kernel inherits this process's environment: this tree, no display.
  saved = dict(os.environ)
  os.environ.update(env)
  os.environ["MPLBACKEND"] = "Agg"
  os.environ["PYTHONPATH"] = os.pathsep.join(
      [root()] + [p for p in saved.get("PYTHONPATH", "").split(os.pathsep) if p])
  try:
    if os.path.exists(summary):
      os.remove(summary)  # A stale summary must not pass for a fresh one.
    path = os.path.join(root(), module.COLAB)
    nb = nbformat.read(path, as_version=4)
    print(f"== colab {module.COLAB}", flush=True)
    try:
      nbclient.NotebookClient(
          nb, timeout=timeout, kernel_name="python3", startup_timeout=600,
          resources={"metadata": {"path": os.path.dirname(path)}}).execute()
    except nbclient.exceptions.CellExecutionError as e:
      raise RuntimeError(f"{module.COLAB} failed: {e}") from None
  finally:
    os.environ.clear()
    os.environ.update(saved)
  if not os.path.exists(summary):
    raise RuntimeError(f"{module.COLAB} ran but wrote no {summary}; its "
                       f"summary variable is {sorted(env)}.")
  with open(summary) as f:
    return json.load(f)


def write_summary(module, summary: dict, *, out: str, paper: str,
                  prov: dict) -> dict:
  """``<out>/<paper>.json`` rewritten with ``prov`` and bounded intervals.

  The intervals of the module's ``BOUNDS`` are clipped to their ranges
  (``_render.bounded``), so the file holds what the markdown shows.
  """
  summary = {**_render.bounded(summary, getattr(module, "BOUNDS", [])),
             "provenance": prov}
  with open(os.path.join(out, f"{paper}.json"), "w") as f:
    json.dump(summary, f, indent=1)
  return summary


def write_markdown(module, summary: dict, *, scale: str, commands: list[str],
                   out: str, paper: str) -> str:
  """Writes ``<out>/<paper>.md`` from ``module.render``; returns its path.

  Raises:
    ValueError: ``summary`` has no provenance, or mixes commits
      (``check_provenance``).
  """
  prov = check_provenance(summary, os.path.join(out, f"{paper}.json"))
  text = module.render(summary, scale=scale, commands=commands,
                       figures="figures").rstrip("\n")
  text += "\n\n" + provenance_markdown(prov)
  path = os.path.join(out, f"{paper}.md")
  with open(path, "w") as f:
    f.write(text if text.endswith("\n") else text + "\n")
  return path


def _cell(text: str) -> str:
  return str(text).replace("|", "\\|").replace("\n", " ")


def claims_table(out: str, link_dir: str) -> str:
  """The markdown claims table from every paper's ``<out>/<paper>.json``.

  Each row links ``<out>/<paper>.md`` relative to ``link_dir`` (the folder
  of the file the table goes into).

  A paper without a JSON in ``out`` gets one row that says so and gives the
  command that makes it: no number is carried over from elsewhere. So does
  a JSON that ``check_provenance`` refuses (the row gives the reason). The
  claims are judged at the scale the JSON records (none at tiny scale).
  """
  lines = ["| paper | claim | measured here (mean, 95 % Student-t interval "
           "over seeds) | null | holds here? | from |",
           "|---|---|---|---|---|---|"]
  for paper in PAPERS:
    path = os.path.join(out, f"{paper}.json")
    link = os.path.relpath(os.path.join(out, f"{paper}.md"), link_dir)
    source = f"[`{paper}`]({link})"
    if not os.path.exists(path):
      lines.append(f"| — | {paper}: not regenerated at this scale yet | run "
                   f"`python -m cljax.reproduce {paper} --scale=cpu` | — | — "
                   f"| {source} |")
      continue
    with open(path) as f:
      summary = json.load(f)
    try:
      prov = check_provenance(summary, os.path.relpath(path, link_dir))
    except ValueError as e:
      lines.append(f"| — | {paper}: refused | {_cell(e)} | — | — | "
                   f"{source} |")
      continue
    for claim in paper_module(paper).claims(summary, scale=prov["scale"]):
      lines.append("| " + " | ".join(_cell(c) for c in (
          claim.paper, claim.claim, claim.measured, claim.null,
          claim.holds)) +
                   f" | {source} |")
  return "\n".join(lines)


def rewrite_claims(results_md: str, table: str) -> None:
  """Replaces what lies between the claim markers of ``results_md``.

  A missing file is created holding only the table.

  Raises:
    ValueError: the file exists but lacks the markers.
  """
  block = f"{BEGIN}\n{table}\n{END}"
  if not os.path.exists(results_md):
    text = f"# Reproductions: claims\n\n{block}\n"
  else:
    with open(results_md) as f:
      text = f.read()
    if BEGIN not in text or END not in text:
      raise ValueError(f"{results_md} has no {BEGIN!r} ... {END!r} markers; "
                       f"put them around its claims table.")
    head, rest = text.split(BEGIN, 1)
    text = head + block + rest.split(END, 1)[1]
  with open(results_md, "w") as f:
    f.write(text)
