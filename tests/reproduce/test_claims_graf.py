"""P2's claims judged from fabricated summaries: each can say yes and no.

Every summary here is typed by hand (intervals as ``cljax.analysis.stats.as_dict``
writes them), so each verdict is checked against a measurement whose truth
is known: a trained geometry wholly below / above its random-means null,
growth laws whose comparison prefers one model or another.
"""

import json
import os

import pytest

from cljax.reproduce import _render
from cljax.reproduce import graf

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def iv(mean, half=0.01, n=5):
  return {"mean": mean, "low": mean - half, "high": mean + half, "n": n,
          "confidence": 0.95}


def group(features="signed", *, supcon_etf=0.1, ce_etf=0.2,
          supcon_ofd=0.5, ce_ofd=0.6, null_etf=0.40, null_ofd=0.10,
          paired=-0.1):
  return {
      "name": "supcon_vs_ce" if features == "signed" else "nonneg",
      "features": features, "data": "images_c10", "classes": 10,
      "dim": 128,
      "models": {"supcon": {"etf_distance": iv(supcon_etf),
                            "orthogonal_frame_distance": iv(supcon_ofd)},
                 "CE": {"etf_distance": iv(ce_etf),
                        "orthogonal_frame_distance": iv(ce_ofd)}},
      "paired": {"etf_distance": iv(paired, 0.03),
                 "orthogonal_frame_distance": iv(0.0, 0.03)},
      "null": {"random_means": {"kind": "gaussian", "n": 50,
                                "etf_distance": iv(null_etf),
                                "orthogonal_frame_distance": iv(null_ofd)},
               "orthonormal_frame": {"etf_distance": 0.320,
                                     "orthogonal_frame_distance": 0.0},
               "simplex": {"etf_distance": 0.0,
                           "orthogonal_frame_distance": 0.334}}}


def growth(best, **delta):
  full = {"linear": 0.0, "power": 0.0, "saturating": 0.0, **delta}
  return {"n": 30, "criterion": "aicc", "best": best, "delta": full,
          "models": {m: {"params": {"k": 1.0}} for m in full}}


def summary(*, geometry=None, k_supcon=(1.7, 0.3), k_ce=(1.0, 0.2),
            g_supcon=None, g_ce=None, k_paired=(0.7, 0.3), regimes=None):
  return {
      "fit_rule": "mean_sphere",
      "models": {}, "paired": [], "noisy": [],
      "geometry": [group()] if geometry is None else geometry,
      "exponent": {"supcon": iv(*k_supcon), "CE": iv(*k_ce)},
      "exponent_at_bound": {"supcon": {"at_bound": 0, "n": 5},
                            "CE": {"at_bound": 0, "n": 5}},
      "exponent_paired": iv(*k_paired),
      "growth": {"supcon": g_supcon or growth("power", linear=9.0,
                                              saturating=7.0),
                 "CE": g_ce or growth("linear", power=1.5,
                                      saturating=6.0)},
      **({"regimes": regimes} if regimes else {}),
  }


def verdict(claims, text):
  (hit,) = [c for c in claims if text in c.claim]
  return hit.holds


# --- the simplex, split by the features' sign -------------------------------

def test_signed_simplex_yes_when_closer_than_random_means():
  claims = graf.claims(summary(), scale="cpu")
  for model in ("SupCon", "CE"):
    assert verdict(claims, f"{model}'s class means approach a regular") == "yes"
  assert verdict(claims, "closer to a regular simplex than CE") == "yes"


def test_trained_model_farther_than_random_means_is_no():
  # The committed cpu numbers: SupCon 0.80, CE 0.86, random means 0.40.
  s = summary(geometry=[group(supcon_etf=0.80, ce_etf=0.86, paired=-0.07)])
  claims = graf.claims(s, scale="cpu")
  for model in ("SupCon", "CE"):
    (c,) = [c for c in claims
            if f"{model}'s class means approach a regular" in c.claim]
    assert c.holds == "no" and "farther than random" in c.measured
  # Closer than CE, but a threshold random means also pass is no "yes".
  assert verdict(claims, "simplex than CE") == "partly"
  null = [c for c in claims
          if "SupCon's class means approach a regular" in c.claim]
  assert "0.4 [0.39, 0.41]" in null[0].null and "orthonormal" in null[0].null


def test_supcon_not_closer_than_ce_is_no():
  s = summary(geometry=[group(paired=0.1)])
  assert verdict(graf.claims(s, scale="cpu"), "simplex than CE") == "no"


def test_overlapping_null_is_undecided():
  s = summary(geometry=[group(supcon_etf=0.40)])
  assert verdict(graf.claims(s, scale="cpu"),
                 "SupCon's class means approach a regular") == "undecided"


def test_nonnegative_features_judged_against_the_orthogonal_frame():
  near = group("non-negative", supcon_ofd=0.05, null_ofd=0.9)
  far = group("non-negative", supcon_ofd=1.2, null_ofd=0.9)
  for g, want in ((near, "yes"), (far, "no")):
    claims = graf.claims(summary(geometry=[group(), g]), scale="cpu")
    assert verdict(claims, "orthogonal frame") == want
    # The non-negative group makes no simplex claim of its own.
    assert sum("approach a regular simplex" in c.claim for c in claims) == 2


# --- iterations to fit ------------------------------------------------------

def test_superlinear_yes_and_no():
  claims = graf.claims(summary(), scale="cpu")
  assert verdict(claims, "SupCon's iterations") == "yes"
  # k below 1: no, whatever the model comparison.
  s = summary(k_supcon=(0.5, 0.1))
  assert verdict(graf.claims(s, scale="cpu"), "SupCon's iterations") == "no"
  # k above 1 per seed, but a line beats the power law by AICc: no.
  s = summary(g_supcon=growth("linear", power=3.0, saturating=5.0))
  assert verdict(graf.claims(s, scale="cpu"), "SupCon's iterations") == "no"
  # k above 1, power law best but only weakly over a line: undecided.
  s = summary(k_supcon=(1.2, 0.3), g_supcon=growth("power", linear=1.0))
  assert verdict(graf.claims(s, scale="cpu"),
                 "SupCon's iterations") == "undecided"


def test_ce_linear_yes_and_saturating_no():
  claims = graf.claims(summary(), scale="cpu")
  assert verdict(claims, "CE's iterations") == "yes"
  # The committed cpu pattern: the fit step saturates, k near 0.3.
  s = summary(k_ce=(0.3, 0.15), g_ce=growth("saturating", linear=8.0,
                                            power=0.2))
  assert verdict(graf.claims(s, scale="cpu"), "CE's iterations") == "no"
  # A power law best with k inside [0.5, 1.5]: roughly linear.
  s = summary(k_ce=(1.1, 0.2), g_ce=growth("power", linear=2.5))
  assert verdict(graf.claims(s, scale="cpu"), "CE's iterations") == "yes"


def test_paired_exponent_yes_and_no():
  assert verdict(graf.claims(summary(), scale="cpu"),
                 "grows faster") == "yes"
  s = summary(k_paired=(-0.5, 0.2))
  assert verdict(graf.claims(s, scale="cpu"), "grows faster") == "no"


def test_fraction_at_the_search_bound_is_reported():
  s = summary()
  s["exponent_at_bound"]["CE"] = {"at_bound": 3, "n": 5}
  (ce,) = [c for c in graf.claims(s, scale="cpu")
           if "CE's iterations" in c.claim]
  assert "3 of 5 seeds at the search bound" in ce.measured
  assert "best: linear" in ce.null


def test_each_regime_gets_its_own_fit_claims():
  slow = {"label": "lr 0.01", "exponent": {"supcon": iv(0.8, 0.1),
                                           "CE": iv(1.0, 0.2)},
          "exponent_paired": iv(-0.2, 0.1),
          "growth": {"supcon": growth("linear", power=1.0),
                     "CE": growth("linear", power=1.5)}, "noisy": []}
  claims = graf.claims(summary(regimes={"slow": slow}), scale="cpu")
  assert verdict(claims, "superlinearly with the label-noise rate (k > 1, "
                 "power law preferred) (lr 0.01)") == "no"
  assert verdict(claims, "CE's iterations to fit grow roughly linearly "
                 "(k in [0.5, 1.5], or a line preferred) (lr 0.01)") == "yes"


def test_attempt_farther_than_random_means_is_no():
  s = summary()
  s["attempts"] = {
      "simplex": {"steps": [1000, 4000],
                  "eval/simplex/distance": iv(0.75, 0.07, n=3),
                  "eval/simplex/distance/change": iv(-0.05, 0.02, n=3)},
      "ce_noise": {"fit": [], "exponent": None, "growth": None}}
  claims = graf.claims(s, scale="cpu")
  (attempt,) = [c for c in claims if "larger budget" in c.claim]
  assert attempt.holds == "no"
  assert "farther than random class means" in attempt.measured


def test_tiny_scale_judges_nothing():
  claims = graf.claims(summary(), scale="tiny")
  assert claims and {c.holds for c in claims} == {_render.NOT_JUDGED}


# --- a summary from before the nulls -----------------------------------------

@pytest.fixture
def committed():
  with open(os.path.join(ROOT, "experiments", "results", "graf.json")) as f:
    return json.load(f)


def test_summary_without_nulls_is_undecided_not_a_crash(committed):
  for key in ("geometry", "growth", "exponent_at_bound", "fit_rule"):
    committed.pop(key, None)
  claims = graf.claims(committed, scale="cpu")
  learning = [c for c in claims if "no exponent" not in c.measured]
  assert learning and all(c.holds == graf.UNDECIDED_NO_NULL
                          and c.null == graf.NO_NULL for c in learning)
  text = graf.render(committed, scale="cpu", commands=["true"],
                     figures="figures")
  assert graf.NO_NULL in text and "| P2 |" in text


def test_new_summary_without_enough_noise_rates_is_plain_undecided():
  # A colab summary (it has "growth") with one noise rate: no comparison,
  # an ordinary "undecided", not the old-JSON "undecided: no null".
  s = summary(geometry=[group()])
  s["growth"] = {}
  s["exponent"], s["exponent_paired"] = {}, None
  claims = graf.claims(s, scale="cpu")
  fit = [c for c in claims if "iterations" in c.claim or "faster" in c.claim]
  assert len(fit) == 3 and {c.holds for c in fit} == {"undecided"}
  assert all("fewer than 3" in c.null for c in fit)
  # Every verdict of a summary the colab writes is a plain verdict word.
  assert {c.holds for c in claims} <= {"yes", "no", "partly", "undecided"}


def test_distances_are_clipped_to_their_range():
  # A t interval of a distance reaching below 0 is cut back to 0, for the
  # trained means and for the null alike.
  g = group(supcon_etf=0.02, null_etf=0.40)
  g["models"]["supcon"]["etf_distance"] = iv(0.02, 0.05)
  g["null"]["random_means"]["etf_distance"] = iv(0.40, 0.5)
  (c,) = [c for c in graf.claims(summary(geometry=[g]), scale="cpu")
          if "SupCon's class means approach a regular" in c.claim]
  assert "0.02 [0, 0.07] (low end clipped to the range)" in c.measured
  assert "0.4 [0, 0.9] (low end clipped to the range)" in c.null
