"""``type="dataset_gap"``: P1's exact whole-split losses and gap.

Luthra et al. define CL and NSCL over the whole training set, not a batch:
this evaluator runs ``cljax.analysis.evaluate.evaluate_split`` on the current
variables (view 1 augmented, view 2 clean by default) and logs
``eval/<name>/{ntxent,dcl,nscl,gap,gap_bound}``. It embeds K views of every
example, so it does not share the step's clean features; run it rarely
(``final_only=True``). Fields: ``split`` ("train"), ``num_views`` (2),
``view_mode``, ``temperature`` (1.0, the theorem's), ``max_examples``.
"""

from __future__ import annotations

import jax

from cljax.analysis import checkpoints
from cljax.analysis import evaluate

LOGGED = ("ntxent", "dcl", "nscl", "gap", "gap_bound")


class Evaluator:
  """Exact whole-split CL/NSCL losses and the Theorem-1 gap."""
  needs_labels = True

  def __init__(self, *, context, split: str = "train", num_views: int = 2,
               view_mode: str = "augmented_and_clean",
               temperature: float = 1.0, max_examples: int | None = None):
    if view_mode not in evaluate.VIEW_MODES:
      raise ValueError(
          f"Unknown config.evals.{context.name}.view_mode {view_mode!r}; "
          f"choose one of {list(evaluate.VIEW_MODES)}.")
    self.context = context
    self.kwargs = dict(num_views=num_views, view_mode=view_mode,
                       temperature=temperature, max_examples=max_examples,
                       seed=int(context.config.seed),
                       batch_size=int(context.batch_size))
    self.split = split

  def train_rows(self):
    return None

  def run(self, cache, *, step: int) -> dict[str, float]:
    ctx = self.context
    # evaluate_split embeds on one device; the replicated variables already
    # hold a full copy on each local device, so no transfer is needed.
    local = jax.tree.map(lambda a: a.addressable_data(0), cache.variables)
    run = checkpoints.Run(
        workdir=ctx.workdir, config=ctx.config, step=int(step),
        variables=local, metrics=[], model=ctx.model,
        input_shape=tuple(ctx.input_shape), input_mean=ctx.input_mean,
        input_std=ctx.input_std)
    out = evaluate.evaluate_split(run, self.split, **self.kwargs)
    return {f"eval/{ctx.name}/{k}": out["losses"][k] for k in LOGGED}
