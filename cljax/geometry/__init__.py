"""Representation-geometry metrics: neural collapse, CDNV, spectra, alignment.

Every metric takes frozen features ``float[N, D]`` with integer labels
``int[N]`` (or views ``float[N, K, D]``), data arguments positional and every
hyper-parameter keyword-only, and returns a float32 scalar or small array.
They are pure, run eagerly and under ``jax.jit`` (pass ``num_classes`` as a
static Python int there), accept float32 and bfloat16 input and compute
internally in float32 with full-precision matmuls.

Three ways to run, one value:

* **Global batch**, unsharded: jitted on one device.
* **Global batch sharded on an Explicit mesh** (``jit`` over the training
  layout): per-shard statistics reduced across the mesh; the features are
  never gathered (peak memory O(N/devices D + C D + D^2)).
* **Per device** with ``axis_name=`` inside ``jax.shard_map`` or
  ``jax.pmap``: every device returns the global-batch value, computed from
  psum'd sufficient statistics. Outside a mapped context ``axis_name``
  raises a ``ValueError``.

Conventions shared by all class-based metrics:

* **Empty classes are masked.** A class id in ``[0, num_classes)`` with no
  sample is excluded from every metric: it has no mean, it is not counted in
  ``C`` (the number of non-empty classes is used instead, e.g. in the simplex
  target ``-1/(C-1)``) and it never produces a NaN. ``class_means`` returns a
  zero row for it.
* **Centring.** ``center=True`` (alias ``"global"``) subtracts the global mean
  of all samples (Papyan et al.); ``"classes"`` subtracts the unweighted mean
  of the non-empty class means (the two agree for balanced classes); ``False``
  (alias ``"none"``) uses raw means, as P2 and P3 do.
* **Cosines** of a zero vector are 0 (the convention of
  ``torch.nn.functional.cosine_similarity``).
* **Coincident class means** are those closer than float32 round-off of the
  features' scale (128 eps relative); pairs of them are skipped by the CDNVs.
* **Undefined values are NaN**, never silently 0: a mean over zero valid pairs
  (fewer than two non-empty classes, or all class means coincident, e.g.
  constant features), ``nc1`` with one class, ratios with a zero denominator,
  and any NaN or Inf in the features return NaN.
* **Labels outside** ``[0, num_classes)`` raise a ``ValueError`` when the
  labels are concrete. When they are traced (under ``jit``, sharded ``jit``,
  per device with ``axis_name`` or in an un-jitted ``shard_map``), nothing
  can raise: the whole result is NaN instead (every value of a dict or
  tuple; integer results such as ``class_counts`` are -1), on every device,
  even when the bad label sits on one shard only. It is never a plausible
  number computed without the bad samples (``cljax._src.checks``).

``init``/``update``/``merge``/``finalize`` accumulate the same statistics
over batches on device; ``FeatureStatistics`` is their float64 NumPy
reference on the host.

References:
  Papyan, Han & Donoho, "Prevalence of neural collapse during the terminal
  phase of deep learning training", PNAS 2020 (NC1-NC4).
  Galanti, Gyorgy & Hutter, "On the role of neural collapse in transfer
  learning", ICLR 2022 (CDNV).
  Luthra, Yang & Galanti, "Self-supervised contrastive learning is
  approximately supervised contrastive learning", NeurIPS 2025 (directional
  CDNV); ``docs/conventions.md#p1-geometry``.
  Jiang, Nguyen, Aeron & Ishwar, "Hard-negative sampling for contrastive
  learning", TMLR (zero-sum, unit-norm, equal inner product, dimensional
  collapse); ``docs/conventions.md#jiang-metrics``.
  Kini, Vakilian, Behnia, Gill & Thrampoulidis, "Symmetric neural-collapse
  representations with supervised contrastive loss: the impact of ReLU and
  batching", ICLR 2024 (orthogonal frame of ReLU features).
  Wang & Isola, "Understanding contrastive representation learning through
  alignment and uniformity on the hypersphere", ICML 2020.
  Roy & Vetterli, "The effective rank", EUSIPCO 2007; Garrido et al.,
  "RankMe", ICML 2023.
"""

from cljax.geometry.classifier import nc3_self_duality
from cljax.geometry.classifier import nc4_ncc_agreement
from cljax.geometry.collapse import class_counts
from cljax.geometry.collapse import class_mean_gram
from cljax.geometry.collapse import class_means
from cljax.geometry.collapse import equiangularity
from cljax.geometry.collapse import equinorm
from cljax.geometry.collapse import etf_distance
from cljax.geometry.collapse import max_angle
from cljax.geometry.collapse import nc1
from cljax.geometry.collapse import orthogonal_frame_distance
from cljax.geometry.host import FeatureStatistics
from cljax.geometry.hypersphere import alignment
from cljax.geometry.hypersphere import uniformity
from cljax.geometry.jiang import EqualInnerProduct
from cljax.geometry.jiang import equal_inner_product
from cljax.geometry.jiang import unit_norm
from cljax.geometry.jiang import within_class_distance
from cljax.geometry.jiang import zero_sum
from cljax.geometry.spectrum import class_mean_spectrum
from cljax.geometry.spectrum import effective_rank
from cljax.geometry.spectrum import singular_values
from cljax.geometry.streaming import Statistics
from cljax.geometry.streaming import finalize
from cljax.geometry.streaming import init
from cljax.geometry.streaming import merge
from cljax.geometry.streaming import update
from cljax.geometry.variability import augmentation_collapse
from cljax.geometry.variability import cdnv
from cljax.geometry.variability import directional_cdnv

__all__ = [
    "EqualInnerProduct",
    "FeatureStatistics",
    "Statistics",
    "alignment",
    "augmentation_collapse",
    "cdnv",
    "class_counts",
    "class_mean_gram",
    "class_mean_spectrum",
    "class_means",
    "directional_cdnv",
    "effective_rank",
    "equal_inner_product",
    "equiangularity",
    "equinorm",
    "etf_distance",
    "finalize",
    "init",
    "max_angle",
    "merge",
    "nc1",
    "nc3_self_duality",
    "nc4_ncc_agreement",
    "orthogonal_frame_distance",
    "singular_values",
    "uniformity",
    "unit_norm",
    "update",
    "within_class_distance",
    "zero_sum",
]
