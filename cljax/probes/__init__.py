"""Probes on frozen features: NCC, mean classifier, kNN, linear, few-shot.

Every classifier here reads frozen features ``float[N, D]`` and integer class
ids ``int[N]`` in ``[0, num_classes)``. Nothing trains an encoder. Classifier
weights are ``float[C, D]`` (one row per class) everywhere.

Modules, each with one job, and the papers they come from:

* :mod:`~cljax.probes.centers`: class centres, **nearest class centre**
  (NCC / NCCC, ``argmin_c ||z - mu_c||``; P1, Luthra et al.) and the **mean
  classifier** (``argmax_c <z, mu_c>``; P2's ``explicit_linear``, P3).
* :mod:`~cljax.probes.knn`: **kNN** majority vote, cosine (P1's scikit-learn
  set-up) or Euclidean, with a sharded bank under ``axis_name``.
* :mod:`~cljax.probes.linear`: the **linear probe**, a linear layer trained
  with optax cross-entropy; bias-free by default as in P1 and P2.
* :mod:`~cljax.probes.ridge`: the closed-form **ridge probe** of big_vision's
  few-shot evaluator.
* :mod:`~cljax.probes.fewshot`: Luthra et al.'s ``m``-shot ``C'``-way
  **episodes** (NCC beside the linear or ridge probe per episode), a fresh
  subset per episode drawn from ``jax.random.fold_in(key, episode)``.

Conventions shared by all functions:

* Data arguments are positional, every hyper-parameter is keyword-only
  (``ncc_accuracy(xtr, ytr, xte, yte, num_classes=10)``).
* Scores are computed in at least float32 (bfloat16 inputs are promoted) with
  ``Precision.HIGHEST`` matmuls, so GPU/TPU TF32 defaults do not flip close
  decisions.
* Ties in ``argmax``/``argmin`` go to the **lowest class id** (``jnp.argmax``
  semantics); ``top_k`` likewise prefers lower ids.
* An empty class has a zero centre. Pass ``class_mask`` (or use the
  ``*_accuracy`` helpers, which do it for you) so that a class without training
  samples can never be predicted.
* Probes whose answer is a sum over examples (``accuracy``,
  ``class_centers``, ``ncc_accuracy``, ``mean_classifier_accuracy``,
  ``knn_predict``, ``knn_accuracy``) take ``axis_name``: called per device
  inside ``jax.shard_map`` or ``jax.pmap``, they return the global-batch
  value from psum'd counts.
* Validation follows :mod:`cljax._src.checks`: shapes, dtypes and Python
  hyper-parameters are checked at trace time. Labels outside
  ``[0, num_classes)`` raise a ``ValueError`` when concrete; when traced
  (``jit``, sharded ``jit``, per device with ``axis_name``) the whole result
  is NaN instead (integer results such as ``knn_predict``'s ids are -1), on
  every device, never a plausible number computed without the bad samples.
"""

from cljax.probes.centers import accuracy
from cljax.probes.centers import class_centers
from cljax.probes.centers import mean_classifier_accuracy
from cljax.probes.centers import mean_classifier_loss
from cljax.probes.centers import mean_classifier_predict
from cljax.probes.centers import ncc_accuracy
from cljax.probes.centers import ncc_predict
from cljax.probes.fewshot import FewShotResult
from cljax.probes.fewshot import fewshot_episodes
from cljax.probes.knn import knn_accuracy
from cljax.probes.knn import knn_predict
from cljax.probes.linear import LinearProbeResult
from cljax.probes.linear import linear_probe
from cljax.probes.linear import linear_probe_predict
from cljax.probes.ridge import RidgeProbeResult
from cljax.probes.ridge import ridge_probe

__all__ = [
    "FewShotResult",
    "LinearProbeResult",
    "RidgeProbeResult",
    "accuracy",
    "class_centers",
    "fewshot_episodes",
    "knn_accuracy",
    "knn_predict",
    "linear_probe",
    "linear_probe_predict",
    "mean_classifier_accuracy",
    "mean_classifier_loss",
    "mean_classifier_predict",
    "ncc_accuracy",
    "ncc_predict",
    "ridge_probe",
]
