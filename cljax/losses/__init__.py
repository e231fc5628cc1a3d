"""Contrastive losses of the three papers, as pure functions.

One module per family: ``infonce`` (ntxent, dcl), ``supervised`` (nscl,
supcon), ``hard`` (hard_contrastive, debiased_contrastive), ``hscl_2022``
(the 2022 H-SCL estimator), ``combined`` (all_losses, cl_nscl),
``classifier`` (cross_entropy, simplex_classifier) and ``registry``
(``LossSpec``, ``get``); all on the private engine ``cljax._src.engine``.

Every loss takes embeddings ``z: float[N, K, D]`` (N samples, K views of each)
and, where it needs them, integer ``labels: int[N]``, and returns a scalar.
Views are flattened sample-major: view ``a = i*K + l`` is view ``l`` of sample
``i``. An *anchor* is one view; its logits against every view of the batch are
``s_ab = <z_a, z_b> / temperature`` after the chosen ``normalize``:

* ``"sphere"``: z/||z|| (cosine similarity; Luthra et al., Graf et al.),
* ``"ball"``: z/max(1, ||z||) (Jiang et al.'s code),
* ``"none"``: raw inner products.

Common arguments:
  temperature: Python float > 0 (or a traced scalar, then unchecked).
  normalize: one of the three modes above.
  axis_name: ``None`` for a call on the whole (possibly sharded) batch. Set it
    when calling per device inside ``jax.shard_map`` or ``jax.pmap`` with the
    batch split along that mapped axis: the keys are all-gathered, the
    per-device result is the loss of the **global** batch. The one
    gradient rule is the standard data-parallel idiom: per-device
    ``value_and_grad`` then ``jax.lax.pmean`` of the parameter gradients
    (``pmap``, or ``shard_map`` with the gradient inside), ``jax.grad``
    outside a ``shard_map``, or plain ``jit`` on a sharded batch; each gives
    the global-batch gradient. (Inside ``pmap`` the per-device gradient
    w.r.t. the local embeddings is n_devices times their slice of the
    global one; the ``pmean`` divides it out.)
  reduction: ``"mean"`` over valid anchors (default), ``"sum"`` over valid
    anchors, ``"batch"`` (sum over valid anchors divided by all N·K anchors,
    Graf et al.'s training reduction), or ``"none"`` (float[n, K] per-anchor
    losses of the local views, 0 at invalid anchors).
  return_counts: if True, return ``(loss, AnchorCounts)``.
  block_size: how the [N·K, N·K] logits are reduced. ``"dense"``: as one
    matrix (its backward keeps it: 4·V² bytes). An int B: tile by tile, B
    rows by B columns at a time, with a custom VJP that recomputes each tile
    (memory O(V·D + B²); same value and gradient up to float32 summation
    order; faster on CPU once the matrix leaves the cache). ``"auto"``
    (default): tiles once the local anchors times the views reach
    ``TILED_MIN_ENTRIES`` (4096² on CPU), dense below; tiles of
    ``DEFAULT_BLOCK_SIZE`` (512 on CPU; 256 for ``all_losses``). Both are
    dicts keyed by backend.

Anchors without a positive or without a negative (e.g. an NSCL anchor whose
class fills the batch) are *invalid*: they are excluded from the mean and
counted in ``AnchorCounts.num_valid`` / ``num_anchors``. If no anchor is valid,
"mean" returns 0 with zero gradient and ``num_valid == 0``; the value is never
NaN. NaN or Inf in ``z`` is not an empty mask: the loss is NaN, never a
plausible number. Label ranges are not checked: any integers identify classes.

Hyper-parameters are keyword-only scalars: a bool or an array of shape other
than () raises. ``temperature`` and ``beta`` may be traced under ``jit``
(e.g. a schedule); the losses are not differentiated w.r.t. ``beta``.

All logits are float32 (bfloat16 inputs are normalised in float32 and
multiplied with float32 accumulation); every log-sum-exp subtracts its max.
"""

from cljax._src import engine
from cljax.losses._common import AnchorCounts
from cljax.losses.classifier import cross_entropy
from cljax.losses.classifier import simplex_classifier
from cljax.losses.combined import all_losses
from cljax.losses.combined import cl_nscl
from cljax.losses.hard import debiased_contrastive
from cljax.losses.hard import HARD_ESTIMATORS
from cljax.losses.hard import HARD_NEGATIVES
from cljax.losses.hard import hard_contrastive
from cljax.losses.hscl_2022 import hscl_2022
from cljax.losses.infonce import dcl
from cljax.losses.infonce import ntxent
from cljax.losses.registry import get
from cljax.losses.registry import LOSSES
from cljax.losses.registry import LossSpec
from cljax.losses.registry import spec
from cljax.losses.supervised import nscl
from cljax.losses.supervised import supcon
from cljax.losses.supervised import SUPCON_VARIANTS

DEFAULT_BLOCK_SIZE = engine.DEFAULT_BLOCK_SIZE
TILED_MIN_ENTRIES = engine.TILED_MIN_ENTRIES
