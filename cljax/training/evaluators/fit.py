"""``type="fit"``: P2's iterations to fit (section 3.4) and the stop decision.

Measures the accuracy on the whole training set under its (noisy) training
labels, ``fit/train_acc`` (with ``fit/clean_train_acc``: the same predictions
against the clean labels; ``fit/test_acc``: the same classifier on the clean
test split; ``fit/fitted``), records the first step reaching ``threshold``
as ``fit/step`` in the summary and, with ``stop=True``, ends the run there.

Fields: ``every``; ``threshold`` in (0, 1] (1.0); ``stop`` (False);
``classifier`` (see ``fit_classifier``; "auto"); ``linear_steps`` (1000,
for ``classifier="linear"``).

P2's configs (``experiments/graf/*.py``) judge "fit" for CE and SupCon by
one rule, ``classifier="linear"`` (P2's ``retrained_linear`` on each loss's
objective features): a CE model judged by its own head and SupCon by class
means would time two different things. The class-mean rule is no common
choice: on CE's unnormalised or sphere-projected features it stalls below
100 % on clean digits (0.998 after 1500 iterations, measured) while CE's
head and the retrained layer fit them within 25 iterations.
"""

from __future__ import annotations

import jax
import numpy as np

from cljax import probes
from cljax.training import objective
from cljax.training.evaluators import _features

CLASSIFIERS = ("auto", "head", "mean", "linear")


def fit_classifier(kind: str, config) -> str:
  """The classifier whose training accuracy defines "fit".

  "head" (the CE model's own classifier), "mean" (P2's ``explicit_linear``:
  weights = train class means of the objective features, prediction argmax of
  the inner product) or "linear" (P2's ``retrained_linear``: a bias-free
  linear layer retrained on frozen objective features, SGD 0.1, weight decay
  1e-3, poly-5 decay, batch 256, ``linear_steps`` iterations). "auto" is
  "head" for cross-entropy and "mean" otherwise: a contrastive run's own head
  is never used, since it gets no classification signal.
  """
  if kind == "auto":
    return "head" if objective.is_cross_entropy(config) else "mean"
  return kind


def first_fit_step(rows: list[dict], threshold: float) -> int | None:
  """The first logged step whose training accuracy reached ``threshold``.

  >>> first_fit_step([{"step": 5, "fit/train_acc": 0.4},
  ...                 {"step": 10, "fit/train_acc": 0.9}], 0.8)
  10
  """
  for row in rows:
    if row.get("fit/train_acc", -1.0) >= threshold:
      return int(row["step"])
  return None


def measure_fit(train, test, *, kind: str, config, num_classes: int,
                linear_steps: int = 1000) -> dict[str, float]:
  """Accuracy on the whole training set with its (noisy) training labels.

  Args:
    train, test: ``Features`` of the whole train split (training and clean
      labels) and of the clean test split, unaugmented, in eval mode.
    kind: "head", "mean" or "linear" (after ``fit_classifier``).
    config: the run config (picks the objective features).
    num_classes: C.
    linear_steps: iterations of the retrained linear layer.

  Returns:
    "fit/train_acc" (noisy training labels: what "fit" means),
    "fit/clean_train_acc" (the same predictions against the clean labels)
    and "fit/test_acc" (the same classifier on the clean test split).
  """
  if kind == "head":
    pred_tr, pred_te = np.argmax(train.z_raw, -1), np.argmax(test.z_raw, -1)
  else:
    f_tr = objective.objective_features(train.h, train.z_raw, config)
    f_te = objective.objective_features(test.h, test.z_raw, config)
    if kind == "mean":
      centers = probes.class_centers(f_tr, train.labels, num_classes=num_classes)
      # A class absent from the train split has a zero centre, which would
      # win wherever every present class scores below zero.
      present = np.bincount(np.asarray(train.labels),
                            minlength=num_classes) > 0
      pred_tr = np.asarray(probes.mean_classifier_predict(
          f_tr, centers, class_mask=present))
      pred_te = np.asarray(probes.mean_classifier_predict(
          f_te, centers, class_mask=present))
    else:
      probe = probes.linear_probe(
          f_tr, train.labels, num_classes=num_classes,
          key=jax.random.key(config.seed), steps=linear_steps,
          learning_rate=0.1, batch_size=256, weight_decay=1e-3,
          optimizer="sgd", momentum=0.9, decay_power=5.0)
      # linear_probe_predict reads the weights in the layout linear_probe
      # returns them ([C, D] from this round on).
      pred_tr = np.asarray(probes.linear_probe_predict(f_tr, probe.weights))
      pred_te = np.asarray(probes.linear_probe_predict(f_te, probe.weights))
  return {"fit/train_acc": float(np.mean(pred_tr == train.labels)),
          "fit/clean_train_acc": float(np.mean(pred_tr == train.clean_labels)),
          "fit/test_acc": float(np.mean(pred_te == test.labels))}


class Evaluator:
  """The fit detector: logs the fit accuracies and decides the stop."""
  needs_labels = True

  def __init__(self, *, context, threshold: float = 1.0, stop: bool = False,
               classifier: str = "auto", linear_steps: int = 1000):
    where = f"config.evals.{context.name}"
    if classifier not in CLASSIFIERS:
      raise ValueError(f"Unknown {where}.classifier {classifier!r}; choose "
                       f"one of {list(CLASSIFIERS)}.")
    if classifier == "head" and not objective.is_cross_entropy(
        context.config):
      raise ValueError(
          f"{where}.classifier='head' needs a trained classifier head "
          "(loss cross_entropy); a contrastive run's head gets no "
          "classification signal. Use 'mean' or 'linear'.")
    if not 0.0 < threshold <= 1.0:
      raise ValueError(f"{where}.threshold must lie in (0, 1]; got "
                       f"{threshold}.")
    self.config, self.num_classes = context.config, context.num_classes
    self.threshold, self.stop_when_fit = float(threshold), bool(stop)
    self.kind = fit_classifier(classifier, context.config)
    self.linear_steps = int(linear_steps)
    self.fit_step = None

  def train_rows(self):
    return _features.ALL

  def resume(self, rows: list[dict]) -> None:
    """A resumed run keeps the fit step its replayed rows recorded."""
    self.fit_step = first_fit_step(rows, self.threshold)

  @property
  def stop(self) -> bool:
    """Whether the run should end: fit reached, with ``stop=True``."""
    return self.stop_when_fit and self.fit_step is not None

  def summary(self) -> dict:
    return {"fit/step": self.fit_step}

  def run(self, cache, *, step: int) -> dict[str, float]:
    out = measure_fit(cache.train(None), cache.test(), kind=self.kind,
                      config=self.config, num_classes=self.num_classes,
                      linear_steps=self.linear_steps)
    if self.fit_step is None and out["fit/train_acc"] >= self.threshold:
      self.fit_step = int(step)
    out["fit/fitted"] = float(self.fit_step is not None)
    return out
