"""chapters/creators.qmd: its computed claims hold, on the book's data and on a reader's data.

Coverage claims are checked at three Monte Carlo standard errors: for one data set the binomial
error sqrt(0.95 * 0.05 / n_creators) (about 0.01 for 500 creators), across replications the
standard deviation of the per-data-set coverages over sqrt(R) (hbm.metrics.mc_error).
"""

import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from booktools import checks as quarto
from booktools.execute import execute_chapter, read_chapter
from tests.variants import VARIANTS

CHAPTER = "chapters/creators.qmd"
ROOT = Path(__file__).resolve().parents[2]
K = 3.0  # Monte Carlo standard errors allowed
PP, NP, CP, EB = "Partial pooling", "No pooling", "Complete pooling", "Empirical Bayes"


@pytest.fixture(scope="module")
def ch(chapter):
    """The chapter, executed once (as Quarto would) with its kernel kept for queries."""
    return chapter(CHAPTER)


@pytest.fixture(scope="module")
def overall(ch):
    """Each method's MSE, coverage and mean width on the book's data (the key results table)."""
    return ch.value("overall")


@pytest.fixture(scope="module")
def reps(ch):
    """The replication study's per-method means and Monte Carlo errors, and its raw rows."""
    return ch.value("rep_summary"), ch.value("reps")


def test_static_checks():
    """Cross-references, citations, figure options and standalone cells of the chapter are valid."""
    assert quarto.check_all(ROOT, files=[CHAPTER]) == []


def test_model_cells_are_standalone():
    """The Bambi and PyMC model cells are marked standalone and read no outside names."""
    cells = [c for c in quarto.standalone_cells(ROOT, files=[CHAPTER]) if c[0] == CHAPTER]
    assert len(cells) == 2
    assert "bmb.Model" in cells[0][2] and "nutpie.compile_pymc_model" in cells[1][2]


def test_inline_text_has_no_quotes(ch):
    """Text-valued inline expressions render without the quotes IPython puts around a str."""
    assert not {e: t for e, t in ch.inline.items() if t[:1] and t[:1] in "'\""}


def test_every_fit_names_its_sampler(ch):
    """The Bambi and PyMC fits and the comparison fits were all sampled by nutpie, and the prose says so."""
    assert ch.value("bambi_checks.sampler") == "nutpie"
    assert ch.value("pymc_checks.sampler") == "nutpie"
    assert ch.value("[c.sampler for c in param_checks.values()]") == ["nutpie"] * 3
    assert "with nutpie" in ch.value("bambi_checks.message")


def test_chapter_fits_pass_diagnostics(ch):
    """The two fits the chapter uses pass every check (R-hat <= 1.01, ESS >= 400, no divergences)."""
    assert ch.value("bambi_checks.ok"), ch.value("bambi_checks.message")
    assert ch.value("pymc_checks.ok"), ch.value("pymc_checks.message")
    assert ch.value("pymc_checks.message").endswith("all checks pass.")


def test_noncentered_is_worse_than_centered(ch):
    """All-non-centered sampling fails its checks; the integrated-out model has 10x its ESS/s and no divergences."""
    table = ch.value("param_table")
    nc, cg, marg = (table.loc[ch.value(f"labels[{k!r}]")] for k in ("noncentered", "centered_genre", "marginal"))
    assert not ch.value("param_checks['noncentered'].ok")
    assert marg["ESS per second"] > 10 * nc["ESS per second"]
    assert cg["min bulk ESS"] > nc["min bulk ESS"]
    assert marg["divergences"] == 0 and marg["max R-hat"] <= 1.01


def test_pymc_model_is_build_model_and_its_code_is_shown():
    """The chapter samples hbm.models.creators.build_model(..., 'marginal') through the remedy policy (one implementation) and shows that file in full in a visible cell."""
    from booktools.copyscript import visible_cells

    _, cells, _ = read_chapter(ROOT / CHAPTER)
    model_cell = next(c.source for c in cells if "def sample_creators(" in c.source)
    assert 'MODELS = {"centered": "marginal", "noncentered": "marginal_noncentered"}' in model_cell
    assert "build_model(creators, MODELS[parameterization], genre_prior_scale)" in model_cell
    assert "fit_with_remedies(" in model_cell
    assert "from hbm.models.creators import add_creator_draws, build_model" in model_cell
    assert "```{python}\n{{< include ../hbm/models/creators.py >}}\n```" in (ROOT / CHAPTER).read_text(encoding="utf-8")
    shown = "\n".join(visible_cells(ROOT / CHAPTER))
    assert "def build_model(" in shown and 'if parameterization.startswith("marginal"):' in shown
    assert "def add_creator_draws(" in shown
    assert "show_source" not in (ROOT / CHAPTER).read_text(encoding="utf-8")
    assert '"""' not in (ROOT / "hbm" / "models" / "creators.py").read_text(encoding="utf-8")  # no docstrings on the page


def test_bambi_pymc_and_eb_agree(ch):
    """Bambi, PyMC and EB posterior means of the creators differ by < 0.05 at most and correlate > 0.999."""
    assert ch.value("diff_bambi.max()") < 0.05
    assert ch.value("diff_eb.max()") < 0.05
    assert ch.value("corr_bambi") > 0.999 and ch.value("corr_eb") > 0.999


def test_hbm_beats_no_pooling_on_book_data(overall):
    """On the book's data the hierarchical model's MSE is below 0.6 x no pooling's, and EB's too."""
    assert overall.loc[PP, "mse"] < 0.6 * overall.loc[NP, "mse"]
    assert overall.loc[EB, "mse"] < 0.6 * overall.loc[NP, "mse"]


def test_hbm_coverage_nominal_on_book_data(ch, overall):
    """The HBM's 95% intervals cover within 3 binomial MC errors of 95% (sqrt(.95 * .05 / 500) = 0.0097)."""
    n = ch.value("len(creators)")
    mc = np.sqrt(0.95 * 0.05 / n)
    assert ch.value("coverage_mc") == pytest.approx(mc)
    assert abs(overall.loc[PP, "coverage"] - 0.95) <= K * mc
    assert abs(overall.loc[NP, "coverage"] - 0.95) <= K * mc


def test_complete_pooling_undercovers(overall):
    """Complete pooling's 'intervals' cover far below nominal (< 50%), while being the narrowest."""
    assert overall.loc[CP, "coverage"] < 0.5
    assert overall.loc[CP, "mean_width"] < overall.loc[PP, "mean_width"]


def test_key_table_quotes_reference_values(ch):
    """The quoted reference values are the original study's, shown next to ours."""
    ref = ch.value("REFERENCE")
    assert list(ref["mse"]) == [0.140, 0.160, 0.055]
    assert list(ref["coverage"]) == [0.95, 0.73, 0.95]
    assert list(ref["mean_width"]) == [1.25, 1.26, 0.72]
    table = ch.value("key_table")
    assert table.loc[PP, "MSE (study)"] == 0.055
    assert np.isnan(table.loc[EB, "MSE (study)"])


def test_prose_numbers_are_the_computed_ones(ch, overall):
    """The prose's key numbers render the computed values."""
    assert f"The hierarchical model's MSE is {overall.loc[PP, 'mse']:.3f}" in ch.prose
    assert "The data are simulated, from exactly the hierarchical model" in ch.prose
    assert "no simulation truth" not in ch.prose
    assert "It holds 500 creators in 5 genres, 100 creators each." in ch.prose
    assert ch.value("N_REPS") == 50


def test_replications_hbm_beats_no_pooling(reps):
    """Across replications the mean HBM MSE (+3 MC errors) is below 0.6 x no pooling's (-3 MC errors), and in >= 90% of data sets."""
    summary, study = reps
    assert summary.loc[PP, "mse"] + K * summary.loc[PP, "mse_mc"] < 0.6 * (summary.loc[NP, "mse"] - K * summary.loc[NP, "mse_mc"])
    wide = study["metrics"][study["metrics"]["bin"] == "all"].pivot(index="rep", columns="method", values="mse")
    assert (wide[PP] < 0.6 * wide[NP]).mean() >= 0.9


def test_replications_hbm_coverage_nominal(reps):
    """Across replications the HBM's mean coverage is within 3 MC errors of 0.95; EB's too."""
    summary, _ = reps
    for method in (PP, EB):
        assert abs(summary.loc[method, "coverage"] - 0.95) <= K * summary.loc[method, "coverage_mc"], method


def test_replications_complete_pooling_undercovers(reps):
    """Across replications complete pooling covers under 50% of the creators' true effects."""
    summary, _ = reps
    assert summary.loc[CP, "coverage"] + K * summary.loc[CP, "coverage_mc"] < 0.5


def test_replications_count_and_sampler(ch, reps):
    """At least 30 replications ran, each with one fit of the once-compiled model, with R-hat below 1.05."""
    _, study = reps
    n = ch.value("N_REPS")
    assert n >= 30 and study["sampler"].shape[0] == n and study["metrics"]["rep"].nunique() == n
    assert study["sampler"]["max R-hat"].max() < 1.05


def test_hyperparameters_recovered(ch):
    """sigma_creator's 95% interval contains the truth on the book's data, and across replications in 85-100% of data sets."""
    lo, hi, true = ch.value("(sc_lo, sc_hi, true_sc)")
    assert lo <= true <= hi
    cover = ch.value("hyper_cover")
    assert 0.85 <= cover["sigma_creator"] <= 1.0
    assert 0.85 <= cover["sigma_genre"] <= 1.0


def test_shrinkage_falls_with_sample_size(ch):
    """Small experiments are shrunk more than large ones (posterior mean shrinkage by size bin is decreasing)."""
    by_bin = ch.value("shrink_by_bin")
    assert by_bin["n < 100"] > by_bin["100-500"] > by_bin["> 500"]
    assert by_bin["n < 100"] > 0.5 and by_bin["> 500"] < 0.2


def _reader_copy(tmp_path):
    """A copy of the project's data and this chapter, in a fresh root."""
    shutil.copytree(ROOT / "data", tmp_path / "data")
    (tmp_path / "chapters").mkdir()
    shutil.copy(ROOT / CHAPTER, tmp_path / CHAPTER)
    return tmp_path / "data" / "creator_experiments.csv"


def test_book_data_fits_pass_so_no_unreliable_note(ch):
    """On the book's data both fits the prose reads pass, so no sentence calls their results unreliable."""
    assert ch.value("bambi_checks.ok") and ch.value("pymc_checks.ok")
    assert "not reliable here" not in ch.prose


def test_posterior_predictive_check(ch):
    """The posterior predictive check has each genre's spread and both extremes, and the summary quotes its verdict."""
    from hbm.book.prose.common import ppc_verdict

    table = ch.value("creator_ppc_table")
    assert len(table) == ch.value("len(per_genre)") + 2
    verdict = ppc_verdict(table["p"], reproduces="the spread and the tails of the effects it was fitted to")
    assert ch.prose.count(verdict.strip()) >= 2  # in the section and in the summary


def test_no_development_notes_or_uncited_original_study(root):
    """No note about the code's development, no make bench in the narrative before the Reproduce note, no 'original study'."""
    text = (root / CHAPTER).read_text(encoding="utf-8")
    narrative = text.split("*Reproduce.*", 1)[0]
    for phrase in ("While we developed", "raises a `TypeError`", "original study", "make bench", "when we tried it"):
        assert phrase not in narrative, phrase


def test_bench_sentence_names_the_measured_data(ch):
    """The benchmark sentence says what the record was measured on, not the data in hand."""
    if ch.value("bench") is None:
        assert "No benchmark has been recorded for this copy of the book" in ch.prose
        return
    assert "The record was measured on 500 creators in 5 genres." in ch.prose
    assert "No benchmark has been recorded" not in ch.prose


@pytest.mark.parametrize("name", list(VARIANTS))
def test_own_data_sentences(variant, name):
    """On each own-data variant the chapter runs; counts, genres and verdicts in its prose match its data."""
    executed = variant(CHAPTER, name, VARIANTS[name])
    shown = executed.prose
    creators, per_genre = executed.value("creators"), executed.value("per_genre")
    assert f"It holds {len(creators):,} creator" in shown and f"in {len(per_genre)} genre" in shown
    if len(per_genre) > 1:
        sizes = (f"{per_genre.min()} creators each" if per_genre.min() == per_genre.max()
                 else f"from {per_genre.min()} to {per_genre.max()} creators per genre")
        assert sizes in shown
    assert "we know every creator's true effect" not in shown
    assert "This file comes with no simulation truth" in shown
    assert "This file has no simulation truth, so the methods cannot be scored" in shown
    assert "The data are simulated" not in shown and "The hierarchical model's MSE is" not in shown
    assert "genre means are well recovered" not in shown
    n_genres = len(per_genre)
    said = "not identified by the data at all" if n_genres == 1 else "identified only loosely"
    assert said in shown
    assert "0 to 0" not in shown
    # Genres named in the genre figure's data are the file's genres, paired by label.
    genres = set(executed.value("genres_long")["genre"])
    assert genres == set(creators["genre"].astype(str))
    # The copy has no bench/ folder: the chapter says no benchmark was recorded, and names no creator count for it.
    assert "No benchmark has been recorded" in shown
    outputs = str([c.get("outputs") for c in executed.notebook.cells])
    assert "No simulation truth is available" in outputs
    if not (executed.value("bambi_checks.ok") and executed.value("pymc_checks.ok")):
        assert "not reliable here" in shown


def test_bad_input_is_a_clear_data_error(tmp_path):
    """A CSV with a non-positive standard error stops at the data cell with a DataError naming file, column and line."""
    csv = _reader_copy(tmp_path)
    lines = csv.read_text(encoding="utf-8").splitlines()
    lines[3] = lines[3].rsplit(",", 1)[0] + ",-0.1"
    csv.write_text("\n".join(lines) + "\n", encoding="utf-8")
    # Only the cells up to the data cell: the error must come from the loader, before any model.
    text = (tmp_path / CHAPTER).read_text(encoding="utf-8")
    head = text.split("## Two baselines", 1)[0]
    (tmp_path / CHAPTER).write_text(head.split("The file `data/creator_experiments.csv`", 1)[0], encoding="utf-8")
    executed = execute_chapter(tmp_path / CHAPTER, root=tmp_path)
    assert executed.error is not None
    assert "DataError" in executed.error and "creator_experiments.csv" in executed.error
    assert "'se'" in executed.error and "line 4" in executed.error


def test_pymc_model_cell_runs_alone(tmp_path):
    """The chapter's PyMC model cell runs in a fresh kernel with nothing but hbm installed."""
    _, cells, _ = read_chapter(ROOT / CHAPTER)
    source = next(c.source for c in cells if "nutpie.compile_pymc_model" in c.source)
    shutil.copytree(ROOT / "data", tmp_path / "data")
    qmd = tmp_path / "alone.qmd"
    qmd.write_text(f"```{{python}}\n{source}\n```\n", encoding="utf-8")
    executed = execute_chapter(qmd, root=tmp_path)
    assert executed.error is None, executed.error


def test_example_truth_marks_sit_on_their_creators(ch):
    """In the examples figure each creator's truth mark is that creator's true effect (paired by id)."""
    truth = {c["creator_id"]: c["true_effect"] for c in ch.value("truth")["creators"]}
    few_truth = ch.value("few_truth")
    assert len(few_truth) == 6
    for _, row in few_truth.iterrows():
        assert row["estimate"] == pytest.approx(truth[row["creator_id"]]), row["creator_id"]


def test_bambi_priors_are_the_stated_ones():
    """The Bambi model's priors (model.components) are the numbers the text states: μ ~ N(0, 1), σ_G and τ ~ HalfNormal(1), centred."""
    import os

    _, cells, _ = read_chapter(ROOT / CHAPTER)
    source = next(c.source for c in cells if "bmb.Model(" in c.source)
    namespace = {}
    cwd = Path.cwd()
    try:
        os.chdir(ROOT)
        exec(source.split("bambi_remedied = ")[0], namespace)
        model = namespace["bambi_model"]()  # the first fit's, centered
        noncentered = namespace["bambi_model"](noncentered=True)  # the remedy's alternative
    finally:
        os.chdir(cwd)
    for m, nc in ((model, False), (noncentered, True)):
        assert [t.prior.noncentered for t in m.parameters["mu"].group_specific_terms.values()] == [nc, nc]
    terms = model.parameters["mu"].group_specific_terms
    genre, creator = terms["1|genre"].prior, terms["1|creator_id"].prior
    assert genre.name == "Normal" and creator.name == "Normal"
    assert genre.args["mu"].name == "Normal" and genre.args["mu"].args == {"mu": 0, "sigma": 1}
    assert genre.args["sigma"].name == "HalfNormal" and genre.args["sigma"].args == {"sigma": 1}
    assert creator.args["mu"] == 0
    assert creator.args["sigma"].name == "HalfNormal" and creator.args["sigma"].args == {"sigma": 1}
    text = (ROOT / CHAPTER).read_text(encoding="utf-8")
    assert r"\mu &\sim N(0, 1^2), \qquad \sigma_G \sim N^+(0, 1^2), \qquad \tau \sim N^+(0, 1^2)" in text


def test_pymc_priors_are_the_stated_ones():
    """build_model's priors are the stated numbers: its log density at a point equals N(0, 1) and HalfNormal(scale) by hand."""
    import pandas as pd
    from scipy import stats

    from hbm.models.creators import build_model

    df = pd.DataFrame({"creator_id": ["a", "b"], "genre": ["x", "y"], "effect": [0.1, 0.2], "se": [0.3, 0.4]})
    for scale in (1.0, 4.0):
        model = build_model(df, "marginal", genre_prior_scale=scale)
        point = {"mu_global": 0.3, "sigma_genre_log__": np.log(0.5), "sigma_creator_log__": np.log(0.4),
                 "mu_genre": np.array([0.1, 0.6])}
        expected = (stats.norm.logpdf(0.3, 0, 1) + stats.halfnorm.logpdf(0.5, scale=scale) + np.log(0.5)
                    + stats.halfnorm.logpdf(0.4) + np.log(0.4) + stats.norm.logpdf(point["mu_genre"], 0.3, 0.5).sum()
                    + stats.norm.logpdf([0.1, 0.2], point["mu_genre"], np.sqrt(np.array([0.3, 0.4]) ** 2 + 0.16)).sum())
        assert float(model.compile_logp()(point)) == pytest.approx(expected, rel=1e-8)


def test_study_numbers_explained_by_quadrature(ch):
    """Under the study's design, genre mean ± 1.96 s_i covers 0.71 and is 1.20 wide (its complete pooling); a calibrated hierarchical interval is 0.82 wide."""
    assert ch.value("own_se_coverage") == pytest.approx(0.71, abs=0.01)
    assert ch.value("own_se_width") == pytest.approx(1.20, abs=0.01)
    assert ch.value("hier_width") == pytest.approx(0.82, abs=0.01)
    assert ch.value("design_np_mse") == pytest.approx(0.140, abs=0.001)
    assert ch.value("study_width_coverage") < 0.95
    # On the book's data the same interval covers within 3 binomial MC errors of the design's value.
    mc = np.sqrt(0.71 * 0.29 / ch.value("len(creators)"))
    assert abs(ch.value("own_se_data_coverage") - ch.value("own_se_coverage")) < K * mc
    assert "the study this chapter replicates" in ch.prose.lower()
    assert "cannot say why" not in ch.prose


def test_loo_prefers_partial_pooling_and_flags_no_pooling(ch):
    """PSIS-LOO prefers partial to complete pooling; no pooling has many Pareto k > 0.7, and its exact LOO elpd (the prior predictive's) is below partial pooling's."""
    from scipy import stats

    comparison = ch.value("comparison")
    assert comparison.index[0] == PP and list(comparison.index) == [PP, CP]
    assert ch.value("bad_k")["No pooling"] > 100
    assert ch.value("bad_k")["Partial pooling"] == 0 and ch.value("bad_k")["Complete pooling"] < 10
    y, s = ch.value("obs_effect"), ch.value("obs_se")
    exact = ch.value("exact_vs_psis")
    assert exact["no pooling, exact elpd"] == pytest.approx(stats.norm.logpdf(y, 0, np.sqrt(1 + s**2)).sum())
    assert exact["partial minus no pooling (exact)"] > 3 * exact["standard error of the difference"]


def test_decisions_probabilities(ch):
    """P(effect > 0) under no pooling is Φ(y/s) exactly; under the hierarchical model a share of draws; ranks run 1..N."""
    from scipy import stats

    d = ch.value("decisions").sort_index()
    y, s = ch.value("obs_effect"), ch.value("obs_se")
    np.testing.assert_allclose(d["p_positive_no_pooling"], stats.norm.cdf(y / s))
    assert d["p_positive"].between(0, 1).all()
    assert sorted(d["rank"]) == list(range(1, len(d) + 1))


def test_prior_sensitivity_moves_sigma_g_not_tau(ch):
    """A wider prior on σ_G raises its posterior mean; τ stays within 0.02 across prior scales."""
    t = ch.value("prior_table")
    assert t.loc[0.25, "σ_G mean"] < t.loc[1.0, "σ_G mean"] < t.loc[4.0, "σ_G mean"]
    assert t["τ mean"].max() - t["τ mean"].min() < 0.02


def test_copied_code_runs_and_reproduces_the_estimates(ch, tmp_path):
    """The visible code, run alone in an empty folder (fast mode), exits 0; exact quantities match to 1e-9, MCMC estimates within 0.05."""
    from booktools import copyscript

    exact = ["width_no_pool", "width_complete", "eb_fit.tau", "own_se_coverage", "own_se_width", "hier_width",
             "design_np_mse", "float(exact_vs_psis['no pooling, exact elpd'])", "own_se_data_coverage"]
    mcmc = ["float(hbm_est['estimate'].mean())", "float(sigma_creator_draws.mean())",
            "float(bambi_est['estimate'].mean())", "float(overall.loc['Partial pooling', 'mse'])"]
    run = copyscript.run(ROOT / CHAPTER, keys=exact + mcmc, folder=tmp_path / "copy")
    assert run.ok, run.tail()
    for key in exact:
        assert run.keys[key] == pytest.approx(float(ch.value(key)), rel=1e-9), key
    for key in mcmc:  # fast mode: 2 chains of 150 draws
        assert abs(run.keys[key] - float(ch.value(key))) < 0.05, key
