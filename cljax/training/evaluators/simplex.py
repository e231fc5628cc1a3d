"""``type="simplex"``: distance of the class means to a regular simplex (P2).

``eval/simplex/{distance,angular_mean,angular_std,angular_target,
sample_angular}`` of the objective's features (``objective_features``) on
the train subset, by ``simplex_geometry``. Fields: ``num_train``.
"""

from __future__ import annotations

import numpy as np

from cljax import geometry
from cljax.training import objective
from cljax.training.evaluators import _base


def simplex_geometry(features, labels, num_classes: int) -> dict[str, float]:
  """How close the raw class means are to a regular simplex (P2, s. 3.3).

  Args:
    features: float[N, D] objective features.
    labels: int[N].
    num_classes: C.

  Returns:
    "distance": ``geometry.etf_distance`` of the raw (uncentred) class means,
    0 exactly at a regular simplex centred at the origin; "angular_mean" and
    "angular_std": the angular similarity ``1 - arccos(cos)/pi`` over pairs
    of class means (target ``1 - arccos(-1/(C-1))/pi``, "angular_target");
    "sample_angular": mean angular similarity of a sample to its class mean
    (1 at class collapse).

  >>> import numpy as np
  >>> out = simplex_geometry(np.eye(3)[[0, 1, 2]], np.arange(3), 3)
  >>> round(out["angular_mean"], 6), round(out["sample_angular"], 6)
  (0.5, 1.0)
  """
  f = np.asarray(features, np.float64)
  y = np.asarray(labels)
  counts = np.bincount(y, minlength=num_classes)
  means = np.zeros((num_classes, f.shape[1]))
  np.add.at(means, y, f)
  means /= np.maximum(counts, 1)[:, None]
  u = objective.unit(means[counts > 0])
  c = u.shape[0]
  cos = np.clip(u @ u.T, -1.0, 1.0)[~np.eye(c, dtype=bool)]
  angular = 1.0 - np.arccos(cos) / np.pi
  to_mean = np.clip(np.sum(objective.unit(f) * objective.unit(means)[y],
                           axis=-1), -1.0, 1.0)
  return {
      "distance": float(geometry.etf_distance(
          f.astype(np.float32), y, num_classes=num_classes, center=False)),
      "angular_mean": float(angular.mean()),
      "angular_std": float(angular.std()),
      "angular_target": float(1.0 - np.arccos(-1.0 / (c - 1)) / np.pi),
      "sample_angular": float(np.mean(1.0 - np.arccos(to_mean) / np.pi)),
  }


class Evaluator(_base.SubsetEvaluator):
  """Simplex geometry of the objective features of the train subset."""

  def run(self, cache, *, step: int) -> dict[str, float]:
    del step
    train = cache.train(self.num_train)
    f = objective.objective_features(train.h, train.z_raw, self.config)
    return {f"eval/simplex/{k}": v for k, v in
            simplex_geometry(f, train.labels, self.num_classes).items()}
