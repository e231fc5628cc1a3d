"""The default evaluator set: ``standard()``, the usual ``config.evals``."""

from __future__ import annotations

import ml_collections


def standard(*, num_train: int | None = 2000, shots: int = 5, ways: int = 5,
             episodes: int = 100, linear_probe_steps: int = 300,
             linear_probe_learning_rate: float = 1e-2
             ) -> ml_collections.ConfigDict:
  """The usual ``config.evals``: geometry, spectrum, NCC, few-shot, simplex
  and (at the end) the linear probe.

  The entries share one ``num_train`` (a ``FieldReference``: setting it on
  one sets it on all), so they read one embedded subset. ``episodes=0``
  leaves out the few-shot episodes, ``linear_probe_steps=0`` the probe.

  >>> evals = standard(num_train=300, linear_probe_steps=0)
  >>> sorted(evals)
  ['fewshot', 'geometry', 'ncc', 'simplex', 'spectrum']
  >>> evals.ncc.num_train = 100; evals.geometry.num_train
  100
  """
  subset = ml_collections.FieldReference(num_train, field_type=int)

  def entry(kind, **fields):
    # Every generic field is present, so a locked config (the command line)
    # accepts --config.evals.<name>.every=0.
    return ml_collections.ConfigDict(
        {"type": kind, "every": ml_collections.config_dict.placeholder(int),
         "final_only": False, **fields})

  evals = ml_collections.ConfigDict()
  for name in ("geometry", "spectrum", "ncc"):
    evals[name] = entry(name, num_train=subset)
  if episodes:
    evals.fewshot = entry("fewshot", shots=shots, ways=ways,
                          episodes=episodes)
  if linear_probe_steps:
    evals.linear_probe = entry(
        "linear_probe", num_train=subset, steps=linear_probe_steps,
        learning_rate=linear_probe_learning_rate)
    evals.linear_probe.final_only = True
  evals.simplex = entry("simplex", num_train=subset)
  return evals
