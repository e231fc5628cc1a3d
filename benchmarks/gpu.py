#!/usr/bin/env python
"""The accelerator path in one command: loss engine tiles, ResNet-18 SimCLR
throughput and MFU, the train loop's overhead, peak device memory.

    python benchmarks/gpu.py                    # one GPU (sized for < 8 min)
    python benchmarks/gpu.py --tiny --out /tmp/GPU.md   # toy sizes on CPU

Parts (each case runs in a fresh subprocess, ``--child``: its peak device
memory is its own, and a case that runs out of memory fails alone):

* ``losses``: per number of views (8 192 ... 65 536), the dense floor
  (normalise + [V, V] matmul + log-sum-exp, forward and backward) and the
  losses through the engine with ``block_size="auto"`` (today's default)
  and with every tile size of ``--blocks``, all timed round-robin in one
  process; the ratios to the floor are per round. The cases are
  ``benchmarks/tiled.py``'s own (imported, not copied). The best tile per
  size is reported; making it the engine's GPU default
  (``cljax/_src/engine/dispatch.py``, ``DEFAULT_BLOCK_SIZE["other"]``) is a
  follow-up for when a GPU has been measured.
* ``train``: the library's own jitted train step of the ResNet-18 (CIFAR
  stem) SimCLR config (``benchmarks/loop.py``'s ResNet-18 loop config with
  the NT-Xent loss: views made on device, plus the monitored losses) at a
  global batch of 512 images (1 024 views), in float32 and in bfloat16:
  images/s, and MFU = the compiled step's FLOPs (XLA's
  ``cost_analysis()``) per second over the device's peak (``PEAK_FLOPS``,
  by device kind; the report names the peak used).
* ``loop``: ``cljax.training.train.train_and_evaluate`` against its bare jitted step
  on the same batches (``benchmarks/loop.py``'s ``child_loop``, imported).
* Peak device memory of every case: ``device.memory_stats()``'s
  ``peak_bytes_in_use``; where the device has no memory statistics (CPU)
  the process's peak resident memory, labelled as host memory.

Without an accelerator the script refuses to run (a CPU number in GPU.md
would read as a GPU one) unless ``--tiny`` is given: every part at toy sizes
(256 views, batch 8, 2 steps, the small ConvNet), seconds to a minute.
Results go to ``--out`` (``benchmarks/GPU.md``) and, with ``--json``, every
record to that file.
"""

from __future__ import annotations

import argparse
import datetime
import importlib.util
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
RESULT_TAG = "GPU_RESULT "
COMMAND = "python benchmarks/gpu.py"

# Dense peak FLOP/s by device kind (substring of ``device.device_kind``,
# first match wins) and compute dtype, from the vendors' data sheets
# (without sparsity). float32 is the plain (non-tensor-core) rate; XLA on
# Ampere and later may run float32 matmuls and convolutions as TF32 on the
# tensor cores, so "tf32" is given beside it.
PEAK_FLOPS = (
    ("H100 PCIe", {"bfloat16": 756e12, "float32": 51e12, "tf32": 378e12}),
    ("H100", {"bfloat16": 989e12, "float32": 67e12, "tf32": 495e12}),  # SXM
    ("H200", {"bfloat16": 989e12, "float32": 67e12, "tf32": 495e12}),
    ("A100", {"bfloat16": 312e12, "float32": 19.5e12, "tf32": 156e12}),
    ("L4", {"bfloat16": 121e12, "float32": 30.3e12, "tf32": 60e12}),
    ("TPU v4", {"bfloat16": 275e12}),
    ("TPU v5 lite", {"bfloat16": 197e12}),
    ("TPU v5p", {"bfloat16": 459e12}),
)

# Sized to fit 8 minutes on one GPU (an estimate; not yet timed on one):
# compiling the ResNet-18 step is a large share of each part, and the loop
# part compiles it twice (its bare step and the loop's own), so it runs
# one round.
FULL = {"views": [8192, 16384, 32768, 65536], "blocks": [512, 1024, 2048,
                                                         4096],
        "losses": ["ntxent", "nscl"], "repeats": 5, "model": "resnet18",
        "batch": 512, "steps": 30, "log_every": 20, "loop_rounds": 1}
TINY = {"views": [256], "blocks": [64, 128], "losses": ["ntxent", "nscl"],
        "repeats": 2, "model": "convnet", "batch": 8, "steps": 2,
        "log_every": 1, "loop_rounds": 1}


def _bench(name: str):
  """``benchmarks/<name>.py`` as a module (benchmarks/ is no package)."""
  spec = importlib.util.spec_from_file_location(f"cljax_bench_{name}",
                                                HERE / f"{name}.py")
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def peak_flops(device_kind: str) -> dict:
  """The ``PEAK_FLOPS`` entry of a device kind ({} when unknown)."""
  for key, peaks in PEAK_FLOPS:
    if key.lower() in device_kind.lower():
      return dict(peaks, key=key)
  return {}


# ---------------------------------------------------------------------------
# Children.
# ---------------------------------------------------------------------------

def _device() -> dict:
  import jax
  d = jax.devices()[0]
  return {"platform": d.platform, "device_kind": d.device_kind,
          "device_count": jax.device_count(), "jax": jax.__version__}


def _peak_memory() -> dict:
  """Peak device memory of this process, else its peak resident memory."""
  import jax
  stats = None
  try:
    stats = jax.devices()[0].memory_stats()
  except Exception:  # noqa: BLE001 - backends without statistics raise.
    stats = None
  if stats and "peak_bytes_in_use" in stats:
    return {"peak_mb": stats["peak_bytes_in_use"] / 2 ** 20,
            "memory": "device",
            "limit_mb": stats.get("bytes_limit", 0) / 2 ** 20}
  with open("/proc/self/status") as f:
    hwm = next(int(l.split()[1]) for l in f if l.startswith("VmHWM:"))
  return {"peak_mb": hwm / 1024, "memory": "host (no device statistics)"}


def _error(e: BaseException) -> str:
  return f"{type(e).__name__}: {' '.join(str(e).split())[:200]}"


def child_losses(spec: dict) -> dict:
  """Floor, auto and every tile of the losses at one size, round-robin."""
  import jax
  tiled = _bench("tiled")
  views = spec["views"]
  z, y = (jax.device_put(a) for a in tiled._inputs(views))
  cases = {"floor": ("dense_floor", None)}
  for loss in spec["losses"]:
    cases[f"{loss}:auto"] = (loss, "auto")
    for block in spec["blocks"]:
      if block <= views:
        cases[f"{loss}:{block}"] = (loss, block)
  fns, failed, compile_s = {}, {}, {}
  for label, (name, block) in cases.items():
    fn = tiled._jax_case(name, block)
    try:
      t0 = time.perf_counter()
      tiled._call(fn, (z, y))   # Compiles.
      compile_s[label] = time.perf_counter() - t0
      tiled._call(fn, (z, y))
      fns[label] = fn
    except Exception as e:  # noqa: BLE001 - e.g. out of device memory.
      failed[label] = _error(e)
  times = {label: [] for label in fns}
  for _ in range(spec["repeats"]):
    for label, fn in fns.items():
      times[label].append(tiled._timed(fn, (z, y)))
  out = {"views": views, "times_s": times, "failed": failed,
         "compile_s": compile_s,
         "median_s": {k: statistics.median(v) for k, v in times.items()}}
  if "floor" in times:
    # Per round: both sides timed in the same round of this process.
    out["ratio_to_floor"] = {
        k: statistics.median(a / b for a, b in zip(v, times["floor"]))
        for k, v in times.items()}
  return {**out, **_peak_memory(), **_device()}


def _flops(compiled) -> float:
  cost = compiled.cost_analysis()
  if isinstance(cost, (list, tuple)):   # Older jax: one dict per program.
    cost = cost[0] if cost else {}
  return float((cost or {}).get("flops", float("nan")))


def child_train(spec: dict) -> dict:
  """Images/s and MFU of the library's jitted SimCLR train step."""
  loop = _bench("loop")
  config = loop._loop_config(spec["model"], spec["batch"], 10, 10 ** 6)
  with config.unlocked():
    config.model.dtype = spec["dtype"]
    config.loss.name = "ntxent"   # SimCLR; the temperature stays 0.5.
  pieces = loop._Pieces(config)
  batch = pieces.to_device(next(pieces.data))
  state = pieces.init_state()
  t0 = time.perf_counter()
  compiled = pieces.step_fn.lower(state, batch).compile()
  compile_s = time.perf_counter() - t0
  flops = _flops(compiled)
  for _ in range(2):   # Warm: the first calls allocate.
    state, metrics = compiled(state, batch)
  loop._block((state, metrics))
  steps = spec["steps"]
  t0 = time.perf_counter()
  for _ in range(steps):
    state, metrics = compiled(state, batch)
  loop._block((state, metrics))
  step_s = (time.perf_counter() - t0) / steps
  device = _device()
  peaks = peak_flops(device["device_kind"])
  achieved = flops / step_s
  out = {"model": spec["model"], "dtype": spec["dtype"],
         "batch": spec["batch"], "views": 2 * spec["batch"], "steps": steps,
         "step_s": step_s, "images_per_s": spec["batch"] / step_s,
         "flops_per_step": flops, "flops_per_s": achieved,
         "compile_s": compile_s, "loss": float(metrics["train/loss"]),
         "peak_key": peaks.get("key")}
  if spec["dtype"] in peaks:
    out["peak_flops"] = peaks[spec["dtype"]]
    out["mfu"] = achieved / peaks[spec["dtype"]]
  if spec["dtype"] == "float32" and "tf32" in peaks:
    out["mfu_tf32"] = achieved / peaks["tf32"]
  return {**out, **_peak_memory(), **device}


def child_loop(spec: dict) -> dict:
  """``benchmarks/loop.py``'s loop-vs-bare-step child, as it is."""
  loop = _bench("loop")
  out = loop.child_loop(spec)
  out.update(_peak_memory())   # After loop's own peak RSS (peak_rss_mb).
  return {**out, **_device()}


CHILDREN = {"losses": child_losses, "train": child_train, "loop": child_loop}


# ---------------------------------------------------------------------------
# Parent.
# ---------------------------------------------------------------------------

def _spawn(name: str, spec: dict, *, env_extra: dict, timeout: float) -> dict:
  env = dict(os.environ)
  env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
  env.update(env_extra)
  cmd = [sys.executable, str(Path(__file__).resolve()), "--child", name,
         json.dumps(spec)]
  t0 = time.perf_counter()
  try:
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True,
                          timeout=timeout, cwd=str(REPO))
  except subprocess.TimeoutExpired:
    return {"spec": spec, "failed": f"timeout after {timeout:.0f} s"}
  wall = time.perf_counter() - t0
  for line in proc.stdout.splitlines():
    if line.startswith(RESULT_TAG):
      return {**json.loads(line[len(RESULT_TAG):]), "spec": spec,
              "wall_s": wall}
  return {"spec": spec, "wall_s": wall,
          "failed": (proc.stderr.strip().splitlines() or ["?"])[-1][:300]}


def _environment() -> dict:
  env = {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(
      timespec="seconds"), "python": platform.python_version(),
         "host": platform.node(), "cpu_count": os.cpu_count(),
         "loadavg_start": list(os.getloadavg())}
  try:
    env["git_head"] = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True,
        text=True, cwd=str(REPO)).stdout.strip()
  except OSError:
    pass
  for var in ("XLA_FLAGS", "XLA_PYTHON_CLIENT_PREALLOCATE",
              "XLA_PYTHON_CLIENT_MEM_FRACTION"):
    env[var] = os.environ.get(var)
  return env


def run(args) -> dict:
  sizes = TINY if args.tiny else FULL
  views = args.views or sizes["views"]
  blocks = args.blocks or sizes["blocks"]
  # cljax's commands turn on the persistent compilation cache; these
  # children call the library directly and compile cold, the same as a
  # first run (said here so that a user's cache setting cannot change it).
  env_extra = {"CLJAX_COMPILATION_CACHE": "off"}
  if args.tiny:
    # One CPU device, whatever the caller's environment simulates (the
    # tests' conftest asks for 8).
    env_extra.update(JAX_PLATFORMS="cpu", JAX_NUM_CPU_DEVICES="1")
  results = {"environment": _environment(), "tiny": args.tiny,
             "args": vars(args), "losses": [], "train": [], "loop": []}
  t_start = time.perf_counter()
  if "losses" in args.parts:
    for v in views:
      rec = _spawn("losses", {"views": v, "blocks": blocks,
                              "losses": sizes["losses"],
                              "repeats": sizes["repeats"]},
                   env_extra=env_extra, timeout=args.timeout)
      results["losses"].append(rec)
      _progress("losses", rec)
  if "train" in args.parts:
    for dtype in ("float32", "bfloat16"):
      rec = _spawn("train", {"model": sizes["model"],
                             "batch": args.batch or sizes["batch"],
                             "dtype": dtype, "steps": sizes["steps"]},
                   env_extra=env_extra, timeout=args.timeout)
      results["train"].append(rec)
      _progress("train", rec)
  if "loop" in args.parts:
    rec = _spawn("loop", {"model": sizes["model"],
                          "batch": args.batch or sizes["batch"],
                          "log_every": sizes["log_every"],
                          "rounds": sizes["loop_rounds"]},
                 env_extra=env_extra, timeout=args.timeout)
    results["loop"].append(rec)
    _progress("loop", rec)
  results["seconds"] = time.perf_counter() - t_start
  return results


def _progress(part: str, rec: dict) -> None:
  brief = {k: v for k, v in rec.items()
           if k not in ("times_s", "rounds", "spec")}
  print(f"[{part}] {json.dumps(brief)[:300]}", flush=True)


# ---------------------------------------------------------------------------
# The report.
# ---------------------------------------------------------------------------

def _device_of(results: dict) -> dict:
  for part in ("train", "losses", "loop"):
    for rec in results.get(part, []):
      if "device_kind" in rec:
        return rec
  return {}


def _mem(rec: dict) -> str:
  return f"{rec['peak_mb']:.0f}" + ("" if rec.get("memory") == "device"
                                    else " (host)")


def render(results: dict) -> str:
  env, dev = results["environment"], _device_of(results)
  kind = dev.get("device_kind", "?")
  lines = ["# Accelerator benchmark (`benchmarks/gpu.py`)", "",
           f"Generated by `{COMMAND}" + (" --tiny" if results["tiny"] else "")
           + "`.", "",
           f"Device: **{kind}** ({dev.get('platform', '?')}, "
           f"{dev.get('device_count', '?')} device(s)), jax "
           f"{dev.get('jax', '?')}; {env['date']}, git "
           f"{env.get('git_head', '?')}, host {env['host']} with "
           f"{env['cpu_count']} CPUs, load average at start "
           f"{env['loadavg_start'][0]:.2f}; {results['seconds']:.0f} s in "
           f"all. XLA_FLAGS: `{env.get('XLA_FLAGS') or '-'}`.", ""]
  if results["tiny"]:
    lines += ["**Toy sizes (`--tiny`)**: a check that every part runs, not "
              "a measurement of the accelerator path (the default job's "
              "small ConvNet stands in for ResNet-18).", ""]
  lines += _render_losses(results["losses"])
  lines += _render_train(results["train"])
  lines += _render_loop(results["loop"])
  return "\n".join(lines) + "\n"


def _render_losses(records: list[dict]) -> list[str]:
  if not records:
    return []
  blocks = sorted({int(k.split(":")[1]) for r in records
                   for k in r.get("median_s", {})
                   if ":" in k and k.split(":")[1] != "auto"})
  lines = ["## Loss engine vs the dense floor, by tile size", "",
           "Forward + backward w.r.t. z (float32 [V/2, 2, 128], 100 "
           "classes), `benchmarks/tiled.py`'s cases: floor = normalise + "
           "[V, V] matmul + log-sum-exp; auto = the loss with "
           "`block_size=\"auto\"` (today's default: dense below 16 384^2 "
           "logits off CPU, else tiles of 2 048); B = tiles of B x B. "
           "Median ms over the rounds; ratio to the floor = median of the "
           "per-round ratios. best = the fastest tile. Making the best tile "
           "the engine's GPU default (`DEFAULT_BLOCK_SIZE[\"other\"]` in "
           "`cljax/_src/engine/dispatch.py`) is a follow-up for when a GPU has "
           "been measured.", "",
           "| views | loss | floor ms | auto ms | "
           + " | ".join(f"B={b} ms" for b in blocks)
           + " | best tile | best ms | best / floor | auto / best | "
           "peak MB |",
           "|---|---|---|---|" + "---|" * len(blocks) + "---|---|---|---|---|"]
  notes = []
  for r in records:
    if "median_s" not in r:
      lines.append(f"| {r['spec']['views']} | failed: {r.get('failed')} |"
                   + " |" * (7 + len(blocks)))
      continue
    med, fail = r["median_s"], r.get("failed", {})
    cell = lambda k: (f"{1e3 * med[k]:.3f}" if k in med else  # noqa: E731
                      "failed" if k in fail else "-")
    for loss in r["spec"]["losses"]:
      tiles = {b: med[f"{loss}:{b}"] for b in blocks
               if f"{loss}:{b}" in med}
      best = min(tiles, key=tiles.get) if tiles else None
      ratio = r.get("ratio_to_floor", {})
      lines.append(
          f"| {r['views']} | {loss} | {cell('floor')} | "
          f"{cell(f'{loss}:auto')} | "
          + " | ".join(cell(f"{loss}:{b}") for b in blocks) + " | "
          + (f"{best} | {1e3 * tiles[best]:.3f} | "
             + (f"{ratio[f'{loss}:{best}']:.2f}" if f"{loss}:{best}" in ratio
                else "-") + " | "
             + (f"{med[f'{loss}:auto'] / tiles[best]:.2f}"
                if f"{loss}:auto" in med else "-") if best else
             "- | - | - | -")
          + f" | {_mem(r)} |")
    notes += [f"{r['views']} views, {label}: failed: {why}"
              for label, why in r.get("failed", {}).items()]
  return lines + [""] + [n + "  " for n in notes] + ([""] if notes else [])


def _render_train(records: list[dict]) -> list[str]:
  if not records:
    return []
  lines = ["## ResNet-18 SimCLR training: images/s and MFU", "",
           "The library's jitted train step (`cljax.training.train_step.train_step`: "
           "SimCLR views made on device, NT-Xent at tau 0.5, the monitored "
           "losses, optimiser update) of `benchmarks/loop.py`'s ResNet-18 "
           "(CIFAR stem) + MLP head config on 32x32 images, one global "
           "batch, dispatched back to back on a device-resident batch. "
           "images/s = batch / step time (each image gives 2 views). FLOPs "
           "per step from XLA's `compiled.cost_analysis()`; MFU = FLOPs per "
           "second / the device's peak for the compute dtype (the peak "
           "column names it; float32's is the plain, non-tensor-core rate, "
           "and the last column is the same against the TF32 tensor-core "
           "peak, which XLA may use for float32 matmuls and convolutions).",
           "", "| model | dtype | batch | step ms | images/s | GFLOP/step | "
           "TFLOP/s | peak used | MFU | MFU vs TF32 peak | compile s | "
           "peak MB |", "|---|---|---|---|---|---|---|---|---|---|---|---|"]
  for r in records:
    if "step_s" not in r:
      lines.append(f"| {r['spec']['model']} | {r['spec']['dtype']} | "
                   f"failed: {r.get('failed')} |||||||||")
      continue
    peak = (f"{r['peak_key']} {r['dtype']} {r['peak_flops'] / 1e12:.1f} "
            "TFLOP/s" if "peak_flops" in r else
            f"n/a: no peak for '{r['device_kind']}'")
    lines.append(
        f"| {r['model']} | {r['dtype']} | {r['batch']} | "
        f"{1e3 * r['step_s']:.3f} | {r['images_per_s']:.1f} | "
        f"{r['flops_per_step'] / 1e9:.5g} | {r['flops_per_s'] / 1e12:.4g} | "
        f"{peak} | "
        + (f"{100 * r['mfu']:.1f} %" if "mfu" in r else "n/a") + " | "
        + (f"{100 * r['mfu_tf32']:.1f} %" if "mfu_tf32" in r else "-")
        + f" | {r['compile_s']:.1f} | {_mem(r)} |")
  return lines + [""]


def _render_loop(records: list[dict]) -> list[str]:
  if not records:
    return []
  lines = ["## Train loop vs bare jitted step", "",
           "`cljax.training.train.train_and_evaluate` (evaluation off) against the "
           "bare jitted `train_step` on the loop's own batches "
           "(`benchmarks/loop.py`'s `child_loop`): the loop's second log "
           "window per step over the mean of the bare step timed right "
           "before and right after it.", "",
           "| model | batch | log_every | loop ms/step | bare ms/step | "
           "loop / bare | rounds | peak MB |",
           "|---|---|---|---|---|---|---|---|"]
  for r in records:
    if "ratio" not in r:
      lines.append(f"| {r['spec']['model']} | failed: {r.get('failed')} "
                   "||||||")
      continue
    lines.append(
        f"| {r['model']} | {r['batch']} | {r['log_every']} | "
        f"{1e3 * r['loop_step_s']['median']:.2f} | "
        f"{1e3 * r['bare_step_s']['median']:.2f} | "
        f"{r['ratio']['median']:.3f} | {len(r['rounds'])} | {_mem(r)} |")
  return lines + [""]


def main() -> None:
  if len(sys.argv) > 1 and sys.argv[1] == "--child":
    name, spec = sys.argv[2], json.loads(sys.argv[3])
    print(RESULT_TAG + json.dumps(CHILDREN[name](spec)), flush=True)
    return
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--tiny", action="store_true",
                      help="every part at toy sizes on CPU")
  parser.add_argument("--parts", nargs="+", default=list(CHILDREN),
                      choices=list(CHILDREN))
  parser.add_argument("--views", type=int, nargs="+", default=None)
  parser.add_argument("--blocks", type=int, nargs="+", default=None)
  parser.add_argument("--batch", type=int, default=None,
                      help="global batch of the train and loop parts")
  parser.add_argument("--timeout", type=float, default=300,
                      help="seconds per case")
  parser.add_argument("--out", default=str(HERE / "GPU.md"))
  parser.add_argument("--json", default=None, help="also every record here")
  args = parser.parse_args()
  if not args.tiny:
    # Asked in a subprocess: jax in this process would take the device's
    # memory (XLA preallocates) from the children.
    backend = subprocess.run(
        [sys.executable, "-c", "import jax; print(jax.default_backend())"],
        capture_output=True, text=True).stdout.strip()
    if backend in ("cpu", ""):
      sys.exit("gpu.py: no accelerator (jax.default_backend() is 'cpu'); "
               "nothing measured, nothing written. --tiny runs every part at "
               "toy sizes on CPU.")
  results = run(args)
  Path(args.out).write_text(render(results))
  if args.json:
    Path(args.json).write_text(json.dumps(results, indent=1))
  print(f"wrote {args.out}")


if __name__ == "__main__":
  main()
