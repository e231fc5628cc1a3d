"""The unconstrained-features driver and the main command."""

import json
import os
import subprocess
import sys

import pytest

from cljax import theory
from cljax import unconstrained
from experiments import unconstrained as default


def test_nscl_free_features_reach_the_theorem_2_minimum(tmp_path):
  # Luthra et al. Theorem 2: augmentation collapse, within-class collapse,
  # simplex ETF, and the value log(K(N - n)) - C/((C - 1) tau).
  config = default.get_config()
  config.steps = 1500
  summary = unconstrained.run(config, str(tmp_path), verbose=False)
  want = theory.nscl_at_etf(10, 8, 2, temperature=0.5)
  assert summary["closed_form_minimum"] == pytest.approx(want)
  assert summary["final_loss"] == pytest.approx(want, abs=1e-3)
  assert summary["nc1"] < 1e-4
  assert summary["etf_distance"] < 1e-3
  assert summary["augmentation_collapse"] < 1e-5
  assert summary["effective_rank"] == pytest.approx(9.0, abs=1e-2)
  assert 0 <= summary["gap"] <= summary["gap_bound"]
  rows = [json.loads(l) for l in open(tmp_path / "metrics.jsonl")]
  assert rows[-1]["step"] == 1500
  assert rows[0]["train/loss"] > rows[-1]["train/loss"]


@pytest.mark.parametrize("name,kwargs", [
    ("supcon", {"temperature": 0.1}),
    ("ntxent", {"temperature": 0.5}),
    ("hard_contrastive", {"beta": 2.0}),
])
def test_every_loss_runs_through_the_driver(name, kwargs):
  config = default.get_config("smoke")
  config.loss.name = name
  config.loss.kwargs = kwargs
  summary = unconstrained.run(config, None, verbose=False)
  assert summary["loss"] == name
  assert all(v is None or v == v for v in summary.values())  # no NaN


def _main(*args, cwd):
  env = dict(os.environ, JAX_NUM_CPU_DEVICES="1")
  return subprocess.run([sys.executable, "-m", "cljax.main", *args],
                        cwd=cwd, env=env, capture_output=True, text=True,
                        timeout=300)


def test_main_command_smoke_preset_and_override(tmp_path):
  root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  out = _main("--config=experiments/unconstrained.py:smoke",
              f"--workdir={tmp_path}", "--config.loss.kwargs.temperature=0.2",
              cwd=root)
  assert out.returncode == 0, out.stderr
  summary = json.load(open(tmp_path / "summary.json"))
  assert summary["closed_form_minimum"] == pytest.approx(
      theory.nscl_at_etf(4, 3, 2, temperature=0.2))
  bad = _main("--config=experiments/unconstrained.py:smoke",
              f"--workdir={tmp_path}", "--config.loss.temprature=0.2",
              cwd=root)
  assert bad.returncode != 0
  assert "temprature" in bad.stderr
