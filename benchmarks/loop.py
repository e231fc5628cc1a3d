#!/usr/bin/env python
"""The training loop against its bare jitted step, host input, a plain PyTorch
ResNet-18 step, compile times of the paper presets, and the README main job.

    python benchmarks/loop.py                          # every section
    python benchmarks/loop.py --sections loop input    # some of them
    python benchmarks/loop.py --sections torch --flags default onednn
    python benchmarks/loop.py --sections cache         # compilation cache
    python benchmarks/loop.py --quick                  # fewer rounds/steps
    python benchmarks/loop.py --render                 # LOOP.md from loop.json

Sections (each case runs in a fresh subprocess, ``--child``, so XLA flags are
read at backend start and the peak RSS is the case's own):

* ``loop``: ``cljax.training.train.train_and_evaluate`` with ``log_every=L`` (50),
  ``2 L`` steps and evaluation off, against the bare jitted
  ``cljax.training.train_step.train_step`` on the same batches (the second log window of
  the loop, from its ``train/steps_per_sec``; the bare step dispatched back
  to back on device-resident batches, one block at the end). One round = one
  loop run, its bare step the mean of the bare runs right before and right
  after it (cancels a drift of the machine's speed); the ratio is per round.
* ``input``: host time per batch of the data pipeline (``next``) and of the
  host-to-device transfer, the blocked step, and input + step dispatched
  without blocking (as the loop does): ``hidden`` = the share of the input
  time that overlaps the step. Repeated with ``config.data.prefetch`` when
  the data config has that field.
* ``torch``: one ResNet-18 (CIFAR stem) + MLP head NT-Xent SGD step on
  ``B x 2`` views of 32x32 in cljax/JAX and in plain PyTorch (CPU build),
  alternated in the same process, once per XLA flag variant (``--flags``);
  the gradients of each variant are compared with the default's.
* ``compile``: lowering and compile time of the train step of the default
  preset of every ``experiments/**/*.py`` (batch reduced, data of the real
  shapes: stock TFDS datasets through ``tfds.testing.mock_data``).
* ``main``: the README main job (``cljax.main`` on
  ``experiments/default.py``) in one process, its wall time split into
  compiling (jax's compile events), evaluating, checkpointing, plotting and
  the rest (stepping, set-up). The persistent compilation cache is off
  (``CLJAX_COMPILATION_CACHE=off``): cold-compile numbers.
* ``cache``: JAX's persistent compilation cache, which ``cljax.main`` and
  ``cljax.sweep`` turn on by default, against the cache off, per round in
  fresh cache directories: the main job with the cache off, cold (empty
  cache) and warm (the cache the cold run filled); a 6-point sweep
  (``experiments/default.py:smoke``, 3 temperatures x 2 seeds, one process)
  with the cache off and with an empty cache. Compile time from jax's
  compile events, cache hits and misses from its ``/jax/compilation_cache``
  events, and the names of the programs that were compiled instead of read.

Results go to ``benchmarks/loop.json`` (all records) and ``benchmarks/LOOP.md``
(tables; the hand-written "Findings" section of an existing LOOP.md is kept).
The children import the working tree: do not edit ``cljax/`` during a run.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import functools
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
RESULT_TAG = "LOOP_RESULT "

# XLA flag variants of the torch section (label -> XLA_FLAGS; "" = none).
FLAG_VARIANTS = {
    "default": "",
    "onednn": "--xla_cpu_use_onednn=true",
    "no_xnnpack": "--xla_cpu_use_xnnpack=false",
    "onednn_no_xnnpack": "--xla_cpu_use_onednn=true "
                         "--xla_cpu_use_xnnpack=false",
    "single_thread_eigen": "--xla_cpu_multi_thread_eigen=false",
    "fast_math": "--xla_cpu_enable_fast_math=true",
    # Convolutions left to XLA's own emitter instead of one YNNPACK fusion
    # each (elementwise and reduce fusions stay YNNPACK's).
    "no_ynn_conv": "--xla_cpu_experimental_ynn_fusion_type="
                   "-individual_convolution",
    "bf16": "",   # Same flags as default; the model computes in bfloat16.
}
TORCH_THREADS = os.cpu_count() or 1


# ---------------------------------------------------------------------------
# Helpers shared by the children.
# ---------------------------------------------------------------------------

def _proc_status_kb(field: str) -> int:
  with open("/proc/self/status") as f:
    for line in f:
      if line.startswith(field + ":"):
        return int(line.split()[1])
  return 0


def _memory() -> dict:
  return {"peak_rss_mb": _proc_status_kb("VmHWM") / 1024,
          "rss_mb": _proc_status_kb("VmRSS") / 1024}


def _summary(values: list[float]) -> dict:
  values = sorted(values)
  n = len(values)
  if not n:
    return {}
  q = lambda p: values[min(n - 1, max(0, round(p * (n - 1))))]  # noqa: E731
  return {"median": statistics.median(values), "min": values[0],
          "max": values[-1], "p25": q(0.25), "p75": q(0.75), "n": n}


def _experiment(name: str, preset: str = ""):
  """``get_config(preset)`` of ``experiments/<name>.py`` (loaded by path)."""
  from cljax._src import config_files
  module = config_files.load(str(REPO / "experiments" / f"{name}.py"))
  return module.get_config(preset)


def _loop_config(model: str, batch: int, log_every: int, steps: int):
  """The default job's config with the given encoder, evaluation off."""
  config = _experiment("default")
  with config.unlocked():
    config.steps = steps
    config.log_every = log_every
    config.eval_every = 0
    config.checkpoint.every = 10 ** 9   # Only the forced save at the end.
    config.data.batch_size = batch
    if model == "resnet18":
      # The embedded Gaussian-mixture images at 32x32 (offline).
      config.data.name = ("cljax_gaussian_mixture/"
                          "images_c10_s32_ch3_tpl4_n100_t20_noise1.0_seed0")
      config.model.encoder = "resnet18"
      config.model.encoder_kwargs = {"stem": "cifar"}
    elif model != "convnet":
      raise ValueError(f"unknown model {model!r}")
  return config


class _Pieces:
  """The loop's own pieces for a config: data, model, optimiser, jitted step.

  Built from the public parts of ``cljax.training.startup`` the way
  ``train_and_evaluate`` builds them (one device).
  """

  def __init__(self, config, *, data_overrides=None):
    import jax
    import jax.numpy as jnp
    from jax.sharding import NamedSharding
    from jax.sharding import PartitionSpec as P
    from cljax import data as data_lib
    from cljax import models
    from cljax.training import evaluators
    from cljax.training import optim
    from cljax.training import startup
    from cljax.training import train_step as train_step_lib
    from cljax.data import _stream

    self.jax = jax
    self._to_global = _stream.to_global  # The loop's own transfer.
    mesh = startup.make_mesh(config.get("num_devices", None))
    data_config = config.data
    if data_overrides:
      data_config = config.data.to_dict()
      data_config.update(data_overrides)
    self.data = data_lib.build(data_config, seed=config.seed,
                               process_index=jax.process_index(),
                               process_count=jax.process_count())
    config = evaluators.with_classifier(config, self.data.num_classes)
    self.config = config
    model = models.build(config.model)
    num_steps = startup.total_steps(config, self.data)
    tx, schedule = optim.make_optimizer(config.optim, num_steps)
    init_key, base_key = jax.random.split(jax.random.key(config.seed))
    self.replicated = NamedSharding(mesh, P())
    self.batch_sharding = NamedSharding(mesh, P("data"))
    input_shape = tuple(self.data.input_shape)

    @functools.partial(jax.jit, out_shardings=self.replicated)
    def init_state():
      dummy = jnp.zeros((2,) + input_shape, jnp.float32)
      variables = model.init(init_key, dummy, train=False)
      params = variables["params"]
      return {"params": params,
              "batch_stats": variables.get("batch_stats", {}),
              "opt_state": tx.init(params),
              "step": jnp.zeros((), jnp.int32)}

    self.init_state = init_state
    self.step_fn = jax.jit(functools.partial(
        train_step_lib.train_step, model=model, tx=tx, schedule=schedule,
        config=config, data=self.data, base_key=base_key), donate_argnums=0)

  def to_device(self, batch):
    return {key: self._to_global(batch[key], self.batch_sharding)
            for key in ("x", "label")}


def _block(tree):
  import jax
  return jax.block_until_ready(tree)


# ---------------------------------------------------------------------------
# Children.
# ---------------------------------------------------------------------------

def child_loop(spec: dict) -> dict:
  """Loop window vs bare step on the same batches, ``rounds`` times."""
  from cljax.analysis import checkpoints
  from cljax.training import train
  log_every, model, batch = spec["log_every"], spec["model"], spec["batch"]
  steps = 2 * log_every
  config = _loop_config(model, batch, log_every, steps)
  pieces = _Pieces(config)
  # Batches of the second log window (steps L+1..2L), as the loop sees them.
  host = [next(pieces.data) for _ in range(steps)][log_every:]
  batches = [pieces.to_device(b) for b in host]
  state = pieces.init_state()
  t0 = time.perf_counter()
  state, _ = _block(pieces.step_fn(state, batches[0]))
  bare_first = time.perf_counter() - t0
  def bare():
    state = pieces.init_state()
    state, _ = _block(pieces.step_fn(state, batches[0]))   # warm
    t0 = time.perf_counter()
    for b in batches:
      state, metrics = pieces.step_fn(state, b)
    _block((state, metrics))
    return (time.perf_counter() - t0) / len(batches)

  rounds = []
  after = bare()
  for r in range(spec["rounds"]):
    # The bare step is timed right before and right after each loop run:
    # their mean cancels a drift of the shared machine's speed.
    before = after
    with tempfile.TemporaryDirectory() as workdir:
      t0 = time.perf_counter()
      train.train_and_evaluate(config, workdir, verbose=False)
      loop_total = time.perf_counter() - t0
      rows = checkpoints.read_metrics(workdir)
    row = [r_ for r_ in rows if r_["step"] == steps][0]
    first = [r_ for r_ in rows if r_["step"] == log_every][0]
    loop_step = 1.0 / row["train/steps_per_sec"]
    after = bare()
    bare_step = (before + after) / 2
    rounds.append({
        "loop_step_s": loop_step, "bare_step_s": bare_step,
        "bare_before_s": before, "bare_after_s": after,
        "ratio": loop_step / bare_step, "loop_total_s": loop_total,
        "loop_first_window_s": log_every / first["train/steps_per_sec"],
        "loop_outside_windows_s": loop_total - log_every / first[
            "train/steps_per_sec"] - log_every * loop_step,
        "loadavg": os.getloadavg()[0]})
  return {"model": model, "batch": batch, "log_every": log_every,
          "steps": steps, "bare_first_call_s": bare_first, "rounds": rounds,
          "ratio": _summary([r["ratio"] for r in rounds]),
          "loop_step_s": _summary([r["loop_step_s"] for r in rounds]),
          "bare_step_s": _summary([r["bare_step_s"] for r in rounds]),
          **_memory()}


def _data_has_field(name: str) -> bool:
  from cljax import data as data_lib
  return name in data_lib.default_config()


def child_input(spec: dict) -> dict:
  """Host input time per batch and how much of it the step hides."""
  model, batch, n = spec["model"], spec["batch"], spec["batches"]
  config = _loop_config(model, batch, 50, 10 ** 6)
  overrides = ({"prefetch": spec["prefetch"]}
               if spec.get("prefetch") is not None else None)
  pieces = _Pieces(config, data_overrides=overrides)
  data = pieces.data
  for _ in range(3):
    next(data)
  t_next, t_put = [], []
  for _ in range(n):
    t0 = time.perf_counter()
    b = next(data)
    t1 = time.perf_counter()
    _block(pieces.to_device(b))
    t_next.append(t1 - t0)
    t_put.append(time.perf_counter() - t1)
  state = pieces.init_state()
  gb = pieces.to_device(next(data))
  state, _ = _block(pieces.step_fn(state, gb))
  rounds = []
  for _ in range(spec["rounds"]):
    # Blocked step alone, on one device-resident batch.
    t0 = time.perf_counter()
    for _ in range(n):
      state, metrics = pieces.step_fn(state, gb)
      _block(metrics)
    step = (time.perf_counter() - t0) / n
    # Input then step, dispatched without blocking (the loop's order).
    t0 = time.perf_counter()
    for _ in range(n):
      state, metrics = pieces.step_fn(state, pieces.to_device(next(data)))
    _block((state, metrics))
    overlapped = (time.perf_counter() - t0) / n
    # Input alone, in the same round.
    t0 = time.perf_counter()
    for _ in range(n):
      _block(pieces.to_device(next(data)))
    inp = (time.perf_counter() - t0) / n
    hidden = (inp + step - overlapped) / inp if inp > 0 else float("nan")
    rounds.append({"step_s": step, "input_s": inp, "overlapped_s": overlapped,
                   "hidden": hidden, "input_share": inp / step,
                   "loadavg": os.getloadavg()[0]})
  return {"model": model, "batch": batch, "prefetch": spec.get("prefetch"),
          "next_s": _summary(t_next), "transfer_s": _summary(t_put),
          "rounds": rounds,
          "input_s": _summary([r["input_s"] for r in rounds]),
          "step_s": _summary([r["step_s"] for r in rounds]),
          "overlapped_s": _summary([r["overlapped_s"] for r in rounds]),
          "hidden": _summary([r["hidden"] for r in rounds]),
          "input_share": _summary([r["input_share"] for r in rounds]),
          **_memory()}


def _torch_resnet18(head_hidden: int, head_out: int):
  """kuangliu's CIFAR ResNet-18 without the classifier, + an MLP head
  (Linear no bias -> BN -> ReLU -> Linear): cljax's resnet18 + mlp."""
  import torch
  from torch import nn

  class Basic(nn.Module):
    def __init__(self, cin, cout, stride):
      super().__init__()
      self.c1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
      self.b1 = nn.BatchNorm2d(cout)
      self.c2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
      self.b2 = nn.BatchNorm2d(cout)
      self.short = nn.Sequential()
      if stride != 1 or cin != cout:
        self.short = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False),
                                   nn.BatchNorm2d(cout))

    def forward(self, x):
      y = torch.relu(self.b1(self.c1(x)))
      y = self.b2(self.c2(y))
      return torch.relu(y + self.short(x))

  layers = [nn.Conv2d(3, 64, 3, 1, 1, bias=False), nn.BatchNorm2d(64),
            nn.ReLU()]
  cin = 64
  for i, width in enumerate((64, 128, 256, 512)):
    for j in range(2):
      layers.append(Basic(cin, width, 2 if i > 0 and j == 0 else 1))
      cin = width
  layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(),
             nn.Linear(512, head_hidden, bias=False),
             nn.BatchNorm1d(head_hidden), nn.ReLU(),
             nn.Linear(head_hidden, head_out)]
  return nn.Sequential(*layers)


def _torch_ntxent(z, temperature: float):
  """NT-Xent over 2B views, z: [2B, P] with views i and i+B paired."""
  import torch
  z = torch.nn.functional.normalize(z, dim=-1)
  n = z.shape[0]
  s = z @ z.T / temperature
  s = s.masked_fill(torch.eye(n, dtype=torch.bool), float("-inf"))
  b = n // 2
  pos = torch.cat([torch.arange(b, n), torch.arange(0, b)])
  return torch.nn.functional.cross_entropy(s, pos)


def child_torch(spec: dict) -> dict:
  """cljax/JAX vs plain PyTorch ResNet-18 contrastive step, alternated."""
  import numpy as np
  import jax
  import jax.numpy as jnp
  import optax
  from cljax import losses
  from cljax import models

  b, rounds = spec["batch"], spec["rounds"]
  dtype = "bfloat16" if spec["variant"] == "bf16" else "float32"
  hidden, out, tau, lr = 512, 128, 0.5, 0.1
  rng = np.random.default_rng(0)
  x_nhwc = rng.standard_normal((2 * b, 32, 32, 3)).astype(np.float32)

  # -- cljax / JAX ----------------------------------------------------------
  model = models.build({"encoder": "resnet18",
                        "encoder_kwargs": {"stem": "cifar"},
                        "head": "mlp",
                        "head_kwargs": {"hidden_dims": hidden,
                                        "output_dim": out},
                        "dtype": dtype})
  variables = model.init(jax.random.key(0), jnp.zeros((2, 32, 32, 3)),
                         train=False)
  tx = optax.sgd(lr, momentum=0.9)

  def objective(params, batch_stats, x):
    (_, z), upd = model.apply({"params": params, "batch_stats": batch_stats},
                              x, train=True, mutable=["batch_stats"])
    # Views i and i + B are the pair: [2B, P] -> [B, 2, P].
    z = jnp.stack([z[:b], z[b:]], axis=1)
    return losses.ntxent(z, temperature=tau), upd["batch_stats"]

  @functools.partial(jax.jit, donate_argnums=(0,))
  def jax_step(state, x):
    params, batch_stats, opt_state = state
    (loss, batch_stats), grads = jax.value_and_grad(
        objective, has_aux=True)(params, batch_stats, x)
    updates, opt_state = tx.update(grads, opt_state, params)
    return (optax.apply_updates(params, updates), batch_stats,
            opt_state), loss

  @jax.jit
  def jax_grads(params, batch_stats, x):
    return jax.value_and_grad(objective, has_aux=True)(params, batch_stats, x)

  @jax.jit
  def jax_forward(params, batch_stats, x):
    return model.apply({"params": params, "batch_stats": batch_stats}, x,
                       train=True, mutable=["batch_stats"])[0][1]

  params, batch_stats = variables["params"], variables["batch_stats"]
  xj = jnp.asarray(x_nhwc)
  t0 = time.perf_counter()
  compiled = jax_step.lower((params, batch_stats, tx.init(params)),
                            xj).compile()   # Lowering only: nothing donated.
  compile_s = time.perf_counter() - t0
  temp_mb = compiled.memory_analysis().temp_size_in_bytes / 2 ** 20
  # Which library each fusion runs in (XNNPACK/YNNPACK/oneDNN custom fusions
  # vs XLA's own loops): the first thing a flag variant could change.
  import collections
  import re
  fusion_kinds = dict(collections.Counter(
      re.findall(r'"kind":"(__\w+)"', compiled.as_text())))
  num_convs = compiled.as_text().count(" convolution(")
  (loss0, _), grads0 = jax_grads(params, batch_stats, xj)
  grads0 = np.concatenate([np.asarray(g, np.float32).ravel()
                           for g in jax.tree.leaves(grads0)])
  np.save(os.path.join(spec["outdir"], f"grads_{spec['variant']}.npy"),
          grads0)
  # The step donates its state: give it copies, keep params for the forward.
  state = jax.tree.map(jnp.copy, (params, batch_stats, tx.init(params)))
  state, _ = _block(jax_step(state, xj))
  _block(jax_forward(params, batch_stats, xj))

  # -- PyTorch --------------------------------------------------------------
  import torch
  torch.manual_seed(0)
  torch.set_num_threads(spec["torch_threads"])
  net = _torch_resnet18(hidden, out)
  opt = torch.optim.SGD(net.parameters(), lr=lr, momentum=0.9)
  xt = torch.from_numpy(np.ascontiguousarray(x_nhwc.transpose(0, 3, 1, 2)))
  net.train()

  def torch_step():
    opt.zero_grad(set_to_none=True)
    loss = _torch_ntxent(net(xt), tau)
    loss.backward()
    opt.step()
    return loss.item()

  def torch_forward():
    with torch.no_grad():
      return net(xt)

  torch_step()
  torch_forward()

  def timed(fn):
    fn()   # The second of two calls: steady state, own cleanup only.
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0

  box = {"state": state}

  def jax_call():
    box["state"], loss = jax_step(box["state"], xj)
    _block(loss)

  def jax_fwd_call():
    _block(jax_forward(params, batch_stats, xj))

  full = None
  if spec.get("train_step"):
    # The library's own step on the same model size: the ResNet-18 loop
    # config at this batch (SimCLR views made on device, every monitored
    # loss), to show what the step adds to the matched computation.
    pieces = _Pieces(_loop_config("resnet18", b, 50, 10 ** 6))
    full = {"state": pieces.init_state(),
            "batch": pieces.to_device(next(pieces.data))}
    full["state"], _ = _block(pieces.step_fn(full["state"], full["batch"]))

    def full_call():
      full["state"], metrics = pieces.step_fn(full["state"], full["batch"])
      _block(metrics)

  records = []
  for _ in range(rounds):
    rec = {"jax_step_s": timed(jax_call), "torch_step_s": timed(torch_step),
           "jax_forward_s": timed(jax_fwd_call),
           "torch_forward_s": timed(torch_forward),
           "loadavg": os.getloadavg()[0]}
    if full is not None:
      rec["train_step_s"] = timed(full_call)
      rec["train_step_ratio"] = rec["train_step_s"] / rec["torch_step_s"]
    rec["ratio"] = rec["jax_step_s"] / rec["torch_step_s"]
    rec["forward_ratio"] = rec["jax_forward_s"] / rec["torch_forward_s"]
    records.append(rec)
  return {"variant": spec["variant"], "xla_flags": os.environ.get(
      "XLA_FLAGS", ""), "dtype": dtype, "batch": b,
      "torch_threads": spec["torch_threads"],
      "torch": torch.__version__, "torch_mkldnn":
      bool(torch.backends.mkldnn.is_available()),
      "compile_s": compile_s, "xla_temp_mb": temp_mb, "loss0": float(loss0),
      "fusion_kinds": fusion_kinds, "convolutions": num_convs,
      "rounds": records,
      **{k: _summary([r[k] for r in records if k in r]) for k in (
          "ratio", "forward_ratio", "jax_step_s", "torch_step_s",
          "jax_forward_s", "torch_forward_s", "train_step_s",
          "train_step_ratio")}, **_memory()}


def child_compile(spec: dict) -> dict:
  """Lowering + compile time of one preset's train step (batch reduced)."""
  import tensorflow_datasets as tfds
  from cljax.data import sources
  config = _experiment(spec["experiment"], spec.get("preset", ""))
  out = {"experiment": spec["experiment"], "preset": spec.get("preset", ""),
         "mode": config.get("mode", "train")}
  if out["mode"] != "train":
    out["skipped"] = (f"config.mode={out['mode']!r}: no encoder train step "
                      f"(free features, cljax.unconstrained)")
    return out
  with config.unlocked():
    out["paper_batch"] = int(config.data.batch_size)
    config.data.batch_size = spec["batch"]
    # Host-side only: the compiled step does not depend on the sampler, and
    # "balanced" would need a batch divisible by the classes.
    config.data.sampler = "shuffle"
  name = config.data.name.split("/")[0].split(":")[0]
  mock = (contextlib.nullcontext() if name in sources.EMBEDDED else
          tfds.testing.mock_data(num_examples=max(64, 2 * spec["batch"])))
  times = {}
  import jax
  with mock:
    pieces = _Pieces(config)
    batch = pieces.to_device(next(pieces.data))
  state = pieces.init_state()
  t0 = time.perf_counter()
  lowered = pieces.step_fn.lower(state, batch)
  times["lower_s"] = time.perf_counter() - t0
  t0 = time.perf_counter()
  compiled = lowered.compile()
  times["compile_s"] = time.perf_counter() - t0
  t0 = time.perf_counter()
  _, metrics = _block(compiled(state, batch))
  times["first_step_s"] = time.perf_counter() - t0
  # For comparing XLA flag variants: the same step must give the same loss.
  times["first_loss"] = float(metrics["train/loss"])
  times["first_grad_norm"] = float(metrics["train/grad_norm"])
  from cljax import models
  c = pieces.config
  out.update(times)
  out.update({
      "dataset": c.data.name, "input_shape": list(pieces.data.input_shape),
      "encoder": c.model.encoder, "encoder_kwargs": dict(
          c.model.get("encoder_kwargs", {})), "head": c.model.get("head"),
      "loss": c.loss.name, "num_views": int(c.data.num_views),
      "batch": spec["batch"], "dtype": c.model.get("dtype", "float32"),
      "params": models.param_count(state["params"]),
      "xla_temp_mb": compiled.memory_analysis().temp_size_in_bytes / 2 ** 20,
      "devices": jax.device_count(), **_memory()})
  return out


class _Clock:
  """Self time of nested regions; jax's compile events are charged to
  "compile" and taken out of the region that was open."""

  def __init__(self):
    self.totals = {}
    self.parts = {}
    self.stack = []

  def wrap(self, owner, attr: str, category: str) -> bool:
    fn = getattr(owner, attr, None)
    if fn is None:
      return False
    clock = self

    @functools.wraps(fn)
    def wrapped(*args, **kwargs):
      clock.stack.append([category, time.perf_counter(), 0.0])
      try:
        return fn(*args, **kwargs)
      finally:
        cat, t0, inner = clock.stack.pop()
        elapsed = time.perf_counter() - t0
        clock.add(cat, elapsed - inner)
        if clock.stack:
          clock.stack[-1][2] += elapsed

    setattr(owner, attr, wrapped)
    return True

  def add(self, category: str, seconds: float) -> None:
    self.totals[category] = self.totals.get(category, 0.0) + seconds

  def on_event(self, event: str, seconds: float, **kwargs) -> None:
    del kwargs
    if event in _COMPILE_EVENTS:
      self.add("compile", seconds)
      # The parts apart: a persistent-cache hit saves only the backend part
      # (its retrieval is timed inside it); tracing and lowering remain.
      key = _COMPILE_EVENTS[event]
      self.parts[key] = self.parts.get(key, 0.0) + seconds
      if self.stack:
        self.stack[-1][2] += seconds


# jax's compile events (jax._src.dispatch) -> the part of compiling they time.
_COMPILE_EVENTS = {"/jax/core/compile/jaxpr_trace_duration": "trace",
                   "/jax/core/compile/jaxpr_to_mlir_module_duration": "lower",
                   "/jax/core/compile/backend_compile_duration": "backend"}


class _CacheProbe:
  """Counts and names the persistent compilation cache's hits and misses.

  jax (``_src/compiler.py``) records ``/jax/compilation_cache/
  compile_requests_use_cache`` for every backend compile that consults the
  cache, ``.../cache_hits`` (with ``cache_retrieval_time_sec`` and
  ``compile_time_saved_sec``) for each program read from it, and
  ``.../cache_misses`` only when a compiled program is *written*; so
  requests - hits counts every miss, and that minus the written ones the
  programs compiled but not stored. (With no cache directory jax still
  computes each key and counts a request; it reads and writes nothing.)
  The program names come from jax's own
  log lines for hits, misses and skipped writes (logged at DEBUG unless
  ``jax_log_compiles`` / ``jax_explain_cache_misses``): a filter on those
  loggers takes them down and lets through only what would have been
  printed anyway.
  """

  _LOGGERS = ("jax._src.compiler", "jax._src.compilation_cache")

  def __init__(self):
    import logging
    import jax
    self.counts = {}
    self.seconds = {}
    self.names = {"hit": [], "miss": [], "not_written": []}
    jax.monitoring.register_event_listener(self._on_event)
    jax.monitoring.register_event_duration_secs_listener(self._on_duration)
    for name in self._LOGGERS:
      logger = logging.getLogger(name)
      # What the logger would have printed without us.
      threshold = logger.getEffectiveLevel()
      logger.addFilter(functools.partial(self._on_record, threshold))
      logger.setLevel(logging.DEBUG)

  def _on_event(self, event: str, **kwargs) -> None:
    del kwargs
    if event.startswith("/jax/compilation_cache/"):
      key = event.rsplit("/", 1)[1]
      self.counts[key] = self.counts.get(key, 0) + 1

  def _on_duration(self, event: str, seconds: float, **kwargs) -> None:
    del kwargs
    if event.startswith("/jax/compilation_cache/"):
      key = event.rsplit("/", 1)[1]
      self.seconds[key] = self.seconds.get(key, 0.0) + seconds

  def _on_record(self, threshold: int, record) -> bool:
    message = record.msg if isinstance(record.msg, str) else ""
    args = record.args if isinstance(record.args, tuple) else ()
    if args:
      if message.startswith("Persistent compilation cache hit for"):
        self.names["hit"].append(str(args[0]))
      elif message.startswith("PERSISTENT COMPILATION CACHE MISS for"):
        self.names["miss"].append(str(args[0]))
      elif message.startswith("Not writing persistent cache entry for"):
        # The reason is the rest of jax's message (host callbacks, time).
        self.names["not_written"].append(
            record.getMessage().split(" for ", 1)[-1])
    return record.levelno >= threshold

  def snapshot(self) -> dict:
    requests = self.counts.get("compile_requests_use_cache", 0)
    hits = self.counts.get("cache_hits", 0)
    written = self.counts.get("cache_misses", 0)
    return {"requests": requests, "hits": hits, "misses": requests - hits,
            "written": written,
            "retrieval_s": self.seconds.get("cache_retrieval_time_sec", 0.0),
            "saved_s": self.seconds.get("compile_time_saved_sec", 0.0),
            "names": {k: list(v) for k, v in self.names.items()}}

  @staticmethod
  def compact(snap: dict) -> dict:
    """For the record: counts per program name; hits' names left out."""
    import collections
    out = {k: v for k, v in snap.items() if k != "names"}
    for kind in ("miss", "not_written"):
      out[kind + "_names"] = dict(collections.Counter(snap["names"][kind]))
    return out

  @staticmethod
  def delta(after: dict, before: dict) -> dict:
    out = {k: after[k] - before[k] for k in after if k != "names"}
    out["names"] = {k: v[len(before["names"][k]):]
                    for k, v in after["names"].items()}
    return out


def child_main(spec: dict) -> dict:
  """The README main job in this process, its time split by region.

  ``cljax.main.main`` turns the persistent compilation cache on from
  ``CLJAX_COMPILATION_CACHE`` (the parent sets it: ``off`` for cold-compile
  numbers, a directory for the cache section).
  """
  t_start = time.perf_counter()
  import jax
  from absl import flags
  clock = _Clock()
  jax.monitoring.register_event_duration_secs_listener(clock.on_event)
  probe = _CacheProbe()
  from cljax.analysis import checkpoints
  from cljax.training import checkpoint as ckpt_lib
  from cljax import main as cljax_main
  from cljax.training import cli
  from cljax.training import evaluators
  from cljax.analysis import plots
  t_import = time.perf_counter() - t_start
  wrapped = []
  for owner, attr, cat in (
      (evaluators.Runner, "run", "evaluate"),
      (plots, "training_curves", "plot"),
      (ckpt_lib.Manager, "save", "checkpoint"),
      (ckpt_lib.Manager, "wait", "checkpoint"),
      (ckpt_lib.Manager, "close", "checkpoint"),
      (ckpt_lib.Manager, "__init__", "checkpoint"),
      (ckpt_lib.Manager, "restore", "checkpoint")):
    if clock.wrap(owner, attr, cat):
      wrapped.append(f"{getattr(owner, '__name__', owner)}.{attr}")
  argv = ["cljax.main", "--config=" + str(
      REPO / "experiments" / spec.get("config", "default.py")),
          f"--workdir={spec['workdir']}"]
  flags.FLAGS(argv)
  config = cli.CONFIG.value
  for dotted, value in spec.get("overrides", {}).items():  # Quick runs.
    *parents, leaf = dotted.split(".")
    node = config
    for name in parents:
      node = node[name]
    node[leaf] = value
  t0 = time.perf_counter()
  cljax_main.main([argv[0]])
  t_job = time.perf_counter() - t0
  split = dict(clock.totals)
  split["other"] = t_job - sum(split.values())
  rows = checkpoints.read_metrics(spec["workdir"])
  return {"job_s": t_job, "import_s": t_import, "split_s": split,
          "compile_parts_s": dict(clock.parts),
          "cache": _CacheProbe.compact(probe.snapshot()),
          "cache_setting": os.environ.get("CLJAX_COMPILATION_CACHE"),
          "cache_dir": jax.config.jax_compilation_cache_dir,
          "wrapped": wrapped, "steps": rows[-1]["step"] if rows else None,
          **_memory()}


def child_sweep(spec: dict) -> dict:
  """``python -m cljax.sweep`` in this process, compile time per point.

  Every point runs in this one process, as the command runs them: a point
  after the first finds most of its programs in jax's in-memory caches
  (with or without the persistent cache) and asks the backend only for the
  programs those do not hold (per point: compile requests, hits, misses,
  and the names of the programs it compiled).
  """
  t_start = time.perf_counter()
  import jax
  from absl import flags
  clock = _Clock()
  jax.monitoring.register_event_duration_secs_listener(clock.on_event)
  probe = _CacheProbe()
  from cljax.training import cli
  from cljax import sweep
  t_import = time.perf_counter() - t_start
  argv = ["cljax.sweep", f"--config={REPO / 'experiments' / spec['config']}",
          f"--sweep_dir={spec['sweep_dir']}",
          *[f"--grid={g}" for g in spec["grid"]]]
  if spec.get("seeds"):
    argv.append(f"--seeds={spec['seeds']}")
  sys.argv = argv   # cljax.sweep.main reads --config from sys.argv.
  flags.FLAGS(argv)
  points = []
  driver = cli.MODES["train"]

  def timed_driver(config, workdir, **kwargs):
    compile0, cache0 = clock.totals.get("compile", 0.0), probe.snapshot()
    parts0 = dict(clock.parts)
    t0 = time.perf_counter()
    try:
      return driver(config, workdir, **kwargs)
    finally:
      points.append({
          "workdir": os.path.basename(workdir),
          "wall_s": time.perf_counter() - t0,
          "compile_s": clock.totals.get("compile", 0.0) - compile0,
          "compile_parts_s": {k: v - parts0.get(k, 0.0)
                              for k, v in clock.parts.items()},
          "cache": _CacheProbe.compact(
              _CacheProbe.delta(probe.snapshot(), cache0))})

  cli.MODES["train"] = timed_driver   # The sweep looks it up per point.
  t0 = time.perf_counter()
  sweep.main([argv[0]])
  t_sweep = time.perf_counter() - t0
  return {"sweep_s": t_sweep, "import_s": t_import,
          "compile_s": clock.totals.get("compile", 0.0),
          "compile_parts_s": dict(clock.parts), "points": points,
          "cache": _CacheProbe.compact(probe.snapshot()),
          "cache_setting": os.environ.get("CLJAX_COMPILATION_CACHE"),
          "cache_dir": jax.config.jax_compilation_cache_dir, **_memory()}


CHILDREN = {"loop": child_loop, "input": child_input, "torch": child_torch,
            "compile": child_compile, "main": child_main,
            "sweep": child_sweep}


def run_child(argv: list[str]) -> None:
  name, spec = argv[0], json.loads(argv[1])
  result = CHILDREN[name](spec)
  print(RESULT_TAG + json.dumps(result), flush=True)


# ---------------------------------------------------------------------------
# Parent.
# ---------------------------------------------------------------------------

def _spawn(name: str, spec: dict, *, env_extra: dict | None = None,
           timeout: float = 3600) -> dict:
  env = dict(os.environ)
  env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
  env.pop("XLA_FLAGS", None)
  env.update(env_extra or {})
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
      out = json.loads(line[len(RESULT_TAG):])
      out.update(spec=spec, wall_s=wall, xla_flags_env=env.get("XLA_FLAGS"))
      if name == "main":
        out["stdout_tail"] = [l for l in proc.stdout.splitlines()
                              if not l.startswith(RESULT_TAG)][-8:]
      return out
  return {"spec": spec, "wall_s": wall,
          "failed": (proc.stderr.strip().splitlines() or ["?"])[-1][:300]}


def section_loop(args) -> list[dict]:
  out = []
  for model, batch, rounds in (("convnet", args.convnet_batch, args.rounds),
                               ("resnet18", args.resnet_batch,
                                args.resnet_rounds)):
    if model not in args.loop_models:
      continue
    out.append(_spawn("loop", {"model": model, "batch": batch,
                               "log_every": args.log_every,
                               "rounds": rounds}))
    _progress("loop", out[-1])
  return out


def section_input(args) -> list[dict]:
  out = []
  # None = the data config's default (2 batches in flight); 1 = no batch
  # ahead of the one the step consumes (the smallest the config allows).
  prefetch = [None]
  probe = _spawn_probe_prefetch()
  if probe:
    prefetch += [1, 4]
  for model, batch in (("convnet", args.convnet_batch),
                       ("resnet18", args.resnet_batch)):
    for pf in prefetch:
      out.append(_spawn("input", {"model": model, "batch": batch,
                                  "prefetch": pf, "rounds": args.rounds,
                                  "batches": 10 if model == "resnet18"
                                  else 40}))
      _progress("input", out[-1])
  return out


def _spawn_probe_prefetch() -> bool:
  env = dict(os.environ, PYTHONPATH=str(REPO))
  proc = subprocess.run(
      [sys.executable, "-c", "from cljax import data; "
       "print('prefetch' in data.default_config())"],
      env=env, capture_output=True, text=True, cwd=str(REPO))
  return proc.stdout.strip().endswith("True")


def section_torch(args) -> list[dict]:
  out = []
  # Kept between runs, so a rerun of some variants still compares with the
  # default's gradients.
  outdir = os.path.join(tempfile.gettempdir(), "cljax_loop_grads")
  os.makedirs(outdir, exist_ok=True)
  for variant in args.flags:
    flags = FLAG_VARIANTS[variant]
    rec = _spawn("torch", {"variant": variant, "batch": args.torch_batch,
                           "rounds": args.torch_rounds,
                           "torch_threads": args.torch_threads,
                           "train_step": variant == "default",
                           "outdir": outdir},
                 env_extra={"XLA_FLAGS": flags} if flags else None)
    _compare_grads(rec, outdir)
    out.append(rec)
    _progress("torch", rec)
  return out


def _compare_grads(rec: dict, outdir: str) -> None:
  import numpy as np
  ref = os.path.join(outdir, "grads_default.npy")
  mine = os.path.join(outdir, f"grads_{rec['spec']['variant']}.npy")
  if "failed" in rec or not (os.path.exists(ref) and os.path.exists(mine)):
    return
  g0, g = np.load(ref), np.load(mine)
  rec["grad_max_rel_diff"] = float(np.max(np.abs(g - g0)) /
                                   max(np.max(np.abs(g0)), 1e-30))
  rec["grad_cosine"] = float(g @ g0 / max(np.linalg.norm(g) *
                                          np.linalg.norm(g0), 1e-30))
  rec["grads_identical"] = bool(np.array_equal(g, g0))


# Paper-scale presets besides the files' defaults (P1's other datasets).
EXTRA_COMPILE_PRESETS = (("luthra/cl_vs_nscl", "cifar10"),
                         ("luthra/cl_vs_nscl", "mini_imagenet"))


def section_compile(args) -> list[dict]:
  out = []
  # Every config: default.py and each paper's folder (luthra/cl_vs_nscl, ...).
  names = sorted(p.relative_to(REPO / "experiments").with_suffix("").as_posix()
                 for p in (REPO / "experiments").rglob("*.py")
                 if p.stem != "__init__")
  cases = [(name, "") for name in names] + list(EXTRA_COMPILE_PRESETS)
  if args.compile_cases:
    cases = [tuple((c + ":").split(":")[:2]) for c in args.compile_cases]
  for name, preset in cases:
    out.append(_spawn("compile", {"experiment": name, "preset": preset,
                                  "batch": args.compile_batch},
                      timeout=1800))
    _progress("compile", out[-1])
  return out


CACHE_ENV = "CLJAX_COMPILATION_CACHE"   # cljax.training.compile_cache.ENV


def section_main(args) -> list[dict]:
  out = []
  for _ in range(args.main_rounds):
    with tempfile.TemporaryDirectory() as workdir:
      # Cold-compile numbers: cljax.main would otherwise read (and fill) the
      # user's persistent cache, and a second run would time cache reads.
      out.append(_spawn("main", {"workdir": workdir},
                        env_extra={CACHE_ENV: "off"}))
    _progress("main", out[-1])
  return out


def _cache_files(directory: str) -> dict:
  """Entries (files) and bytes under a persistent cache directory."""
  files = [p for p in Path(directory).rglob("*") if p.is_file()]
  return {"files": len(files), "mb": sum(p.stat().st_size for p in files)
          / 2 ** 20}


def section_cache(args) -> list[dict]:
  """The persistent compilation cache against the cache off, per round.

  Each round has its own fresh cache directories (deleted after it), so
  every round measures the same thing: the main job with the cache off,
  with an empty cache (the cold run fills it) and again with the filled
  cache (warm); then the sweep with the cache off and with an empty cache
  (its first point fills it, the other points read what they share).
  """
  out = []
  for r in range(args.cache_rounds):
    rec = {"round": r, "loadavg_start": list(os.getloadavg())}
    with tempfile.TemporaryDirectory(prefix="cljax_loop_cache_") as root:
      main_cache = os.path.join(root, "main")
      sweep_cache = os.path.join(root, "sweep")
      for label, setting in (("off", "off"), ("cold", main_cache),
                             ("warm", main_cache)):
        with tempfile.TemporaryDirectory() as workdir:
          res = _spawn("main", {"workdir": workdir,
                                "config": args.cache_main_config},
                       env_extra={CACHE_ENV: setting})
        if setting != "off":
          res["cache_files"] = _cache_files(setting)
        res["loadavg_end"] = os.getloadavg()[0]
        rec[f"main_{label}"] = res
        _progress(f"cache main {label}", res)
      for label, setting in (("off", "off"), ("cache", sweep_cache)):
        with tempfile.TemporaryDirectory() as sweep_dir:
          res = _spawn("sweep", {"sweep_dir": sweep_dir,
                                 "config": args.cache_sweep_config,
                                 "grid": args.cache_sweep_grid,
                                 "seeds": args.cache_sweep_seeds},
                       env_extra={CACHE_ENV: setting})
        if setting != "off":
          res["cache_files"] = _cache_files(setting)
        res["loadavg_end"] = os.getloadavg()[0]
        rec[f"sweep_{label}"] = res
        _progress(f"cache sweep {label}", res)
    ok = lambda *keys: all("failed" not in rec[k] for k in keys)  # noqa: E731
    if ok("main_off", "main_cold", "main_warm"):
      off = rec["main_off"]
      for label in ("cold", "warm"):
        run = rec[f"main_{label}"]
        rec[f"main_{label}_over_off"] = run["job_s"] / off["job_s"]
        rec[f"main_{label}_compile_over_off"] = (
            run["split_s"].get("compile", 0.0) /
            max(off["split_s"].get("compile", 0.0), 1e-9))
    if ok("sweep_off", "sweep_cache"):
      off, on = rec["sweep_off"], rec["sweep_cache"]
      rec["sweep_over_off"] = on["sweep_s"] / off["sweep_s"]
      rec["sweep_compile_over_off"] = on["compile_s"] / off["compile_s"]
    out.append(rec)
  return out


SECTIONS = {"loop": section_loop, "input": section_input,
            "torch": section_torch, "compile": section_compile,
            "main": section_main, "cache": section_cache}


# What identifies a record of each section: a rerun of some cases replaces
# those and keeps the rest.
_RECORD_KEY = {"loop": ("model",), "input": ("model", "prefetch"),
               "torch": ("variant",), "compile": ("experiment", "preset"),
               "main": (), "cache": ()}


def _merge(section: str, old: dict | None, new: list[dict]) -> list[dict]:
  fields = _RECORD_KEY[section]
  if not fields or not old:
    return new
  # A field missing from an older record's spec reads as "" (its default).
  key = lambda r: tuple(r["spec"].get(f, "") for f in fields)  # noqa: E731
  replaced = {key(r) for r in new}
  return [r for r in old["records"] if key(r) not in replaced] + new


def _progress(section: str, rec: dict) -> None:
  brief = {k: v for k, v in rec.items()
           if k not in ("rounds", "spec", "stdout_tail")}
  print(f"[{section}] {json.dumps(brief)[:400]}", flush=True)


def _environment() -> dict:
  import jax
  import jaxlib
  env = {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(
      timespec="seconds"), "python": platform.python_version(),
         "jax": jax.__version__, "jaxlib": jaxlib.__version__,
         "cpu_count": os.cpu_count(), "loadavg_start": os.getloadavg(),
         "platform": platform.platform()}
  try:
    env["git_head"] = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True,
        text=True, cwd=str(REPO)).stdout.strip()
  except OSError:
    pass
  try:
    with open("/proc/cpuinfo") as f:
      env["cpu"] = next(l.split(":", 1)[1].strip() for l in f
                        if l.startswith("model name"))
  except (OSError, StopIteration):
    pass
  for var in ("XLA_FLAGS", "OMP_NUM_THREADS", "MKL_NUM_THREADS",
              "JAX_COMPILATION_CACHE_DIR"):
    env[var] = os.environ.get(var)
  return env


def main() -> None:
  if len(sys.argv) > 1 and sys.argv[1] == "--child":
    run_child(sys.argv[2:])
    return
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--sections", nargs="+", default=list(SECTIONS),
                      choices=list(SECTIONS))
  parser.add_argument("--quick", action="store_true",
                      help="1 round each, log_every 10, fewer flag variants")
  parser.add_argument("--rounds", type=int, default=3)
  parser.add_argument("--log_every", type=int, default=50)
  parser.add_argument("--convnet_batch", type=int, default=128,
                      help="the default job's batch")
  parser.add_argument("--resnet_batch", type=int, default=8)
  parser.add_argument("--loop_models", nargs="+",
                      default=["convnet", "resnet18"],
                      choices=["convnet", "resnet18"],
                      help="the models of the loop section (others kept)")
  parser.add_argument("--resnet_rounds", type=int, default=1)
  parser.add_argument("--torch_batch", type=int, default=32)
  parser.add_argument("--torch_rounds", type=int, default=5)
  parser.add_argument("--torch_threads", type=int, default=TORCH_THREADS)
  parser.add_argument("--flags", nargs="+", default=list(FLAG_VARIANTS),
                      choices=list(FLAG_VARIANTS))
  parser.add_argument("--compile_batch", type=int, default=16)
  parser.add_argument("--compile_cases", nargs="+", default=None,
                      help="experiment[:preset] cases of the compile section "
                      "(default: every file's default and "
                      "EXTRA_COMPILE_PRESETS); the others' rows are kept")
  parser.add_argument("--main_rounds", type=int, default=1)
  parser.add_argument("--cache_rounds", type=int, default=2)
  parser.add_argument("--cache_main_config", default="default.py",
                      help="experiments/ file[:preset] of the cache "
                      "section's main job")
  parser.add_argument("--cache_sweep_config", default="default.py:smoke")
  parser.add_argument("--cache_sweep_grid", nargs="+",
                      default=["loss.kwargs.temperature=[0.1,0.2,0.5]"],
                      help="--grid values of the cache section's sweep")
  parser.add_argument("--cache_sweep_seeds", default="2",
                      help="--seeds of the cache section's sweep")
  parser.add_argument("--json", default=str(HERE / "loop.json"))
  parser.add_argument("--out", default=str(HERE / "LOOP.md"))
  parser.add_argument("--render", action="store_true",
                      help="only rewrite --out from --json")
  args = parser.parse_args()
  if args.quick:
    args.rounds = args.resnet_rounds = 1
    args.log_every = 10
    args.torch_rounds = 2
    args.torch_batch = 8
    args.flags = ["default", "onednn"]
    args.cache_rounds = 1
  results = {}
  if os.path.exists(args.json):
    with open(args.json) as f:
      results = json.load(f)
  if not args.render:
    for section in args.sections:
      env = _environment()
      t0 = time.perf_counter()
      records = SECTIONS[section](args)
      # Re-read first: another run may have written other sections.
      if os.path.exists(args.json):
        with open(args.json) as f:
          results = json.load(f)
      results[section] = {"environment": env, "args": vars(args),
                          "seconds": time.perf_counter() - t0,
                          "records": _merge(section, results.get(section),
                                            records)}
      with open(args.json, "w") as f:
        json.dump(results, f, indent=1)
      render(results, args.out)
  render(results, args.out)


# ---------------------------------------------------------------------------
# LOOP.md
# ---------------------------------------------------------------------------

def _fmt(s: dict | None, scale: float = 1.0, digits: int = 3) -> str:
  if not s:
    return "n/a"
  return (f"{s['median'] * scale:.{digits}f} "
          f"[{s['min'] * scale:.{digits}f}, {s['max'] * scale:.{digits}f}]")


def _env_line(env: dict) -> str:
  return (f"{env.get('date')}, git {env.get('git_head')}, jax "
          f"{env.get('jax')}, {env.get('cpu_count')} CPUs "
          f"({env.get('cpu', '?')}), load average at start "
          f"{env.get('loadavg_start', ['?'])[0]:.2f}")


def render(results: dict, path: str) -> None:
  old = Path(path).read_text() if os.path.exists(path) else ""
  marker = "<!-- findings: hand-written, kept by --render -->"
  findings = old.split(marker, 1)[1] if marker in old else (
      "\n## Findings\n\n(none yet)\n")
  # A hand-written note (a "> " quote, e.g. which tables are stale) between
  # the title and the generated text is kept too.
  head = old.split(marker, 1)[0].split("\nGenerated by ", 1)[0]
  note = [line for line in head.splitlines() if line.startswith(">")]
  lines = ["# Loop benchmark (`benchmarks/loop.py`)", ""] + (
      note + [""] if note else []) + [
           "Generated by `python benchmarks/loop.py` from "
           "`benchmarks/loop.json`; the cells are median [min, max] over "
           "rounds, ratios formed per round in one process. No GPU was "
           "available to this session: images/s and MFU of ResNet-18 CIFAR "
           "SimCLR at global batch 512, and the GPU tile size of the tiled "
           "losses, are **not measured** here (`benchmarks/gpu.py` measures "
           "them on a GPU: [`GPU.md`](GPU.md)).", ""]
  sec = results.get("loop")
  if sec:
    lines += ["## Loop vs bare jitted step", "", _env_line(sec["environment"]),
              "", "| model | batch | log_every | loop s/step | bare s/step | "
              "loop / bare | rounds | loop run total s | peak RSS MB |",
              "|---|---|---|---|---|---|---|---|---|"]
    for r in sec["records"]:
      if "failed" in r:
        lines.append(f"| {r['spec']['model']} | | | failed: {r['failed']} "
                     f"| | | | | |")
        continue
      lines.append(
          f"| {r['model']} | {r['batch']} | {r['log_every']} | "
          f"{_fmt(r['loop_step_s'], digits=4)} | "
          f"{_fmt(r['bare_step_s'], digits=4)} | {_fmt(r['ratio'])} | "
          f"{len(r['rounds'])} | "
          f"{statistics.median(x['loop_total_s'] for x in r['rounds']):.1f}"
          f" | {r['peak_rss_mb']:.0f} |")
    lines += [""]
  sec = results.get("input")
  if sec:
    lines += ["## Host input per batch and overlap with the step", "",
              _env_line(sec["environment"]), "",
              "`next` = `next(pipeline)`, transfer = "
              "the loop's `to_global` (blocked; `jax.device_put` in one "
              "process), input = both; overlapped = input + step "
              "dispatched without blocking; hidden = (input + step - "
              "overlapped) / input (1: fully hidden, 0: serial).", "",
              "| model | batch | prefetch | next ms | transfer ms | input ms "
              "| step ms | input / step | overlapped ms | hidden |",
              "|---|---|---|---|---|---|---|---|---|---|"]
    for r in sec["records"]:
      if "failed" in r:
        lines.append(f"| {r['spec']['model']} | | {r['spec'].get('prefetch')}"
                     f" | failed: {r['failed']} | | | | | |")
        continue
      lines.append(
          f"| {r['model']} | {r['batch']} | {r['prefetch']} | "
          f"{_fmt(r['next_s'], 1e3, 2)} | {_fmt(r['transfer_s'], 1e3, 2)} | "
          f"{_fmt(r['input_s'], 1e3, 2)} | {_fmt(r['step_s'], 1e3, 1)} | "
          f"{_fmt(r.get('input_share'), 1, 3)} | "
          f"{_fmt(r['overlapped_s'], 1e3, 1)} | {_fmt(r['hidden'], 1, 2)} |")
    lines += [""]
  sec = results.get("torch")
  if sec:
    lines += ["## ResNet-18 contrastive step: cljax/JAX vs plain PyTorch", "",
              _env_line(sec["environment"]), "",
              "ResNet-18 (CIFAR stem) + MLP head 512-512-128, NT-Xent "
              "(tau 0.5), SGD momentum 0.9, on the same float32 "
              "[2B, 32, 32, 3] views (PyTorch NCHW, its default). JAX "
              "step: `jit(value_and_grad)` + optax update, donated state. "
              "ratio = JAX / PyTorch per round; grads vs default = max "
              "|g - g_default| / max |g_default| of the first gradient.", "",
              "| variant | XLA_FLAGS | B | JAX step s | PyTorch step s | "
              "step ratio | forward ratio | grads vs default | JAX compile s "
              "| XLA temp MB | peak RSS MB |",
              "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in sec["records"]:
      if "failed" in r:
        lines.append(f"| {r['spec']['variant']} | | | failed: {r['failed']} "
                     f"| | | | | | | |")
        continue
      grads = ("identical" if r.get("grads_identical") else
               f"{r['grad_max_rel_diff']:.1e}" if "grad_max_rel_diff" in r
               else "n/a")
      lines.append(
          f"| {r['variant']} ({r['dtype']}) | `{r['xla_flags'] or '-'}` | "
          f"{r['batch']} | {_fmt(r['jax_step_s'], digits=2)} | "
          f"{_fmt(r['torch_step_s'], digits=2)} | {_fmt(r['ratio'], digits=2)}"
          f" | {_fmt(r['forward_ratio'], digits=2)} | {grads} | "
          f"{r['compile_s']:.1f} | {r['xla_temp_mb']:.0f} | "
          f"{r['peak_rss_mb']:.0f} |")
    kinds = [f"{r['variant']}: {r['convolutions']} convolutions, fusions "
             f"{r['fusion_kinds']}" for r in sec["records"]
             if "fusion_kinds" in r]
    if kinds:
      lines += ["", "Compiled step, per variant: " + "; ".join(kinds) + "."]
    for r in sec["records"]:
      if r.get("train_step_s"):
        lines += ["", f"The library's own `cljax.training.train_step.train_step` for the "
                  f"ResNet-18 loop config at batch {r['batch']} (SimCLR views "
                  f"made on device, NSCL + every monitored loss; variant "
                  f"{r['variant']}): {_fmt(r['train_step_s'], digits=2)} s, "
                  f"{_fmt(r['train_step_ratio'], digits=2)} x PyTorch's "
                  f"matched step in the same rounds."]
    torch_v = next((r.get("torch") for r in sec["records"] if "torch" in r),
                   "?")
    lines += ["", f"PyTorch {torch_v}, "
              f"{sec['args'].get('torch_threads')} intra-op threads.", ""]
  sec = results.get("compile")
  if sec:
    lines += ["## Compile time of each preset's train step", "",
              _env_line(sec["environment"]), "",
              "Default preset of every `experiments/**/*.py` and P1's "
              "CIFAR-10 and mini-ImageNet presets, batch reduced to "
              f"{sec['args'].get('compile_batch')} (sampler set to shuffle: "
              "host side only), data of the real shapes (stock TFDS "
              "datasets mocked). lower = trace + lower to StableHLO.", "",
              "| experiment | dataset | input | encoder | loss | paper batch "
              "| lower s | compile s | first step s | params | peak RSS MB |",
              "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in sec["records"]:
      name = r.get("experiment", r["spec"]["experiment"])
      if r["spec"].get("preset"):
        name += f":{r['spec']['preset']}"
      if "failed" in r:
        lines.append(f"| {name} | failed: {r['failed']} |||||||||")
      elif "skipped" in r:
        lines.append(f"| {name} | skipped: {r['skipped']} |||||||||")
      else:
        kw = ",".join(f"{k}={v}" for k, v in r["encoder_kwargs"].items())
        lines.append(
            f"| {name} | {r['dataset']} | {'x'.join(map(str, r['input_shape']))}"
            f" x{r['num_views']} | {r['encoder']}({kw}) + {r['head']} | "
            f"{r['loss']} | {r['paper_batch']} | {r['lower_s']:.1f} | "
            f"{r['compile_s']:.1f} | {r['first_step_s']:.1f} | "
            f"{r['params']:,} | {r['peak_rss_mb']:.0f} |")
    lines += [""]
  sec = results.get("main")
  if sec:
    lines += ["## README main job end to end", "",
              _env_line(sec["environment"]), "",
              "`python -m cljax.main --config=experiments/default.py "
              "--workdir=...` run in one process (`cljax.main.main`) with "
              "the persistent compilation cache off "
              "(`CLJAX_COMPILATION_CACHE=off`): cold-compile numbers, as a "
              "first run on a machine has (the cache's effect is the next "
              "section); "
              "wall = the process incl. interpreter start; compile = jax's "
              "trace + lower + backend-compile events; evaluate / "
              "checkpoint / plot = self time of the wrapped functions; "
              "other = stepping (incl. host input and per-step logging), "
              "set-up and data.", "",
              "| wall s | import s | job s | compile | evaluate | checkpoint "
              "| plot | other (steps, set-up) | peak RSS MB |",
              "|---|---|---|---|---|---|---|---|---|"]
    for r in sec["records"]:
      if "failed" in r:
        lines.append(f"| failed: {r['failed']} |||||||||")
        continue
      s = r["split_s"]
      lines.append(
          f"| {r['wall_s']:.1f} | {r['import_s']:.1f} | {r['job_s']:.1f} | "
          + " | ".join(f"{s.get(k, 0.0):.1f}" for k in (
              "compile", "evaluate", "checkpoint", "plot", "other"))
          + f" | {r['peak_rss_mb']:.0f} |")
    last = sec["records"][-1]
    if "stdout_tail" in last:
      lines += ["", "Printed summary of the last run:", "", "```"] + [
          l for l in last["stdout_tail"] if l.strip()] + ["```"]
    lines += [""]
  sec = results.get("cache")
  if sec:
    lines += _render_cache(sec)
  Path(path).write_text("\n".join(lines) + "\n" + marker + findings)


def _names(counts: dict) -> str:
  return ", ".join(f"`{k}`" + (f" x{v}" if v > 1 else "")
                   for k, v in sorted(counts.items())) or "none"


def _render_cache(sec: dict) -> list[str]:
  a = sec["args"]
  grid = " ".join(f"--grid={g}" for g in a.get("cache_sweep_grid", []))
  seeds = a.get("cache_sweep_seeds")
  lines = ["## Persistent compilation cache", "",
           _env_line(sec["environment"]), "",
           "Per round, in fresh cache directories: the main job "
           f"(`python -m cljax.main --config=experiments/"
           f"{a.get('cache_main_config')}`) with "
           "`CLJAX_COMPILATION_CACHE=off`, then with an empty cache (cold: "
           "it fills the cache), then again with that cache (warm); then "
           f"the sweep `python -m cljax.sweep --config=experiments/"
           f"{a.get('cache_sweep_config')} {grid}"
           + (f" --seeds={seeds}" if seeds else "") +
           "` (every point in one process) with the cache off and with an "
           "empty cache (its first point fills it). job = "
           "`cljax.main.main`'s time; compile = jax's trace + lower + "
           "backend-compile events (a cache hit's read is timed inside "
           "backend; tracing and lowering happen with or without the "
           "cache); hits / misses from jax's `/jax/compilation_cache/*` "
           "events, misses = compile requests - hits, written = entries "
           "stored. Each ratio is formed within its round (the runs of a "
           "round follow each other on the same host); load = the 1-minute "
           "load average before the round's first run.", "",
           "| round | load | job s: off | cold | warm | warm / off | "
           "cold / off | compile s: off | cold | warm (trace + lower + "
           "backend) | warm / off | cold: misses (written) | warm: hits / "
           "misses | cache files, MB |",
           "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
  for r in sec["records"]:
    runs = [r.get(f"main_{k}", {}) for k in ("off", "cold", "warm")]
    if any("failed" in x for x in runs):
      lines.append(f"| {r['round']} | failed: " + "; ".join(
          x["failed"] for x in runs if "failed" in x) + " |||||||||||||")
      continue
    off, cold, warm = runs
    c = lambda x: x["split_s"].get("compile", 0.0)  # noqa: E731
    parts = warm["compile_parts_s"]
    lines.append(
        f"| {r['round']} | {r['loadavg_start'][0]:.1f} | {off['job_s']:.1f} "
        f"| {cold['job_s']:.1f} | {warm['job_s']:.1f} | "
        f"{r['main_warm_over_off']:.2f} | {r['main_cold_over_off']:.2f} | "
        f"{c(off):.1f} | {c(cold):.1f} | {c(warm):.1f} "
        f"({parts.get('trace', 0):.1f} + {parts.get('lower', 0):.1f} + "
        f"{parts.get('backend', 0):.1f}) | "
        f"{r['main_warm_compile_over_off']:.2f} | "
        f"{cold['cache']['misses']} ({cold['cache']['written']}) | "
        f"{warm['cache']['hits']} / {warm['cache']['misses']} | "
        f"{warm['cache_files']['files']}, {warm['cache_files']['mb']:.1f} |")
  lines += ["", "| round | load | sweep s: off | cache | cache / off | "
            "compile s: off | cache | cache / off | hits / misses | cache "
            "files, MB |", "|---|---|---|---|---|---|---|---|---|---|"]
  for r in sec["records"]:
    off, on = r.get("sweep_off", {}), r.get("sweep_cache", {})
    if "failed" in off or "failed" in on:
      lines.append(f"| {r['round']} | failed: " + "; ".join(
          x["failed"] for x in (off, on) if "failed" in x) + " |||||||||")
      continue
    load = off.get("loadavg_end", float("nan"))
    lines.append(
        f"| {r['round']} | {r['main_warm'].get('loadavg_end', load):.1f} | "
        f"{off['sweep_s']:.1f} | {on['sweep_s']:.1f} | "
        f"{r['sweep_over_off']:.2f} | {off['compile_s']:.1f} | "
        f"{on['compile_s']:.1f} | {r['sweep_compile_over_off']:.2f} | "
        f"{on['cache']['hits']} / {on['cache']['misses']} | "
        f"{on['cache_files']['files']}, {on['cache_files']['mb']:.1f} |")
  last = next((r for r in reversed(sec["records"])
               if "points" in r.get("sweep_cache", {})
               and "points" in r.get("sweep_off", {})), None)
  if last:
    lines += ["", f"Per point of round {last['round']}'s sweep (in sweep "
              "order; compile s with the cache off / with the cache):", "",
              "| point | compile s: off | cache | hits | misses | programs "
              "missed (compiled) |", "|---|---|---|---|---|---|"]
    for p_off, p_on in zip(last["sweep_off"]["points"],
                           last["sweep_cache"]["points"]):
      lines.append(
          f"| {p_on['workdir']} | {p_off['compile_s']:.1f} | "
          f"{p_on['compile_s']:.1f} | {p_on['cache']['hits']} | "
          f"{p_on['cache']['misses']} | "
          f"{_names(p_on['cache']['miss_names'])} |")
  warm_missed, unwritten = {}, {}
  for r in sec["records"]:
    for k in ("main_warm", "main_cold", "sweep_cache"):
      cache = r.get(k, {}).get("cache")
      if not cache:
        continue
      if k == "main_warm":
        for name, n in cache["miss_names"].items():
          warm_missed[name] = max(warm_missed.get(name, 0), n)
      for name, n in cache["not_written_names"].items():
        unwritten[name] = max(unwritten.get(name, 0), n)
  lines += ["", "Programs the warm main job compiled instead of reading: "
            + (_names(warm_missed) if warm_missed else
               "none (every compile request was served by the cache)")
            + ". Programs compiled but not written to the cache: "
            + (_names(unwritten) if unwritten else "none") + ".", ""]
  return lines


if __name__ == "__main__":
  main()
