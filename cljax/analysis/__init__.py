"""Analysis of finished runs: what the colabs and ``cljax.reproduce`` call.

``checkpoints`` (load a work dir: config, metrics, the model from its newest
checkpoint), ``sweeps`` (read a sweep dir, aggregate over seeds, pair by
seed), ``evaluate`` (exact whole-split losses and geometry of a loaded run),
``stats`` (intervals over seeds, fits), ``plots`` and ``colab`` (the notebooks'
helpers). Nothing here imports the training loop (``cljax.training.train``),
so a colab opens on a machine that only reads runs.
"""
