"""``cljax.training.checkpoint`` edge cases beyond test_faults' corrupt-latest cases.

A save cut off by a kill (orbax's ``<step>.orbax-checkpoint-tmp-<time>``
directory), every checkpoint unreadable, the ``keep`` policy for other N
than test_faults' keep=1, and ``load`` of a step that was never saved (or
was deleted by ``keep``).
"""

import os
import shutil

import pytest
from tests.training import test_faults
from tests.training import test_train

from cljax.training import checkpoint
from cljax.analysis import checkpoints
from cljax.training import errors
from cljax.training import train

# What orbax names a step directory while it is being written; the rename to
# the bare step number is the commit (orbax.checkpoint's TMP_DIR_SUFFIX).
PARTIAL = "7.orbax-checkpoint-tmp-1010101"


def _config(steps, *, every=1, keep=3):
  """test_train's smoke run, no evaluation, a checkpoint every ``every``."""
  config = test_train._config(steps=steps, log_every=2, eval_every=0)
  config.optim.schedule = "constant"
  config.optim.warmup_steps = 0
  config.checkpoint.every = every
  config.checkpoint.keep = keep
  return config


@pytest.fixture(scope="module")
def six_steps(tmp_path_factory):
  """A finished 6-step run saved every step with the default keep=3."""
  workdir = str(tmp_path_factory.mktemp("six") / "run")
  train.train_and_evaluate(_config(6), workdir, verbose=False)
  return workdir


def _leave_a_partial_save(workdir):
  """What a kill during the save of step 7 leaves: an unrenamed directory
  with some of the items (here all but ``meta``)."""
  partial = os.path.join(workdir, "checkpoints", PARTIAL)
  shutil.copytree(os.path.join(workdir, "checkpoints", "6"), partial)
  shutil.rmtree(os.path.join(partial, "meta"))
  return partial


# --- keep ---------------------------------------------------------------------

def test_keep_three_holds_exactly_the_last_three_steps(six_steps):
  # Saved at 1..6; the default keep=3 leaves 4, 5, 6, each restorable and
  # each the step it claims to be.
  assert checkpoints.saved_steps(six_steps) == [4, 5, 6]
  for step in (4, 5, 6):
    assert checkpoints.looks_intact(six_steps, step)
    run = checkpoints.load(six_steps, step=step)
    assert run.step == step
  assert checkpoints.load(six_steps).step == 6   # The latest is the default.


def test_keep_two_counts_the_final_save_off_the_interval(tmp_path):
  # every=2 over 5 steps saves 2, 4 and the forced final step 5: keep=2 holds
  # the last two saves, 4 and 5, not the last two multiples of `every`.
  workdir = str(tmp_path)
  train.train_and_evaluate(_config(5, every=2, keep=2), workdir,
                           verbose=False)
  assert checkpoints.saved_steps(workdir) == [4, 5]
  assert checkpoints.load(workdir).step == 5


def test_keep_none_keeps_every_checkpoint(tmp_path):
  workdir = str(tmp_path)
  train.train_and_evaluate(_config(4, every=1, keep=None), workdir,
                           verbose=False)
  assert checkpoints.saved_steps(workdir) == [1, 2, 3, 4]


# --- a save cut off by a kill -------------------------------------------------

def test_a_partial_save_is_ignored_by_saved_steps_and_load(six_steps,
                                                           tmp_path):
  workdir = test_faults._copy(six_steps, tmp_path)
  partial = _leave_a_partial_save(workdir)
  before = test_faults._snapshot(workdir)
  assert checkpoints.saved_steps(workdir) == [4, 5, 6]
  assert checkpoints.load(workdir).step == 6
  with pytest.raises(FileNotFoundError):
    checkpoints.load(workdir, step=7)   # Not a step, though named after one.
  # Analysis is read-only: the partial directory is left for the run to
  # clean up.
  assert os.path.isdir(partial)
  assert test_faults._snapshot(workdir) == before


def test_resume_ignores_and_removes_a_partial_save(six_steps, tmp_path,
                                                   capsys):
  workdir = test_faults._copy(six_steps, tmp_path)
  partial = _leave_a_partial_save(workdir)
  summary = train.train_and_evaluate(_config(8), workdir, verbose=True)
  out = capsys.readouterr().out
  assert f"Ignoring partial (unfinished) checkpoints: ['{PARTIAL}']" in out
  assert f"Resumed from the checkpoint of step 6 in {workdir}." in out
  assert summary["step"] == 8
  # The manager's clean-up ran before its first save; step 7 is the resumed
  # run's own, and keep=3 went on counting the first process's saves.
  assert not os.path.exists(partial)
  assert checkpoints.saved_steps(workdir) == [6, 7, 8]
  assert checkpoints.load(workdir, step=7).step == 7
  steps = [row["step"] for row in checkpoints.read_metrics(workdir)]
  assert steps == [2, 4, 6, 8]


# --- every checkpoint unreadable ----------------------------------------------

def _corrupt_every_step(workdir):
  for step in checkpoints.saved_steps(workdir):
    test_faults._remove_meta(os.path.join(workdir, "checkpoints", str(step)))


def test_all_checkpoints_corrupt_fails_and_moves_nothing(six_steps, tmp_path):
  # Documented (checkpoints.restore_newest): when no step restores, nothing
  # is known to be corrupt (a mismatched target fails on every step alike),
  # so no step is moved aside; the error (CheckpointsUnreadableError) chains
  # the newest step's own error.
  workdir = test_faults._copy(six_steps, tmp_path)
  _corrupt_every_step(workdir)
  before = test_faults._snapshot(workdir)
  with pytest.raises(errors.CheckpointsUnreadableError) as info:
    checkpoints.load(workdir)
  assert isinstance(info.value.__cause__, FileNotFoundError)
  assert "checkpoints/6/" in str(info.value.__cause__)
  assert test_faults._snapshot(workdir) == before   # load changes nothing
  with pytest.raises(errors.CheckpointsUnreadableError) as info:
    train.train_and_evaluate(_config(8), workdir, verbose=False)
  assert "checkpoints/6/" in str(info.value.__cause__)
  assert checkpoints.saved_steps(workdir) == [4, 5, 6]
  assert not os.path.exists(os.path.join(workdir, checkpoint.CORRUPT_DIR))


@pytest.mark.parametrize("how", ["load", "resume"])
def test_all_checkpoints_corrupt_names_every_step_and_the_fix(six_steps,
                                                              tmp_path, how):
  workdir = test_faults._copy(six_steps, tmp_path)
  _corrupt_every_step(workdir)
  with pytest.raises(errors.CheckpointsUnreadableError) as info:
    if how == "load":
      checkpoints.load(workdir)
    else:
      train.train_and_evaluate(_config(8), workdir, verbose=False)
  message = str(info.value)
  directory = os.path.join(workdir, "checkpoints")
  for step in (4, 5, 6):
    assert os.path.join(directory, str(step)) in message, message
  assert "rm -r" in message or "--workdir" in message, message


# --- load of a step that is not there -----------------------------------------

@pytest.mark.parametrize("step", [3, 99])   # Deleted by keep; never saved.
def test_load_of_a_missing_step_raises_file_not_found(six_steps, step):
  # The docstring's FileNotFoundError, naming the step directory it wanted.
  missing = os.path.join(six_steps, "checkpoints", str(step))
  with pytest.raises(FileNotFoundError, match=f"{missing} not found"):
    checkpoints.load(six_steps, step=step)


def test_load_of_a_missing_step_lists_the_saved_ones(six_steps):
  with pytest.raises(FileNotFoundError, match=r"\[4, 5, 6\]"):
    checkpoints.load(six_steps, step=3)
