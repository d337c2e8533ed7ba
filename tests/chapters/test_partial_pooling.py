"""Chapter 'Partial pooling from first principles': its statistical claims, checked on its own values."""

import shutil

import numpy as np
import pandas as pd
import pytest

from booktools import checks as quarto
from hbm.book.data import load_schools
from booktools.execute import execute_chapter
from hbm.book.prose import partial_pooling as prose
from tests.variants import VARIANTS

NAME = "chapters/partial-pooling.qmd"


@pytest.fixture(scope="module")
def ch(chapter):
    """The chapter, executed once per session, with its kernel open."""
    return chapter(NAME)


def _copy_book(root, tmp_path):
    """A copy of the chapter and the data directory, as a project root for execute_chapter."""
    (tmp_path / "chapters").mkdir()
    shutil.copy(root / NAME, tmp_path / NAME)
    shutil.copytree(root / "data", tmp_path / "data")
    return tmp_path


def test_static_checks(root):
    """Cross-references, citations, figure options and standalone model cells are all in order."""
    assert quarto.check_all(root, files=[NAME]) == []


def test_partial_pooling_lies_between_no_and_complete_pooling(ch):
    """For every school the partially pooled mean lies between its no-pooling and complete-pooling means."""
    est = ch.value("estimates")
    lo = np.minimum(est["No pooling"], est["Complete pooling"])
    hi = np.maximum(est["No pooling"], est["Complete pooling"])
    assert ((est["Partial pooling"] >= lo) & (est["Partial pooling"] <= hi)).all(), est
    text = prose.shrinkage_paragraph(*(ch.results[k] for k in ("estimates", "between", "smallest", "largest",
                                                               "pooling_checks")))
    assert f"estimates of all {len(est)} schools lie between" in text
    assert "goes" in text and "unreliable" not in text


def test_no_pooling_matches_school_averages(ch, root):
    """No pooling reproduces each school's average, complete pooling the overall average (within 0.3 points)."""
    est = ch.value("estimates")
    scores = load_schools(root / "data" / "schools.csv")
    averages = scores.groupby("school", observed=True)["score"].mean()
    np.testing.assert_allclose(est["No pooling"], averages.to_numpy(), atol=0.3)
    np.testing.assert_allclose(est["Complete pooling"], scores["score"].mean(), atol=0.3)


def test_small_schools_shrink_most(ch):
    """Shrinkage falls with school size: rank correlation of n and shrinkage below -0.8."""
    est = ch.value("estimates")
    assert est["n"].corr(est["shrinkage"], method="spearman") < -0.8
    assert np.all((est["shrinkage"] > 0) & (est["shrinkage"] < 1))
    smallest, largest = ch.value("str(smallest)"), ch.value("str(largest)")
    assert est.loc[smallest, "shrinkage"] > est.loc[largest, "shrinkage"]


def test_school_means_recovered(ch):
    """True school means: inside the 95% intervals for all but at most one school; errors under 3 posterior sd."""
    truth = pd.DataFrame(ch.value("truth")["schools"]).set_index("school")
    for summary in ("partial", "mu_ig"):
        post = ch.value(summary)
        mu = truth["mu"].reindex(post.index)
        inside = (post["lower"] <= mu) & (mu <= post["upper"])
        assert inside.sum() >= len(inside) - 1, (summary, post)
        assert np.all(np.abs(post["mean"] - mu) < 3 * post["sd"]), summary
    hyper = ch.value("invgamma_fit['posterior']['mu_overall'].values.ravel()")
    assert np.quantile(hyper, 0.005) < ch.value("truth['mu_overall']") < np.quantile(hyper, 0.995)


def test_school_sds_recovered(ch):
    """True school SDs: inside the 95% intervals for all but at most one school, under both variance models."""
    truth = pd.DataFrame(ch.value("truth")["schools"]).set_index("school")
    for summary in ("sigma_ln", "sigma_ig"):
        post = ch.value(summary)
        sigma = truth["sigma"].reindex(post.index)
        inside = (post["lower"] <= sigma) & (sigma <= post["upper"])
        assert inside.sum() >= len(inside) - 1, (summary, post)
        assert np.all(np.abs(post["mean"] - sigma) < 3 * post["sd"]), summary


def test_variance_models_agree(ch):
    """Bambi's log-normal and the inverse-gamma model give school SDs within 1 point of each other."""
    assert ch.value("model_gap.max()") < 1.0
    assert ch.results["similar"] == "nearly the same answer"


def test_school_sds_shrink_towards_each_other(ch):
    """Posterior school SDs vary less across schools than the sample SDs (both models)."""
    sigmas = ch.value("sigmas")
    for model in ("log-normal", "inverse-gamma"):
        assert sigmas[model].std() < sigmas["sample SD"].std()


def test_prior_predictive_covers_observed(ch):
    """Every observed school average and SD lies in the central 95% of its prior predictive distribution."""
    ranges = ch.value("prior_ranges")
    assert len(ranges) == 4
    assert all(share == 1 for _, _, share in ranges.values())
    assert ch.value("prior_covers")


def test_fits_relied_on_pass_diagnostics(ch):
    """Every fit the chapter relies on (all but the parameterization comparison) passes every check."""
    table = ch.value("diagnostics_table")
    relied_on = [name for name in table.index if "target_accept" not in name]
    assert len(relied_on) == 6
    assert (table.loc[relied_on, "checks"] == "pass").all(), table
    assert set(table["sampler"]) == {"nutpie"}


def test_exact_and_mcmc_agree_for_mu_and_tau(ch):
    """Bambi's and the non-centered PyMC (0.99) fit's means of mu and tau are within 4 MCSE of the quadrature."""
    bambi = ch.value("versus_bambi")
    assert np.all(np.abs(bambi.loc[["mu", "tau"], "z"]) < 4), bambi
    assert np.all(np.abs(bambi["z"]) < 4), bambi
    pymc = ch.value(
        "compare_to_exact(exact, *(param_fits['Non-centered, target_accept 0.99']['posterior'][v]"
        " for v in ('mu', 'tau', 'theta')))"
    )
    assert np.all(np.abs(pymc.loc[["mu", "tau"], "z"]) < 4), pymc
    # The MCSEs are small: the agreement is not bought with a useless sample.
    assert np.all(bambi.loc[["mu", "tau"], "mcse"] < 0.05 * bambi.loc[["mu", "tau"], "exact_sd"])


def test_exact_posterior_values(ch):
    """Quadrature gives the well-known eight-schools means (mu 4.40, tau 3.60, to 0.01)."""
    assert ch.value("exact.mu_mean") == pytest.approx(4.40, abs=0.01)
    assert ch.value("exact.tau_mean") == pytest.approx(3.60, abs=0.01)
    text = prose.exact_sentence(ch.results["versus_bambi"], ch.results["exact"], ch.results["eight_check"])
    assert "are 4.40 and 3.60" in text and text.startswith("Bambi's non-centered fit agrees with the quadrature")


def test_noncentered_has_near_zero_divergences(ch):
    """Non-centered fits have at most 0.5% divergent draws (none at 0.99); the centered one at 0.8 has more."""
    checks = {name: ch.value(f"param_checks[{name!r}].divergences") for name in (
        "Centered, target_accept 0.8", "Non-centered, target_accept 0.8", "Non-centered, target_accept 0.99")}
    assert checks["Non-centered, target_accept 0.99"] == 0
    assert checks["Non-centered, target_accept 0.8"] <= 20
    assert ch.value("eight_check.divergences") == 0
    assert checks["Centered, target_accept 0.8"] > checks["Non-centered, target_accept 0.99"]
    # Centered sampling mixes far worse, and never reaches the funnel's neck.
    assert ch.value("c_low.min_ess_bulk") < 0.25 * ch.value("nc_high.min_ess_bulk")
    log_tau_min = ch.value("log_tau_min")
    assert log_tau_min["Centered, target_accept 0.8"] > log_tau_min["Non-centered, target_accept 0.99"] + 2


def test_funnel_marks_divergences(ch):
    """The funnel chart's data mark exactly the sampler's divergent draws."""
    funnel = ch.value("funnel")
    marked = funnel.groupby("fit")["divergent"].apply(lambda s: int((s == "divergent").sum()))
    for name, count in marked.items():
        assert count == ch.value(f"param_checks[{name!r}].divergences")


def test_summary_states_95_percent_equal_tailed_intervals(ch):
    """The ArviZ summary the chapter shows has 95% equal-tailed interval columns, not the 89% default."""
    columns = ch.value("az.summary(eight_fit, ci_prob=0.95, ci_kind='eti').columns.tolist()")
    assert "eti95_lb" in columns and "eti95_ub" in columns


def test_inline_counts_come_from_the_data(ch, root):
    """The student and school counts the prose prints are those of data/schools.csv."""
    scores = load_schools(root / "data" / "schools.csv")
    by_school = ch.results["by_school"]
    assert len(ch.results["scores"]) == len(scores) == by_school["n"].sum()
    assert len(by_school) == scores["school"].nunique()


def _output(ch, label):
    """The text of the outputs of the cell labelled ``label``."""
    cell = next(c for c in ch.notebook.cells if c.cell_type == "code" and f"label: {label}" in c.source)
    return "".join(str(o.get("data", o.get("text", ""))) for o in cell.get("outputs", []))


def test_book_data_are_rubins_eight_schools(ch):
    """The book's eight-schools file is Rubin's, so its unit is SAT points."""
    assert ch.results["unit"] == "SAT points"


def test_tables_show_no_raw_names_or_float_counts(ch):
    """The ArviZ summary shows named interval columns and whole-number ESS; tables have no index-name row."""
    summary = _output(ch, "tbl-pp-summary")
    assert "eti95_lb" not in summary and "95% lower" in summary
    ess = ch.results["eight_summary"]["ess_bulk"].iloc[0]
    assert f"{ess:,.0f}" in summary and f"{ess:.2f}" not in summary
    assert "index_name" not in _output(ch, "tbl-pp-diagnostics")


def test_posterior_predictive_checks_are_consistent(ch):
    """Both predictive checks pair schools by label and their sentences match their numbers."""
    ppc, by_school = ch.results["ppc"], ch.results["by_school"]
    obs = ppc[ppc["statistic"] == "SD"].set_index("school")["observed"]
    np.testing.assert_allclose(obs.reindex(by_school.index.astype(str)), by_school["sd"].to_numpy())
    inside = ((ppc["lower"] <= ppc["observed"]) & (ppc["observed"] <= ppc["upper"])).all()
    assert ("it fits the data" in prose.ppc_sentence(ppc, ch.results["invgamma_check"])) == inside
    eight_ppc = ch.results["eight_ppc"]
    np.testing.assert_allclose(eight_ppc.set_index("school")["observed"],
                               ch.results["eight"].set_index("school")["y"].reindex(eight_ppc["school"]).to_numpy())


def test_tau_slider_data(ch):
    """The slider's conditional means equal y_j at large tau's limit direction and the pooled mean at tau = 0."""
    data, mu = ch.results["slider_data"], ch.results["slider_mu"]
    at_zero = data[data["tau"] == 0]["effect"].to_numpy()
    np.testing.assert_allclose(at_zero, mu.loc[mu["tau"] == 0, "mu_hat"].iloc[0])
    eight = ch.results["eight"].assign(school=lambda d: d["school"].astype(str)).set_index("school")
    top = data[data["tau"] == data["tau"].max()].set_index("school")["effect"]
    base = data[data["tau"] == 0].set_index("school")["effect"]
    # Larger tau moves every school towards its own estimate.
    assert ((top - eight["y"]).abs() <= (base - eight["y"]).abs() + 1e-9).all()


@pytest.mark.parametrize("name", list(VARIANTS))
def test_sentences_follow_the_readers_data(variant, name):
    """On each own-data variant: pairing by label, counts, unit, digits, and failed fits called unreliable."""
    executed = variant(NAME, name, VARIANTS[name])
    r = executed.results
    by_school, estimates, sigmas = r["by_school"], r["estimates"], r["sigmas"]
    assert list(estimates.index) == list(by_school.index.astype(str))
    np.testing.assert_allclose(sigmas["sample SD"], by_school["sd"].to_numpy())
    np.testing.assert_allclose(r["ppc"].query("statistic == 'average'").set_index("school")["observed"]
                               .reindex(estimates.index), by_school["mean"].to_numpy())
    text = prose.shrinkage_paragraph(estimates, r["between"], r["smallest"], r["largest"], r["pooling_checks"])
    n, k = len(r["between"]), int(r["between"].sum())
    assert (f"all {n} schools" if k == n else f"{k} of the {n} schools") in text
    assert ("unreliable" in text) == (not all(c.ok for c in r["pooling_checks"].values()))
    assert r["unit"] == ("SAT points" if name in ("reordered", "zeros", "no-truth") else "units of y")
    rng = prose.range_sentence(r["eight"], r["unit"])
    assert " 0 to 0" not in rng and r["unit"] in rng
    exact = prose.exact_sentence(r["versus_bambi"], r["exact"], r["eight_check"])
    assert ("agrees with" in exact) == (r["versus_bambi"]["z"].abs().max() < 4)
    assert ("unreliable" in exact) == (not r["eight_check"].ok)
    note = prose.failure_note(r["diagnostics_table"])
    passed = int((r["diagnostics_table"]["checks"] == "pass").sum())
    assert note.lower().startswith(f"all {passed} fits" if passed == len(r["diagnostics_table"])
                                   else (f"{passed} of the" if passed else "none of the"))
    assert prose.recovery_sentence(estimates, r["partial"], r["mu_ig"], r["sigma_ln"], r["sigma_ig"],
                                   r["true_schools"]).startswith("No simulation truth is available")


def test_bad_data_raises_a_clear_data_error(root, tmp_path):
    """A non-numeric score stops the chapter with a DataError naming the file, column and line."""
    book = _copy_book(root, tmp_path)
    csv = book / "data" / "schools.csv"
    lines = csv.read_text(encoding="utf-8").splitlines()
    student, school, _ = lines[4].split(",")
    lines[4] = f"{student},{school},abc"
    csv.write_text("\n".join(lines) + "\n", encoding="utf-8")
    executed = execute_chapter(book / NAME, root=book)
    assert executed.error is not None
    for part in ("DataError", "data/schools.csv", "'score'", "line 5"):
        assert part in executed.error, executed.error
