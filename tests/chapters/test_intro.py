"""Chapter 'Why borrow strength?': its claims, on the book's data and on readers' own data."""

import numpy as np
import pytest

from booktools import checks as quarto
from tests.variants import VARIANTS

NAME = "chapters/intro.qmd"


@pytest.fixture(scope="module")
def ch(chapter):
    """The chapter, executed once on the book's data."""
    return chapter(NAME)


def test_static_checks(root):
    """Cross-references, citations, figure options and standalone model cells are in order."""
    assert quarto.check_all(root, files=[NAME]) == []


def test_fit_passes_its_diagnostics_on_the_books_data(ch):
    """The model the prose interprets passes every sampler check (nutpie, target_accept 0.99)."""
    checks = ch.results["checks"]
    assert checks.ok, checks.message
    assert checks.sampler == "nutpie"
    assert "unreliable" not in ch.value("str(shrinkage_sentence(compare, grand_mean, checks))")


def test_small_school_moves_most(ch):
    """On the book's data the smallest school moves further than the largest, and the prose says so."""
    compare = ch.results["compare"]
    moved = (compare["partial"] - compare["mean"]).abs()
    assert moved[compare["n"].idxmin()] > moved[compare["n"].idxmax()]
    text = ch.value("str(shrinkage_sentence(compare, grand_mean, checks))")
    assert "the model trusts it less" in text
    assert str(compare["n"].idxmin()) in text and str(compare["n"].idxmax()) in text


def test_posterior_predictive_check_is_consistent(ch):
    """The predictive check has one row per school and statistic, and its verdict matches its numbers."""
    ppc, by_school = ch.results["ppc"], ch.results["by_school"]
    assert len(ppc) == 2 * len(by_school)
    obs = ppc[ppc["statistic"] == "average"].set_index("school")["observed"]
    np.testing.assert_allclose(obs.reindex(by_school.index.astype(str)), by_school["mean"].to_numpy())
    inside = ((ppc["lower"] <= ppc["observed"]) & (ppc["observed"] <= ppc["upper"])).all()
    text = ch.value("str(ppc_sentence(ppc, checks))")
    assert ("so by this check it fits the data" in text) == inside
    assert ("misses something" in text) == (not inside)


@pytest.mark.parametrize("name", list(VARIANTS))
def test_sentences_follow_the_readers_data(variant, name):
    """On each own-data variant: counts, the named schools, their sizes, pairing by label and the diagnostics verdict."""
    executed = variant(NAME, name, VARIANTS[name])
    scores, compare, checks = (executed.results[k] for k in ("scores", "compare", "checks"))
    # Pairing by label: each school's own average is the average of its own students.
    averages = scores.groupby("school", observed=True)["score"].mean()
    np.testing.assert_allclose(compare["mean"], averages.reindex(compare.index).to_numpy())
    text = executed.value("str(shrinkage_sentence(compare, grand_mean, checks))")
    smallest, largest = compare["n"].idxmin(), compare["n"].idxmax()
    assert f"{smallest}, with {compare.loc[smallest, 'n']} student" in text
    if compare["n"].min() < compare["n"].max():
        assert f"{largest}, with {compare.loc[largest, 'n']} students" in text
    # A failed fit is never interpreted as if it had passed.
    assert ("unreliable" in text) == (not checks.ok)
    summary = executed.value("str(summary_sentence(compare, grand_mean, checks))")
    assert ("unreliable" in summary) == (not checks.ok)
    assert " 1 schools" not in text + summary and "of the 1 " not in summary
    lo, hi = compare["n"].min(), compare["n"].max()
    data = executed.value("str(data_sentence(by_school))")
    assert (f"from {lo} to {hi} students" in data) if lo < hi else (f"{lo} student" in data)


def test_fit_is_robust_to_one_changed_score(variant):
    """With full sampling, the 'no-truth' data (one score nudged) give a fit that passes every check."""
    executed = variant(NAME, "no-truth", VARIANTS["no-truth"], fast=False)
    assert executed.results["checks"].ok, executed.results["checks"].message
