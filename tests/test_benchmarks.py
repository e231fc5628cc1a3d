"""``benchmarks/gpu.py --tiny``: every part runs and its report is whole.

The accelerator benchmark is run on a GPU rarely and by hand, so a change
that breaks one of its parts would otherwise be found only then. The toy run
executes every part on CPU; the report is read back as a user would read it:
each section present, every measured cell a finite number, the device named,
and the numbers of a row consistent with each other (images/s against the
step time and the batch, the best tile against the tile columns, the loop
ratio against its two step times).
"""

import math
import os
import re
import subprocess
import sys
from pathlib import Path

import jax

REPO = Path(__file__).resolve().parent.parent
SECTIONS = ("## Loss engine vs the dense floor, by tile size",
            "## ResNet-18 SimCLR training: images/s and MFU",
            "## Train loop vs bare jitted step")


def _tables(text: str) -> dict[str, list[dict[str, str]]]:
  """Each section's Markdown table as rows of {header: cell}."""
  out = {}
  for section in re.split(r"^(?=## )", text, flags=re.M)[1:]:
    title = section.splitlines()[0][3:]
    rows = [l for l in section.splitlines() if l.startswith("|")]
    header = [c.strip() for c in rows[0].strip("|").split("|")]
    out[title] = [dict(zip(header, (c.strip() for c in
                                    r.strip("|").split("|"))))
                  for r in rows[2:]]
  return out


def _number(cell: str) -> float:
  """The number a cell starts with (a unit or label may follow)."""
  match = re.match(r"-?\d+(\.\d+)?(e[+-]?\d+)?", cell)
  assert match, f"not a number: {cell!r}"
  return float(match.group(0))


def _finite(row: dict[str, str], columns) -> dict[str, float]:
  values = {c: _number(row[c]) for c in columns}
  for column, value in values.items():
    assert math.isfinite(value), (column, row)
  return values


def _digits(cell: str) -> int:
  return len(cell.split(".")[1]) if "." in cell else 0


def test_tiny_run_reports_every_part(tmp_path):
  out, js = tmp_path / "GPU.md", tmp_path / "gpu.json"
  proc = subprocess.run(
      [sys.executable, str(REPO / "benchmarks" / "gpu.py"), "--tiny",
       "--out", str(out), "--json", str(js)],
      capture_output=True, text=True, cwd=str(REPO), timeout=1100,
      env=dict(os.environ))
  assert proc.returncode == 0, proc.stderr[-3000:]
  text = out.read_text()
  # The device is named: the toy run is on this process's CPU device kind.
  kind = jax.devices("cpu")[0].device_kind
  assert f"Device: **{kind}** (cpu" in text
  assert "Toy sizes (`--tiny`)" in text
  tables = _tables(text)
  for section in SECTIONS:
    assert section in text
    assert tables[section[3:]], f"{section}: no rows"

  losses = tables[SECTIONS[0][3:]]
  assert {r["loss"] for r in losses} == {"ntxent", "nscl"}
  for row in losses:
    tiles = [c for c in row if c.startswith("B=")]
    assert tiles == ["B=64 ms", "B=128 ms"]
    v = _finite(row, ["views", "floor ms", "auto ms", *tiles, "best tile",
                      "best ms", "best / floor", "auto / best", "peak MB"])
    assert v["views"] == 256
    # The best tile is a fastest one of the tile columns (a tie in the
    # printed digits may go either way), at its own time.
    best = f"B={int(v['best tile'])} ms"
    assert v[best] == min(v[c] for c in tiles)
    assert row["best ms"] == row[best]
    # auto / best is the ratio of the two medians shown (rounded cells).
    assert math.isclose(v["auto / best"], v["auto ms"] / v["best ms"],
                        rel_tol=0.02, abs_tol=0.006)

  train = tables[SECTIONS[1][3:]]
  assert [r["dtype"] for r in train] == ["float32", "bfloat16"]
  for row in train:
    v = _finite(row, ["batch", "step ms", "images/s", "GFLOP/step",
                      "TFLOP/s", "compile s", "peak MB"])
    assert v["batch"] == 8 and v["GFLOP/step"] > 0
    # images/s = batch / step time; FLOP/s = FLOP per step / step time.
    step = v["step ms"] / 1e3
    assert math.isclose(v["images/s"] * step, v["batch"], rel_tol=0.01)
    assert math.isclose(v["TFLOP/s"] * 1e3, v["GFLOP/step"] / step,
                        rel_tol=0.01)
    # No peak FLOP/s is known for a CPU: the MFU says so, not a number.
    assert row["MFU"] == "n/a" and row["peak used"].startswith("n/a")

  loop = tables[SECTIONS[2][3:]]
  assert len(loop) == 1
  v = _finite(loop[0], ["batch", "log_every", "loop ms/step",
                        "bare ms/step", "loop / bare", "rounds", "peak MB"])
  # One round: the median ratio is that round's loop / bare.
  assert v["rounds"] == 1
  assert math.isclose(v["loop / bare"], v["loop ms/step"] / v["bare ms/step"],
                      rel_tol=0.01, abs_tol=10 ** -_digits(
                          loop[0]["loop / bare"]))
