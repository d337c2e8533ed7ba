"""hbm.book.prose.partial_pooling: the sentences of chapter 2, on small hand-made inputs, every branch."""

from types import SimpleNamespace

import pandas as pd

from hbm.book.prose import partial_pooling as pp

OK = SimpleNamespace(ok=True, failures=[], message="4 chains of 1000 draws with nutpie: 0 divergences; all checks pass.",
                     divergences=0)
FAILED = SimpleNamespace(ok=False, failures=["3 divergent transitions"], divergences=3,
                         message="4 chains of 1000 draws with nutpie: 3 divergences; diagnostics failed (3 divergent transitions): do not trust this fit as it stands.")
RUBIN = pd.DataFrame({"school": list("ABCDEFGH"), "y": pp.RUBIN_Y, "se": pp.RUBIN_SE})


def _estimates(shrink=(0.6, 0.1), n=(3, 40)):
    est = pd.DataFrame({"n": list(n), "No pooling": [60.0, 50.0], "Complete pooling": [52.0, 52.0],
                        "Partial pooling": [55.2, 50.2]}, index=["A", "B"])
    est["shrinkage"] = list(shrink)
    return est


def test_eight_unit_rubin_in_any_order_else_units_of_y():
    """Rubin's data (even reversed) are in SAT points; any other file is in units of y."""
    assert pp.eight_unit(RUBIN) == "SAT points"
    assert pp.eight_unit(RUBIN.iloc[::-1]) == "SAT points"
    assert pp.eight_unit(RUBIN.assign(y=RUBIN["y"] * 3)) == "units of y"
    assert pp.eight_unit(RUBIN.head(4)) == "units of y"


def test_fits_verdict_all_pass_and_each_failure():
    """All fits passing is one sentence; otherwise each fit's own message, with no doubled punctuation."""
    assert pp.fits_verdict({"a": OK, "b": OK, "c": OK}).startswith("Sampler diagnostics: all 3 fits pass every check")
    text = pp.fits_verdict({"No pooling": OK, "Partial pooling": FAILED})
    assert "No pooling: 4 chains" in text and "Partial pooling: 4 chains" in text
    assert ".;" not in text and ".." not in text


def test_shrinkage_paragraph_all_between_small_moves_most():
    """'all 2 schools' lie between, and the small school goes further: the 'how much its own data say' verdict."""
    text = pp.shrinkage_paragraph(_estimates(), pd.Series([True, True], index=["A", "B"]), "A", "B", {"x": OK})
    assert "estimates of both schools lie between" in text
    assert "A, with 3 students, goes 60% of the way" in text and "B, with 40 students, goes 10%" in text
    assert "unreliable" not in text


def test_shrinkage_paragraph_some_outside_large_moves_most_failed_fit():
    """Either verdict: a school outside the range is named, the larger school moving further is said, a failed fit is unreliable."""
    text = pp.shrinkage_paragraph(_estimates(shrink=(0.1, 0.6)), pd.Series([True, False], index=["A", "B"]), "A", "B",
                                  {"Partial pooling": FAILED, "No pooling": OK})
    assert text.startswith("The partial pooling fit failed its sampler diagnostics")
    assert "1 of the 2 schools" in text and "For B it lies outside" in text
    assert "the larger school moves further" in text


def test_shrinkage_paragraph_one_school():
    """One school: singular, and no size comparison."""
    est = _estimates().iloc[:1]
    text = pp.shrinkage_paragraph(est, pd.Series([True], index=["A"]), "A", "A", {"x": OK})
    assert text.startswith("The partially pooled estimate of the 1 school lies between")
    assert "goes" not in text


def _ranges(share=1.0):
    return {("PyMC: inverse-gamma sigma", "School average"): (40.2, 61.7, share),
            ("PyMC: inverse-gamma sigma", "School SD"): (2.31, 20.4, 1.0),
            ("Bambi: log-normal sigma", "School SD"): (1.05, 30.9, 1.0),
            ("Bambi: log-normal sigma", "School average"): (38.0, 63.0, 1.0)}


def test_prior_sentence_both_verdicts_and_digits():
    """The prior ranges print with the data's digits, and the verdict is written both ways."""
    good = pp.prior_sentence(_ranges())
    assert "between 40 and 62 points" in good and "between 2.3 and 20;" in good and "from 1.1 to 31." in good
    assert "rule out nothing" in good
    assert "deserve a second look" in pp.prior_sentence(_ranges(share=0.5))


def test_recovery_sentence_truth_no_truth_and_failed():
    """No truth says so; with truth, counts and the MSE verdict either way, and failed fits are named."""
    est = _estimates()
    summary = pd.DataFrame({"lower": [50.0, 45.0], "upper": [60.0, 55.0]}, index=["A", "B"])
    assert pp.recovery_sentence(est, summary, summary, summary, summary).startswith("No simulation truth")
    truth = pd.DataFrame({"mu": [56.0, 50.0], "sigma": [52.0, 70.0]}, index=["B", "A"][::-1])
    text = pp.recovery_sentence(est, summary, summary, summary, summary, truth, {"Partial pooling": OK})
    assert "true mean for 2 of 2 schools" in text and "lower than the" in text
    worse = pp.recovery_sentence(est.assign(**{"No pooling": [56.0, 50.0]}), summary, summary, summary, summary, truth,
                                 {"Partial pooling": FAILED})
    assert "not lower than the" in worse and "failed their diagnostics (Partial pooling)" in worse


def test_range_sentence_digits_follow_the_scale():
    """Rubin's ranges print as whole numbers; small standard errors keep their decimals (no '0 to 0')."""
    assert "from −3 to 28 SAT points" in pp.range_sentence(RUBIN, "SAT points")
    small = RUBIN.assign(y=RUBIN["y"] / 100, se=RUBIN["se"] / 100)
    text = pp.range_sentence(small, "units of y")
    assert "standard errors are 0.090 to 0.180" in text or "standard errors are 0.09 to 0.18" in text


def test_exact_sentence_agrees_or_not_and_failed():
    """'agrees with' below 4 MCSE, 'does not agree with' above, and a failed fit makes it unreliable."""
    exact = SimpleNamespace(mu_mean=4.4, tau_mean=3.6)
    versus = pd.DataFrame({"mcmc": [4.41, 3.58], "z": [0.5, -1.2]}, index=["mu", "tau"])
    assert "agrees with the quadrature" in pp.exact_sentence(versus, exact, OK)
    far = versus.assign(z=[0.5, -7.0])
    assert "does not agree with" in pp.exact_sentence(far, exact, OK)
    assert "unreliable" in pp.exact_sentence(versus, exact, FAILED)
    assert pp.explored_phrase(FAILED) == "by its diagnostics these did not"
    assert pp.explored_phrase(OK) == "and here the diagnostics do not object"


def test_failure_note_all_illustrations_and_relied_on():
    """All passing; only the illustration fits failing; a fit the prose reads failing: three different notes."""
    table = pd.DataFrame({"checks": ["pass", "pass"]}, index=["Schools: a", "Eight schools: Centered, x"])
    assert pp.failure_note(table) == "Both fits pass every check."
    table["checks"] = ["pass", "FAIL"]
    assert "there to show the funnel" in pp.failure_note(table)
    table["checks"] = ["FAIL", "FAIL"]
    note = pp.failure_note(table)
    assert note.startswith("Neither fit") and "Schools: a should not be trusted" in note


def _ppc(sd_b=4.0):
    return pd.DataFrame({"school": ["A", "B", "A", "B"], "statistic": ["average", "average", "SD", "SD"],
                         "observed": [50.0, 52.0, 3.0, sd_b], "lower": [45.0, 45.0, 2.0, 2.0],
                         "upper": [55.0, 55.0, 5.0, 5.0]})


def test_ppc_sentences_both_ways():
    """Both predictive checks say the model fits or name what it misses, and flag a failed fit."""
    assert "it fits the data" in pp.ppc_sentence(_ppc(), OK)
    assert "B (SD) falls outside" in pp.ppc_sentence(_ppc(9.0), OK)
    assert pp.ppc_sentence(_ppc(), FAILED).startswith("The fit failed")
    eight = pd.DataFrame({"school": ["A", "B"], "observed": [28.0, 8.0], "lower": [-20.0, -20.0], "upper": [40.0, 5.0]})
    assert "The observed estimate of B lies outside" in pp.eight_ppc_sentence(eight, OK)
    assert "Every observed estimate lies inside" in pp.eight_ppc_sentence(eight.assign(upper=40.0), OK)
    assert "misses 1 school statistic" in pp.summary_ppc(_ppc(9.0), eight.assign(upper=40.0))
    assert "misses 1 observed estimate" in pp.summary_ppc(_ppc(), eight)


def test_summaries_flag_failed_fits():
    """Summary bullets give the computed ranges and say when a fit they rely on failed."""
    est = _estimates()
    between = pd.Series([True, True], index=["A", "B"])
    assert "10% to 60% of the way" in pp.summary_shrinkage(est, between, {"x": OK})
    assert "unreliable" in pp.summary_shrinkage(est, between, {"Partial pooling": FAILED})
    sigmas = pd.DataFrame({"sample SD": [2.0, 10.0], "log-normal": [4.0, 8.0], "inverse-gamma": [4.5, 7.5]})
    assert "both pull" in pp.summary_variances(sigmas, pd.Series([0.5, 0.2]), {"x": OK})
    assert "do not both pull" in pp.summary_variances(sigmas.assign(**{"log-normal": [1.0, 20.0]}), pd.Series([0.5]), {"x": OK})
    versus = pd.DataFrame({"z": [0.5, -1.2]}, index=["mu", "tau"])
    text = pp.summary_eight(versus, SimpleNamespace(mu_mean=4.4, tau_mean=3.6), OK, FAILED, OK)
    assert "had 3 divergences; the non-centered form at 0.99 had none" in text


def test_variance_sentence_never_empty_and_flags_failures():
    """The sentence always has text (an empty inline value prints its source), and names failed fits."""
    text = pp.variance_sentence("nearly the same answer", pd.Series([0.1, 0.28]), {"a": OK})
    assert text == "The two hierarchies give nearly the same answer: their posterior means differ by at most 0.28 points for any school."
    assert pp.variance_sentence("x", pd.Series([0.1]), {"PyMC's model": FAILED}).startswith("The PyMC's model fit failed")
