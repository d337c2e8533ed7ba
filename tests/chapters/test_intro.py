"""Chapter 'Why borrow strength?': its claims, on the book's data and on readers' own data."""

import json

import bambi as bmb
import numpy as np
import pytest

from booktools import checks as quarto
from booktools.copyscript import run as run_copy
from tests.variants import VARIANTS

NAME = "chapters/intro.qmd"


@pytest.fixture(scope="module")
def ch(chapter):
    """The chapter, executed once on the book's data."""
    return chapter(NAME)


def test_static_checks(root):
    """Cross-references, citations and figure options are in order."""
    assert quarto.check_all(root, files=[NAME]) == []


def test_fit_passes_its_diagnostics_on_the_books_data(ch):
    """The model the prose interprets passes every sampler check (nutpie, target acceptance 0.99)."""
    checks = ch.results["checks"]
    assert checks.ok, checks.message
    assert checks.sampler == "nutpie"
    assert "not reliable" not in ch.prose and "fails its sampler diagnostics" not in ch.prose


def test_written_out_priors_are_bambis_defaults_and_the_fitted_ones(ch):
    """The priors the text states (from y_mean, y_sd) equal Bambi's defaults for this formula and the fitted model's."""
    r = ch.results
    y_mean, y_sd = r["y_mean"], r["y_sd"]
    stated = {"μ": {"mu": y_mean, "sigma": 2.5 * y_sd}, "τ": {"sigma": 2.5 * y_sd}, "σ": {"nu": 4.0, "sigma": y_sd}}
    default = bmb.Model("score ~ 1 + (1|school)", r["scores"])
    mu = default.parameters["mu"]
    defaults = {
        "μ": {k: float(v) for k, v in mu.intercept_term.prior.args.items()},
        "τ": {k: float(v) for k, v in mu.group_specific_terms["1|school"].prior.args["sigma"].args.items()},
        "σ": {k: float(v) for k, v in default.parameters["sigma"].prior.args.items()},
    }
    for name in stated:
        for arg, value in stated[name].items():
            assert defaults[name][arg] == pytest.approx(value, rel=1e-12), (name, arg)
            assert r["fitted_priors"][name][arg] == pytest.approx(value, rel=1e-12), (name, arg)


def test_small_school_moves_most(ch):
    """On the book's data the smallest school moves further than the largest, and the prose says so."""
    compare = ch.results["compare"]
    moved = (compare["partial"] - compare["mean"]).abs()
    assert moved[compare["n"].idxmin()] > moved[compare["n"].idxmax()]
    assert "the model trusts it less" in ch.prose
    assert "Here the larger school moved more" not in ch.prose
    assert "All schools tested as many students" not in ch.prose


def test_shrinkage_factor_is_the_share_of_the_way_to_the_mean(ch):
    """B_j = (ȳ_j − estimate_j)/(ȳ_j − grand mean), by hand, for every school."""
    compare, grand = ch.results["compare"], ch.results["grand_mean"]
    by_hand = (compare["mean"] - compare["partial"]) / (compare["mean"] - grand)
    np.testing.assert_allclose(compare["B"], by_hand, rtol=1e-12)


def test_prior_sensitivity_is_small_on_the_books_data(ch):
    """Halving or doubling τ's prior scale moves no school's estimate by more than 10% of the scores' SD, as the text says."""
    r = ch.results
    assert r["sens_change"] < 0.1 * r["y_sd"]
    assert "the data decide how far the schools are pooled, not this prior" in ch.prose
    assert "the prior on the spread between schools matters" not in ch.prose


def test_posterior_predictive_check_is_consistent(ch):
    """The predictive check has one row per school and statistic, its averages are the schools' own, and the verdict matches."""
    ppc, by_school = ch.results["ppc"], ch.results["by_school"]
    assert len(ppc) == 2 * len(by_school)
    obs = ppc[ppc["statistic"] == "average"].set_index("school")["observed"]
    np.testing.assert_allclose(obs.reindex(by_school.index), by_school["mean"].to_numpy())
    fits = (ppc["inside"] == "inside its 95% range").all()
    assert ("By this check the model reproduces what these statistics show." in ch.prose) == fits


def test_copied_code_runs_alone_and_reproduces_the_estimates(ch):
    """The visible code, run as a script in an empty folder (fast mode), gives each school's estimate within 1.5 points."""
    run = run_copy(NAME, keys=["compare['partial'].to_json()", "grand_mean"])
    assert run.ok, run.tail()
    assert run.keys["grand_mean"] == pytest.approx(ch.results["grand_mean"], rel=1e-12)
    partial = ch.results["compare"]["partial"]
    copied = json.loads(run.keys["compare['partial'].to_json()"])
    for school, value in partial.items():
        assert copied[school] == pytest.approx(value, abs=1.5), school


@pytest.mark.parametrize("name", list(VARIANTS))
def test_sentences_follow_the_readers_data(variant, name):
    """On each own-data variant: pairing by label, the named schools and their sizes, and the diagnostics verdict."""
    executed = variant(NAME, name, VARIANTS[name])
    scores, compare, checks = (executed.results[k] for k in ("scores", "compare", "checks"))
    averages = scores.groupby("school")["score"].mean()
    np.testing.assert_allclose(compare["mean"], averages.reindex(compare.index).to_numpy())
    text = executed.prose
    smallest, largest = compare["n"].idxmin(), compare["n"].idxmax()
    if compare["n"].min() < compare["n"].max():
        assert f"{smallest}, with {compare.loc[smallest, 'n']} student" in text
        assert f"{largest}, with {compare.loc[largest, 'n']} students" in text
    # A failed fit is never interpreted as if it had passed.
    assert ("fails its sampler diagnostics" in text) == (not checks.ok)
    assert " 1 schools" not in text and "of the 1 " not in text
    lo, hi = compare["n"].min(), compare["n"].max()
    assert (f"from {lo} to {hi} students per school" in text) if lo < hi else (f"Every school has {lo} student" in text)
    assert ("is simulated" in text) == (executed.results["truth"] is not None)
    # Only the case that holds is shown: the generating values with a truth, the real-data
    # sentence without one.
    assert ("Each school's true mean was drawn" in text) == (executed.results["truth"] is not None)
    assert ("treats it as real data" in text) == (executed.results["truth"] is None)
    assert "The sampler ran" in text if checks.ok else "The sampler ran" not in text
    ppc_fits = (executed.results["ppc"]["inside"] == "inside its 95% range").all()
    assert ("By this check the model reproduces what these statistics show." in text) == ppc_fits
    assert ("The model misses something in these data" in text) == (not ppc_fits)
    assert "n/a" not in text


def test_fit_is_robust_to_one_changed_score(variant):
    """With full sampling, the 'no-truth' data (one score nudged) give a fit that passes every check."""
    executed = variant(NAME, "no-truth", VARIANTS["no-truth"], fast=False)
    assert executed.results["checks"].ok, executed.results["checks"].message
