"""hbm.book.music: closed-form user posteriors, summaries, and the three-level model's recovery."""

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from scipy import stats

from hbm.book import music
from hbm.book.common import SEED
from hbm.book.data import GENRES, counts_matrix
from hbm.book.simulate import music as simulate_music


def _plays(rows):
    """A load_music-like frame from (user_id, region, counts) rows."""
    df = pd.DataFrame({"user_id": [r[0] for r in rows], "region": pd.Categorical([r[1] for r in rows])})
    for k, g in enumerate(GENRES):
        df[g] = np.array([r[2][k] for r in rows], dtype=np.int64)
    return df


TOY = _plays([
    ("a", "East", (2, 2, 0, 0, 0)),
    ("b", "East", (0, 0, 0, 0, 0)),
    ("c", "West", (1, 0, 0, 0, 3)),
    ("d", "West", (10, 5, 5, 0, 0)),
    ("e", "East", (0, 6, 0, 0, 0)),
])


# Shares and tidy frames


def test_shares_hand_computed():
    """Shares are counts over the row total, NaN for a row of zeros."""
    out = music.shares([[1, 3, 0], [0, 0, 0]])
    np.testing.assert_allclose(out[0], [0.25, 0.75, 0.0])
    assert np.isnan(out[1]).all()


def test_region_shares_pool_plays():
    """Regional shares pool all plays of the region's users before dividing."""
    rs = music.region_shares(TOY).set_index(["region", "genre"])
    assert rs.loc[("East", "Pop"), "plays"] == 2 and rs.loc[("East", "Rock"), "plays"] == 8
    assert rs.loc[("East", "Rock"), "share"] == pytest.approx(0.8)
    assert rs.loc[("West", "Pop"), "share"] == pytest.approx(11 / 24)
    assert rs.loc[("East", "Pop"), "users"] == 3 and rs.loc[("West", "Pop"), "total"] == 24
    np.testing.assert_allclose(rs.groupby(level="region")["share"].sum(), 1.0)


def test_user_shares_long_drops_users_without_plays():
    """Per-user shares are long (user x genre) and leave out users with zero plays."""
    long = music.user_shares_long(TOY)
    assert len(long) == 4 * len(GENRES) and "b" not in set(long["user_id"])
    a = long[long["user_id"] == "a"].set_index("genre")["share"]
    assert a["Pop"] == pytest.approx(0.5) and a["Electronic"] == 0.0
    assert (long.groupby("user_id")["n"].first() == pd.Series({"a": 4, "c": 4, "d": 20, "e": 6})).all()


def test_region_codes_drop_unused_categories():
    """Region codes index the regions that have users, in category order."""
    df = TOY.copy()
    df["region"] = df["region"].cat.add_categories(["Nowhere"])
    codes, regions = music.region_codes(df)
    assert regions == ["East", "West"]
    np.testing.assert_array_equal(codes, [0, 0, 1, 1, 0])


# Closed-form posterior of one user


def test_posterior_mean_given_alpha_hand_case():
    """(alpha + x) / (kappa + n): alpha (1,2,3), x (4,0,2) gives (5,2,5)/12."""
    np.testing.assert_allclose(music.posterior_mean_given_alpha([1, 2, 3], [4, 0, 2]), np.array([5, 2, 5]) / 12)


def test_posterior_mean_is_exact_convex_combination(rng):
    """Given alpha, the mean is w * raw shares + (1 - w) * alpha/kappa with w = n / (n + kappa), exactly."""
    alpha = rng.gamma(2.0, 2.0, size=(50, 5))
    x = rng.integers(0, 40, size=(50, 5))
    x[:, 0] += 1  # every user has plays
    n, kappa = x.sum(1), alpha.sum(1)
    w = music.shrinkage_weight(n, kappa)[:, None]
    expected = w * x / n[:, None] + (1 - w) * alpha / kappa[:, None]
    np.testing.assert_allclose(music.posterior_mean_given_alpha(alpha, x), expected, rtol=1e-12)


def test_shrinkage_weight_limits_and_monotone():
    """w is 0 with no plays, 1/2 at n = kappa, tends to 1 as n grows, and increases with n."""
    assert music.shrinkage_weight(0, 20.0) == 0.0
    assert music.shrinkage_weight(20, 20.0) == 0.5
    assert music.shrinkage_weight(10**9, 20.0) == pytest.approx(1.0, abs=1e-7)
    assert np.all(np.diff(music.shrinkage_weight(np.arange(0, 1000), 20.0)) > 0)


# User posteriors mixed over draws


def _naive_user_posteriors(alpha, x, idx):
    """Reference: loop over users and draws, exact Dirichlet means and weights."""
    S = alpha.shape[0]
    mean = np.zeros(x.shape)
    weight = np.zeros(len(x))
    for i in range(len(x)):
        for s in range(S):
            a = alpha[s, idx[i]] + x[i]
            mean[i] += a / a.sum() / S
            weight[i] += x[i].sum() / a.sum() / S
    return mean, weight


def test_user_posteriors_match_naive_loop(rng):
    """The vectorized, blocked means and weights equal a plain double loop, whatever the block size."""
    alpha = rng.gamma(3.0, 3.0, size=(40, 3, 5))
    x = rng.integers(0, 30, size=(17, 5))
    idx = rng.integers(0, 3, size=17)
    ref_mean, ref_weight = _naive_user_posteriors(alpha, x, idx)
    for block in (1, 7 * 40 * 5, 10**7):
        up = music.user_posteriors(alpha, x, idx, rng=np.random.default_rng(1), block=block)
        np.testing.assert_allclose(up.mean, ref_mean, rtol=1e-12)
        np.testing.assert_allclose(up.weight, ref_weight, rtol=1e-12)
    np.testing.assert_array_equal(up.n, x.sum(1))


def test_user_posteriors_single_alpha_interval_matches_beta_quantiles():
    """With alpha known (all draws equal), the interval is the Beta marginal's 2.5% and 97.5% quantiles (+-0.01)."""
    alpha = np.tile(np.array([[4.0, 3.0, 2.0, 0.5, 0.5]]), (20000, 1, 1))
    x = np.array([[3, 0, 1, 0, 0], [0, 0, 0, 0, 0]])
    up = music.user_posteriors(alpha, x, [0, 0], rng=np.random.default_rng(SEED))
    for i in range(2):
        a = alpha[0, 0] + x[i]
        lo, hi = stats.beta.ppf([[0.025], [0.975]], a, a.sum() - a)
        np.testing.assert_allclose(up.lower[i], lo, atol=0.01)
        np.testing.assert_allclose(up.upper[i], hi, atol=0.01)
        np.testing.assert_allclose(up.mean[i], a / a.sum(), rtol=1e-12)
    assert up.weight[1] == 0.0 and up.prob == 0.95


def test_new_user_gets_the_regional_profile():
    """A user with no plays: posterior mean = posterior mean of p_r, weight 0, wider interval than a heavy user's."""
    rng = np.random.default_rng(SEED)
    alpha = rng.gamma(50.0, 0.1, size=(2000, 1, 5)) * np.array([4, 3, 2, 1, 1])
    x = np.array([[0, 0, 0, 0, 0], [300, 200, 200, 100, 100]])
    up = music.user_posteriors(alpha, x, [0, 0], rng=rng)
    p = alpha[:, 0] / alpha[:, 0].sum(-1, keepdims=True)
    np.testing.assert_allclose(up.mean[0], p.mean(0), rtol=1e-12)
    assert up.weight[0] == 0.0
    assert np.all(up.upper[0] - up.lower[0] > up.upper[1] - up.lower[1])


def test_draw_averaged_mean_between_raw_and_profile(rng):
    """Averaged over uncertain alpha, each user's mean lies between raw share and mean profile (+-0.005)."""
    base = np.array([6.0, 5.0, 4.0, 2.0, 3.0])
    alpha = base * rng.lognormal(0.0, 0.3, size=(4000, 1, 1)) * rng.lognormal(0.0, 0.05, size=(4000, 1, 5))
    x = rng.multinomial(rng.integers(1, 500, size=200), np.full(5, 0.2))
    up = music.user_posteriors(alpha, x, np.zeros(200, int), rng=rng)
    raw = music.shares(x)
    profile = (alpha[:, 0] / alpha[:, 0].sum(-1, keepdims=True)).mean(0)
    lo, hi = np.minimum(raw, profile), np.maximum(raw, profile)
    assert np.all(up.mean >= lo - 0.005) and np.all(up.mean <= hi + 0.005)


def test_user_posteriors_rejects_bad_shapes():
    """Mismatched counts and alpha raise a ValueError naming the expected shapes."""
    with pytest.raises(ValueError, match="counts must be"):
        music.user_posteriors(np.ones((3, 2, 5)), np.ones((4, 4)), np.zeros(4, int))


# Summaries


def test_profile_and_kappa_summaries():
    """Profile summaries are of alpha/kappa and kappa summaries of the sum; means and quantiles exact."""
    kappas = np.linspace(10, 30, 101)
    alpha = kappas[:, None, None] * np.array([[0.4, 0.3, 0.1, 0.1, 0.1]])
    ps = music.profile_summary(alpha, ["R"])
    np.testing.assert_allclose(ps["mean"], [0.4, 0.3, 0.1, 0.1, 0.1])
    np.testing.assert_allclose(ps["lower"], ps["mean"])
    assert list(ps["genre"]) == list(GENRES) and ps["label"].iloc[2] == "Hip-Hop"
    ks = music.kappa_summary(alpha, ["R"])
    assert ks.loc["R", "mean"] == pytest.approx(20.0)
    assert ks.loc["R", "lower"] == pytest.approx(np.quantile(kappas, 0.025))
    assert ks.loc["R", "upper"] == pytest.approx(np.quantile(kappas, 0.975))


def test_summaries_equal_the_replaced_quantile_code(rng):
    """profile_summary/kappa_summary (now hbm.posterior.summarise_draws) equal the old numpy code to 1e-14."""
    alpha = rng.gamma(3.0, size=(800, 3, len(GENRES)))
    p = alpha / alpha.sum(axis=-1, keepdims=True)
    lower, upper = np.quantile(p, [0.025, 0.975], axis=0)
    ps = music.profile_summary(alpha, ["A", "B", "C"])
    np.testing.assert_allclose(ps["mean"], p.mean(axis=0).ravel(), rtol=0, atol=1e-14)
    np.testing.assert_allclose(ps["lower"], lower.ravel(), rtol=0, atol=1e-14)
    np.testing.assert_allclose(ps["upper"], upper.ravel(), rtol=0, atol=1e-14)
    assert list(ps["region"][:len(GENRES) + 1]) == ["A"] * len(GENRES) + ["B"]
    kappa = alpha.sum(axis=-1)
    ks = music.kappa_summary(alpha, ["A", "B", "C"], prob=0.8)
    assert ks.index.name == "region" and list(ks.columns) == ["mean", "lower", "upper"]
    np.testing.assert_allclose(ks["lower"], np.quantile(kappa, 0.1, axis=0), rtol=0, atol=1e-13)
    np.testing.assert_allclose(ks["upper"], np.quantile(kappa, 0.9, axis=0), rtol=0, atol=1e-13)


def test_kappa_prior_is_the_one_library_constant():
    """The music model's priors are hbm.scale.three_level's numbers, log c ~ N(3, 1) and log κ_r ~ N(3, 1.5), the intervals chapter's too."""
    from hbm import intervals
    from hbm.scale import model as scale_model, three_level

    assert music.KAPPA_PRIOR is three_level.KAPPA_PRIOR is scale_model.KAPPA_PRIOR
    assert music.C_PRIOR is three_level.C_PRIOR is scale_model.C_PRIOR == (3.0, 1.0)
    assert music.KAPPA_PRIOR == intervals.KAPPA_PRIOR == (3.0, 1.5)
    assert music.three_level_model is three_level.three_level_model
    model = music.three_level_model(TOY)
    mu, sigma = model["log_kappa"].owner.inputs[-2:]
    assert (np.unique(mu.eval()).tolist(), np.unique(sigma.eval()).tolist()) == ([3.0], [1.5])


def test_bambi_alpha_draws_log_link_and_region_order():
    """Bambi's log link: alpha = exp(coefficients); '1|region' adds the intercept; regions follow the order asked."""
    eta = np.log(np.arange(1, 41, dtype=float)).reshape(1, 2, 4, 5) * 0.5
    region = xr.DataArray(eta.transpose(0, 1, 3, 2), dims=("chain", "draw", "plays_dim", "region_dim"),
                          coords={"region_dim": ["A", "B", "C", "D"], "plays_dim": list(GENRES)})
    fixed = xr.DataTree.from_dict({"posterior": xr.Dataset({"region": region})})
    out = music.bambi_alpha_draws(fixed, ["C", "A"])
    np.testing.assert_allclose(out[1, 0], np.exp(eta[0, 1, 2]))
    np.testing.assert_allclose(out[0, 1], np.exp(eta[0, 0, 0]))
    intercept = xr.DataArray(np.full((1, 2, 5), 0.25), dims=("chain", "draw", "plays_dim"))
    offsets = region.rename({"region_dim": "region__factor_dim"})
    hier = xr.DataTree.from_dict({"posterior": xr.Dataset({"Intercept": intercept, "1|region": offsets})})
    np.testing.assert_allclose(music.bambi_alpha_draws(hier, ["C", "A"]), out * np.exp(0.25))


def test_pick_users_by_totals():
    """Fewest, median and most plays among users with plays; ties go to the first row."""
    assert music.pick_users(TOY) == {"fewest": "a", "median": "c", "most": "d"}


def test_recovery_counts_coverage_and_error():
    """Recovery joins on region and genre, counts truths inside the intervals and averages absolute errors."""
    summary = pd.DataFrame({"region": ["R", "R"], "genre": ["pop", "rock"], "mean": [0.3, 0.5],
                            "lower": [0.2, 0.45], "upper": [0.4, 0.55]})
    true = pd.DataFrame({"region": ["R", "R"], "genre": ["pop", "rock"], "true": [0.25, 0.6]})
    rec = music.recovery(summary, true)
    assert rec["coverage"] == 0.5 and rec["missed"] == 1 and rec["n"] == 2
    assert rec["mae"] == pytest.approx(0.075) and rec["max_error"] == pytest.approx(0.1)
    ks = pd.DataFrame({"mean": [20.0], "lower": [10.0], "upper": [30.0]}, index=pd.Index(["R"], name="region"))
    assert music.recovery(ks, pd.Series({"R": 25.0}, name="true"))["coverage"] == 1.0


def test_truth_frames():
    """Truth helpers read p_r and kappa_r from a simulate.music truth dict."""
    _, truth = simulate_music(n_users=8, seed=1)
    tp, tk = music.truth_profiles(truth), music.truth_kappa(truth)
    assert len(tp) == 4 * len(GENRES) and tk["Asia"] == 40.0
    np.testing.assert_allclose(tp.groupby("region")["true"].sum(), 1.0)


# The three-level PyMC model


def test_three_level_model_structure_and_logp():
    """The model has the documented variables and coordinates, and a finite log density (zero-play users too)."""
    model = music.three_level_model(TOY)
    assert {v.name for v in model.free_RVs} == {"p_global", "c", "p", "log_kappa"}
    assert {"kappa", "alpha"} <= {v.name for v in model.deterministics}
    assert list(model.coords["region"]) == ["East", "West"] and len(model.coords["user"]) == 5
    logps = model.point_logps()
    assert all(np.isfinite(v) for v in logps.values())


def test_three_level_model_prior_draws():
    """Prior draws: profiles on the simplex, alpha = kappa * p, and median kappa near exp(3) = 20 (+-25%)."""
    import pymc as pm

    with music.three_level_model(TOY):
        prior = pm.sample_prior_predictive(draws=2000, random_seed=SEED)["prior"]
    p = np.asarray(prior["p"])
    np.testing.assert_allclose(p.sum(-1), 1.0, rtol=1e-9)
    np.testing.assert_allclose(np.asarray(prior["alpha"]), np.asarray(prior["kappa"])[..., None] * p, rtol=1e-9)
    assert np.median(np.asarray(prior["kappa"])) == pytest.approx(20.0, rel=0.25)


def test_dirichlet_multinomial_likelihood_matches_formula():
    """The model's likelihood term is the Dirichlet-multinomial pmf (Mosimann 1962), checked by hand."""
    from scipy.special import gammaln

    model = music.three_level_model(TOY)
    point = model.initial_point()
    (alpha_value,) = model.replace_rvs_by_values([model["alpha"]])
    fn = model.compile_fn([alpha_value, model.logp(vars=[model["plays"]], sum=True)],
                          inputs=model.value_vars, on_unused_input="ignore")
    alpha, loglik = fn(point)
    np.testing.assert_allclose(alpha, np.exp(3.0) / len(GENRES))  # the initial point: uniform p, kappa = e^3
    x = counts_matrix(TOY).astype(float)
    codes, _ = music.region_codes(TOY)
    a, n = alpha[codes], x.sum(1)
    by_hand = (gammaln(n + 1) + gammaln(a.sum(1)) - gammaln(n + a.sum(1))
               + (gammaln(x + a) - gammaln(a) - gammaln(x + 1)).sum(1)).sum()
    assert loglik == pytest.approx(by_hand, rel=1e-10)


@pytest.mark.parametrize("seed", [11, 12])
def test_three_level_recovers_simulated_truth(seed):
    """On simulated data (120 users, drawn profiles), the fit passes diagnostics and recovers truth.

    Tolerances: no divergence, R-hat below 1.05 and bulk ESS above 200 (margins that no compiler
    flag or platform difference crosses with 4 x 500 draws; the book's strict 1.01 is for its
    longer fits), at most 2 of the 20 true p_rk outside their 95% intervals, mean absolute error
    of the profile means below 0.03, at most 1 of 4 true kappa_r outside its 95% interval.
    """
    from hbm import diagnostics

    plays, truth = simulate_music(n_users=120, seed=seed, draw_profiles=True)
    fit = music.fit_three_level(plays, random_seed=SEED + seed, draws=500, tune=500, chains=4)
    checks = diagnostics.check(fit, var_names=["p_global", "c", "p", "kappa"])
    assert checks.divergences == 0 and checks.max_rhat < 1.05 and checks.min_ess_bulk > 200, checks.message
    alpha = music.alpha_draws(fit)
    _, regions = music.region_codes(plays)
    rec_p = music.recovery(music.profile_summary(alpha, regions), music.truth_profiles(truth))
    rec_k = music.recovery(music.kappa_summary(alpha, regions), music.truth_kappa(truth))
    assert rec_p["n"] == 20 and rec_p["missed"] <= 2 and rec_p["mae"] < 0.03
    assert rec_k["n"] == 4 and rec_k["missed"] <= 1
