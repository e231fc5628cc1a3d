"""P1's and P2's free-feature claims judged on fabricated summaries.

``cljax.reproduce.unconstrained.claims`` judges four claims from the colab's
JSON besides P3's (those are in test_claims_jiang.py): Theorem 2's excess
over the closed-form minimum, SupCon over all multisets against its bound,
CE with a free classifier against the simplex, and skewed single batches
below the simplex. Each is shown a hand-typed summary where it is true, one
where it is false, and one whose null (the same quantity at the initial
embeddings) passes the threshold too, so a verdict that is constant, or
that cannot tell learning from none, fails a test.
"""

import pytest

from cljax.reproduce import _render
from cljax.reproduce import unconstrained

CLOSE = 1e-4   # The summary's "close": nats (or relative gap) within reach.


def iv(mean, half, n=5):
  """A Student-t interval dict as the colab writes them."""
  return {"mean": mean, "low": mean - half, "high": mean + half, "n": n,
          "confidence": 0.95}


# The measurements: true (well under the threshold), false (well above it).
TRUE_EXCESS, FALSE_EXCESS = iv(1e-6, 1e-6), iv(0.05, 0.01)
# The null at random initial embeddings: far above every threshold.
FAR_NULL = iv(1.5, 0.1)


def summary(*, thm2=(TRUE_EXCESS, TRUE_EXCESS), thm2_null=FAR_NULL,
            multiset=TRUE_EXCESS, multiset_null=FAR_NULL, ce=TRUE_EXCESS,
            ce_null=FAR_NULL, skewed=iv(-0.2, 0.05), balanced=iv(0.0, 1e-6),
            batch_null=iv(0.8, 0.1)):
  """A free-feature summary; a ``*_null`` of None leaves that null out."""

  def with_null(row, key, null):
    return {**row, **({key: null} if null is not None else {})}

  return {
      "close": CLOSE,
      "luthra_thm2": [
          with_null({"overrides": {"loss.kwargs.temperature": t},
                     "excess": excess}, "excess_init", thm2_null)
          for t, excess in zip((0.2, 1.0), thm2)],
      "graf_multisets": [with_null({"overrides": {},
                                    "relative_gap": multiset},
                                   "relative_gap_init", multiset_null)],
      "graf_ce": [with_null({"overrides": {}, "over_simplex": ce},
                            "over_simplex_init", ce_null)],
      # A skewed batch, and a balanced one the claim leaves out (its
      # minimiser is the simplex: over_etf is 0, neither below nor above).
      "graf_batches": [
          with_null({"overrides": {"class_counts": [7, 1, 1]},
                     "over_etf": skewed}, "over_etf_init", batch_null),
          with_null({"overrides": {"class_counts": [3, 3, 3]},
                     "over_etf": balanced}, "over_etf_init", batch_null)],
      "jiang_beta": [],
  }


def verdict(s, words, scale="cpu"):
  (hit,) = [c for c in unconstrained.claims(s, scale=scale)
            if words in c.claim]
  assert hit.paper in ("P1", "P2"), hit
  return hit


THM2 = "Theorem 2"
MULTISET = "summed over all multisets"
CE = "CE with a free classifier"
BATCH = "single-batch minimisers need not be simplices"


def test_every_claim_holds_where_it_is_true():
  s = summary()
  for words in (THM2, MULTISET, CE, BATCH):
    claim = verdict(s, words)
    assert claim.holds == "yes", (words, claim)
    assert "initial embeddings" in claim.null, (words, claim)


@pytest.mark.parametrize("words,overrides", [
    (THM2, {"thm2": (FALSE_EXCESS, FALSE_EXCESS)}),
    (MULTISET, {"multiset": FALSE_EXCESS}),
    (CE, {"ce": FALSE_EXCESS}),
    # Skewed counts ending above the simplex's loss.
    (BATCH, {"skewed": iv(0.2, 0.05)}),
])
def test_each_claim_fails_where_it_is_false(words, overrides):
  assert verdict(summary(**overrides), words).holds == "no"


def test_theorem_2_is_partly_when_one_setting_misses():
  claim = verdict(summary(thm2=(TRUE_EXCESS, FALSE_EXCESS)), THM2)
  assert claim.holds == "partly"
  assert "1 of 2 settings" in claim.measured
  assert "temperature=1.0" in claim.measured   # the largest excess


@pytest.mark.parametrize("words,overrides", [
    (THM2, {"thm2_null": TRUE_EXCESS}),
    (MULTISET, {"multiset_null": TRUE_EXCESS}),
    (CE, {"ce_null": TRUE_EXCESS}),
    (BATCH, {"batch_null": iv(-0.2, 0.05)}),
])
def test_a_null_that_passes_too_leaves_it_undecided(words, overrides):
  # Random embeddings already meeting the threshold: no learning shown.
  claim = verdict(summary(**overrides), words)
  assert claim.holds == "undecided"
  assert "the null passes too" in claim.null


@pytest.mark.parametrize("words,overrides", [
    (THM2, {"thm2": (iv(CLOSE, 1e-5), iv(CLOSE, 1e-5))}),
    (BATCH, {"skewed": iv(0.0, 0.05)}),
])
def test_an_interval_across_the_threshold_is_undecided(words, overrides):
  assert verdict(summary(**overrides), words).holds == "undecided"


@pytest.mark.parametrize("words,overrides", [
    (THM2, {"thm2_null": None}), (MULTISET, {"multiset_null": None}),
    (CE, {"ce_null": None}), (BATCH, {"batch_null": None})])
def test_without_its_null_a_claim_says_what_it_would_read(words, overrides):
  claim = verdict(summary(**overrides), words)
  assert claim.holds == "undecided: no null"
  assert "(without a null this would read: yes)" in claim.measured
  assert claim.null == unconstrained.NO_NULL


def test_balanced_batches_are_not_judged_by_the_skew_claim():
  # Only the balanced batch is left: the claim is about skewed ones.
  s = summary()
  s["graf_batches"] = s["graf_batches"][1:]
  assert not [c for c in unconstrained.claims(s, scale="cpu")
              if BATCH in c.claim]


def test_one_seed_decides_nothing():
  one = iv(1e-6, 1e-6, n=1)   # Whole interval below: one run is no proof.
  claim = verdict(summary(thm2=(one, one)), THM2)
  assert claim.holds == "undecided"


def test_tiny_scale_judges_nothing():
  claims = unconstrained.claims(summary(), scale="tiny")
  assert len(claims) == 4
  assert {c.holds for c in claims} == {_render.NOT_JUDGED}
