"""What the training objective sees: the CE classifier and its features.

Cross-entropy (Graf et al.'s CE, CE on the sphere, CE-fix) trains a bias-free
linear classifier on the encoder features; the contrastive losses act on the
head output. The simplex geometry and the class-mean fit classifier are
measured on these "objective features".

The train step, the run's config checks and the evaluators import this
module, and ``CROSS_ENTROPY`` is the one definition of the loss name (the
free-features driver, ``cljax.unconstrained``, reads it here too); it
imports no other cljax module.
"""

from __future__ import annotations

import copy

import ml_collections
import numpy as np

CROSS_ENTROPY = "cross_entropy"


def is_cross_entropy(config) -> bool:
  """Whether the run trains a classifier head with cross-entropy (P2's CE)."""
  return config.loss.name == CROSS_ENTROPY


def with_classifier(config, num_classes: int):
  """The config whose model a cross-entropy run trains (others unchanged).

  P2's CE models have no projection head: a bias-free linear classifier
  (``models.ClassifierHead``) maps the encoder features to ``num_classes``
  logits. Its variant comes from ``config.classifier`` (``normalize``: CE on
  the sphere; ``fixed="simplex"``: CE-fix; ``radius``; ``rotation_seed``),
  and the number of classes from the data, so one config switches between
  SupCon and CE with ``--config.loss.name`` alone (the contrastive
  ``loss.kwargs`` are not passed to cross-entropy). The returned copy is what
  ``config.json`` records, so ``runs.load`` rebuilds the classifier.

  Args:
    config: the run config.
    num_classes: classes of the training data (after any class subset).

  Returns:
    ``config`` itself for contrastive losses; else a copy with
    ``model.head="classifier"`` and its ``head_kwargs``.

  Raises:
    ValueError: an explicit classifier head whose ``num_classes`` disagrees
      with the data.
  """
  if not is_cross_entropy(config):
    return config
  config = copy.deepcopy(config)
  if config.model.get("head", "none") == "classifier":
    given = config.model.head_kwargs.get("num_classes", num_classes)
    if given != num_classes:
      raise ValueError(
          f"config.model.head_kwargs.num_classes={given} but the data has "
          f"{num_classes} classes; drop the field or set it to "
          f"{num_classes}.")
    kwargs = config.model.head_kwargs.to_dict()
  else:
    given = config.get("classifier", None)
    kwargs = {} if given is None else given.to_dict()
  with config.unlocked():
    config.model.head = "classifier"
    config.model.head_kwargs = ml_collections.ConfigDict(
        {**kwargs, "num_classes": num_classes})
  return config


def unit(x: np.ndarray) -> np.ndarray:
  """Rows of ``x`` on the unit sphere (zero rows stay zero)."""
  return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


def objective_features(h: np.ndarray, z: np.ndarray, config) -> np.ndarray:
  """The features the training objective acts on, float[N, D].

  Cross-entropy: the encoder features ``h``, on the unit sphere when the
  classifier normalises them (CE on the sphere). Contrastive losses: the head
  output ``z``, on the unit sphere under the losses' default "sphere"
  normalisation (for P2's SupCon there is no head, so this is ``h`` on the
  sphere). The simplex geometry and the class-mean fit classifier use these.

  Args:
    h: float[N, D_enc] encoder features.
    z: float[N, D_head] head outputs (logits for cross-entropy).
    config: the run config (after ``with_classifier``).

  >>> import ml_collections, numpy as np
  >>> config = ml_collections.ConfigDict(
  ...     {"loss": {"name": "supcon", "kwargs": {}}})
  >>> objective_features(np.ones((2, 3)), np.array([[3., 4.], [0., 2.]]),
  ...                    config).tolist()
  [[0.6, 0.8], [0.0, 1.0]]
  """
  if is_cross_entropy(config):
    return unit(h) if config.model.head_kwargs.get("normalize", False) else h
  normalize = config.loss.get("kwargs", {}).get("normalize", "sphere")
  return unit(z) if normalize == "sphere" else z
