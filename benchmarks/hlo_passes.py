#!/usr/bin/env python
"""How many times each loss's compiled forward+backward touches a [V, V] array.

    python benchmarks/hlo_passes.py --n 4096            # every JAX row
    python benchmarks/hlo_passes.py --n 4096 --only floor ntxent --dump /tmp/hlo

Compiles (does not run) the same ``jit(value_and_grad(loss))`` as
``losses.py`` for V = N*K views and reads the optimised HLO: every
non-fused instruction (a kernel launch on XLA:CPU: a loop fusion, a YNNPACK
fusion for dots/reductions, a dot, ...) of the entry computation and of any
while/call/conditional computation is inspected. An operand or result with V*V
elements is one pass over the similarity matrix (a read or a write of V*V
elements of that dtype). Instructions inside a while loop are counted once per
loop body (marked "in loops"), not multiplied by the trip count.

This is a static proxy for memory traffic, complementary to the timings: a
loss that XLA fused into as many passes as the floor should cost about the
same; every extra f32 pass costs V*V*4 bytes (256 MiB at V = 8192).
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

import losses as bench  # noqa: E402  (benchmarks/losses.py)

_DTYPE_BYTES = {"pred": 1, "s8": 1, "u8": 1, "bf16": 2, "f16": 2, "s16": 2,
                "f32": 4, "s32": 4, "u32": 4, "f64": 8, "s64": 8, "u64": 8}
_SHAPE = re.compile(r"\b(pred|[fsu]\d+|bf16)\[([\d,]*)\]")
_INSTR = re.compile(r"^\s*(ROOT\s+)?%([\w.\-]+)\s*=\s*(.*)$")
_COMP = re.compile(r"^(ENTRY\s+)?%([\w.\-]+)\s*(\(.*)?\{\s*$")


def _shapes(text):
  """[(dtype, elements)] of every array shape in a type string."""
  out = []
  for dtype, dims in _SHAPE.findall(text):
    n = 1
    for d in filter(None, dims.split(",")):
      n *= int(d)
    out.append((dtype, n))
  return out


def parse(hlo: str):
  comps, current, entry = {}, None, None
  for line in hlo.splitlines():
    m = _COMP.match(line)
    if m:
      current = m.group(2)
      comps[current] = []
      if m.group(1):
        entry = current
      continue
    if line.strip() == "}":
      current = None
      continue
    if current is None:
      continue
    m = _INSTR.match(line)
    if m:
      comps[current].append((m.group(2), m.group(3)))
  return comps, entry


def _split_type_op(rest):
  """'f32[8]{0} fusion(%a, %b), kind=...' -> (type, opcode, operands, tail)."""
  depth = 0
  for i, ch in enumerate(rest):
    if ch in "([{":
      depth += 1
    elif ch in ")]}":
      depth -= 1
    elif ch == " " and depth == 0:
      type_str, rest2 = rest[:i], rest[i + 1:]
      break
  else:
    return rest, "", [], ""
  m = re.match(r"([\w\-]+)\((.*?)\)(.*)$", rest2)
  if not m:
    return type_str, rest2, [], ""
  operands = re.findall(r"%([\w.\-]+)", m.group(2))
  return type_str, m.group(1), operands, m.group(3)


def count_passes(hlo: str, v: int):
  comps, entry = parse(hlo)
  fused = set()
  loop_comps = set()
  for instrs in comps.values():
    for _, rest in instrs:
      _, op, _, tail = _split_type_op(rest)
      for attr, target in re.findall(r"(calls|to_apply|body|condition|"
                                     r"branch_computations)=\{?%([\w.\-]+)",
                                     tail):
        if op == "fusion" or attr == "to_apply":
          fused.add(target)
        elif attr in ("body", "condition"):
          loop_comps.add(target)
  vv = v * v
  stats = {"kernels": 0, "reads": 0, "writes": 0, "mib": 0.0,
           "loop_kernels": 0, "by_dtype": {}}
  for name, instrs in comps.items():
    if name in fused:
      continue
    in_loop = name in loop_comps
    types = {}
    for iname, rest in instrs:
      types[iname] = _split_type_op(rest)[0]
    for iname, rest in instrs:
      type_str, op, operands, _ = _split_type_op(rest)
      if op in ("parameter", "constant", "bitcast", "tuple",
                "get-tuple-element", "while", "call", "conditional"):
        continue
      touched = False
      for dtype, n in _shapes(type_str):
        if n == vv:
          stats["writes"] += 1
          stats["mib"] += n * _DTYPE_BYTES.get(dtype, 4) / 2**20
          stats["by_dtype"][dtype] = stats["by_dtype"].get(dtype, 0) + 1
          touched = True
      for o in operands:
        for dtype, n in _shapes(types.get(o, "")):
          if n == vv:
            stats["reads"] += 1
            stats["mib"] += n * _DTYPE_BYTES.get(dtype, 4) / 2**20
            stats["by_dtype"][dtype] = stats["by_dtype"].get(dtype, 0) + 1
            touched = True
      if touched:
        stats["kernels"] += 1
        stats["loop_kernels"] += in_loop
  return stats


def main():
  p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  p.add_argument("--n", type=int, default=4096)
  p.add_argument("--only", nargs="+",
                 choices=[k for k in bench.CASES if k not in bench.PEERS])
  p.add_argument("--dump", help="directory for the optimised HLO text")
  args = p.parse_args()
  import jax
  z, y = bench.make_inputs(args.n)
  v = args.n * bench.K
  keys = args.only or [k for k in bench.CASES if k not in bench.PEERS]
  print(f"N = {args.n}, V = {v} views; passes over [V, V] arrays in the "
        "optimised HLO of jit(value_and_grad); cljax/*.py sha256 "
        f"{bench.code_hash(bench.REPO)}\n")
  print("| row | kernels touching [V,V] | [V,V] reads | [V,V] writes | "
        "[V,V] traffic MiB | XLA temp MiB |")
  print("|---|---:|---:|---:|---:|---:|")
  for key in keys:
    fn, aux = bench._jax_loss_fn(key)
    compiled = jax.jit(jax.value_and_grad(fn, has_aux=aux)).lower(
        z, y, jax.random.key(0)).compile()
    hlo = compiled.as_text()
    if args.dump:
      Path(args.dump).mkdir(parents=True, exist_ok=True)
      (Path(args.dump) / f"{key}_{args.n}.hlo.txt").write_text(hlo)
    s = count_passes(hlo, v)
    temp = compiled.memory_analysis().temp_size_in_bytes / 2**20
    loop = f" ({s['loop_kernels']} in loops)" if s["loop_kernels"] else ""
    dt = ", ".join(f"{k}:{c}" for k, c in sorted(s["by_dtype"].items()))
    print(f"| {key} | {s['kernels']}{loop} | {s['reads']} | {s['writes']} | "
          f"{s['mib']:.0f} ({dt}) | {temp:.0f} |", flush=True)


if __name__ == "__main__":
  main()
