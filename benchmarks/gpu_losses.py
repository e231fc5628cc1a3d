#!/usr/bin/env python
"""Loss forward+backward on an accelerator, side by side with the floor and
pytorch-metric-learning on the same device.

    python benchmarks/gpu_losses.py --sizes 4096 16384 --repeats 10

One process; every row of a size is timed interleaved with the others
(round-robin repeats, median), so ratios are robust to drift. Memory is
reported as XLA's compiled scratch size (the allocator's peak cannot be
reset per row inside one process). Prints Markdown tables for
benchmarks/RESULTS.md. Run it with XLA_PYTHON_CLIENT_PREALLOCATE=false so the
torch rows get GPU memory too.
"""

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

K, D, NUM_CLASSES, BETA = 2, 128, 100, 5.0


def jax_rows(z_np, y_np):
  import jax
  import jax.numpy as jnp
  from cljax import losses as L

  def floor(z, y):
    x = z.reshape(-1, z.shape[-1])
    x = x / jnp.linalg.norm(x, axis=-1, keepdims=True)
    return jnp.mean(jax.nn.logsumexp(x @ x.T, axis=-1))

  def total(d):
    return sum(v for k, v in d.items() if k not in ("gap_bound",
                                                    "nscl_valid"))

  fns = {
      "floor (normalise + matmul + LSE)": floor,
      "ntxent": lambda z, y: L.ntxent(z, temperature=0.5),
      "nscl": lambda z, y: L.nscl(z, y),
      "supcon out": lambda z, y: L.supcon(z, y),
      "hard_contrastive beta=5": lambda z, y: L.hard_contrastive(z, y,
                                                                 beta=BETA),
      "all_losses": lambda z, y: total(L.all_losses(z, y, temperature=0.5)),
  }
  z, y = jax.device_put(z_np), jax.device_put(y_np)
  rows = {}
  for name, fn in fns.items():
    c = jax.jit(jax.value_and_grad(fn)).lower(z, y).compile()
    temp = c.memory_analysis().temp_size_in_bytes / 2**20
    rows[name] = (lambda c=c: jax.block_until_ready(c(z, y)), temp)
  return rows


def torch_rows(z_np, y_np, device):
  import torch
  from pytorch_metric_learning import losses as pml
  emb = torch.tensor(z_np.reshape(-1, D), device=device, requires_grad=True)
  lab = torch.tensor(np.repeat(y_np, K), device=device)
  ids = torch.arange(z_np.shape[0], device=device).repeat_interleave(K)
  rows = {}
  for name, loss, labels in (
      ("pml SupConLoss", pml.SupConLoss(temperature=0.1), lab),
      ("pml NTXentLoss", pml.NTXentLoss(temperature=0.5), ids)):
    def run(loss=loss, labels=labels):
      emb.grad = None
      loss(emb, labels).backward()
      if device == "cuda":
        torch.cuda.synchronize()
    rows[name] = (run, float("nan"))
  return rows


def main():
  p = argparse.ArgumentParser()
  p.add_argument("--sizes", type=int, nargs="+", default=[4096, 16384])
  p.add_argument("--repeats", type=int, default=10)
  p.add_argument("--no-torch", action="store_true")
  args = p.parse_args()
  import jax
  device = jax.devices()[0]
  print(f"# device: {device.device_kind} ({device.platform}), jax "
        f"{jax.__version__}")
  for n in args.sizes:
    rng = np.random.default_rng(n)
    z = rng.standard_normal((n, K, D), dtype=np.float32)
    y = rng.permutation(np.arange(n) % NUM_CLASSES).astype(np.int32)
    rows = jax_rows(z, y)
    if not args.no_torch:
      try:
        import torch
        dev = "cuda" if torch.cuda.is_available() else "cpu"
        rows.update(torch_rows(z, y, dev))
      except Exception as e:  # noqa: BLE001
        print(f"torch rows skipped: {type(e).__name__}: {e}")
    times = {k: [] for k in rows}
    failed = {}
    for name, (fn, _) in rows.items():   # warm-up
      try:
        fn(); fn()
      except Exception as e:  # noqa: BLE001
        failed[name] = f"{type(e).__name__}: {str(e)[:80]}"
    for _ in range(args.repeats):
      for name, (fn, _) in rows.items():
        if name in failed:
          continue
        t = time.perf_counter()
        fn()
        times[name].append(time.perf_counter() - t)
    floor = np.median(times["floor (normalise + matmul + LSE)"])
    print(f"\n### N = {n} x K = {K} = {n * K} views, D = {D}\n")
    print("| implementation | loss | median ms | ratio to floor | XLA temp MB |")
    print("|---|---|---:|---:|---:|")
    for name, (_, temp) in rows.items():
      impl = "pml (torch)" if name.startswith("pml") else "cljax/jax"
      if name in failed:
        print(f"| {impl} | {name} | failed: {failed[name]} | - | - |")
        continue
      med = np.median(times[name])
      print(f"| {impl} | {name} | {1e3 * med:.2f} | {med / floor:.2f} | "
            f"{temp:.0f} |")
    sys.stdout.flush()


if __name__ == "__main__":
  main()
