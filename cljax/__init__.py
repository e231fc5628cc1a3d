"""cljax: losses, geometry, probes and theory of contrastive learning in JAX."""

from cljax import geometry
from cljax import losses
from cljax import probes
from cljax import theory

__version__ = "0.1.0"

__all__ = ["geometry", "losses", "probes", "theory"]
