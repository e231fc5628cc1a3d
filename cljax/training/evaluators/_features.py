"""One embedding of each split per evaluation step, shared by the evaluators.

The model variables stay where training keeps them (replicated on the run's
mesh): each batch of inputs is sharded on the ``("data",)`` axis, embedded in
eval mode by one jitted call, and the features of a whole split cross to the
host once. Before this, the variables went to NumPy and back for every batch
of every split, and the train split was embedded again for the fit measure.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from cljax.training import objective

# A request for every training example, in the split's order (the fit
# measure); an int n asks for the evaluation subset, the first n rows of a
# seeded permutation, so smaller subsets are prefixes of larger ones.
ALL = "all"


class Embedder:
  """Eval-mode ``(h, z)`` of many inputs, data parallel on ``mesh``.

  Args:
    model: the ``ContrastiveModel``.
    mesh: the run's 1-D ``("data",)`` mesh; the variables passed to
      ``__call__`` are replicated on it.
    batch_size: forward-pass batch (rounded up to a multiple of the devices).
  """

  def __init__(self, model, mesh, *, batch_size: int = 512):
    self._devices = int(mesh.devices.size)
    self.batch_size = -(-int(batch_size) // self._devices) * self._devices
    self._inputs = NamedSharding(mesh, P("data"))
    self._apply = jax.jit(
        lambda variables, x: model.apply(variables, x, train=False),
        out_shardings=NamedSharding(mesh, P()))

  def __call__(self, variables: Any, inputs: np.ndarray
               ) -> tuple[np.ndarray, np.ndarray]:
    """float[N, ...] host inputs -> (float32[N, D_enc], float32[N, D_head])."""
    n = int(inputs.shape[0])
    size = min(self.batch_size, -(-n // self._devices) * self._devices)
    hs, zs = [], []
    for lo in range(0, n, size):
      chunk = np.asarray(inputs[lo:lo + size], np.float32)
      rows = chunk.shape[0]
      if rows < size:  # Pad the last batch: one compiled shape per split.
        chunk = np.concatenate(
            [chunk, np.zeros((size - rows,) + chunk.shape[1:], np.float32)])
      # Every process holds the whole split; each supplies its devices'
      # slices, so the same code runs on one host and on several.
      x = jax.make_array_from_callback(chunk.shape, self._inputs,
                                       lambda index, c=chunk: c[index])
      h, z = self._apply(variables, x)
      hs.append(h[:rows])
      zs.append(z[:rows])
    # The only device-to-host transfer: the split's features, once.
    return (np.asarray(jnp.concatenate(hs), np.float32),
            np.asarray(jnp.concatenate(zs), np.float32))


class Features:
  """The features of one split (host arrays).

  Attributes:
    h: float32[N, D_enc] encoder features.
    z_raw: float32[N, D_head] head outputs (logits for cross-entropy).
    labels: int32[N] labels (training labels, with any label noise, on the
      train split; clean labels on the test split).
    clean_labels: int32[N] labels before noise (train split; else labels).
  """

  def __init__(self, h, z_raw, labels, clean_labels=None):
    self.h, self.z_raw = h, z_raw
    self.labels = labels
    self.clean_labels = labels if clean_labels is None else clean_labels
    self._z = None

  @property
  def z(self) -> np.ndarray:
    """The head outputs on the unit sphere (what the losses see)."""
    if self._z is None:
      self._z = objective.unit(self.z_raw)
    return self._z

  def get(self, name: str) -> np.ndarray:
    """"h" or "z" (normalised): the two feature sets the metrics report."""
    return self.h if name == "h" else self.z

  def rows(self, index) -> "Features":
    return Features(self.h[index], self.z_raw[index], self.labels[index],
                    self.clean_labels[index])


class Splits:
  """The evaluation inputs of a run: its train split and its test split.

  Args:
    data: the run's data pipeline (``train_arrays``, ``eval_split``,
      ``num_classes``).
    seed: seeds the permutation that draws the evaluation subsets.
  """

  def __init__(self, data, *, seed: int):
    self.x_train, self.y_train, self.y_train_clean = data.train_arrays(
        normalize=True)
    self.x_test, self.y_test = data.eval_split()
    self.num_classes = data.num_classes
    self.permutation = np.random.default_rng(seed).permutation(
        self.x_train.shape[0])


class FeatureCache:
  """The features of one evaluation step; each split is embedded once.

  Args:
    splits: ``Splits``.
    embed: ``Embedder`` (or any ``(variables, x) -> (h, z)``).
    variables: the model's ``{"params", "batch_stats"}`` (on device).
    train_rows: the largest train request of the evaluators due at this
      step: ``ALL``, an int (subset size) or None.
  """

  def __init__(self, splits: Splits, embed, variables, train_rows=None):
    self._splits, self._embed = splits, embed
    self.variables = variables  # Read by evaluators that embed on their own.
    self._plan = train_rows
    self._train = None   # (Features, "all" | prefix length)
    self._test = None

  def train(self, num_train: int | None = None) -> Features:
    """The whole train split (None) or its seeded subset of ``num_train``."""
    s = self._splits
    n_total = s.x_train.shape[0]
    want = ALL if num_train is None else min(int(num_train), n_total)
    if self._train is None or not _covers(self._train[1], want):
      plan = _larger(self._plan, want, n_total)
      if plan == ALL:
        h, z = self._embed(self.variables, s.x_train)
        feats = Features(h, z, s.y_train, s.y_train_clean)
      else:
        idx = s.permutation[:plan]
        h, z = self._embed(self.variables, s.x_train[idx])
        feats = Features(h, z, s.y_train[idx], s.y_train_clean[idx])
      self._train = (feats, plan)
    feats, have = self._train
    if want == ALL:
      return feats
    if have == ALL:
      return feats.rows(s.permutation[:want])
    return feats if want == have else feats.rows(slice(0, want))

  def test(self) -> Features:
    """The clean test split."""
    if self._test is None:
      h, z = self._embed(self.variables, self._splits.x_test)
      self._test = Features(h, z, self._splits.y_test)
    return self._test


def _covers(have, want) -> bool:
  return have == ALL or (want != ALL and want <= have)


def _larger(a, b, n_total):
  """The request that serves both ``a`` and ``b`` (None: no request)."""
  if a is None:
    return b
  if ALL in (a, b):
    return ALL
  return min(max(int(a), int(b)), n_total)
