"""The exact posterior of the eight-schools model, by one-dimensional quadrature over tau.

The normal hierarchy with known standard errors [@rubin1981; @gelman2013, sec. 5.4] is

.. math::

    y_j \\mid \\theta_j \\sim N(\\theta_j, s_j^2), \\qquad
    \\theta_j \\mid \\mu, \\tau \\sim N(\\mu, \\tau^2), \\qquad
    \\mu \\sim N(m_0, s_0^2), \\qquad \\tau \\sim p(\\tau),

for :math:`j = 1, \\dots, J`. Given :math:`\\tau` everything else is Gaussian, so
:math:`\\theta` and :math:`\\mu` integrate out in closed form and only a one-dimensional
integral over :math:`\\tau` is left:

* integrating out :math:`\\theta_j`: :math:`y_j \\mid \\mu, \\tau \\sim N(\\mu, v_j)` with
  :math:`v_j = s_j^2 + \\tau^2`;
* :math:`\\mu \\mid \\tau, y \\sim N(\\hat\\mu, V_\\mu)` with
  :math:`V_\\mu^{-1} = s_0^{-2} + \\sum_j v_j^{-1}` and
  :math:`\\hat\\mu = V_\\mu (m_0 / s_0^2 + \\sum_j y_j / v_j)`;
* the marginal likelihood (for any :math:`\\mu`, in particular :math:`\\hat\\mu`)

  .. math::

      p(y \\mid \\tau) = \\frac{\\prod_j N(y_j \\mid \\mu, v_j)\\, N(\\mu \\mid m_0, s_0^2)}
                              {N(\\mu \\mid \\hat\\mu, V_\\mu)};

* :math:`\\theta_j \\mid \\tau, y` is normal with mean
  :math:`w_j y_j + (1 - w_j) \\hat\\mu` and variance
  :math:`w_j s_j^2 + (1 - w_j)^2 V_\\mu`, where :math:`w_j = \\tau^2 / (\\tau^2 + s_j^2)`
  (the conditional mean given :math:`\\mu` is :math:`w_j y_j + (1-w_j)\\mu`, with variance
  :math:`w_j s_j^2`; then average over :math:`\\mu`).

Then :math:`p(\\tau \\mid y) \\propto p(\\tau)\\, p(y \\mid \\tau)`, and every posterior moment is
an average of a conditional moment over it. The integral is taken in the prior's probability
scale, :math:`u = F(\\tau) \\in (0, 1)`, where :math:`p(\\tau)\\,d\\tau = du`:

.. math::

    E[g(\\tau) \\mid y] = \\frac{\\int_0^1 g(F^{-1}(u))\\, p(y \\mid F^{-1}(u))\\, du}
                               {\\int_0^1 p(y \\mid F^{-1}(u))\\, du},

with Gauss-Legendre nodes. The integrand is bounded and smooth, and vanishes at
:math:`u \\to 1` because :math:`p(y \\mid \\tau)` falls like :math:`\\tau^{-J}`, so a few
hundred nodes give the moments to many digits for any prior with a quantile function (the
default is Gelman's half-Cauchy with scale 5 [@gelman2006]).

The quadrature is pure NumPy/SciPy. The module also holds the small helpers the chapter
"Partial pooling from first principles" uses to compare posteriors: :func:`flat_draws`,
:func:`group_moments` (for prior predictive checks) and :func:`compare_to_exact` (MCMC against
the quadrature, in Monte Carlo standard errors).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
import pandas as pd
from scipy import optimize, stats

__all__ = [
    "flat_draws",
    "group_moments",
    "compare_to_exact",
    "mu_conditional",
    "theta_conditional",
    "log_marginal_likelihood",
    "ExactPosterior",
    "exact_posterior",
]


@lru_cache(maxsize=8)
def _gauss_legendre(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Gauss-Legendre nodes and weights on (0, 1) (cached: computing them is the slow part)."""
    nodes, weights = np.polynomial.legendre.leggauss(n)
    nodes, weights = 0.5 * (nodes + 1), 0.5 * weights
    nodes.flags.writeable = False
    weights.flags.writeable = False
    return nodes, weights


def _data(y, se) -> tuple[np.ndarray, np.ndarray]:
    """Validate estimates and standard errors: equal-length, finite, non-empty, se > 0."""
    y = np.atleast_1d(np.asarray(y, dtype=float))
    se = np.atleast_1d(np.asarray(se, dtype=float))
    if y.ndim != 1 or se.ndim != 1 or y.size == 0:
        raise ValueError("y and se must be non-empty one-dimensional arrays")
    if y.shape != se.shape:
        raise ValueError(f"y and se must have the same length ({y.size} != {se.size})")
    if not (np.all(np.isfinite(y)) and np.all(np.isfinite(se))):
        raise ValueError("y and se must be finite")
    if np.any(se <= 0):
        raise ValueError("se must be strictly positive")
    return y, se


def _tau(tau) -> np.ndarray:
    """tau as a 1-D array of non-negative finite values."""
    tau = np.atleast_1d(np.asarray(tau, dtype=float))
    if tau.ndim != 1 or not np.all(np.isfinite(tau)) or np.any(tau < 0):
        raise ValueError("tau must be finite and non-negative")
    return tau


def _prior_mu(mu_loc: float, mu_scale: float) -> tuple[float, float]:
    """Validate the normal prior on mu."""
    if not (np.isfinite(mu_loc) and np.isfinite(mu_scale) and mu_scale > 0):
        raise ValueError("the prior on mu needs a finite location and a positive finite scale")
    return float(mu_loc), float(mu_scale)


def mu_conditional(tau, y, se, mu_loc: float = 0.0, mu_scale: float = 5.0):
    """Mean and variance of :math:`\\mu \\mid \\tau, y` (theta integrated out).

    :math:`V_\\mu = (s_0^{-2} + \\sum_j (s_j^2 + \\tau^2)^{-1})^{-1}`,
    :math:`\\hat\\mu = V_\\mu (m_0/s_0^2 + \\sum_j y_j/(s_j^2 + \\tau^2))`.

    Parameters
    ----------
    tau : float or array_like
        Values of the between-unit standard deviation.
    y, se : array_like
        Estimates and their (known) standard errors.
    mu_loc, mu_scale : float
        Mean :math:`m_0` and standard deviation :math:`s_0` of the normal prior on mu.

    Returns
    -------
    mean, var : ndarray, shape (len(tau),)
    """
    y, se = _data(y, se)
    mu_loc, mu_scale = _prior_mu(mu_loc, mu_scale)
    tau = _tau(tau)
    v = se[None, :] ** 2 + tau[:, None] ** 2
    precision = 1.0 / mu_scale**2 + (1.0 / v).sum(axis=1)
    mean = (mu_loc / mu_scale**2 + (y[None, :] / v).sum(axis=1)) / precision
    return mean, 1.0 / precision


def theta_conditional(tau, y, se, mu_loc: float = 0.0, mu_scale: float = 5.0):
    """Means and variances of :math:`\\theta_j \\mid \\tau, y` (mu integrated out).

    With :math:`w_j = \\tau^2/(\\tau^2 + s_j^2)`: mean :math:`w_j y_j + (1 - w_j)\\hat\\mu`,
    variance :math:`w_j s_j^2 + (1 - w_j)^2 V_\\mu` (see :func:`mu_conditional`).

    Returns
    -------
    mean, var : ndarray, shape (len(tau), len(y))
    """
    y, se = _data(y, se)
    tau = _tau(tau)
    mu_hat, v_mu = mu_conditional(tau, y, se, mu_loc, mu_scale)
    t2 = tau[:, None] ** 2
    w = t2 / (t2 + se[None, :] ** 2)
    mean = w * y[None, :] + (1 - w) * mu_hat[:, None]
    var = w * se[None, :] ** 2 + (1 - w) ** 2 * v_mu[:, None]
    return mean, var


def log_marginal_likelihood(tau, y, se, mu_loc: float = 0.0, mu_scale: float = 5.0) -> np.ndarray:
    """:math:`\\log p(y \\mid \\tau)` with theta and mu integrated out.

    Equals the log density of :math:`N(m_0 \\mathbf{1}, \\mathrm{diag}(s_j^2 + \\tau^2) +
    s_0^2 \\mathbf{1}\\mathbf{1}^\\top)` at ``y``, computed in O(J) per tau as
    :math:`\\sum_j \\log N(y_j \\mid \\hat\\mu, v_j) + \\log N(\\hat\\mu \\mid m_0, s_0^2) +
    \\tfrac12 \\log(2\\pi V_\\mu)`.

    Returns
    -------
    ndarray, shape (len(tau),)
    """
    y, se = _data(y, se)
    mu_loc, mu_scale = _prior_mu(mu_loc, mu_scale)
    tau = _tau(tau)
    mu_hat, v_mu = mu_conditional(tau, y, se, mu_loc, mu_scale)
    v = se[None, :] ** 2 + tau[:, None] ** 2
    ll = stats.norm.logpdf(y[None, :], mu_hat[:, None], np.sqrt(v)).sum(axis=1)
    return ll + stats.norm.logpdf(mu_hat, mu_loc, mu_scale) + 0.5 * np.log(2 * np.pi * v_mu)


@dataclass(frozen=True)
class ExactPosterior:
    """Posterior moments of the eight-schools model computed by quadrature over tau.

    Attributes
    ----------
    tau_mean, tau_sd, mu_mean, mu_sd : float
        Posterior means and standard deviations.
    theta_mean, theta_sd : ndarray
        Posterior means and standard deviations of each :math:`\\theta_j`.
    log_evidence : float
        :math:`\\log p(y)` (the normalising constant).
    """

    tau_mean: float
    tau_sd: float
    mu_mean: float
    mu_sd: float
    theta_mean: np.ndarray
    theta_sd: np.ndarray
    log_evidence: float
    y: np.ndarray = field(repr=False)
    se: np.ndarray = field(repr=False)
    mu_loc: float = field(repr=False)
    mu_scale: float = field(repr=False)
    tau_prior: object = field(repr=False)
    n_nodes: int = field(repr=False)

    def _loglik(self, tau) -> np.ndarray:
        return log_marginal_likelihood(tau, self.y, self.se, self.mu_loc, self.mu_scale)

    def tau_density(self, tau) -> np.ndarray:
        """Posterior density :math:`p(\\tau \\mid y) = p(\\tau) p(y \\mid \\tau) / p(y)`."""
        tau = _tau(tau)
        return self.tau_prior.pdf(tau) * np.exp(self._loglik(tau) - self.log_evidence)

    def tau_cdf(self, tau) -> np.ndarray:
        """Posterior CDF :math:`P(\\tau' \\le \\tau \\mid y)`, by quadrature on (0, F(tau))."""
        tau = _tau(tau)
        nodes, weights = _gauss_legendre(self.n_nodes)
        out = np.empty(tau.size)
        for i, upper in enumerate(self.tau_prior.cdf(tau)):
            inside = self._loglik(self.tau_prior.ppf(upper * nodes)) - self.log_evidence
            out[i] = upper * np.sum(weights * np.exp(inside))
        return np.clip(out, 0.0, 1.0)

    def tau_quantile(self, q: float) -> float:
        """Posterior quantile of tau (root of :meth:`tau_cdf`)."""
        if not 0 < q < 1:
            raise ValueError("q must lie strictly between 0 and 1")
        upper = self.tau_mean + 10 * self.tau_sd
        while self.tau_cdf(upper)[0] < q:
            upper *= 2
        return float(optimize.brentq(lambda t: self.tau_cdf(t)[0] - q, 0.0, upper, xtol=1e-10))

    def to_frame(self, labels=None) -> pd.DataFrame:
        """Posterior mean and sd of mu, tau and each theta_j (index ``mu``, ``tau``, labels)."""
        labels = [f"theta[{j}]" for j in range(self.y.size)] if labels is None else list(labels)
        return pd.DataFrame(
            {
                "mean": np.r_[self.mu_mean, self.tau_mean, self.theta_mean],
                "sd": np.r_[self.mu_sd, self.tau_sd, self.theta_sd],
            },
            index=pd.Index(["mu", "tau", *labels]),
        )


def exact_posterior(
    y,
    se,
    mu_loc: float = 0.0,
    mu_scale: float = 5.0,
    tau_prior=None,
    n_nodes: int = 400,
) -> ExactPosterior:
    """Posterior of the normal hierarchy with known standard errors, by quadrature over tau.

    Parameters
    ----------
    y, se : array_like
        Estimates :math:`y_j` and their standard errors :math:`s_j` (> 0).
    mu_loc, mu_scale : float
        The normal prior on mu: :math:`N(m_0, s_0^2)`; default N(0, 5^2).
    tau_prior : scipy.stats frozen distribution, optional
        Prior on tau, supported on [0, inf) with ``pdf``, ``cdf`` and ``ppf``; default
        ``scipy.stats.halfcauchy(scale=5)``.
    n_nodes : int
        Gauss-Legendre nodes on the prior's probability scale.

    Returns
    -------
    ExactPosterior

    Notes
    -----
    With :math:`u_k, w_k` the nodes and weights on (0, 1), :math:`\\tau_k = F^{-1}(u_k)` and
    :math:`L_k = p(y \\mid \\tau_k)`: :math:`p(y) \\approx \\sum_k w_k L_k`, and
    :math:`E[g \\mid y] \\approx \\sum_k w_k L_k E[g \\mid \\tau_k, y] / p(y)`. Posterior
    variances add the conditional variances' average to the conditional means' variance.

    References
    ----------
    .. [rubin1981] Rubin (1981), Estimation in parallel randomized experiments.
    .. [gelman2013] Gelman et al. (2013), *Bayesian Data Analysis*, 3rd ed., sec. 5.4.
    .. [gelman2006] Gelman (2006), Prior distributions for variance parameters in
       hierarchical models.
    """
    y, se = _data(y, se)
    mu_loc, mu_scale = _prior_mu(mu_loc, mu_scale)
    if tau_prior is None:
        tau_prior = stats.halfcauchy(scale=5.0)
    if int(n_nodes) < 2:
        raise ValueError("n_nodes must be at least 2")
    u, w = _gauss_legendre(int(n_nodes))
    tau = tau_prior.ppf(u)
    if not np.all(np.isfinite(tau)) or np.any(tau < 0):
        raise ValueError("tau_prior must be supported on [0, inf) with a finite quantile function")
    ll = log_marginal_likelihood(tau, y, se, mu_loc, mu_scale)
    top = ll.max()
    mass = w * np.exp(ll - top)
    evidence = mass.sum()
    p = mass / evidence

    def moments(mean, var):
        m = np.tensordot(p, mean, axes=1)
        v = np.tensordot(p, var + mean**2, axes=1) - m**2
        return m, np.sqrt(np.maximum(v, 0.0))

    tau_mean, tau_sd = moments(tau, np.zeros_like(tau))
    mu_mean, mu_sd = moments(*mu_conditional(tau, y, se, mu_loc, mu_scale))
    theta_mean, theta_sd = moments(*theta_conditional(tau, y, se, mu_loc, mu_scale))
    return ExactPosterior(
        tau_mean=float(tau_mean), tau_sd=float(tau_sd), mu_mean=float(mu_mean), mu_sd=float(mu_sd),
        theta_mean=theta_mean, theta_sd=theta_sd, log_evidence=float(top + np.log(evidence)),
        y=y, se=se, mu_loc=mu_loc, mu_scale=mu_scale, tau_prior=tau_prior, n_nodes=int(n_nodes),
    )


# --------------------------------------------------------------------------- #
# Helpers for comparing posteriors
# --------------------------------------------------------------------------- #
def flat_draws(da) -> tuple[np.ndarray, list[str]]:
    """Posterior draws of a variable as a (samples, levels) array, with the level labels.

    The draws are :func:`hbm.posterior.draws` (chains stacked, chain-major).

    Parameters
    ----------
    da : xarray.DataArray
        Dimensions ``chain``, ``draw`` and at most one more (the levels, e.g. schools).

    Returns
    -------
    draws : ndarray, shape (chains * draws, n_levels)
        A scalar variable gives one column.
    labels : list of str
        The level labels (the variable's name for a scalar).
    """
    other = [d for d in da.dims if d not in ("chain", "draw")]
    if len(other) > 1:
        raise ValueError(f"expected at most one dimension besides chain and draw, found {other}")
    from hbm.posterior import draws

    flat = draws(da).astype(float)
    if not other:
        return flat[:, None], [str(da.name)]
    return flat, [str(v) for v in da[other[0]].values]


def group_moments(values, codes, n_groups: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Per-group means and standard deviations (ddof 1) of every row of ``values``.

    For a prior or posterior predictive check: each row of ``values`` is one simulated data
    set of ``n_obs`` observations, and ``codes`` says which group each observation is in.

    Parameters
    ----------
    values : array_like, shape (..., n_obs)
        Simulated (or observed) data sets.
    codes : array_like of int, shape (n_obs,)
        Group of each observation, ``0 .. n_groups - 1``; every group needs at least one.
    n_groups : int, optional
        Number of groups (default ``max(codes) + 1``).

    Returns
    -------
    means, sds : ndarray, shape (..., n_groups)
        :math:`\\bar y_j = \\sum_{i \\in j} y_i / n_j` and
        :math:`s_j = \\sqrt{\\sum_{i \\in j} (y_i - \\bar y_j)^2 / (n_j - 1)}` (two-pass).
        The standard deviation of a group with a single observation is NaN (one value has no
        spread); its mean is that value.

    Raises
    ------
    ValueError
        ``codes`` of the wrong shape, negative or not integers, or a group with no observation.
    """
    values = np.asarray(values, dtype=float)
    codes = np.asarray(codes)
    if codes.ndim != 1 or values.shape[-1] != codes.size:
        raise ValueError("codes must be one-dimensional with one entry per observation")
    if codes.size and (codes.min() < 0 or not np.issubdtype(codes.dtype, np.integer)):
        raise ValueError("codes must be non-negative integers")
    n_groups = int(codes.max()) + 1 if n_groups is None else int(n_groups)
    onehot = np.zeros((codes.size, n_groups))
    onehot[np.arange(codes.size), codes] = 1.0
    counts = onehot.sum(axis=0)
    if np.any(counts < 1):
        empty = np.flatnonzero(counts < 1).tolist()
        raise ValueError(f"every group needs at least one observation; none in group(s) {empty[:10]}")
    means = values @ onehot / counts
    deviations = values - means[..., codes]
    with np.errstate(divide="ignore", invalid="ignore"):  # a one-observation group: 0 / 0
        sds = np.sqrt(deviations**2 @ onehot / (counts - 1))
    return means, np.where(counts >= 2, sds, np.nan)


def compare_to_exact(exact: ExactPosterior, mu, tau, theta, labels=None) -> pd.DataFrame:
    """Posterior means from MCMC against the quadrature, in Monte Carlo standard errors.

    Parameters
    ----------
    exact : ExactPosterior
        From :func:`exact_posterior` on the same data and priors.
    mu, tau : xarray.DataArray
        Draws with dimensions ``chain`` and ``draw``.
    theta : xarray.DataArray
        Draws with dimensions ``chain``, ``draw`` and one for the units.
    labels : sequence of str, optional
        The units' labels in the order of the data given to :func:`exact_posterior`. The
        units of ``theta`` are matched to them by label (its unit coordinate), never by
        position; without ``labels``, ``theta`` must have no unit coordinate or the same one.

    Returns
    -------
    pandas.DataFrame
        Index ``mu``, ``tau`` and the unit labels; columns ``exact`` (quadrature mean),
        ``exact_sd``, ``mcmc`` (MCMC mean), ``mcse`` (its Monte Carlo standard error, from
        ``arviz.mcse``, which accounts for autocorrelation) and ``z`` =
        (mcmc - exact) / mcse. If the sampler explored the posterior, ``|z|`` exceeds 3
        rarely (about 0.3% of parameters).
    """
    import arviz as az
    import xarray as xr

    unit_dim = [d for d in theta.dims if d not in ("chain", "draw")]
    if len(unit_dim) != 1 or theta.sizes[unit_dim[0]] != exact.y.size:
        raise ValueError(f"theta needs one unit dimension of length {exact.y.size}")
    theta = theta.rename({unit_dim[0]: "unit"})
    coord = [str(v) for v in theta["unit"].values] if "unit" in theta.coords else None
    if labels is not None:
        labels = [str(v) for v in labels]
        if coord is None:
            raise ValueError("theta has no unit coordinate to match the labels with")
        if sorted(coord) != sorted(labels):
            raise ValueError(f"theta's units {coord} are not the labels {labels}")
        theta = theta.assign_coords(unit=coord).sel(unit=labels)
    else:
        labels = coord
    ds = xr.Dataset({"mu": mu, "tau": tau, "theta": theta})
    mcse = az.mcse(ds)
    frame = exact.to_frame(labels).rename(columns={"mean": "exact", "sd": "exact_sd"})
    frame["mcmc"] = np.r_[float(ds["mu"].mean()), float(ds["tau"].mean()),
                          ds["theta"].mean(("chain", "draw")).values]
    frame["mcse"] = np.r_[float(mcse["mu"]), float(mcse["tau"]), mcse["theta"].values]
    frame["z"] = (frame["mcmc"] - frame["exact"]) / frame["mcse"]
    return frame
