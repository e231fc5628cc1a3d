"""Label-level dataset transforms: class subsets and symmetric label noise.

Both act on the label vector of a whole split on the host and are
deterministic, so a run, its resume and its evaluation agree on them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

NOISE_MODES = ("different", "uniform")

# Salt that separates the label-noise stream from the samplers' streams when
# they share a seed.
_NOISE_SALT = 0x6E6F6973


def class_list(classes: int | Sequence[int] | None, num_classes: int
               ) -> tuple[int, ...] | None:
  """Normalises a ``classes`` setting to a tuple of original class ids.

  Args:
    classes: ``None`` (keep all), an int ``k`` (keep classes ``0..k-1``), or
      a sequence of distinct class ids (kept in the given order).
    num_classes: number of classes of the dataset.

  Returns:
    The kept original class ids, in new-label order, or None for all.

  Raises:
    ValueError: ``k`` out of ``[1, num_classes]``, an id out of range, a
      duplicate id, or an empty list.
  """
  if classes is None:
    return None
  if isinstance(classes, (int, np.integer)) and not isinstance(classes, bool):
    if not 1 <= classes <= num_classes:
      raise ValueError(
          f"`classes` as an int keeps the first k classes and must lie in "
          f"[1, {num_classes}]; got {classes}.")
    return tuple(range(int(classes)))
  kept = tuple(int(c) for c in classes)
  if not kept:
    raise ValueError("`classes` must name at least one class; use None to "
                     "keep them all.")
  bad = [c for c in kept if not 0 <= c < num_classes]
  if bad:
    raise ValueError(
        f"`classes` contains ids {bad} outside [0, {num_classes}); the "
        f"dataset has {num_classes} classes under this `label_key`.")
  if len(set(kept)) != len(kept):
    raise ValueError(f"`classes` must not repeat ids; got {list(kept)}.")
  return kept


def select_classes(labels: np.ndarray, classes: Sequence[int]
                   ) -> tuple[np.ndarray, np.ndarray]:
  """Keeps examples of ``classes`` and remaps their labels to ``0..C'-1``.

  Class ``classes[j]`` becomes label ``j`` (the order given, not sorted
  order), so ``classes=(7, 2)`` maps 7 -> 0 and 2 -> 1.

  Args:
    labels: ``int[N]`` original labels.
    classes: distinct original class ids (validate with :func:`class_list`).

  Returns:
    ``(indices, new_labels)``: ``int64[N']`` indices of the kept examples in
    increasing order and their ``int64[N']`` remapped labels.

  Examples:
    >>> import numpy as np
    >>> from cljax.data import transforms
    >>> transforms.select_classes(np.array([0, 7, 2, 7]), (7, 2))
    (array([1, 2, 3]), array([0, 1, 0]))
  """
  labels = np.asarray(labels)
  lookup = np.full(max(int(labels.max()), max(classes)) + 1, -1, np.int64)
  lookup[list(classes)] = np.arange(len(classes))
  new = lookup[labels]
  indices = np.flatnonzero(new >= 0)
  return indices, new[indices]


def num_flips(rate: float, n: int) -> int:
  """``floor(rate * n)``, robust to binary rounding (0.29 * 100 -> 29)."""
  return int(math.floor(rate * n + 1e-9))


def add_label_noise(labels: np.ndarray, rate: float, num_classes: int, *,
                    seed: int, mode: str = "different") -> np.ndarray:
  """Symmetric label noise on exactly ``floor(rate * N)`` examples.

  The examples are chosen uniformly without replacement. Then:

  * ``"different"`` (Graf et al. 2021, Sec. 5.3): each chosen label moves to
    one of the *other* ``C - 1`` classes uniformly, so every chosen label is
    wrong and the corrupted fraction is exactly ``rate``.
  * ``"uniform"`` (Zhang et al. 2017): each chosen label is redrawn uniformly
    over all ``C`` classes, so about ``rate * (1 - 1/C)`` of the labels end
    up wrong; ``rate=1`` gives fully random labels.

  Args:
    labels: ``int[N]`` clean labels in ``[0, num_classes)``.
    rate: fraction ``p`` in ``[0, 1]``.
    num_classes: ``C``; ``"different"`` needs ``C >= 2``.
    seed: non-negative integer seed; the same seed gives the same noise.
    mode: ``"different"`` or ``"uniform"``.

  Returns:
    ``int64[N]`` noisy labels (a new array; ``labels`` is untouched).

  Raises:
    ValueError: ``rate`` outside ``[0, 1]``, unknown ``mode``, or
      ``"different"`` with a single class.

  References:
    Graf et al., "Dissecting Supervised Contrastive Learning", ICML 2021.
    Zhang et al., "Understanding deep learning requires rethinking
    generalization", ICLR 2017.
  """
  if not 0.0 <= rate <= 1.0:
    raise ValueError(
        f"`label_noise` (the flip rate) must lie in [0, 1]; got {rate}.")
  if mode not in NOISE_MODES:
    raise ValueError(
        f"`label_noise_mode` must be one of {NOISE_MODES}; got {mode!r}.")
  if mode == "different" and num_classes < 2 and rate > 0:
    raise ValueError(
        "Label noise mode 'different' needs at least 2 classes; keep more "
        "`classes` or use `label_noise_mode='uniform'`.")
  labels = np.asarray(labels, np.int64)
  noisy = labels.copy()
  rng = np.random.default_rng(np.random.SeedSequence([seed, _NOISE_SALT]))
  chosen = rng.choice(labels.size, size=num_flips(rate, labels.size),
                      replace=False)
  if mode == "different":
    # Adding an offset in 1..C-1 modulo C is a uniform draw over the others.
    offsets = rng.integers(1, num_classes, size=chosen.size)
    noisy[chosen] = (labels[chosen] + offsets) % num_classes
  else:
    noisy[chosen] = rng.integers(0, num_classes, size=chosen.size)
  return noisy
