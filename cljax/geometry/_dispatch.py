"""Input checks and the three ways a metric runs: global, per device, sharded.

Every metric is written once as a per-device function of its shard that
sums its sufficient statistics over ``axis_name`` (``_class_stats.psum``;
the identity when it is None). ``run`` calls it

* directly, when the caller passes ``axis_name`` (inside their
  ``jax.shard_map`` or ``jax.pmap``): every device gets the global value;
* jitted on one device, for unsharded input;
* under ``jax.shard_map`` over the mesh axes of the batch dimension, when
  the features are sharded along the batch on an Explicit mesh (the training
  layout): statistics are computed per shard and reduced, so nothing of size
  N is gathered (peak memory O(N/devices D + C D + D^2)).

On all three the output passes through ``_guarded``: traced labels outside
``[0, num_classes)`` make every element NaN (``cljax._src.checks``).
"""

import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from cljax._src import checks
from cljax._src import class_stats as cs

F32 = jnp.float32
_CENTER_CHOICES = (True, False, "global", "classes", "none")


def normalize_center(center) -> str:
  if isinstance(center, str):
    checks.check_choice(center, "center", ("global", "classes", "none"))
    return center
  if isinstance(center, (bool, np.bool_)):
    return "global" if center else "none"
  raise ValueError(
      f"`center` must be one of {_CENTER_CHOICES} (a static Python value, "
      f"not an array); got {center!r}.")


def as_array(x: Any) -> Any:
  return x if isinstance(x, (jax.Array, np.ndarray)) else np.asarray(x)


def prepare_features(features, axis_name, name="features", rank=2,
                     layout="float[N, D]", min_rows=1):
  """Checks rank, dtype and size; returns a float32 array."""
  features = as_array(features)
  checks.check_rank(features, rank, name, layout)
  checks.check_float(features, name)
  n = np.shape(features)[0]
  # Per device (axis_name) a shard may be small; the global N is checked
  # where the caller's batch is known, i.e. without axis_name.
  if axis_name is None and n < min_rows:
    raise ValueError(
        f"`{name}` needs at least {min_rows} row(s) (samples along the first "
        f"axis, layout {layout}); got shape {tuple(np.shape(features))}.")
  return jnp.asarray(features).astype(F32)


def prepare(features, labels, num_classes, axis_name, name="features",
            rank=2, layout="float[N, D]"):
  """Checks features and labels; returns (float32 z, int32 labels, C)."""
  z = prepare_features(features, axis_name, name, rank, layout)
  labels = as_array(labels)
  n = z.shape[0]
  # Shape and dtype first, so a float or misshaped label vector gets the
  # precise message rather than a failure while inferring num_classes.
  checks.check_labels(labels, n, "labels")
  c = checks.infer_num_classes(labels, num_classes)
  checks.check_labels(labels, n, "labels", c)
  return z, jnp.asarray(labels).astype(jnp.int32), c


def check_weights(weights, num_classes, dim):
  weights = as_array(weights)
  checks.check_rank(weights, 2, "weights", "float[C, D]")
  checks.check_float(weights, "weights")
  c, d = np.shape(weights)
  if d != dim:
    raise ValueError(
        f"`weights` must have shape [C, {dim}] (one classifier row per class, "
        f"same width as `features`); got {tuple(np.shape(weights))}.")
  if num_classes is not None and int(num_classes) != c:
    raise ValueError(
        f"`weights` has {c} rows but `num_classes={num_classes}`; pass the "
        f"classifier of all {num_classes} classes or drop `num_classes`.")
  return jnp.asarray(weights).astype(F32), c


def _batch_placement(x):
  """(mesh, axes) when ``x`` is sharded along dim 0 on an Explicit mesh."""
  sharding = getattr(jax.typeof(x), "sharding", None)
  mesh = getattr(sharding, "mesh", None)
  if mesh is None or mesh.empty or all(s is None for s in sharding.spec):
    return None
  spec = tuple(sharding.spec)
  if spec[0] is None or any(s is not None for s in spec[1:]):
    return mesh, None  # Sharded along features: gathered (rare, small).
  return mesh, spec[0]


def _guarded(fn, static, n_batch, *args, axis_name):
  """``fn`` on one shard, NaN (-1) when its labels are out of range.

  The labels are the last batch array when ``num_classes`` is static; the
  count of bad ids is psum'd over ``axis_name`` like every statistic, so all
  devices agree (``checks.nan_if_labels_out_of_range``).
  """
  static = dict(static)
  out = fn(*args, axis_name=axis_name, **static)
  if static.get("num_classes") is None:
    return out
  return checks.nan_if_labels_out_of_range(
      out, args[n_batch - 1], num_classes=static["num_classes"],
      axis_name=axis_name)


@functools.partial(jax.jit, static_argnums=(0, 1, 2))
def _jit_local(fn, static, n_batch, *args):
  return _guarded(fn, static, n_batch, *args, axis_name=None)


@functools.partial(jax.jit, static_argnums=(0, 1, 2, 3, 4))
def _jit_sharded(fn, static, mesh, axes, n_batch, *args):
  batch = [jax.reshard(x, jax.NamedSharding(mesh, jax.P(axes)))
           for x in args[:n_batch]]
  params = [jax.reshard(p, jax.NamedSharding(mesh, jax.P()))
            for p in args[n_batch:]]
  per_device = jax.shard_map(
      functools.partial(_guarded, fn, static, n_batch, axis_name=axes),
      mesh=mesh,
      in_specs=(jax.P(axes),) * len(batch) + (jax.P(),) * len(params),
      out_specs=jax.P(), check_vma=False)
  return per_device(*batch, *params)


def _replicated(x, mesh):
  return jax.reshard(x, jax.NamedSharding(mesh, jax.P()))


def run(fn, batch, params=(), *, axis_name=None, **static):
  """Runs per-device ``fn(*batch, *params, axis_name=..., **static)``.

  Whatever the path, the result is NaN (integers -1) when a traced label
  lies outside ``[0, num_classes)``; see ``cljax._src.checks``.

  Args:
    fn: the per-device metric (a module-level function, hashable).
    batch: arrays with the samples along dim 0 (features, labels); the
      labels come last whenever ``num_classes`` is given.
    params: replicated arrays (weights, bias, scalar hyper-parameters).
    axis_name: the caller's mapped axis, or None.
    **static: hashable static arguments (num_classes, center, ...).

  Returns:
    ``fn``'s output: the global-batch value (on every device when mapped).
  """
  static = tuple(sorted(static.items()))
  params = tuple(jnp.asarray(p, F32) for p in params)
  if axis_name is not None:
    cs.check_axis_name(axis_name)
    return _guarded(fn, static, len(batch), *batch, *params,
                    axis_name=axis_name)
  placement = _batch_placement(batch[0])
  if placement is not None and placement[1] is not None:
    mesh, axes = placement
    names = axes if isinstance(axes, tuple) else (axes,)
    shards = int(np.prod([mesh.shape[a] for a in names]))
    if batch[0].shape[0] % shards == 0:
      return _jit_sharded(fn, static, mesh, axes, len(batch), *batch,
                          *params)
  # Unsharded input, or a layout shard_map cannot split evenly: one device.
  args = tuple(_replicated(x, _batch_placement(x)[0])
               if _batch_placement(x) is not None else x
               for x in batch + params)
  return _jit_local(fn, static, len(batch), *args)


# ----------------------------------------------------------------------------
# Per-device building blocks (every sum is psum'd over axis_name).
# ----------------------------------------------------------------------------


def stats(z, labels, num_classes, axis_name):
  """(counts [C], means [C, D], present [C]) of the global batch."""
  s = cs.class_stats(z, labels, num_classes, axis_name=axis_name)
  return s.counts, cs.class_means(s), s.counts > 0


def residual_sums(r, labels, num_classes, axis_name):
  """Per-class sums of ||r||^2 over the global batch (float[C])."""
  return cs.psum(jax.ops.segment_sum(jnp.sum(r * r, axis=-1), labels,
                                     num_segments=num_classes), axis_name)


def global_count(n, axis_name):
  return cs.psum(jnp.asarray(n, F32), axis_name)
