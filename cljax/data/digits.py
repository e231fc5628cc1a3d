"""`cljax_digits`: scikit-learn's bundled 8x8 handwritten digits as TFDS.

A small real image dataset that needs no download: ``load_digits`` ships with
scikit-learn (1797 images, 10 classes, 16 grey levels). Examples are
``image: float32[8, 8, 1]`` in ``[0, 1]`` (grey level / 16) and
``label: ClassLabel(10)``.

The train/test split is fixed and stratified: within each class the examples
are permuted with ``numpy.random.default_rng(0)`` and the first
``round(0.2 * n_c)`` go to ``test`` (359 test, 1438 train in total). The split
does not depend on any run seed, so every experiment sees the same test set.

scikit-learn is needed only to *prepare* the dataset; reading it back needs
only TFDS and NumPy.
"""

from __future__ import annotations

import numpy as np
import tensorflow_datasets as tfds

from cljax.data import _embedded

NAME = "cljax_digits"
_TEST_FRACTION = 0.2
_SPLIT_SEED = 0


def split_indices() -> dict[str, np.ndarray]:
  """The fixed stratified split as sorted indices into ``load_digits()``."""
  labels = _load()[1]
  rng = np.random.default_rng(_SPLIT_SEED)
  test = []
  for c in range(10):
    members = rng.permutation(np.flatnonzero(labels == c))
    test.append(members[:int(round(_TEST_FRACTION * members.size))])
  test = np.sort(np.concatenate(test))
  train = np.setdiff1d(np.arange(labels.size), test)
  return {"train": train, "test": test}


def _load() -> tuple[np.ndarray, np.ndarray]:
  try:
    from sklearn import datasets  # pylint: disable=g-import-not-at-top
  except ImportError as e:
    raise ImportError(
        "Preparing `cljax_digits` needs scikit-learn (its bundled 8x8 digits, "
        "no download): `pip install scikit-learn`.") from e
  digits = datasets.load_digits()
  return digits.images, digits.target


class Digits(_embedded.EmbeddedBuilder):
  """TFDS builder of scikit-learn's 8x8 digits (see module docstring)."""

  name = NAME
  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "Initial release."}

  def _info(self) -> tfds.core.DatasetInfo:
    return tfds.core.DatasetInfo(
        builder=self,
        description=__doc__.split("\n\n")[0],
        features=tfds.features.FeaturesDict({
            "image": tfds.features.Tensor(shape=(8, 8, 1), dtype=np.float32),
            "label": tfds.features.ClassLabel(num_classes=10),
        }),
        supervised_keys=("image", "label"),
        homepage="https://scikit-learn.org/stable/datasets/toy_dataset.html",
    )

  def _split_generators(self, dl_manager):
    del dl_manager  # Bundled with scikit-learn: nothing to download.
    return {split: self._generate_examples(split)
            for split in ("train", "test")}

  def _generate_examples(self, split):
    images, labels = _load()
    images = (images / 16.0).astype(np.float32)[..., None]
    for i in split_indices()[split]:
      yield int(i), {"image": images[i], "label": int(labels[i])}
