"""hbm.book.prose.creators: every branch of the creators chapter's sentences, on hand-made inputs."""

import numpy as np
import pandas as pd

from hbm.book.prose import creators as prose

PP, NP, CP, EB = "Partial pooling", "No pooling", "Complete pooling", "Empirical Bayes"


class Checks:
    def __init__(self, failures=()):
        self.failures = list(failures)
        self.ok = not self.failures


def test_truth_sentences_both_ways():
    """With truth: 'we know every creator's true effect'; without: never."""
    assert "we know every creator's true effect" in prose.intro_truth(True)
    assert "true effect" not in prose.intro_truth(False).replace("true effects", "")
    assert prose.truth_note(False, "x.csv").startswith("No simulation truth is available for this data file (x.csv)")
    assert "simulated" in prose.truth_note(True, "x.csv")


def test_data_sentence_sizes_and_scale():
    """Equal genres read 'N creators each', one genre leaves sizes out, tiny standard errors keep their digits."""
    per = pd.Series([100, 100], index=["a", "b"])
    text = prose.data_sentence(200, per, pd.Series([31, 4983]), pd.Series([0.0012, 0.03]), 0.2)
    assert "200 creators in 2 genres, 100 creators each." in text and "from 0.00120 to 0.0300" in text
    one = prose.data_sentence(60, pd.Series([60], index=["a"]), pd.Series([5, 9]), pd.Series([3.0, 30.0]), 1.0)
    assert "60 creators in 1 genre." in one and "from 3.00 to 30.0" in one


def test_agreement_both_ways_and_failure():
    """Small differences: practically the same; large: differ noticeably; a failed fit is flagged."""
    small = pd.Series([0.01, 0.02])
    assert "practically the same" in prose.agreement_sentence(small, small, 0.999, 0.999, 100, {"f": Checks()})
    text = prose.agreement_sentence(small + 1, small, 0.5, 0.99, 1, {"f": Checks(["x"])})
    assert "differ noticeably" in text and "not reliable" in text


def test_shrinkage_sentence_missing_bins():
    """Bins without creators are left out; all three listed otherwise."""
    full = pd.Series({"n < 100": 0.7, "100-500": 0.4, "> 500": 0.1})
    assert "fewer than 100 users 70%, one with 100 to 500 users 40%, and one with more than 500 users 10%" in \
        prose.shrinkage_sentence(full, 2.0, 35)
    part = pd.Series({"n < 100": np.nan, "100-500": 0.4, "> 500": np.nan})
    text = prose.shrinkage_sentence(part, 2.0, 1)
    assert "a creator with 100 to 500 users 40% of the way" in text and "1 user." in text
    assert prose.shrinkage_sentence(part * np.nan, 1.0, 5).startswith("No creator")


def test_sigma_genre_one_few_many():
    """One genre: the data say nothing; few: not pinned down; many: reasonably well."""
    assert "say nothing" in prose.sigma_genre_sentence(1, 0.8, 0.1, 2.0)
    few = prose.sigma_genre_sentence(3, 0.3, 0.1, 0.9, 0.3)
    assert "not pinned down: with only 3 genres" in few and "(true 0.300)" in few
    assert "reasonably well" in prose.sigma_genre_sentence(20, 0.3, 0.2, 0.4)


def test_genre_recovery_truth_and_not():
    """No truth: says so; truth, all covered: well recovered; some missed: not all."""
    assert prose.genre_recovery_sentence(5, np.nan, np.nan, np.nan, 3.0, 100, False).startswith("No simulation truth")
    assert "are well recovered" in prose.genre_recovery_sentence(5, 5, 0.05, 2, 3.0, 100, True)
    assert "are not all recovered" in prose.genre_recovery_sentence(5, 4, 0.05, 2, 3.0, 100, True)


def _overall():
    return pd.DataFrame({"mse": [0.1, 0.15, 0.05], "coverage": [0.95, 0.4, 0.95], "mean_width": [1.2, 0.2, 0.7]},
                        index=[NP, CP, PP])


def test_validation_text_truth_bins_and_none():
    """No truth: one sentence; truth: scores and the brief's values; the small-bin ratio only where the bin exists."""
    ref = _overall()
    design = {"s": 2.0, "n_min": 30, "n_max": 5000, "np_mse": 0.14}
    assert prose.validation_text(_overall(), None, 5, 0.01, ref, design, None, False).startswith("No simulation truth")
    by_bin = pd.DataFrame({"method": [PP, NP], "bin": ["n < 100", "n < 100"], "mse": [0.1, 0.4]})
    text = prose.validation_text(_overall(), by_bin, 500, 0.01, ref, design, 0.4, True)
    assert "MSE is 0.050 against 0.100" in text and "50% of the no-pooling error, below it" in text
    assert "fewer than 100 users the hierarchical model's MSE is 25%" in text and "brief" in text
    text = prose.validation_text(_overall(), by_bin.assign(bin="> 500"), 500, 0.01, ref, design, 0.4, True)
    assert "fewer than 100 users the" not in text


def test_replication_sentence_both_ways():
    """EB within two MC errors of the full model: indistinguishable; farther: distinguishable."""
    s = pd.DataFrame({"mse": [0.05, 0.051], "mse_mc": [0.002, 0.002], "coverage": [0.95, 0.95]}, index=[PP, EB])
    assert "indistinguishable" in prose.replication_sentence(s, 100)
    s.loc[EB, "mse"] = 0.08
    assert "is distinguishable" in prose.replication_sentence(s, 100)


def test_bench_sentence_names_what_was_measured():
    """No record; a record whose title names the data; a record without a title."""
    assert prose.bench_sentence(None, None).startswith("No benchmark")
    bench = pd.DataFrame({"version": ["recipe: x", "all centered", "fast: y"], "sampling s": [30.0, 1.0, 0.5],
                          "min bulk ESS": [300, 2000, 2500], "ESS per second": [10.0, 2000.0, 5000.0],
                          "divergences": [49, 1, 0], "max R-hat": [1.008, 1.007, 1.002]})
    text = prose.bench_sentence(bench, "# Creator model, 500 creators in 5 genres: the recipe")
    assert "measured on 500 creators in 5 genres" in text and "49 divergent transitions" in text
    assert "500 times the ESS per second" in text and "does not sample cleanly" in text
    assert "on the book's data file when it was recorded" in prose.bench_sentence(bench, None)


def test_ppc_and_summary_branches():
    """PPC both ways; summary with and without truth, with a missing small bin, with a failed fit."""
    assert prose.ppc_sentence(pd.Series({"a": 0.5}), Checks()).startswith("None of the 1")
    assert "not reliable" in prose.ppc_sentence(pd.Series({"a": 0.999}), Checks(["x"]))
    s = prose.summary_bullets(500, 5, 0.4, 0.95, True, 0.4, 50, 0.95, 0.7, "ok.", True)
    assert "Against the simulation's truth" in s and "pulled 70%" in s
    s = prose.summary_bullets(1, 1, np.nan, np.nan, False, 0.4, 5, 0.95, np.nan, "ok.", False)
    assert "no simulation truth" in s and "pulled" not in s and "rough" in s and "1 creator in 1 genre" in s
