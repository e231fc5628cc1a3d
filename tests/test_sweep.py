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
  config.evals.linear_probe.every = 0
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


def test_zip_fields_vary_together_inside_the_product(tmp_path):
  config = default.get_config("smoke")
  grid = sweep.parse_grid(["seed=[0, 1]"])
  zipped = sweep.parse_grid(["loss.kwargs.temperature=[0.1, 1.0]",
                             "monitor.temperature=[0.1, 1.0]"])
  got = [(p, c) for p, c, _ in sweep.points(config, grid, str(tmp_path),
                                             zipped)]
  assert [p for p, _ in got] == [
      {"seed": s, "loss.kwargs.temperature": t, "monitor.temperature": t}
      for s in (0, 1) for t in (0.1, 1.0)]
  for point, cfg in got:
    assert cfg.loss.kwargs.temperature == cfg.monitor.temperature
    assert cfg.seed == point["seed"]
  assert config.monitor.temperature == 1.0  # the base config is untouched


def test_zip_lists_of_different_lengths_are_an_error(tmp_path):
  zipped = sweep.parse_grid(["loss.kwargs.temperature=[0.1, 1.0]",
                             "monitor.temperature=[0.1]"])
  with pytest.raises(ValueError, match=r"one length.*temperature"):
    list(sweep.points(default.get_config("smoke"), [], str(tmp_path), zipped))


def test_a_field_in_grid_and_zip_is_an_error(tmp_path):
  with pytest.raises(ValueError, match=r"swept twice"):
    list(sweep.points(default.get_config("smoke"),
                      sweep.parse_grid(["seed=[0]"]), str(tmp_path),
                      sweep.parse_grid(["seed=[1]"])))


def test_print_only_prints_zipped_fields(tmp_path, capsys):
  zipped = sweep.parse_grid(["loss.kwargs.temperature=[0.1, 1.0]",
                             "monitor.temperature=[0.1, 1.0]"])
  sweep.run_sweep(default.get_config("smoke"), [], str(tmp_path),
                  zipped=zipped, config_arg="x.py:smoke", print_only=True)
  lines = capsys.readouterr().out.strip().splitlines()
  assert len(lines) == 2
  assert ("--config.loss.kwargs.temperature=0.1 "
          "--config.monitor.temperature=0.1") in lines[0]


def test_read_sweep_resolves_work_dirs_of_a_moved_sweep(tmp_path, capsys):
  config = default.get_config("smoke")
  grid = sweep.parse_grid(["data.classes=[3, 5]"])
  old = tmp_path / "old"
  # The index is written before any point runs (here: none runs at all).
  sweep.run_sweep(config, grid, str(old), print_only=True)
  capsys.readouterr()
  new = tmp_path / "moved"
  os.rename(old, new)
  entries = sweep.read_sweep(str(new))
  assert [e["overrides"] for e in entries] == [{"data.classes": 3},
                                               {"data.classes": 5}]
  assert [e["workdir"] for e in entries] == [
      str(new / "data.classes=3"), str(new / "data.classes=5")]


def test_read_sweep_names_the_missing_index(tmp_path):
  with pytest.raises(FileNotFoundError, match=r"sweep.json.*--sweep_dir"):
    sweep.read_sweep(str(tmp_path))
