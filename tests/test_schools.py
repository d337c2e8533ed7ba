"""Tests for hbm.schools: the eight-schools posterior by quadrature over tau."""

import numpy as np
import pytest
from scipy import integrate, stats

import pandas as pd

from hbm import schools

# Rubin's eight schools [@rubin1981]
EIGHT_Y = np.array([28.0, 8, -3, 7, -1, 1, 18, 12])
EIGHT_S = np.array([15.0, 10, 16, 11, 9, 11, 10, 18])
SEEDS = [0, 1, 2]


# --------------------------------------------------------------------------- #
# Naive reference implementations
# --------------------------------------------------------------------------- #
def naive_gaussian_conditionals(tau, y, se, mu_loc, mu_scale):
    """Condition the joint normal (mu, theta, y) on y with dense matrices (given tau).

    Returns the conditional mean and covariance of (mu, theta_1..theta_J).
    """
    j = y.size
    # x = (mu, theta, y) = A @ (mu, eta, eps) + b, with independent N(0, 1) innovations.
    a = np.zeros((1 + 2 * j, 1 + 2 * j))
    a[0, 0] = mu_scale
    a[1:1 + j, 0] = mu_scale
    a[1:1 + j, 1:1 + j] = tau * np.eye(j)
    a[1 + j:, 0] = mu_scale
    a[1 + j:, 1:1 + j] = tau * np.eye(j)
    a[1 + j:, 1 + j:] = np.diag(se)
    cov = a @ a.T
    mean = np.full(1 + 2 * j, mu_loc)
    k = slice(0, 1 + j)
    o = slice(1 + j, None)
    gain = cov[k, o] @ np.linalg.inv(cov[o, o])
    return mean[k] + gain @ (y - mean[o]), cov[k, k] - gain @ cov[o, k]


def naive_grid_posterior(y, se, mu_loc=0.0, mu_scale=5.0, tau_scale=5.0):
    """Posterior means of mu, tau and theta by a dense 2-D trapezoid grid over (mu, tau).

    Uses y_j | mu, tau ~ N(mu, se_j^2 + tau^2) school by school (no algebra over mu).
    """
    mu = np.linspace(-40.0, 50.0, 451)
    tau = np.r_[np.linspace(0.0, 40.0, 801), np.linspace(40.5, 400.0, 360)]
    mm, tt = np.meshgrid(mu, tau, indexing="ij")
    logp = stats.norm.logpdf(mm, mu_loc, mu_scale) + stats.halfcauchy.logpdf(tt, scale=tau_scale)
    for yj, sj in zip(y, se):
        v = sj**2 + tt**2
        logp += -0.5 * np.log(2 * np.pi * v) - 0.5 * (yj - mm) ** 2 / v
    dens = np.exp(logp - logp.max())

    def integral(f):
        return integrate.trapezoid(integrate.trapezoid(f, tau, axis=1), mu)

    z = integral(dens)
    theta = []
    for yj, sj in zip(y, se):
        w = tt**2 / (tt**2 + sj**2)
        theta.append(integral(dens * (w * yj + (1 - w) * mm)) / z)
    return integral(dens * mm) / z, integral(dens * tt) / z, np.array(theta)


def importance_sampling(y, se, seed, n=400_000, mu_loc=0.0, mu_scale=5.0, tau_scale=5.0):
    """Self-normalised importance sampling from the prior: estimates and their standard errors."""
    rng = np.random.default_rng(seed)
    mu = rng.normal(mu_loc, mu_scale, n)
    tau = np.abs(stats.cauchy.rvs(scale=tau_scale, size=n, random_state=rng))
    theta = rng.normal(mu[:, None], tau[:, None], (n, y.size))
    logw = stats.norm.logpdf(y, theta, se).sum(axis=1)
    w = np.exp(logw - logw.max())
    w /= w.sum()
    out = {}
    for name, x in [("mu", mu), ("tau", tau)] + [(f"theta{j}", theta[:, j]) for j in range(y.size)]:
        m = np.sum(w * x)
        out[name] = (m, np.sqrt(np.sum(w**2 * (x - m) ** 2)))
    return out


# --------------------------------------------------------------------------- #
# Conditionals and marginal likelihood
# --------------------------------------------------------------------------- #
def test_single_school_by_hand():
    """J = 1, y = 10, s = 5, mu ~ N(0, 5^2): hand-computed conditionals at tau = 0 and tau = 5."""
    mean, var = schools.mu_conditional([0.0, 5.0], [10.0], [5.0])
    np.testing.assert_allclose(mean, [5.0, 10 / 3], rtol=1e-12)
    np.testing.assert_allclose(var, [12.5, 50 / 3], rtol=1e-12)
    tmean, tvar = schools.theta_conditional([0.0, 5.0], [10.0], [5.0])
    # tau = 0: theta = mu; tau = 5: w = 1/2, mean 10/2 + (10/3)/2, var 25/2 + (50/3)/4.
    np.testing.assert_allclose(tmean[:, 0], [5.0, 20 / 3], rtol=1e-12)
    np.testing.assert_allclose(tvar[:, 0], [12.5, 12.5 + 50 / 12], rtol=1e-12)


def test_log_marginal_likelihood_equals_multivariate_normal():
    """log p(y | tau) equals the N(m0 1, diag(s^2 + tau^2) + s0^2 11') log density (1e-10)."""
    for tau in [0.0, 0.3, 3.6, 25.0, 400.0]:
        cov = np.diag(EIGHT_S**2 + tau**2) + 4.0**2 * np.ones((8, 8))
        want = stats.multivariate_normal(np.full(8, 2.0), cov).logpdf(EIGHT_Y)
        got = schools.log_marginal_likelihood(tau, EIGHT_Y, EIGHT_S, mu_loc=2.0, mu_scale=4.0)
        np.testing.assert_allclose(got, [want], rtol=1e-10)


def test_conditionals_equal_dense_gaussian_conditioning():
    """mu | tau, y and theta | tau, y equal a dense Gaussian conditioning of (mu, theta, y)."""
    taus = np.array([0.5, 3.0, 12.0])
    mu_mean, mu_var = schools.mu_conditional(taus, EIGHT_Y, EIGHT_S, 1.0, 7.0)
    th_mean, th_var = schools.theta_conditional(taus, EIGHT_Y, EIGHT_S, 1.0, 7.0)
    for k, tau in enumerate(taus):
        mean, cov = naive_gaussian_conditionals(tau, EIGHT_Y, EIGHT_S, 1.0, 7.0)
        np.testing.assert_allclose(mu_mean[k], mean[0], rtol=1e-10)
        np.testing.assert_allclose(mu_var[k], cov[0, 0], rtol=1e-10)
        np.testing.assert_allclose(th_mean[k], mean[1:], rtol=1e-10)
        np.testing.assert_allclose(th_var[k], np.diag(cov)[1:], rtol=1e-10)


# --------------------------------------------------------------------------- #
# The full posterior
# --------------------------------------------------------------------------- #
@pytest.fixture(scope="module")
def eight():
    """The eight-schools exact posterior with the default priors."""
    return schools.exact_posterior(EIGHT_Y, EIGHT_S)


def test_quadrature_has_converged(eight):
    """100 and 300 Gauss-Legendre nodes agree to 1e-9 on every moment (and with the default 400)."""
    a = schools.exact_posterior(EIGHT_Y, EIGHT_S, n_nodes=100).to_frame()
    b = schools.exact_posterior(EIGHT_Y, EIGHT_S, n_nodes=300).to_frame()
    np.testing.assert_allclose(a.to_numpy(), b.to_numpy(), rtol=1e-9)
    np.testing.assert_allclose(eight.to_frame().to_numpy(), b.to_numpy(), rtol=1e-9)


def test_matches_brute_force_2d_grid(eight):
    """Posterior means of mu, tau and every theta_j equal a dense 2-D grid integral (within 5e-4)."""
    mu, tau, theta = naive_grid_posterior(EIGHT_Y, EIGHT_S)
    assert eight.mu_mean == pytest.approx(mu, abs=5e-4)
    assert eight.tau_mean == pytest.approx(tau, abs=5e-4)
    np.testing.assert_allclose(eight.theta_mean, theta, atol=5e-4)


@pytest.mark.parametrize("seed", SEEDS)
def test_matches_importance_sampling(seed):
    """Three schools: quadrature means are within 4 Monte Carlo SEs of prior importance sampling."""
    y, se = np.array([12.0, -4.0, 5.0]), np.array([6.0, 8.0, 5.0])
    exact = schools.exact_posterior(y, se)
    mc = importance_sampling(y, se, seed)
    want = {"mu": exact.mu_mean, "tau": exact.tau_mean}
    want |= {f"theta{j}": exact.theta_mean[j] for j in range(3)}
    for name, value in want.items():
        m, s = mc[name]
        assert abs(m - value) < 4 * s, (name, m, s, value)


def test_known_values_for_eight_schools(eight):
    """Eight schools with mu ~ N(0, 5^2), tau ~ HalfCauchy(5): the well-known means (mu 4.4, tau 3.6)."""
    assert eight.mu_mean == pytest.approx(4.40, abs=0.01)
    assert eight.tau_mean == pytest.approx(3.60, abs=0.01)
    # Every school's mean lies between the pooled mean and its own estimate.
    assert np.all((eight.theta_mean - eight.mu_mean) * (EIGHT_Y - eight.mu_mean) >= 0)
    assert np.all(np.abs(eight.theta_mean - eight.mu_mean) <= np.abs(EIGHT_Y - eight.mu_mean))


def test_density_and_cdf_are_consistent(eight):
    """The tau density integrates to 1 and to the mean; the CDF inverts the quantile."""
    total = integrate.quad(lambda t: eight.tau_density(t)[0], 0, np.inf, limit=200)[0]
    mean = integrate.quad(lambda t: t * eight.tau_density(t)[0], 0, np.inf, limit=200)[0]
    assert total == pytest.approx(1.0, abs=1e-6)
    assert mean == pytest.approx(eight.tau_mean, abs=1e-5)
    for q in [0.025, 0.5, 0.975]:
        assert eight.tau_cdf(eight.tau_quantile(q))[0] == pytest.approx(q, abs=1e-8)
    assert eight.tau_cdf(0.0)[0] == 0.0


def test_tau_near_zero_is_complete_pooling():
    """A prior with tau ~ 0 gives the conjugate normal answer: theta_j = mu for all j."""
    exact = schools.exact_posterior(EIGHT_Y, EIGHT_S, tau_prior=stats.uniform(0, 1e-9))
    prec = 1 / 25 + np.sum(1 / EIGHT_S**2)
    mu = np.sum(EIGHT_Y / EIGHT_S**2) / prec
    assert exact.mu_mean == pytest.approx(mu, rel=1e-8)
    assert exact.mu_sd == pytest.approx(prec**-0.5, rel=1e-8)
    np.testing.assert_allclose(exact.theta_mean, mu, rtol=1e-8)
    assert exact.tau_mean == pytest.approx(5e-10, rel=1e-6)


def test_huge_tau_is_no_pooling():
    """A prior with tau huge gives theta_j ~ N(y_j, s_j^2): no pooling."""
    exact = schools.exact_posterior(EIGHT_Y, EIGHT_S, tau_prior=stats.uniform(1e6, 1e-3))
    np.testing.assert_allclose(exact.theta_mean, EIGHT_Y, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(exact.theta_sd, EIGHT_S, rtol=1e-6)


def test_permuting_schools_permutes_thetas(eight):
    """Reordering the schools reorders the theta_j and leaves mu and tau unchanged."""
    order = np.array([3, 7, 0, 5, 1, 6, 2, 4])
    other = schools.exact_posterior(EIGHT_Y[order], EIGHT_S[order])
    assert other.mu_mean == pytest.approx(eight.mu_mean, rel=1e-10)
    assert other.tau_mean == pytest.approx(eight.tau_mean, rel=1e-10)
    np.testing.assert_allclose(other.theta_mean, eight.theta_mean[order], rtol=1e-10)


@pytest.mark.parametrize("seed", SEEDS)
def test_recovers_simulated_hyperparameters(seed):
    """300 simulated units: mu and tau within 3 posterior sd of the truth; shrinkage beats y in MSE."""
    rng = np.random.default_rng(seed)
    mu, tau = 3.0, 4.0
    se = rng.uniform(2.0, 8.0, 300)
    theta = rng.normal(mu, tau, 300)
    y = rng.normal(theta, se)
    exact = schools.exact_posterior(y, se, mu_scale=10.0)
    assert abs(exact.mu_mean - mu) < 3 * exact.mu_sd
    assert abs(exact.tau_mean - tau) < 3 * exact.tau_sd
    # Shrinkage lowers the error of the unit estimates compared with y itself.
    assert np.mean((exact.theta_mean - theta) ** 2) < np.mean((y - theta) ** 2)


def test_to_frame_labels(eight):
    """to_frame has rows mu, tau and one per school, with mean and sd columns."""
    frame = eight.to_frame(list("ABCDEFGH"))
    assert list(frame.index) == ["mu", "tau", *"ABCDEFGH"]
    assert list(frame.columns) == ["mean", "sd"]
    assert frame.loc["A", "mean"] == eight.theta_mean[0]


@pytest.mark.parametrize(
    "y, se, match",
    [
        ([1.0, 2.0], [1.0], "same length"),
        ([1.0, 2.0], [1.0, 0.0], "strictly positive"),
        ([1.0, np.nan], [1.0, 1.0], "finite"),
        ([], [], "non-empty"),
    ],
)
def test_bad_input_is_rejected(y, se, match):
    """Mismatched, non-positive, non-finite or empty inputs raise ValueError naming the problem."""
    with pytest.raises(ValueError, match=match):
        schools.exact_posterior(y, se)


def test_bad_priors_are_rejected():
    """A non-positive mu scale, a prior on tau with negative support or too few nodes raise."""
    with pytest.raises(ValueError, match="scale"):
        schools.exact_posterior(EIGHT_Y, EIGHT_S, mu_scale=0.0)
    with pytest.raises(ValueError, match="supported"):
        schools.exact_posterior(EIGHT_Y, EIGHT_S, tau_prior=stats.norm(0, 1))
    with pytest.raises(ValueError, match="n_nodes"):
        schools.exact_posterior(EIGHT_Y, EIGHT_S, n_nodes=1)
    with pytest.raises(ValueError, match="tau"):
        schools.mu_conditional(-1.0, EIGHT_Y, EIGHT_S)


# --------------------------------------------------------------------------- #
# Helpers for comparing posteriors
# --------------------------------------------------------------------------- #
def test_group_moments_by_hand_and_against_pandas(rng):
    """Group means and sds (ddof 1): a hand case, and a batch equal to pandas groupby."""
    means, sds = schools.group_moments([1.0, 3.0, 10.0, 10.0, 16.0], [0, 0, 1, 1, 1])
    np.testing.assert_allclose(means, [2.0, 12.0])
    np.testing.assert_allclose(sds, [np.sqrt(2.0), np.sqrt(12.0)])
    import pandas as pd

    codes = rng.integers(0, 4, 60)
    codes[:8] = np.repeat(np.arange(4), 2)  # every group has two or more
    values = rng.normal(70, 10, (3, 5, 60))
    means, sds = schools.group_moments(values, codes)
    assert means.shape == sds.shape == (3, 5, 4)
    frame = pd.DataFrame({"v": values[2, 4], "g": codes}).groupby("g")["v"]
    np.testing.assert_allclose(means[2, 4], frame.mean().to_numpy(), rtol=1e-12)
    np.testing.assert_allclose(sds[2, 4], frame.std().to_numpy(), rtol=1e-12)


def test_group_moments_single_observation_group_has_nan_sd():
    """A one-observation group has its value as mean and a NaN sd, silently, in every row of a batch."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no RuntimeWarning from 0/0
        means, sds = schools.group_moments([[1.0, 3.0, 7.0], [2.0, 2.0, -4.0]], [0, 0, 1])
    np.testing.assert_allclose(means, [[2.0, 7.0], [2.0, -4.0]])
    np.testing.assert_allclose(sds, [[np.sqrt(2.0), np.nan], [0.0, np.nan]])


def test_group_moments_rejects_bad_groups():
    """A group with no observation, or codes of the wrong length, raise ValueError."""
    with pytest.raises(ValueError, match=r"at least one observation; none in group\(s\) \[1\]"):
        schools.group_moments([1.0, 2.0, 3.0], [0, 0, 2])
    with pytest.raises(ValueError, match="one entry per observation"):
        schools.group_moments([1.0, 2.0, 3.0], [0, 0])


def test_flat_draws_orders_samples_and_levels():
    """flat_draws stacks chain-major draws into rows and keeps the level labels."""
    import xarray as xr

    da = xr.DataArray(np.arange(24.0).reshape(2, 3, 4), dims=("chain", "draw", "school"),
                      coords={"school": list("ABCD")}, name="theta")
    draws, labels = schools.flat_draws(da)
    assert labels == list("ABCD")
    np.testing.assert_array_equal(draws, np.arange(24.0).reshape(6, 4))
    scalar, name = schools.flat_draws(da.isel(school=0))
    assert name == ["theta"] and scalar.shape == (6, 1)
    with pytest.raises(ValueError, match="at most one"):
        schools.flat_draws(da.expand_dims(extra=2))


@pytest.mark.parametrize("seed", SEEDS)
def test_compare_to_exact_with_independent_draws(seed, eight):
    """Independent normal draws centred on the exact means: MCSE ~ sd / sqrt(n) and |z| < 4."""
    import xarray as xr

    rng = np.random.default_rng(seed)
    dims = ("chain", "draw")
    mu = xr.DataArray(rng.normal(eight.mu_mean, eight.mu_sd, (4, 1000)), dims=dims)
    tau = xr.DataArray(rng.normal(eight.tau_mean, eight.tau_sd, (4, 1000)), dims=dims)
    theta = xr.DataArray(rng.normal(eight.theta_mean, eight.theta_sd, (4, 1000, 8)),
                         dims=(*dims, "school"), coords={"school": list("ABCDEFGH")})
    table = schools.compare_to_exact(eight, mu, tau, theta)
    assert list(table.index) == ["mu", "tau", *"ABCDEFGH"]
    np.testing.assert_allclose(table["mcse"], table["exact_sd"] / np.sqrt(4000), rtol=0.15)
    assert np.all(np.abs(table["z"]) < 4)
    np.testing.assert_allclose(table["z"], (table["mcmc"] - table["exact"]) / table["mcse"])


def test_compare_to_exact_detects_a_biased_sampler(eight):
    """Draws shifted by 10 MCSE give |z| near 10."""
    import xarray as xr

    rng = np.random.default_rng(7)
    dims = ("chain", "draw")
    shift = 10 * eight.tau_sd / np.sqrt(4000)
    mu = xr.DataArray(rng.normal(eight.mu_mean, eight.mu_sd, (4, 1000)), dims=dims)
    tau = xr.DataArray(rng.normal(eight.tau_mean + shift, eight.tau_sd, (4, 1000)), dims=dims)
    theta = xr.DataArray(rng.normal(eight.theta_mean, 1.0, (4, 1000, 8)), dims=(*dims, "school"))
    table = schools.compare_to_exact(eight, mu, tau, theta)
    assert 6 < table.loc["tau", "z"] < 14
    with pytest.raises(ValueError, match="unit dimension"):
        schools.compare_to_exact(eight, mu, tau, theta.isel(school=slice(0, 3)))


def test_compare_to_exact_pairs_units_by_label(eight):
    """Draws whose units come in another order give the same table once labels are given."""
    import xarray as xr

    rng = np.random.default_rng(11)
    dims = ("chain", "draw")
    names = list("ABCDEFGH")
    mu = xr.DataArray(rng.normal(eight.mu_mean, eight.mu_sd, (4, 500)), dims=dims)
    tau = xr.DataArray(rng.normal(eight.tau_mean, eight.tau_sd, (4, 500)), dims=dims)
    draws = rng.normal(eight.theta_mean, eight.theta_sd, (4, 500, 8))
    theta = xr.DataArray(draws, dims=(*dims, "school"), coords={"school": names})
    order = [3, 0, 7, 1, 6, 2, 5, 4]
    shuffled = theta.isel(school=order)  # e.g. Bambi's sorted levels against the file's order
    same = schools.compare_to_exact(eight, mu, tau, theta, labels=names)
    again = schools.compare_to_exact(eight, mu, tau, shuffled, labels=names)
    pd.testing.assert_frame_equal(same, again)
    with pytest.raises(ValueError, match="no unit coordinate"):
        schools.compare_to_exact(eight, mu, tau, theta.drop_vars("school"), labels=names)
    with pytest.raises(ValueError, match="not the labels"):
        schools.compare_to_exact(eight, mu, tau, theta, labels=[*names[:7], "Z"])
