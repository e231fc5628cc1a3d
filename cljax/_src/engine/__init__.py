"""The private engine behind every loss: row reductions of the logits.

Modules, each importing only those above it:

* ``views``: normalisation, the anchor/key layout and the key all-gather;
* ``reduce``: the reduction of per-anchor losses over the global batch;
* ``masks``: the masks over the logits, rebuilt from id vectors;
* ``terms``: one row reduction's partial statistics and cotangent;
* ``dense``: the one-matrix engine with its hand-written VJP;
* ``tiled``: the same, tile by tile (memory O(V·D));
* ``dispatch``: the block-size policy and ``row_reductions``.
"""

from cljax._src.engine.dispatch import check_block_size
from cljax._src.engine.dispatch import DEFAULT_BLOCK_SIZE
from cljax._src.engine.dispatch import resolve_block_size
from cljax._src.engine.dispatch import row_reductions
from cljax._src.engine.dispatch import TILED_MIN_ENTRIES
from cljax._src.engine.masks import build_mask
from cljax._src.engine.masks import mask_ids
from cljax._src.engine.masks import MASKS
from cljax._src.engine.masks import row_count
from cljax._src.engine.reduce import global_sum
from cljax._src.engine.reduce import nonempty
from cljax._src.engine.reduce import reduce_anchors
from cljax._src.engine.reduce import REDUCTIONS
from cljax._src.engine.terms import Term
from cljax._src.engine.views import logit_bound
from cljax._src.engine.views import logits
from cljax._src.engine.views import normalize
from cljax._src.engine.views import NORMALIZATIONS
from cljax._src.engine.views import own_sample_logits
from cljax._src.engine.views import prepare
from cljax._src.engine.views import Views

__all__ = [
    "check_block_size",
    "DEFAULT_BLOCK_SIZE",
    "resolve_block_size",
    "row_reductions",
    "TILED_MIN_ENTRIES",
    "build_mask",
    "mask_ids",
    "MASKS",
    "row_count",
    "global_sum",
    "nonempty",
    "reduce_anchors",
    "REDUCTIONS",
    "Term",
    "logit_bound",
    "logits",
    "normalize",
    "NORMALIZATIONS",
    "own_sample_logits",
    "prepare",
    "Views",
]
