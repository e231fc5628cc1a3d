"""Linear probe: a linear layer on frozen features trained with optax.

Cross-entropy, bias-free by default as in P1 and P2; the whole training loop
is one jitted ``lax.scan``. Weights are ``float[C, D]`` (logits
``features @ weights.T``), the convention of every classifier in cljax.
"""

from __future__ import annotations

import functools
from typing import NamedTuple, Optional

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.typing import ArrayLike

from cljax._src import checks
from cljax.probes import _common

_OPTIMIZERS = ("adam", "sgd")


class LinearProbeResult(NamedTuple):
  """Output of :func:`linear_probe`.

  Attributes:
    weights: float32[C, D], one row per class; logits are
      ``features @ weights.T (+ bias)``.
    bias: float32[C], or None for the (default) bias-free probe.
    train_accuracy: float32 scalar, accuracy on the full training set.
    test_accuracy: float32 scalar on the test set (NaN when none was given).
    final_loss: float32 scalar, mean cross-entropy on the full training set
      at the final parameters (without the weight-decay term).
    loss_history: float32[steps], the minibatch loss before each update.
  """
  weights: jax.Array
  bias: Optional[jax.Array]
  train_accuracy: jax.Array
  test_accuracy: jax.Array
  final_loss: jax.Array
  loss_history: jax.Array

  __repr__ = _common.result_repr


def _make_optimizer(optimizer: str, learning_rate, weight_decay, momentum,
                    decay_power, total_steps: int
                    ) -> optax.GradientTransformation:
  # Hyper-parameters may be traced (no recompilation when they change), so the
  # schedule is written out instead of branching on their Python values:
  # decay_power = 0 gives a constant rate (0.0 ** 0.0 == 1 in jnp).
  def schedule(count):
    frac = jnp.minimum(count, total_steps) / total_steps
    return learning_rate * (1.0 - frac) ** decay_power

  if optimizer == "adam":
    base = optax.adam(schedule)
  else:
    base = optax.sgd(schedule, momentum=momentum)
  # Coupled L2 (gradient += wd * w), i.e. PyTorch's `weight_decay=` for SGD
  # and Adam, which is what P2's retrained_linear probe used.
  return optax.chain(optax.add_decayed_weights(weight_decay), base)


def _linear_logits(params, x):
  logits = jnp.matmul(x, params["w"].T, precision=_common.HIGHEST)
  if "b" in params:
    logits = logits + params["b"]
  return logits


def _weighted_ce(params, x, y, w):
  ce = optax.losses.softmax_cross_entropy_with_integer_labels(
      _linear_logits(params, x), y)
  return jnp.sum(w * ce) / jnp.sum(w)


def fit_linear(x, y, key, hyper, *, num_classes, batch_size, total_steps,
                use_bias, optimizer):
  """Trains a linear layer; the whole loop is one ``lax.scan`` nest.

  Epoch ``e`` shuffles with ``fold_in(key, e)`` and visits every sample once in
  ``ceil(N / batch_size)`` minibatches; the last one is padded with zero-weight
  rows (PyTorch ``drop_last=False`` semantics with fixed shapes). Steps past
  ``total_steps`` in the last epoch are computed but not applied.

  Returns:
    (params, loss_history[total_steps]).
  """
  n, d = x.shape
  steps_per_epoch = -(-n // batch_size)
  num_epochs = -(-total_steps // steps_per_epoch)
  pad = steps_per_epoch * batch_size - n
  lr, wd, momentum, decay_power = hyper
  tx = _make_optimizer(optimizer, lr, wd, momentum, decay_power, total_steps)
  # Zero init: the probe objective is convex, so the start only matters for
  # speed; zeros make runs deterministic given the minibatch key.
  params = {"w": jnp.zeros((num_classes, d), x.dtype)}
  if use_bias:
    params["b"] = jnp.zeros((num_classes,), x.dtype)
  opt_state = tx.init(params)
  row_weight = jnp.concatenate(
      [jnp.ones((n,), x.dtype), jnp.zeros((pad,), x.dtype)]).reshape(
          steps_per_epoch, batch_size)
  grad_fn = jax.value_and_grad(_weighted_ce)

  def step(carry, inputs):
    params, opt_state = carry
    t, idx, w = inputs
    loss, grads = grad_fn(params, x[idx], y[idx], w)
    updates, new_opt_state = tx.update(grads, opt_state, params)
    new_params = optax.apply_updates(params, updates)
    active = t < total_steps
    carry = jax.tree.map(lambda new, old: jnp.where(active, new, old),
                         (new_params, new_opt_state), (params, opt_state))
    return carry, loss

  def epoch(carry, e):
    perm = jax.random.permutation(jax.random.fold_in(key, e), n)
    order = jnp.concatenate([perm, jnp.zeros((pad,), perm.dtype)]).reshape(
        steps_per_epoch, batch_size)
    t = e * steps_per_epoch + jnp.arange(steps_per_epoch)
    return jax.lax.scan(step, carry, (t, order, row_weight))

  (params, _), losses = jax.lax.scan(epoch, (params, opt_state),
                                     jnp.arange(num_epochs))
  return params, losses.reshape(-1)[:total_steps]


def predict_linear(params, x):
  return jnp.argmax(_linear_logits(params, x), axis=-1)


@functools.partial(jax.jit, static_argnames=(
    "num_classes", "batch_size", "total_steps", "use_bias", "optimizer"))
def _linear_probe_impl(x, y, xt, yt, key, hyper, *, num_classes, batch_size,
                       total_steps, use_bias, optimizer):
  params, history = fit_linear(
      x, y, key, hyper, num_classes=num_classes, batch_size=batch_size,
      total_steps=total_steps, use_bias=use_bias, optimizer=optimizer)
  ones = jnp.ones(y.shape, x.dtype)
  final_loss = _weighted_ce(params, x, y, ones)
  train_acc = jnp.mean((predict_linear(params, x) == y).astype(jnp.float32))
  if xt is None:
    test_acc = jnp.array(jnp.nan, jnp.float32)
  else:
    test_acc = jnp.mean(
        (predict_linear(params, xt) == yt).astype(jnp.float32))
  return params, train_acc, test_acc, final_loss, history


def check_probe_hparams(steps, epochs, learning_rate, batch_size,
                         weight_decay, momentum, decay_power, optimizer,
                         prefix=""):
  _common.check_hyper(learning_rate, prefix + "learning_rate")
  _common.check_hyper(weight_decay, prefix + "weight_decay", allow_zero=True)
  _common.check_hyper(momentum, prefix + "momentum", allow_zero=True)
  _common.check_hyper(decay_power, prefix + "decay_power", allow_zero=True)
  _common.check_int(batch_size, prefix + "batch_size", 1)
  if epochs is None:
    _common.check_int(steps, prefix + "steps", 1)
  else:
    _common.check_int(epochs, prefix + "epochs", 1)
  checks.check_choice(optimizer, prefix + "optimizer", _OPTIMIZERS)


def probe_steps(n: int, batch_size: int, steps: int,
                 epochs: Optional[int]) -> tuple[int, int]:
  batch_size = min(int(batch_size), n)
  if epochs is None:
    return batch_size, int(steps)
  return batch_size, int(epochs) * (-(-n // batch_size))


def linear_probe(train_features: ArrayLike, train_labels: ArrayLike,
                 test_features: Optional[ArrayLike] = None,
                 test_labels: Optional[ArrayLike] = None, *,
                 num_classes: Optional[int] = None, key: jax.Array,
                 steps: int = 1000, epochs: Optional[int] = None,
                 learning_rate: float = 1e-3, batch_size: int = 256,
                 weight_decay: float = 0.0, use_bias: bool = False,
                 optimizer: str = "adam", momentum: float = 0.0,
                 decay_power: float = 0.0) -> LinearProbeResult:
  """Trains a linear classifier on frozen features with cross-entropy.

  The parameters start at zero. Each epoch reshuffles the training set with
  ``jax.random.fold_in(key, epoch)`` and walks it in minibatches of
  ``batch_size`` (the last one smaller, as with PyTorch ``drop_last=False``).
  The whole loop is one jitted ``lax.scan``; learning rate, weight decay,
  momentum and decay power are traced, so sweeping them does not recompile.

  Args:
    train_features: float[N, D] frozen features.
    train_labels: int[N] in ``[0, num_classes)``.
    test_features: optional float[M, D] for ``test_accuracy``.
    test_labels: int[M], required with ``test_features``.
    num_classes: C; inferred from concrete train labels when None.
    key: PRNG key for the minibatch order, e.g. ``jax.random.key(0)`` (an
      int seed is refused with that hint).
    steps: number of optimiser updates (ignored when ``epochs`` is given).
    epochs: optional number of passes; then ``steps = epochs *
      ceil(N / batch_size)`` (P1 counts epochs, P2 iterations).
    learning_rate: peak learning rate.
    batch_size: minibatch size, clipped to N.
    weight_decay: coupled L2 coefficient added to the gradient (PyTorch
      ``weight_decay=``; P2's retrained probe uses 1e-3 with SGD).
    use_bias: add a bias (default False: bias-free as in P1 and P2).
    optimizer: ``"adam"`` (P1: lr 3e-4) or ``"sgd"`` (P2: lr 0.1).
    momentum: SGD momentum (ignored by Adam).
    decay_power: learning rate ``lr * (1 - t / steps) ** decay_power``; 0 keeps
      it constant, 5 is P2's polynomial decay.

  Returns:
    A :class:`LinearProbeResult`; every field NaN when traced train or test
    labels lie outside ``[0, num_classes)``.

  Raises:
    ValueError: on bad shapes/dtypes, N = 0, fewer than two classes,
      (concrete) labels out of range, mismatched D, non-positive
      ``steps``/``epochs``/``batch_size``/``learning_rate``, negative
      ``weight_decay``, an unknown ``optimizer`` or a ``key`` that is not a
      PRNG key.

  References:
    P1 section 2.5 item 5 and 2.6 (bias-free, Adam, lr 3e-4); P2 section 3.3
    ``retrained_linear`` (SGD 0.1, wd 1e-3, poly-5 decay, 5000 iterations,
    batch 256).

  Examples:
    >>> import jax
    >>> import jax.numpy as jnp
    >>> from cljax import probes
    >>> x = jnp.array([[1., 0.], [2., 0.], [0., 1.], [0., 2.]])
    >>> y = jnp.array([0, 0, 1, 1])
    >>> res = probes.linear_probe(x, y, num_classes=2, key=jax.random.key(0),
    ...                           steps=50, learning_rate=0.1)
    >>> res.weights.shape  # [C, D]
    (2, 2)
    >>> res.train_accuracy.item()
    1.0
    >>> res  # doctest: +ELLIPSIS
    LinearProbeResult(weights=float32[2, 2], bias=None, train_accuracy=1, ...)
  """
  num_classes, x, y, xt, yt = _common.classifier_inputs(
      train_features, train_labels, test_features, test_labels, num_classes)
  check_probe_hparams(steps, epochs, learning_rate, batch_size, weight_decay,
                      momentum, decay_power, optimizer)
  key = _common.check_key(key)
  batch_size, total_steps = probe_steps(x.shape[0], batch_size, steps, epochs)
  hyper = tuple(jnp.asarray(v, x.dtype) for v in
                (learning_rate, weight_decay, momentum, decay_power))
  params, train_acc, test_acc, final_loss, history = _linear_probe_impl(
      x, y, xt, yt, key, hyper,
      num_classes=num_classes, batch_size=batch_size,
      total_steps=total_steps, use_bias=bool(use_bias), optimizer=optimizer)
  result = LinearProbeResult(
      weights=params["w"], bias=params.get("b"), train_accuracy=train_acc,
      test_accuracy=test_acc, final_loss=final_loss, loss_history=history)
  return checks.nan_if_labels_out_of_range(result, train_labels, test_labels,
                                            num_classes=num_classes)


def linear_probe_predict(features: ArrayLike, weights: ArrayLike,
                         bias: Optional[ArrayLike] = None) -> jax.Array:
  """Predictions ``argmax(features @ weights.T + bias)`` of a linear probe.

  Args:
    features: float[N, D].
    weights: float[C, D], one row per class (``LinearProbeResult.weights``
      or ``RidgeProbeResult.weights``).
    bias: optional float[C].

  Returns:
    int32[N] class ids; ties go to the lowest id.

  Raises:
    ValueError: on bad ranks/dtypes or mismatched D.

  References:
    P1 section 2.5 item 5; P2 section 3.3 (linear classifiers on features).

  Examples:
    >>> import jax.numpy as jnp
    >>> from cljax import probes
    >>> w = jnp.array([[1., 0.], [0., 1.]])  # [C, D]
    >>> probes.linear_probe_predict(jnp.array([[2., 1.], [0., 3.]]), w).tolist()
    [0, 1]
  """
  _common.check_features(features, "features")
  checks.check_rank(weights, 2, "weights", "[C, D]")
  if np.shape(weights)[1] != np.shape(features)[1]:
    raise ValueError(
        f"`weights` must have shape [C, D] with D = {np.shape(features)[1]} "
        f"(the feature dimension); got {tuple(np.shape(weights))}. Weights "
        f"are [C, D] everywhere in cljax: transpose a [D, C] matrix.")
  params = {"w": jnp.asarray(weights)}
  if bias is not None:
    params["b"] = jnp.asarray(bias)
  return predict_linear(params, jnp.asarray(features)).astype(jnp.int32)


