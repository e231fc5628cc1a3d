"""The registry of losses by name, with the facts a training loop needs
about each (``LossSpec``).
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax  # noqa: F401  (the examples)
import jax.numpy as jnp  # noqa: F401

from cljax.losses.hard import debiased_contrastive
from cljax.losses.hard import hard_contrastive
from cljax.losses.hscl_2022 import hscl_2022
from cljax.losses.infonce import dcl
from cljax.losses.infonce import ntxent
from cljax.losses.supervised import nscl
from cljax.losses.supervised import supcon


class LossSpec(NamedTuple):
  """A registered loss and what calling it needs.

  Attributes:
    fn: callable as ``fn(z, labels, **kwargs)`` (self-supervised losses
      accept and ignore ``labels``).
    needs_labels: whether the labels define its positives or negatives.
    min_views: the K it needs per sample with its default kwargs.
    needs_key: whether every call needs a PRNG ``key=``.
    key_when: (kwarg, value): a call with ``kwargs[kwarg] == value`` needs a
      ``key=`` (e.g. ``("estimator", "sampled")``).
    one_view_when: a bool kwarg that, when True, lowers ``min_views`` to 1
      (``include_self_pairs``).
    required: kwargs that must be passed (``beta`` for HSCL/HUCL).
  """
  fn: Callable[..., Any]
  needs_labels: bool
  min_views: int
  needs_key: bool = False
  key_when: tuple[str, Any] | None = None
  one_view_when: str | None = None
  required: tuple[str, ...] = ()

  def min_views_for(self, kwargs) -> int:
    """The K the loss needs when called with ``kwargs``."""
    if self.one_view_when and kwargs.get(self.one_view_when, False):
      return 1
    return self.min_views

  def needs_key_for(self, kwargs) -> bool:
    """Whether a call with ``kwargs`` needs a PRNG ``key=``."""
    if self.needs_key:
      return True
    return (self.key_when is not None and
            kwargs.get(self.key_when[0]) == self.key_when[1])


def _without_labels(fn):
  def call(z, labels=None, **kwargs):
    del labels  # Self-supervised: positives are the views of each sample.
    return fn(z, **kwargs)
  call.__name__ = fn.__name__
  call.__doc__ = fn.__doc__
  return call


def _hard_preset(name, negatives, needs_beta):
  def call(z, labels=None, **kwargs):
    if needs_beta and "beta" not in kwargs:
      raise ValueError(
          f"{name!r} is {name[1:].upper()} with hardness beta > 0 (Jiang et "
          f"al.): pass `beta=` (e.g. beta=5.0), or use {name[1:]!r} for "
          f"beta = 0.")
    return hard_contrastive(z, labels, negatives=negatives, **kwargs)
  call.__name__ = name
  default = ("requires ``beta``" if needs_beta else
             "``beta`` defaults to 0")
  call.__doc__ = (f"``hard_contrastive`` with ``negatives={negatives!r}`` "
                  f"(Jiang et al.'s {name.upper()}; {default}).")
  return call


_SAMPLED = ("estimator", "sampled")
LOSSES = {
    "ntxent": LossSpec(_without_labels(ntxent), False, 2),
    "dcl": LossSpec(_without_labels(dcl), False, 2,
                    one_view_when="include_self_pairs"),
    "nscl": LossSpec(nscl, True, 2, one_view_when="include_self_pairs"),
    "supcon": LossSpec(supcon, True, 1),
    "hard_contrastive": LossSpec(hard_contrastive, True, 1,
                                 key_when=_SAMPLED),
    "debiased_contrastive": LossSpec(_without_labels(debiased_contrastive),
                                     False, 2),
    # Jiang et al.'s names: the supervised pool (other classes) and the
    # unsupervised one (every view); H* are the same with beta > 0.
    "scl": LossSpec(_hard_preset("scl", "different_class", False), True, 1,
                    key_when=_SAMPLED),
    "hscl": LossSpec(_hard_preset("hscl", "different_class", True), True, 1,
                     key_when=_SAMPLED, required=("beta",)),
    "ucl": LossSpec(_hard_preset("ucl", "all", False), True, 1,
                    key_when=_SAMPLED),
    "hucl": LossSpec(_hard_preset("hucl", "all", True), True, 1,
                     key_when=_SAMPLED, required=("beta",)),
    # The 2022 predecessor's estimator (docs/conventions.md#hscl-2022); beta
    # defaults to 1.
    "hscl_2022": LossSpec(hscl_2022, True, 2),
}


# What a batch must hold for an anchor of a loss to be valid (to enter its
# mean with a positive and a non-empty denominator):
ANOTHER_SAMPLE = "another sample"        # any other sample of the batch
ANOTHER_CLASS = "another class"          # a sample of another class
SAME_CLASS_SAMPLE = "another sample of its class"


def anchor_needs(name: str, kwargs, num_views: int) -> tuple[str, ...]:
  """What the batch must hold for an anchor of loss ``name`` to be valid.

  Read off each loss's definition: its positives (other views of the
  anchor's sample, or same-class views) and its denominator (every other
  view, other samples' views, or other classes' views). An anchor lacking
  one of the returned needs is invalid, so a batch lacking it for every
  anchor has zero valid anchors (loss 0, gradient 0).

  Args:
    name: a registered loss name.
    kwargs: the loss's keyword arguments (``config.loss.kwargs``).
    num_views: K, the views of each sample.

  Returns:
    A subset of (``ANOTHER_SAMPLE``, ``ANOTHER_CLASS``,
    ``SAME_CLASS_SAMPLE``); empty when every anchor is valid in any batch.

  Examples:
    >>> anchor_needs("nscl", {}, 2)
    ('another class',)
    >>> anchor_needs("supcon", {}, 1), anchor_needs("ntxent", {}, 2)
    (('another sample of its class',), ())
  """
  spec(name)
  needs = []
  if name in ("dcl", "debiased_contrastive"):
    # Denominator: the views of the other samples.
    needs.append(ANOTHER_SAMPLE)
  elif name in ("nscl", "hscl_2022"):
    needs.append(ANOTHER_CLASS)
  elif name == "supcon":
    if num_views < 2:  # Positives: the other same-class views.
      needs.append(SAME_CLASS_SAMPLE)
    if kwargs.get("same_class_weight", 1.0) == 0:
      needs.append(ANOTHER_CLASS)  # The positives leave the denominator.
  elif name in ("hard_contrastive", "scl", "hscl", "ucl", "hucl"):
    negatives = {"scl": "different_class", "hscl": "different_class",
                 "ucl": "all", "hucl": "all"}.get(
                     name, kwargs.get("negatives") or "different_class")
    if negatives == "different_class":
      needs.append(ANOTHER_CLASS)
    if num_views < 2 and not kwargs.get("include_self_positive", True):
      needs.append(SAME_CLASS_SAMPLE)
  return tuple(needs)


def spec(name: str) -> LossSpec:
  """The ``LossSpec`` registered as ``name``.

  Raises:
    ValueError: unknown name (the message lists the valid ones).

  Examples:
    >>> spec("nscl").needs_labels, spec("nscl").min_views
    (True, 2)
    >>> spec("hscl").needs_key_for({"estimator": "sampled"})
    True
  """
  if name not in LOSSES:
    raise ValueError(
        f"Unknown loss {name!r}; choose one of {sorted(LOSSES)}.")
  return LOSSES[name]


def get(name: str):
  """The loss registered as ``name``, callable as ``fn(z, labels, **kwargs)``.

  Self-supervised losses (ntxent, dcl, debiased_contrastive) accept and
  ignore ``labels``, so a training loop can call every loss the same way.
  ``scl``/``ucl`` are ``hard_contrastive`` with beta = 0 by default;
  ``hscl``/``hucl`` require ``beta``.

  Raises:
    ValueError: unknown name (the message lists the valid ones), or
      ``hscl``/``hucl`` called without ``beta``.

  Examples:
    >>> z = jax.random.normal(jax.random.key(0), (8, 2, 16))
    >>> y = jnp.array([0, 0, 1, 1, 2, 2, 3, 3])
    >>> float(get("hscl")(z, y, beta=2.0)) > 0
    True
  """
  return spec(name).fn
