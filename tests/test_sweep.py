"""The sweep launcher: grids, one work dir per point, printed commands."""

import json
import math
import os
import subprocess
import sys

import pytest
from scipy import stats as scipy_stats

from cljax.analysis import checkpoints
from cljax.training import errors
from cljax.training import sweep_index
from cljax import sweep
from cljax.analysis import sweeps
from experiments import default


def test_sweep_runs_every_point_into_its_own_workdir(tmp_path):
  config = default.get_config("smoke")
  config.steps = 2
  config.log_every = 2
  # What is checked is one work dir per point of the product, not the
  # evaluators: without them a point costs its train-step compile only.
  config.eval_every = 0
  grid = sweep.parse_grid(["data.classes=[3, 5]", "loss.name=['dcl','nscl']"])
  entries = sweep.run_sweep(config, grid, str(tmp_path), verbose=False)
  assert len(entries) == 4
  index = json.load(open(tmp_path / "sweep.json"))
  assert [e["workdir"] for e in index["points"]] == [
      e["workdir"] for e in entries]
  for entry in entries:
    run = checkpoints.load(entry["workdir"])
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
  assert not os.path.exists(tmp_path / "sweep.json")   # writes nothing


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
  # The index run_sweep writes before any point runs (--print_only writes
  # nothing, so the index is written here directly).
  os.makedirs(old)
  sweep_index.write_index(str(old), "", grid, None, [
      {"overrides": point, "workdir": workdir}
      for point, _, workdir in sweep.points(config, grid, str(old))])
  new = tmp_path / "moved"
  os.rename(old, new)
  entries = sweeps.read_sweep(str(new))
  assert [e["overrides"] for e in entries] == [{"data.classes": 3},
                                               {"data.classes": 5}]
  assert [e["workdir"] for e in entries] == [
      str(new / "data.classes=3"), str(new / "data.classes=5")]


def test_read_sweep_names_the_missing_index(tmp_path):
  with pytest.raises(FileNotFoundError, match=r"sweep.json.*--sweep_dir"):
    sweeps.read_sweep(str(tmp_path))


# Seeds and intervals.


def _tiny_config():
  config = default.get_config("smoke")
  config.steps = 2
  config.log_every = 2
  config.eval_every = 2
  config.evals.linear_probe.every = 0
  return config


@pytest.mark.parametrize("spec,want", [
    ("5", [0, 1, 2, 3, 4]), ("3,7,11", [3, 7, 11]), ("1", [0]),
    ("4,", [4]), (None, None)])
def test_parse_seeds(spec, want):
  assert sweep.parse_seeds(spec) == want


@pytest.mark.parametrize("spec,match", [
    ("0", r"at least 1"), ("five", r"count.*--seeds=3,7,11"),
    ("3,3", r"twice"), ("1.5", r"count")])
def test_bad_seeds(spec, match):
  with pytest.raises(ValueError, match=match):
    sweep.parse_seeds(spec)


def test_seeds_are_a_last_seed_axis_with_one_workdir_each(tmp_path):
  grid = sweep.with_seeds(sweep.parse_grid(["loss.name=['dcl','nscl']"]),
                          [3, 7])
  got = list(sweep.points(default.get_config("smoke"), grid, str(tmp_path)))
  assert [p for p, _, _ in got] == [
      {"loss.name": n, "seed": s} for n in ("dcl", "nscl") for s in (3, 7)]
  assert [c.seed for _, c, _ in got] == [3, 7, 3, 7]
  assert [os.path.basename(w) for _, _, w in got] == [
      "loss.name=dcl,seed=3", "loss.name=dcl,seed=7",
      "loss.name=nscl,seed=3", "loss.name=nscl,seed=7"]
  with pytest.raises(ValueError, match=r"both sweep the seed"):
    sweep.with_seeds(sweep.parse_grid(["seed=[0, 1]"]), [0, 1])


def test_print_only_with_seeds_prints_and_writes_nothing(tmp_path, capsys):
  sweep.run_sweep(default.get_config("smoke"),
                  sweep.parse_grid(["loss.name=['dcl','nscl']"]),
                  str(tmp_path), seeds=[0, 1, 2], config_arg="x.py:smoke",
                  print_only=True)
  lines = capsys.readouterr().out.strip().splitlines()
  assert len(lines) == 6
  assert [l.split("--config.seed=")[1] for l in lines] == ["0", "1", "2"] * 2
  assert os.listdir(tmp_path) == []


def _naive_interval(xs):
  n = len(xs)
  mean = sum(xs) / n
  s = math.sqrt(sum((x - mean) ** 2 for x in xs) / (n - 1))
  half = scipy_stats.t.ppf(0.975, n - 1) * s / math.sqrt(n)
  return mean, mean - half, mean + half


@pytest.mark.parametrize("losses", [
    ["dcl"],   # aggregate only: two runs
    pytest.param(["dcl", "nscl"], marks=pytest.mark.slow),  # + paired
])
def test_tiny_sweep_over_seeds_aggregates_and_pairs(tmp_path, losses):
  sweep_dir = str(tmp_path / "sw")
  sweep.run_sweep(_tiny_config(),
                  sweep.parse_grid([f"loss.name={losses!r}"]),
                  sweep_dir, seeds=[0, 1], verbose=False)
  index = json.load(open(os.path.join(sweep_dir, "sweep.json")))
  assert index["seeds"] == [0, 1] and index["grid"]["seed"] == [0, 1]
  entries = sweeps.read_sweep(sweep_dir)
  assert [e["seed"] for e in entries] == [0, 1] * len(losses)
  summaries = {(e["overrides"]["loss.name"], e["seed"]): json.load(
      open(os.path.join(e["workdir"], "summary.json"))) for e in entries}

  groups = sweeps.aggregate(sweep_dir)
  assert [g["overrides"] for g in groups] == [{"loss.name": n}
                                              for n in losses]
  for group in groups:
    name = group["overrides"]["loss.name"]
    assert group["seeds"] == [0, 1]
    assert "step" not in group["metrics"]
    assert {"train/loss", "eval/h/nc1"} <= set(group["metrics"])
    for metric, iv in group["metrics"].items():
      xs = [summaries[(name, s)][metric] for s in (0, 1)]
      assert (iv.mean, iv.low, iv.high) == pytest.approx(
          _naive_interval(xs), rel=1e-9, abs=1e-12), metric
      assert iv.n == 2 and iv.confidence == 0.95
  if len(losses) < 2:
    return

  diffs = sweeps.paired(sweep_dir, field="loss.name", a="nscl", b="dcl",
                       metrics=["train/loss"])
  assert len(diffs) == 1 and diffs[0]["seeds"] == [0, 1]
  iv = diffs[0]["metrics"]["train/loss"]
  d = [summaries[("nscl", s)]["train/loss"] - summaries[("dcl", s)][
      "train/loss"] for s in (0, 1)]
  assert (iv.mean, iv.low, iv.high) == pytest.approx(_naive_interval(d))


def _fake_sweep(sweep_dir, runs):
  """Writes an index and each run's config.json/summary.json directly."""
  entries = []
  for overrides, config, summary in runs:
    workdir = os.path.join(sweep_dir, sweep._point_name(overrides))
    os.makedirs(workdir)
    json.dump(config, open(os.path.join(workdir, "config.json"), "w"))
    json.dump(summary, open(os.path.join(workdir, "summary.json"), "w"))
    entries.append({"overrides": overrides, "workdir": workdir})
  sweep_index.write_index(sweep_dir, "", [], None, entries)


def _cfg(seed, name="dcl", lr=0.1, steps=2):
  return {"seed": seed, "loss": {"name": name, "kwargs": {}},
          "optimizer": {"learning_rate": lr}, "steps": steps}


def test_aggregate_refuses_configs_that_differ_beyond_the_swept_fields(
    tmp_path):
  _fake_sweep(str(tmp_path), [
      ({"seed": 0}, _cfg(0), {"step": 2, "m": 1.0}),
      ({"seed": 1}, _cfg(1, lr=0.2), {"step": 2, "m": 2.0}),
      ({"seed": 2}, _cfg(2, steps=4), {"step": 4, "m": 3.0})])
  with pytest.raises(ValueError, match=(
      r"differ in config beyond the swept fields \(seed\).*"
      r"optimizer.learning_rate \(0.1, 0.2\); steps \(2, 4\)")):
    sweeps.aggregate(str(tmp_path))


def test_aggregate_needs_two_seeds_and_finite_metrics(tmp_path):
  _fake_sweep(str(tmp_path / "one"), [
      ({"loss.name": "dcl"}, _cfg(0), {"step": 2, "m": 1.0})])
  with pytest.raises(ValueError, match=r"loss.name=dcl, m: .*at least 2 "
                                       r"values.*--seeds"):
    sweeps.aggregate(str(tmp_path / "one"))
  _fake_sweep(str(tmp_path / "nan"), [
      ({"seed": 0}, _cfg(0), {"step": 2, "m": 1.0, "k": 1.0}),
      ({"seed": 1}, _cfg(1), {"step": 2, "m": float("nan"), "k": 2.0})])
  with pytest.raises(ValueError, match=r"m: .*non-finite.*metrics="):
    sweeps.aggregate(str(tmp_path / "nan"))
  (got,) = sweeps.aggregate(str(tmp_path / "nan"), metrics=["k"])
  assert got["metrics"]["k"].mean == 1.5
  with pytest.raises(ValueError, match=r"has no numeric \['x'\]"):
    sweeps.aggregate(str(tmp_path / "nan"), metrics=["x"])


def test_aggregate_refuses_unfinished_runs(tmp_path):
  _fake_sweep(str(tmp_path), [
      ({"seed": 0}, _cfg(0), {"step": 1, "m": 1.0, "interrupted": True})])
  with pytest.raises(ValueError, match=r"interrupted at step 1; rerun"):
    sweeps.aggregate(str(tmp_path))
  os.remove(tmp_path / "seed=0" / "summary.json")
  with pytest.raises(FileNotFoundError, match=r"no summary.json.*rerun"):
    sweeps.aggregate(str(tmp_path))


def test_paired_pairs_by_seed_and_names_bad_arguments(tmp_path):
  runs = [({"loss.name": n, "seed": s}, _cfg(s, name=n),
           {"step": 2, "m": float(s) + (0.5 if n == "nscl" else 0.0)})
          for n in ("dcl", "nscl") for s in (2, 0, 1)]
  _fake_sweep(str(tmp_path / "ok"), runs[::-1])  # order must not matter
  (got,) = sweeps.paired(str(tmp_path / "ok"), field="loss.name",
                        a="nscl", b="dcl")
  iv = got["metrics"]["m"]
  assert iv.mean == pytest.approx(0.5) and iv.high - iv.low == pytest.approx(
      0.0, abs=1e-12)   # same seed, same shift: no paired variance
  with pytest.raises(ValueError, match=r"field='seed' is not swept.*"
                                       r"\['loss.name'\]"):
    sweeps.paired(str(tmp_path / "ok"), field="seed", a=0, b=1)
  with pytest.raises(ValueError, match=r"b='cl' is not a value"):
    sweeps.paired(str(tmp_path / "ok"), field="loss.name", a="nscl", b="cl")
  _fake_sweep(str(tmp_path / "unpaired"), runs[:-1])
  with pytest.raises(ValueError, match=r"same seeds"):
    sweeps.paired(str(tmp_path / "unpaired"), field="loss.name", a="nscl",
                 b="dcl")


def test_paired_arms_may_differ_in_what_the_field_brings(tmp_path):
  # CE brings a classifier head that SupCon lacks: the arms may differ in it,
  # the runs of one arm may not.
  def cfg(seed, name, lr=0.1):
    return {**_cfg(seed, name=name, lr=lr),
            "head": "classifier" if name == "ce" else "none"}
  runs = [({"loss.name": n, "seed": s}, cfg(s, n),
           {"step": 2, "m": float(s) + (1.0 if n == "ce" else 0.0)})
          for n in ("supcon", "ce") for s in (0, 1)]
  _fake_sweep(str(tmp_path / "ok"), runs)
  (got,) = sweeps.paired(str(tmp_path / "ok"), field="loss.name", a="ce",
                        b="supcon")
  assert got["metrics"]["m"].mean == pytest.approx(1.0)
  with pytest.raises(ValueError, match=r"differ in config.*head"):
    sweeps.aggregate(str(tmp_path / "ok"))
  runs[1] = (runs[1][0], cfg(1, "supcon", lr=0.2), runs[1][2])
  _fake_sweep(str(tmp_path / "bad"), runs)
  with pytest.raises(ValueError, match=r"optimizer.learning_rate \(0.1, 0.2\)"):
    sweeps.paired(str(tmp_path / "bad"), field="loss.name", a="ce",
                 b="supcon")


def test_seeds_flag_on_the_command_line(tmp_path):
  root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  def run(*args):
    return subprocess.run(
        [sys.executable, "-m", "cljax.sweep",
         "--config=experiments/default.py:smoke",
         f"--sweep_dir={tmp_path / 'sw'}", *args], cwd=root,
        capture_output=True, text=True, timeout=600)
  proc = run("--seeds=3,7", "--grid=loss.name=['dcl','nscl']",
             "--config.steps=7", "--print_only")
  assert proc.returncode == 0, proc.stderr
  lines = proc.stdout.strip().splitlines()
  assert len(lines) == 4 and "--config.seed=7" in lines[1]
  # The sweep's own overrides reach every printed point: it runs that config.
  assert all("--config.steps=7" in line for line in lines), lines
  assert not os.path.exists(tmp_path / "sw")
  proc = run("--seeds=0", "--print_only")
  assert proc.returncode == errors.EXIT_CONFIG, proc.stderr
  assert "--seeds='0': the count must be at least 1" in proc.stderr


# Workers sharing a sweep dir; the index is the union of what ran there.


def _sweep_cli(sweep_dir, *args):
  root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  return subprocess.run(
      [sys.executable, "-m", "cljax.sweep",
       "--config=experiments/unconstrained/luthra_thm2.py:smoke",
       f"--sweep_dir={sweep_dir}", *args], cwd=root,
      env=dict(os.environ, JAX_NUM_CPU_DEVICES="1"), capture_output=True,
      text=True, timeout=600)


def _ran(stdout):
  """The work dirs a sweep process started (its '== <workdir>' lines)."""
  return [line[3:] for line in stdout.splitlines()
          if line.startswith("== ") and not line.endswith("skipped.")]


def _free_features_config(steps=4):
  from experiments.unconstrained import luthra_thm2 as free_features
  config = free_features.get_config("smoke")
  config.steps, config.log_every = steps, 2
  return config


def test_two_workers_share_a_sweep_dir_and_the_index_is_the_union(tmp_path):
  from cljax.training import _lock
  from cljax import unconstrained
  from cljax.reproduce import _attempt
  sweep_dir = tmp_path / "sw"
  names = ["seed=0", "seed=1"]
  fixed = ["--config.steps=4", "--config.log_every=2"]
  os.makedirs(sweep_dir / "seed=0")
  # The test holds seed=0's work dir as the other worker would while it runs
  # that point: the sweep process must go on to seed=1 and leave seed=0.
  lock = _lock.WorkdirLock(str(sweep_dir / "seed=0"))
  try:
    first = _sweep_cli(sweep_dir, "--grid=seed=[0,1]", *fixed)
  finally:
    lock.release()
  assert first.returncode == errors.EXIT_LOCKED, first.stderr
  assert (f"1 of 2 points of {sweep_dir} were held by another process and "
          f"not run by this worker: seed=0 (pid {os.getpid()} on host") in (
              first.stderr)
  assert not os.path.exists(sweep_dir / "seed=0" / "summary.json")
  done = sweep_dir / "seed=1" / "summary.json"
  stamp = os.stat(done).st_mtime_ns
  # The second worker runs what the first left and nothing it finished.
  second = _sweep_cli(sweep_dir, "--grid=seed=[0,1]", *fixed)
  assert second.returncode == 0, second.stderr
  assert _ran(first.stdout) == [str(sweep_dir / "seed=1")]
  assert _ran(second.stdout) == [str(sweep_dir / "seed=0")]
  assert os.stat(done).st_mtime_ns == stamp
  for seed, name in enumerate(names):
    config = json.load(open(sweep_dir / name / "config.json"))
    assert (config["seed"], config["steps"], config["log_every"]) == (
        seed, 4, 2)
    # One run of 4 steps logged every 2: rows 2 and 4, once each.
    assert [row["step"] for row in checkpoints.read_metrics(
        str(sweep_dir / name))] == [2, 4]

  def indexed():
    index = json.load(open(sweep_dir / "sweep.json"))
    return index, [(p["dir"], p["overrides"], p["fixed"])
                   for p in index["points"]]
  want = [(name, {"seed": seed}, {"steps": 4, "log_every": 2})
          for seed, name in enumerate(names)]
  index, got = indexed()
  assert got == want
  assert index["config"] == "experiments/unconstrained/luthra_thm2.py:smoke"
  assert index["fixed"] == {"steps": 4, "log_every": 2}

  # A later, smaller grid keeps the other point in the index (seed=1 has
  # finished: nothing runs).
  sweep.run_sweep(_free_features_config(), sweep.parse_grid(["seed=[1]"]),
                  str(sweep_dir),
                  config_arg="experiments/unconstrained/luthra_thm2.py:smoke",
                  base_flags=fixed, verbose=False)
  assert os.stat(done).st_mtime_ns == stamp
  assert indexed()[1] == want
  # Other fixed overrides, or another config file, are refused before
  # anything runs, naming the difference; the index stays as it was.
  before = open(sweep_dir / "sweep.json").read()
  refused = _sweep_cli(sweep_dir, "--grid=seed=[2]", "--config.steps=8",
                       "--config.log_every=2")
  assert refused.returncode == errors.EXIT_CONFIG
  assert "steps: recorded 4, now 8" in refused.stderr
  assert "pass the recorded --config.* flags" in refused.stderr
  with pytest.raises(sweep.SweepConflictError, match=(
      r"--config=experiments/unconstrained/luthra_thm2.py:smoke; this sweep has "
      r"--config=experiments/unconstrained/graf_ce.py:smoke.*another "
      r"--sweep_dir")):
    sweep.run_sweep(_free_features_config(), sweep.parse_grid(["seed=[3]"]),
                    str(sweep_dir),
                    config_arg="experiments/unconstrained/graf_ce.py:smoke",
                    base_flags=fixed, verbose=False)
  with pytest.raises(sweep.SweepConflictError,
                     match=r"log_every: recorded 2, now not overridden"):
    sweep.run_sweep(_free_features_config(), sweep.parse_grid(["seed=[3]"]),
                    str(sweep_dir),
                    config_arg="experiments/unconstrained/luthra_thm2.py:smoke",
                    base_flags=fixed[:1], verbose=False)
  assert open(sweep_dir / "sweep.json").read() == before
  assert not os.path.exists(sweep_dir / "seed=2")
  assert not os.path.exists(sweep_dir / "seed=3")
  # The readers take the new index.
  assert [(e["overrides"], e["fixed"], e["workdir"]) for e in
          sweeps.read_sweep(str(sweep_dir))] == [
              (o, f, str(sweep_dir / d)) for d, o, f in want]
  assert [o for o, _ in unconstrained.load_sweep(str(sweep_dir))] == [
      {"seed": 0}, {"seed": 1}]
  assert [r["seed"] for r in _attempt.runs(str(sweep_dir))] == [0, 1]


def test_an_index_of_an_older_version_is_read_and_extended(tmp_path):
  # sweep.json as cljax wrote it before fixed overrides were recorded.
  old = {"config": "x.py:smoke", "grid": {"seed": [0, 1]}, "zip": {},
         "seeds": None,
         "points": [{"overrides": {"seed": s}, "dir": f"seed={s}",
                     "workdir": f"/elsewhere/seed={s}"} for s in (0, 1)]}
  json.dump(old, open(tmp_path / "sweep.json", "w"))
  assert [(e["overrides"], e["fixed"], e["workdir"], e["seed"])
          for e in sweeps.read_sweep(str(tmp_path))] == [
              ({"seed": s}, None, str(tmp_path / f"seed={s}"), s)
              for s in (0, 1)]
  sweep_index.write_index(str(tmp_path), "x.py:smoke", [("seed", [1, 2])],
                          None, [{"overrides": {"seed": s},
                                  "workdir": str(tmp_path / f"seed={s}")}
                                 for s in (1, 2)], fixed={"steps": 3})
  index = json.load(open(tmp_path / "sweep.json"))
  assert [(p["dir"], p["fixed"]) for p in index["points"]] == [
      ("seed=0", None), ("seed=1", None), ("seed=2", {"steps": 3})]
  assert index["fixed"] == {"steps": 3}
  assert index["sweeps"] == [{"grid": {"seed": [0, 1]}, "zip": {},
                              "seeds": None},
                             {"grid": {"seed": [1, 2]}, "zip": {},
                              "seeds": None}]
  assert [e["seed"] for e in sweeps.read_sweep(str(tmp_path))] == [0, 1, 2]


def _entries(sweep_dir, seeds):
  return [{"overrides": {"seed": s},
           "workdir": os.path.join(sweep_dir, f"seed={s}")} for s in seeds]


def test_index_writes_wait_for_the_lock_and_keep_every_writer(tmp_path):
  import threading
  from cljax.training import _lock
  sweep_dir = str(tmp_path)
  sweep_index.write_index(sweep_dir, "", [("seed", [0])], None,
                          _entries(sweep_dir, [0]))
  writers = [threading.Thread(target=sweep_index.write_index, args=(
      sweep_dir, "", [("seed", [s])], None, _entries(sweep_dir, [s])))
             for s in (1, 2, 3)]
  # While another worker holds the index lock, no writer may touch it.
  with _lock.exclusive(os.path.join(sweep_dir, ".sweep.lock")):
    for writer in writers:
      writer.start()
    for writer in writers:
      writer.join(timeout=0.5)
    assert all(writer.is_alive() for writer in writers)
    assert [p["dir"] for p in json.load(open(tmp_path / "sweep.json"))[
        "points"]] == ["seed=0"]
  for writer in writers:
    writer.join(timeout=60)
  dirs = [p["dir"] for p in json.load(open(tmp_path / "sweep.json"))["points"]]
  assert dirs[0] == "seed=0" and sorted(dirs) == [f"seed={s}" for s in range(4)]


def test_a_failed_index_write_leaves_the_old_index(tmp_path, monkeypatch):
  sweep_dir = str(tmp_path)
  sweep_index.write_index(sweep_dir, "", [("seed", [0])], None,
                          _entries(sweep_dir, [0]))
  before = open(tmp_path / "sweep.json").read()

  def disk_full(obj, f, **kwargs):
    f.write('{"points": [')   # half an index, as a full disk leaves it
    raise OSError(28, "No space left on device")
  monkeypatch.setattr(json, "dump", disk_full)
  with pytest.raises(OSError, match="No space"):
    sweep_index.write_index(sweep_dir, "", [("seed", [1])], None,
                            _entries(sweep_dir, [1]))
  monkeypatch.undo()
  assert open(tmp_path / "sweep.json").read() == before
  assert sorted(os.listdir(tmp_path)) == [".sweep.lock", "sweep.json"]
