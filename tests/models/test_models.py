"""Tests for cljax.models: shapes, BatchNorm modes, dtypes, counts, round trips.

Kept fast for a 2-core CI: shape checks over the full encoder x head grid use
``jax.eval_shape`` (tracing only, nothing compiled), and the numerical checks
run on tiny inputs (batch 4, 8x8 or 16x16 images) and narrow ResNets.
"""

import functools

import flax
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import pytest
from jax.sharding import AxisType, NamedSharding
from jax.sharding import PartitionSpec as P

from cljax import models

B = 4
IMAGE = (B, 16, 16, 3)
VECTOR = (B, 12)
NUM_DEVICES = 8

# Small but non-trivial kwargs per registry entry; the ResNets stay at width 1
# here because the grid below only traces shapes.
ENCODER_KWARGS = {
    "mlp": {"widths": [16, 8], "use_bn": True},
    "convnet": {"widths": [8, 16]},
    "resnet18": {},
    "resnet50": {},
}
ENCODER_DIM = {"mlp": 8, "convnet": 16, "resnet18": 512, "resnet50": 2048}
HEAD_KWARGS = {
    "none": {},
    "linear": {"output_dim": 6},
    "mlp": {"hidden_dims": 10, "output_dim": 6},
}
P1_HEAD = {"hidden_dims": 16, "output_dim": 5, "final_bn": True}


def _config(encoder, head="none", dtype="float32", **encoder_kwargs):
  kwargs = dict(ENCODER_KWARGS.get(encoder, {}), **encoder_kwargs)
  head_kwargs = P1_HEAD if head == "p1" else HEAD_KWARGS[head]
  return {"encoder": encoder, "encoder_kwargs": kwargs,
          "head": "mlp" if head == "p1" else head, "head_kwargs": head_kwargs,
          "dtype": dtype}


def _input(encoder, shape=None, seed=0):
  shape = shape or (VECTOR if encoder == "mlp" else IMAGE)
  return jax.random.normal(jax.random.key(seed), shape)


def _init(model, x, seed=0):
  # The "rbg" PRNG compiles faster than threefry inside a jitted init (one
  # fold-in per parameter); the exact values do not matter here.
  init = jax.jit(functools.partial(model.init, train=False))
  return init(jax.random.key(seed, impl="rbg"), x)


def _host_init(model, x, seed=0):
  """Variables with ``model.init``'s structure, filled on the host with NumPy.

  Compiling a ResNet-50 ``init`` costs ~10 s on a busy 2-core machine (one
  PRNG fold-in per parameter), more than the training step itself; the tests
  that only need *some* sensible weights use this instead. Kernels get
  He-normal values, BN scale 1 / shift 0, running mean 0 / variance 1.
  """
  shapes = jax.eval_shape(
      lambda x: model.init(jax.random.key(0), x, train=False), x)
  rng = np.random.default_rng(seed)

  def fill(path, leaf):
    name = jax.tree_util.keystr(path[-1:])
    if "kernel" in name:
      fan_in = int(np.prod(leaf.shape[:-1]))
      return rng.normal(0, np.sqrt(2 / fan_in), leaf.shape).astype(np.float32)
    ones = "scale" in name or "var" in name
    return np.full(leaf.shape, 1.0 if ones else 0.0, np.float32)

  return jax.tree_util.tree_map_with_path(fill, shapes)


def _apply(model, train):
  if train:
    return jax.jit(functools.partial(model.apply, train=True,
                                     mutable=["batch_stats"]))
  return jax.jit(functools.partial(model.apply, train=False))


def _all_float32(tree):
  return all(leaf.dtype == jnp.float32 for leaf in jax.tree.leaves(tree))


def _tree_equal(a, b):
  return all(jax.tree.leaves(jax.tree.map(
      lambda u, v: bool(np.array_equal(np.asarray(u), np.asarray(v))), a, b)))


# --------------------------------------------------------------------------
# Every encoder x head, by shape (traced, not compiled): all pairs in float32,
# plus every encoder in bfloat16 with the MLP head (the one with BatchNorm).
# --------------------------------------------------------------------------


GRID = ([(e, h, "float32") for e in sorted(models.ENCODERS)
         for h in sorted(models.HEADS)]
        + [(e, "mlp", "bfloat16") for e in sorted(models.ENCODERS)])


@pytest.mark.parametrize("encoder,head,dtype", GRID)
def test_every_encoder_and_head_shapes(encoder, head, dtype):
  model = models.build(_config(encoder, head, dtype))
  x = jax.ShapeDtypeStruct(VECTOR if encoder == "mlp" else IMAGE, jnp.float32)

  def run(x):
    variables = model.init(jax.random.key(0), x, train=False)
    train_out, updates = model.apply(variables, x, train=True,
                                     mutable=["batch_stats"])
    eval_out = model.apply(variables, x, train=False)
    return variables, train_out, updates, eval_out

  variables, train_out, updates, eval_out = jax.eval_shape(run, x)
  feature_dim = ENCODER_DIM[encoder]
  proj_dim = feature_dim if head == "none" else 6
  for h, z in (train_out, eval_out):
    assert h.shape == (B, feature_dim) and z.shape == (B, proj_dim)
    # Outputs are float32 whatever the compute dtype.
    assert h.dtype == z.dtype == jnp.float32
  # Parameters and statistics stay float32 under bfloat16 compute.
  assert set(variables) == {"params", "batch_stats"}
  assert _all_float32(variables)
  assert set(variables["params"]) == ({"encoder"} if head == "none"
                                      else {"encoder", "head"})
  assert (jax.tree.structure(updates["batch_stats"])
          == jax.tree.structure(variables["batch_stats"]))


# --------------------------------------------------------------------------
# BatchNorm modes, bfloat16 and the encode method, with values.
# --------------------------------------------------------------------------


@pytest.mark.parametrize("encoder,head", [("mlp", "p1"), ("convnet", "mlp")])
def test_batch_stats_update_in_train_not_in_eval(encoder, head):
  model = models.build(_config(encoder, head))
  x = _input(encoder)
  variables = _init(model, x)

  @jax.jit  # One compile for all the applies below.
  def run(variables, x):
    train_out, updates = model.apply(variables, x, train=True,
                                     mutable=["batch_stats"])
    # Eval mode with the collection mutable: it must come back unchanged.
    eval_out, same = model.apply(variables, x, train=False,
                                 mutable=["batch_stats"])
    h_first, _ = model.apply(variables, x[:1], train=False)
    h_only = model.apply(variables, x, method="encode")
    return train_out, updates, eval_out, same, h_first, h_only

  (h, z), updates, (h_eval, _), same, h_first, h_only = run(variables, x)
  changed = jax.tree.map(lambda a, b: not np.allclose(a, b),
                         updates["batch_stats"], variables["batch_stats"])
  assert all(jax.tree.leaves(changed)), changed
  assert _tree_equal(same["batch_stats"], variables["batch_stats"])
  # Eval features of a sample do not depend on the rest of the batch.
  np.testing.assert_allclose(h_first, h_eval[:1], rtol=1e-5, atol=1e-6)
  assert np.all(np.isfinite(h)) and np.all(np.isfinite(z))
  # encode() skips the head and gives the same features.
  np.testing.assert_allclose(h_only, h_eval, rtol=1e-6, atol=1e-6)


def test_bfloat16_compute_is_finite_with_float32_params():
  # BN in encoder and head, P1's scale-only BN; ResNet-18 in bfloat16 runs in
  # the SGD-step test below.
  model = models.build(_config("convnet", "p1", "bfloat16"))
  model32 = models.build(_config("convnet", "p1", "float32"))
  x = _input("convnet")
  variables = _init(model, x)
  assert _all_float32(variables)

  @jax.jit
  def run(variables, x):
    (h, z), updates = model.apply(variables, x, train=True,
                                  mutable=["batch_stats"])
    h_eval, z_eval = model.apply(variables, x, train=False)
    h32, _ = model32.apply(variables, x, train=False)
    return (h, z, h_eval, z_eval), updates, h32

  outs, updates, h32 = run(variables, x)
  assert _all_float32(updates)
  for out in outs:
    assert out.dtype == jnp.float32
    assert np.all(np.isfinite(np.asarray(out)))
  # Same weights in float32: bfloat16 agrees to its ~3 significant digits.
  np.testing.assert_allclose(outs[2], h32, rtol=0.1, atol=0.1)


# --------------------------------------------------------------------------
# ResNets: features, a training step, parameter counts.
# --------------------------------------------------------------------------


# ResNet-18 runs its step in bfloat16 and ResNet-50 in float32: one compile
# each covers both dtypes (the dtype plumbing is shared by every block).
@pytest.mark.parametrize("encoder,dtype", [("resnet18", "bfloat16"),
                                           ("resnet50", "float32")])
def test_resnet_sgd_step_runs_with_finite_grads(encoder, dtype):
  width = 0.125  # Narrow for speed; width 1 is checked by shape above.
  model = models.build({"encoder": encoder,
                        "encoder_kwargs": {"width_multiplier": width},
                        "head": "mlp",
                        "head_kwargs": {"hidden_dims": 16, "output_dim": 8},
                        "dtype": dtype})
  x = _input(encoder)
  variables = _host_init(model, x)
  expansion = 4 if encoder == "resnet50" else 1
  feature_dim = int(512 * width) * expansion
  tx = optax.sgd(0.1, momentum=0.9)

  # Optimisation level 0: the step runs once, so XLA's compile time (not the
  # run time) is what costs here; it roughly halves it.
  @functools.partial(
      jax.jit, compiler_options={"xla_backend_optimization_level": 0})
  def step(variables, opt_state):
    def loss_fn(params):
      (h, z), updates = model.apply(
          {"params": params, "batch_stats": variables["batch_stats"]}, x,
          train=True, mutable=["batch_stats"])
      return jnp.mean(z ** 2) + 0.1 * jnp.mean(h), (h, updates)
    (loss, (h, updates)), grads = jax.value_and_grad(
        loss_fn, has_aux=True)(variables["params"])
    upd, opt_state = tx.update(grads, opt_state, variables["params"])
    new = {"params": optax.apply_updates(variables["params"], upd),
           "batch_stats": updates["batch_stats"]}
    return new, opt_state, loss, grads, h

  new, _, loss, grads, h = step(variables, tx.init(variables["params"]))
  assert h.shape == (B, feature_dim) and h.dtype == jnp.float32
  assert np.all(np.isfinite(np.asarray(h)))
  assert np.isfinite(float(loss))
  assert _all_float32(grads) and _all_float32(new)
  assert all(np.all(np.isfinite(g)) for g in jax.tree.leaves(grads))
  # Every parameter array gets a gradient (no dead branch) and moves.
  assert all(np.any(np.asarray(g) != 0) for g in jax.tree.leaves(grads))
  assert not _tree_equal(new["params"], variables["params"])
  assert not _tree_equal(new["batch_stats"], variables["batch_stats"])


# Trunk parameter counts (params collection: conv kernels + BN scale/shift;
# running statistics excluded). References: kuangliu's CIFAR ResNet18 has
# 11,173,962 parameters with its 512*10+10 classifier; torchvision resnet50 has
# 25,557,032 with its 2048*1000+1000 fc and resnet18 11,689,512 with 512*1000+
# 1000; the CIFAR stem replaces the 7x7x3x64 conv by a 3x3x3x64 one.
PARAM_COUNTS = [
    ("resnet18", {"stem": "cifar"}, 11_173_962 - (512 * 10 + 10)),
    ("resnet18", {"stem": "imagenet"}, 11_689_512 - (512 * 1000 + 1000)),
    ("resnet50", {"stem": "imagenet"}, 25_557_032 - (2048 * 1000 + 1000)),
    ("resnet50", {"stem": "cifar"},
     25_557_032 - (2048 * 1000 + 1000) - 7 * 7 * 3 * 64 + 3 * 3 * 3 * 64),
]


@pytest.mark.parametrize("encoder,kwargs,expected", PARAM_COUNTS)
def test_resnet_parameter_counts(encoder, kwargs, expected):
  info = models.describe({"encoder": encoder, "encoder_kwargs": kwargs},
                         (2, 32, 32, 3))
  assert info["params_encoder"] == expected
  assert info["params_head"] == 0
  assert info["feature_dim"] == (512 if encoder == "resnet18" else 2048)


def test_resnet50x2_is_p1_encoder():
  # P1: every conv doubled, stem 128 channels, 4096-d features.
  model = models.build({"encoder": "resnet50",
                        "encoder_kwargs": {"width_multiplier": 2}})
  variables = jax.eval_shape(
      lambda x: model.init(jax.random.key(0), x, train=False),
      jax.ShapeDtypeStruct((2, 32, 32, 3), jnp.float32))
  enc = variables["params"]["encoder"]
  assert enc["stem_conv"]["kernel"].shape == (3, 3, 3, 128)
  assert enc["layer1_0"]["conv1"]["kernel"].shape == (1, 1, 128, 128)
  assert enc["layer4_2"]["conv3"]["kernel"].shape == (1, 1, 1024, 4096)
  assert models.param_count(enc) == 93_891_712


@pytest.mark.parametrize("stem,size", [("cifar", 8), ("imagenet", 8),
                                       ("imagenet", 33)])
def test_resnet_stems_accept_small_and_odd_images(stem, size):
  model = models.build({"encoder": "resnet18",
                        "encoder_kwargs": {"stem": stem}})
  x = jax.ShapeDtypeStruct((2, size, size, 3), jnp.float32)
  h, z = jax.eval_shape(
      lambda x: model.apply(model.init(jax.random.key(0), x, train=False), x,
                            train=False), x)
  assert h.shape == z.shape == (2, 512)


def test_resnet_init_is_kaiming_normal_fan_out():
  # One stage of one block, 4x wide: the same conv/BN code as ResNet-18, big
  # enough kernels for the statistics, and a quick compile.
  model = models.ResNet(stage_sizes=(1,), block="basic", width_multiplier=4)
  x = jnp.zeros((1, 8, 8, 3))
  params = _init(model, x)["params"]
  kernel = np.asarray(params["layer1_0"]["conv2"]["kernel"])  # 3x3x256x256
  fan_out = 3 * 3 * 256
  np.testing.assert_allclose(kernel.std(), np.sqrt(2.0 / fan_out), rtol=0.02)
  # Untruncated, like torch.nn.init.kaiming_normal_ (2-sigma clipping would
  # leave nothing beyond 2 std).
  assert np.abs(kernel).max() > 3 * np.sqrt(2.0 / fan_out)
  assert params["stem_conv"]["kernel"].shape == (3, 3, 3, 256)
  bn = params["layer1_0"]["bn2"]
  assert np.all(bn["scale"] == 1) and np.all(bn["bias"] == 0)


# --------------------------------------------------------------------------
# Checkpoint-style round trip without an optimizer.
# --------------------------------------------------------------------------


def test_params_and_batch_stats_round_trip():
  model = models.build(_config("convnet", "p1"))
  x = _input("convnet")
  variables = _init(model, x)
  # One train-mode pass so the running statistics are not the init values.
  _, updates = _apply(model, True)(variables, x)
  saved = {"params": variables["params"],
           "batch_stats": updates["batch_stats"]}
  # What a checkpoint holds: a plain nested dict of arrays, then bytes.
  state = flax.serialization.to_state_dict(saved)
  blob = flax.serialization.msgpack_serialize(
      jax.tree.map(np.asarray, state))
  # A fresh model from the config alone; the restore target is its abstract
  # variables (shapes only: nothing is initialised, no optimizer exists).
  fresh = models.build(_config("convnet", "p1"))
  target = jax.eval_shape(
      lambda x: fresh.init(jax.random.key(1), x, train=False), x)
  restored = flax.serialization.from_state_dict(
      target, flax.serialization.msgpack_restore(blob))
  assert set(restored) == {"params", "batch_stats"}
  assert jax.tree.structure(restored) == jax.tree.structure(target)
  assert _tree_equal(restored, saved)

  @jax.jit
  def evaluate(saved, restored):
    return (model.apply(saved, x, train=False),
            fresh.apply(restored, x, train=False))

  expected, got = evaluate(saved, restored)
  for e, g in zip(expected, got):
    np.testing.assert_array_equal(np.asarray(e), np.asarray(g))


# --------------------------------------------------------------------------
# P1's projector.
# --------------------------------------------------------------------------


def test_p1_projector_structure_and_frozen_final_bias():
  model = models.build(_config("mlp", "p1"))
  x = _input("mlp", (8, 12))
  variables = _init(model, x)
  head = variables["params"]["head"]
  # Linear(no bias) -> BN -> ReLU -> Linear(no bias) -> BN(scale only).
  assert jax.tree.map(np.shape, head) == {
      "dense_0": {"kernel": (8, 16)},
      "bn_0": {"scale": (16,), "bias": (16,)},
      "output": {"kernel": (16, 5)},
      "output_bn": {"scale": (5,)},
  }
  assert set(variables["batch_stats"]["head"]) == {"bn_0", "output_bn"}

  # A gradient step with weight decay: the scale moves, no bias appears, and
  # the train-mode projection keeps batch mean 0 per coordinate (shift == 0).
  tx = optax.adamw(0.1, weight_decay=0.1)

  def loss_fn(params):
    (_, z), _ = model.apply(
        {"params": params, "batch_stats": variables["batch_stats"]}, x,
        train=True, mutable=["batch_stats"])
    return jnp.sum(z[:, 0]) + jnp.mean((z - 1.0) ** 2)

  @jax.jit
  def step(params):
    grads = jax.grad(loss_fn)(params)
    updates, _ = tx.update(grads, tx.init(params), params)
    new_params = optax.apply_updates(params, updates)
    (_, z), _ = model.apply(
        {"params": new_params, "batch_stats": variables["batch_stats"]}, x,
        train=True, mutable=["batch_stats"])
    return new_params, z

  new_params, z = step(variables["params"])
  assert set(new_params["head"]["output_bn"]) == {"scale"}
  assert not np.allclose(new_params["head"]["output_bn"]["scale"], 1.0)
  np.testing.assert_allclose(np.mean(np.asarray(z), axis=0), 0.0, atol=1e-5)


def test_p3_head_structure():
  # P3: Linear(2048->512, no bias) -> BN -> ReLU -> Linear(512->C-1, bias).
  model = models.build({"encoder": "mlp", "encoder_kwargs": {"widths": [20]},
                        "head": "mlp",
                        "head_kwargs": {"hidden_dims": 7, "output_dim": 99}})
  variables = jax.eval_shape(
      lambda x: model.init(jax.random.key(0), x, train=False),
      jax.ShapeDtypeStruct((2, 3), jnp.float32))
  assert jax.tree.map(lambda a: a.shape, variables["params"]["head"]) == {
      "dense_0": {"kernel": (20, 7)},
      "bn_0": {"scale": (7,), "bias": (7,)},
      "output": {"kernel": (7, 99), "bias": (99,)},
  }


@pytest.mark.parametrize("head_kwargs,hidden", [
    ({"hidden_dims": 6, "num_layers": 3}, [6, 6]),
    ({"hidden_dims": [6, 5]}, [6, 5]),
    ({"hidden_dims": [6, 5], "num_layers": 3}, [6, 5]),
    ({"hidden_dims": 6, "num_layers": 1}, []),
    ({"hidden_dims": []}, []),
])
def test_mlp_head_num_layers(head_kwargs, hidden):
  model = models.build({"encoder": "mlp", "encoder_kwargs": {"widths": [4]},
                        "head": "mlp",
                        "head_kwargs": dict(head_kwargs, output_dim=3)})
  variables = jax.eval_shape(
      lambda x: model.init(jax.random.key(0), x, train=False),
      jax.ShapeDtypeStruct((2, 3), jnp.float32))
  head = variables["params"]["head"]
  assert [head[f"dense_{i}"]["kernel"].shape[1]
          for i in range(len(hidden))] == hidden
  assert f"dense_{len(hidden)}" not in head
  assert head["output"]["kernel"].shape[1] == 3


# --------------------------------------------------------------------------
# BatchNorm across devices: sync-BN under jit, bn_axis_name under shard_map.
# --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def bn_setup():
  # MLP encoder with BN, then P1's projector: BN in both parts.
  config = _config("mlp", "p1", widths=[6])
  model = models.build(config)
  x = _input("mlp", (NUM_DEVICES * 2, 12), seed=3)
  variables = _init(model, x)
  reference = _apply(model, True)(variables, x)
  return config, model, x, variables, reference


def _assert_close_trees(a, b):
  jax.tree.map(lambda u, v: np.testing.assert_allclose(
      np.asarray(u), np.asarray(v), rtol=1e-5, atol=1e-5), a, b)


def test_jit_over_sharded_batch_is_sync_bn(bn_setup):
  _, model, x, variables, reference = bn_setup
  assert jax.device_count() == NUM_DEVICES
  mesh = jax.make_mesh((NUM_DEVICES,), ("data",),
                       axis_types=(AxisType.Explicit,))
  xs = jax.device_put(x, NamedSharding(mesh, P("data")))
  vs = jax.device_put(variables, NamedSharding(mesh, P()))
  out = _apply(model, True)(vs, xs)
  # Same features and running statistics as on one device: the BN means
  # were taken over the global batch.
  _assert_close_trees(out, reference)


def test_bn_axis_name_under_shard_map(bn_setup):
  config, model, x, variables, reference = bn_setup
  mesh = jax.make_mesh((NUM_DEVICES,), ("data",),
                       axis_types=(AxisType.Explicit,))
  xs = jax.device_put(x, NamedSharding(mesh, P("data")))
  vs = jax.device_put(variables, NamedSharding(mesh, P()))

  # With bn_axis_name the per-device statistics are pmean-ed: global BN, and
  # the running statistics agree across devices (so out_specs P() holds).
  synced = models.build(dict(config, bn_axis_name="data"))
  out = jax.jit(jax.shard_map(
      functools.partial(synced.apply, train=True, mutable=["batch_stats"]),
      mesh=mesh, in_specs=(P(), P("data")),
      out_specs=((P("data"), P("data")), P())))(vs, xs)
  _assert_close_trees(out, reference)
  # Without the axis name each device normalises its own 2 samples.
  (h_local, _), _ = jax.jit(jax.shard_map(
      functools.partial(model.apply, train=True, mutable=["batch_stats"]),
      mesh=mesh, in_specs=(P(), P("data")),
      out_specs=((P("data"), P("data")), P("data")), check_vma=False))(vs, xs)
  assert not np.allclose(np.asarray(h_local), np.asarray(reference[0][0]),
                         atol=1e-3)


# --------------------------------------------------------------------------
# Configs and errors.
# --------------------------------------------------------------------------


def test_build_accepts_config_dict_and_lists():
  config = models.default_config()
  config.encoder = "convnet"
  config.encoder_kwargs = ml_collections.ConfigDict({"widths": [4, 8]})
  config.head = "linear"
  config.head_kwargs = ml_collections.ConfigDict({"output_dim": 3})
  model = models.build(config)
  assert model.encoder.widths == (4, 8)
  info = models.describe(config, (2, 8, 8, 3))
  assert info["feature_dim"] == 8 and info["projection_dim"] == 3
  assert info["params_head"] == 8 * 3 + 3
  assert info["params_total"] == info["params_encoder"] + info["params_head"]


@pytest.mark.parametrize("config,match", [
    ({"encoder": "vit"}, r"Unknown encoder 'vit'.*valid: \['convnet', 'mlp'"),
    ({"head": "mlp"}, r"Unknown encoder None"),
    ({"encoder": "mlp", "head": "deep"}, r"Unknown head 'deep'.*'linear'"),
    ({"encoder": "mlp", "heads": "mlp"}, r"Unknown model config field.*heads"),
    ({"encoder": "mlp", "dtype": "float16"}, r"dtype 'float16'.*bfloat16"),
    ({"encoder": "resnet18", "encoder_kwargs": {"width": 2}},
     r"Unknown encoder_kwargs \['width'\].*width_multiplier"),
    ({"encoder": "resnet18", "encoder_kwargs": {"stem": "tiny"}},
     r"unknown stem 'tiny'"),
    ({"encoder": "resnet50", "encoder_kwargs": {"width_multiplier": 0}},
     r"width_multiplier"),
    ({"encoder": "mlp", "encoder_kwargs": {"widths": []}}, r"widths"),
    ({"encoder": "mlp", "encoder_kwargs": {"activation": "sigmoidal"}},
     r"Unknown activation 'sigmoidal'"),
    ({"encoder": "mlp", "encoder_kwargs": {"dtype": "bfloat16"}},
     r"top of the model config"),
    ({"encoder": "mlp", "head": "none", "head_kwargs": {"output_dim": 3}},
     r"Unknown head_kwargs \['output_dim'\] for head 'none'"),
    ({"encoder": "mlp", "head": "mlp",
      "head_kwargs": {"hidden_dims": [4, 4], "num_layers": 2}},
     r"num_layers.*contradicts"),
    ({"encoder": "mlp", "head": "mlp", "head_kwargs": {"num_layers": 0}},
     r"num_layers"),
    ("mlp", r"dict or ml_collections.ConfigDict"),
])
def test_bad_config_raises(config, match):
  with pytest.raises(ValueError, match=match):
    models.build(config)


def test_conv_encoders_reject_vectors():
  for name in ("convnet", "resnet18"):
    model = models.build({"encoder": name})
    with pytest.raises(ValueError, match=r"NHWC.*'mlp' encoder"):
      jax.eval_shape(lambda x: model.init(jax.random.key(0), x, train=False),
                     jax.ShapeDtypeStruct((2, 12), jnp.float32))


def test_train_must_be_a_python_bool():
  model = models.build(_config("mlp"))
  x = jax.ShapeDtypeStruct(VECTOR, jnp.float32)
  with pytest.raises(ValueError, match="Python bool"):
    jax.eval_shape(
        lambda x: model.init(jax.random.key(0), x, train=jnp.array(True)), x)
