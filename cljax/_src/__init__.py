"""Private helpers shared by the science packages (optax's ``_src`` rule).

``checks`` (argument and label checks that name the fix), ``class_stats``
(per-class sums and counts), ``docs`` (docstring fragments shared by several
public functions) and ``engine`` (the dense and tiled kernels behind every
contrastive loss). Nothing here is public API: import the public packages
(``cljax.losses``, ``cljax.geometry``, ``cljax.probes``, ``cljax.theory``).
Everything here imports only JAX, NumPy and other ``_src`` modules.
"""
