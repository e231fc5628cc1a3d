#!/usr/bin/env python
"""Dense vs tiled losses at large batches, whole-dataset losses, the peers,
and training throughput: time and peak memory, as ratios measured side by side.

    python benchmarks/tiled.py                    # every section (~30 min CPU)
    python benchmarks/tiled.py --quick            # small sizes, a minute
    python benchmarks/tiled.py --sections losses scaling --sizes 4096 8192

Each case runs in a fresh subprocess (this file with ``--child``). In the
child the case is compiled and warmed up first, and its peak memory is
VmHWM - VmRSS measured before anything else is built (so it covers the case's
compilation and runs only). Then its paired references are built and warmed
up, and each of ``--repeats`` rounds times one call of the case and one of
each reference (forward + backward w.r.t. z, ``block_until_ready``).
Ratios are medians over rounds of case_i / reference_i from the same child:

* ``dense floor``: normalise + [V, V] matmul + row log-sum-exp, forward and
  backward (the dense floor; only where [V, V] fits);
* ``matmul``: the bare similarity product of the same size, computed tile by
  tile (256 x 256) and reduced to a scalar so that it fits at any V: the
  cache-resident rate of one of the four products a tiled fwd+bwd does.

Results go to ``benchmarks/TILED.md`` (and raw records to
``benchmarks/tiled.json``); benchmarks/README.md indexes them.
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
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
D = 128
NUM_CLASSES = 100
BLOCK = 256                  # tiles of the bare-matmul reference
DENSE_MAX_VIEWS = 16384      # [V, V] float32 = 1 GiB; the next size is 16 GiB


# What the 8 192-view rows measure beyond the first tiled engine (issue 11.4).
ENGINE_NOTE = (
    "Engine speed (issue 11.4): on the one-device symmetric path (i) the "
    "views are sorted by label before tiling when a loss has softplus terms "
    "(Jiang et al.'s pair sums over same-label positives), so those terms' "
    "entries sit in the few tiles near the diagonal and the two sweeps that "
    "only sum them (forward softplus sums, backward sigmoid sums) skip every "
    "other tile, as does their part of the cotangent; (ii) a tile pair "
    "takes both its row and its column statistics from the one tile (column "
    "sums, column-broadcast cotangent), with no transposed masks, "
    "exponentials or cotangent tiles; (iii) integer alphas (1 + beta for "
    "integer beta) are powers of the one exp(s - bound) per entry. The other "
    "losses change by (ii) only. Ratios depend on the machine's load (a busy "
    "machine slows the multi-threaded dense floor more than the tiles): "
    "compare rows of one run only, and read the load average of the run in "
    "the commands above.")


def _kb(field):
  with open("/proc/self/status") as f:
    for line in f:
      if line.startswith(field + ":"):
        return int(line.split()[1])
  return 0


# --- child -------------------------------------------------------------------

def _inputs(views):
  import numpy as np
  rng = np.random.default_rng(views)
  n = views // 2
  z = rng.normal(size=(n, 2, D)).astype(np.float32)
  y = rng.permutation(np.arange(n) % NUM_CLASSES).astype(np.int32)
  return z, y


def _jax_case(name, block):
  import jax
  import jax.numpy as jnp
  from cljax import losses as L

  if name == "dense_floor":
    def floor(z, y):
      del y
      x = z.reshape(-1, z.shape[-1])
      x = x / jnp.linalg.norm(x, axis=-1, keepdims=True)
      return jnp.mean(jax.nn.logsumexp(x @ x.T, axis=-1))
    return jax.jit(jax.grad(floor))
  if name == "matmul":
    def tiled_matmul(z, y):
      del y
      x = z.reshape(-1, z.shape[-1])
      xb = x.reshape(-1, BLOCK, x.shape[-1])

      def row(q):
        def col(acc, k):
          return acc + jnp.sum(q @ k.T, axis=-1), None
        return jax.lax.scan(col, jnp.zeros(q.shape[:1]), xb)[0]
      return jnp.sum(jax.lax.map(row, xb))
    return jax.jit(tiled_matmul)
  fns = {
      "ntxent": lambda z, y, b: L.ntxent(z, temperature=0.5, block_size=b),
      "nscl": lambda z, y, b: L.nscl(z, y, block_size=b),
      "supcon_out": lambda z, y, b: L.supcon(z, y, block_size=b),
      "supcon_in": lambda z, y, b: L.supcon(z, y, variant="in",
                                            block_size=b),
      "hscl": lambda z, y, b: L.hard_contrastive(z, y, beta=5.0,
                                                 block_size=b),
      "all_losses": lambda z, y, b: sum(
          v for k, v in L.all_losses(z, y, temperature=0.5, beta=5.0,
                                     block_size=b).items()
          if k != "nscl_valid"),
  }
  fn = fns[name]
  return jax.jit(jax.grad(lambda z, y: fn(z, y, block)))


def _torch_case(name):
  import torch
  from pytorch_metric_learning import losses as pml
  torch.set_num_threads(os.cpu_count() or 1)
  loss = (pml.SupConLoss(temperature=0.1) if name == "pml_supcon"
          else pml.NTXentLoss(temperature=0.5))

  def run(z, y):
    zt = torch.tensor(z.reshape(-1, z.shape[-1]), requires_grad=True)
    yt = torch.tensor(y).repeat_interleave(z.shape[1])
    if name == "pml_ntxent":     # positives: the views of one sample
      yt = torch.arange(z.shape[0]).repeat_interleave(z.shape[1])
    loss(zt, yt).backward()
    return zt.grad
  return run


def _call(fn, args):
  out = fn(*args)
  if hasattr(out, "block_until_ready"):
    out.block_until_ready()


def _timed(fn, args):
  start = time.perf_counter()
  _call(fn, args)
  return time.perf_counter() - start


def child(spec):
  if spec["kind"] == "dataset":
    import numpy as np
    from cljax.analysis import evaluate
    n = spec["views"] // 2
    rng = np.random.default_rng(1)
    z = rng.normal(size=(n, 2, D)).astype(np.float32)
    y = rng.integers(0, 10, n).astype(np.int32)
    base = _kb("VmRSS")
    start = time.perf_counter()
    out = evaluate.dataset_losses(z, y)
    first = time.perf_counter() - start
    start = time.perf_counter()
    evaluate.dataset_losses(z, y)
    return {"seconds_first_call": first,
            "seconds": time.perf_counter() - start,
            "peak_mb": (_kb("VmHWM") - base) / 1024,
            "gap": out["gap"], "gap_bound": out["gap_bound"],
            "nscl": out["nscl"], "dcl": out["dcl"]}
  if spec["kind"] == "train":
    return _train_child(spec)
  z, y = _inputs(spec["views"])
  base = _kb("VmRSS")
  if spec["name"].startswith("pml"):
    fn = _torch_case(spec["name"])
  else:
    fn = _jax_case(spec["name"], spec.get("block", "dense"))
  args = (z, y)
  _call(fn, args)
  _call(fn, args)
  peak = (_kb("VmHWM") - base) / 1024
  pairs = {p["label"]: (_torch_case(p["name"]) if p["name"].startswith("pml")
                        else _jax_case(p["name"], p.get("block", "dense")))
           for p in spec.get("pairs", [])}
  for f in pairs.values():
    _call(f, args)
  times = {"case": []}
  times.update({label: [] for label in pairs})
  for _ in range(spec["repeats"]):
    times["case"].append(_timed(fn, args))
    for label, f in pairs.items():
      times[label].append(_timed(f, args))
  out = {"peak_mb": peak, "median_s": statistics.median(times["case"]),
         "times": times}
  for label in pairs:
    ratios = [c / p for c, p in zip(times["case"], times[label])]
    out[f"ratio_{label}"] = statistics.median(ratios)
    out[f"median_s_{label}"] = statistics.median(times[label])
  return out


def _train_child(spec):
  import tempfile
  from cljax.analysis import checkpoints
  from cljax.training import train
  from experiments import default
  config = default.get_config()
  config.steps = spec["steps"]
  config.log_every = 5
  config.eval_every = 0           # no evaluation: only training steps
  config.checkpoint.every = 10 ** 6
  for key, value in spec["overrides"].items():
    target = config
    *path, last = key.split(".")
    for part in path:
      target = target[part]
    target[last] = value
  with tempfile.TemporaryDirectory() as workdir:
    train.train_and_evaluate(config, workdir, verbose=False)
    rows = [r for r in checkpoints.read_metrics(workdir)
            if "train/examples_per_sec" in r]
  # The first logged window includes compilation.
  rates = [r["train/examples_per_sec"] for r in rows[1:]]
  return {"examples_per_sec": statistics.median(rates),
          "batch_size": config.data.batch_size, "steps": config.steps}


# --- parent ------------------------------------------------------------------

def _run_child(spec, timeout, limit_gb):
  cmd = [sys.executable, __file__, "--child", json.dumps(spec)]
  env = dict(os.environ, PYTHONPATH=str(REPO), JAX_PLATFORMS="cpu")

  def limit():
    size = int(limit_gb * 2 ** 30)
    resource.setrlimit(resource.RLIMIT_AS, (size, size))
  try:
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env,
                          timeout=timeout, preexec_fn=limit, cwd=REPO)
  except subprocess.TimeoutExpired:
    return {"error": f"timed out after {timeout} s"}
  if proc.returncode != 0:
    tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:]
    return {"error": tail[0][:300] if tail else f"exit {proc.returncode}"}
  return json.loads(proc.stdout.strip().splitlines()[-1])


def loss_cases(sizes, repeats, only=None):
  cases = []
  for v in sizes:
    dense_fits = v <= DENSE_MAX_VIEWS
    pairs = [{"label": "matmul", "name": "matmul"}]
    if dense_fits:
      pairs.append({"label": "dense_floor", "name": "dense_floor"})
    names = ["nscl", "supcon_out"]
    if v <= DENSE_MAX_VIEWS:
      names += ["ntxent", "supcon_in", "hscl", "all_losses"]
    for name in [n for n in names if only is None or n in only]:
      cases.append({"kind": "loss", "name": name, "block": "auto",
                    "views": v, "repeats": repeats, "pairs": pairs,
                    "label": f"{name} tiled (auto)"})
      if dense_fits and name in ("nscl", "supcon_out"):
        cases.append({"kind": "loss", "name": name, "block": "dense",
                      "views": v, "repeats": repeats, "pairs": pairs,
                      "label": f"{name} dense"})
    if dense_fits:
      cases.append({"kind": "loss", "name": "dense_floor", "views": v,
                    "repeats": repeats, "pairs": pairs[:1],
                    "label": "dense floor"})
  return cases


def peer_cases(sizes, repeats):
  cases = []
  for v in sizes:
    for peer, ours in (("pml_supcon", "supcon_out"), ("pml_ntxent", "ntxent")):
      cases.append({"kind": "loss", "name": peer, "views": v,
                    "repeats": repeats, "label": f"pytorch-metric-learning "
                    f"{'SupConLoss' if peer == 'pml_supcon' else 'NTXentLoss'}",
                    "pairs": [{"label": "cljax", "name": ours,
                               "block": "auto"}]})
  return cases


def _fit_exponent(points):
  xs = [math.log(v) for v, _ in points]
  ys = [math.log(t) for _, t in points]
  mx, my = statistics.mean(xs), statistics.mean(ys)
  return (sum((x - mx) * (y - my) for x, y in zip(xs, ys)) /
          sum((x - mx) ** 2 for x in xs))


# TILED.md from this line on is hand-written (dated notes on runs, e.g. of
# a few rows with --out) and kept when the report is rewritten.
KEPT_HEADING = "## Notes by run (hand-written, kept by every rewrite)"


def _kept_notes():
  path = HERE / "TILED.md"
  if not path.exists():
    return []
  text = path.read_text()
  at = text.find(KEPT_HEADING)
  return [] if at < 0 else ["", text[at:].rstrip("\n")]


def _fmt(x, digits=2):
  return "-" if x is None else f"{x:.{digits}f}"


def write_report(records, args):
  commands = list(dict.fromkeys(
      r.get("command", "python benchmarks/tiled.py") for r in records))
  lines = ["# Tiled losses at scale: results", "",
           f"- Date: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M UTC}",
           "- Commands (in run order; 'run' below is the number): " +
           ", then ".join(f"{i}. `{c}`" for i, c in enumerate(commands, 1)) +
           ".",
           f"- Machine: {os.cpu_count()} CPUs, {platform.processor() or platform.machine()}, "
           f"Python {platform.python_version()}; float32, D = {D}, labels "
           f"mod {NUM_CLASSES}. 'tiled (auto)' is the default block_size, "
           "which tiles every size here (V >= 4096): 512 x 512 tiles (256 x "
           "256 for all_losses before issue 26.4); the matmul reference "
           "uses 256 x 256 tiles.",
           "- Protocol: see the docstring of benchmarks/tiled.py. Peak MB = "
           "VmHWM - VmRSS of the case's own subprocess (compile + 2 calls). "
           "Ratios are per-round medians from the same subprocess.", ""]
  loss = [r for r in records if r["spec"]["kind"] == "loss"
          and not r["spec"]["name"].startswith("pml")]
  if loss:
    lines += ["## Forward + backward, dense vs tiled", "",
              "| views V | case | median s | vs matmul | vs dense floor | "
              "peak MB | run | load | note |",
              "|---:|---|---:|---:|---:|---:|---:|---:|---|"]
    for r in loss:
      s, o = r["spec"], r["out"]
      run = commands.index(r.get("command", "python benchmarks/tiled.py"))
      lines.append(
          f"| {s['views']} | {s['label']} | {_fmt(o.get('median_s'), 3)} | "
          f"{_fmt(o.get('ratio_matmul'))} | {_fmt(o.get('ratio_dense_floor'))}"
          f" | {_fmt(o.get('peak_mb'), 0)} | {run + 1} | "
          f"{_fmt(r.get('loadavg'), 1)} | {o.get('error', '')} |")
    lines += ["", ENGINE_NOTE, ""]
  peers = [r for r in records if r["spec"]["name"].startswith("pml")]
  if peers:
    lines += ["## cljax vs pytorch-metric-learning (same child, same inputs)",
              "", "| views V | peer | peer s | cljax s | peer / cljax | "
              "peer peak MB | note |", "|---:|---|---:|---:|---:|---:|---|"]
    for r in peers:
      s, o = r["spec"], r["out"]
      lines.append(
          f"| {s['views']} | {s['label']} | {_fmt(o.get('median_s'), 3)} | "
          f"{_fmt(o.get('median_s_cljax'), 3)} | {_fmt(o.get('ratio_cljax'))}"
          f" | {_fmt(o.get('peak_mb'), 0)} | {o.get('error', '')} |")
    lines.append("")
  data = [r for r in records if r["spec"]["kind"] == "dataset"]
  for r in data:
    o = r["out"]
    lines += ["## Whole-dataset exact losses (`cljax.analysis.evaluate.dataset_losses`)",
              "", f"{r['spec']['views'] // 2} samples x 2 views, D = {D}, 10 "
              "classes, forward only (CL, DCL, NSCL, gap in one sweep): "
              f"{_fmt(o.get('seconds'), 1)} s (first call incl. compile "
              f"{_fmt(o.get('seconds_first_call'), 1)} s), peak "
              f"{_fmt(o.get('peak_mb'), 0)} MB; gap {_fmt(o.get('gap'), 4)} <= "
              f"bound {_fmt(o.get('gap_bound'), 4)}. {o.get('error', '')}", ""]
  scaling = [(r["spec"]["views"], r["out"]["median_s"]) for r in records
             if r["spec"].get("name") == "nscl" and
             r["spec"].get("block") == "auto" and "median_s" in r["out"]]
  if len(scaling) >= 3:
    exponent = _fit_exponent(scaling)
    lines += ["## How cost grows (tiled NSCL, fwd + bwd)", "",
              "time ~ V^p fitted by least squares on log-log over V = " +
              ", ".join(str(v) for v, _ in scaling) +
              f": **p = {exponent:.3f}** (2 = quadratic).", ""]
    by_v = dict(scaling)
    if 8192 in by_v and 65536 in by_v:
      ratio = by_v[65536] / (64 * by_v[8192])
      lines += [f"65 536-view time / (64 x 8 192-view time) = **{ratio:.2f}** "
                "(target <= 1.2).", ""]
  train_rows = [r for r in records if r["spec"]["kind"] == "train"]
  if train_rows:
    lines += ["## Training-step throughput (the one train loop, CPU)", "",
              "| encoder | data | batch | examples/s | note |",
              "|---|---|---:|---:|---|"]
    for r in train_rows:
      s, o = r["spec"], r["out"]
      lines.append(f"| {s['label']} | {s['overrides'].get('data.name')} | "
                   f"{o.get('batch_size', '-')} | "
                   f"{_fmt(o.get('examples_per_sec'), 0)} | "
                   f"{o.get('error', '')} |")
    lines.append("")
  lines += _kept_notes()
  (HERE / "TILED.md").write_text("\n".join(lines) + "\n")
  (HERE / "tiled.json").write_text(json.dumps(records, indent=1))


def train_cases():
  gm = "cljax_gaussian_mixture/images_c10"
  return [
      {"kind": "train", "label": "convnet (16, 32, 64) + MLP head (default)",
       "steps": 40, "overrides": {"data.name": gm}},
      {"kind": "train", "label": "CIFAR ResNet-18 + MLP head", "steps": 12,
       "overrides": {"data.name": gm, "data.batch_size": 32,
                     "model.encoder": "resnet18",
                     "model.encoder_kwargs": {"stem": "cifar"}}},
  ]


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument("--child")
  parser.add_argument("--sections", nargs="+", default=[
      "losses", "peers", "dataset", "train"])
  parser.add_argument("--sizes", nargs="+", type=int,
                      default=[4096, 8192, 16384, 32768, 65536])
  parser.add_argument("--peer_sizes", nargs="+", type=int,
                      default=[2048, 8192])
  parser.add_argument("--dataset_samples", type=int, default=50000)
  parser.add_argument("--repeats", type=int, default=3)
  parser.add_argument("--timeout", type=int, default=1800)
  parser.add_argument("--limit_gb", type=float, default=20.0)
  parser.add_argument("--quick", action="store_true")
  parser.add_argument("--render", action="store_true",
                      help="rewrite TILED.md from tiled.json, measure nothing")
  parser.add_argument("--append", action="store_true",
                      help="add to the records of benchmarks/tiled.json")
  parser.add_argument("--out", help="write the records to this JSON file "
                      "only (TILED.md and tiled.json stay untouched)")
  parser.add_argument("--names", nargs="+", help="only these loss cases "
                      "(the dense floor always runs)")
  args = parser.parse_args()
  if args.child:
    print(json.dumps(child(json.loads(args.child))))
    return
  if args.render:
    write_report(json.loads((HERE / "tiled.json").read_text()), args)
    return
  if args.quick:
    args.sizes, args.peer_sizes = [1024, 2048], [1024]
    args.dataset_samples, args.repeats = 4096, 2
  cases = []
  if "losses" in args.sections:
    cases += loss_cases(args.sizes, args.repeats, args.names)
  if "peers" in args.sections:
    cases += peer_cases(args.peer_sizes, args.repeats)
  if "dataset" in args.sections:
    cases.append({"kind": "dataset", "name": "dataset",
                  "views": 2 * args.dataset_samples})
  if "train" in args.sections:
    cases += [dict(c, name="train") for c in train_cases()]
  records = []
  if args.append and (HERE / "tiled.json").exists():
    records = json.loads((HERE / "tiled.json").read_text())
  for spec in cases:
    start = time.perf_counter()
    out = _run_child(spec, args.timeout, args.limit_gb)
    records.append({"spec": spec, "out": out, "command": " ".join(
                        ["python benchmarks/tiled.py"] + sys.argv[1:]),
                    "wall_s": time.perf_counter() - start,
                    "loadavg": os.getloadavg()[0]})
    print(f"{spec.get('label', spec['kind'])} V={spec.get('views')}: "
          f"{json.dumps(out)[:200]}", flush=True)
    if args.out:
      Path(args.out).write_text(json.dumps(records, indent=1))
    else:
      write_report(records, args)


if __name__ == "__main__":
  main()
