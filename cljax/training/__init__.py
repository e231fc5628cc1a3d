"""The training runtime: one loop for every experiment, and what it needs.

``train`` (the loop: ``train_and_evaluate``), ``train_step`` (the jitted step
and its monitors), ``optim`` (the optimizer factory), ``checkpoint`` (the
orbax checkpoint writer), ``metric_writer`` (``metrics.jsonl``),
``run_identity`` (config checks and the work dir's identity), ``_lock`` and
``_interrupt`` (one run per work dir; a signal ends it with a checkpoint),
``errors`` (the exit statuses), ``evaluators`` (evaluators by name from the
config), ``compile_cache`` (JAX's persistent compilation cache) and
``provenance`` (which code trained a run). The command line is
``cljax.main``; sweeps are ``cljax.sweep``.

This ``__init__`` imports nothing, so ``cljax.analysis`` may read
``errors`` or ``metric_writer`` without loading the loop.
"""
