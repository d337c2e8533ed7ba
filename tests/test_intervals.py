"""Tests for hbm.intervals: confidence intervals, the grid posterior, and the coverage runner."""

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from hbm import intervals as iv
from hbm.book.data import GENRES
from hbm.book.simulate import music as simulate_music
from hbm.metrics import inside

SEEDS = [0, 1, 2, 3, 4]
Z975 = stats.norm.ppf(0.975)


def music_frame(rows):
    """A load_music-shaped frame from (region, {genre: count}) rows."""
    records = []
    for i, (region, counts) in enumerate(rows):
        records.append({"user_id": f"u{i}", "region": region, **{g: counts.get(g, 0) for g in GENRES}})
    frame = pd.DataFrame(records)
    frame["region"] = pd.Categorical(frame["region"])
    return frame


def brute_force_posterior(y, n, priors, kappa_prior=iv.KAPPA_PRIOR, p_range=(0.01, 0.9),
                          n_p=1500, n_kappa=200, prob=0.95):
    """Reference: scipy's beta-binomial pmf on a fixed, fine (p, log kappa) grid.

    Returns {prior name: (mean, lower, upper)} of the equal-tailed interval.
    """
    p = np.linspace(*p_range, n_p)
    lk = np.linspace(np.log(0.02), np.log(5e4), n_kappa)
    kappa = np.exp(lk)
    a, b = p[:, None] * kappa, (1 - p)[:, None] * kappa
    loglik = np.zeros((n_p, n_kappa))
    for yi, ni in zip(y, n):
        loglik += stats.betabinom.logpmf(yi, ni, a, b)
    loglik += stats.norm.logpdf(lk, *kappa_prior)[None, :]
    out = {}
    for name, ab in priors.items():
        logpost = loglik + stats.beta.logpdf(p, *ab)[:, None]
        dens = np.trapezoid(np.exp(logpost - logpost.max()), lk, axis=1)
        dens /= np.trapezoid(dens, p)
        cdf = np.concatenate([[0], np.cumsum(0.5 * (dens[1:] + dens[:-1]) * np.diff(p))])
        tail = (1 - prob) / 2
        out[name] = (np.trapezoid(p * dens, p), np.interp(tail, cdf, p), np.interp(1 - tail, cdf, p))
    return out


# --------------------------------------------------------------------------- data helpers


def test_region_counts_drops_users_without_plays():
    """region_counts returns the genre's plays and totals of the region's users with plays only."""
    frame = music_frame([
        ("Europe", {"rock": 2, "pop": 1}), ("Europe", {}), ("Asia", {"rock": 5}), ("Europe", {"rock": 0, "jazz": 0, "pop": 4}),
    ])
    y, n = iv.region_counts(frame, "Europe", "rock")
    assert y.tolist() == [2, 0] and n.tolist() == [3, 4]


def test_region_counts_rejects_unknown_region_and_genre():
    """An unknown region, an unknown genre, or a region without plays raises ValueError."""
    frame = music_frame([("Europe", {"rock": 1}), ("Asia", {})])
    with pytest.raises(ValueError, match="no users in region 'Mars'"):
        iv.region_counts(frame, "Mars")
    with pytest.raises(ValueError, match="unknown genre"):
        iv.region_counts(frame, "Europe", "jazz")
    with pytest.raises(ValueError, match="has any plays"):
        iv.region_counts(frame, "Asia")


def test_other_regions_share_and_prior():
    """The leave-one-out share averages other regions' mean user shares; the prior is Beta(c m, c (1-m))."""
    frame = music_frame([
        ("Europe", {"rock": 9, "pop": 1}),
        ("Asia", {"rock": 1, "pop": 3}), ("Asia", {"rock": 1, "pop": 1}),  # mean share 0.375
        ("Latin America", {"rock": 1, "pop": 9}),  # 0.1
    ])
    share, k = iv.other_regions_share(frame, "Europe", "rock")
    assert k == 2 and share == pytest.approx((0.375 + 0.1) / 2)
    assert iv.regional_prior(0.25, 20) == pytest.approx((5.0, 15.0))
    alone = music_frame([("Europe", {"rock": 1})])
    assert iv.other_regions_share(alone, "Europe") == (None, 0)
    assert iv.regional_prior(None, 20, fallback_mean=1 / len(GENRES)) == pytest.approx((20 / len(GENRES), 20 * (1 - 1 / len(GENRES))))
    with pytest.raises(ValueError, match="no fallback_mean"):
        iv.regional_prior(None, 20)
    with pytest.raises(ValueError):
        iv.regional_prior(1.0)
    a, b = iv.regional_prior(0.01, 20)  # c m would be 0.2: c is raised to 100
    assert (a, b) == pytest.approx((1.0, 99.0))


def test_regional_prior_near_zero_still_runs_in_the_grid():
    """A rare genre (other regions' share 0.02) gives a bounded prior the grid posterior accepts."""
    prior = iv.regional_prior(0.02)
    assert min(prior) >= 1
    post = iv.grid_posterior([0, 1, 0, 2], [10, 20, 5, 40], {"regional": prior}, iv.KAPPA_PRIOR)["regional"]
    assert 0 < float(post.lower) < float(post.upper) < 1


def test_pick_region_prefers_named_region_else_largest():
    """pick_region returns the preferred region if two of its users have plays, else the region with most such users."""
    frame = music_frame([("A", {"rock": 1}), ("A", {"pop": 2}), ("B", {"rock": 1}), ("B", {"rock": 1}),
                         ("B", {"pop": 1}), ("C", {"rock": 3}), ("D", {}), ("D", {}), ("D", {}), ("D", {})])
    assert iv.pick_region(frame, "A") == "A"
    assert iv.pick_region(frame, "Europe") == "B"
    assert iv.pick_region(frame, "C") == "B"  # one user only
    assert iv.pick_region(frame, "D") == "B"  # four users, none with plays
    assert iv.pick_region(music_frame([("X", {}), ("Y", {})]), "Europe") == "X"


def test_simulation_parameters_truth_eb_and_fallback():
    """Truth when the file has the region, else the empirical Bayes fit, else a stated fallback."""
    truth = {"regions": [{"region": "Europe", "p": {"rock": 0.37}, "kappa": 12.0}]}
    y, n = np.array([3, 10, 0, 40, 7]), np.array([10, 12, 5, 50, 30])
    assert iv.simulation_parameters(truth, y, n, "Europe") == (0.37, 12.0, "truth")
    from hbm.eb import fit_beta_binomial
    fit = fit_beta_binomial(y, n)
    p, kappa, source = iv.simulation_parameters(None, y, n, "Europe")
    assert source == "empirical Bayes"
    assert (p, kappa) == pytest.approx((fit.mean, fit.concentration))
    assert iv.simulation_parameters(truth, y, n, "Asia")[2] == "empirical Bayes"
    p, kappa, source = iv.simulation_parameters(None, np.zeros(3, int), np.array([2, 3, 4]), "Europe")
    assert source == "fallback" and p == pytest.approx(0.5 / 10) and kappa == pytest.approx(np.exp(iv.KAPPA_PRIOR[0]))


# --------------------------------------------------------------------------- confidence intervals


def test_naive_binomial_interval_hand_computed():
    """Wald interval on the pooled plays: 50/100 plays gives 0.5 +- 1.96 * 0.05."""
    out = iv.naive_binomial_interval([30, 20], [60, 40])
    assert float(out.estimate) == pytest.approx(0.5)
    assert float(out.lower) == pytest.approx(0.5 - Z975 * 0.05)
    assert float(out.upper) == pytest.approx(0.5 + Z975 * 0.05)


def test_cluster_t_interval_hand_computed():
    """Shares 0.2, 0.4, 0.6: mean 0.4, s = 0.2, half-width t_{2,0.975} * 0.2 / sqrt(3)."""
    out = iv.cluster_t_interval([1, 2, 3], [5, 5, 5])
    half = stats.t.ppf(0.975, 2) * 0.2 / np.sqrt(3)
    assert float(out.estimate) == pytest.approx(0.4)
    assert (float(out.lower), float(out.upper)) == pytest.approx((0.4 - half, 0.4 + half))


def test_cluster_t_interval_single_user_has_nan_ends():
    """One user: the estimate is their share and both ends are NaN (no spread), without a warning."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = iv.cluster_t_interval([1], [4])
        batch = iv.cluster_t_interval([[1], [3]], [4])
    assert float(out.estimate) == pytest.approx(0.25)
    assert np.isnan(float(out.lower)) and np.isnan(float(out.upper))
    np.testing.assert_allclose(batch.estimate, [0.25, 0.75])
    assert np.isnan(batch.lower).all() and np.isnan(batch.upper).all()


def test_batches_match_single_data_sets(rng):
    """A batch of replications gives the same intervals as each data set alone."""
    n = np.array([3, 10, 40, 200, 7])
    y = iv.simulate_successes(0.3, 10.0, n, rng=rng, n_reps=4)
    for func in (iv.naive_binomial_interval, iv.cluster_t_interval):
        batch = func(y, n)
        for r in range(4):
            one = func(y[r], n)
            assert (float(one.lower), float(one.upper)) == pytest.approx((batch.lower[r], batch.upper[r]))
    batch = iv.grid_posterior(y, n, {"flat": iv.FLAT_PRIOR, "b": (3.0, 7.0)}, iv.KAPPA_PRIOR)
    for r in range(4):
        one = iv.grid_posterior(y[r], n, {"flat": iv.FLAT_PRIOR, "b": (3.0, 7.0)}, iv.KAPPA_PRIOR)
        for name in ("flat", "b"):
            got = one[name]
            want = batch[name]
            assert float(got.lower) == pytest.approx(want.lower[r], abs=1e-12)
            assert float(got.upper) == pytest.approx(want.upper[r], abs=1e-12)
            assert float(got.estimate) == pytest.approx(want.estimate[r], abs=1e-12)


def test_bootstrap_degenerate_when_all_shares_equal(rng):
    """If every user has the same share, every resample has that mean: the interval is a point."""
    out = iv.cluster_bootstrap_interval([1, 2, 5], [4, 8, 20], n_boot=200, rng=rng)
    assert float(out.lower) == pytest.approx(0.25) and float(out.upper) == pytest.approx(0.25)


def test_bootstrap_matches_naive_loop_in_distribution(rng):
    """Vectorized percentile ends agree with a plain-loop bootstrap within 0.05 standard errors (20,000 resamples)."""
    n = rng.integers(1, 60, size=40)
    y = rng.binomial(n, rng.beta(2, 5, size=40))
    shares = y / n
    loop = np.array([rng.choice(shares, size=shares.size, replace=True).mean() for _ in range(20_000)])
    want = np.quantile(loop, [0.025, 0.975])
    got = iv.cluster_bootstrap_interval(y, n, n_boot=20_000, rng=np.random.default_rng(7))
    se = shares.std(ddof=1) / np.sqrt(shares.size)
    assert abs(float(got.lower) - want[0]) < 0.05 * se
    assert abs(float(got.upper) - want[1]) < 0.05 * se
    assert float(got.estimate) == pytest.approx(shares.mean())


def test_bootstrap_reproducible_with_seed():
    """The same seed gives the same bootstrap interval."""
    y, n = [1, 4, 2, 9], [5, 6, 7, 10]
    a = iv.cluster_bootstrap_interval(y, n, rng=np.random.default_rng(3))
    b = iv.cluster_bootstrap_interval(y, n, rng=np.random.default_rng(3))
    assert (a.lower, a.upper) == (b.lower, b.upper)


def test_intervals_reject_bad_input():
    """Totals below 1, y > n and negative y raise ValueError."""
    with pytest.raises(ValueError):
        iv.naive_binomial_interval([1], [0])
    with pytest.raises(ValueError):
        iv.naive_binomial_interval([3], [2])
    with pytest.raises(ValueError):
        iv.cluster_t_interval([-1, 1], [2, 2])


# --------------------------------------------------------------------------- grid posterior


@pytest.mark.parametrize("ab", [(1.0, 1.0), (4.0, 15.0)])
def test_grid_posterior_exact_when_every_user_has_one_play(ab):
    """With n_i = 1, P(y_i = 1) = p whatever kappa, so the posterior is Beta(a + sum y, b + m - sum y)."""
    y = np.array([1] * 7 + [0] * 13)
    post = iv.grid_posterior(y, np.ones_like(y), {"p": ab}, iv.KAPPA_PRIOR)["p"]
    exact = stats.beta(ab[0] + y.sum(), ab[1] + len(y) - y.sum())
    sd = exact.std()
    assert float(post.estimate) == pytest.approx(exact.mean(), abs=0.002 * sd)
    assert float(post.lower) == pytest.approx(exact.ppf(0.025), abs=0.005 * sd)
    assert float(post.upper) == pytest.approx(exact.ppf(0.975), abs=0.005 * sd)


def test_grid_posterior_narrow_posterior_is_resolved():
    """3,000 one-play users (posterior sd about 0.008): the zoom stage still matches the exact Beta posterior."""
    y = np.r_[np.ones(900, int), np.zeros(2100, int)]
    post = iv.grid_posterior(y, np.ones_like(y), {"flat": iv.FLAT_PRIOR}, iv.KAPPA_PRIOR)["flat"]
    exact = stats.beta(1 + 900, 1 + 2100)
    assert float(post.lower) == pytest.approx(exact.ppf(0.025), abs=0.01 * exact.std())
    assert float(post.upper) == pytest.approx(exact.ppf(0.975), abs=0.01 * exact.std())


def test_grid_posterior_binomial_limit():
    """With kappa pinned near 1e7 the beta-binomial is a binomial: posterior Beta(a + sum y, b + sum(n - y))."""
    y, n = np.array([3, 12, 40, 1]), np.array([10, 30, 100, 5])
    post = iv.grid_posterior(y, n, {"p": (2.0, 3.0)}, kappa_prior=(np.log(1e7), 0.01))["p"]
    exact = stats.beta(2 + y.sum(), 3 + (n - y).sum())
    for got, want in [(post.lower, exact.ppf(0.025)), (post.upper, exact.ppf(0.975)), (post.estimate, exact.mean())]:
        assert float(got) == pytest.approx(want, abs=0.01 * exact.std())


@pytest.mark.parametrize("seed", SEEDS[:3])
def test_grid_posterior_matches_brute_force(seed):
    """The zooming grid agrees with a 1500 x 200 brute-force grid of scipy's betabinom to 1% of a posterior sd."""
    rng = np.random.default_rng(seed)
    n = rng.integers(2, 300, size=12)
    y = iv.simulate_successes(0.35, 8.0, n, rng=rng)[0]
    priors = {"flat": iv.FLAT_PRIOR, "regional": (4.3, 15.7)}
    post = iv.grid_posterior(y, n, priors, iv.KAPPA_PRIOR)
    reference = brute_force_posterior(y, n, priors)
    for name in priors:
        mean, lower, upper = reference[name]
        got = post[name]
        sd = (upper - lower) / 3.92
        assert float(got.estimate) == pytest.approx(mean, abs=0.01 * sd)
        assert float(got.lower) == pytest.approx(lower, abs=0.01 * sd)
        assert float(got.upper) == pytest.approx(upper, abs=0.01 * sd)


@pytest.mark.parametrize("seed", SEEDS)
def test_grid_posterior_recovers_truth(seed):
    """With 400 users the posterior mean lies within 3.5 posterior sds of the true p (five seeds)."""
    rng = np.random.default_rng(seed)
    n = np.rint(np.exp(rng.uniform(np.log(3), np.log(1000), size=400))).astype(int)
    y = iv.simulate_successes(0.3, 15.0, n, rng=rng)[0]
    post = iv.grid_posterior(y, n, {"flat": iv.FLAT_PRIOR}, iv.KAPPA_PRIOR)["flat"]
    sd = float(post.width) / 3.92
    assert abs(float(post.estimate) - 0.3) < 3.5 * sd
    assert sd < 0.01


def test_grid_posterior_rejects_improper_or_unbounded_priors():
    """Beta priors with a or b below 1 (an unbounded density) raise."""
    with pytest.raises(ValueError, match="a, b >= 1"):
        iv.grid_posterior([1, 2], [3, 4], {"x": (0.5, 1.0)}, iv.KAPPA_PRIOR)


# --------------------------------------------------------------------------- simulation


def test_simulate_successes_moments(rng):
    """E[y] = n p and Var[y] = n p (1-p) (1 + (n-1)/(kappa+1)), within 4 Monte Carlo se (40,000 replications)."""
    n = np.array([1, 10, 100])
    p, kappa, reps = 0.3, 9.0, 40_000
    y = iv.simulate_successes(p, kappa, n, rng=rng, n_reps=reps)
    var = n * p * (1 - p) * (1 + (n - 1) / (kappa + 1))
    assert np.all(np.abs(y.mean(axis=0) - n * p) < 4 * np.sqrt(var / reps))
    # the sample variance's se is about var * sqrt(2 / reps) (beta-binomial kurtosis is modest)
    assert np.all(np.abs(y.var(axis=0, ddof=1) - var) < 4 * var * np.sqrt(3 / reps))


def test_simulator_matches_music_marginal():
    """hbm.book.simulate.music's Rock plays and this generator give the same standardized variance (within 0.05)."""
    frame, truth = simulate_music(20_000, seed=11)
    region = truth["regions"][1]
    p, kappa = region["p"]["rock"], region["kappa"]
    y, n = iv.region_counts(frame, region["region"], "rock")
    rho = 1 / (kappa + 1)

    def standardized(yy):
        return np.mean((yy - n * p) ** 2 / (n * p * (1 - p) * (1 + (n - 1) * rho)))

    ours = iv.simulate_successes(p, kappa, n, rng=np.random.default_rng(12))[0]
    assert standardized(y) == pytest.approx(1.0, abs=0.05)
    assert standardized(ours) == pytest.approx(1.0, abs=0.05)
    assert np.mean(y / n) == pytest.approx(p, abs=0.01)


def test_simulate_successes_reproducible_and_per_replication_parameters():
    """Seeded draws repeat; arrays of p and kappa give one truth per replication."""
    n = np.array([5, 50])
    a = iv.simulate_successes([0.01, 0.99], [1e6, 1e6], n, rng=np.random.default_rng(1))
    b = iv.simulate_successes([0.01, 0.99], [1e6, 1e6], n, rng=np.random.default_rng(1))
    assert np.array_equal(a, b) and a.shape == (2, 2)
    assert a[0].sum() < a[1].sum()


def test_draw_parameters_moments(rng):
    """p ~ Beta(a, b) and log kappa ~ N(mu, sigma): sample means within 4 se (20,000 draws)."""
    p, kappa = iv.draw_parameters((4.0, 16.0), (np.log(20), 1.5), n_reps=20_000, rng=rng)
    assert abs(p.mean() - 0.2) < 4 * stats.beta(4, 16).std() / np.sqrt(20_000)
    assert abs(np.log(kappa).mean() - np.log(20)) < 4 * 1.5 / np.sqrt(20_000)


def test_coverage_study_frame_is_consistent():
    """One row per replication and interval; covered agrees with hbm.metrics.inside; seeded runs repeat."""
    n = np.array([3, 20, 50, 8, 100])
    kw = dict(priors={"flat": iv.FLAT_PRIOR}, kappa_prior=iv.KAPPA_PRIOR, n_reps=20, n_boot=200)
    a = iv.coverage_study(0.3, 10.0, n, rng=np.random.default_rng(5), **kw)
    b = iv.coverage_study(0.3, 10.0, n, rng=np.random.default_rng(5), **kw)
    pd.testing.assert_frame_equal(a, b)
    assert set(a["method"]) == {"naive", "bootstrap", "cluster_t", "credible:flat"}
    assert len(a) == 4 * 20
    assert (a["covered"] == inside(a["lower"], a["upper"], a["p"])).all()
    assert np.allclose(a["width"], a["upper"] - a["lower"])


@pytest.mark.parametrize("seed", [0, 1])
def test_credible_interval_calibrated_under_its_prior(seed):
    """Parameters drawn from the prior: the credible interval covers within 3 MC se of 95% (600 replications)."""
    rng = np.random.default_rng(seed)
    n = np.rint(np.exp(rng.uniform(np.log(3), np.log(300), size=10))).astype(int)
    prior = (3.0, 9.0)
    p, kappa = iv.draw_parameters(prior, iv.KAPPA_PRIOR, n_reps=600, rng=rng)
    res = iv.coverage_study(p, kappa, n, rng=rng, priors={"prior": prior}, kappa_prior=iv.KAPPA_PRIOR, n_boot=200)
    cov = res.loc[res["method"] == "credible:prior", "covered"].mean()
    assert abs(cov - 0.95) < 3 * np.sqrt(0.95 * 0.05 / 600)


def test_naive_interval_valid_without_clustering_and_not_with_it():
    """kappa = 1e6 (plays independent): the Wald interval covers within 3 MC se of 95%; kappa = 5: far below (500 replications)."""
    n = np.array([50, 80, 120, 40, 200, 60])
    prior = {"flat": iv.FLAT_PRIOR}
    k = iv.KAPPA_PRIOR
    independent = iv.coverage_study(0.3, 1e6, n, rng=np.random.default_rng(1), priors=prior, kappa_prior=k, n_reps=500,
                                   n_boot=200)
    clustered = iv.coverage_study(0.3, 5.0, n, rng=np.random.default_rng(2), priors=prior, kappa_prior=k, n_reps=500,
                                  n_boot=200)
    naive_ok = independent.loc[independent["method"] == "naive", "covered"].mean()
    naive_bad = clustered.loc[clustered["method"] == "naive", "covered"].mean()
    assert abs(naive_ok - 0.95) < 3 * np.sqrt(0.95 * 0.05 / 500)
    assert naive_bad < 0.7


def test_summarise_coverage_hand_computed():
    """Coverage 3/4: mc_se sqrt(0.75 * 0.25 / 4), band clipped to [0, 1], z against 95%."""
    frame = pd.DataFrame({"method": ["a"] * 4, "covered": [True, True, False, True], "width": [1.0, 2, 3, 4]})
    s = iv.summarise_coverage(frame).iloc[0]
    se = np.sqrt(0.75 * 0.25 / 4)
    assert s["coverage"] == 0.75 and s["n_reps"] == 4 and s["mean_width"] == 2.5
    assert s["mc_se"] == pytest.approx(se)
    assert s["band_lower"] == pytest.approx(0.75 - 2 * se) and s["band_upper"] == 1.0
    assert s["z"] == pytest.approx((0.75 - 0.95) / np.sqrt(0.95 * 0.05 / 4))


def test_coverage_phrase():
    """Within 3 MC se of nominal reads 'within Monte Carlo error of'; otherwise 'below' or 'above'."""
    se = np.sqrt(0.95 * 0.05 / 1000)
    assert iv.coverage_phrase(0.95 - 2.9 * se, 1000) == "within Monte Carlo error of"
    assert iv.coverage_phrase(0.95 - 3.1 * se, 1000) == "below"
    assert iv.coverage_phrase(0.99, 1000) == "above"


def test_summarise_coverage_band_uses_the_binomial_error():
    """summarise_coverage's mc_se is sqrt(c (1 - c) / R) per group (hbm.metrics.coverage_mc_error)."""
    results = pd.DataFrame({"method": ["a"] * 4 + ["b"] * 100, "covered": [1, 1, 1, 0] + [1, 0] * 50,
                            "width": 1.0})
    out = iv.summarise_coverage(results).set_index("method")
    np.testing.assert_allclose(out.loc[["a", "b"], "mc_se"], [np.sqrt(0.75 * 0.25 / 4), 0.05], rtol=1e-15)


def test_kappa_prior_is_the_music_models():
    """One prior on log kappa for the grid posterior and the three-level model: N(3, 1.5^2)."""
    assert iv.KAPPA_PRIOR == (3.0, 1.5)
