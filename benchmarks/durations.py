r"""Wall-clock durations of the README's commands, measured in one go.

Runs each command of the README's "Measured durations" table in a fresh
temporary work dir (the TFDS data dir is kept, so embedded datasets are
prepared once, before the timed runs), one after the other, and records its
wall time with the host's load average before and after it, so every row of
the table comes with the load it was measured under:

  python benchmarks/durations.py                     # all rows
  python benchmarks/durations.py --rows main smoke   # some rows
  python benchmarks/durations.py --tests             # + the test command

Writes ``benchmarks/durations.json`` and prints the markdown table that the
README shows.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shlex
import subprocess
import sys
import tempfile
import time

_HERE = os.path.dirname(os.path.abspath(__file__))
_ROOT = os.path.dirname(_HERE)

# name -> (what the README calls it, the command; {w} is the work dir).
ROWS = {
    "main": ("main job (`experiments/default.py`, 300 steps + 6 evaluations)",
             "python -m cljax.main --config=experiments/default.py "
             "--workdir={w}"),
    "smoke": ("`experiments/default.py:smoke` (12 steps)",
              "python -m cljax.main --config=experiments/default.py:smoke "
              "--workdir={w}"),
    "graf_tiny": ("`experiments/graf/supcon_vs_ce.py:tiny`",
                  "python -m cljax.main "
                  "--config=experiments/graf/supcon_vs_ce.py:tiny "
                  "--workdir={w}"),
    "unconstrained": ("`experiments/unconstrained/luthra_thm2.py` (free "
                      "features, 2000 steps)",
                      "python -m cljax.main "
                      "--config=experiments/unconstrained/luthra_thm2.py "
                      "--workdir={w}"),
}
TESTS = ("the test command (`pytest -n 2`)",
         "python -m pytest -q -n 2 tests")


def _load() -> float:
  return round(os.getloadavg()[0], 2)


def measure(label: str, command: str) -> dict:
  """Runs ``command`` once in a fresh work dir; its wall time and load."""
  with tempfile.TemporaryDirectory() as tmp:
    argv = shlex.split(command.format(w=os.path.join(tmp, "run")))
    before = _load()
    start = time.perf_counter()
    done = subprocess.run(argv, cwd=_ROOT, capture_output=True, text=True,
                          check=False)
    wall = time.perf_counter() - start
  if done.returncode != 0:
    raise SystemExit(f"{command!r} failed (exit {done.returncode}):\n"
                     f"{done.stdout[-2000:]}{done.stderr[-2000:]}")
  return {"row": label, "command": command.format(w="<workdir>"),
          "wall_s": round(wall, 1), "load_before": before,
          "load_after": _load(), "tail": done.stdout.strip()[-300:]}


def main(argv=None) -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--rows", nargs="*", default=list(ROWS),
                      choices=list(ROWS))
  parser.add_argument("--tests", action="store_true",
                      help="also time the README's test command")
  parser.add_argument("--out", default=os.path.join(_HERE, "durations.json"))
  args = parser.parse_args(argv)
  commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=_ROOT,
                          capture_output=True, text=True).stdout.strip()
  # Prepares the embedded datasets outside the timed runs.
  measure("warm-up", ROWS["smoke"][1])
  records = [measure(*ROWS[name]) for name in args.rows]
  if args.tests:
    records.append(measure(*TESTS))
  report = {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(
      timespec="seconds"), "host": platform.node(), "cpus": os.cpu_count(),
            "python": sys.version.split()[0], "commit": commit,
            "records": records}
  with open(args.out, "w") as f:
    json.dump(report, f, indent=1)
  print(f"Measured on {report['date']}, {report['cpus']} CPUs, commit "
        f"{commit[:10]}:\n")
  print("| command | wall clock | load average before → after |")
  print("|---|---|---|")
  for r in records:
    print(f"| {r['row']} | {r['wall_s']:.0f} s | {r['load_before']} → "
          f"{r['load_after']} |")


if __name__ == "__main__":
  main()
