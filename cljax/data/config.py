"""The data-config schema: field names, defaults and validation.

``config.data`` of an experiment is a ``ml_collections.ConfigDict`` (or a
plain dict) with the fields of :data:`DEFAULTS`; missing fields take their
defaults and unknown ones are errors, so a misspelled override fails loudly.

================== ===================================== ======================
field              default                               meaning
================== ===================================== ======================
name               "cljax_gaussian_mixture/images_c10"   TFDS name[/config]
data_dir           None                                  TFDS data dir
split              "train"                               training split
eval_split         "test"                                default evaluation
batch_size         256                                   *global* batch
sampler            "shuffle"                             shuffle|iid|balanced
label_key          "label"                               or "coarse_label"
input_key          None                                  None: "image" else "x"
classes            None                                  None | k | (ids...)
label_noise        0.0                                   flip rate p in [0, 1]
label_noise_mode   "different"                           different | uniform
label_noise_seed   None                                  None: the run seed
normalize          True                                  per-channel mean/std
num_views          2                                     K views per example
augment            augment.DEFAULTS                      mode + parameters
num_workers        0                                     grain worker processes
worker_threads     2                                     reading threads each
prefetch           2                                     batches in flight
================== ===================================== ======================

The last three shape the streaming pipeline (:mod:`cljax.data.pipeline`), not
the batch sequence: changing them never changes which examples a step sees,
so a run may resume with other values. ``num_workers=0`` reads in threads of
the training process (enough when decoding is cheap); on an accelerator host
with JPEG/PNG images use several processes. Host memory held by the pipeline
is about ``prefetch * (1 + num_workers)`` local batches plus ``prefetch``
on device.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from cljax.data import augment as augment_lib
from cljax.data import samplers
from cljax.data import transforms

DEFAULTS: dict[str, Any] = {
    "name": "cljax_gaussian_mixture/images_c10",
    "data_dir": None,
    "split": "train",
    "eval_split": "test",
    "batch_size": 256,
    "sampler": "shuffle",
    "label_key": "label",
    "input_key": None,
    "classes": None,
    "label_noise": 0.0,
    "label_noise_mode": "different",
    "label_noise_seed": None,
    "normalize": True,
    "num_views": 2,
    "augment": dict(augment_lib.DEFAULTS),
    "num_workers": 0,
    "worker_threads": 2,
    "prefetch": 2,
}


def default_config():
  """The data config with every field at its default, as a ConfigDict.

  Returns:
    ``ml_collections.ConfigDict``; assign it to ``config.data`` and override
    fields (``config.data.name = "cifar10"``).
  """
  import ml_collections  # pylint: disable=g-import-not-at-top
  config = ml_collections.ConfigDict(copy.deepcopy(DEFAULTS))
  # Typed placeholders instead of plain None, so that these fields can be
  # overridden from the command line (--config.data.classes=5).
  placeholder = ml_collections.config_dict.placeholder
  config.data_dir = placeholder(str)
  config.input_key = placeholder(str)
  config.classes = placeholder(object)
  config.label_noise_seed = placeholder(int)
  return config


def _as_dict(config: Any) -> dict[str, Any]:
  if hasattr(config, "to_dict"):
    return config.to_dict()
  if isinstance(config, Mapping):
    return dict(config)
  raise ValueError(
      f"The data config must be a mapping or ConfigDict with fields "
      f"{sorted(DEFAULTS)}; got {type(config).__name__}.")


def resolve(config: Any) -> dict[str, Any]:
  """Validates a data config and fills in defaults.

  Args:
    config: a ``ConfigDict`` or mapping with fields of :data:`DEFAULTS`.

  Returns:
    A plain dict with every field, ``augment`` resolved by
    :func:`cljax.data.augment.resolve_config`.

  Raises:
    ValueError: unknown field, or a value out of range (sampler name, batch
      size, noise rate or mode, number of views, augmentation).
  """
  given = _as_dict(config)
  unknown = sorted(set(given) - set(DEFAULTS))
  if unknown:
    raise ValueError(
        f"Unknown data-config fields {unknown}; valid fields are "
        f"{sorted(DEFAULTS)}.")
  cfg = {**copy.deepcopy(DEFAULTS), **given}
  cfg["augment"] = augment_lib.resolve_config(
      {**DEFAULTS["augment"], **_as_dict(cfg["augment"] or {})})
  if not isinstance(cfg["name"], str) or not cfg["name"]:
    raise ValueError(f"`name` must be a dataset name; got {cfg['name']!r}.")
  samplers.check_name(cfg["sampler"])
  if int(cfg["batch_size"]) != cfg["batch_size"] or cfg["batch_size"] < 1:
    raise ValueError(
        f"`batch_size` (the global batch) must be a positive int; got "
        f"{cfg['batch_size']}.")
  if not 0.0 <= cfg["label_noise"] <= 1.0:
    raise ValueError(
        f"`label_noise` (the flip rate) must lie in [0, 1]; got "
        f"{cfg['label_noise']}.")
  if cfg["label_noise_mode"] not in transforms.NOISE_MODES:
    raise ValueError(
        f"`label_noise_mode` must be one of {transforms.NOISE_MODES}; got "
        f"{cfg['label_noise_mode']!r}.")
  if int(cfg["num_views"]) != cfg["num_views"] or cfg["num_views"] < 1:
    raise ValueError(
        f"`num_views` must be an int >= 1; got {cfg['num_views']}.")
  for key, low in (("num_workers", 0), ("worker_threads", 0),
                   ("prefetch", 1)):
    value = cfg[key]
    if isinstance(value, bool) or int(value) != value or value < low:
      raise ValueError(f"`{key}` must be an int >= {low}; got {value!r}.")
    cfg[key] = int(value)
  if isinstance(cfg["classes"], list):
    cfg["classes"] = tuple(cfg["classes"])
  return cfg
