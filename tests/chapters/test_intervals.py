"""Chapter 'Credible intervals and confidence intervals': its computed claims hold on the book's data.

Coverage claims are checked at three Monte Carlo standard errors, sqrt(0.95 * 0.05 / R), with R
the number of replications the chapter states (R_FIXED, R_PRIOR, R_CURVE).
"""

import shutil
from pathlib import Path

import numpy as np
import pytest

from booktools import checks as quarto
from booktools import copyscript
from booktools.execute import execute_chapter
from hbm.intervals import KAPPA_PRIOR, coverage_phrase
from tests.variants import VARIANTS

ROOT = Path(__file__).resolve().parents[2]
CHAPTER = "chapters/intervals.qmd"
K = 3.0  # Monte Carlo standard errors allowed


def mc_se(n_reps, p=0.95):
    """Binomial Monte Carlo standard error of a coverage estimate near p."""
    return float(np.sqrt(p * (1 - p) / n_reps))


@pytest.fixture(scope="module")
def ch(chapter):
    """The chapter, executed once on the project's data."""
    return chapter(CHAPTER)


@pytest.fixture(scope="module")
def cov(ch):
    """{(experiment key, method): (coverage, replications)} from the chapter's kernel."""
    rows = ch.value(
        "{(k, m): (cov[(EXPERIMENTS[k], m)]['coverage'], cov[(EXPERIMENTS[k], m)]['n_reps'])"
        " for k in EXPERIMENTS for m in LABELS}"
    )
    return {key: (float(c), int(r)) for key, (c, r) in rows.items()}


def test_static_checks_pass(root):
    """Cross-references, citations, figure options and standalone cells of the chapter check out."""
    assert quarto.check_all(root, files=[CHAPTER]) == []


def test_interval_code_is_shown_in_full_from_the_library():
    """The three interval modules are included on the page, whole, and hbm.intervals uses those same functions."""
    from hbm import _intervals_ci, _intervals_coverage, _intervals_grid, intervals

    text = (ROOT / CHAPTER).read_text(encoding="utf-8")
    for module in ("_intervals_ci", "_intervals_grid", "_intervals_coverage"):
        assert f"{{{{< include ../hbm/{module}.py >}}}}" in text
    shown = "\n".join(copyscript.visible_cells(ROOT / CHAPTER))
    for module in (_intervals_ci, _intervals_grid, _intervals_coverage):
        assert Path(module.__file__).read_text(encoding="utf-8").strip() in shown
        assert '"""' not in Path(module.__file__).read_text(encoding="utf-8"), "no docstrings in shown code"
    assert intervals.grid_posterior is _intervals_grid.grid_posterior
    assert intervals.cluster_t_interval is _intervals_ci.cluster_t_interval
    assert intervals.coverage_study is _intervals_coverage.coverage_study


def test_stated_priors_are_the_fitted_priors(ch):
    """The priors the text states (flat Beta(1, 1), regional c = 20, log kappa ~ N(3, 1.5^2)) are the ones the grid uses."""
    priors = ch.value("priors")
    assert priors["flat"] == (1.0, 1.0)
    a, b = priors["regional"]
    assert a + b == pytest.approx(20.0)
    assert a / (a + b) == pytest.approx(ch.value("other_share"))
    assert KAPPA_PRIOR == (3.0, 1.5)
    assert ch.inline['fmt(kappa_mu, ".0f")'] == "3" and ch.inline['fmt(kappa_sd, ".1f")'] == "1.5"
    assert ch.inline['fmt(prior_a + prior_b, ".0f")'] == "20"


def test_prior_sensitivity_table(ch):
    """The sensitivity table's c = 20, SD 1.5 row is the chapter's regional interval; c moves the mean (by over 0.01), the log kappa prior by under 0.002.

    The row is computed on its own grid (one prior), the chapter's interval on a grid shared with
    the flat prior, so they agree to the grid's accuracy: 1% of a posterior SD, about 3e-4.
    """
    table = ch.value("sensitivity")
    assert len(table) == 9
    own = table[(table["c"] == 20.0) & (table["SD of the log κ prior"] == 1.5)].iloc[0]
    assert own["lower"] == pytest.approx(ch.value("float(regional.lower)"), abs=3e-4)
    assert own["upper"] == pytest.approx(ch.value("float(regional.upper)"), abs=3e-4)
    assert ch.value("c_moves") > 0.01 and ch.value("sd_moves") < 0.002
    means = table[table["SD of the log κ prior"] == 1.5].set_index("c")["posterior mean"]
    assert means.is_monotonic_decreasing, "a stronger prior pulls towards the other regions' lower share"
    assert "So the prior's concentration $c$ moves the answer more than the prior on $\\kappa$ does." in ch.prose
    assert "So the prior on $\\kappa$ moves the answer more" not in ch.prose
    assert "The regional prior is a real assumption" in ch.prose
    assert "Within this range the data outweigh the prior." not in ch.prose


def test_prior_predictive_check(ch):
    """The priors reproduce the observed mean and spread of users' shares: both within the central 95% of 4,000 prior simulations."""
    check = ch.value("prior_check")
    assert ch.value("len(p_sim)") == 4000
    assert ((check["share of simulations below"] > 0.025) & (check["share of simulations below"] < 0.975)).all()
    assert "Both observed statistics lie well inside what the priors produce" in ch.prose
    assert "At least one observed statistic lies in the outer 5%" not in ch.prose


def test_simulation_declared_with_generating_values_first(ch):
    """The file is said to be simulated, with its generating p and kappa, before any interval is compared with a truth."""
    prose = ch.prose
    said = prose.index("The file is simulated, and this chapter says so before any result")
    assert said < prose.index("The true $m$ of the simulation that generated this file is")
    note = prose[said:prose.index("\n\n", said)]
    assert "$m$ = 0.37" in note and "$\\kappa$ = 12" in note
    assert "carries no simulation truth" not in prose


def test_replication_counts_are_stated(ch):
    """The chapter runs 1,000 fixed-p, 2,000 prior-drawn and 300-per-point curve replications and says so."""
    assert ch.value("(R_FIXED, R_PRIOR, R_CURVE)") == (1000, 2000, 300)
    assert ch.value("(len(fixed) // len(LABELS), len(drawn) // len(LABELS))") == (1000, 2000)


def test_cluster_t_interval_keeps_its_promise(cov):
    """The cluster-robust t interval (asymptotic, 30 users) covers within 2 points of 95% in both experiments."""
    for experiment in ("fixed", "drawn"):
        coverage, _ = cov[(experiment, "cluster_t")]
        assert abs(coverage - 0.95) <= 0.02, (experiment, coverage)


def test_bootstrap_undercovers_as_stated(ch, cov):
    """The percentile cluster bootstrap covers more than 3 MC se below 95% in both experiments, as the prose says."""
    for experiment in ("fixed", "drawn"):
        coverage, reps = cov[(experiment, "bootstrap")]
        assert coverage < 0.95 - K * mc_se(reps), (experiment, coverage)
        assert coverage > 0.85, "a little short, not broken"
    assert coverage_phrase(*cov[("fixed", "bootstrap")]) == "below"
    assert "With only 30 users to resample, a percentile bootstrap distribution tends to be a little too narrow" in ch.prose
    assert "does not show here" not in ch.prose


def test_naive_binomial_interval_fails(cov):
    """The binomial interval on plays covers under 50% in both experiments (claimed: far below 95%)."""
    for experiment in ("fixed", "drawn"):
        assert cov[(experiment, "naive")][0] < 0.5


def test_flat_credible_interval_covers_at_fixed_p(cov):
    """With p fixed, the flat-prior credible interval covers within 3 MC se of 95%."""
    coverage, reps = cov[("fixed", "credible:flat")]
    assert abs(coverage - 0.95) <= K * mc_se(reps)
    assert coverage_phrase(coverage, reps) == "within Monte Carlo error of"


def test_regional_credible_interval_calibrated_under_its_prior(cov):
    """With p drawn from the regional prior, the regional-prior credible interval covers within 3 MC se of 95%."""
    coverage, reps = cov[("drawn", "credible:regional")]
    assert reps == 2000
    assert abs(coverage - 0.95) <= K * mc_se(reps)
    assert coverage_phrase(coverage, reps) == "within Monte Carlo error of"


def test_regional_credible_coverage_depends_on_fixed_p(ch):
    """Fixed p: the regional-prior interval covers within 3 MC se of 95% nearest its prior mean, and more than 3 below at the farthest p."""
    reps = ch.value("R_CURVE")
    near, far = ch.value("reg_curve.loc[near_p, 'coverage']"), ch.value("reg_curve.loc[far_p, 'coverage']")
    assert abs(near - 0.95) <= K * mc_se(reps)
    assert far < 0.95 - K * mc_se(reps)


def test_flat_and_t_intervals_cover_at_every_fixed_p(ch):
    """Fixed p from 0.1 to 0.6: the flat-prior credible and cluster-robust t intervals stay within 3 MC se of 95% (300 replications each)."""
    reps = ch.value("R_CURVE")
    for name in ("flat_curve", "t_curve"):
        coverage = np.asarray(ch.value(f"{name}['coverage'].to_numpy()"))
        assert np.all(np.abs(coverage - 0.95) <= K * mc_se(reps)), (name, coverage)
    assert "The cluster-robust t and flat-prior credible intervals hold within Monte Carlo error of 95% at every $m$" in ch.prose
    assert "Only the" not in ch.prose and "Neither the cluster-robust t" not in ch.prose


def test_credible_interval_holds_conditionally_on_the_data(ch):
    """Within each group of similar data, the regional-prior credible interval covers within 3 MC se of 95%."""
    per_group = ch.value("per_group")
    assert per_group >= 390
    coverage = np.asarray(ch.value("conditional['credible:regional'].to_numpy()"))
    assert np.all(np.abs(coverage - 0.95) <= K * mc_se(per_group)), coverage
    assert "Whatever the data say, about 95% of the parameter values" in ch.prose
    assert "the conditional promise is not borne out" not in ch.prose


def test_real_data_intervals_and_widths(ch):
    """On the data: the binomial interval is the narrowest, over 3 times narrower than the cluster-robust one; each estimate lies inside its interval."""
    real = ch.value("real")
    assert ch.value("design_ratio") > 3
    assert real["width"].idxmin() == real.index[real["interval"] == "Binomial (Wald), plays independent"][0]
    assert (real["lower"] < real["estimate"]).all() and (real["estimate"] < real["upper"]).all()
    assert real["interval"].nunique() == 5
    assert f"The naive interval is {ch.value('design_ratio'):.1f} times narrower than the cluster-robust one." in ch.prose
    assert "times wider than the cluster-robust one" not in ch.prose
    assert "the plays-weighted share, and it is 0.026 wide, the narrowest of all." in ch.prose
    assert ", so its narrowness is an error." in ch.prose


def test_the_studys_intervals_explained(ch):
    """The study's quoted intervals: its confidence width is the cluster-robust width (within 0.005), its credible width is nearer the naive than the chapter's credible width."""
    assert ch.value("(STUDY_CONFIDENCE, STUDY_CREDIBLE)") == ((0.308, 0.426), (0.350, 0.384))
    robust = ch.value("(float(robust.lower), float(robust.upper))")
    assert robust == pytest.approx((0.252, 0.370), abs=0.0015)
    regional = ch.value("(float(regional.lower), float(regional.upper))")
    assert regional == pytest.approx((0.272, 0.384), abs=0.0025)
    assert ch.value("ci_matches") and ch.value("cr_like_naive") and ch.value("is_europe")
    assert abs(ch.value("w_study_ci") - ch.value("w_robust")) <= 0.005
    assert ch.value("w_naive") == pytest.approx(0.027, abs=0.002)
    study = ch.value("study")
    assert study["width"].round(3).tolist()[:2] == [0.118, 0.034]
    prose = ch.prose
    assert "The chapter's intervals in the table are for Europe, as the study's are." in prose
    assert "That is the same width, to within rounding, so the study's confidence interval is a cluster-robust" in prose
    assert "close to the width of the binomial interval that treats every play as independent (0.026)" in prose
    assert "A credible interval that narrow is what a model gets when it ignores that plays cluster" in prose
    assert "The study this chapter replicates reported a confidence interval as wide as the cluster-robust one" in prose
    for other in ("The widths differ, so", "widths need not agree", "What model produced it cannot be told",
                  "centres for", "cannot be checked here"):
        assert other not in prose, other


def test_width_comparisons_match_the_prose(ch):
    """The regional-prior interval is narrower than the flat one; over replications the flat credible interval is narrower than the t interval."""
    assert ch.value("w_reg < w_flat")
    assert ch.value("sim_w['credible:flat'] < sim_w['cluster_t']")
    assert ch.inline["compare(w_reg, w_flat)"].endswith("narrower than")


def test_truth_sentence_on_project_data(ch):
    """With the project's truth file the chapter names the true p, 0.37, and which intervals contain it."""
    assert ch.value("has_truth")
    assert ch.value("(p_fixed, kappa_fixed, source)") == (0.37, 12.0, "truth")
    assert "The true $m$ of the simulation that generated this file is 0.37.\nIt lies inside" in ch.prose
    assert "No simulation truth is available for this data file" not in ch.prose
    assert "at the values that generated the file, $m$ = 0.370 and $\\kappa$ = 12.0." in ch.prose
    assert "On this file the true $m$, 0.37, lies inside" in ch.prose


def test_every_interval_states_probability_and_kind(ch):
    """Every interval in the figures and tables is labelled 95% and equal-tailed (kind column or caption)."""
    assert set(ch.value("set(real['kind'])")) == {"95% confidence", "95% credible"}
    text = (ROOT / CHAPTER).read_text(encoding="utf-8")
    for label in ("fig-intervals", "fig-coverage", "tbl-coverage", "fig-coverage-curve", "tbl-conditional",
                  "tbl-intervals-study"):
        start = text.index(f"#| label: {label}")
        caption = text[start:text.index("\n", text.index("-cap:", start))]
        assert "95%" in caption and "equal-tailed" in caption, label


def test_coverage_axis_follows_the_data(ch):
    """The coverage figure's axis starts below every band it draws (not at 0%), and the binomial interval is printed off scale."""
    cov, lo = ch.results["coverage"], ch.results["lo_axis"]
    shown = cov[cov["method"] != "naive"]
    assert 0 < lo <= shown["band_lower"].min()
    assert (ch.results["plot"].query("method == 'naive'")["note"].str.endswith("off scale")).all()


def test_copied_code_reproduces_the_chapter(ch):
    """The visible code, run alone in an empty folder (fast mode), reproduces every interval and coverage exactly.

    The chapter has no sampler: every number is a closed form, a seeded bootstrap, a grid
    quadrature or a seeded simulation, and the copy runs all replications (the fast-mode cut is
    in a hidden cell), so the copy must match the chapter to the last digit (1e-12).
    """
    keys = [
        "float(naive.lower)", "float(robust.lower)", "float(robust.upper)", "float(bootstrap.lower)",
        "float(flat.lower)", "float(regional.lower)", "float(regional.upper)",
        "float(coverage['coverage'].sum())", "float(curve_cov['coverage'].sum())",
        "float(conditional['credible:regional'].sum())", "float(sensitivity['width'].sum())",
        "float(prior_check['share of simulations below'].sum())",
    ]
    run = copyscript.run(ROOT / CHAPTER, keys=keys)
    assert run.ok, run.tail()
    for key in keys:
        assert run.keys[key] == pytest.approx(float(ch.value(key)), abs=1e-12), key


@pytest.mark.parametrize("name", list(VARIANTS))
def test_sentences_follow_the_readers_data(variant, name):
    """On each own-data variant: no truth claimed, the region exists, verdicts match numbers."""
    executed = variant(CHAPTER, name, VARIANTS[name])
    r, prose = executed.results, executed.prose
    assert not r["has_truth"]
    assert "No simulation truth is available for this data file, so we cannot check which intervals contain $m$." in prose
    assert "so nothing below is checked against a known $m$." in prose
    assert "No simulation truth is available for this data file, so the fixed experiment holds" in prose
    assert "This file has no simulation truth, so only the coverage study" in prose
    for simulated in ("The file is simulated", "The true $m$ of the simulation", "at the values that generated the file",
                      "On this file the true $m$"):
        assert simulated not in prose, simulated
    assert r["region"] in set(r["music"]["region"].astype(str))
    assert ("times narrower than the cluster-robust one" in prose) == (r["design_ratio"] >= 1)
    assert ("times wider than the cluster-robust one" in prose) == (r["design_ratio"] < 1)
    narrowest = r["real"].loc[r["real"]["width"].idxmin(), "interval"] == "Binomial (Wald), plays independent"
    assert ("wide, the narrowest of all." in prose) == narrowest
    assert "n/a" not in prose and "{python}" not in prose
    assert 0 <= r["lo_axis"] <= r["coverage"].query("method != 'naive'")["band_lower"].min()


def test_bad_data_stops_with_a_data_error(tmp_path, root):
    """A non-numeric Rock count stops the chapter with a DataError naming the file, column and line."""
    shutil.copytree(root / "data", tmp_path / "data")
    (tmp_path / "chapters").mkdir()
    shutil.copy(root / CHAPTER, tmp_path / CHAPTER)
    (tmp_path / "hbm").mkdir()
    for module in ("_intervals_ci", "_intervals_grid", "_intervals_coverage"):
        shutil.copy(root / "hbm" / f"{module}.py", tmp_path / "hbm" / f"{module}.py")
    csv = tmp_path / "data" / "music_plays.csv"
    lines = csv.read_text(encoding="utf-8").splitlines()
    fields = lines[5].split(",")
    fields[3] = "many"
    lines[5] = ",".join(fields)
    csv.write_text("\n".join(lines) + "\n", encoding="utf-8")
    executed = execute_chapter(tmp_path / CHAPTER, root=tmp_path)
    assert executed.error is not None
    assert "DataError" in executed.error and "music_plays.csv" in executed.error
    assert "'rock'" in executed.error and "line 6" in executed.error
