"""Closed-form ridge-regression probe (big_vision's few-shot recipe).

The features are standardised with the training mean and standard deviation
(+1e-5), a constant feature of 100 is appended (a bias that the L2 penalty
barely touches), the targets are the one-hot labels rescaled to {-1, 1}, and
the weights solve the ridge least-squares problem in closed form. No
optimiser, no key, no learning rate: a deterministic linear probe that is
cheap enough to run per few-shot episode.
"""

from __future__ import annotations

import functools
from typing import NamedTuple, Optional

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from cljax._src import checks
from cljax.probes import _common

# big_vision's `BIAS_CONSTANT` and its few-shot configs' `l2_reg = 2 ** 10`.
_BIAS_FEATURE = 100.0
DEFAULT_L2_REG = 2.0**10


class RidgeProbeResult(NamedTuple):
  """Output of :func:`ridge_probe`.

  Attributes:
    weights: float32[C, D]; logits are ``features @ weights.T + bias`` on the
      raw (unstandardised) features: the standardisation is folded in.
    bias: float32[C].
    train_accuracy: float32 scalar on the training set.
    test_accuracy: float32 scalar on the test set (NaN when none was given).
  """
  weights: jax.Array
  bias: jax.Array
  train_accuracy: jax.Array
  test_accuracy: jax.Array

  __repr__ = _common.result_repr


def fit_ridge(x: jax.Array, y: jax.Array, l2_reg, *, num_classes: int
              ) -> tuple[jax.Array, jax.Array]:
  """Ridge weights ``[C, D]`` and bias ``[C]`` on the raw features (jittable).

  With ``X = [S, 100 * 1]`` (``S`` the standardised features) and ``T`` the
  {-1, 1} targets, ``W = (X^T X + l2 I)^{-1} X^T T``. ``S`` is centred, so
  ``S^T 1 = 0`` and the system splits into the feature block
  ``(S^T S + l2 I)^{-1} S^T T`` (solved in its dual form
  ``S^T (S S^T + l2 I)^{-1} T`` when ``N < D``) and the bias
  ``100 * 1^T T / (100^2 N + l2)``: the same solution as the joint system,
  without the ``100^2 N`` entry that would cost float32 about four digits.
  """
  mean = jnp.mean(x, axis=0)
  std = jnp.std(x, axis=0) + 1e-5
  xs = (x - mean) / std
  targets = 2.0 * jax.nn.one_hot(y, num_classes, dtype=x.dtype) - 1.0
  n, d = xs.shape
  mm = functools.partial(jnp.matmul, precision=_common.HIGHEST)
  if n >= d:
    gram = mm(xs.T, xs) + l2_reg * jnp.eye(d, dtype=x.dtype)
    w_feat = jax.scipy.linalg.solve(gram, mm(xs.T, targets), assume_a="pos")
  else:
    gram = mm(xs, xs.T) + l2_reg * jnp.eye(n, dtype=x.dtype)
    w_feat = mm(xs.T, jax.scipy.linalg.solve(gram, targets, assume_a="pos"))
  w_bias = (_BIAS_FEATURE * jnp.sum(targets, axis=0)
            / (_BIAS_FEATURE**2 * n + l2_reg))  # [C]
  weights = (w_feat / std[:, None]).T  # [C, D]
  bias = _BIAS_FEATURE * w_bias - mm(mean / std, w_feat)
  return weights, bias


def ridge_logits(weights: jax.Array, bias: jax.Array,
                 x: jax.Array) -> jax.Array:
  return jnp.matmul(x, weights.T, precision=_common.HIGHEST) + bias


@functools.partial(jax.jit, static_argnames=("num_classes",))
def _ridge_probe_impl(x, y, xt, yt, l2_reg, *, num_classes):
  weights, bias = fit_ridge(x, y, l2_reg, num_classes=num_classes)
  hit = lambda f, labels: jnp.mean(
      (jnp.argmax(ridge_logits(weights, bias, f), -1) == labels).astype(
          jnp.float32))
  test_acc = (jnp.array(jnp.nan, jnp.float32) if xt is None else hit(xt, yt))
  return weights, bias, hit(x, y), test_acc


def ridge_probe(train_features: ArrayLike, train_labels: ArrayLike,
                test_features: Optional[ArrayLike] = None,
                test_labels: Optional[ArrayLike] = None, *,
                num_classes: Optional[int] = None,
                l2_reg: float = DEFAULT_L2_REG) -> RidgeProbeResult:
  """Closed-form L2-regularised least-squares probe on {-1, 1} targets.

  ``W* = argmin_W ||X W - T||^2 + l2_reg ||W||^2`` with ``X`` the
  standardised train features plus a constant feature 100 and
  ``T = 2 onehot(y) - 1``; predictions are ``argmax`` of the fitted scores.

  Args:
    train_features: float[N, D] frozen features.
    train_labels: int[N] in ``[0, num_classes)``.
    test_features: optional float[M, D] for ``test_accuracy``.
    test_labels: int[M], required with ``test_features``.
    num_classes: C >= 2; inferred from concrete train labels when None.
    l2_reg: ridge penalty ``> 0`` (big_vision's few-shot default ``2**10``).

  Returns:
    A :class:`RidgeProbeResult` (weights [C, D] on the raw features); every
    field NaN when traced train or test labels lie outside
    ``[0, num_classes)``.

  Raises:
    ValueError: on bad shapes/dtypes, N = 0, fewer than two classes,
      (concrete) labels out of range, mismatched D or ``l2_reg <= 0``.

  References:
    big_vision ``evaluators/fewshot_lsr.py`` (Kolesnikov et al.; the few-shot
    linear evaluation of BiT/ViT); P1 figure (e), few-shot linear-probe error
    against m, via :func:`cljax.probes.fewshot_episodes`
    (``classifier="ridge"``).

  Examples:
    >>> import jax.numpy as jnp
    >>> from cljax import probes
    >>> x = jnp.array([[1., 0.], [2., .5], [0., 1.], [.5, 2.]])
    >>> res = probes.ridge_probe(x, jnp.array([0, 0, 1, 1]), l2_reg=1.0)
    >>> res.weights.shape, res.train_accuracy.item()
    ((2, 2), 1.0)
  """
  num_classes, x, y, xt, yt = _common.classifier_inputs(
      train_features, train_labels, test_features, test_labels, num_classes)
  _common.check_hyper(l2_reg, "l2_reg")
  weights, bias, train_acc, test_acc = _ridge_probe_impl(
      x, y, xt, yt, jnp.asarray(l2_reg, x.dtype), num_classes=num_classes)
  result = RidgeProbeResult(weights=weights, bias=bias,
                            train_accuracy=train_acc, test_accuracy=test_acc)
  return checks.nan_if_labels_out_of_range(result, train_labels, test_labels,
                                            num_classes=num_classes)
