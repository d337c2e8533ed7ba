"""Chapter 'Credible intervals and confidence intervals': its computed claims hold on the book's data.

Coverage claims are checked at three Monte Carlo standard errors, sqrt(0.95 * 0.05 / R), with R
the number of replications the chapter states (R_FIXED, R_PRIOR, R_CURVE).
"""

import shutil
from pathlib import Path

import numpy as np
import pytest

from booktools import checks as quarto
from booktools.execute import execute_chapter
from hbm.book.prose import intervals as prose
from hbm.intervals import coverage_phrase
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


def test_replication_counts_are_stated(ch):
    """The chapter runs 1,000 fixed-p, 2,000 prior-drawn and 300-per-point curve replications and says so."""
    assert ch.value("(R_FIXED, R_PRIOR, R_CURVE)") == (1000, 2000, 300)
    assert ch.value("(len(fixed) // len(LABELS), len(drawn) // len(LABELS))") == (1000, 2000)


def test_cluster_t_interval_keeps_its_promise(cov):
    """The cluster-robust t interval (asymptotic, 30 users) covers within 2 points of 95% in both experiments.

    Its verdict in the prose ("within Monte Carlo error of", "below") is computed from the same
    coverage by hbm.intervals.coverage_phrase, so it says which side of 3 MC se the result falls.
    """
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
    assert prose.bootstrap_sentence("below", 10).startswith("With only 10 users")


def test_naive_binomial_interval_fails(cov):
    """The binomial interval on plays covers under 50% in both experiments (claimed: far below 95%)."""
    for experiment in ("fixed", "drawn"):
        assert cov[(experiment, "naive")][0] < 0.5


def test_flat_credible_interval_covers_at_fixed_p(ch, cov):
    """With p fixed, the flat-prior credible interval covers within 3 MC se of 95%."""
    coverage, reps = cov[("fixed", "credible:flat")]
    assert abs(coverage - 0.95) <= K * mc_se(reps)
    assert coverage_phrase(coverage, reps) == "within Monte Carlo error of"


def test_regional_credible_interval_calibrated_under_its_prior(ch, cov):
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


def test_credible_interval_holds_conditionally_on_the_data(ch):
    """Within each group of similar data, the regional-prior credible interval covers within 3 MC se of 95%."""
    per_group = ch.value("per_group")
    assert per_group >= 390
    coverage = np.asarray(ch.value("conditional['credible:regional'].to_numpy()"))
    assert np.all(np.abs(coverage - 0.95) <= K * mc_se(per_group)), coverage


def test_real_data_intervals_and_widths(ch):
    """On the data: the binomial interval is the narrowest, over 3 times narrower than the cluster-robust one; each estimate lies inside its interval."""
    real = ch.value("real")
    assert ch.value("float(design_ratio)") > 3
    assert real["width"].idxmin() == real.index[real["interval"] == "Binomial (Wald), plays independent"][0]
    assert (real["lower"] < real["estimate"]).all() and (real["estimate"] < real["upper"]).all()
    assert real["interval"].nunique() == 6


def test_width_comparisons_match_the_prose(ch):
    """The regional-prior interval is narrower than the flat one; over replications the flat credible interval is narrower than the t interval."""
    assert ch.value("w_reg < w_flat")
    assert ch.value("sim_w['credible:flat'] < sim_w['cluster_t']")
    assert prose.compare_widths(ch.results["w_reg"], ch.results["w_flat"]).endswith("narrower than")


def test_grid_posterior_close_to_three_level_model(ch):
    """The regional-prior grid interval's ends lie within 0.01 of the three-level model's (the prose calls them close)."""
    grid = ch.value("(float(regional.lower), float(regional.upper))")
    full = ch.value("(float(three_level.lower), float(three_level.upper))")
    assert np.allclose(grid, full, atol=0.01)


def test_three_level_fit_diagnostics_pass(ch):
    """The three-level model was sampled with nutpie and passes every diagnostic check."""
    assert ch.value("checks.sampler") == "nutpie"
    assert ch.value("checks.ok")
    assert ch.results["checks"].message.endswith("all checks pass.")
    assert "unreliable" not in prose.three_level_sentence(ch.results["three_level"], ch.results["checks"])


def test_truth_sentence_on_project_data(ch):
    """With the project's truth file the chapter names the true p, 0.37, and which intervals contain it."""
    assert ch.value("has_truth")
    assert ch.value("(p_fixed, kappa_fixed, source)") == (0.37, 12.0, "truth")
    text = prose.truth_sentence(ch.results["real"], ch.results["p_true"])
    assert text.startswith("The true $p$ of the simulation that generated this file is 0.3700.")


def test_every_interval_states_probability_and_kind(ch):
    """Every interval in the figures and tables is labelled 95% and equal-tailed (kind column or caption)."""
    assert set(ch.value("set(real['kind'])")) == {"95% confidence", "95% credible"}
    text = (ROOT / CHAPTER).read_text(encoding="utf-8")
    for label in ("fig-intervals", "fig-coverage", "tbl-coverage", "fig-coverage-curve", "tbl-conditional"):
        start = text.index(f"#| label: {label}")
        caption = text[start:text.index("\n", text.index("-cap:", start))]
        assert "95%" in caption and "equal-tailed" in caption, label


def test_coverage_axis_follows_the_data(ch):
    """The coverage figure's axis starts below every band it draws (not at 0%), and the binomial interval is printed off scale."""
    cov, lo = ch.results["coverage"], ch.results["lo_axis"]
    shown = cov[cov["method"] != "naive"]
    assert 0 < lo <= shown["band_lower"].min()
    assert (ch.results["plot"].query("method == 'naive'")["note"].str.endswith("off scale")).all()


@pytest.mark.parametrize("name", list(VARIANTS))
def test_sentences_follow_the_readers_data(variant, name):
    """On each own-data variant: no truth claimed, the region exists, failed fits called unreliable, verdicts match numbers."""
    executed = variant(CHAPTER, name, VARIANTS[name])
    r = executed.results
    assert not r["has_truth"]
    assert prose.truth_sentence(r["real"], None).startswith("No simulation truth is available for this data file")
    assert "no simulation truth is available" in prose.fixed_sentence(r["p_fixed"], r["kappa_fixed"], r["source"])
    assert r["region"] in set(r["music"]["region"].astype(str))
    checks = r["checks"]
    assert ("unreliable" in prose.three_level_sentence(r["three_level"], checks)) == (not checks.ok)
    assert ("unreliable" in prose.three_level_width(r["w_three"], r["w_reg"], checks)) == (not checks.ok)
    design = prose.design_sentence(r["design_ratio"], r["n"].sum(), r["n_effective"])
    assert ("narrower" in design) == (r["design_ratio"] >= 1)
    narrowest = r["real"].loc[r["real"]["width"].idxmin(), "interval"] == "Binomial (Wald), plays independent"
    assert ("is the narrowest of all" in prose.narrowest_sentence(r["real"], 0.5)) == narrowest
    assert 0 <= r["lo_axis"] <= r["coverage"].query("method != 'naive'")["band_lower"].min()


def test_bad_data_stops_with_a_data_error(tmp_path, root):
    """A non-numeric Rock count stops the chapter with a DataError naming the file, column and line."""
    shutil.copytree(root / "data", tmp_path / "data")
    (tmp_path / "chapters").mkdir()
    shutil.copy(root / CHAPTER, tmp_path / CHAPTER)
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


def test_cheap_model_cells_run_alone(tmp_path, root):
    """The confidence-interval and grid-posterior model cells run in a fresh kernel with nothing but hbm installed."""
    cells = [source for name, _, source in quarto.standalone_cells(root, files=[CHAPTER]) if name == CHAPTER]
    cheap = [s for s in cells if "fit_three_level" not in s and "coverage_study" not in s]
    assert len(cells) == 4 and len(cheap) == 2
    shutil.copytree(root / "data", tmp_path / "data")
    for k, source in enumerate(cheap):
        qmd = tmp_path / f"alone{k}.qmd"
        qmd.write_text(f"```{{python}}\n{source}\n```\n", encoding="utf-8")
        executed = execute_chapter(qmd, root=tmp_path)
        assert executed.error is None, executed.error
