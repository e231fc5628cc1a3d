"""A resume on another device count says that it is not bit for bit.

Sums over the global batch are split over the devices and added in another
order on another count, so such a resume matches the original run to float
rounding only (test_train's eight-devices-equal-one test bounds it); a resume
on the count that wrote its checkpoint stays exact and says nothing.
"""

import jax

from tests.training import test_train
from cljax.training import train

NOTICE = "to float rounding, not bit for bit"


def _config(steps, num_devices):
  config = test_train._config(steps=steps, log_every=2, eval_every=0,
                              num_devices=num_devices)
  config.checkpoint.every = 2
  return config


def test_a_resume_on_another_device_count_says_so_once(tmp_path, capsys):
  assert jax.device_count() >= 4
  workdir = str(tmp_path)
  train.train_and_evaluate(_config(2, 2), workdir, verbose=False)
  assert NOTICE not in capsys.readouterr().out   # A fresh run.

  summary = train.train_and_evaluate(_config(4, 4), workdir, verbose=False)
  out = capsys.readouterr().out
  assert summary["step"] == 4
  assert out.count(NOTICE) == 1, out
  assert ("The checkpoint of step 2 was written on 2 devices and this run "
          "has 4") in out, out

  # Step 4 was written on 4 devices: resuming on 4 is exact again.
  summary = train.train_and_evaluate(_config(6, 4), workdir, verbose=False)
  assert summary["step"] == 6
  assert NOTICE not in capsys.readouterr().out
