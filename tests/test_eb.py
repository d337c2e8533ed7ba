"""Tests for hbm.eb: marginal-ML empirical Bayes estimators."""

import numpy as np
import pandas as pd
import pytest
from scipy import optimize, special, stats

from hbm import eb
from hbm.pooling import complete_pooling, no_pooling

SEEDS = [0, 1, 2, 3, 4]

# Rubin's eight schools [@rubin1981]
EIGHT_Y = np.array([28.0, 8, -3, 7, -1, 1, 18, 12])
EIGHT_S = np.array([15.0, 10, 16, 11, 9, 11, 10, 18])


# --------------------------------------------------------------------------- #
# Naive reference implementations
# --------------------------------------------------------------------------- #
def naive_normal_normal(y, s, groups=None):
    """Direct BFGS of the marginal log-likelihood over (mu_g..., log tau)."""
    y, s = np.asarray(y, float), np.asarray(s, float)
    codes = np.zeros(y.size, int) if groups is None else pd.factorize(np.asarray(groups))[0]
    g = codes.max() + 1

    def nll(par):
        return -eb.normal_normal_loglik(par[:g][codes], np.exp(par[g]), y, s)

    start = np.r_[[y[codes == j].mean() for j in range(g)], np.log(y.std() + 1e-3)]
    res = optimize.minimize(nll, start, method="BFGS", options={"gtol": 1e-10})
    res = optimize.minimize(nll, res.x, method="Nelder-Mead",
                            options={"xatol": 1e-10, "fatol": 1e-13, "maxiter": 20_000})
    return res.x[:g], float(np.exp(res.x[g])), -float(res.fun)


def naive_beta_binomial(k, n):
    """Nelder-Mead of the beta-binomial log-likelihood over (log alpha, log beta)."""
    def nll(par):
        return -eb.beta_binomial_loglik(np.exp(par[0]), np.exp(par[1]), k, n)

    res = optimize.minimize(nll, [0.0, 0.0], method="Nelder-Mead",
                            options={"xatol": 1e-10, "fatol": 1e-12, "maxiter": 20_000})
    return np.exp(res.x), -float(res.fun)


def naive_dirichlet_multinomial(x):
    """L-BFGS-B (numerical gradient) of the DM log-likelihood over log alpha."""
    k = x.shape[1]

    def nll(par):
        return -eb.dirichlet_multinomial_loglik(np.exp(par), x)

    res = optimize.minimize(nll, np.zeros(k), method="Nelder-Mead",
                            options={"xatol": 1e-10, "fatol": 1e-12, "maxiter": 50_000})
    return np.exp(res.x), -float(res.fun)


def naive_minka_fixed_point(x, n_iter=5000):
    """Minka's fixed point on raw per-unit counts (digamma per unit, no histograms)."""
    alpha = np.ones(x.shape[1])
    n = x.sum(axis=1)
    for _ in range(n_iter):
        a = alpha.sum()
        num = (special.digamma(x + alpha) - special.digamma(alpha)).sum(axis=0)
        den = (special.digamma(n + a) - special.digamma(a)).sum()
        alpha = alpha * num / den
    return alpha


def simulate_dm(seed, n_units=2000, alpha=8 * np.array([0.3, 0.25, 0.2, 0.15, 0.1]),
                lo=20, hi=200):
    """Dirichlet-multinomial counts with totals uniform on [lo, hi]."""
    rng = np.random.default_rng(seed)
    n = rng.integers(lo, hi + 1, n_units)
    p = rng.dirichlet(alpha, n_units)
    return rng.multinomial(n, p)


# =========================================================================== #
# Normal-normal
# =========================================================================== #
def test_nn_eight_schools_tau_is_exactly_zero():
    """Eight schools: tau_hat == 0.0 exactly, mu = precision-weighted mean, full shrinkage."""
    fit = eb.fit_normal_normal(EIGHT_Y, EIGHT_S)
    w = 1 / EIGHT_S**2
    assert fit.tau == 0.0
    assert fit.mu == pytest.approx(np.sum(w * EIGHT_Y) / np.sum(w), rel=1e-12)
    assert fit.group_labels is None
    np.testing.assert_array_equal(fit.shrinkage, 1.0)
    np.testing.assert_allclose(fit.posterior_mean, fit.mu, rtol=1e-12)
    np.testing.assert_array_equal(fit.posterior_sd, 0.0)
    lo, hi = fit.interval()
    np.testing.assert_array_equal(lo, hi)
    assert fit.loglik == pytest.approx(eb.normal_normal_loglik(fit.mu, 0.0, EIGHT_Y, EIGHT_S),
                                       rel=1e-12)


def test_nn_eight_schools_profile_grid_never_beats_zero():
    """Eight schools: no tau on a fine grid has a higher profile likelihood than tau = 0."""
    fit = eb.fit_normal_normal(EIGHT_Y, EIGHT_S)
    for tau in np.geomspace(1e-4, 100, 200):
        w = 1 / (EIGHT_S**2 + tau**2)
        mu = np.sum(w * EIGHT_Y) / np.sum(w)
        assert eb.normal_normal_loglik(mu, tau, EIGHT_Y, EIGHT_S) < fit.loglik


def test_nn_hand_computed_equal_standard_errors():
    """With s_i = 1 the MLE is mu = mean(y), tau^2 = mean((y - ybar)^2) - 1 = 4, B = 0.2."""
    y = np.array([-3.0, -1, 1, 3]) + 5
    fit = eb.fit_normal_normal(y, np.ones(4))
    assert fit.mu == pytest.approx(5.0, abs=1e-12)
    assert fit.tau == pytest.approx(2.0, rel=1e-8)
    np.testing.assert_allclose(fit.shrinkage, 0.2, rtol=1e-8)
    np.testing.assert_allclose(fit.posterior_mean, 5 + 0.8 * (y - 5), rtol=1e-8)
    np.testing.assert_allclose(fit.posterior_sd, np.sqrt(0.8), rtol=1e-8)
    expected_ll = np.sum(stats.norm.logpdf(y, 5.0, np.sqrt(5.0)))
    assert fit.loglik == pytest.approx(expected_ll, rel=1e-12)


def test_nn_hand_computed_groups_and_label_order():
    """Two groups with s_i = 1: mu = group means, shared tau = 2, labels in first-appearance order."""
    base = np.array([-3.0, -1, 1, 3])
    y = np.r_[base + 10, base - 5][[0, 4, 1, 5, 2, 6, 3, 7]]
    groups = np.array(["zeta", "alpha"] * 4)
    fit = eb.fit_normal_normal(y, np.ones(8), groups=groups)
    assert list(fit.group_labels) == ["zeta", "alpha"]
    np.testing.assert_allclose(fit.mu, [10.0, -5.0], atol=1e-10)
    np.testing.assert_allclose(fit.mu_unit, np.tile([10.0, -5.0], 4), atol=1e-10)
    assert fit.tau == pytest.approx(2.0, rel=1e-8)
    np.testing.assert_allclose(fit.posterior_mean, fit.mu_unit + 0.8 * (y - fit.mu_unit),
                               rtol=1e-8)


@pytest.mark.parametrize("as_type", [list, np.array, pd.Series])
def test_nn_groups_accept_any_array_like_of_labels(as_type):
    """Integer labels given as list, ndarray or Series give identical fits."""
    rng = np.random.default_rng(7)
    g = rng.integers(0, 3, 60)
    y = rng.normal(g * 2.0, 1.5)
    s = rng.uniform(0.5, 1.5, 60)
    fit = eb.fit_normal_normal(y, s, groups=as_type(list(g)))
    ref = eb.fit_normal_normal(y, s, groups=g)
    assert list(fit.group_labels) == list(pd.unique(g))
    np.testing.assert_array_equal(fit.mu, ref.mu)
    assert fit.tau == ref.tau


@pytest.mark.parametrize("seed", SEEDS)
def test_nn_matches_naive_direct_optimisation(seed):
    """Profile fit equals a direct BFGS/Nelder-Mead fit: tau and mu to 1e-5, loglik to 1e-9."""
    rng = np.random.default_rng(seed)
    s = rng.uniform(0.5, 2.0, 40)
    y = rng.normal(rng.normal(1.0, 1.5, 40), s)
    mu_n, tau_n, ll_n = naive_normal_normal(y, s)
    fit = eb.fit_normal_normal(y, s)
    assert fit.loglik >= ll_n - 1e-9
    assert fit.tau == pytest.approx(tau_n, rel=1e-5)
    assert fit.mu == pytest.approx(mu_n[0], abs=1e-5)


@pytest.mark.parametrize("seed", SEEDS[:3])
def test_nn_groups_match_naive_direct_optimisation(seed):
    """Grouped profile fit equals a direct optimisation over (mu_1, mu_2, mu_3, log tau)."""
    rng = np.random.default_rng(seed)
    g = np.repeat(["a", "b", "c"], 15)
    s = rng.uniform(0.5, 2.0, g.size)
    y = rng.normal(rng.normal(np.repeat([-2.0, 0.0, 3.0], 15), 1.0), s)
    mu_n, tau_n, ll_n = naive_normal_normal(y, s, g)
    fit = eb.fit_normal_normal(y, s, groups=g)
    assert fit.loglik >= ll_n - 1e-9
    assert fit.tau == pytest.approx(tau_n, rel=1e-5)
    np.testing.assert_allclose(fit.mu, mu_n, atol=1e-5)


def test_nn_tau_zero_limit_is_complete_pooling():
    """tau = 0 (eight schools, also per group) gives exactly the complete-pooling estimates."""
    fit = eb.fit_normal_normal(EIGHT_Y, EIGHT_S)
    np.testing.assert_allclose(fit.posterior_mean,
                               complete_pooling(EIGHT_Y, EIGHT_S).estimate, rtol=1e-12)
    pm, sd, b = eb.normal_normal_posterior(EIGHT_Y, EIGHT_S, 3.0, 0.0)
    np.testing.assert_array_equal(pm, 3.0)
    np.testing.assert_array_equal(sd, 0.0)
    np.testing.assert_array_equal(b, 1.0)


def test_nn_tau_infinity_limit_is_no_pooling():
    """tau -> inf gives the raw estimates and sds (no pooling); a huge-spread fit nearly so."""
    pm, sd, b = eb.normal_normal_posterior(EIGHT_Y, EIGHT_S, 3.0, np.inf)
    np.testing.assert_array_equal(pm, EIGHT_Y)
    np.testing.assert_array_equal(sd, EIGHT_S)
    np.testing.assert_array_equal(b, 0.0)
    pm, sd, _ = eb.normal_normal_posterior(EIGHT_Y, EIGHT_S, 3.0, 1e8)
    np.testing.assert_allclose(pm, EIGHT_Y, rtol=1e-12, atol=1e-10)
    y = EIGHT_Y * 1e4  # spread >> s: tau_hat ~ 1e5, shrinkage ~ 1e-6
    fit = eb.fit_normal_normal(y, EIGHT_S)
    ref = no_pooling(y, EIGHT_S)
    np.testing.assert_allclose(fit.posterior_mean, ref.estimate, rtol=1e-4, atol=1.0)
    np.testing.assert_allclose(fit.posterior_sd, ref.std_error, rtol=1e-4)


@pytest.mark.parametrize("seed", SEEDS)
def test_nn_recovers_known_mu_and_tau(seed):
    """1000 units, mu = 2, tau = 1: |mu_hat - 2| < 0.25 and |tau_hat - 1| < 0.25 (~5 sd)."""
    rng = np.random.default_rng(seed)
    s = rng.uniform(0.5, 2.0, 1000)
    theta = rng.normal(2.0, 1.0, 1000)
    fit = eb.fit_normal_normal(rng.normal(theta, s), s)
    assert abs(fit.mu - 2.0) < 0.25
    assert abs(fit.tau - 1.0) < 0.25


@pytest.mark.parametrize("seed", SEEDS)
def test_nn_intervals_cover_near_nominal_and_beat_raw_mse(seed):
    """95% EB intervals cover 0.95 +/- 0.05 of 1000 true effects; EB MSE < raw MSE."""
    rng = np.random.default_rng(seed)
    s = rng.uniform(0.5, 2.0, 1000)
    theta = rng.normal(2.0, 1.0, 1000)
    y = rng.normal(theta, s)
    fit = eb.fit_normal_normal(y, s)
    lo, hi = fit.interval(0.95)
    z = stats.norm.ppf(0.975)
    np.testing.assert_allclose(hi - lo, 2 * z * fit.posterior_sd, rtol=1e-12)
    assert abs(np.mean((lo <= theta) & (theta <= hi)) - 0.95) < 0.05
    assert np.mean((fit.posterior_mean - theta) ** 2) < np.mean((y - theta) ** 2)


def test_nn_is_deterministic():
    """Fitting the same data twice gives bitwise-identical results."""
    rng = np.random.default_rng(11)
    s = rng.uniform(0.5, 2, 50)
    y = rng.normal(0, 1.5, 50)
    a, b = eb.fit_normal_normal(y, s), eb.fit_normal_normal(y, s)
    assert a.tau == b.tau and a.mu == b.mu
    np.testing.assert_array_equal(a.posterior_mean, b.posterior_mean)


@pytest.mark.parametrize(
    ("y", "s", "groups", "match"),
    [
        ([1.0, 2.0], [1.0], None, "same length"),
        ([1.0, np.nan], [1.0, 1.0], None, "finite"),
        ([1.0, 2.0], [1.0, np.inf], None, "finite"),
        ([1.0, 2.0], [1.0, 0.0], None, "strictly positive"),
        ([1.0, 2.0], [1.0, -1.0], None, "strictly positive"),
        ([], [], None, "empty"),
        ([[1.0, 2.0]], [[1.0, 1.0]], None, "one-dimensional"),
        ([1.0, 2.0], [1.0, 1.0], ["a"], "one label per unit"),
        ([1.0, 2.0], [1.0, 1.0], ["a", None], "missing"),
        ([1.0, 2.0], [1.0, 1.0], [1.0, np.nan], "NaN"),
        ([1.0, 2.0], [1.0, 1.0], [[1, 2]], "one-dimensional"),
    ],
)
def test_nn_rejects_bad_input(y, s, groups, match):
    """Bad estimates, standard errors or groups raise ValueError with a clear message."""
    with pytest.raises(ValueError, match=match):
        eb.fit_normal_normal(y, s, groups=groups)


def test_nn_helpers_reject_bad_parameters():
    """Negative/NaN tau, wrong-length mu and prob outside (0, 1) raise ValueError."""
    with pytest.raises(ValueError, match="tau"):
        eb.normal_normal_loglik(0.0, -1.0, EIGHT_Y, EIGHT_S)
    with pytest.raises(ValueError, match="tau"):
        eb.normal_normal_loglik(0.0, np.nan, EIGHT_Y, EIGHT_S)
    with pytest.raises(ValueError, match="mu"):
        eb.normal_normal_loglik([0.0, 1.0], 1.0, EIGHT_Y, EIGHT_S)
    with pytest.raises(ValueError, match="mu"):
        eb.normal_normal_loglik(np.nan, 1.0, EIGHT_Y, EIGHT_S)
    with pytest.raises(ValueError, match="tau"):
        eb.normal_normal_posterior(EIGHT_Y, EIGHT_S, 0.0, -1.0)
    with pytest.raises(ValueError, match="mu"):
        eb.normal_normal_posterior(EIGHT_Y, EIGHT_S, np.inf, 1.0)
    fit = eb.fit_normal_normal(EIGHT_Y, EIGHT_S)
    for prob in (0.0, 1.0, 1.5):
        with pytest.raises(ValueError, match="prob"):
            fit.interval(prob)


# =========================================================================== #
# Beta-binomial
# =========================================================================== #
def test_bb_loglik_hand_computed():
    """Uniform prior: P(k=0 | n=1) = 1/2 and P(k=1 | n=2) = 1/3; n=0 units add 0."""
    ll = eb.beta_binomial_loglik(1.0, 1.0, [0, 1, 0], [1, 2, 0])
    assert ll == pytest.approx(np.log(1 / 2) + np.log(1 / 3), rel=1e-12)
    ref = stats.betabinom.logpmf([3, 7], [10, 12], 2.5, 4.0).sum()
    assert eb.beta_binomial_loglik(2.5, 4.0, [3, 7], [10, 12]) == pytest.approx(ref, rel=1e-12)


def test_bb_posterior_hand_computed():
    """Posterior is Beta(alpha + k, beta + n - k); mean (alpha + k)/(alpha + beta + n)."""
    k = np.array([0, 3, 10, 1, 5])
    n = np.array([10, 10, 10, 2, 20])
    fit = eb.fit_beta_binomial(k, n)
    np.testing.assert_allclose(fit.posterior_alpha, fit.alpha + k)
    np.testing.assert_allclose(fit.posterior_beta, fit.beta + n - k)
    np.testing.assert_allclose(fit.posterior_mean,
                               (fit.alpha + k) / (fit.alpha + fit.beta + n))
    assert fit.mean == pytest.approx(fit.alpha / (fit.alpha + fit.beta))
    assert fit.concentration == pytest.approx(fit.alpha + fit.beta)
    lo, hi = fit.interval(0.9)
    np.testing.assert_allclose(lo, stats.beta.ppf(0.05, fit.posterior_alpha, fit.posterior_beta),
                               rtol=1e-10)
    np.testing.assert_allclose(hi, stats.beta.ppf(0.95, fit.posterior_alpha, fit.posterior_beta),
                               rtol=1e-10)


@pytest.mark.parametrize("seed", SEEDS)
def test_bb_matches_naive_nelder_mead(seed):
    """Fast fit equals Nelder-Mead on (log alpha, log beta): params to 1e-4, loglik to 1e-8."""
    rng = np.random.default_rng(seed)
    n = rng.integers(5, 60, 80)
    k = rng.binomial(n, rng.beta(3.0, 5.0, 80))
    (a_n, b_n), ll_n = naive_beta_binomial(k, n)
    fit = eb.fit_beta_binomial(k, n)
    assert fit.converged and not fit.boundary
    assert fit.loglik >= ll_n - 1e-8
    assert fit.alpha == pytest.approx(a_n, rel=1e-4)
    assert fit.beta == pytest.approx(b_n, rel=1e-4)
    assert fit.loglik == pytest.approx(eb.beta_binomial_loglik(fit.alpha, fit.beta, k, n),
                                       rel=1e-12)


@pytest.mark.parametrize("seed", SEEDS)
def test_bb_recovers_known_prior(seed):
    """2000 units, Beta(2, 6), n in 20..100: |mean - 0.25| < 0.02, concentration within 20%."""
    rng = np.random.default_rng(seed)
    n = rng.integers(20, 101, 2000)
    k = rng.binomial(n, rng.beta(2.0, 6.0, 2000))
    fit = eb.fit_beta_binomial(k, n)
    assert abs(fit.mean - 0.25) < 0.02
    assert fit.concentration == pytest.approx(8.0, rel=0.2)


def test_bb_huge_counts_give_raw_proportions():
    """With n_i = 1e7 the posterior means equal k_i / n_i to 1e-6 (no pooling)."""
    rng = np.random.default_rng(5)
    n = np.full(200, 10**7)
    p = rng.beta(2.0, 6.0, 200)
    k = rng.binomial(n, p)
    fit = eb.fit_beta_binomial(k, n)
    np.testing.assert_allclose(fit.posterior_mean, k / n, atol=1e-6)
    assert fit.concentration == pytest.approx(8.0, rel=0.3)


def test_bb_no_overdispersion_hits_cap_and_pools_completely():
    """Underdispersed data: boundary=True, alpha+beta = cap, posteriors ~ pooled proportion."""
    k, n = np.full(50, 3), np.full(50, 10)
    fit = eb.fit_beta_binomial(k, n)
    assert fit.boundary and fit.converged
    assert fit.concentration == pytest.approx(eb.DEFAULT_MAX_CONCENTRATION, rel=1e-12)
    assert fit.mean == pytest.approx(0.3, rel=1e-12)
    np.testing.assert_allclose(fit.posterior_mean, 0.3, atol=1e-5)
    small = eb.fit_beta_binomial(k, n, max_concentration=1e3)
    assert small.boundary and small.concentration == pytest.approx(1e3)


def test_bb_zero_trial_units_contribute_nothing():
    """Units with n = 0 leave (alpha, beta, loglik) unchanged and get the prior as posterior."""
    rng = np.random.default_rng(3)
    n = rng.integers(5, 50, 100)
    k = rng.binomial(n, rng.beta(2, 3, 100))
    base = eb.fit_beta_binomial(k, n)
    fit = eb.fit_beta_binomial(np.r_[k, 0, 0], np.r_[n, 0, 0])
    assert fit.alpha == pytest.approx(base.alpha, rel=1e-12)
    assert fit.beta == pytest.approx(base.beta, rel=1e-12)
    assert fit.loglik == pytest.approx(base.loglik, rel=1e-12)
    np.testing.assert_allclose(fit.posterior_alpha[-2:], fit.alpha)
    np.testing.assert_allclose(fit.posterior_beta[-2:], fit.beta)
    np.testing.assert_allclose(fit.posterior_mean[-2:], fit.mean)


def test_bb_equals_two_category_dirichlet_multinomial():
    """Beta-binomial fit equals the DM fit of the (successes, failures) matrix."""
    rng = np.random.default_rng(9)
    n = rng.integers(5, 40, 300)
    k = rng.binomial(n, rng.beta(2, 3, 300))
    bb = eb.fit_beta_binomial(k, n)
    dm = eb.fit_dirichlet_multinomial(np.column_stack([k, n - k]))
    np.testing.assert_allclose([bb.alpha, bb.beta], dm.alpha, rtol=1e-10)
    assert bb.loglik == pytest.approx(dm.loglik, rel=1e-12)


@pytest.mark.parametrize(
    ("k", "n", "match"),
    [
        ([1, 2], [3], "same length"),
        ([], [], "empty"),
        ([1, -1], [3, 3], "non-negative"),
        ([1, 1], [3, -3], "non-negative"),
        ([1, 4], [3, 3], "exceed"),
        ([1.5, 1], [3, 3], "whole"),
        ([1, np.nan], [3, 3], "finite"),
        ([1, 1], [3, np.inf], "finite"),
        ([[1, 1]], [[3, 3]], "one-dimensional"),
        ([0, 1, 0], [1, 1, 0], "trials >= 2"),
        ([0, 0], [3, 5], "degenerate"),
        ([3, 5], [3, 5], "degenerate"),
    ],
)
def test_bb_rejects_bad_input(k, n, match):
    """Bad or non-identifying counts raise ValueError with a clear message."""
    with pytest.raises(ValueError, match=match):
        eb.fit_beta_binomial(k, n)


def test_bb_helpers_reject_bad_parameters():
    """Non-positive alpha/beta, bad tol/max_iter/cap and prob outside (0, 1) raise ValueError."""
    with pytest.raises(ValueError, match="positive"):
        eb.beta_binomial_loglik(0.0, 1.0, [1], [2])
    with pytest.raises(ValueError, match="positive"):
        eb.beta_binomial_loglik(1.0, np.inf, [1], [2])
    k, n = [1, 2, 5], [4, 6, 8]
    with pytest.raises(ValueError, match="tol"):
        eb.fit_beta_binomial(k, n, tol=0)
    with pytest.raises(ValueError, match="max_iter"):
        eb.fit_beta_binomial(k, n, max_iter=0)
    with pytest.raises(ValueError, match="max_concentration"):
        eb.fit_beta_binomial(k, n, max_concentration=-1)
    with pytest.raises(ValueError, match="prob"):
        eb.fit_beta_binomial(k, n).interval(1.0)


# =========================================================================== #
# Dirichlet-multinomial
# =========================================================================== #
def test_dm_loglik_hand_computed():
    """Uniform Dirichlet(1,1,1): P(x) = 2/((n+1)(n+2)), e.g. 1/6 for n = 2; n = 0 adds 0."""
    x = np.array([[1, 1, 0], [0, 0, 0], [2, 0, 1]])
    expected = np.log(1 / 6) + np.log(2 / (4 * 5))
    assert eb.dirichlet_multinomial_loglik([1, 1, 1], x) == pytest.approx(expected, rel=1e-12)
    # K = 2 reduces to the beta-binomial
    assert eb.dirichlet_multinomial_loglik([2.0, 3.0], [[1, 4], [2, 2]]) == pytest.approx(
        eb.beta_binomial_loglik(2.0, 3.0, [1, 2], [5, 4]), rel=1e-12)


def test_dm_suffstats_hand_computed():
    """Histograms of a 3 x 2 matrix, counted by hand."""
    st = eb.dirichlet_multinomial_suffstats([[0, 2], [1, 2], [0, 0]])
    np.testing.assert_array_equal(st.count_hist, [[2, 1, 0], [1, 0, 2]])
    np.testing.assert_array_equal(st.total_hist, [1, 0, 1, 1])
    assert st.n_units == 3 and st.n_categories == 2


def test_dm_posterior_hand_computed():
    """Posterior Dirichlet(alpha + x): mean (alpha_k + x_k)/(A + n), Beta marginal intervals."""
    post = eb.dirichlet_posterior([1.0, 2.0, 3.0], [[4, 0, 0], [0, 0, 0]])
    np.testing.assert_array_equal(post.posterior_alpha, [[5, 2, 3], [1, 2, 3]])
    np.testing.assert_allclose(post.posterior_mean, [[0.5, 0.2, 0.3], [1 / 6, 2 / 6, 3 / 6]])
    lo, hi = post.interval(0.8)
    a = post.posterior_alpha
    b = a.sum(axis=1, keepdims=True) - a
    np.testing.assert_allclose(lo, stats.beta.ppf(0.1, a, b), rtol=1e-10)
    np.testing.assert_allclose(hi, stats.beta.ppf(0.9, a, b), rtol=1e-10)


@pytest.mark.parametrize("seed", SEEDS[:3])
def test_dm_matches_naive_optimisation_and_fixed_point(seed):
    """Fit equals Nelder-Mead on log alpha (1e-4) and per-unit Minka iteration (1e-6)."""
    x = simulate_dm(seed, n_units=150, alpha=np.array([2.0, 1.0, 0.5]), lo=5, hi=40)
    a_n, ll_n = naive_dirichlet_multinomial(x)
    fit = eb.fit_dirichlet_multinomial(x)
    assert fit.converged and not fit.boundary
    assert fit.loglik >= ll_n - 1e-8
    np.testing.assert_allclose(fit.alpha, a_n, rtol=1e-4)
    np.testing.assert_allclose(fit.alpha, naive_minka_fixed_point(x), rtol=1e-6)
    assert fit.loglik == pytest.approx(eb.dirichlet_multinomial_loglik(fit.alpha, x), rel=1e-12)


@pytest.mark.parametrize("seed", SEEDS)
def test_dm_recovers_known_alpha(seed):
    """2000 units, totals 20..200, alpha = 8*[.3,.25,.2,.15,.1]: each alpha_k within 12% (~5 sd)."""
    alpha = 8 * np.array([0.3, 0.25, 0.2, 0.15, 0.1])
    fit = eb.fit_dirichlet_multinomial(simulate_dm(seed, alpha=alpha))
    assert fit.converged and not fit.boundary
    np.testing.assert_allclose(fit.alpha, alpha, rtol=0.12)
    np.testing.assert_allclose(fit.mean, alpha / 8, atol=0.01)
    assert fit.concentration == pytest.approx(fit.alpha.sum())


def test_dm_fields_are_consistent():
    """mean = alpha/A, posterior_alpha = alpha + x, posterior_mean rows sum to 1."""
    x = simulate_dm(1, n_units=300)
    fit = eb.fit_dirichlet_multinomial(x)
    np.testing.assert_allclose(fit.mean, fit.alpha / fit.alpha.sum())
    np.testing.assert_allclose(fit.posterior_alpha, fit.alpha + x)
    np.testing.assert_allclose(fit.posterior_mean.sum(axis=1), 1.0)
    assert fit.n_units == 300 and fit.n_iter >= 1
    lo, hi = fit.interval()
    assert lo.shape == hi.shape == x.shape
    assert np.all((lo < fit.posterior_mean) & (fit.posterior_mean < hi))


def test_dm_huge_counts_give_raw_proportions():
    """Totals ~ 1e5: posterior means equal the units' raw proportions to 1e-4."""
    x = simulate_dm(2, n_units=200, alpha=np.array([3.0, 2.0, 1.0]), lo=50_000, hi=100_000)
    fit = eb.fit_dirichlet_multinomial(x)
    raw = x / x.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(fit.posterior_mean, raw, atol=1e-4)
    post = eb.dirichlet_posterior([3.0, 2.0, 1.0], x * 10**6)
    np.testing.assert_allclose(post.posterior_mean, raw, atol=1e-9)


def test_dm_huge_concentration_gives_complete_pooling():
    """No overdispersion (identical rows): boundary=True, A = cap, posteriors = pooled mean."""
    x = np.tile([3, 5, 2], (40, 1))
    fit = eb.fit_dirichlet_multinomial(x)
    assert fit.boundary and fit.converged
    assert fit.concentration == pytest.approx(eb.DEFAULT_MAX_CONCENTRATION, rel=1e-12)
    np.testing.assert_allclose(fit.mean, [0.3, 0.5, 0.2], rtol=1e-12)
    np.testing.assert_allclose(fit.posterior_mean, np.tile([0.3, 0.5, 0.2], (40, 1)), atol=1e-5)


def test_dm_zero_total_units_contribute_nothing():
    """Zero-total rows leave alpha and loglik unchanged; their posterior is the prior."""
    x = simulate_dm(3, n_units=300)
    base = eb.fit_dirichlet_multinomial(x)
    fit = eb.fit_dirichlet_multinomial(np.vstack([np.zeros((3, 5), int), x]))
    np.testing.assert_allclose(fit.alpha, base.alpha, rtol=1e-12)
    assert fit.loglik == pytest.approx(base.loglik, rel=1e-12)
    assert fit.n_units == 303
    np.testing.assert_allclose(fit.posterior_alpha[:3], np.tile(fit.alpha, (3, 1)))
    np.testing.assert_allclose(fit.posterior_mean[:3], np.tile(fit.mean, (3, 1)))


def test_dm_suffstats_addition_equals_concatenation():
    """stats(a) + stats(b) and sum(chunks) equal stats(concat), with histogram padding."""
    x = simulate_dm(4, n_units=500)
    a, b = x[:100] // 3, x[100:]  # different max counts -> padding needed
    whole = eb.dirichlet_multinomial_suffstats(np.vstack([a, b]))
    added = eb.dirichlet_multinomial_suffstats(a) + eb.dirichlet_multinomial_suffstats(b)
    np.testing.assert_array_equal(added.count_hist, whole.count_hist)
    np.testing.assert_array_equal(added.total_hist, whole.total_hist)
    assert added.n_units == whole.n_units == 500
    chunks = sum(eb.dirichlet_multinomial_suffstats(c) for c in np.array_split(x, 7))
    np.testing.assert_array_equal(chunks.count_hist,
                                  eb.dirichlet_multinomial_suffstats(x).count_hist)


def test_dm_fit_from_suffstats_equals_fit_from_counts():
    """Fitting merged chunk statistics gives the counts fit; per-unit fields are None."""
    x = simulate_dm(5, n_units=1000)
    full = eb.fit_dirichlet_multinomial(x)
    st = sum(eb.dirichlet_multinomial_suffstats(c) for c in np.array_split(x, 4))
    fit = eb.fit_dirichlet_multinomial_from_suffstats(st)
    np.testing.assert_allclose(fit.alpha, full.alpha, rtol=1e-12)
    assert fit.loglik == pytest.approx(full.loglik, rel=1e-12)
    assert fit.posterior_alpha is None and fit.posterior_mean is None
    post = fit.posterior(x[:10])
    np.testing.assert_allclose(post.posterior_mean, full.posterior_mean[:10], rtol=1e-12)
    with pytest.raises(ValueError, match="sufficient statistics"):
        fit.interval()


def test_dm_one_million_units_recovers_alpha():
    """1e6 x 5 counts: suffstats + fit recover alpha within 2% (runs in about a second)."""
    alpha = 8 * np.array([0.3, 0.25, 0.2, 0.15, 0.1])
    x = simulate_dm(6, n_units=1_000_000, alpha=alpha, lo=0, hi=50)
    fit = eb.fit_dirichlet_multinomial_from_suffstats(eb.dirichlet_multinomial_suffstats(x))
    assert fit.converged and fit.n_units == 1_000_000
    np.testing.assert_allclose(fit.alpha, alpha, rtol=0.02)


def test_dm_is_deterministic():
    """Fitting the same counts twice gives bitwise-identical alpha."""
    x = simulate_dm(7, n_units=200)
    np.testing.assert_array_equal(eb.fit_dirichlet_multinomial(x).alpha,
                                  eb.fit_dirichlet_multinomial(x).alpha)


@pytest.mark.parametrize(
    ("counts", "match"),
    [
        ([1, 2, 3], "2-D"),
        (np.zeros((0, 3)), "at least one unit"),
        ([[1], [2]], "at least 2 categories"),
        ([[1, -1], [2, 2]], "non-negative"),
        ([[1.0, -1.0], [2.0, 2.0]], "non-negative"),
        ([[1.5, 1], [2, 2]], "whole"),
        ([[np.nan, 1], [2, 2]], "finite"),
        ([["a", "b"]], "numeric"),
        ([[1, 0], [0, 1], [0, 0]], "total >= 2"),
        ([[1, 0, 2], [3, 0, 1]], "zero counts in every unit"),
    ],
)
def test_dm_rejects_bad_counts(counts, match):
    """Malformed or non-identifying count matrices raise ValueError."""
    with pytest.raises(ValueError, match=match):
        eb.fit_dirichlet_multinomial(counts)


def test_dm_helpers_reject_bad_input():
    """Bad alpha, mismatched suffstats, bad stats objects and prob raise ValueError."""
    x = np.array([[1, 2], [3, 4]])
    with pytest.raises(ValueError, match="positive"):
        eb.dirichlet_multinomial_loglik([1.0, 0.0], x)
    with pytest.raises(ValueError, match="categories"):
        eb.dirichlet_multinomial_loglik([1.0, 1.0, 1.0], x)
    with pytest.raises(ValueError, match="1-D"):
        eb.dirichlet_posterior([[1.0, 1.0]], x)
    with pytest.raises(ValueError, match="2 and 3 categories"):
        eb.dirichlet_multinomial_suffstats(x) + eb.dirichlet_multinomial_suffstats([[1, 1, 1]])
    with pytest.raises(ValueError, match="sum to n_units"):
        eb.DMSuffStats(np.array([[1, 2], [2, 0]]), np.array([0, 0, 2]), 2)
    with pytest.raises(ValueError, match="different totals"):
        eb.DMSuffStats(np.array([[0, 2], [2, 0]]), np.array([0, 0, 2]), 2)
    with pytest.raises(ValueError, match="DMSuffStats"):
        eb.fit_dirichlet_multinomial_from_suffstats(x)
    with pytest.raises(ValueError, match="prob"):
        eb.dirichlet_posterior([1.0, 1.0], x).interval(0.0)


def test_dm_empty_category_zero_equals_fit_without_it(rng):
    """With empty='zero' an unplayed category gets alpha 0 and the rest equals the fit without that column."""
    alpha = np.array([2.0, 1.0, 3.0, 0.5])
    p = rng.dirichlet(alpha, size=200)
    x = np.array([rng.multinomial(20, row) for row in p])
    x[:, 1] = 0  # nobody ever chose category 1
    with pytest.raises(ValueError, match=r"categories \[1\] have zero counts"):
        eb.fit_dirichlet_multinomial(x)
    fit = eb.fit_dirichlet_multinomial(x, empty="zero")
    sub = eb.fit_dirichlet_multinomial(np.delete(x, 1, axis=1))
    assert fit.alpha[1] == 0
    np.testing.assert_allclose(np.delete(fit.alpha, 1), sub.alpha)
    assert fit.loglik == pytest.approx(sub.loglik)
    assert np.all(fit.posterior_mean[:, 1] == 0)
    np.testing.assert_allclose(fit.posterior_mean.sum(axis=1), 1)
    with pytest.raises(ValueError, match="fewer than two categories"):
        eb.fit_dirichlet_multinomial(np.c_[x[:, :1], np.zeros((200, 3), int)], empty="zero")


def test_logliks_equal_the_replaced_gammaln_formulas(rng):
    """The scipy.stats log-likelihoods equal the hand-written formulas they replaced (rel 1e-12), n = 0 included."""
    y, s = rng.normal(size=40), rng.uniform(0.1, 1.0, size=40)
    v = s**2 + 0.4**2
    assert eb.normal_normal_loglik(0.2, 0.4, y, s) == pytest.approx(
        -0.5 * np.sum(np.log(2 * np.pi * v) + (y - 0.2) ** 2 / v), rel=1e-12)
    n = rng.integers(0, 30, size=60)
    n[:3] = 0
    k = rng.binomial(n, 0.3)
    lchoose = special.gammaln(n + 1.0) - special.gammaln(k + 1.0) - special.gammaln(n - k + 1.0)
    by_hand = np.sum(lchoose + special.betaln(k + 1.3, n - k + 2.1) - special.betaln(1.3, 2.1))
    assert eb.beta_binomial_loglik(1.3, 2.1, k, n) == pytest.approx(by_hand, rel=1e-12)
    x = rng.integers(0, 15, size=(80, 5))
    x[:4] = 0
    a = rng.gamma(2.0, size=5)
    m, total = x.sum(axis=1), a.sum()
    by_hand = np.sum(special.gammaln(m + 1.0) - special.gammaln(x + 1.0).sum(axis=1) + special.gammaln(total)
                     - special.gammaln(m + total) + (special.gammaln(x + a) - special.gammaln(a)).sum(axis=1))
    assert eb.dirichlet_multinomial_loglik(a, x) == pytest.approx(by_hand, rel=1e-12)
