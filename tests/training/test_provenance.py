"""Provenance: which code trained each run, and what reproduce makes of it.

The run dirs are fabricated (config.json, summary.json, provenance.json,
sweep.json) and the colab is replaced by a fabricated summary: these tests
check the bookkeeping, not training, except one short run of each train
loop that must write its provenance.json.
"""

import hashlib
import json
import os
import shutil
import subprocess

import pytest

from cljax.training import provenance
from cljax.training import startup
from cljax import unconstrained as unconstrained_lib
from cljax.reproduce import __main__ as cli
from cljax.reproduce import _driver
from cljax.reproduce import _render
from cljax.reproduce import _run
from cljax.reproduce import unconstrained
from experiments import default
from experiments.unconstrained import luthra_thm2 as unconstrained_config

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OTHER_CODE = "0" * 64


def _git(*args):
  return subprocess.run(["git", "-C", ROOT, *args], capture_output=True,
                        text=True, check=True).stdout.strip()


def _session(commit="c0ffee" * 6 + "ab", modules=None):
  return {"commit": commit, "dirty": False,
          "modules_hash": modules or provenance.current()["modules_hash"],
          "cljax_version": "0.1.0", "jax_version": "0.0", "time": "t"}


def _run_dir(workdir, *, sessions, config=None):
  os.makedirs(workdir, exist_ok=True)
  with open(os.path.join(workdir, "config.json"), "w") as f:
    json.dump(config or {"seed": 0}, f)
  with open(os.path.join(workdir, "summary.json"), "w") as f:
    json.dump({"step": 1}, f)
  if sessions is not None:
    with open(os.path.join(workdir, provenance.FILE), "w") as f:
      json.dump({"sessions": sessions}, f)


def _sweep(sweep_dir, runs):
  """A sweep.json over ``runs``: {name: sessions (None: no provenance)}."""
  points = []
  for seed, (name, sessions) in enumerate(runs.items()):
    _run_dir(os.path.join(sweep_dir, name), sessions=sessions,
             config={"seed": seed, "name": name})
    points.append({"overrides": {"seed": seed}, "dir": name})
  with open(os.path.join(sweep_dir, "sweep.json"), "w") as f:
    json.dump({"config": "c.py", "grid": {}, "zip": {}, "seeds": None,
               "points": points}, f)


# --- what a run records -----------------------------------------------------


def test_modules_hash_covers_the_loss_model_and_data_files(tmp_path):
  package = tmp_path / "cljax"
  for name in provenance.MODULES:
    shutil.copytree(os.path.join(ROOT, "cljax", name), package / name,
                    ignore=shutil.ignore_patterns("__pycache__"))
  base = provenance.modules_hash(str(package))
  assert base == provenance.modules_hash(os.path.join(ROOT, "cljax"))
  # Caches and other files do not count; an edit to any .py file does.
  (package / "losses" / "__pycache__").mkdir()
  (package / "losses" / "__pycache__" / "x.py").write_text("cached")
  (package / "models" / "notes.txt").write_text("notes")
  assert provenance.modules_hash(str(package)) == base
  for name in provenance.MODULES:
    path = package / name / "__init__.py"
    text = path.read_text()
    path.write_text(text + "\n# edited\n")
    assert provenance.modules_hash(str(package)) != base, name
    path.write_text(text)
  assert provenance.modules_hash(str(package)) == base
  # A module moved between packages changes it too (paths are hashed).
  (package / "data" / "extra.py").write_text("X = 1\n")
  moved = provenance.modules_hash(str(package))
  (package / "data" / "extra.py").rename(package / "models" / "extra.py")
  assert provenance.modules_hash(str(package)) not in (base, moved)


def test_git_state_is_the_checkouts_and_none_without_one(tmp_path):
  commit, dirty = provenance.git_state()
  assert commit == _git("rev-parse", "HEAD")
  assert isinstance(dirty, bool)
  # A copy outside a checkout (as pip installs it): no commit, no flag.
  package = tmp_path / "site-packages" / "cljax"
  package.mkdir(parents=True)
  assert provenance.git_state(str(package)) == (None, None)


def test_dirty_means_edited_code_not_a_reproductions_results(tmp_path):
  # A checkout of its own: a package, a results file; committed, clean.
  root = tmp_path / "checkout"
  (root / "cljax" / "losses").mkdir(parents=True)
  (root / "experiments" / "results").mkdir(parents=True)
  (root / "cljax" / "losses" / "a.py").write_text("X = 1\n")
  (root / "experiments" / "results" / "p.json").write_text("{}\n")
  (root / "experiments" / "RESULTS.md").write_text("table\n")

  def git(*args):
    subprocess.run(["git", "-C", str(root), "-c", "user.name=t", "-c",
                    "user.email=t@t", *args], check=True, capture_output=True)

  git("init", "-q")
  git("add", "-A")
  git("commit", "-qm", "start")
  package = str(root / "cljax")
  commit, dirty = provenance.git_state(package)
  assert len(commit) == 40 and dirty is False
  # A reproduction rewrote its committed results: still the same code.
  (root / "experiments" / "results" / "p.json").write_text('{"a": 1}\n')
  (root / "experiments" / "RESULTS.md").write_text("new table\n")
  assert provenance.git_state(package) == (commit, False)
  # An untracked file is not code of this commit either.
  (root / "notes.txt").write_text("x\n")
  assert provenance.git_state(package) == (commit, False)
  # Edited code is.
  (root / "cljax" / "losses" / "a.py").write_text("X = 2\n")
  assert provenance.git_state(package) == (commit, True)


def test_record_appends_one_session_per_start(tmp_path):
  first = provenance.record(str(tmp_path))
  second = provenance.record(str(tmp_path))
  sessions = provenance.read(str(tmp_path))["sessions"]
  assert sessions == [first, second]
  code = provenance.current()
  assert {k: first[k] for k in code} == code
  assert code["commit"] == _git("rev-parse", "HEAD")
  assert code["cljax_version"] == __import__("cljax").__version__
  assert code["jax_version"] == __import__("jax").__version__


def test_both_train_loops_record_provenance(tmp_path):
  # The train loop's hook (where it writes config.json at each start; a
  # whole run would cost a compilation), and a short free-feature run.
  os.makedirs(tmp_path / "train")
  startup.write_config(str(tmp_path / "train"), default.get_config("smoke"))
  config = unconstrained_config.get_config("smoke")
  config.steps = 3
  unconstrained_lib.run(config, str(tmp_path / "free"), verbose=False)
  for name in ("train", "free"):
    (session,) = provenance.read(str(tmp_path / name))["sessions"]
    assert session["modules_hash"] == provenance.modules_hash()
    assert session["commit"] == _git("rev-parse", "HEAD")


# --- the staleness and commit checks ---------------------------------------


def test_run_records_name_each_run_its_config_and_commit(tmp_path):
  runs_dir = tmp_path / "runs"
  _sweep(runs_dir / "p" / "tiny" / "a", {"s0": [_session()],
                                          "s1": [_session()]})
  records = _driver.run_records({"a": str(runs_dir / "p" / "tiny" / "a")},
                                str(runs_dir))
  assert [r["workdir"] for r in records] == ["p/tiny/a/s0", "p/tiny/a/s1"]
  for r in records:
    path = runs_dir / r["workdir"] / "config.json"
    assert r["config_sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert r["commit"] == _session()["commit"] and r["sweep"] == "a"
  assert _driver.check_runs(records, allow_stale=False) == []


def test_a_run_of_other_code_is_refused_unless_allowed(tmp_path):
  _sweep(tmp_path / "a", {"fresh": [_session()],
                          "old": [_session(modules=OTHER_CODE)],
                          "resumed": [_session(), _session(
                              modules=OTHER_CODE)],
                          "before": None})
  records = _driver.run_records({"a": str(tmp_path / "a")}, str(tmp_path))
  with pytest.raises(ValueError, match="--allow_stale") as e:
    _driver.check_runs(records, allow_stale=False)
  for name in ("a/old", "a/resumed", "a/before"):
    assert name in str(e.value)
  assert "a/fresh" not in str(e.value)
  stale = _driver.check_runs(records, allow_stale=True)
  assert [r["workdir"] for r in stale] == ["a/old", "a/resumed", "a/before"]
  assert "no provenance" in stale[-1]["stale"]


def test_runs_of_two_commits_in_one_table_are_refused(tmp_path):
  _sweep(tmp_path / "a", {"x": [_session(commit="a" * 40)],
                          "y": [_session(commit="b" * 40)]})
  records = _driver.run_records({"a": str(tmp_path / "a")}, str(tmp_path))
  with pytest.raises(ValueError, match="several commits") as e:
    _driver.check_runs(records, allow_stale=False)
  assert "aaaaaaaaaaaa: a/x" in str(e.value)
  assert "bbbbbbbbbbbb: a/y" in str(e.value)
  assert _driver.check_runs(records, allow_stale=True) == []
  # A results JSON that mixes them is refused at render too.
  summary = {"provenance": {"runs": records, "allow_stale": False}}
  with pytest.raises(ValueError, match="several commits.*a/x"):
    _driver.check_provenance(summary, "p.json")


# --- reproduce end to end (fabricated runs and colab) ----------------------


def _summary():
  iv = {"mean": 0.01, "low": -0.02, "high": 0.04, "n": 2, "confidence": 0.95}
  row = {"overrides": {"loss.kwargs.temperature": 0.2}, "seeds": [0, 1],
         "excess": iv, "etf_distance": iv, "effective_rank": iv}
  return {"close": 1e-3, "luthra_thm2": [row], "graf_multisets": [],
          "graf_ce": [], "graf_batches": [], "jiang_beta": []}


@pytest.fixture
def fabricated(tmp_path, monkeypatch):
  """reproduce("unconstrained", scale="tiny") over fabricated runs.

  Returns ``make(sessions_of_run_s1)``: fabricates every sweep (runs s0 and
  s1; s0 of this code at HEAD) and returns (runs_dir, out).
  """
  runs_dir, out = tmp_path / "runs", tmp_path / "out"

  def make(s1):
    for sweep in unconstrained.sweeps("tiny"):
      _sweep(runs_dir / "unconstrained" / "tiny" / sweep.name,
             {"s0": [_session(commit=provenance.current()["commit"])],
              "s1": s1})
    return runs_dir, out

  def colab(module, dirs, out_dir, paper):
    del module, dirs
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, f"{paper}.json"), "w") as f:
      json.dump(_summary(), f)
    return _summary()

  monkeypatch.setattr(_driver, "run_sweeps", lambda sweeps: None)
  monkeypatch.setattr(_driver, "execute_colab", colab)
  return make


def test_results_json_and_markdown_carry_provenance(fabricated, capsys):
  head = provenance.current()["commit"]
  runs_dir, out = fabricated([_session(commit=head)])
  _run.reproduce("unconstrained", scale="tiny", runs_dir=str(runs_dir),
                 out=str(out))
  summary = json.loads((out / "unconstrained.json").read_text())
  prov = summary["provenance"]
  assert prov["commit"] == _git("rev-parse", "HEAD")
  assert isinstance(prov["dirty"], bool)
  assert prov["cljax_version"] == __import__("cljax").__version__
  assert prov["jax_version"] == __import__("jax").__version__
  assert prov["scale"] == "tiny" and prov["stale"] == []
  assert len(prov["runs"]) == 2 * len(unconstrained.sweeps("tiny"))
  for r in prov["runs"]:
    assert not os.path.isabs(r["workdir"])
    config = runs_dir / r["workdir"] / "config.json"
    assert r["config_sha256"] == hashlib.sha256(
        config.read_bytes()).hexdigest()
    assert r["commit"] == head
  # The ETF distance cannot be negative: its interval is clipped, in the
  # file and in the text.
  etf = summary["luthra_thm2"][0]["etf_distance"]
  assert (etf["low"], etf["clipped"]) == (0.0, ["low"])
  assert summary["luthra_thm2"][0]["excess"]["low"] == -0.02
  text = (out / "unconstrained.md").read_text()
  assert f"`{head[:12]}`" in text and "## Provenance" in text
  assert "1.00e-02 [0.00e+00, 4.00e-02] (low end clipped to the range)" in (
      text)
  assert _render.NOT_JUDGED in text
  # The console: the claims with their verdicts and the files, no JSON.
  printed = capsys.readouterr().out
  assert "P1 Theorem 2" in printed and _render.NOT_JUDGED in printed
  assert str(out / "unconstrained.json") in printed
  assert '"low"' not in printed and "{" not in printed
  assert len(printed.splitlines()) < 10


def test_reproduce_refuses_stale_runs_naming_them(fabricated, capsys):
  # s1: the same commit, with edited loss/model/data code (a dirty tree).
  runs_dir, out = fabricated([_session(commit=provenance.current()["commit"],
                                       modules=OTHER_CODE)])
  with pytest.raises(SystemExit) as exit_:
    cli.main(["unconstrained", "--scale=tiny", f"--runs_dir={runs_dir}",
              f"--out={out}"])
  assert exit_.value.code == 2
  err = capsys.readouterr().err
  assert "unconstrained/tiny/graf_ce/s1" in err and "--allow_stale" in err
  assert "unconstrained/tiny/graf_ce/s0" not in err
  assert not (out / "unconstrained.md").exists()
  cli.main(["unconstrained", "--scale=tiny", f"--runs_dir={runs_dir}",
            f"--out={out}", "--allow_stale"])
  prov = json.loads((out / "unconstrained.json").read_text())["provenance"]
  assert prov["allow_stale"] and len(prov["stale"]) == len(
      unconstrained.sweeps("tiny"))
  text = (out / "unconstrained.md").read_text()
  assert "--allow_stale" in text and "`unconstrained/tiny/graf_ce/s1`" in text


def test_a_results_json_without_provenance_is_refused(tmp_path):
  with pytest.raises(ValueError, match="unconstrained.json has no "
                     "provenance"):
    _driver.write_markdown(unconstrained, _summary(), scale="cpu",
                           commands=[], out=str(tmp_path),
                           paper="unconstrained")
  assert not (tmp_path / "unconstrained.md").exists()
  # The claims table refuses it in its row (the other papers still render).
  (tmp_path / "unconstrained.json").write_text(json.dumps(_summary()))
  table = _driver.claims_table(str(tmp_path), str(tmp_path))
  (row,) = [r for r in table.splitlines() if "unconstrained: refused" in r]
  assert "no provenance" in row and "P1" not in row
