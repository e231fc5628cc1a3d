"""The sweep launcher: grids, one work dir per point, printed commands."""

import json
import os

import pytest

from cljax import checkpoint
from cljax import sweep
from experiments import default


def test_sweep_runs_every_point_into_its_own_workdir(tmp_path):
  config = default.get_config("smoke")
  config.steps = 2
  config.log_every = 2
  config.eval_every = 2
  config.eval.linear_probe_steps = 0
  grid = sweep.parse_grid(["data.classes=[3, 5]", "loss.name=['dcl','nscl']"])
  entries = sweep.run_sweep(config, grid, str(tmp_path), verbose=False)
  assert len(entries) == 4
  index = json.load(open(tmp_path / "sweep.json"))
  assert [e["workdir"] for e in index["points"]] == [
      e["workdir"] for e in entries]
  for entry in entries:
    run = checkpoint.load(entry["workdir"])
    assert run.config.data.classes == entry["overrides"]["data.classes"]
    assert run.config.loss.name == entry["overrides"]["loss.name"]
    assert run.step == 2


def test_print_only_prints_one_command_per_point(tmp_path, capsys):
  config = default.get_config("smoke")
  grid = sweep.parse_grid(["loss.kwargs.temperature=[0.1, 0.5, 1.0]"])
  sweep.run_sweep(config, grid, str(tmp_path), config_arg="x.py:smoke",
                  print_only=True)
  lines = capsys.readouterr().out.strip().splitlines()
  assert len(lines) == 3
  assert all("--config.loss.kwargs.temperature=" in l for l in lines)
  assert not any(os.path.isdir(tmp_path / d) for d in os.listdir(tmp_path))


@pytest.mark.parametrize("spec,match", [
    ("data.classes", r"field=\[v1, v2\]"),
    ("data.classes=3", r"non-empty list"),
    ("data.classes=[oops", r"not a Python literal"),
])
def test_bad_grid(spec, match):
  with pytest.raises(ValueError, match=match):
    sweep.parse_grid([spec])


def test_unknown_field(tmp_path):
  with pytest.raises(ValueError, match=r"no 'clases'"):
    list(sweep.points(default.get_config("smoke"),
                      sweep.parse_grid(["data.clases=[1]"]), str(tmp_path)))
