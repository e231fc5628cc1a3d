"""Former home of the loss engine, now the private package ``cljax._engine``.

Kept so that ``from cljax import _similarity`` (e.g. ``normalize``) still
works; new code imports ``cljax._engine``.
"""

# pylint: disable=unused-import
from cljax._engine import *  # noqa: F401,F403
from cljax._engine import __all__  # noqa: F401
