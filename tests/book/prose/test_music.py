"""hbm.book.prose.music: every branch of the music chapter's sentences, on hand-made inputs."""

import numpy as np
import pandas as pd

from hbm.book.prose import music as prose


class Checks:
    """A stand-in for hbm.diagnostics.Diagnostics: ok and failures."""

    def __init__(self, failures=()):
        self.failures = list(failures)
        self.ok = not self.failures


def test_num_keeps_significant_digits_at_any_scale():
    """num prints 3 significant digits for small and mid values, whole numbers with separators from 1,000, and 0."""
    assert prose.num(52.37) == "52.4"
    assert prose.num(0.01234) == "0.0123"
    assert prose.num(1234.5) == "1,234" or prose.num(1234.5) == "1,235"
    assert prose.num(0) == "0"
    assert prose.num(float("nan")) == "n/a"


def test_group_sizes_equal_and_unequal():
    """Equal sizes read '30 users each' (1: 'user each'); unequal 'from 1 to 33 users per region'."""
    assert prose.group_sizes([30, 30], "user", "region") == "30 users each"
    assert prose.group_sizes([1, 1], "user", "region") == "1 user each"
    assert prose.group_sizes([1, 33, 5], "user", "region") == "from 1 to 33 users per region"


def test_data_sentence_one_and_many_regions():
    """One region omits the per-region sizes and uses the singular; several give them."""
    assert prose.data_sentence(5, [5], 40) == "The file has 5 users in 1 region, with 40 plays in all."
    assert prose.data_sentence(60, [30, 30], 1) == "The file has 60 users in 2 regions, 30 users each, with 1 play in all."


def test_totals_sentence_singular_and_plural():
    """One light user: 'user has'; several: 'users have'."""
    assert "1 user (50%) has 10 plays or fewer" in prose.totals_sentence(np.array([3, 100]), 10)
    assert "2 users (100%) have 10 plays or fewer" in prose.totals_sentence(np.array([3, 4]), 10)


def test_unreliable_empty_when_all_pass_and_names_failures():
    """No text when every fit passes; otherwise the failing fits and their reasons."""
    assert prose.unreliable({"a": Checks()}) == ""
    text = prose.unreliable({"the fit": Checks(["2 divergent transitions"]), "b": Checks()}, "these numbers")
    assert "These numbers are not reliable here: the fit fails" in text and "2 divergent transitions" in text
    both = prose.unreliable({"x": Checks(["r"]), "y": Checks(["s"])})
    assert "x and y fail" in both


def test_pooled_verdict_both_ways():
    """A passing pooled fit is still not used (not the model wanted); a failing one is not used because it failed."""
    assert "not the model this chapter needs" in prose.pooled_verdict(Checks())
    assert prose.pooled_verdict(Checks(["x"])) == "Its estimates are therefore not used in this chapter."


def test_steps_sentence_fewer_more_same_missing():
    """The three-level fit's steps compare either way with the pooled fit's, or stand alone."""
    assert "fewer than the 78" in prose.steps_sentence(10, 78, "B")
    assert "more than the 5" in prose.steps_sentence(10, 5, "B")
    assert "as many as" in prose.steps_sentence(10, 10, "B")
    assert prose.steps_sentence(10, float("nan"), "B").endswith("on average.")


def test_profile_gap_sentence_small_and_large():
    """A small gap says the regions' own users dominate; a large one names the region where pooling shows."""
    assert "far more weight" in prose.profile_gap_sentence(0.01, "Asia", 30, 30)
    large = prose.profile_gap_sentence(0.08, "Oceania", 1, 1)
    assert "most in Oceania (1 user)" in large


def test_concentration_sentence_one_and_many_regions_and_failure():
    """Most and least alike regions by label; one region alone; a failed fit is flagged."""
    kappas = pd.DataFrame({"mean": [10.0, 40.0]}, index=pd.Index(["B", "A"], name="region"))
    text = prose.concentration_sentence(kappas, {"f": Checks()})
    assert text.startswith("Users in A are the most alike") and "those in B the least" in text
    one = prose.concentration_sentence(kappas.iloc[:1], {"f": Checks(["bad"])})
    assert one.startswith("Users in B have") and "not reliable" in one


def test_c_sentence_singular():
    """One region 'informs' c; several 'inform' it."""
    assert "only 1 region informs it" in prose.c_sentence(1, 2, 1)
    assert "only 4 regions inform it" in prose.c_sentence(1, 2, 4)


def test_user_sentences_weights_and_widths():
    """Where each posterior sits follows its weight, and intervals narrow (or not) with the widths given."""
    few = {"id": "u1", "n": 1, "region": "R", "w": 0.1, "width": 0.5}
    mid = {"id": "u2", "n": 50, "region": "R", "w": 0.6, "width": 0.2}
    most = {"id": "u3", "n": 900, "region": "R", "w": 0.95, "width": 0.05}
    text = prose.user_sentences(few, mid, most)
    assert "has 1 play," in text and "nearer the regional profile" in text and "essentially their own shares" in text
    assert "The intervals narrow" in text
    text = prose.user_sentences(few, mid, dict(most, w=0.7, width=0.9))
    assert "nearer their own shares than the regional profile" in text and "do not narrow" in text


def test_newcomer_sentence_wide_and_narrow():
    """A new user's interval much wider than the profile's says so; otherwise 'about as wide'."""
    assert "times as wide" in prose.newcomer_sentence("R", "Pop", 0.3, 0.1, 0.6, 0.28, 0.32)
    assert "about as wide" in prose.newcomer_sentence("R", "Pop", 0.3, 0.29, 0.31, 0.28, 0.32)


def test_recovery_sentence_with_and_without_truth():
    """Without truth it says none is available; with truth it counts the covered values."""
    assert prose.recovery_sentence(None, None).startswith("No simulation truth is available")
    rec = {"n": 20, "missed": 2, "mae": 0.01, "max_error": 0.04}
    text = prose.recovery_sentence(rec, {"n": 4, "missed": 0})
    assert "18 of the 20 true regional shares" in text and "all 4 true concentrations" in text


def test_ppc_sentence_both_verdicts_and_failure():
    """No extreme p-value: the model reproduces the data; one: named, singular verb; a failed fit is flagged."""
    p = pd.Series({"a": 0.5, "b": 0.3})
    assert prose.ppc_sentence(p, Checks()).startswith("None of the 2 observed statistics")
    bad = prose.ppc_sentence(pd.Series({"a": 0.5, "b": 0.99}), Checks(["x"]))
    assert bad.startswith("1 of the 2 observed statistics lies in the outer 5% of its") and "(b)" in bad
    assert "no clear misfit" in bad and "not reliable" in bad
    p = pd.Series([0.999, 0.001, 0.5, 0.5], index=list("abcd"))
    assert "more than chance alone would give" in prose.ppc_sentence(p, Checks())
    assert "does not reproduce" in prose.ppc_sentence(p, Checks())


def test_summary_bullets_branches():
    """Bullets: one region leaves out the comparison of regions; a failed fit adds a warning bullet."""
    u = {"n": 3, "w": 0.1}
    text = prose.summary_bullets(10, 1, 12, u, {"n": 99, "w": 0.9}, "A", "A", "No truth.", True, "None.")
    assert text.count("\n- ") == 3 and "most alike" not in text
    text = prose.summary_bullets(10, 2, 18, u, u, "A", "B", "No truth.", False)
    assert "in A the most alike" not in text and "users in A are the most alike, in B the least" in text
    assert "failed its sampler diagnostics" in text
