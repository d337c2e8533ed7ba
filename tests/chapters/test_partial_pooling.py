"""Chapter 'Partial pooling from first principles': its statistical claims, checked on its own values."""

import shutil

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from booktools import checks as quarto
from booktools import copyscript
from hbm.book.data import load_schools
from booktools.execute import execute_chapter
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
    assert ch.value("bool(between.all())") and "it lies outside that range" not in ch.prose
    assert "How far a school moves depends on how much its own data say" in ch.prose
    assert "here the larger school moves further" not in ch.prose and ch.value("str(pooling_warning)") == ""


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
    hyper = ch.value("invgamma_fit['posterior']['mu'].values.ravel()")
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
    relied_on = [name for name in table.index if "target acceptance" not in name]
    assert len(relied_on) == 9
    assert (table.loc[relied_on, "checks"] == "pass").all(), table
    assert set(table["sampler"]) == {"nutpie"}


def test_exact_and_mcmc_agree_for_mu_and_tau(ch):
    """Bambi's and the non-centered PyMC (0.99) fit's means of mu and tau are within 4 MCSE of the quadrature."""
    bambi = ch.value("versus_bambi")
    assert np.all(np.abs(bambi.loc[["mu", "tau"], "z"]) < 4), bambi
    assert np.all(np.abs(bambi["z"]) < 4), bambi
    pymc = ch.value(
        "compare_to_exact(exact, *(param_fits['Non-centered, target acceptance 0.99']['posterior'][v]"
        " for v in ('mu', 'tau', 'theta')))"
    )
    assert np.all(np.abs(pymc.loc[["mu", "tau"], "z"]) < 4), pymc
    # The MCSEs are small: the agreement is not bought with a useless sample.
    assert np.all(bambi.loc[["mu", "tau"], "mcse"] < 0.05 * bambi.loc[["mu", "tau"], "exact_sd"])


def test_exact_posterior_values(ch):
    """Quadrature under the book's prior mu ~ N(0, 50^2) gives mu 7.74 and tau 3.63 (to 0.01)."""
    assert ch.value("exact.mu_mean") == pytest.approx(7.74, abs=0.01)
    assert ch.value("exact.tau_mean") == pytest.approx(3.63, abs=0.01)
    assert ch.value("worst_z") < 4 and ch.value("eight_check.ok")


def test_mu_prior_sensitivity_is_exact(ch):
    """The mu-prior table: N(0, 5^2) gives the well-known 4.40 and 3.60, a near-flat prior about 7.8."""
    table = ch.value("mu_sensitivity")
    assert table.loc["N(0, 5²)", "μ mean"] == pytest.approx(4.40, abs=0.01)
    assert table.loc["N(0, 5²)", "τ mean"] == pytest.approx(3.60, abs=0.01)
    assert table.loc["N(0, 50²)", "μ mean"] == pytest.approx(ch.value("exact.mu_mean"), abs=1e-12)
    assert table.loc["N(0, 500²)", "μ mean"] == pytest.approx(7.8, abs=0.05)
    assert ch.value("bool(mu_moves)")


def test_noncentered_has_near_zero_divergences(ch):
    """Non-centered fits have at most 0.5% divergent draws (none at 0.99); the centered one at 0.8 has more."""
    checks = {name: ch.value(f"param_checks[{name!r}].divergences") for name in (
        "Centered, target acceptance 0.8", "Non-centered, target acceptance 0.8",
        "Non-centered, target acceptance 0.99")}
    assert checks["Non-centered, target acceptance 0.99"] == 0
    assert checks["Non-centered, target acceptance 0.8"] <= 20
    assert ch.value("eight_check.divergences") == 0
    assert checks["Centered, target acceptance 0.8"] > checks["Non-centered, target acceptance 0.99"]
    # Centered sampling mixes far worse, and never reaches the funnel's neck.
    assert ch.value("c_low.min_ess_bulk") < 0.25 * ch.value("nc_high.min_ess_bulk")
    log_tau_min = ch.value("log_tau_min")
    assert log_tau_min["Centered, target acceptance 0.8"] > log_tau_min["Non-centered, target acceptance 0.99"] + 2


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
    assert "μ" in summary and "τ" in summary
    assert "Intercept" not in summary and "1|school_sigma" not in summary
    assert "index_name" not in _output(ch, "tbl-pp-diagnostics")
    for label in ("tbl-pp-exact", "tbl-pp-param", "tbl-pp-diagnostics", "tbl-pp-loo"):
        shown = _output(ch, label)
        assert "target_accept" not in shown, label
        assert ">mu<" not in shown and ">tau<" not in shown, label


def test_posterior_predictive_checks_are_consistent(ch):
    """Both predictive checks pair schools by label and their sentences match their numbers."""
    ppc, by_school = ch.results["ppc"], ch.results["by_school"]
    obs = ppc[ppc["statistic"] == "SD"].set_index("school")["observed"]
    np.testing.assert_allclose(obs.reindex(by_school.index.astype(str)), by_school["sd"].to_numpy())
    inside = ((ppc["lower"] <= ppc["observed"]) & (ppc["observed"] <= ppc["upper"])).all()
    assert ("so by this check it fits the data" in ch.prose) == inside
    assert ("so the model misses something in these data" in ch.prose) == (not inside)
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


def _stated(dist, **args):
    """A prior as the chapter states it, in the shape of its ``fitted_priors``."""
    return (dist, {k: v if isinstance(v, tuple) else pytest.approx(float(v), rel=1e-9) for k, v in args.items()})


def test_fitted_priors_are_the_stated_ones(ch, root):
    """The priors Bambi fitted (model.components) are those the text states, from the data's mean and SD."""
    scores = load_schools(root / "data" / "schools.csv")
    y_bar, s_y = scores["score"].mean(), scores["score"].std()
    mean = _stated("Normal", mu=y_bar, sigma=2.5 * s_y)
    sigma = _stated("HalfNormal", sigma=2 * s_y)
    tau = ("HalfNormal", {"sigma": pytest.approx(s_y, rel=1e-9)})
    fitted = ch.value("fitted_priors")
    assert fitted["No pooling"] == {"school": mean, "sigma": sigma}
    assert fitted["Complete pooling"] == {"Intercept": mean, "sigma": sigma}
    assert fitted["Partial pooling"] == {"Intercept": mean, "1|school": ("Normal", {"mu": 0.0, "sigma": tau}),
                                         "sigma": sigma}
    assert ch.value("lognormal_priors") == {
        "Intercept": mean, "1|school": ("Normal", {"mu": 0.0, "sigma": tau}),
        "sigma Intercept": _stated("Normal", mu=np.log(s_y), sigma=1.0),
        "sigma 1|school": ("Normal", {"mu": 0.0, "sigma": ("HalfNormal", {"sigma": 1.0})}),
    }
    # Bambi's defaults (tau ~ HalfNormal(2.5 s_y), sigma ~ HalfStudentT) are not what was fitted.
    assert fitted["Partial pooling"]["1|school"][1]["sigma"][1]["sigma"] != pytest.approx(2.5 * s_y)
    assert ch.value("eight_priors") == {
        "Intercept": ("Normal", {"mu": 0.0, "sigma": 50.0}),
        "1|school": ("Normal", {"mu": 0.0, "sigma": ("HalfCauchy", {"beta": 5.0})}),
    }


def test_alpha_prior_range_and_predictive_check(ch):
    """Gamma(2, rate 0.2) has the 95% range 1.2-27.9 the text gives; smaller alpha, more unequal SDs."""
    lo, hi = ch.value("alpha_prior_range")
    assert (round(lo, 1), round(hi, 1)) == (1.2, 27.9)
    ppc = ch.value("alpha_ppc")
    assert len(ppc) == 3
    assert ppc.iloc[1]["median ratio"] > ppc.iloc[0]["median ratio"] > ppc.iloc[2]["median ratio"]
    assert 0 <= ppc.iloc[0]["share below observed"] <= 1


def test_alpha_sensitivity(ch):
    """The posterior of alpha follows its prior's scale; the text's verdict on the school SDs matches the table."""
    table = ch.value("alpha_table")
    assert len(table) == 3
    means = table["shape a, mean"]
    assert means.iloc[1] > means.iloc[0] > means.iloc[2]
    assert table.iloc[0]["largest change in σ_j"] == 0
    sd = ch.value("by_school['sd'].mean()")
    small = table["largest change in σ_j"].max() < 0.1 * sd and table["largest change in θ_j"].max() < 0.1 * sd
    assert ("Across the three priors, the school SDs and means barely move" in ch.prose) == small
    assert ("Across the three priors, the school SDs or means move noticeably" in ch.prose) == (not small)
    assert all(c.ok for c in ch.value("alpha_checks").values())


def test_loo_compares_the_three_poolings(ch):
    """PSIS-LOO ranks the three fits; partial pooling beats complete pooling by more than 2 SE; the Pareto k note is true."""
    table = ch.value("loo_table")
    assert set(table.index) == {"No pooling", "Complete pooling", "Partial pooling"}
    assert table["elpd_diff"].iloc[0] == 0
    diff = table.loc["Partial pooling", "elpd"] - table.loc["Complete pooling", "elpd"]
    assert diff > 2 * table.loc["Complete pooling", "dse"]
    k_max = table["largest Pareto k"].max()
    assert ("Every Pareto k is below 0.7" in ch.prose) == (k_max < 0.7)
    assert ("Some Pareto k values exceed 0.7" in ch.prose) == (k_max >= 0.7)


def test_truth_check_is_reported_as_it_came_out(ch):
    """The MSE against the true school means is computed by label, and the text says which estimate won."""
    truth = pd.DataFrame(ch.value("truth")["schools"]).set_index("school")["mu"]
    est = ch.value("estimates")
    mse = ch.value("truth_mse")
    for method in ("No pooling", "Partial pooling"):
        assert mse[method] == pytest.approx(float(np.mean((est[method] - truth.reindex(est.index)) ** 2)))
    wins = ch.value("pp_wins")
    assert wins == (mse["Partial pooling"] < mse["No pooling"])
    assert ("**worse** than the" in ch.prose) == (not wins)
    assert ("shrinkage helped here" in ch.prose) == wins
    assert "With no simulation truth for this file" not in ch.prose


def test_replication_study_shows_the_stein_claim(ch):
    """Averaged over 200 simulated data sets, partial pooling's MSE is below no pooling's by more than 3 MC SEs."""
    table = ch.value("replication_table")
    replicated = ch.value("replicated")
    assert len(replicated) == 200
    gain = replicated["No pooling"] - replicated["Partial pooling"]
    assert gain.mean() > 3 * gain.std() / np.sqrt(len(gain))
    assert table.loc["Partial pooling", "average MSE"] < table.loc["No pooling", "average MSE"]
    # The closed-form estimator is the Bambi model: school means within half a point.
    assert ch.value("closed_form_gap") < 0.5


def test_remedy_policy_repairs_the_centred_fit(ch):
    """The remedy policy, started from the centred model at 0.8, refits and ends with a fit that passes."""
    remedied = ch.value("remedied")
    assert remedied.attempts[0].settings.parameterization == "centered"
    assert remedied.refits >= 1
    assert remedied.reliable


def test_copied_code_reproduces_the_chapter(ch, root):
    """The visible code, run alone in fast mode, reproduces the exact values exactly and the MCMC ones within 1 point."""
    keys = {
        "exact": ["exact.mu_mean", "exact.tau_mean", "float(mu_sensitivity.iloc[0, 0])",
                  "float(alpha_prior.ppf(0.975))", "float(by_school['mean'].iloc[0])",
                  "float(alpha_ppc.iloc[0, 0])", "float(replication_table.iloc[1, 0])"],
        "mcmc": ["float(estimates['Partial pooling'].iloc[0])", "float(estimates['No pooling'].iloc[-1])",
                 "float(tau_shared.mean())"],
    }
    run = copyscript.run(root / NAME, root=root, keys=keys["exact"] + keys["mcmc"])
    assert run.ok, run.tail()
    for key in keys["exact"]:
        assert run.keys[key] == pytest.approx(ch.value(key), rel=1e-9), key
    for key in keys["mcmc"]:
        assert run.keys[key] == pytest.approx(ch.value(key), abs=1.0), key
    # The replication study uses no MCMC draw when the file has a truth: same numbers exactly.
    assert ch.value("truth") is not None


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
    assert ("not reliable" in r["pooling_warning"]) == (not all(c.ok for c in r["pooling_checks"].values()))
    assert r["unit"] == ("SAT points" if name in ("reordered", "zeros", "no-truth") else "units of y")
    assert r["worst_z"] == pytest.approx(float(r["versus_bambi"]["z"].abs().max()))
    passed = int((r["diagnostics_table"]["checks"] == "pass").sum())
    all_pass = passed == len(r["diagnostics_table"])
    assert ("Every fit passes every check." in executed.prose) == all_pass
    assert (f"{passed} of the {len(r['diagnostics_table'])} fits pass every check" in executed.prose) == (not all_pass)
    assert "No simulation truth is available for this data file" in executed.prose
    assert "The data were simulated with known school means" not in executed.prose
    assert "With no simulation truth for this file" in executed.prose and "These scores are simulated" not in executed.prose
    assert "n/a" not in executed.prose
    assert r["truth_mse"] is None and r["truth"] is None


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
