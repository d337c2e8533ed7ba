"""chapters/empirical-bayes.qmd: its computed claims, on the book's data and on a reader's data."""

import shutil
from pathlib import Path

import numpy as np
import pytest

from booktools import checks as quarto
from hbm import eb
from hbm.book.data import GENRES, counts_matrix, load_eight_schools, load_music
from booktools.execute import execute_chapter
from tests.variants import VARIANTS

CHAPTER = "chapters/empirical-bayes.qmd"
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def ch(chapter):
    """The chapter, executed once (as Quarto would) with its kernel kept for queries."""
    return chapter(CHAPTER)


def test_static_checks():
    """Cross-references (to this chapter and the regional one), citations, figure options and standalone cells are valid."""
    assert quarto.check_all(ROOT, files=[CHAPTER, "chapters/music.qmd"]) == []


def test_inline_text_has_no_quotes(ch):
    """Text-valued inline expressions render without the quotes IPython puts around a str."""
    quoted = {e: t for e, t in ch.inline.items() if t[:1] and t[:1] in "'\""}
    assert not quoted


def test_priors_are_hbm_eb_fits(ch):
    """The chapter's regional priors are hbm.eb.fit_dirichlet_multinomial of each region's users, exactly."""
    plays = load_music(ROOT / "data/music_plays.csv")
    x = counts_matrix(plays)
    priors = ch.value("priors")
    for region in plays["region"].cat.categories:
        fit = eb.fit_dirichlet_multinomial(x[(plays["region"] == region).to_numpy()])
        assert priors.loc[region, "κ"] == pytest.approx(fit.concentration, rel=1e-12)
        assert priors.loc[region, "users"] == 30
    assert priors.loc["All users", "users"] == len(plays)


def test_pop_beta_priors_match_dirichlet_means(ch):
    """The beta-binomial Pop priors have means within 0.02 of the Dirichlet fits' Pop means."""
    priors = ch.value("priors")
    beta_mean = priors["Pop shape a"] / (priors["Pop shape a"] + priors["Pop shape b"])
    assert np.max(np.abs(beta_mean - priors["Pop"])) < 0.02


def test_eb_and_full_bayes_means_agree(ch):
    """On the 120 users, EB and full Bayes posterior means differ by < 0.02 for every user and genre, < 0.005 on average."""
    gap = ch.value("mean_gap")
    assert gap.shape == (120, len(GENRES))
    assert gap.max() < 0.02
    assert gap.mean() < 0.005


def test_full_bayes_diagnostics_pass(ch):
    """The full Bayes fit passes every sampler check (no divergences, R-hat <= 1.01, ESS >= 400)."""
    assert ch.value("full_checks.ok")
    assert "nutpie" in ch.value("full_checks.sampler")


def test_eb_intervals_narrower_for_light_users(ch):
    """EB Pop intervals are narrower than full Bayes for light users (median ratio < 0.98) and nearly equal for heavy ones (> 0.96)."""
    light, heavy = ch.value("ratio_light"), ch.value("ratio_heavy")
    assert light < 0.98
    assert heavy > 0.96
    assert light < heavy
    users = ch.value("users")
    assert (users["width_ratio"] < 1.05).all()


def test_eb_kappa_inside_full_bayes_intervals(ch):
    """Every regional EB concentration lies inside the full Bayes 95% interval of kappa."""
    table = ch.value("kappa_compare")
    assert table["EB estimate"].between(table["FB 2.5%"], table["FB 97.5%"]).all()
    assert "Every region's estimated concentration lies inside its full Bayes 95% interval" in ch.prose
    assert "lies outside its full Bayes" not in ch.prose and "lie outside their full Bayes" not in ch.prose


def test_eight_schools_eb_collapses(ch):
    """Eight schools: the EB estimate of tau is exactly 0, so every school gets mu_hat with sd 0."""
    schools = load_eight_schools(ROOT / "data/eight_schools.csv")
    fit = eb.fit_normal_normal(schools["y"], schools["se"])
    assert ch.value("schools_eb.tau") == 0.0 == fit.tau
    assert ch.value("eb_sd_max") == 0.0
    assert ch.value("float(np.ptp(schools_eb.posterior_mean))") == 0.0
    assert ch.value("pooled")
    assert "says every school has the same effect" in ch.prose
    assert "complete pooling, and 95% intervals of zero width" in ch.prose
    assert "is certain that the effect is the same in all 8 schools" in ch.prose
    assert "shrinks each school part of the way" not in ch.prose


def test_eight_schools_full_bayes_keeps_tau_uncertain(ch):
    """Full Bayes puts > 15% probability on tau > 5, its 95% upper bound above 8, and school sds above 4 points."""
    assert ch.value("tau_threshold") == 5.0
    assert ch.value("p_tau_above") > 0.15
    assert ch.value("tau_hi") > 8
    assert ch.value("tau_lo") < 1
    assert ch.value("fb_sd.min()") > 4


def test_scale_run_recovers_concentration(ch):
    """The 50,000-user Dask run recovers every regional kappa within 10% and every Pop profile within 0.01."""
    recovered = ch.value("recovered")
    assert (recovered["ratio"] - 1).abs().max() < 0.10
    run = ch.value("small_run")
    log = ch.value("small_log")
    true_p = log.true_alpha() / log.true_alpha().sum(axis=1, keepdims=True)
    assert np.max(np.abs(run.priors.alpha[:, 0] / run.priors.alpha.sum(axis=1) - true_p[:, 0])) < 0.01
    assert run.n_users == 50_000


def test_scale_run_outputs_every_user(ch):
    """The posteriors of all 50,000 users were written, with lower < mean < upper for the Pop share."""
    post = ch.value("small_posteriors")
    assert len(post) == 50_000 and post["user_id"].is_unique
    assert ((post["pop_lower"] < post["pop_mean"]) & (post["pop_mean"] < post["pop_upper"])).all()


def test_scale_fit_memory_is_small(ch):
    """The EB fit reads under 64 KiB of statistics and allocates under 2 MiB, for 50,000 users."""
    assert ch.value("small_run.stats.nbytes") < 64 * 1024
    assert ch.value("small_run.fit_peak_bytes") < 2 * 1024 * 1024


def test_bench_figures_quoted_with_date_and_machine(ch):
    """The prose quotes the recorded benchmark (10M users, date, machine, single-node engine) when the record exists."""
    from hbm.book.scale import bench_summary

    csv = ROOT / "bench/results/eb_scaling.csv"
    shown = ch.prose
    if not csv.exists():
        assert "No benchmark has been recorded" in shown
        return
    b = bench_summary(csv)
    assert ch.value("bench") == b
    sentence = shown[shown.index(f"Measured on {b['measured']} on {b['machine']}"):]
    sentence = sentence[: sentence.index("users a second")]
    assert f"{b['users']:,} users" in sentence
    assert f"{b['total_s']:.1f} s" in sentence
    assert b["single_node_engine"] in shown


def test_recorded_bench_covers_both_sizes_and_matches_the_closed_form():
    """The record has the 1M and 10M runs, and its posteriors matched the NumPy closed form to 1e-9."""
    from hbm.book.scale import bench_summary

    csv = ROOT / "bench/results/eb_scaling.csv"
    if not csv.exists():
        pytest.skip("bench/results/eb_scaling.csv is absent (run `make bench`)")
    b = bench_summary(csv)
    assert b["users"] == 10_000_000 and b["small_users"] == 1_000_000
    assert b["max_error_vs_closed_form"] < 1e-9


def test_recorded_bench_fit_memory_tracks_suffstats():
    """In the recorded benchmark the EB fit's peak memory stays within 64x the statistics and grows < 1.5x from 1M to 10M users."""
    import pandas as pd

    csv = ROOT / "bench/results/eb_scaling.csv"
    if not csv.exists():
        pytest.skip("bench/results/eb_scaling.csv is absent (run `make bench`)")
    bench = pd.read_csv(csv)
    eb_rows = bench[bench["method"].str.startswith("Empirical Bayes")].set_index("users").sort_index()
    assert len(eb_rows) >= 2 and eb_rows.index.max() >= 10 * eb_rows.index.min()
    assert (eb_rows["fit peak KiB"] <= 64 * eb_rows["suffstats KiB"]).all()
    assert eb_rows["fit peak KiB"].iloc[-1] < 1.5 * eb_rows["fit peak KiB"].iloc[0]
    assert (eb_rows["max kappa error"] < 0.05).all()


def test_truth_sentence_on_book_data(ch):
    """On the book's data the truth comparison is made (the truth file matches the CSV), with the worst region by label."""
    assert ch.value("simulated")
    worst = ch.value("worst_region")
    assert "They are simulated from the model above" in ch.prose
    assert "They are a reader's own file" not in ch.prose
    assert "With no generating values to check the estimates against" not in ch.prose
    assert f"the estimated concentrations are off by up to {100 * ch.value('kappa_off.max()'):.0f}%, in {worst}" in ch.prose


def test_full_bayes_fit_passes_so_no_unreliable_note(ch):
    """On the book's data the full Bayes fit passes, so no sentence calls its numbers unreliable."""
    assert ch.value("full_checks.ok")
    assert "not reliable here" not in ch.prose
    assert "The fit passed every sampler check." in ch.prose
    assert "The fit did not pass every sampler check" not in ch.prose
    assert "a rough comparison" not in ch.prose


def test_benchmark_verdicts_on_book_data(ch):
    """With the recorded benchmark, its figures are quoted and each recorded verdict is shown in one case only."""
    shown = ch.prose
    if ch.value("bench") is None:
        assert "No benchmark has been recorded" in shown and "Measured on" not in shown
        return
    assert "No benchmark has been recorded" not in shown
    faster = "times faster, because it counts into dense per-user arrays" in shown
    slower = "the price of being able to add machines" in shown
    assert faster != slower and faster == (ch.value("count_speedup") > 1)
    job = {"pass": "The fit passed its sampler diagnostics", None: "The record holds no diagnostics of the fit"}
    expected = job.get(ch.value("fb_job_diagnostics"), "The fit failed its sampler diagnostics")
    assert expected in shown
    assert sum(s in shown for s in [*job.values(), "The fit failed its sampler diagnostics"]) == 1


def test_no_claim_of_the_music_chapters_settings(root):
    """The chapter does not claim that its refit uses the music chapter's settings and seed."""
    assert "regional chapter's settings" not in (root / CHAPTER).read_text(encoding="utf-8")


def test_predictive_check(ch):
    """The plug-in predictive check has one spread per region and genre; the count of outer-tail spreads and the verdict match it."""
    from scipy import stats

    table = ch.value("eb_ppc")
    assert len(table) == len(ch.value("regions")) * len(GENRES)
    outer = int(((table["p"] < 0.025) | (table["p"] > 0.975)).sum())
    assert ch.value("n_outer") == outer
    chance = stats.binom.sf(outer - 1, len(table), 0.05)
    assert ch.value("ppc_misfit") == (outer > 0 and chance < 0.05)
    verdict = "do not reproduce" if ch.value("ppc_misfit") else "finds no clear misfit"
    assert "its predictive check finds" in ch.prose and verdict in ch.prose


def test_shown_dm_fit_matches_the_library(ch):
    """fit_dm (the code the page shows) gives all users' alpha-hat within 1e-6 of hbm.eb's, and its likelihood is hbm.eb's."""
    from hbm.dirichlet_multinomial import dm_loglik, fit_dm

    x = counts_matrix(load_music(ROOT / "data/music_plays.csv"))
    lib = eb.fit_dirichlet_multinomial(x, empty="zero")
    assert np.max(np.abs(fit_dm(x) - lib.alpha)) < 1e-6 * lib.alpha.max()
    assert ch.value("largest_gap") < 1e-6
    assert dm_loglik(lib.alpha, x) == pytest.approx(eb.dirichlet_multinomial_loglik(lib.alpha, x), rel=1e-12)


def test_shown_normal_normal_fit_matches_the_library(ch):
    """fit_nn (the code the page shows) gives tau-hat 0 and the library's mu-hat on the eight schools, and tau-hat within 1e-6 on tripled estimates."""
    from hbm.normal_normal import fit_nn

    s = load_eight_schools(ROOT / "data/eight_schools.csv")
    assert ch.value("tau_hat") == 0.0
    assert ch.value("mu_hat") == pytest.approx(ch.value("schools_eb.mu"), rel=1e-12)
    mu3, tau3 = fit_nn(3 * s["y"], s["se"])
    lib = eb.fit_normal_normal(3 * s["y"], s["se"])
    assert tau3 == pytest.approx(lib.tau, rel=1e-6) and mu3 == pytest.approx(lib.mu, rel=1e-6)


def test_stated_priors_are_the_fitted_ones(ch):
    """The model's priors are the numbers the text states (log c ~ N(3, 1), log kappa ~ N(3, 1.5)), which are hbm.scale.model's; the schools' are N(0, 50^2) and Half-Cauchy(5)."""
    from hbm.scale import model

    fitted = ch.value("fitted_priors")
    assert fitted["c"] == [3.0, 1.0] == list(model.C_PRIOR)
    assert fitted["log_kappa"] == [3.0, 1.5] == list(model.KAPPA_PRIOR)
    assert ch.value("mu_prior_sd") == 50.0 and ch.value("tau_prior_scale") == 5.0
    text = (ROOT / CHAPTER).read_text(encoding="utf-8")
    assert "$\\log c \\sim N(3, 1)$" in text and "$\\log \\kappa_r \\sim N(3, 1.5)$" in text
    assert "$\\mu \\sim N(0, 50^2)$" in text and "\\text{Half-Cauchy}(5)$" in text


def test_simulated_log_declares_the_books_generating_values(ch):
    """The generating values written in the scale cell are the music simulation's, and the seed is the book's."""
    from hbm.book.common import SEED
    from hbm.book.simulate import REGION_KAPPA, REGION_PROFILES

    assert ch.value("PROFILES") == REGION_PROFILES
    assert ch.value("KAPPA") == REGION_KAPPA
    assert ch.value("seed") == SEED


def test_copied_code_runs_and_reproduces_the_estimates(ch, tmp_path):
    """The visible code, run alone in an empty folder (fast mode), exits 0; closed forms and ML fits match to 1e-9, MCMC estimates within 0.15 (kappa: 15%)."""
    from booktools import copyscript

    exact = ["float(kappa_hat.max())", "float(kappa_hat.min())", "float(global_prior.concentration)",
             "float(schools_eb.tau)", "float(mu_hat)", "float(tau_hi)", "float(p_tau_above)",
             "float(recovered['ratio'].max())", "float(eb_ppc['observed'].sum())"]
    mcmc = ["float(mean_gap.max())", "float(ratio_light)"]
    relative = ["float(kappa_compare['FB mean'].max())", "float(kappa_compare['FB mean'].min())"]
    run = copyscript.run(ROOT / CHAPTER, keys=exact + mcmc + relative, folder=tmp_path / "copy")
    assert run.ok, run.tail()
    for key in exact:
        assert run.keys[key] == pytest.approx(float(ch.value(key)), rel=1e-9), key
    for key in mcmc:  # fast mode: 2 chains of 150 draws
        assert abs(run.keys[key] - float(ch.value(key))) < 0.15, key
    for key in relative:
        assert run.keys[key] == pytest.approx(float(ch.value(key)), rel=0.15), key


@pytest.mark.parametrize("name", list(VARIANTS))
def test_own_data_sentences(variant, name):
    """On each own-data variant the chapter runs; its counts, region names and verdicts match its data."""
    executed = variant(CHAPTER, name, VARIANTS[name])
    shown = executed.prose
    plays, regions = executed.value("plays"), executed.value("regions")
    upr = executed.value("users_per_region")
    assert f"hold {len(plays):,} user" in shown and f"in {len(regions)} region" in shown
    assert list(upr.index) == list(regions)
    assert "from 30 to 30" not in shown
    assert not executed.value("simulated")
    assert "With no generating values to check the estimates against" in shown
    assert "They are a reader's own file" in shown
    assert "They are simulated from the model above" not in shown
    assert "the estimated concentrations are off by up to" not in shown
    # the variants' copies hold no benchmark record: its figures are not quoted as n/a
    assert "No benchmark has been recorded" in shown
    assert "Measured on" not in shown
    assert "no record of the coverage benchmark" in shown
    kappa_hat = executed.value("kappa_hat")
    boundary = executed.value("{r: bool(region_prior[r].boundary) for r in regions}")
    interior = kappa_hat[[not boundary[r] for r in kappa_hat.index]]
    if len(interior) > 1:
        assert f"Users in {interior.idxmax()} are the most alike" in shown
    for region in (r for r in kappa_hat.index if boundary[r]):
        assert "the estimate sits on the boundary" in shown and region in shown
    assert set(executed.value("kappa_compare").index) == set(regions)
    if not executed.value("full_checks.ok"):
        assert "not reliable here" in shown
