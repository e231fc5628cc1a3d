"""Whole-dataset evaluation: the exact losses of the theory, and the geometry.

Luthra et al. define CL and NSCL over the *whole* training set (all N
samples, K views each), not over a batch. ``dataset_losses`` computes them
exactly for any N with the tiled engine (memory O(N·K·D), never the
[NK, NK] matrix). ``evaluate_split`` embeds every example of a TFDS split
with a trained run's model, in batches, makes K views of each, and returns
those losses together with the geometry metrics of the clean features,
accumulated batch by batch on device by the streaming accumulator
``geometry.init`` / ``update`` / ``finalize``.

```python
run = cljax.analysis.checkpoints.load("runs/default")
out = cljax.analysis.evaluate.evaluate_split(run, "train")
out["losses"]["gap"], out["losses"]["gap_bound"], out["geometry_z"]["nc1"]
```
"""

from __future__ import annotations

import functools
import time
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from cljax._src import checks
from cljax._src import class_stats
from cljax import geometry
from cljax import losses
from cljax import models
from cljax.data import augment as augment_lib
from cljax.data import config as data_config_lib
from cljax.data import pipeline

VIEW_MODES = ("augmented", "augmented_and_clean")


@functools.partial(jax.jit, static_argnames=(
    "temperature", "include_self_pairs", "normalize", "block_size"))
def _cl_nscl(z, labels, *, temperature, include_self_pairs, normalize,
             block_size):
  return losses.cl_nscl(z, labels, temperature=temperature,
                        include_self_pairs=include_self_pairs,
                        normalize=normalize, block_size=block_size)


def dataset_losses(z: jax.typing.ArrayLike, labels: jax.typing.ArrayLike, *,
                   temperature: float = 1.0, include_self_pairs: bool = False,
                   normalize: str = "sphere",
                   block_size: int | str = "auto") -> dict[str, float]:
  """Exact CL, DCL and NSCL over a whole dataset, and the Theorem-1 gap.

  Args:
    z: float[N, K, D] embeddings of every sample (any N: the similarity
      matrix is reduced tile by tile above ``losses.TILED_MIN_ENTRIES``).
    labels: int[N] class ids.
    temperature: tau > 0 (the theorem: 1).
    include_self_pairs: the l1 = l2 terms of the paper's double sum.
    normalize: "sphere", "ball" or "none".
    block_size: as for the losses ("auto", "dense" or a tile size).

  Returns:
    Python floats: "ntxent", "cl_code", "dcl", "nscl", "nscl_code", "gap",
    "gap_bound" (Theorem 1 with the dataset's class counts) and
    "nscl_valid", as in ``losses.cl_nscl``.
  """
  out = _cl_nscl(jnp.asarray(z), jnp.asarray(labels),
                 temperature=float(temperature),
                 include_self_pairs=include_self_pairs, normalize=normalize,
                 block_size=block_size)
  return {name: float(value) for name, value in out.items()}


def _views_fn(num_views: int, view_mode: str, augment: Any, mean, std):
  """Jitted (key, x[b, ...] in raw units) -> normalised views [b, K, ...]."""

  def views(key, x):
    if view_mode == "augmented":
      v = augment_lib.make_views(key, x, num_views, augment)
    else:
      aug = augment_lib.make_views(key, x, num_views - 1, augment)
      v = jnp.concatenate([aug, x[:, None]], axis=1)
    if mean is not None:
      v = (v - mean) / std
    return v

  return jax.jit(views)


def evaluate_split(run: Any, split: str = "train", *, num_views: int = 2,
                   view_mode: str = "augmented_and_clean",
                   temperature: float = 1.0, seed: int = 0,
                   batch_size: int = 512, block_size: int | str = "auto",
                   max_examples: int | None = None) -> dict[str, Any]:
  """Exact whole-split losses and streaming geometry of a trained run.

  Every example of ``split`` goes through the model in batches: its clean
  input gives the features h (encoder) and z (head) whose class statistics
  are accumulated in float64; its K views give the [N, K, D] head outputs
  on which ``dataset_losses`` is computed. The default view mode is Luthra
  et al.'s gap evaluation (``scripts/losses_eval.py``): view 1 augmented,
  view 2 the clean image.

  Args:
    run: a ``cljax.analysis.checkpoints.Run`` (from ``cljax.analysis.checkpoints.load``).
    split: TFDS split of the run's dataset, e.g. "train" or "test[:50%]".
      Labels are clean (no label noise) and the run's class subset applies.
    num_views: K >= 2.
    view_mode: "augmented_and_clean" (K - 1 augmented views and the clean
      input) or "augmented" (K augmented views, as in training).
    temperature: tau of the losses (the theorem: 1).
    seed: seed of the augmentation keys (batch i uses fold_in(seed, i)).
    batch_size: examples per batch of views, and views per forward pass
      (a batch's K views go through the model in K passes).
    block_size: tile size of the losses, as for ``dataset_losses``.
    max_examples: evaluate only the first this many examples.

  Returns:
    dict with "losses" (``dataset_losses``), "geometry_h" and "geometry_z"
    (``geometry.finalize`` of the clean encoder features and of the
    sphere-normalised head outputs, as NumPy values; the keys of
    ``FeatureStatistics.metrics()``), "num_examples", and "seconds"
    (embedding and loss time).

  Raises:
    ValueError: bad ``num_views``, ``view_mode`` or ``batch_size``.
  """
  checks.check_choice(view_mode, "view_mode", VIEW_MODES)
  if not isinstance(num_views, int) or num_views < 2:
    raise ValueError(f"`num_views` must be an int >= 2 (the losses need a "
                     f"positive view); got {num_views!r}.")
  if not isinstance(batch_size, int) or batch_size < 1:
    raise ValueError(f"`batch_size` must be a positive int; got "
                     f"{batch_size!r}.")
  start = time.perf_counter()
  data_config = data_config_lib.resolve(run.config.data)
  x, y = pipeline.load_split(data_config, split, normalize=False)
  if max_examples is not None:
    x, y = x[:max_examples], y[:max_examples]
  num_classes = int(y.max()) + 1
  make_views = _views_fn(num_views, view_mode, data_config["augment"],
                         run.input_mean, run.input_std)
  key = jax.random.key(seed)
  update = jax.jit(geometry.update)
  z_views, stats_h, stats_z = [], None, None
  for i, lo in enumerate(range(0, len(y), batch_size)):
    xb, yb = jnp.asarray(x[lo:lo + batch_size]), y[lo:lo + batch_size]
    views = make_views(jax.random.fold_in(key, i), xb)
    b, k = views.shape[:2]
    flat = views.reshape((b * k,) + views.shape[2:])
    # Chunks of batch_size views: memory stays that of one forward pass.
    h, z = models.embed(run.model, run.variables, flat, batch_size=batch_size)
    z_views.append(z.reshape(b, k, -1))
    if view_mode == "augmented_and_clean":
      # The last view is the clean input: its features are already here.
      h_clean, z_clean = h.reshape(b, k, -1)[:, -1], z_views[-1][:, -1]
    else:
      clean = xb if run.input_mean is None else (
          (xb - run.input_mean) / run.input_std)
      h_clean, z_clean = models.embed(run.model, run.variables, clean,
                                      batch_size=b)
    z_clean = class_stats.unit_rows(jnp.asarray(z_clean))
    if stats_h is None:
      stats_h = geometry.init(num_classes, h_clean.shape[-1])
      stats_z = geometry.init(num_classes, z_clean.shape[-1])
    stats_h = update(stats_h, h_clean, yb)
    stats_z = update(stats_z, z_clean, yb)
  loss_values = dataset_losses(np.concatenate(z_views), y,
                               temperature=temperature, block_size=block_size)
  return {"losses": loss_values, "geometry_h": _host_metrics(stats_h),
          "geometry_z": _host_metrics(stats_z), "num_examples": int(len(y)),
          "seconds": time.perf_counter() - start}


def _host_metrics(stats: geometry.Statistics) -> dict[str, Any]:
  """``geometry.finalize`` as NumPy arrays and Python floats."""
  out = jax.device_get(geometry.finalize(stats))
  eip = out.pop("equal_inner_product")
  out = {k: (float(v) if np.ndim(v) == 0 else np.asarray(v))
         for k, v in out.items()}
  out["equal_inner_product"] = type(eip)(*map(float, eip))
  return out
