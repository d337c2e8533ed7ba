"""hbm.book.prose.intervals: the sentences of chapter 5, on small hand-made inputs, every branch."""

from types import SimpleNamespace

import pandas as pd

from hbm.book.prose import intervals as iv

OK = SimpleNamespace(ok=True, failures=[])
FAILED = SimpleNamespace(ok=False, failures=["5 divergent transitions"])
INTERVAL = SimpleNamespace(estimate=0.372, lower=0.351, upper=0.394)


def _real():
    return pd.DataFrame({
        "interval": ["Binomial (Wald), plays independent", "Cluster-robust t over users", "Beta-binomial grid, flat prior"],
        "short": ["binomial", "cluster-robust t", "flat-prior grid"],
        "lower": [0.360, 0.340, 0.350], "upper": [0.366, 0.400, 0.396],
    }).assign(width=lambda d: d["upper"] - d["lower"])


def test_listing():
    """One, two and three names."""
    assert iv.listing(["a"]) == "a"
    assert iv.listing(["a", "b"]) == "a and b"
    assert iv.listing(["a", "b", "c"]) == "a, b and c"


def test_prior_source_many_one_none():
    """Several other regions, one other region (singular), or none (an even split over the genres)."""
    assert iv.prior_source(0.31, 3, 5) == "the average of the other 3 regions' mean Rock shares, 0.310"
    assert iv.prior_source(0.31, 1, 5) == "the other region's mean Rock share, 0.310"
    assert iv.prior_source(None, 0, 4).startswith("an even split over the 4 genres, 0.250")


def test_design_sentence_both_ways():
    """Narrower or wider, and fewer or as many effective plays."""
    text = iv.design_sentence(4.2, 10_000, 567.4)
    assert text.startswith("The naive interval is 4.2 times narrower") and "as 567 independent plays would" in text
    wide = iv.design_sentence(0.5, 100, 150.0)
    assert "2.0 times wider" in wide and "vary no more than independent plays" in wide


def test_truth_sentence_hit_miss_none_and_no_truth():
    """Inside some and outside others (named with the nearest end), inside none, and no truth at all."""
    text = iv.truth_sentence(_real(), 0.37)
    assert "It lies inside the cluster-robust t and flat-prior grid intervals" in text
    assert "outside the binomial (upper end 0.3660) intervals" in text
    assert "inside none of the intervals" in iv.truth_sentence(_real(), 0.9)
    assert iv.truth_sentence(_real()).startswith("No simulation truth is available")


def test_fixed_sentence_truth_or_estimates():
    """The fixed experiment's values come from the truth, or from estimates because there is none."""
    assert iv.fixed_sentence(0.37, 12.0, "truth").startswith("at the values that generated the file")
    text = iv.fixed_sentence(0.36, 10.5, "empirical Bayes")
    assert "at their empirical Bayes estimates" in text and "no simulation truth" in text


def test_three_level_sentences_flag_a_failed_fit():
    """The three-level interval and its width comparison are marked unreliable exactly when the fit failed."""
    assert "unreliable" not in iv.three_level_sentence(INTERVAL, OK)
    assert "unreliable" in iv.three_level_sentence(INTERVAL, FAILED)
    assert iv.three_level_width(0.04, 0.05, OK) == "its interval is 20% narrower than the regional-prior grid interval."
    assert "unreliable" in iv.three_level_width(0.06, 0.05, FAILED)


def test_grid_close_sentence_three_ways():
    """Close, not close, or unknowable because the full fit failed."""
    near = SimpleNamespace(lower=0.355, upper=0.39)
    assert "is close to the full model's" in iv.grid_close_sentence(near, INTERVAL, OK)
    far = SimpleNamespace(lower=0.30, upper=0.39)
    assert "differs from the full model's" in iv.grid_close_sentence(far, INTERVAL, OK)
    assert "cannot vouch" in iv.grid_close_sentence(near, INTERVAL, FAILED)


def test_coverage_sentences_both_ways():
    """Bootstrap, regional-prior, prior-drawn, curve and conditional sentences for either outcome."""
    assert "tends to be a little too narrow" in iv.bootstrap_sentence("below", 60)
    assert "does not show here" in iv.bootstrap_sentence("within Monte Carlo error of", 60)
    assert "is not where the prior expects it" in iv.regional_fixed_sentence("below", 0.3, 0.37)
    assert "costs no visible coverage" in iv.regional_fixed_sentence("within Monte Carlo error of", 0.3, 0.31)
    assert "it is calibrated" in iv.drawn_sentence("within Monte Carlo error of")
    assert "too few replications" in iv.drawn_sentence("below")
    good = pd.DataFrame({"coverage": [0.95, 0.94, 0.96]})
    bad = pd.DataFrame({"coverage": [0.95, 0.80, 0.96]})
    assert "hold within Monte Carlo error of 95% at every $p$" in iv.curve_sentence(good, good, 300)
    assert iv.curve_sentence(bad, good, 300).startswith("Only the cluster-robust t interval holds")
    assert iv.curve_sentence(bad, bad, 300).startswith("Neither")
    assert "whatever the data say" in iv.conditional_sentence(pd.Series([0.95, 0.94, 0.955]), 400)
    assert "not every group" in iv.conditional_sentence(pd.Series([0.95, 0.85]), 400)


def test_widths_and_narrowest():
    """Width comparisons either way; the binomial interval narrowest (or not), and its coverage verdict."""
    assert iv.compare_widths(0.8, 1.0) == "20% narrower than"
    assert iv.compare_widths(1.1, 1.0) == "10% wider than"
    text = iv.narrowest_sentence(_real(), 0.3)
    assert text.startswith("The binomial interval is the narrowest of all, 0.006 wide")
    assert "its narrowness is an error, as its coverage of 30% shows" in text
    wide = _real().assign(upper=[0.5, 0.4, 0.396]).assign(width=lambda d: d["upper"] - d["lower"])
    assert iv.narrowest_sentence(wide, 0.95).startswith("The binomial interval is not the narrowest here")
