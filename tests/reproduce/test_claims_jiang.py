"""P3's claims judged on fabricated summaries, where each holds and where not.

``cljax.reproduce.jiang.claims`` (trained networks) and the P3 rows of
``cljax.reproduce.unconstrained.claims`` (free features) read the colabs'
JSON. Each verdict is checked here on hand-made summaries whose numbers make
the claim true, false, or indistinguishable from its null, so a threshold
that the null also passes, or a comparison that cannot say no, fails a test.
The committed results of both reproductions (older JSON without the null
fields) must still render, with the nulls reported as not measured.
"""

import json
import os

import pytest

from cljax.reproduce import _render
from cljax.reproduce import jiang
from cljax.reproduce import unconstrained

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def iv(mean, half=0.1, n=5):
  """A Student-t interval dict as the colabs write them."""
  return {"mean": mean, "low": mean - half, "high": mean + half, "n": n,
          "confidence": 0.95}


def _group(loss, normalize, beta, **metrics):
  name = loss if beta == 0 else "H" + loss
  return {"name": name, "loss": loss, "normalize": normalize, "beta": beta,
          "seeds": [0, 1, 2, 3, 4], "metrics": metrics}


def jiang_summary(*, scl_rank=7.8, etf_diff=-0.4, acc_diff=0.05,
                  none_er=4.0, ball_er=15.0, monitor_worst=0.0,
                  unit_norm=0.006, null_unit_norm=0.9,
                  null=True, null_rank=19.0, null_er=14.0,
                  with_monitor=True):
  """A mixture summary of C = 20 classes with the given measurements."""
  groups = [
      _group("SCL", "ball", 0.0, rank=iv(scl_rank, 0.2),
             effective_rank=iv(ball_er, 0.5), etf_distance=iv(0.8),
             unit_norm=iv(unit_norm, 0.002),
             mean_clf_test_acc=iv(0.55, 0.01)),
      _group("SCL", "ball", 30.0, rank=iv(18.0, 0.5),
             effective_rank=iv(16.0, 0.5), etf_distance=iv(0.4),
             mean_clf_test_acc=iv(0.6, 0.01)),
      _group("SCL", "none", 0.0, rank=iv(18.0, 0.5),
             effective_rank=iv(none_er, 0.5), etf_distance=iv(0.7),
             mean_clf_test_acc=iv(0.5, 0.01)),
  ]
  paired = [{"loss": "SCL", "normalize": "ball", "beta": 30.0,
             "seeds": [0, 1, 2, 3, 4],
             "difference": {"etf_distance": iv(etf_diff, 0.05),
                            "mean_clf_test_acc": iv(acc_diff, 0.02),
                            "rank": iv(10.0, 1.0)}}]
  out = {"num_classes": 20, "groups": groups, "paired": paired}
  if null:
    out["null"] = {"random": {
        "rank": iv(null_rank, 0.0 if null_rank == 19.0 else 0.5),
        "effective_rank": iv(null_er, 0.3),
        "etf_distance": iv(0.75, 0.02),
        "mean_clf_test_acc": iv(0.05, 0.01),
        "unit_norm": iv(null_unit_norm, 0.01)}, "draws": 5}
  if with_monitor:
    out["monitor"] = [
        {"loss": pair, "normalize": "ball", "beta": beta, "runs": 5,
         "steps": 300, "violations": int(beta > 0 and monitor_worst < -1e-5),
         "worst_gap": monitor_worst if beta > 0 else 0.0,
         "min_gap": iv(0.01 if beta > 0 else 0.0, 0.001), "tol": 1e-5}
        for pair in ("SCL", "UCL") for beta in (0.0, 30.0)]
  return out


def _holds(claims, words):
  """The verdict of the one claim whose text contains ``words``."""
  found = [c for c in claims if words in c.claim]
  assert len(found) == 1, [c.claim for c in claims]
  return found[0]


@pytest.mark.parametrize("rank, null_rank, want", [
    (7.8, 19.0, "yes"),      # collapsed; random features are full rank
    (19.0, 19.0, "no"),      # full rank: no collapse
    (7.8, 7.0, "undecided"),  # the null passes too: no verdict
])
def test_jiang_dimensional_collapse_is_judged_against_random_features(
    rank, null_rank, want):
  claim = _holds(jiang.claims(jiang_summary(scl_rank=rank,
                                            null_rank=null_rank)),
                 "without hard negatives")
  assert claim.holds == want
  assert "random features" in claim.null
  assert ("the null passes too" in claim.null) == (want == "undecided")


@pytest.mark.parametrize("etf_diff, acc_diff, want", [
    (-0.4, 0.05, "yes"), (0.2, -0.05, "no")])
def test_jiang_hardness_claims_say_yes_and_no(etf_diff, acc_diff, want):
  claims = jiang.claims(jiang_summary(etf_diff=etf_diff, acc_diff=acc_diff))
  for words in ("towards the simplex ETF", "raise the mean-classifier"):
    claim = _holds(claims, words)
    assert claim.holds == want
    # The null beside it: the same runs at beta = 0, and chance features.
    assert "β = 0" in claim.null and "random features" in claim.null


@pytest.mark.parametrize("none_er, ball_er, null_er, want", [
    (4.0, 15.0, 14.0, "yes"),   # below the normalised runs and the null
    (13.0, 7.2, 14.0, "no"),    # the committed data: above the ball runs
])
def test_jiang_no_normalisation_collapse_uses_a_spectral_criterion(
    none_er, ball_er, null_er, want):
  claim = _holds(jiang.claims(jiang_summary(
      none_er=none_er, ball_er=ball_er, null_er=null_er)),
                 "without normalisation")
  assert claim.holds == want


def test_jiang_no_normalisation_collapse_needs_to_beat_random_features():
  # Below the normalised runs but not below random features of that shape:
  # not a collapse beyond what no learning gives.
  claim = _holds(jiang.claims(jiang_summary(none_er=4.0, ball_er=15.0,
                                            null_er=3.0)),
                 "without normalisation")
  assert claim.holds != "yes"


@pytest.mark.parametrize("unit_norm, null_unit_norm, want", [
    (0.006, 0.9, "yes"), (0.4, 0.9, "no"),
    (0.006, 0.006, "undecided")])
def test_jiang_ball_runs_end_on_the_boundary(unit_norm, null_unit_norm,
                                             want):
  claim = _holds(jiang.claims(jiang_summary(
      unit_norm=unit_norm, null_unit_norm=null_unit_norm)),
                 "unit-ball constraint")
  assert claim.holds == want


@pytest.mark.parametrize("worst, want", [(0.0, "yes"), (2e-6, "yes"),
                                         (-1e-3, "no")])
def test_jiang_hscl_above_scl_along_trajectories(worst, want):
  claims = jiang.claims(jiang_summary(monitor_worst=worst))
  for words in ("HSCL ≥ SCL", "HUCL ≥ UCL"):
    assert _holds(claims, words).holds == want


def test_jiang_without_nulls_is_undecided_and_says_so():
  claims = jiang.claims(jiang_summary(null=False, with_monitor=False))
  dc = _holds(claims, "without hard negatives")
  assert dc.null == jiang.NO_NULL
  assert dc.holds == jiang.UNDECIDED_NO_NULL == "undecided: no null"
  # What the runs alone say stays visible, beside the verdict.
  assert dc.measured.endswith("(without a null this would read: yes)")
  assert _holds(claims, "without normalisation").holds == (
      jiang.UNDECIDED_NO_NULL)
  monitor = _holds(claims, "HSCL ≥ SCL")
  assert monitor.holds == "undecided" and "not measured" in monitor.measured


def test_jiang_every_dataset_is_judged_and_tiny_is_not():
  s = jiang_summary()
  for prefix in ("digits_", "mnist_", "sampled_"):
    s.update({f"{prefix}{k}": s[k] for k in ("groups", "paired", "null",
                                             "monitor")})
    s[f"{prefix}num_classes"] = 20
  claims = jiang.claims(s, scale="cpu")
  for _, data in jiang.DATASETS:
    assert sum(c.claim.startswith(data + ":") for c in claims) == 7, data
  assert {c.holds for c in jiang.claims(s, scale="tiny")} == {
      _render.NOT_JUDGED}


def _row(negatives, normalize, beta, **values):
  return {"overrides": {"loss.kwargs.negatives": negatives,
                        "loss.kwargs.normalize": normalize,
                        "loss.kwargs.beta": beta},
          "seeds": [0, 1, 2, 3, 4], **values}


def free_summary(*, etf=1e-3, etf_init=0.73, norm=1.0, norm_init=0.03,
                 none_er=3.0, twin_er=9.0, er_init=7.0, nulls=True):
  """Free-feature P3 rows: SCL and HSCL on the sphere, ball and none."""
  rows = []
  for normalize in ("sphere", "ball", "none"):
    for beta in (0.0, 5.0):
      values = {"etf_distance": iv(etf if normalize != "none" else 0.6,
                                   etf / 4),
                "effective_rank": iv(none_er if normalize == "none" else
                                     twin_er, 0.01),
                "feature_norm": iv(norm if normalize != "none" else 1.5,
                                   0.001)}
      if nulls:
        values.update({"etf_distance_init": iv(etf_init, 0.02),
                       "effective_rank_init": iv(er_init, 0.3),
                       "feature_norm_init": iv(
                           1.0 if normalize == "sphere" else norm_init,
                           0.001)})
      rows.append(_row("different_class", normalize, beta, **values))
  return {"close": 1e-4, "luthra_thm2": [], "graf_multisets": [],
          "graf_ce": [], "graf_batches": [], "jiang_beta": rows}


def _free(summary, words):
  return _holds([c for c in unconstrained.claims(summary) if c.paper == "P3"],
                words)


@pytest.mark.parametrize("etf, etf_init, want", [
    (1e-3, 0.73, "yes"), (0.3, 0.73, "no"),
    (1e-3, 1e-3, "undecided")])
def test_free_features_neural_collapse(etf, etf_init, want):
  claim = _free(free_summary(etf=etf, etf_init=etf_init),
                "SCL/HSCL reach neural collapse")
  assert claim.holds == want
  assert "initial embeddings" in claim.null


@pytest.mark.parametrize("norm, want", [(1.0, "yes"), (0.5, "no")])
def test_free_features_ball_minimisers_on_the_boundary(norm, want):
  assert _free(free_summary(norm=norm), "unit-ball constraint").holds == want


def test_free_features_ball_claim_is_undecided_if_the_start_is_on_it():
  # Started on the boundary, ending there shows nothing.
  claim = _free(free_summary(norm_init=1.0), "unit-ball constraint")
  assert claim.holds.startswith("undecided")


@pytest.mark.parametrize("none_er, want", [(3.0, "yes"), (9.5, "no")])
def test_free_features_no_normalisation_collapse(none_er, want):
  claim = _free(free_summary(none_er=none_er), "without normalisation")
  assert claim.holds == want


def test_free_features_without_nulls_are_undecided():
  summary = free_summary(nulls=False)
  for words in ("SCL/HSCL reach neural collapse", "unit-ball constraint",
                "without normalisation"):
    claim = _free(summary, words)
    assert claim.holds == "undecided: no null", words
    assert claim.null == unconstrained.NO_NULL


@pytest.mark.parametrize("paper, module", [("jiang", jiang),
                                           ("unconstrained", unconstrained)])
def test_committed_results_render(paper, module):
  with open(os.path.join(ROOT, "experiments", "results",
                         f"{paper}.json")) as f:
    summary = json.load(f)
  text = module.render(summary, scale="cpu", commands=["c"], figures="f")
  assert "## Claims" in text
  claims = module.claims(summary, scale="cpu")
  p3 = [c for c in claims if c.paper == "P3"]
  assert p3
  # The committed JSON (the cpu rerun of 2026-12-08) carries its nulls:
  # every P3 claim shows one.
  assert all(module.NO_NULL not in c.null for c in p3), [
      c.claim for c in p3 if module.NO_NULL in c.null]


def test_every_verdict_is_one_of_the_tables_words():
  allowed = {"yes", "no", "partly", "undecided", "undecided: no null"}
  summaries = [jiang_summary(), jiang_summary(null=False, with_monitor=False),
               jiang_summary(scl_rank=7.8, null_rank=7.0, null_unit_norm=0.0)]
  holds = {c.holds for s in summaries for c in jiang.claims(s)}
  free = [free_summary(), free_summary(nulls=False),
          free_summary(etf_init=1e-3, norm_init=1.0)]
  holds |= {c.holds for s in free for c in unconstrained.claims(s)}
  assert holds <= allowed, holds - allowed
