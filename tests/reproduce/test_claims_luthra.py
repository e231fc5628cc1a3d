"""cljax.reproduce.luthra.claims on fabricated summaries: verdicts that can
say no, judged against each claim's null.

Every summary here is built by hand (no runs): one where each claim holds,
one where each fails, the regimes where the old fixed thresholds were passed
by the null itself, and the committed ``experiments/results/luthra.json``
(written before the nulls were measured), which must render with every
null reading "not measured in this JSON".
"""

import copy
import json
import os

import pytest

from cljax.reproduce import _render
from cljax.reproduce import luthra

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _iv(mean, low, high, n=5):
  return {"mean": mean, "low": low, "high": high, "n": n, "confidence": 0.95}


def _gap_section(ratios, exponent_minus_null):
  return {"C": [2.0, 5.0, 10.0], "seeds": [0, 1, 2, 3, 4],
          "fit_exact": {"loglog_exponent": _iv(-1.1, -1.15, -1.05)},
          "fit_exact_null": {"loglog_exponent": _iv(-1.29, -1.3, -1.28)},
          "exact_gap_over_null": ratios,
          "exponent_minus_null": exponent_minus_null}


def _fewshot(ratio, floor):
  return {"error_bound_2way": [_iv(1.0, .9, 1.1)] * 2,
          "error_ncc_2way": [_iv(.2, .19, .21)] * 2,
          "directional_cdnv": _iv(.05, .04, .06),
          "bound_over_error_2way": [ratio] * 2,
          "floor_over_error_2way": [floor] * 2,
          "error_ncc_2way_null": _iv(.5, .49, .51),
          "error_minus_null": _iv(-.3, -.31, -.29)}


def _true_summary():
  """Every claim holds against its null."""
  return {
      "seeds": [0, 1, 2, 3, 4],
      "theorem1": {"runs": 9, "steps": 90, "min_gap": 0.01,
                   "max_gap_over_bound": 0.2, "exact_min_gap": 0.05,
                   "exact_max_gap_over_bound": 0.3, "exact_values": 9},
      "paired": {"dcl": {
          "pearson_dcl_nscl": _iv(.999, .998, 1.0),
          "pearson_null": _iv(.9, .85, .95),
          "pearson_z_minus_null": _iv(2.0, 1.5, 2.5),
          "gap_range_over_nscl_range": _iv(.03, .02, .04)}},
      "gap_vs_classes_digits": _gap_section(
          [_iv(1.6, 1.5, 1.7), _iv(1.8, 1.7, 1.9), _iv(2.0, 1.9, 2.1)],
          _iv(.15, .13, .17)),
      "nscl_reached": {
          "etf_minimum": 4.08, "start": _iv(5.2, 5.1, 5.3),
          "dcl": {"share_of_nscl_decrease": _iv(.95, .9, 1.0),
                  "share_of_etf_way": _iv(.7, .65, .75)},
          "nscl": {"share_of_nscl_decrease": _iv(1., 1., 1.),
                   "share_of_etf_way": _iv(.75, .7, .8)},
          "etf_distance": {"dcl": _iv(.3, .25, .35),
                           "nscl": _iv(.2, .15, .25)},
          "etf_distance_random_means": 1.2,
          "etf_distance_orthonormal_frame": 0.5},
      "fewshot": {
          "shots": [1, 50], "probe": "ridge",
          "paired_difference": {"dcl-nscl": {
              "ncc_2way": [_iv(.01, -.02, .04)] * 2,
              "probe_2way": [_iv(.01, -.02, .04)] * 2}},
          "dcl": _fewshot(_iv(2.0, 1.5, 2.5), _iv(1.0, .8, 1.2))},
      "fewshot_collapsed": {"loss": "supcon", "dataset": "cljax_digits",
                            "shots": [1, 50],
                            **_fewshot(_iv(1.5, 1.2, 1.8), _iv(.5, .4, .6))},
  }


def _false_summary():
  """Every claim about learning fails against its null."""
  s = _true_summary()
  s["theorem1"]["max_gap_over_bound"] = 1.01
  s["paired"]["dcl"]["pearson_z_minus_null"] = _iv(-1.0, -1.5, -.5)
  s["gap_vs_classes_digits"] = _gap_section(
      [_iv(1.0, .98, 1.02), _iv(1.01, .99, 1.03), _iv(1.02, 1.0, 1.04)],
      _iv(.6, .5, .7))
  s["nscl_reached"]["dcl"]["share_of_nscl_decrease"] = _iv(.3, .2, .4)
  for key in ("ncc_2way", "probe_2way"):
    s["fewshot"]["paired_difference"]["dcl-nscl"][key] = [_iv(.2, .1, .3)] * 2
  s["fewshot"]["dcl"]["error_minus_null"] = _iv(.05, .02, .08)
  s["fewshot"]["dcl"]["bound_over_error_2way"] = [_iv(10., 8., 12.)] * 2
  s["fewshot_collapsed"]["bound_over_error_2way"] = [_iv(10., 8., 12.)] * 2
  return s


def _verdicts(summary, **kwargs):
  return {c.claim.split(" ")[0]: c for c in luthra.claims(summary, **kwargs)}


def test_every_claim_holds_on_a_summary_where_it_is_true():
  v = _verdicts(_true_summary())
  assert sorted(v) == ["(a)", "(b)", "(c)", "(e)", "(f)", "Theorem"]
  assert {k: c.holds for k, c in v.items()} == dict.fromkeys(v, "yes")
  # Each claim about learning names its null and says it was judged by it.
  for key in ("(a)", "(b)", "(c)", "(e)"):
    assert "judged against it" in v[key].null, key
  assert "theorem check" in v["Theorem"].measured
  assert v["Theorem"].null.startswith("—")


def test_every_claim_fails_on_a_summary_where_it_is_false():
  v = _verdicts(_false_summary())
  assert {k: c.holds.split(" ")[0] for k, c in v.items()} == dict.fromkeys(
      v, "no")


def test_b_is_no_where_the_null_passes_the_old_exponent_threshold():
  # The trained gap is the permuted-label gap (ratio 1 at every C), and its
  # exponent -1.29 passes the old rule "exponent <= -0.75": still no.
  s = _true_summary()
  g = s["gap_vs_classes_digits"] = _gap_section(
      [_iv(1.0, .99, 1.01)] * 3, _iv(0.0, -.01, .01))
  g["fit_exact"]["loglog_exponent"] = _iv(-1.29, -1.3, -1.28)
  assert _verdicts(s)["(b)"].holds == "no"
  # One C below the null's margin is enough for 'no' there.
  g["exact_gap_over_null"] = [_iv(1.6, 1.5, 1.7), _iv(1.6, 1.5, 1.7),
                              _iv(1.05, 1.0, 1.08)]
  assert _verdicts(s)["(b)"].holds == "no"
  # Above the null at every C but flat in C (exponent 1.29 above the null's):
  # the decay claim fails.
  g["exact_gap_over_null"] = [_iv(1.6, 1.5, 1.7)] * 3
  g["exponent_minus_null"] = _iv(1.29, 1.2, 1.4)
  assert _verdicts(s)["(b)"].holds == "no"
  # Two datasets, one holding: partly.
  s["gap_vs_classes_mnist"] = _true_summary()["gap_vs_classes_digits"]
  assert _verdicts(s)["(b)"].holds == "partly"


def test_a_is_no_where_the_null_r_is_as_high_as_the_measured_one():
  # r = 0.9997 passes the old threshold 0.9, and so does the null's r.
  s = _true_summary()
  s["paired"]["dcl"]["pearson_dcl_nscl"] = _iv(.9997, .9996, .9998)
  s["paired"]["dcl"]["pearson_null"] = _iv(.9998, .9997, .9999)
  s["paired"]["dcl"]["pearson_z_minus_null"] = _iv(-.3, -.5, -.1)
  assert _verdicts(s)["(a)"].holds == "no"
  s["paired"]["dcl"]["pearson_z_minus_null"] = _iv(0.0, -.2, .2)
  assert _verdicts(s)["(a)"].holds == "undecided"


def test_c_is_undecided_where_the_nscl_run_barely_moves():
  # Both runs cover 18 % of the way to the ETF minimum: the DCL run reaching
  # the NSCL run's value says little, whatever the share.
  s = _true_summary()
  for k in ("dcl", "nscl"):
    s["nscl_reached"][k]["share_of_etf_way"] = _iv(.18, .16, .2)
  c = _verdicts(s)["(c)"]
  assert c.holds.startswith("undecided"), c.holds
  assert "0.180" in c.measured
  # ... but a share below the threshold is 'no' in any regime.
  s["nscl_reached"]["dcl"]["share_of_nscl_decrease"] = _iv(.3, .2, .4)
  assert _verdicts(s)["(c)"].holds == "no"


def test_c_at_two_numbers_of_classes_gives_two_rows():
  s = _true_summary()
  s["nscl_reached_c2"] = copy.deepcopy(s["nscl_reached"])
  s["nscl_reached_c2"]["dcl"]["share_of_nscl_decrease"] = _iv(.3, .2, .4)
  rows = [c for c in luthra.claims(s) if c.claim.startswith("(c)")]
  assert [c.holds for c in rows] == ["yes", "no"]
  assert rows[1].claim.endswith("(C = 2)")


def test_f_is_not_judged_on_features_whose_floor_fixes_the_answer():
  # The DCL features' floor 4 x directional CDNV is 15x the error: 'no'
  # would be fixed before any measurement. Only the collapsed row counts.
  s = _true_summary()
  s["fewshot"]["dcl"]["floor_over_error_2way"] = [_iv(15., 12., 18.)] * 2
  s["fewshot"]["dcl"]["bound_over_error_2way"] = [_iv(40., 35., 45.)] * 2
  c = _verdicts(s)["(f)"]
  assert c.holds == "yes", c.holds
  assert "not tight by construction" not in c.holds
  s["fewshot_collapsed"]["floor_over_error_2way"] = [_iv(15., 12., 18.)] * 2
  assert _verdicts(s)["(f)"].holds.startswith(
      "undecided: not tight by construction")


def test_e_is_no_where_both_runs_sit_at_the_null():
  # Equal errors, both at chance: "similar" says nothing.
  s = _true_summary()
  s["fewshot"]["dcl"]["error_minus_null"] = _iv(0.0, -.01, .01)
  assert _verdicts(s)["(e)"].holds == "partly"
  s["fewshot"]["dcl"]["error_minus_null"] = _iv(.05, .02, .08)
  assert _verdicts(s)["(e)"].holds == "partly"
  s["fewshot"]["paired_difference"]["dcl-nscl"]["probe_2way"] = [
      _iv(.2, .1, .3)] * 2
  s["fewshot"]["paired_difference"]["dcl-nscl"]["ncc_2way"] = [
      _iv(.2, .1, .3)] * 2
  assert _verdicts(s)["(e)"].holds == "no"


def test_tiny_scale_judges_nothing():
  v = _verdicts(_true_summary(), scale="tiny")
  assert {c.holds for c in v.values()} == {_render.NOT_JUDGED}


def test_committed_summary_renders_with_its_nulls():
  # The committed JSON is the cpu rerun of 2026-12-08: every claim about
  # learning is judged against a null the colab measured.
  with open(os.path.join(ROOT, "experiments", "results", "luthra.json")) as f:
    summary = json.load(f)
  assert "pearson_null" in summary["paired"]["dcl"]
  v = _verdicts(summary, scale="cpu")
  assert v["Theorem"].holds == "yes"
  for key in ("(a)", "(b)", "(c)", "(e)"):
    assert not v[key].null.endswith(_render.NULL_MISSING), (key, v[key].null)
    assert v[key].holds != _render.NO_NULL, (key, v[key].holds)
  text = luthra.render(summary, scale="cpu", commands=["true"],
                       figures="figures")
  assert luthra.RULES in text
  for c in v.values():
    assert c.measured.replace("|", "\\|") in text


def test_a_combines_the_mnist_row():
  s = _true_summary()
  s["paired_mnist"] = {"dcl": {
      "pearson_dcl_nscl": _iv(.99, .98, 1.0),
      "pearson_null": _iv(.995, .99, 1.0),
      "pearson_z_minus_null": _iv(-.5, -.8, -.2)}}
  c = _verdicts(s)["(a)"]
  assert c.holds == "partly" and "(MNIST)" in c.measured
