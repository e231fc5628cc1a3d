"""python -m cljax.reproduce: tiny end to end, resume, print_only, errors.

The tiny reproductions of graf, jiang and unconstrained run once per module
(2 seeds, a few steps each); the intervals of their JSON are recomputed here
from the runs' own summary.json files with scipy's t quantile.
"""

import glob
import json
import os

import numpy as np
import pytest
from scipy import stats as scipy_stats

from cljax.analysis import checkpoints
from cljax.reproduce import __main__ as cli
from cljax.reproduce import _base
from cljax.reproduce import _driver
from cljax.reproduce import _render
from cljax.reproduce import graf
from cljax.reproduce import jiang
from cljax.reproduce import reproduce
from cljax.reproduce import unconstrained

# One worker runs the module: its tiny reproduction is a module fixture.
pytestmark = pytest.mark.xdist_group("reproduce")

VERDICTS = {"yes", "no", "partly", "undecided"}


def t_interval(values):
  """Mean and 95 % Student-t interval from the formula (scipy's quantile)."""
  x = np.asarray(values, np.float64)
  half = scipy_stats.t.ppf(0.975, x.size - 1) * x.std(ddof=1) / np.sqrt(
      x.size)
  return x.mean(), x.mean() - half, x.mean() + half


def bounded_t_interval(values, low=None, high=None):
  """``t_interval`` with its ends cut back to the quantity's range."""
  mean, lo, hi = t_interval(values)
  return (mean, lo if low is None else max(lo, low),
          hi if high is None else min(hi, high))


def _files(root):
  return sorted(p for p in glob.glob(os.path.join(root, "**"),
                                     recursive=True) if os.path.isfile(p))


@pytest.fixture(scope="module")
def runs_dir(tmp_path_factory):
  return str(tmp_path_factory.mktemp("reproduce"))


@pytest.fixture(scope="module")
def done(runs_dir):
  """paper -> its tiny reproduction's out dir (all three into one runs_dir)."""
  out = {}
  for paper in ("unconstrained", "graf", "jiang"):
    reproduce(paper, scale="tiny", runs_dir=runs_dir)
    out[paper] = os.path.join(runs_dir, paper, "tiny")
  return out


@pytest.mark.parametrize("paper", ["unconstrained", "graf", "jiang"])
def test_tiny_writes_markdown_json_figures_and_claims(done, paper):
  out = done[paper]
  with open(os.path.join(out, f"{paper}.json")) as f:
    summary = json.load(f)
  module = {"unconstrained": unconstrained, "graf": graf, "jiang": jiang}[
      paper]
  # The verdicts of a few steps and 2 seeds are not determined; whether each
  # claim can say yes and no is tested on fabricated summaries in
  # test_claims_graf.py, test_claims_jiang.py (with unconstrained's P3) and
  # test_claims_unconstrained.py. What a tiny run must give: its markdown
  # lists every claim of its JSON, and judges none of them.
  claims = module.claims(summary, scale="tiny")
  assert claims
  with open(os.path.join(out, f"{paper}.md")) as f:
    text = f.read()
  assert "Student-t" in text and "python -m cljax.sweep" in text
  assert _claim_rows(text) == [
      [c.paper] + [cell.replace("|", "\\|")
                   for cell in (c.claim, c.measured, c.null)] +
      [_render.NOT_JUDGED] for c in claims]
  pngs = os.listdir(os.path.join(out, "figures"))
  assert pngs and all(p.endswith(".png") for p in pngs)
  for name in pngs:  # Every figure the colab saved is linked.
    assert f"figures/{name}" in text
  with open(os.path.join(out, "RESULTS.md")) as f:
    table = f.read()
  assert _driver.BEGIN in table and _driver.END in table
  assert f"[`{paper}`]({paper}.md)" in table


def test_unconstrained_intervals_match_the_runs(done):
  with open(os.path.join(done["unconstrained"], "unconstrained.json")) as f:
    summary = json.load(f)
  sweep_dir = os.path.join(done["unconstrained"], "luthra_thm2")
  by_temperature = {}
  for path in glob.glob(os.path.join(sweep_dir, "*", "summary.json")):
    s = checkpoints.read_json(path)
    config = checkpoints.read_json(os.path.join(os.path.dirname(path),
                                               "config.json"))
    by_temperature.setdefault(config["loss"]["kwargs"]["temperature"],
                              []).append(s["final_loss"] -
                                         s["closed_form_minimum"])
  rows = summary["luthra_thm2"]
  assert len(rows) == len(by_temperature) == 2
  for row in rows:
    values = by_temperature[row["overrides"]["loss.kwargs.temperature"]]
    assert row["excess"]["n"] == len(values) == 2
    np.testing.assert_allclose(
        [row["excess"][k] for k in ("mean", "low", "high")],
        t_interval(values), rtol=1e-9, atol=1e-12)


def test_graf_difference_is_paired_by_seed(done):
  with open(os.path.join(done["graf"], "graf.json")) as f:
    summary = json.load(f)
  sweep_dir = os.path.join(done["graf"], "noisy")
  final = {}
  for path in glob.glob(os.path.join(sweep_dir, "*", "summary.json")):
    config = checkpoints.read_json(os.path.join(os.path.dirname(path),
                                               "config.json"))
    final[(config["loss"]["name"], config["seed"])] = checkpoints.read_json(
        path)["eval/simplex/distance"]
  diffs = [final[("supcon", s)] - final[("cross_entropy", s)]
           for s in (0, 1)]
  (group,) = summary["paired"]
  got = group["metrics"]["eval/simplex/distance"]
  np.testing.assert_allclose([got["mean"], got["low"], got["high"]],
                             t_interval(diffs), rtol=1e-9, atol=1e-12)


def test_graf_attempts_are_read_from_the_runs(done):
  """At tiny scale the attempts read the noisy sweep: check them against it."""
  with open(os.path.join(done["graf"], "graf.json")) as f:
    summary = json.load(f)
  attempts = summary["attempts"]
  distance, fit_steps, ce_acc = {}, [], []
  for path in glob.glob(os.path.join(done["graf"], "noisy", "*",
                                     "summary.json")):
    config = checkpoints.read_json(os.path.join(os.path.dirname(path),
                                               "config.json"))
    run = checkpoints.read_json(path)
    if config["loss"]["name"] == "supcon":
      distance[config["seed"]] = run["eval/simplex/distance"]
    else:
      ce_acc.append(run["fit/train_acc"])
      if run.get("fit/step") is not None:
        fit_steps.append(run["fit/step"])
  got = attempts["simplex"]["eval/simplex/distance"]
  np.testing.assert_allclose(  # A distance: its interval ends at >= 0.
      [got["mean"], got["low"], got["high"]],
      bounded_t_interval(list(distance.values()), low=0.0), rtol=1e-9)
  # The same runs on both sides of the pairing: no change, exactly.
  assert attempts["simplex"]["eval/simplex/distance/change"]["mean"] == 0.0
  (row,) = attempts["ce_noise"]["fit"]   # tiny sweeps one noise rate
  assert row["p"] == 0.3 and row["n"] == 2
  assert row["fitted"] == len(fit_steps)
  assert row["fit_step"]["mean"] == pytest.approx(np.mean(fit_steps))
  got = row["train_acc"]
  np.testing.assert_allclose(  # An accuracy: its interval lies in [0, 1].
      [got["mean"], got["low"], got["high"]],
      bounded_t_interval(ce_acc, low=0.0, high=1.0), rtol=1e-9)
  # One noise rate fits no growth exponent, and the claim says so.
  assert attempts["ce_noise"]["exponent"] is None
  claim = [c for c in graf.claims(summary) if "CE's iterations" in c.claim][-1]
  assert claim.holds == "undecided" and "no exponent" in claim.measured


def test_claims_table_lists_every_paper(done, runs_dir):
  table = _driver.claims_table(done["graf"], done["graf"])
  # graf's out dir holds only graf.json: the others say how to make theirs.
  for paper in ("luthra", "jiang", "unconstrained"):
    assert f"`python -m cljax.reproduce {paper} --scale=cpu`" in table
  assert "| P2 |" in table


def test_rerun_runs_nothing_new(done):
  sweep_dirs = [os.path.join(done[p], name) for p, name in
                (("unconstrained", "luthra_thm2"), ("graf", "noisy"))]
  before = {p: os.path.getmtime(p) for d in sweep_dirs for p in _files(d)
            if not p.endswith("sweep.json")}
  for paper, module in (("unconstrained", unconstrained), ("graf", graf)):
    sweeps = _driver.sweep_dirs(module, paper, "tiny",
                                os.path.dirname(os.path.dirname(done[paper])))
    _driver.run_sweeps({k: v for k, v in sweeps.items()
                        if v[1] in sweep_dirs})
  after = {p: os.path.getmtime(p) for p in before}
  assert after == before


def test_an_unfinished_point_is_run_again(done):
  sweep_dir = os.path.join(done["unconstrained"], "graf_ce")
  points = sorted(glob.glob(os.path.join(sweep_dir, "*", "summary.json")))
  os.remove(points[0])  # As if the sweep had stopped before that point.
  kept = os.path.getmtime(points[1])
  sweeps = _driver.sweep_dirs(unconstrained, "unconstrained", "tiny",
                              os.path.dirname(os.path.dirname(
                                  done["unconstrained"])))
  _driver.run_sweeps({"graf_ce": sweeps["graf_ce"]})
  assert os.path.exists(points[0])
  assert os.path.getmtime(points[1]) == kept


@pytest.mark.parametrize("scale", ["tiny", "paper"])
@pytest.mark.parametrize("paper", ["unconstrained", "graf", "jiang"])
def test_print_only_prints_every_sweep_and_writes_nothing(
    paper, scale, tmp_path, capsys):
  cli.main([paper, f"--scale={scale}", "--print_only",
            f"--runs_dir={tmp_path / 'runs'}", f"--out={tmp_path / 'out'}"])
  printed = capsys.readouterr().out
  module = _driver.paper_module(paper)
  assert printed.count("python -m cljax.sweep") == len(module.sweeps(scale))
  assert f"--execute --output-dir={tmp_path / 'out'} {module.COLAB}" in (
      printed.replace("'", ""))
  assert not os.listdir(tmp_path)


@pytest.mark.parametrize("argv, named", [
    (["nope", "--scale=tiny"], "luthra, graf, jiang, unconstrained"),
    (["graf", "--scale=huge"], "tiny, cpu, paper"),
    (["graf"], "--scale"),
])
def test_a_mistake_exits_2_naming_the_valid_values(argv, named, capsys):
  with pytest.raises(SystemExit) as exit_:
    cli.main(argv)
  assert exit_.value.code == 2
  assert named in capsys.readouterr().err


def test_rewrite_claims_keeps_the_rest_of_the_file(tmp_path):
  path = tmp_path / "RESULTS.md"
  path.write_text(f"# Title\n\nbefore\n{_driver.BEGIN}\nold table\n"
                  f"{_driver.END}\nafter\n")
  _driver.rewrite_claims(str(path), "| new |")
  assert path.read_text() == (f"# Title\n\nbefore\n{_driver.BEGIN}\n| new |\n"
                              f"{_driver.END}\nafter\n")
  path.write_text("no markers\n")
  with pytest.raises(ValueError, match="markers"):
    _driver.rewrite_claims(str(path), "| new |")


# --- tiny verdicts, bounded intervals, the console (no reproduction run) ----

RESULTS = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))), "experiments", "results")
ALL_PAPERS = ("luthra", "graf", "jiang", "unconstrained")


def _committed(paper):
  """A real summary: the committed cpu-scale JSON of ``paper``."""
  with open(os.path.join(RESULTS, f"{paper}.json")) as f:
    return json.load(f)


def _claim_rows(text):
  """The markdown's claims table: [paper, claim, measured, null, holds]."""
  rows = []
  for line in text.splitlines():
    cells = [c.strip() for c in line.strip().strip("|").split(" | ")]
    if line.startswith("| P") and len(cells) == 5:
      rows.append(cells)
  return rows


@pytest.mark.parametrize("paper", ALL_PAPERS)
def test_tiny_scale_judges_no_claim(paper):
  module = _driver.paper_module(paper)
  summary = _committed(paper)
  judged = module.claims(summary, scale="cpu")
  assert judged and all(c.holds.split(" ")[0].rstrip(":") in VERDICTS
                        for c in judged)
  tiny = module.claims(summary, scale="tiny")
  assert [c.holds for c in tiny] == ["not judged at tiny scale"] * len(judged)
  assert [c.measured for c in tiny] == [c.measured for c in judged]
  text = module.render(summary, scale="tiny", commands=["c"],
                       figures="figures")
  rows = _claim_rows(text)
  assert len(rows) == len(judged)
  assert all(row[-1] == "not judged at tiny scale" for row in rows)
  assert "At `tiny` scale every claim reads" in text
  cpu_rows = _claim_rows(module.render(summary, scale="cpu", commands=["c"],
                                       figures="figures"))
  assert [row[-1] for row in cpu_rows] == [c.holds for c in judged]


@pytest.mark.parametrize("paper", ALL_PAPERS)
def test_every_bounded_path_names_intervals_of_the_summary(paper):
  """A typo in BOUNDS would leave an interval unclipped: every path must
  reach intervals of the paper's summary, and they end inside the range."""
  module = _driver.paper_module(paper)
  summary = _committed(paper)
  for path, (lo, hi) in module.BOUNDS:
    found = []

    def walk(node, rest, found=found):
      if not rest:
        if isinstance(node, dict) and "low" in node:
          found.append(node)
        return
      key, rest = rest[0], rest[1:]
      if key == "*" and isinstance(node, (list, dict)):
        for v in (node if isinstance(node, list) else node.values()):
          walk(v, rest)
      elif isinstance(node, dict) and key in node:
        walk(node[key], rest)

    walk(_render.bounded(summary, module.BOUNDS), path)
    assert found, path
    for iv in found:
      if iv["low"] is not None:
        assert (lo is None or iv["low"] >= lo) and (
            hi is None or iv["high"] <= hi), (path, iv)


def test_a_negative_low_end_of_a_distance_is_clipped_and_said():
  # A committed summary with one interval made to cross 0 (a distance whose
  # Student-t interval reaches below 0, as few-seed intervals near 0 do).
  summary = _committed("unconstrained")
  row = summary["luthra_thm2"][0]
  etf = row["etf_distance"]
  etf["low"] = -abs(etf["high"])
  text = unconstrained.render(summary, scale="cpu", commands=["c"],
                              figures="figures")
  want = (f"{etf['mean']:.2e} [{0.0:.2e}, {etf['high']:.2e}] (low end "
          f"clipped to the range)")
  assert want in text
  assert f"[{etf['low']:.2e}," not in text
  # jiang's tables are rendered from the groups, with the same cells.
  summary = _committed("jiang")
  group = summary["digits_groups"][0]
  etf = group["metrics"]["etf_distance"]
  etf["low"] = -abs(etf["high"])
  text = jiang.render(summary, scale="cpu", commands=["c"], figures="f")
  assert (f"{etf['mean']:.3f} [{0.0:.3f}, {etf['high']:.3f}] (low end "
          f"clipped to the range)") in text
  assert "±" not in text


def test_claims_table_judges_at_the_scale_the_json_records(tmp_path):
  summary = _committed("unconstrained")
  for scale in ("tiny", "cpu"):
    summary["provenance"] = {"scale": scale, "runs": [
        {"workdir": "w", "commit": "a" * 40, "modules_hash": "h"}]}
    (tmp_path / "unconstrained.json").write_text(json.dumps(summary))
    table = _driver.claims_table(str(tmp_path), str(tmp_path))
    rows = [r for r in table.splitlines() if r.startswith("| P")]
    cells = [r.split(" | ") for r in rows]
    want = unconstrained.claims(summary, scale=scale)
    holds = [c[4] for c in cells]
    assert holds == [c.holds for c in want]
    assert [c[3] for c in cells] == [c.null for c in want]
    assert ("not judged at tiny scale" in holds) == (scale == "tiny")


def test_run_sweeps_keeps_the_runs_output_off_the_console(tmp_path, capsys):
  sweep = _base.Sweep("graf_ce", "experiments/unconstrained/graf_ce.py:smoke")
  directory = str(tmp_path / "graf_ce")
  _driver.run_sweeps({"graf_ce": (sweep, directory)})
  printed = capsys.readouterr().out
  assert printed.splitlines() == [
      f"== sweep graf_ce: {directory} (output: {directory}.log)"]
  with open(directory + ".log") as f:
    log = f.read()
  # The free-feature run prints its summary as JSON: into the log.
  assert '"final_loss"' in log


# ---------------------------------------------------------------------------
# P3 (jiang, unconstrained): the regimes of issue 24.
# ---------------------------------------------------------------------------


def _grid_values(sweep, field):
  """The values a sweep's grid gives ``field`` (None if not swept)."""
  for spec in sweep.grid:
    name, _, values = spec.partition("=")
    if name == field:
      return json.loads(values)
  return None


def test_p3_cpu_sweeps_run_mnist_and_the_sampled_estimator():
  sweeps = {s.name: s for s in jiang.sweeps("cpu")}
  mnist = sweeps["mnist"]
  assert mnist.config.endswith(":cpu_mnist") and mnist.seeds >= 3
  assert _grid_values(mnist, "loss.kwargs.beta")[0] == 0   # the null beta
  assert "none" in _grid_values(mnist, "loss.kwargs.normalize")
  sampled = sweeps["sampled"]
  assert "loss.kwargs.estimator=sampled" in sampled.overrides
  assert "loss.kwargs.num_negatives=256" in sampled.overrides
  # Beside the exact estimator: the same preset and betas as the digits.
  assert sampled.config == sweeps["beta"].config
  assert _grid_values(sampled, "loss.kwargs.beta") == [0, 5, 30]
  env = jiang.colab_env({n: f"/d/{n}" for n in sweeps}, summary="s",
                        figures="f")
  assert env["CLJAX_MNIST_SWEEP_DIR"] == "/d/mnist"
  assert env["CLJAX_SAMPLED_SWEEP_DIR"] == "/d/sampled"


def test_p3_tiny_sweeps_need_no_mnist_download():
  sweeps = {s.name: s for s in jiang.sweeps("tiny")}
  assert {"beta", "digits", "mnist", "sampled"} <= set(sweeps)
  assert all("cpu_mnist" not in s.config for s in sweeps.values())
  assert sweeps["mnist"].config.endswith(":tiny_mnist")


def test_p3_free_features_sweep_all_four_losses_and_normalisations():
  sweep = {s.name: s for s in unconstrained.sweeps("cpu")}["jiang_beta"]
  assert _grid_values(sweep, "loss.kwargs.negatives") == [
      "different_class", "all"]
  assert _grid_values(sweep, "loss.kwargs.normalize") == [
      "sphere", "ball", "none"]
  betas = _grid_values(sweep, "loss.kwargs.beta")
  assert betas[0] == 0.0 and len(betas) >= 3   # SCL/UCL and HSCL/HUCL
  assert sweep.seeds >= 3


# --- P2 (graf): geometry nulls, regimes, MNIST (issue 24) -------------------

def test_graf_geometry_groups_carry_their_nulls(done):
  with open(os.path.join(done["graf"], "graf.json")) as f:
    summary = json.load(f)
  groups = {g["name"]: g for g in summary["geometry"]}
  # The tiny noisy runs (affine last layer) are signed; the nonneg sweep's
  # post-ReLU features are not.
  assert groups["supcon_vs_ce"]["features"] == "signed"
  assert groups["nonneg"]["features"] == "non-negative"
  for g in groups.values():
    assert (g["classes"], g["dim"]) == (10, 32)
    null = g["null"]
    assert null["random_means"]["n"] == 50
    # Closed forms of the exact frames (C = 10): the orthonormal frame is
    # sqrt(2 (1 - 3/sqrt(10))) from the simplex, the simplex 0 from it.
    assert null["orthonormal_frame"]["etf_distance"] == pytest.approx(
        np.sqrt(2 * (1 - 3 / np.sqrt(10))), abs=1e-5)
    assert null["simplex"]["etf_distance"] == pytest.approx(0.0, abs=1e-5)
    assert null["orthonormal_frame"][
        "orthogonal_frame_distance"] == pytest.approx(0.0, abs=1e-5)
    for model in ("supcon", "CE"):
      assert g["models"][model]["etf_distance"]["n"] == 2
  claims = graf.claims(summary, scale="cpu")
  assert any("orthogonal frame" in c.claim and "random" in c.null
             for c in claims)
  assert summary["fit_rule"] == "linear"


def test_graf_cpu_sweeps_add_signed_nonneg_mnist_and_slow_regimes():
  cpu = {s.name: s for s in graf.sweeps("cpu")}
  assert cpu["nonneg"].config == cpu["supcon_vs_ce"].config
  assert "model.encoder_kwargs.activate_final=True" in cpu["nonneg"].overrides
  assert cpu["mnist"].config.endswith(":mnist") and cpu["mnist"].seeds >= 3
  assert cpu["noisy_slow"].config.endswith(":cpu_slow")
  assert cpu["noisy_slow"].grid == cpu["noisy"].grid
  # Tiny never reads MNIST (no download in tests).
  assert all("mnist" not in s.config for s in graf.sweeps("tiny"))
  env = graf.colab_env({n: f"/d/{n}" for n in cpu}, summary="s",
                       figures="f")
  assert (env["CLJAX_GRAF_NONNEG"], env["CLJAX_GRAF_MNIST"],
          env["CLJAX_GRAF_SLOW"]) == ("/d/nonneg", "/d/mnist",
                                      "/d/noisy_slow")
