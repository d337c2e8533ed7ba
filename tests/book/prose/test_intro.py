"""hbm.book.prose.intro: the sentences of chapter 1, on small hand-made inputs, every branch."""

from types import SimpleNamespace

import pandas as pd
import pytest

from hbm.book.prose import intro

OK = SimpleNamespace(ok=True, failures=[], message="4 chains of 1000 draws with nutpie: 0 divergences; all checks pass.")
FAILED = SimpleNamespace(ok=False, failures=["2 divergent transitions"], message="... do not trust this fit as it stands.")


def _compare(partial=(55.0, 51.8, 48.5), n=(3, 50, 20)):
    return pd.DataFrame({"n": list(n), "mean": [60.0, 52.5, 48.0], "partial": list(partial)}, index=["A", "B", "C"])


def test_unreliable_only_when_failed():
    """A passed fit adds no warning; a failed one names its failures and says the result is unreliable."""
    assert intro.unreliable(OK) == ""
    text = intro.unreliable(FAILED, "these numbers")
    assert "2 divergent transitions" in text and "these numbers are unreliable" in text


def test_data_sentence_range_equal_and_single():
    """A range of school sizes, one size for all, and one school with one student (singular)."""
    assert intro.data_sentence(_compare()) == "Schools have from 3 to 50 students."
    assert intro.data_sentence(_compare(n=(4, 4, 4))) == "Every school has 4 students."
    one = pd.DataFrame({"n": [1]}, index=["A"])
    assert intro.data_sentence(one) == "The one school has 1 student."


def test_shrinkage_sentence_small_school_moves_more():
    """The smallest school moved more: named with its size and direction, and the 'trusts it less' verdict."""
    text = intro.shrinkage_sentence(_compare(), 52.0, OK)
    assert text.startswith("A, with 3 students, moved 5.0 points towards the overall mean")
    assert "B, with 50 students, moved 0.7 points towards" in text
    assert "trusts it less" in text and "unreliable" not in text


def test_shrinkage_sentence_large_school_moves_more_and_away():
    """Either verdict: when the larger school moves more, and away from the mean, the prose says so."""
    text = intro.shrinkage_sentence(_compare(partial=(59.9, 55.0, 48.5)), 52.0, OK)
    assert "moved 2.5 points away from the overall mean" in text
    assert "the larger school moved more" in text and "trusts it less" not in text


def test_shrinkage_sentence_equal_sizes_and_failed_fit():
    """Equal school sizes get their own sentence; a failed fit is called unreliable first."""
    text = intro.shrinkage_sentence(_compare(n=(5, 5, 5)), 52.0, FAILED)
    assert text.startswith("The fit failed its sampler diagnostics")
    assert "All schools tested as many students" in text


def test_summary_sentence_counts_and_failure():
    """The summary counts the schools that moved towards the mean, and flags a failed fit."""
    assert intro.summary_sentence(_compare(), 52.0, OK).startswith(
        "Partial pooling moved the estimates of all 3 schools towards the overall mean")
    assert "unreliable" in intro.summary_sentence(_compare(), 52.0, FAILED)


def _ppc(observed_sd=(3.0, 4.0)):
    return pd.DataFrame({"school": ["A", "B", "A", "B"], "statistic": ["average", "average", "SD", "SD"],
                         "observed": [50.0, 52.0, *observed_sd], "lower": [45.0, 45.0, 2.0, 2.0],
                         "upper": [55.0, 55.0, 5.0, 5.0]})


def test_ppc_sentences_fit_and_misfit():
    """The predictive check is written both ways: fits, or names the schools and statistic it misses."""
    fit = intro.ppc_sentence(_ppc(), OK)
    assert "every school's observed SD lies inside" in fit and "it fits the data" in fit
    miss = intro.ppc_sentence(_ppc((3.0, 9.0)), OK)
    assert "the observed SD of 1 school (B) lies outside" in miss and "does not reproduce the schools' SDs" in miss
    assert intro.ppc_sentence(_ppc(), FAILED).startswith("The fit failed its diagnostics")
    assert "by this check the model fits" in intro.ppc_summary(_ppc())
    assert intro.ppc_summary(_ppc((3.0, 9.0))).startswith("The posterior predictive check flags the SD of 1 school")
