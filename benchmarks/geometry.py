#!/usr/bin/env python
"""Sharded geometry vs the gather: NC1 + CDNV + ETF distance + effective rank.

    python benchmarks/geometry.py                       # the GEOMETRY.md table
    python benchmarks/geometry.py --sizes 16384 --repeats 2   # a quick look

On 8 simulated CPU devices (one process, ``JAX_NUM_CPU_DEVICES=8``) the
features ``[N, D]`` and labels ``[N]`` are sharded along N on the 1-D
``("data",)`` Explicit mesh, and the four metrics run under one ``jax.jit``:

* ``sharded``: today's ``cljax.geometry`` (per-shard statistics, psum'd);
* ``gather``: the previous behaviour, the features and labels all-gathered
  (``jax.reshard`` to replicated, what ``_replicate_if_sharded`` did) and the
  same metrics computed on every device, with the previous
  ``effective_rank`` (SVD of the centred ``[N, D]`` matrix);
* ``gather_qr``: the same gather, but today's ``effective_rank`` (QR, then
  the SVD of the ``[D, D]`` factor), so that the time ratio against the
  sharded program measures the gather and not the old SVD.

For every N both programs are compiled and their per-device
``memory_analysis()`` (arguments + temporaries + outputs) is recorded; the
cases whose gathered copy fits the memory budget are also run, each in its
own subprocess, with the process peak RSS (VmHWM) and the median time of
``--repeats`` calls after a warm-up. Records go to ``benchmarks/geometry.json``
and the table to ``benchmarks/GEOMETRY.md``.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
D, C, DEVICES = 512, 1000, 8
LOAD_AT_START = os.getloadavg()


def _rss_mb(peak):
  """Current (VmRSS) or peak (ru_maxrss, i.e. VmHWM) resident memory, MB."""
  if peak:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
  with open("/proc/self/statm") as f:
    return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _child(n, mode, run, repeats):
  os.environ["JAX_NUM_CPU_DEVICES"] = str(DEVICES)
  sys.path.insert(0, str(REPO))
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  from cljax import geometry  # pylint: disable=g-import-not-at-top

  mesh = jax.make_mesh((DEVICES,), ("data",))
  shard = jax.NamedSharding(mesh, jax.P("data"))
  full = jax.NamedSharding(mesh, jax.P())

  @jax.jit
  def make(key):
    k1, k2, k3 = jax.random.split(key, 3)
    labels = jax.random.randint(k1, (n,), 0, C, out_sharding=shard)
    centers = 2.0 * jax.random.normal(k2, (C, D))
    noise = jax.random.normal(k3, (n, D), out_sharding=shard)
    return centers.at[labels].get(out_sharding=shard) + noise, labels

  def old_effective_rank(x):
    # The previous effective_rank: SVD of the gathered, centred [N, D]
    # matrix (XLA's CPU SVD then needs an [N, N] workspace).
    s = jnp.linalg.svd(x - jnp.mean(x, axis=0), compute_uv=False)
    p = s / jnp.sum(s) + 1e-7
    return jnp.exp(-jnp.sum(p * jnp.log(p)))

  def four(f, y):
    if mode.startswith("gather"):
      f, y = jax.reshard(f, full), jax.reshard(y, full)
    return (geometry.nc1(f, y, num_classes=C),
            geometry.cdnv(f, y, num_classes=C),
            geometry.etf_distance(f, y, num_classes=C),
            old_effective_rank(f) if mode == "gather"
            else geometry.effective_rank(f))

  shapes = (jax.ShapeDtypeStruct((n, D), jnp.float32, sharding=shard),
            jax.ShapeDtypeStruct((n,), jnp.int32, sharding=shard))
  t0 = time.perf_counter()
  compiled = jax.jit(four).lower(*shapes).compile()
  compile_s = time.perf_counter() - t0
  mem = compiled.memory_analysis()
  hlo = compiled.as_text()
  out = {"n": n, "mode": mode, "compile_s": compile_s,
         "per_device_bytes": int(mem.argument_size_in_bytes
                                 + mem.temp_size_in_bytes
                                 + mem.output_size_in_bytes),
         "argument_bytes": int(mem.argument_size_in_bytes),
         "temp_bytes": int(mem.temp_size_in_bytes),
         "all_gather_in_hlo": "all-gather" in hlo}
  if run:
    with jax.set_mesh(mesh):
      f, y = make(jax.random.key(0))
    jax.block_until_ready((f, y))
    base_mb = _rss_mb(peak=False)
    jax.block_until_ready(compiled(f, y))  # warm-up
    times = []
    for _ in range(repeats):
      t0 = time.perf_counter()
      values = jax.block_until_ready(compiled(f, y))
      times.append(time.perf_counter() - t0)
    out.update(seconds=statistics.median(times),
               peak_rss_mb=_rss_mb(peak=True), data_rss_mb=base_mb,
               values=[float(v) for v in values])
  print("RESULT " + json.dumps(out))


def _spawn(n, mode, run, repeats):
  cmd = [sys.executable, __file__, "--child", str(n), mode,
         "--repeats", str(repeats)] + (["--run"] if run else [])
  proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
  for line in proc.stdout.splitlines():
    if line.startswith("RESULT "):
      return json.loads(line[len("RESULT "):])
  raise RuntimeError(f"{mode} N={n} failed:\n{proc.stderr[-3000:]}")


def _table(records):
  rows = ["| N | mode | per-device memory (compiled) | peak RSS, 8 devices "
          "| time | sharded / this time | all-gather in HLO |",
          "|---|---|---|---|---|---|---|"]
  by = {(r["n"], r["mode"]): r for r in records}
  for r in records:
    mem = f"{r['per_device_bytes'] / 2**20:,.0f} MiB"
    rss = f"{r['peak_rss_mb']:,.0f} MB" if "peak_rss_mb" in r else "not run"
    if "failed" in r:
      rows.append(f"| {r['n']:,} | {r['mode']} | failed: {r['failed']} "
                  "||||||")
      continue
    t = f"{r['seconds']:.2f} s" if "seconds" in r else "-"
    own = by.get((r["n"], "sharded"))
    ratio = (f"{own['seconds'] / r['seconds']:.2f}x"
             if r["mode"] != "sharded" and own and "seconds" in r
             and "seconds" in own else "")
    rows.append(f"| {r['n']:,} | {r['mode']} | {mem} | {rss} | {t} | "
                f"{ratio} | {r['all_gather_in_hlo']} |")
  return "\n".join(rows)


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument("--child", nargs=2)
  parser.add_argument("--run", action="store_true")
  parser.add_argument("--sizes", type=int, nargs="+",
                      default=[131072, 262144, 1048576])
  parser.add_argument("--run-max", type=int, default=262144,
                      help="run (not only compile) up to this N; the gather "
                           "holds 8 copies of [N, D] in one process")
  parser.add_argument("--sharded-run-max", type=int, default=1048576)
  parser.add_argument("--old-svd-run-max", type=int, default=16384,
                      help="run the old SVD effective rank up to this N (it "
                           "needs an [N, N] workspace per device)")
  parser.add_argument("--repeats", type=int, default=3)
  parser.add_argument("--out", default=str(HERE / "geometry.json"))
  args = parser.parse_args()
  if args.child:
    _child(int(args.child[0]), args.child[1], args.run, args.repeats)
    return
  records = []
  for n in args.sizes:
    for mode in ("sharded", "gather_qr", "gather"):
      limit = {"sharded": args.sharded_run_max, "gather_qr": args.run_max,
               "gather": min(args.run_max, args.old_svd_run_max)}[mode]
      try:
        rec = _spawn(n, mode, n <= limit, args.repeats)
      except RuntimeError as e:
        rec = {"n": n, "mode": mode, "failed": str(e).splitlines()[-1][:200]}
      print(json.dumps(rec), flush=True)
      records.append(rec)
  meta = {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(),
          "machine": platform.platform(), "cpus": os.cpu_count(),
          "devices": DEVICES, "D": D, "C": C, "command": " ".join(sys.argv),
          "load_average_at_start": LOAD_AT_START}
  Path(args.out).write_text(
      json.dumps({"meta": meta, "records": records}, indent=1) + "\n")
  print(_table(records))


if __name__ == "__main__":
  main()
