"""Base class of the in-repo TFDS builders: offline, array_record, no TF."""

from __future__ import annotations

import tensorflow_datasets as tfds


class EmbeddedBuilder(tfds.core.GeneratorBasedBuilder,
                      skip_registration=True):
  """A GeneratorBasedBuilder that prepares and reads without TensorFlow.

  * It writes ``array_record`` unless told otherwise: that is the format
    ``tfds.data_source`` reads without TensorFlow, and TFDS's own default
    (TFRecord) needs TensorFlow to write. So ``tfds.data_source(name)`` and
    ``tfds.builder(name).download_and_prepare()`` both work out of the box.
  * It has no checksums file (nothing is downloaded). Setting ``code_path``
    also bypasses TFDS 4.9.10's lookup of it, which imports the
    ``importlib_resources`` backport (not a TFDS dependency) for builders
    defined inside a package.
  """

  code_path = None

  def __init__(self, *, file_format=None, **kwargs):
    super().__init__(file_format=file_format or "array_record", **kwargs)

  def _log_download_bytes(self) -> None:
    # TFDS's wording ("Downloading and preparing dataset Unknown size")
    # suggests a download on an offline machine; nothing is downloaded here.
    print(f"Generating the embedded dataset {self.name} offline (nothing is "
          f"downloaded) into {self.data_dir}...", flush=True)
