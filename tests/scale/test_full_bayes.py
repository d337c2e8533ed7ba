"""The full Bayes job (hbm.scale.jobs.run_full_bayes) on the shared small log, and its agreement with chapter 3's fit.

The expensive fits run once per session (fixtures below); the 5,000-user agreement and the
speed at 10 million users are measured by bench/bench_eb_scaling.py.
"""

import numpy as np
import pandas as pd
import pytest
from scipy import optimize, special

from hbm import scale
from hbm.book import simulate
from hbm.book.data import GENRES
from hbm.scale import histograms, mixture
from hbm.scale import log as log_mod

from .helpers import K, N_USERS, SEED


def test_histograms_come_from_the_count_pass(full_bayes):
    """The job's regional histograms equal the EB job's, and its distinct pairs those of the simulated counts."""
    log, run, direct, eb_run = full_bayes
    for name in log.regions:
        got, want = run.histograms.stats.region(name), eb_run.stats.region(name)
        assert np.array_equal(got.count_hist, want.count_hist) and np.array_equal(got.total_hist, want.total_hist)
    want = histograms.count_pairs(direct[list(GENRES)].to_numpy(), direct["region"].to_numpy())
    assert np.array_equal(run.histograms.pairs, want)
    assert run.n_users == N_USERS


def test_fit_passes_its_diagnostics(full_bayes):
    """The nutpie fit on the histograms has no divergences, R-hat below 1.01 and enough effective draws."""
    _, run, _, _ = full_bayes
    assert run.fit.check.ok, run.fit.check.failures
    assert run.fit.alpha.shape == (2000, len(simulate.REGIONS), K)  # 4 chains x 500 draws


def test_fit_recovers_the_simulation(full_bayes):
    """With 6,000 users a region each kappa_r's posterior mean is within 15% of the truth and the EB estimate within 5% of it."""
    log, run, _, eb_run = full_bayes
    kappa = run.fit.alpha.sum(axis=2).mean(axis=0)
    assert np.all(np.abs(kappa / log.true_alpha().sum(axis=1) - 1) < 0.15)
    assert np.all(np.abs(kappa / eb_run.priors.alpha.sum(axis=1) - 1) < 0.05)


def test_every_user_gets_the_pair_tables_posterior(full_bayes):
    """Every user is written once, with means and intervals of every genre looked up from their (region, genre, n, x)."""
    _, run, direct, _ = full_bayes
    post = scale.read_posteriors(run.posterior_path)
    assert np.array_equal(post["user_id"].to_numpy(), direct["user_id"].to_numpy())
    x = direct[list(GENRES)].to_numpy()
    assert np.array_equal(post["n"].to_numpy(), x.sum(axis=1))
    for k, g in enumerate(GENRES):
        keys = histograms.encode_pairs(direct["region"].to_numpy(), k, x.sum(axis=1), x[:, k], K)
        row = run.pairs.locate(keys)
        for col, values in (("mean", run.pairs.mean), ("lower", run.pairs.lower), ("upper", run.pairs.upper)):
            assert np.array_equal(post[f"{g}_{col}"].to_numpy(), values[row])
        assert np.all((post[f"{g}_lower"] < post[f"{g}_mean"]) & (post[f"{g}_mean"] < post[f"{g}_upper"]))


def test_user_posteriors_equal_brute_force(full_bayes):
    """For five users the written mean is the average over all draws of the conjugate mean (to 1e-12) and the
    interval solves the mixture CDF over the job's thinned draws (brentq, to 1e-8)."""
    _, run, direct, _ = full_bayes
    post = scale.read_posteriors(run.posterior_path).set_index("user_id")
    thin = mixture.thin_draws(run.fit.alpha, run.pairs.interval_draws)
    for uid in (0, 7, 1234, 20_000, N_USERS - 1):
        r = int(direct.loc[uid, "region"])
        x = direct.loc[uid, list(GENRES)].to_numpy(np.int64)
        n = x.sum()
        for k, g in enumerate(GENRES):
            mean = np.mean((run.fit.alpha[:, r, k] + x[k]) / (run.fit.alpha[:, r].sum(axis=1) + n))
            assert post.loc[uid, f"{g}_mean"] == pytest.approx(mean, abs=1e-12)
            a = thin[:, r, k] + x[k]
            b = thin[:, r].sum(axis=1) + n - a
            for q, col in ((0.025, "lower"), (0.975, "upper")):
                root = optimize.brentq(lambda t: special.betainc(a, b, t).mean() - q, 0, 1, xtol=1e-14)
                assert post.loc[uid, f"{g}_{col}"] == pytest.approx(root, abs=1e-8)


def test_run_reports_costs(full_bayes):
    """The run reports every step's time, client and worker peak memory and the counts' size."""
    _, run, _, _ = full_bayes
    assert set(run.seconds) == {"aggregate", "histograms", "fit", "compile", "pairs", "posteriors", "total"}
    assert run.seconds["total"] >= run.seconds["fit"] >= run.seconds["compile"] >= 0
    assert run.peak_rss == run.peak_rss_client + run.peak_rss_workers > 0
    assert run.counts_bytes == N_USERS * (4 * K + 1)


# --------------------------------------------------------------------------- #
# Agreement with chapter 3's per-user fit
# --------------------------------------------------------------------------- #
@pytest.fixture(scope="session")
def both_fits():
    """Chapter 3's per-user three-level fit and the histogram fit, on the same 400 simulated users (seed 3)."""
    from hbm.book import music

    _, weights, alpha = log_mod._spec(simulate.REGION_PROFILES, simulate.REGION_KAPPA, GENRES)
    uid, reg, x = log_mod.simulate_chunk(0, 400, np.random.default_rng(3), alpha, weights, 1, 100)
    plays = pd.DataFrame({"user_id": [f"u{i}" for i in uid],
                          "region": pd.Categorical.from_codes(reg, categories=list(simulate.REGIONS))})
    for k, g in enumerate(GENRES):
        plays[g] = x[:, k]
    chapter = music.fit_three_level(plays, random_seed=SEED)
    frame = pd.DataFrame({"region": reg, **{g: x[:, k] for k, g in enumerate(GENRES)}})
    here = scale.fit_full_bayes(scale.region_suffstats(frame, simulate.REGIONS, GENRES), GENRES, random_seed=SEED)
    return chapter, here, x, reg


def test_agrees_with_chapter_3_fit_within_monte_carlo_error(both_fits):
    """Posterior means of log kappa_r and p_r from histograms and from the per-user model differ by under 4 Monte Carlo SEs."""
    import arviz as az

    chapter, here, _, _ = both_fits
    for var in ("log_kappa", "p"):
        a = az.summary(chapter, var_names=[var], kind="all", round_to="none")
        b = az.summary(here.fit, var_names=[var], kind="all", round_to="none")
        b = b.loc[a.index]  # paired by label: the chapter's model orders regions by first appearance
        gap = np.abs(a["mean"].to_numpy() - b["mean"].to_numpy())
        se = np.hypot(a["mcse_mean"].to_numpy(), b["mcse_mean"].to_numpy())
        assert np.all(gap < 4 * se + 1e-12), (var, gap / se)
        assert np.allclose(a["sd"].to_numpy(), b["sd"].to_numpy(), rtol=0.15)


def test_user_posteriors_agree_with_chapter_3(both_fits):
    """Users' posterior means from the pair table equal hbm.book.music.user_posteriors' on the chapter's draws to 0.01."""
    from hbm.book import music

    chapter, here, x, reg = both_fits
    table = mixture.pair_posteriors(histograms.count_pairs(x, reg), here.alpha)
    keys = histograms.encode_pairs(reg[:, None], np.arange(K)[None, :], x.sum(axis=1)[:, None], x, K)
    rows = table.locate(keys.ravel()).reshape(keys.shape)
    # The chapter's regions are in order of first appearance; reg codes follow simulate.REGIONS.
    order = [str(r) for r in chapter["posterior"]["region"].values]
    alpha = music.alpha_draws(chapter)[:, [order.index(r) for r in simulate.REGIONS], :]
    ref = music.user_posteriors(alpha, x, reg, rng=np.random.default_rng(SEED))
    assert np.max(np.abs(table.mean[rows] - ref.mean)) < 0.01
    assert np.max(np.abs(table.upper[rows] - ref.upper)) < 0.03
