"""The training runtime: one loop for every experiment, and what it needs.

``train`` (the loop: ``train_and_evaluate``), ``startup`` (what a run is
built from before its first step: mesh, data, model, optimiser, evaluators,
the initial or restored state), ``train_step`` (the jitted step and its
monitors), ``optim`` (the optimizer factory), ``checkpoint`` (the orbax
checkpoint writer), ``metric_writer`` (``metrics.jsonl``), ``run_identity``
(config checks and the work dir's identity), ``_lock`` and ``_interrupt``
(one run per work dir; a signal ends it with a checkpoint), ``errors`` (the
exit statuses), ``evaluators`` (evaluators by name from the config),
``compile_cache`` (JAX's persistent compilation cache), ``provenance``
(which code trained a run) and ``sweep_index`` (the writer of a sweep dir's
``sweep.json``). The command line is ``cljax.main``; sweeps are
``cljax.sweep``.

This ``__init__`` imports nothing, so ``cljax.analysis`` may read
``errors`` or ``metric_writer`` without loading the loop.
"""
