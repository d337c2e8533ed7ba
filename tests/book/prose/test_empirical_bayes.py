"""hbm.book.prose.empirical_bayes: every branch of the chapter's sentences, on hand-made inputs."""

import numpy as np
import pandas as pd

from hbm.book.prose import empirical_bayes as prose


class Checks:
    def __init__(self, failures=()):
        self.failures = list(failures)
        self.ok = not self.failures


def test_data_sentence_equal_and_one_region():
    """Equal regions read 'N users each'; one region leaves the sizes out."""
    upr = pd.Series([30, 30], index=["A", "B"])
    assert "120 users in 2 regions (30 users each)" in prose.data_sentence(120, upr, np.array([3, 9, 100]))
    assert "region (" not in prose.data_sentence(5, pd.Series([5], index=["A"]), np.array([1, 2]))


def test_priors_sentence_regions_boundary_and_global():
    """Most/least alike by label, a boundary region named, and the global prior below how many regions."""
    k = pd.Series({"A": 10.0, "B": 50.0, "C": np.inf})
    text = prose.priors_sentence(k, 20.0)
    assert "Users in B are the most alike" in text and "users in A the least" in text
    assert "In C the estimate sits on the boundary" in text
    assert "below 2 of the 3 regional estimates: a single prior" in text
    one = prose.priors_sentence(pd.Series({"A": 10.0}), 20.0)
    assert one.startswith("Users in A have") and "below none of the regional estimates" in one


def test_truth_sentence_with_and_without_truth():
    """No truth: says so. Truth: the worst region by label and the Pop error."""
    k = pd.Series({"A": 12.0, "B": 20.0})
    pop = pd.Series({"A": 0.3, "B": 0.5})
    assert prose.truth_sentence(k, pop, None, pd.Series([3, 3])).startswith("No simulation truth")
    truth = {"regions": [{"region": "B", "kappa": 20.0, "p": {"pop": 0.5}}, {"region": "A", "kappa": 10.0, "p": {"pop": 0.31}}]}
    text = prose.truth_sentence(k, pop, truth, pd.Series([3, 3], index=["A", "B"]))
    assert "off by up to 20% (A: 12.0 against a true 10.0)" in text and "within 0.010" in text


def test_beta_sentence_same_and_different():
    """Close means: 'nearly the same'; far apart: 'other means'."""
    assert "nearly the same means" in prose.beta_sentence(0.30, 0.305)
    assert "other means than" in prose.beta_sentence(0.30, 0.40)


def test_inside_and_where_sentences():
    """All inside vs the regions outside by name; the widest region equal to the narrowest or not."""
    assert prose.inside_sentence(pd.Series([True, True], index=["A", "B"])).startswith("The estimated concentrations all lie")
    assert prose.inside_sentence(pd.Series([True, False], index=["A", "B"])).startswith("1 of the 2 estimated concentrations (B)")
    assert prose.where_sentence("A", "A").startswith("the region whose")
    assert prose.where_sentence("A", "B").startswith("although A's")


def test_width_sentence_with_and_without_heavy_users():
    """Heavy users' ratio is quoted; with none, the sentence says so."""
    assert "it is 99%" in prose.width_sentence(0.9, 0.99, 15)
    assert "no user has more plays" in prose.width_sentence(0.9, float("nan"), 15)


def test_fb_reliability_and_schools():
    """Full Bayes passing: says so (never empty); failing: unreliable. tau 0: complete pooling; tau > 0: partial shrinkage."""
    assert "passed" in prose.fb_reliability(Checks()) and "not reliable" not in prose.fb_reliability(Checks())
    assert "not reliable" in prose.fb_reliability(Checks(["x"]))
    assert "complete pooling" in prose.schools_sentence(0.0, 7.7, 0.0, 8)
    assert "not 0" in prose.schools_sentence(3.0, 7.7, 4.0, 8)
    assert "in the only school," in prose.schools_sentence(0.0, 1.0, 0.0, 1)


def _bench(single=2.0, dask=1.0, fb=True):
    return {"measured": "today", "machine": "m", "users": 10, "events": 100, "files": 2, "parquet_mib": 1.0,
            "total_s": 3.0, "users_per_s": 3, "steps_s": {"aggregate": 1.0, "suffstats": 0.1, "fit": 0.01, "posteriors": 0.5},
            "client_peak_mib": 1, "workers_peak_mib": 2, "workers_start_mib": 1, "counts_mib": 0.1,
            "small_users": 1, "small_total_s": 0.1, "max_error_vs_closed_form": 1e-16,
            "single_node_count_s": single, "single_node_engine": "Duck", "single_node_peak_mib": 5, "dask_count_s": dask,
            "full_bayes_s": 10.0 if fb else None, "full_bayes_users": 5, "full_bayes_users_per_s": 0.5}


def test_bench_sentence_branches():
    """No record; the job faster or slower than the single-node engine; with or without the full Bayes row."""
    assert prose.bench_sentence(None).startswith("No benchmark has been recorded")
    assert "times faster" in prose.bench_sentence(_bench(2.0, 1.0))
    assert "costs 2.0 times" in prose.bench_sentence(_bench(1.0, 2.0))
    assert "full Bayes model took" in prose.bench_sentence(_bench())
    assert "full Bayes model took" not in prose.bench_sentence(_bench(fb=False))
    assert "Duck" not in prose.bench_sentence(_bench(single=None))


def test_ppc_and_summary():
    """Predictive check both ways; summary bullets for tau 0 and tau > 0, passing and failing full Bayes fit."""
    assert prose.ppc_sentence(pd.Series({"a": 0.5})).startswith("None of the 1")
    assert prose.ppc_sentence(pd.Series({"a": 0.001, "b": 0.999})).startswith("2 of the 2 observed statistics lie in the outer 5% of their predictive distributions under")
    s = prose.summary_bullets(0.01, 0.9, 15, 0.0, 0.25, 5.0, 0.03, 12500, pd.Series([0.5] * 20), True)
    assert "loses almost nothing." in s and "collapse" in s and s.count("\n- ") == 4
    s = prose.summary_bullets(0.05, float("nan"), 15, 3.0, 0.25, 5.0, 0.03, 12500, pd.Series([0.001] * 20), False)
    assert "even for the means" in s and "rough" in s and "not on the boundary" in s and "narrower" not in s and "do not reproduce" in s
