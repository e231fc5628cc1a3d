"""colabs/jiang.ipynb executes on a tiny sweep of experiments/jiang/hardness.py.

The sweep (SCL at beta = 0 and HUCL at beta = 5 on 4 classes, 8 steps each) is
made here;
the notebook's recomputed numbers are checked against the checkpoints.
"""

import json
import os

from tests import notebooks
import numpy as np
import pytest

from cljax.analysis import checkpoints
from cljax import sweep
from cljax.data import load_split
from experiments.jiang import hardness as jiang_hardness


@pytest.fixture(scope="module")
def sweep_dir(tmp_path_factory):
  path = str(tmp_path_factory.mktemp("jiang_sweep"))
  # Two runs, zipped, cover both negative pools and both beta branches.
  zipped = sweep.parse_grid(
      ['loss.kwargs.negatives=["different_class", "all"]',
       "loss.kwargs.beta=[0, 5]"])
  sweep.run_sweep(jiang_hardness.get_config("tiny"), [], path, zipped=zipped,
                  verbose=False)
  return path


def test_jiang_colab_executes_and_recomputes_the_runs(sweep_dir, tmp_path,
                                                      monkeypatch):
  out = str(tmp_path / "metrics.json")
  figures = str(tmp_path / "figures")
  nb = notebooks.execute("jiang.ipynb", monkeypatch, {
      "CLJAX_SWEEP_DIR": notebooks.from_root(sweep_dir), "CLJAX_FIGURE_DIR": figures,
      "CLJAX_METRICS_OUT": out})
  assert (f"CLJAX_SWEEP_DIR: reading {sweep_dir}\n"
          in notebooks.text_output(nb))
  with open(out) as f:
    result = json.load(f)
  runs = result["runs"]
  assert sorted((r["name"], r["beta"]) for r in runs) == [
      ("HUCL", 5.0), ("SCL", 0.0)]
  assert sorted(os.listdir(figures)) == [
      "jiang_accuracy_vs_beta.png", "jiang_nc_vs_beta.png",
      "jiang_spectra.png", "jiang_training.png"]
  for r in runs:
    final = r["final"]
    assert len(final["spectrum"]) == r["num_classes"] - 1 == 3
    assert 1 <= final["rank"] <= 3
    assert 1.0 <= final["effective_rank"] <= 3.0 + 1e-4
    # Every kept checkpoint was recomputed, the last one is the final.
    assert [h["step"] for h in r["history"]][-4:] == [2, 4, 6, 8]
    assert r["history"][-1] == final
    assert f"| {r['name']} | ball | {r['beta']:g} |" in result["table"]

  # The null: random features of the runs' shape are full rank (C - 1 = 3)
  # and classify at chance level, over NULL_DRAWS draws.
  null = result["null"]["random"]
  assert null["rank"]["mean"] == 3 and null["rank"]["n"] == 5
  assert null["mean_clf_test_acc"]["high"] < 0.75
  # HSCL - SCL and HUCL - UCL per logged batch, recomputed from metrics.jsonl.
  by_beta = {}
  for r in runs:
    for row in checkpoints.read_metrics(r["workdir"]):
      if "train/hscl" in row:
        for pair in ("scl", "ucl"):
          by_beta.setdefault((pair.upper(), r["beta"]), []).append(
              row[f"train/h{pair}"] - row[f"train/{pair}"])
  rows = {(m["loss"], m["beta"]): m for m in result["monitor"]}
  assert set(rows) == set(by_beta)
  for key, gaps in by_beta.items():
    assert rows[key]["steps"] == len(gaps)
    np.testing.assert_allclose(rows[key]["worst_gap"], min(gaps), atol=1e-7)
    if key[1] == 0.0:   # no tilt: the same loss, up to float32 rounding
      assert max(abs(g) for g in gaps) < 1e-6

  # The notebook's mean-classifier accuracy, recomputed here with NumPy.
  r = runs[0]
  run = checkpoints.load(r["workdir"])
  (x_tr, y_tr), (x_te, y_te) = (
      load_split(run.config.data, split, normalize=False)
      for split in ("train", "test"))
  ball = lambda z: z / np.maximum(1.0, np.linalg.norm(z, axis=-1,
                                                      keepdims=True))
  z_tr, z_te = ball(run.features(x_tr)[1]), ball(run.features(x_te)[1])
  means = np.stack([z_tr[y_tr == c].mean(0) for c in range(4)])
  accuracy = np.mean(np.argmax(z_te @ means.T, axis=1) == y_te)
  np.testing.assert_allclose(r["final"]["mean_clf_test_acc"], accuracy,
                             atol=1e-6)
