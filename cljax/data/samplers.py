"""Host-side batch samplers: which example indices form each global batch.

A sampler turns ``(seed, epoch)`` into the whole epoch's index table
``int64[steps_per_epoch, global_batch]`` with NumPy, so the iterator state is
just ``(epoch, step)`` and a resumed run sees exactly the same batches.

* ``"shuffle"``: a fresh permutation each epoch, last partial batch dropped
  (SimCLR, P1's CL runs, P3).
* ``"iid"``: every index drawn uniformly *with replacement* (Graf et al.'s
  P2 batches). An "epoch" is ``N // B`` such batches, only a bookkeeping unit.
* ``"balanced"``: class-stratified (Luthra et al.'s NSCL sampler). Each epoch
  draws a random class order, shuffles every class, and lays the examples out
  round-robin ``c_1, c_2, ..., c_C, c_1, ...``. Any ``B`` consecutive slots
  then hold every class ``floor(B/C)`` or ``ceil(B/C)`` times, exactly
  ``B/C`` when ``C`` divides ``B``, so NSCL anchors always have negatives.
  Classes with fewer examples than the largest one are cycled (each pass
  reshuffled) up to its size, so an epoch is ``C * n_max`` slots and small
  classes are over-sampled rather than large ones truncated. Classes with no
  example are skipped.
"""

from __future__ import annotations

import numpy as np

SAMPLERS = ("shuffle", "iid", "balanced")

# Salts keep the samplers' random streams apart from each other (and from the
# label noise) when they share a seed.
_SALTS = {"shuffle": 0x73687566, "iid": 0x69696400, "balanced": 0x62616C61}


def _rng(name: str, seed: int, epoch: int) -> np.random.Generator:
  return np.random.default_rng(
      np.random.SeedSequence([seed, epoch, _SALTS[name]]))


def check_name(name: str) -> None:
  if name not in SAMPLERS:
    raise ValueError(
        f"Unknown sampler {name!r}; `sampler` must be one of {SAMPLERS}.")


def epoch_length(name: str, labels: np.ndarray) -> int:
  """Number of index slots in one epoch, before batching."""
  check_name(name)
  if name == "balanced":
    counts = np.bincount(labels)
    return int(np.count_nonzero(counts) * counts.max())
  return int(labels.size)


def steps_per_epoch(name: str, labels: np.ndarray, batch_size: int) -> int:
  """Full global batches per epoch (the last partial batch is dropped)."""
  return epoch_length(name, labels) // batch_size


def epoch_indices(name: str, labels: np.ndarray, *, seed: int, epoch: int,
                  batch_size: int) -> np.ndarray:
  """The index table of one epoch.

  Args:
    name: one of :data:`SAMPLERS`.
    labels: ``int[N]`` training labels (used by ``"balanced"`` only).
    seed: non-negative run seed.
    epoch: non-negative epoch number.
    batch_size: global batch size ``B``.

  Returns:
    ``int64[steps_per_epoch, B]``: row ``s`` holds the dataset indices of
    global batch ``s`` of this epoch.

  Raises:
    ValueError: unknown sampler name.
  """
  check_name(name)
  labels = np.asarray(labels)
  rng = _rng(name, seed, epoch)
  steps = steps_per_epoch(name, labels, batch_size)
  n = labels.size
  if name == "shuffle":
    order = rng.permutation(n)
  elif name == "iid":
    order = rng.integers(0, n, size=steps * batch_size)
  else:
    order = _balanced_order(rng, labels)
  return order[:steps * batch_size].reshape(steps, batch_size).astype(np.int64)


def _balanced_order(rng: np.random.Generator, labels: np.ndarray
                    ) -> np.ndarray:
  present = np.flatnonzero(np.bincount(labels))
  class_order = rng.permutation(present)
  n_max = int(np.bincount(labels).max())
  columns = []
  for c in class_order:
    members = np.flatnonzero(labels == c)
    passes = -(-n_max // members.size)  # ceil: cycle small classes
    column = np.concatenate([rng.permutation(members) for _ in range(passes)])
    columns.append(column[:n_max])
  # Row r of [n_max, C] is round r; reading it row-major interleaves classes.
  return np.stack(columns, axis=1).reshape(-1)
