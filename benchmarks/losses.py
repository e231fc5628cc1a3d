#!/usr/bin/env python
"""Forward+backward time and peak memory of the cljax losses, the floor, and
pytorch-metric-learning's peers, on identical inputs.

    python benchmarks/losses.py                 # N = 256, 1024, 4096
    python benchmarks/losses.py --quick         # N = 256 only, 5 repeats
    python benchmarks/losses.py --sizes 1024 4096 --repeats 10

Every (implementation, loss, N) case runs in a fresh subprocess (this file
with ``--child``) under an address-space limit, so a peer that tries to
allocate tens of GB fails with an error instead of taking the machine down.
Inside the child:

1. imports, inputs (the same seeded NumPy arrays for every case), backend
   initialised; the baseline is VmRSS at this point;
2. the case is compiled (JAX: ``jit(value_and_grad).lower().compile()``) and
   run ``--warmup`` times; peak MB = VmHWM - baseline (it includes the
   compilation and the warm-up runs, and nothing else);
3. only then are the *paired* cases built (the floor, and for some cases the
   cljax loss it is compared with) and warmed up; each of ``--repeats``
   rounds runs the case and then its pairs, each as two back-to-back calls
   (after the previous call's memory has been released) of which the second
   is timed, every call ending in ``block_until_ready`` / ``loss.backward()``.

Ratios (to the floor, to ntxent, to the peer) are medians over rounds of
case_i / pair_i *from the same child*, so machine noise hits both sides
alike. The parent writes ``benchmarks/RESULTS.md`` (and
the raw records to ``benchmarks/results.json``) after each size.
"""

from __future__ import annotations

import argparse
import datetime
import gc
import hashlib
import json
import os
import platform
import resource
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent

K = 2                 # views per sample
D = 128               # embedding dimension
NUM_CLASSES = 100
SEED = 0
BETA = 5.0
TORCH_THREADS = 2

# ---------------------------------------------------------------------------
# Cases. key -> (implementation, loss label). The order is the table order.
# ---------------------------------------------------------------------------
CASES = {
    "floor": ("jax (plain)", "floor: normalise + matmul + row LSE"),
    "ntxent": ("cljax", "ntxent (tau=0.5)"),
    "dcl": ("cljax", "dcl"),
    "nscl": ("cljax", "nscl (paper form)"),
    "nscl_code": ("cljax", "nscl (positive_in_denominator=True)"),
    "supcon_out": ("cljax", "supcon out (tau=0.1)"),
    "supcon_in": ("cljax", "supcon in (tau=0.1)"),
    "hard_b0": ("cljax", "hard_contrastive beta=0 (expectation)"),
    "hard_b5": ("cljax", f"hard_contrastive beta={BETA:g} (expectation)"),
    "hard_sampled": ("cljax",
                     f"hard_contrastive beta={BETA:g} (sampled, M=256)"),
    "all_losses": ("cljax", "all_losses (tau=0.5, beta=None)"),
    "all_losses_beta": ("cljax", f"all_losses (tau=0.5, beta={BETA:g})"),
    "pml_supcon": ("pytorch-metric-learning", "SupConLoss (tau=0.1)"),
    "pml_ntxent": ("pytorch-metric-learning", "NTXentLoss (tau=0.5)"),
}
PEERS = ("pml_supcon", "pml_ntxent")
ALL_LOSSES = ("all_losses", "all_losses_beta")

# Cases timed interleaved with each case, in the same child.
PAIRS = {key: ["floor"] for key in CASES if key != "floor"}
PAIRS["floor"] = []
PAIRS["all_losses"] = ["floor", "ntxent"]
PAIRS["all_losses_beta"] = ["floor", "ntxent"]
PAIRS["pml_supcon"] = ["floor", "supcon_out"]
PAIRS["pml_ntxent"] = ["floor", "ntxent"]

TARGET_N = 4096
TARGET_FLOOR = 1.1
TARGET_ALL = 2.0
TARGET_PEER = 4.0


# ---------------------------------------------------------------------------
# Child side.
# ---------------------------------------------------------------------------
def _proc_status_kb(field: str) -> int:
  with open("/proc/self/status") as f:
    for line in f:
      if line.startswith(field + ":"):
        return int(line.split()[1])
  raise KeyError(field)


def _loadavg() -> float:
  with open("/proc/loadavg") as f:
    return float(f.read().split()[0])


def _settle(timeout_s: float = 3.0, quiet_s: float = 0.05) -> None:
  """Waits until this process's RSS has stopped falling (pending frees done)."""
  t_end = time.perf_counter() + timeout_s
  last, last_change = _proc_status_kb("VmRSS"), time.perf_counter()
  while time.perf_counter() < t_end:
    time.sleep(0.005)
    now = _proc_status_kb("VmRSS")
    if now < last - 1024:
      last_change = time.perf_counter()
    last = now
    if time.perf_counter() - last_change >= quiet_s:
      return


def make_inputs(n: int):
  """The same float32 z[N, K, D] and balanced, shuffled int32 labels[N]."""
  import numpy as np
  rng = np.random.default_rng(SEED + n)
  z = rng.standard_normal((n, K, D), dtype=np.float32)
  labels = rng.permutation(np.arange(n) % NUM_CLASSES).astype(np.int32)
  return z, labels


def _jax_loss_fn(key: str):
  """A scalar loss f(z, labels, prng_key) for value_and_grad w.r.t. z."""
  import jax
  import jax.numpy as jnp
  from cljax import losses as L

  if key == "floor":
    def floor(z, labels, prng):
      del labels, prng
      x = z.reshape(-1, z.shape[-1])
      x = x / jnp.linalg.norm(x, axis=-1, keepdims=True)
      s = x @ x.T
      return jnp.mean(jax.nn.logsumexp(s, axis=-1))
    return floor, False

  simple = {
      "ntxent": lambda z, y, k: L.ntxent(z, temperature=0.5),
      "dcl": lambda z, y, k: L.dcl(z),
      "nscl": lambda z, y, k: L.nscl(z, y),
      "nscl_code": lambda z, y, k: L.nscl(z, y, positive_in_denominator=True),
      "supcon_out": lambda z, y, k: L.supcon(z, y, variant="out"),
      "supcon_in": lambda z, y, k: L.supcon(z, y, variant="in"),
      "hard_b0": lambda z, y, k: L.hard_contrastive(z, y, beta=0.0),
      "hard_b5": lambda z, y, k: L.hard_contrastive(z, y, beta=BETA),
      "hard_sampled": lambda z, y, k: L.hard_contrastive(
          z, y, beta=BETA, estimator="sampled", num_negatives=256, key=k),
  }
  if key in simple:
    return simple[key], False

  beta = BETA if key == "all_losses_beta" else None

  def all_fn(z, y, k):
    del k
    out = L.all_losses(z, y, temperature=0.5, beta=beta)
    total = sum(v for name, v in out.items() if name != "nscl_valid")
    return total, out
  return all_fn, True


class JaxRunner:
  def __init__(self, key, z_np, y_np):
    import jax
    fn, has_aux = _jax_loss_fn(key)
    self.args = (jax.device_put(z_np), jax.device_put(y_np),
                 jax.random.key(SEED))
    jax.block_until_ready(self.args)
    self.fn = jax.jit(jax.value_and_grad(fn, argnums=0, has_aux=has_aux))
    self.compiled = None
    self.info = {}

  def compile(self):
    t0 = time.perf_counter()
    self.compiled = self.fn.lower(*self.args).compile()
    self.info["compile_s"] = time.perf_counter() - t0
    try:
      mem = self.compiled.memory_analysis()
      self.info["xla_temp_mb"] = mem.temp_size_in_bytes / 2**20
      import hlo_passes  # benchmarks/hlo_passes.py, next to this file
      v = self.args[0].shape[0] * self.args[0].shape[1]
      st = hlo_passes.count_passes(self.compiled.as_text(), v)
      self.info["vv_reads"], self.info["vv_writes"] = st["reads"], st["writes"]
    except Exception:  # noqa: BLE001 -- purely informative
      pass

  def __call__(self):
    import jax
    jax.block_until_ready(self.compiled(*self.args))


class TorchRunner:
  def __init__(self, key, z_np, y_np):
    import numpy as np
    import torch
    from pytorch_metric_learning import losses as pml
    n = z_np.shape[0]
    self.emb = torch.from_numpy(z_np.reshape(n * K, D).copy())
    self.emb.requires_grad_(True)
    if key == "pml_supcon":
      labels = np.repeat(y_np, K)                 # class labels per view
      self.loss = pml.SupConLoss(temperature=0.1)
    else:
      labels = np.repeat(np.arange(n), K)         # sample ids per view
      self.loss = pml.NTXentLoss(temperature=0.5)
    self.labels = torch.from_numpy(labels.astype(np.int64))
    self.info = {}

  def compile(self):
    pass

  def __call__(self):
    self.emb.grad = None
    loss = self.loss(self.emb, self.labels)
    loss.backward()
    assert self.emb.grad is not None


def _make_runner(key, z, y):
  return (TorchRunner if key in PEERS else JaxRunner)(key, z, y)


def _short(exc: BaseException) -> str:
  msg = " ".join(str(exc).split())
  return f"{type(exc).__name__}: {msg[:300]}"


def child_main(args) -> None:
  out = {"case": args.child, "n": args.n, "repeats": args.repeats}

  def emit():
    print("RESULT " + json.dumps(out), flush=True)

  limit = int(args.mem_limit_gb * 2**30)
  resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
  sys.path.insert(0, args.cljax_root or str(REPO))
  import numpy as np  # noqa: F401
  import jax
  jax.devices()                                   # initialise the backend
  if args.child in PEERS:
    import torch
    torch.set_num_threads(TORCH_THREADS)
    import pytorch_metric_learning  # noqa: F401
  import cljax.losses
  out["cljax_file"] = cljax.losses.__file__

  z, y = make_inputs(args.n)
  try:
    runner = _make_runner(args.child, z, y)
  except Exception as e:  # noqa: BLE001
    out["error"] = _short(e)
    emit()
    return
  gc.collect()
  baseline_kb = _proc_status_kb("VmRSS")
  out["baseline_mb"] = baseline_kb / 1024

  # Phase 1: the case alone -- compile, warm up, peak memory.
  try:
    runner.compile()
    t0 = time.perf_counter()
    runner()
    first = time.perf_counter() - t0
    out["first_call_s"] = first
    if first > args.max_iter_s:
      out["error"] = (f"too slow: one forward+backward took {first:.1f} s "
                      f"(> --max-iter-s {args.max_iter_s:g} s)")
    else:
      for _ in range(args.warmup - 1):
        runner()
  except Exception as e:  # noqa: BLE001 -- MemoryError, RuntimeError, XLA
    out["error"] = _short(e)
  out["peak_mb"] = (_proc_status_kb("VmHWM") - baseline_kb) / 1024
  out.update(runner.info)
  if "error" in out:
    emit()
    return

  # Phase 2: paired cases, built only now (not in the peak above).
  pairs = {}
  for key in PAIRS[args.child]:
    r = _make_runner(key, z, y)
    r.compile()
    for _ in range(args.warmup):
      r()
    pairs[key] = r
  gc.collect()
  gc.disable()
  out["loadavg_start"] = _loadavg()
  times = {key: [] for key in [args.child, *pairs]}
  for _ in range(args.repeats):
    for key, r in [(args.child, runner), *pairs.items()]:
      # XLA:CPU frees a call's temporary buffers on a worker thread *after*
      # block_until_ready returns (at V = 8192, GBs of munmap over ~0.1-0.5
      # s). Let the previous call's cleanup finish, then time the second of
      # two back-to-back calls: the steady state of a training loop, where a
      # step pays its own previous step's cleanup and nobody else's.
      _settle()
      r()
      t0 = time.perf_counter()
      r()
      times[key].append((time.perf_counter() - t0) * 1e3)
  out["loadavg_end"] = _loadavg()
  gc.enable()
  out["ms"] = times[args.child]
  out["median_ms"] = statistics.median(times[args.child])
  out["pairs_median_ms"] = {k: statistics.median(v)
                            for k, v in times.items() if k != args.child}
  out["pairs_ms"] = {k: v for k, v in times.items() if k != args.child}
  emit()


# ---------------------------------------------------------------------------
# Parent side.
# ---------------------------------------------------------------------------
def run_case(key, n, args) -> dict:
  cmd = [sys.executable, str(Path(__file__).resolve()), "--child", key,
         "--n", str(n), "--repeats", str(args.repeats),
         "--cljax-root", args.cljax_root,
         "--warmup", str(args.warmup), "--mem-limit-gb",
         str(args.mem_limit_gb), "--max-iter-s", str(args.max_iter_s)]
  t0 = time.perf_counter()
  try:
    proc = subprocess.run(cmd, capture_output=True, text=True,
                          timeout=args.timeout, cwd=REPO)
  except subprocess.TimeoutExpired:
    return {"case": key, "n": n,
            "error": f"timeout: case exceeded --timeout {args.timeout} s"}
  wall = time.perf_counter() - t0
  for line in reversed(proc.stdout.splitlines()):
    if line.startswith("RESULT "):
      rec = json.loads(line[len("RESULT "):])
      rec["wall_s"] = wall
      return rec
  if proc.returncode < 0:
    reason = f"child killed by {signal.Signals(-proc.returncode).name}"
  else:
    reason = f"child exited with code {proc.returncode}"
  tail = " | ".join(proc.stderr.strip().splitlines()[-3:])[-300:]
  return {"case": key, "n": n, "error": f"{reason}: {tail}", "wall_s": wall}


def _cpu_model() -> str:
  try:
    with open("/proc/cpuinfo") as f:
      for line in f:
        if line.startswith("model name"):
          return line.split(":", 1)[1].strip()
  except OSError:
    pass
  return platform.processor() or "unknown"


def _mem_total_gib() -> float:
  with open("/proc/meminfo") as f:
    for line in f:
      if line.startswith("MemTotal:"):
        return int(line.split()[1]) / 2**20
  return float("nan")


def _versions() -> dict:
  code = ("import json, jax, jaxlib, numpy, torch, pytorch_metric_learning as"
          " p; print(json.dumps({'jax': jax.__version__, 'jaxlib': "
          "jaxlib.__version__, 'numpy': numpy.__version__, 'torch': "
          "torch.__version__, 'pytorch-metric-learning': p.__version__, "
          "'jax_devices': str(jax.devices())}))")
  try:
    return json.loads(subprocess.run([sys.executable, "-c", code],
                                      capture_output=True, text=True,
                                      check=True).stdout)
  except Exception as e:  # noqa: BLE001
    return {"error": _short(e)}


def machine_info(args) -> dict:
  env_keys = ("XLA_FLAGS", "JAX_PLATFORMS", "JAX_ENABLE_X64",
              "OPENBLAS_CORETYPE", "OMP_NUM_THREADS", "MKL_NUM_THREADS",
              "TF_CPP_MIN_LOG_LEVEL")
  return {
      "date": datetime.datetime.now().astimezone().isoformat(
          timespec="seconds"),
      "nproc": len(os.sched_getaffinity(0)),
      "cpu_count": os.cpu_count(),
      "cpu_model": _cpu_model(),
      "mem_total_gib": _mem_total_gib(),
      "python": platform.python_version(),
      "kernel": platform.release(),
      "versions": _versions(),
      "env": {k: os.environ.get(k) for k in env_keys},
      "command": shlex.join(["python", *sys.argv]),
      "repeats": args.repeats, "warmup": args.warmup,
      "mem_limit_gb": args.mem_limit_gb, "timeout_s": args.timeout,
      "max_iter_s": args.max_iter_s,
  }


def _fmt(x, spec=".1f", dash="-"):
  return dash if x is None else format(x, spec)


def _paired(rec, pair):
  """Per-round ratios row_i / pair_i (both timed in the same round)."""
  other = rec.get("pairs_ms", {}).get(pair)
  if not other or "ms" not in rec:
    return None
  return sorted(a / b for a, b in zip(rec["ms"], other))


def _ratio(rec, pair):
  """Median over rounds of row_i / pair_i."""
  r = _paired(rec, pair)
  return None if r is None else statistics.median(r)


def _paired_spread(rec, pair="floor"):
  """p25-p75 of the per-round ratios row_i / pair_i."""
  r = _paired(rec, pair)
  if r is None:
    return "-"
  q = statistics.quantiles(r, n=4, method="inclusive") if len(r) > 1 else (
      r * 3)
  return f"{q[0]:.2f}-{q[2]:.2f}"


def _floor_ratio(rec):
  if rec["case"] == "floor" and "median_ms" in rec:
    return 1.0
  return _ratio(rec, "floor")


def size_table(n, recs) -> list[str]:
  lines = [f"### N = {n} samples x K = {K} views = {n * K} views, D = {D}",
           "",
           "Rows ran one after another while the machine's load changed: "
           "compare rows by their ratios (each measured against the floor "
           "in the same rounds), not by 'median ms'.",
           "",
           "| implementation | loss | median ms | ratio to floor | paired ratio "
           "p25-p75 | floor ms (same child) | peak MB | XLA temp MB | [V,V] "
           "passes r+w | loadavg | note |",
           "|---|---|---:|---:|---:|---:|---:|---:|---:|---|---|"]
  for key, (impl, label) in CASES.items():
    rec = recs.get(key)
    if rec is None:
      continue
    note = ""
    if "error" in rec:
      note = "failed: " + rec["error"].replace("|", "/")
    elif key in ALL_LOSSES:
      note = f"{_ratio(rec, 'ntxent'):.2f}x ntxent (same child)"
    elif key in PEERS:
      other = PAIRS[key][1]
      note = (f"{_ratio(rec, other):.2f}x cljax {other} "
              f"({rec['pairs_median_ms'][other]:.1f} ms, same child)")
    passes = "-"
    if "vv_reads" in rec:
      passes = f"{rec['vv_reads']}+{rec['vv_writes']}"
    load = "-"
    if "loadavg_start" in rec:
      load = f"{rec['loadavg_start']:.1f}/{rec['loadavg_end']:.1f}"
    floor_ms = (rec.get("median_ms") if key == "floor"
                else rec.get("pairs_median_ms", {}).get("floor"))
    lines.append(
        f"| {impl} | {label} | {_fmt(rec.get('median_ms'))} | "
        f"{_fmt(_floor_ratio(rec), '.2f')} | {_paired_spread(rec)} | "
        f"{_fmt(floor_ms)} | "
        f"{_fmt(rec.get('peak_mb'), '.0f')} | "
        f"{_fmt(rec.get('xla_temp_mb'), '.0f')} | {passes} | {load} | "
        f"{note} |")
  lines.append("")
  return lines


def target_table(results) -> list[str]:
  if TARGET_N in results:
    n, caveat = TARGET_N, ""
  else:
    n = max(results)
    caveat = (f" **Indicative only: the targets are stated at N = "
              f"{TARGET_N}, which this run did not measure.**")
  recs = results[n]
  lines = [f"## Target check (N = {n}, {n * K} views){caveat}", "",
           "| target | measured | PASS/FAIL |", "|---|---:|---|"]

  def verdict(value, ok):
    return "n/a" if value is None else ("PASS" if ok else "FAIL")

  for key, (_, label) in CASES.items():
    if CASES[key][0] != "cljax" or key in ALL_LOSSES or key not in recs:
      continue
    rec = recs[key]
    r = _floor_ratio(rec)
    meas = _fmt(r, ".2f") + "x floor" if r is not None else (
        "failed: " + rec.get("error", "?"))
    lines.append(f"| {label} <= {TARGET_FLOOR}x floor | {meas} | "
                 f"{verdict(r, r is not None and r <= TARGET_FLOOR)} |")
  for key in ALL_LOSSES:
    if key not in recs:
      continue
    r = _ratio(recs[key], "ntxent")
    meas = _fmt(r, ".2f") + "x ntxent" if r is not None else (
        "failed: " + recs[key].get("error", "?"))
    lines.append(f"| {CASES[key][1]} <= {TARGET_ALL}x ntxent | {meas} | "
                 f"{verdict(r, r is not None and r <= TARGET_ALL)} |")
  if "pml_supcon" in recs:
    rec = recs["pml_supcon"]
    r = _ratio(rec, "supcon_out")
    if r is not None:
      meas, v = f"{r:.2f}x faster", verdict(r, r >= TARGET_PEER)
    else:
      meas = "peer failed: " + rec.get("error", "?")
      v = "n/a (peer did not finish)"
    lines.append(f"| cljax supcon out >= {TARGET_PEER}x faster than pml "
                 f"SupConLoss | {meas} | {v} |")
  lines.append("")
  return lines


def write_results(path, info, results, sizes_done, sizes_all):
  v = info["versions"]
  env = ", ".join(f"{k}={val}" for k, val in info["env"].items()
                  if val is not None) or "none set"
  lines = [
      "# cljax loss benchmark: results", "",
      f"- Date: {info['date']}",
      f"- Command: `{info['command']}`",
      f"- Code: git HEAD {info['code']['git_head']}"
      + (f" + uncommitted changes in cljax/ ({info['code']['cljax_changes']})"
         if info['code']['cljax_dirty'] else " (cljax/ clean)")
      + "".join(f"; {k} {v}" for k, v in info["code"].get("vs_head", {}).items())
      + f"; sha256 of cljax/*.py = {info['code']['cljax_sha256']}. "
      "The package was copied at the start of the run and every row "
      "imported that copy.",
      f"- Machine: {info['nproc']} CPUs usable (os.cpu_count() = "
      f"{info['cpu_count']}), {info['cpu_model']}, "
      f"{info['mem_total_gib']:.1f} GiB RAM, Linux {info['kernel']}, "
      f"Python {info['python']}",
      f"- Versions: jax {v.get('jax')} (jaxlib {v.get('jaxlib')}, "
      f"{v.get('jax_devices')}), numpy {v.get('numpy')}, torch "
      f"{v.get('torch')} ({TORCH_THREADS} threads), pytorch-metric-learning "
      f"{v.get('pytorch-metric-learning')}",
      f"- Environment: {env}; no XLA flags set by the harness; JAX uses "
      f"its default CPU thread pool (all usable cores).",
      f"- Protocol: float32 z[N, {K}, {D}] ~ N(0, 1), labels N mod "
      f"{NUM_CLASSES} shuffled (seed {SEED}+N), identical for every row. "
      f"Forward+backward w.r.t. z; {info['warmup']} warm-up call(s), then "
      f"median of {info['repeats']} timed calls, compile excluded, every row "
      f"in its own subprocess (address-space limit "
      f"{info['mem_limit_gb']:g} GiB, timeout {info['timeout_s']} s, "
      f"failed if one call takes > {info['max_iter_s']:g} s).",
      "- Timing: each round runs the row and then its pairs (the floor, "
      "and ntxent / the cljax loss for all_losses / the peers), each after "
      "waiting for the previous call's memory to be released, as two "
      "back-to-back calls of which the second is timed (steady state). "
      "ratio to floor = median over rounds of row_i / floor_i, both from "
      "the same round of the same subprocess; p25-p75 = quartiles of those "
      "per-round ratios; 'median ms' and 'floor ms' are medians over "
      "rounds. "
      "Peak MB: VmHWM - VmRSS after imports and input creation, in that "
      "subprocess, covering compilation + warm-up of the row only. "
      "XLA temp MB: `compiled.memory_analysis().temp_size_in_bytes`. "
      "[V,V] passes r+w: reads + writes of [V, V]-element arrays by the "
      "kernels of the optimised HLO (benchmarks/hlo_passes.py; each is "
      "V*V*4 bytes of memory traffic for f32, 256 MiB at V = 8192). "
      "loadavg: 1-minute load average of the machine at the start/end of "
      "the timed rounds (this benchmark alone keeps it near 2; more means "
      "other processes shared the 2 cores). "
      "See benchmarks/README.md.",
      f"- Sizes measured: {', '.join(map(str, sizes_done))}"
      + ("" if sizes_done == sizes_all
         else f" (run in progress or stopped; requested "
              f"{', '.join(map(str, sizes_all))})"),
      "",
  ]
  for n in sizes_done:
    lines += size_table(n, results[n])
  if sizes_done:
    lines += target_table(results)
  Path(path).write_text("\n".join(lines))


def code_hash(root: Path) -> str:
  """sha256 (16 hex digits) over the paths and bytes of root/cljax/**/*.py."""
  digest = hashlib.sha256()
  for f in sorted((Path(root) / "cljax").rglob("*.py")):
    if "__pycache__" in f.parts:
      continue
    digest.update(str(f.relative_to(root)).encode())
    digest.update(f.read_bytes())
  return digest.hexdigest()[:16]


def snapshot_cljax(dest: Path) -> dict:
  """Copies cljax/ so that every row measures the same code, and hashes it."""
  shutil.copytree(REPO / "cljax", dest / "cljax",
                  ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
  def git(*a):
    try:
      return subprocess.run(["git", *a], cwd=REPO, capture_output=True,
                            text=True, check=True).stdout.strip()
    except Exception:  # noqa: BLE001
      return "?"
  dirty = git("status", "--porcelain", "--", "cljax")
  return {"git_head": git("rev-parse", "--short", "HEAD"),
          "cljax_dirty": bool(dirty and dirty != "?"),
          "cljax_changes": dirty.replace("\n", "; "),
          "cljax_sha256": code_hash(dest),
          "vs_head": snapshot_vs_head(dest, git("rev-parse", "--short",
                                                  "HEAD"))}


def render_main(args) -> None:
  """Rewrites RESULTS.md from results.json (no measurement)."""
  data = json.loads(Path(args.json).read_text())
  info = data["info"]
  snap = info.get("code", {}).get("snapshot")
  if snap and "vs_head" not in info["code"] and Path(snap).exists():
    info["code"]["vs_head"] = snapshot_vs_head(Path(snap),
                                               info["code"]["git_head"])
  results = {int(k): v for k, v in data["results"].items()}
  sizes = sorted(results)
  write_results(args.out, info, results, sizes, sizes)
  print(f"rendered {args.out} from {args.json}")


def snapshot_vs_head(dest: Path, rev: str = "HEAD") -> dict:
  """Whether the snapshot's loss files equal the committed ones."""
  def git(*a):
    try:
      return subprocess.run(["git", *a], cwd=REPO, capture_output=True,
                            text=True, check=True).stdout.strip()
    except Exception:  # noqa: BLE001
      return "?"
  out = {}
  # The loss code: the losses/ package and the private engine it calls.
  for name in ("losses", "_engine"):
    files = sorted(f.relative_to(dest / "cljax")
                   for f in (dest / "cljax" / name).rglob("*.py"))
    committed = git("ls-tree", "-r", "--name-only", rev,
                    f"cljax/{name}/").split()
    same = [f"cljax/{f}" for f in files] == sorted(
        c for c in committed if c.endswith(".py"))
    for f in files if same else ():
      head = git("rev-parse", f"{rev}:cljax/{f}")
      snap = git("hash-object", str(dest / "cljax" / f))
      same = same and head == snap != "?"
    out[name + "/"] = (f"same as {rev}" if same else f"differs from {rev}")
  return out


def parent_main(args) -> None:
  sizes = [256] if args.quick and not args.sizes else (args.sizes or
                                                      [256, 1024, 4096])
  info = machine_info(args)
  # Kept after the run (its path is in results.json) so that the measured
  # code can be inspected or re-profiled even if cljax/ has moved on.
  snap = tempfile.mkdtemp(prefix="cljax_bench_")
  info["code"] = snapshot_cljax(Path(snap))
  info["code"]["snapshot"] = snap
  args.cljax_root = snap
  print(f"# cljax snapshot {snap} (sha256 {info['code']['cljax_sha256']})",
        flush=True)
  print(f"# {info['command']}\n# {info['cpu_model']}, nproc "
        f"{info['nproc']}, versions {info['versions']}", flush=True)
  results: dict[int, dict] = {}
  peer_failed: dict[str, str] = {}
  done = []
  keys = [k for k in CASES if not args.only or k in args.only]
  for n in sizes:
    results[n] = {}
    for key in keys:
      if key in peer_failed:
        rec = {"case": key, "n": n,
               "error": f"skipped: {peer_failed[key]}"}
      else:
        rec = run_case(key, n, args)
        if key in PEERS and "error" in rec:
          peer_failed[key] = f"failed at N={n}"
      results[n][key] = rec
      msg = (f"error: {rec['error']}" if "error" in rec else
             f"{rec['median_ms']:.1f} ms, x floor "
             f"{_fmt(_floor_ratio(rec), '.2f')}, peak "
             f"{rec['peak_mb']:.0f} MB")
      print(f"N={n:5d} {key:16s} {msg} "
            f"[{rec.get('wall_s', 0):.0f} s]", flush=True)
    done.append(n)
    write_results(args.out, info, results, done, sizes)
    Path(args.json).write_text(json.dumps(
        {"info": info, "results": {str(k): v for k, v in results.items()}},
        indent=1))
  print(f"wrote {args.out} and {args.json}", flush=True)


def main() -> None:
  p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  p.add_argument("--sizes", type=int, nargs="+",
                 help="N values (default 256 1024 4096; --quick: 256)")
  p.add_argument("--repeats", type=int, default=None,
                 help="timed calls per row (default 10; --quick: 5)")
  p.add_argument("--warmup", type=int, default=2)
  p.add_argument("--quick", action="store_true",
                 help="N=256 only and 5 repeats (unless given)")
  p.add_argument("--only", nargs="+", choices=list(CASES),
                 help="run only these cases")
  p.add_argument("--timeout", type=int, default=900,
                 help="wall-clock limit per case subprocess, s")
  p.add_argument("--max-iter-s", type=float, default=60.0,
                 help="a case fails as too slow if one call takes longer")
  p.add_argument("--mem-limit-gb", type=float, default=16.0,
                 help="RLIMIT_AS of each case subprocess, GiB")
  p.add_argument("--render", action="store_true",
                 help="only rewrite --out from an existing --json")
  p.add_argument("--out", default=str(HERE / "RESULTS.md"))
  p.add_argument("--json", default=str(HERE / "results.json"))
  p.add_argument("--child", choices=list(CASES), help=argparse.SUPPRESS)
  p.add_argument("--n", type=int, help=argparse.SUPPRESS)
  p.add_argument("--cljax-root", help=argparse.SUPPRESS)
  args = p.parse_args()
  if args.repeats is None:
    args.repeats = 5 if args.quick else 10
  if args.child:
    child_main(args)
  elif args.render:
    render_main(args)
  else:
    parent_main(args)


if __name__ == "__main__":
  main()
