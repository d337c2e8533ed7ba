"""Parametric empirical Bayes by marginal maximum likelihood.

Three conjugate two-level models, each fitted by maximising the marginal
likelihood of the hyperparameters and then plugging them into the closed-form
posterior of every unit [@robbins1956; @efron1975; @morris1983; @casella1985;
@carlin2000]:

- normal-normal (:func:`fit_normal_normal`): ``y_i ~ N(theta_i, s_i^2)``,
  ``theta_i ~ N(mu_g, tau^2)``;
- beta-binomial (:func:`fit_beta_binomial`): ``k_i ~ Bin(n_i, p_i)``,
  ``p_i ~ Beta(alpha, beta)``;
- Dirichlet-multinomial (:func:`fit_dirichlet_multinomial`):
  ``x_i ~ Mult(n_i, p_i)``, ``p_i ~ Dirichlet(alpha)`` [@mosimann1962;
  @minka2000], fitted from additive sufficient statistics
  (:class:`DMSuffStats`) so that chunks of a large data set (e.g. Dask
  partitions) can be summarised separately and merged.

All plug-in posteriors ignore the uncertainty in the estimated
hyperparameters, so their intervals are too narrow when the number of units
is small [@morris1983; @carlin2000]; the full Bayesian chapters fix this.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import optimize, special, stats

from hbm.pooling import _estimates_and_errors, _factorize, _weighted_group_means
from hbm.dirichlet_multinomial import dm_loglik
from hbm.normal_normal import nn_loglik

__all__ = [
    "NormalNormalFit",
    "fit_normal_normal",
    "normal_normal_loglik",
    "normal_normal_posterior",
    "BetaBinomialFit",
    "fit_beta_binomial",
    "beta_binomial_loglik",
    "DEFAULT_MAX_CONCENTRATION",
    "DMSuffStats",
    "DirichletPosterior",
    "DirichletMultinomialFit",
    "dirichlet_multinomial_suffstats",
    "dirichlet_multinomial_loglik",
    "fit_dirichlet_multinomial",
    "fit_dirichlet_multinomial_from_suffstats",
    "dirichlet_posterior",
]

#: Cap on the prior concentration (``alpha + beta`` or ``sum(alpha)``) when the
#: data show no overdispersion and the marginal MLE lies at infinity.
DEFAULT_MAX_CONCENTRATION = 1e6


def _check_prob(prob: float) -> float:
    """Validate a central-interval probability in (0, 1)."""
    prob = float(prob)
    if not 0.0 < prob < 1.0:
        raise ValueError(f"prob must lie strictly between 0 and 1, got {prob}")
    return prob


# =========================================================================== #
# Normal-normal
# =========================================================================== #
def normal_normal_loglik(mu, tau, estimates, std_errors) -> float:
    r"""Marginal log-likelihood of the normal-normal model.

    Integrating ``theta_i`` out of ``y_i ~ N(theta_i, s_i^2)``,
    ``theta_i ~ N(mu_i, tau^2)`` gives ``y_i ~ N(mu_i, s_i^2 + tau^2)``:

    .. math::

        \ell(\mu, \tau) = -\tfrac12 \sum_i \Big[\log\{2\pi(s_i^2+\tau^2)\}
        + \frac{(y_i-\mu_i)^2}{s_i^2+\tau^2}\Big]

    [@efron1975; @gelman2013, sec. 5.4], computed by :func:`hbm.normal_normal.nn_loglik`
    (the code chapter 4 shows).

    Parameters
    ----------
    mu : float or array-like, shape (n_units,)
        Prior mean (a scalar, or one value per unit).
    tau : float
        Prior standard deviation, ``tau >= 0``.
    estimates, std_errors : array-like, shape (n_units,)
        ``y_i`` and known ``s_i > 0``.

    Returns
    -------
    float

    Raises
    ------
    ValueError
        Bad data (see :func:`fit_normal_normal`), negative or non-finite
        ``tau``, or ``mu`` of the wrong length.
    """
    y, s = _estimates_and_errors(estimates, std_errors)
    tau = float(tau)
    if not np.isfinite(tau) or tau < 0:
        raise ValueError(f"tau must be finite and >= 0, got {tau}")
    m = np.asarray(mu, dtype=float)
    if m.ndim > 1 or (m.ndim == 1 and m.size not in (1, y.size)):
        raise ValueError("mu must be a scalar or have one value per unit")
    if not np.all(np.isfinite(m)):
        raise ValueError("mu must be finite")
    return nn_loglik(m, tau, y, s)


def normal_normal_posterior(
    estimates, std_errors, mu, tau
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    r"""Conjugate posterior of each ``theta_i`` given ``mu`` and ``tau``.

    With shrinkage ``B_i = s_i^2 / (s_i^2 + tau^2)`` (``B_i = 1`` when
    ``tau = 0``):

    .. math::

        \theta_i \mid y_i \sim N\big(\mu_i + (1-B_i)(y_i-\mu_i),\;
        (1-B_i)\, s_i^2\big)

    [@efron1975; @morris1983]. ``tau -> 0`` gives complete pooling
    (``theta_i = mu_i``), ``tau -> infinity`` no pooling (``theta_i = y_i``).

    Parameters
    ----------
    estimates, std_errors : array-like, shape (n_units,)
        ``y_i`` and known ``s_i > 0``.
    mu : float or array-like, shape (n_units,)
        Prior mean(s).
    tau : float
        Prior standard deviation, ``tau >= 0`` (``np.inf`` allowed).

    Returns
    -------
    posterior_mean, posterior_sd, shrinkage : ndarray, shape (n_units,)

    Raises
    ------
    ValueError
        Bad data, ``tau < 0`` or NaN, or ``mu`` of the wrong length.
    """
    y, s = _estimates_and_errors(estimates, std_errors)
    tau = float(tau)
    if np.isnan(tau) or tau < 0:
        raise ValueError(f"tau must be >= 0, got {tau}")
    m = np.broadcast_to(np.asarray(mu, dtype=float), y.shape)
    if not np.all(np.isfinite(m)):
        raise ValueError("mu must be finite")
    s2 = s**2
    shrink = np.zeros_like(s2) if np.isinf(tau) else s2 / (s2 + tau**2)
    return m + (1.0 - shrink) * (y - m), np.sqrt((1.0 - shrink) * s2), shrink


@dataclass(frozen=True, eq=False)
class NormalNormalFit:
    r"""Result of :func:`fit_normal_normal`.

    Attributes
    ----------
    mu : float or ndarray
        ML prior mean: a float without groups, else one value per group,
        aligned with ``group_labels``.
    group_labels : ndarray or None
        Unique group labels in order of first appearance (None without groups).
    tau : float
        ML prior standard deviation (``>= 0``; exactly 0 at the boundary).
    mu_unit : ndarray, shape (n_units,)
        Prior mean of each unit (its group's ``mu``).
    shrinkage : ndarray, shape (n_units,)
        ``B_i = s_i^2 / (s_i^2 + tau^2)``; 1 when ``tau = 0``.
    posterior_mean : ndarray, shape (n_units,)
        ``mu_unit + (1 - B_i)(y_i - mu_unit)``.
    posterior_sd : ndarray, shape (n_units,)
        ``sqrt((1 - B_i) s_i^2)``; exactly 0 when ``tau = 0`` (see Notes).
    loglik : float
        Maximised marginal log-likelihood.
    estimates, std_errors : ndarray, shape (n_units,)
        The data.

    Notes
    -----
    The plug-in posterior treats ``mu`` and ``tau`` as known. When the MLE is
    ``tau = 0`` every unit is set to its group mean with posterior sd 0 and
    zero-width intervals: the well-known weakness of parametric empirical
    Bayes, which ignores the uncertainty in the hyperparameters
    [@morris1983; @carlin2000].
    """

    mu: float | np.ndarray
    group_labels: np.ndarray | None
    tau: float
    mu_unit: np.ndarray
    shrinkage: np.ndarray
    posterior_mean: np.ndarray
    posterior_sd: np.ndarray
    loglik: float
    estimates: np.ndarray = field(repr=False)
    std_errors: np.ndarray = field(repr=False)

    def interval(self, prob: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
        r"""Central normal posterior interval ``posterior_mean -/+ z * posterior_sd``.

        ``z = Phi^{-1}((1 + prob) / 2)``. Zero width where ``posterior_sd = 0``.

        Parameters
        ----------
        prob : float, default 0.95
            Interval probability in (0, 1).

        Returns
        -------
        lower, upper : ndarray, shape (n_units,)
        """
        z = stats.norm.ppf(0.5 + _check_prob(prob) / 2.0)
        return (self.posterior_mean - z * self.posterior_sd,
                self.posterior_mean + z * self.posterior_sd)


def _nn_profile(y, s2, codes, n_groups, tau):
    """Profile log-likelihood at ``tau`` and the ML group means for that tau."""
    v = s2 + tau * tau
    w = 1.0 / v
    mu_g, _ = _weighted_group_means(y, w, codes, n_groups)
    r = y - mu_g[codes]
    ll = -0.5 * float(np.sum(np.log(2.0 * np.pi * v) + r * r * w))
    return ll, mu_g


def _nn_score(y, s2, codes, n_groups, tau):
    """Sign-carrying profile score: d loglik / d tau^2 (times 2) at ``tau``."""
    v = s2 + tau * tau
    w = 1.0 / v
    mu_g, _ = _weighted_group_means(y, w, codes, n_groups)
    r = y - mu_g[codes]
    return float(np.sum(w * w * (r * r - v)))


def fit_normal_normal(estimates, std_errors, groups=None) -> NormalNormalFit:
    r"""Empirical Bayes for the normal-normal model by marginal ML.

    Model: ``y_i ~ N(theta_i, s_i^2)`` with ``s_i`` known and
    ``theta_i ~ N(mu_{g(i)}, tau^2)``, one ``mu`` per group (or a single
    ``mu`` without ``groups``) and one shared ``tau``. The hyperparameters
    maximise the marginal likelihood ``y_i ~ N(mu_g, s_i^2 + tau^2)`` (see
    :func:`normal_normal_loglik`) [@efron1975; @morris1983; @gelman2013,
    sec. 5.4]. For fixed ``tau`` the ML ``mu_g`` is the precision-weighted
    mean

    .. math:: \hat\mu_g(\tau) = \frac{\sum_{i\in g} y_i/(s_i^2+\tau^2)}{\sum_{i\in g} 1/(s_i^2+\tau^2)},

    so ``tau`` is found by maximising the profile likelihood: a log-spaced
    grid on ``(0, tau_max]`` with ``tau_max`` the largest within-group range
    of ``y`` (no stationary point can lie beyond it), a bounded Brent search
    around the best grid point, polished by solving the profile score
    equation ``sum_i w_i^2 {(y_i - mu_g)^2 - s_i^2 - tau^2} = 0`` with
    ``w_i = 1/(s_i^2 + tau^2)`` (Brent alone finds a flat maximum only to
    about ``sqrt(eps)``), and an exact check of ``tau = 0``. The MLE is
    often at that boundary: Rubin's eight schools [@rubin1981] give
    ``tau_hat = 0`` exactly. Ties within ``1e-12`` relative log-likelihood
    are resolved towards ``tau = 0``.

    Parameters
    ----------
    estimates : array-like, shape (n_units,)
        Unit estimates ``y_i``.
    std_errors : array-like, shape (n_units,)
        Known standard errors ``s_i > 0``.
    groups : array-like, shape (n_units,), optional
        Group label of each unit (strings or integers): one prior mean per
        group.

    Returns
    -------
    NormalNormalFit
        Plug-in posterior of every unit (:func:`normal_normal_posterior`).

    Raises
    ------
    ValueError
        Mismatched lengths, empty or non-finite input, non-positive standard
        errors, or missing group labels.
    """
    y, s = _estimates_and_errors(estimates, std_errors)
    if groups is None:
        codes, labels, n_groups = np.zeros(y.size, dtype=np.intp), None, 1
    else:
        codes, labels = _factorize(groups, y.size)
        n_groups = labels.size
    s2 = s**2

    def negll(t: float) -> float:
        return -_nn_profile(y, s2, codes, n_groups, t)[0]

    # largest within-group range bounds any stationary tau
    gmax = np.full(n_groups, -np.inf)
    gmin = np.full(n_groups, np.inf)
    np.maximum.at(gmax, codes, y)
    np.minimum.at(gmin, codes, y)
    tau_max = float(np.max(gmax - gmin))

    ll0 = -negll(0.0)
    tau_hat, ll_hat = 0.0, ll0
    if tau_max > 0:
        lo = min(1e-4 * float(np.min(s)), 1e-3 * tau_max)
        grid = np.concatenate([[0.0], np.geomspace(lo, tau_max, 64)])
        vals = np.array([-negll(t) for t in grid])
        j = int(np.argmax(vals))
        a, b = grid[max(j - 1, 0)], grid[min(j + 1, grid.size - 1)]
        res = optimize.minimize_scalar(
            negll, bounds=(a, b), method="bounded",
            options={"xatol": 1e-10 * max(b, 1e-300), "maxiter": 500},
        )
        cands = [(float(grid[j]), float(vals[j])), (float(res.x), -float(res.fun))]
        t_best, l_best = max(cands, key=lambda c: c[1])
        # Brent locates a flat maximum only to ~sqrt(eps); polish by solving the
        # profile score equation sum w^2 ((y - mu)^2 - v) = 0 within the bracket
        sa, sb = _nn_score(y, s2, codes, n_groups, a), _nn_score(y, s2, codes, n_groups, b)
        if sa > 0 > sb:
            root = optimize.brentq(lambda t: _nn_score(y, s2, codes, n_groups, t), a, b,
                                   xtol=1e-15 * b, rtol=4 * np.finfo(float).eps)
            l_root = -negll(root)
            if l_root >= l_best - 1e-12 * (1.0 + abs(l_best)):
                t_best, l_best = root, max(l_root, l_best)
        # prefer the exact boundary unless the interior is clearly better
        if l_best > ll0 + 1e-12 * (1.0 + abs(ll0)) and t_best > 0:
            tau_hat, ll_hat = t_best, l_best

    ll_hat, mu_g = _nn_profile(y, s2, codes, n_groups, tau_hat)
    mu_unit = mu_g[codes]
    post_mean, post_sd, shrink = normal_normal_posterior(y, s, mu_unit, tau_hat)
    return NormalNormalFit(
        mu=float(mu_g[0]) if labels is None else mu_g,
        group_labels=labels,
        tau=float(tau_hat),
        mu_unit=mu_unit,
        shrinkage=shrink,
        posterior_mean=post_mean,
        posterior_sd=post_sd,
        loglik=ll_hat,
        estimates=y,
        std_errors=s,
    )


# =========================================================================== #
# Polya (Dirichlet-multinomial) marginal likelihood on weighted bins
# =========================================================================== #
# The DM log-likelihood depends on alpha only through
#   sum_k sum_c h_k[c] (lgamma(c + a_k) - lgamma(a_k))
#   - sum_m t[m] (lgamma(m + A) - lgamma(A)),           A = sum_k a_k,
# where h_k[c] counts units with x_ik = c and t[m] units with total m. Bins
# with c = 0 or m = 0 contribute nothing, so only nonzero bins are kept.
_HALF_LOG_2PI = 0.5 * np.log(2.0 * np.pi)
_SERIES_MIN = 30.0  # asymptotic series below are accurate to ~1e-17 from here


def _lgamma_corr(x: np.ndarray) -> np.ndarray:
    """Stirling remainder ``lgamma(x) - [(x - 1/2) log x - x + log(2 pi)/2]``."""
    x = np.asarray(x, dtype=float)
    out = np.empty_like(x)
    big = x >= _SERIES_MIN
    r = 1.0 / x[big]
    r2 = r * r
    out[big] = r * (1 / 12 - r2 * (1 / 360 - r2 * (1 / 1260 - r2 / 1680)))
    xs = x[~big]
    out[~big] = special.gammaln(xs) - (xs - 0.5) * np.log(xs) + xs - _HALF_LOG_2PI
    return out


def _digamma_corr(x: np.ndarray) -> np.ndarray:
    """``psi(x) - log(x)``, by its asymptotic series for large x."""
    x = np.asarray(x, dtype=float)
    out = np.empty_like(x)
    big = x >= _SERIES_MIN
    r = 1.0 / x[big]
    r2 = r * r
    out[big] = -0.5 * r - r2 * (1 / 12 - r2 * (1 / 120 - r2 * (1 / 252 - r2 / 240)))
    xs = x[~big]
    out[~big] = special.digamma(xs) - np.log(xs)
    return out


def _lgamma_ratio(a: np.ndarray, c: np.ndarray) -> np.ndarray:
    """``lgamma(a + c) - lgamma(a) - c log(a)`` without cancellation for a >> c.

    The naive difference of two ``gammaln`` values loses ``eps * a log a`` in
    absolute terms, which swamps the likelihood's dependence on a large
    concentration; this form loses only about ``eps * c``.
    """
    a, c = np.broadcast_arrays(np.asarray(a, dtype=float), np.asarray(c, dtype=float))
    return ((a + c - 0.5) * np.log1p(c / a) - c
            + _lgamma_corr(a + c) - _lgamma_corr(a))


def _digamma_diff(a: np.ndarray, c: np.ndarray) -> np.ndarray:
    """``psi(a + c) - psi(a)`` accurate for a >> c."""
    a, c = np.broadcast_arrays(np.asarray(a, dtype=float), np.asarray(c, dtype=float))
    return np.log1p(c / a) + _digamma_corr(a + c) - _digamma_corr(a)


@dataclass(frozen=True)
class _Bins:
    """Sparse weighted bins: category index, count value, multiplicity."""

    cat: np.ndarray      # (B,) category of each count bin
    val: np.ndarray      # (B,) count value c > 0
    wt: np.ndarray       # (B,) number of units with that count
    tval: np.ndarray     # (T,) total m > 0
    twt: np.ndarray      # (T,) number of units with that total
    k: int
    const: float         # sum log n_i! - sum log x_ik! (multinomial coefficients)
    xk: np.ndarray       # (K,) total count of each category


def _make_bins(cat, val, wt, tval, twt, k) -> _Bins:
    val, wt = np.asarray(val, dtype=float), np.asarray(wt, dtype=float)
    tval, twt = np.asarray(tval, dtype=float), np.asarray(twt, dtype=float)
    const = float(np.sum(twt * special.gammaln(tval + 1.0))
                  - np.sum(wt * special.gammaln(val + 1.0)))
    xk = np.bincount(cat, weights=wt * val, minlength=k)
    return _Bins(np.asarray(cat, dtype=np.intp), val, wt, tval, twt, int(k), const, xk)


def _bins_from_hist(count_hist: np.ndarray, total_hist: np.ndarray) -> _Bins:
    """Nonzero bins of the histograms (zero counts/totals contribute nothing)."""
    k_idx, c_idx = np.nonzero(count_hist[:, 1:])
    wt = count_hist[:, 1:][k_idx, c_idx]
    m = np.nonzero(total_hist[1:])[0]
    return _make_bins(k_idx, c_idx + 1, wt, m + 1, total_hist[1:][m], count_hist.shape[0])


def _bins_from_counts(x: np.ndarray) -> _Bins:
    """Sparse bins from a count matrix via ``np.unique`` (memory O(n_units))."""
    cats, vals, wts = [], [], []
    for j in range(x.shape[1]):
        col = x[:, j]
        v, w = np.unique(col[col > 0], return_counts=True)
        cats.append(np.full(v.size, j, dtype=np.intp))
        vals.append(v)
        wts.append(w)
    tot = x.sum(axis=1)
    tval, twt = np.unique(tot[tot > 0], return_counts=True)
    return _make_bins(np.concatenate(cats), np.concatenate(vals), np.concatenate(wts),
                      tval, twt, x.shape[1])


def _polya_loglik(alpha: np.ndarray, b: _Bins) -> float:
    """Full DM log-likelihood (multinomial coefficients included).

    The ``c log a`` parts of the log-gamma ratios sum to
    ``sum_k X_k log(a_k / A)`` exactly; the rest is :func:`_lgamma_ratio`.
    """
    A = float(alpha.sum())
    return b.const + float(
        np.sum(b.xk * (np.log(alpha) - np.log(A)))
        + np.sum(b.wt * _lgamma_ratio(alpha[b.cat], b.val))
        - np.sum(b.twt * _lgamma_ratio(A, b.tval))
    )


def _moment_init(b: _Bins, max_conc: float) -> np.ndarray:
    r"""Method-of-moments start from count moments [@mosimann1962].

    With ``p_k = sum_i x_ik / S1``, ``S1 = sum n_i``, ``S2 = sum n_i^2`` and
    ``E[x_ik^2 | n_i] = n_i p_k(1-p_k)(n_i+A)/(1+A) + n_i^2 p_k^2`` the
    moment equation pooled over categories is ``R(1+A) = S2 + A S1`` with
    ``R = sum_k (sum_i x_ik^2 - p_k^2 S2) / sum_k p_k(1-p_k)``.
    """
    sx = np.bincount(b.cat, weights=b.wt * b.val, minlength=b.k)
    sx2 = np.bincount(b.cat, weights=b.wt * b.val**2, minlength=b.k)
    s1 = float(np.sum(b.twt * b.tval))
    s2 = float(np.sum(b.twt * b.tval**2))
    p = sx / s1
    r = float(np.sum(sx2 - p**2 * s2) / np.sum(p * (1.0 - p)))
    if r <= s1:  # underdispersed: start large
        conc = 0.1 * max_conc
    elif r >= s2:  # extreme overdispersion
        conc = 0.1
    else:
        conc = (s2 - r) / (r - s1)
    conc = float(np.clip(conc, 1e-2, 0.1 * max_conc))
    return p * conc


def _best_scale(alpha: np.ndarray, ll: float, b: _Bins, max_conc: float):
    """Maximise the likelihood of ``lam * alpha`` over ``lam`` (mean held fixed).

    Bounded Brent search on ``log(lam)``, from ``A / 1e3`` up to the cap;
    returns the input unchanged unless the likelihood increases.
    """
    A = float(alpha.sum())
    hi = np.log(max_conc / A)
    res = optimize.minimize_scalar(
        lambda u: -_polya_loglik(np.exp(u) * alpha, b),
        bounds=(-np.log(1e3), max(hi, 0.0)), method="bounded",
        options={"xatol": 1e-8, "maxiter": 200},
    )
    if -res.fun > ll:
        return np.exp(res.x) * alpha, -float(res.fun)
    return alpha, ll


def _fit_polya(b: _Bins, tol: float, max_iter: int, max_conc: float):
    r"""Maximise the DM likelihood: Newton steps guarded by Minka's fixed point.

    Each iteration proposes the Newton step for the Hessian
    ``H = diag(q) + z 1 1^T`` (solved in O(K) by Sherman-Morrison) when ``H``
    is negative definite. If that step is infeasible or lowers the
    likelihood, Minka's monotone fixed-point update
    ``a_k <- a_k sum h_k[c](psi(c+a_k)-psi(a_k)) / sum t[m](psi(m+A)-psi(A))``
    [@minka2000] is taken instead, followed by a 1-D search over the
    concentration with the mean fixed (the plain fixed point crawls where
    the likelihood is flat in ``A``). Every accepted step increases the
    likelihood. Stops when the largest relative change is below ``tol``, or
    when ``sum(alpha)`` reaches ``max_conc``.

    Returns alpha, n_iter, converged, hit_cap.
    """
    alpha = _moment_init(b, max_conc)
    ll = _polya_loglik(alpha, b)
    slack = 1e-13 * (1.0 + abs(ll))  # rounding allowance when comparing logliks
    for it in range(1, max_iter + 1):
        a = alpha[b.cat]
        A = alpha.sum()
        num = np.bincount(b.cat, weights=b.wt * _digamma_diff(a, b.val), minlength=b.k)
        den = float(np.sum(b.twt * _digamma_diff(A, b.tval)))
        grad = num - den
        q = np.bincount(b.cat, weights=b.wt * (special.polygamma(1, b.val + a)
                                                - special.polygamma(1, a)), minlength=b.k)
        z = float(np.sum(b.twt * (special.polygamma(1, A)
                                  - special.polygamma(1, b.tval + A))))
        new = None
        sm = 1.0 / z + np.sum(1.0 / q) if z > 0 else -np.inf
        if np.all(q < 0) and sm > 0:  # H negative definite (determinant lemma)
            prop = alpha - (grad - np.sum(grad / q) / sm) / q
            if np.all(prop > 0) and np.all(np.isfinite(prop)):
                ll_prop = _polya_loglik(prop, b)
                if ll_prop >= ll - slack:
                    new, ll_new = prop, ll_prop
        if new is None:
            new = alpha * num / den
            ll_new = _polya_loglik(new, b)
            new, ll_new = _best_scale(new, ll_new, b, max_conc)
        change = float(np.max(np.abs(new - alpha) / alpha))
        alpha, ll = new, ll_new
        if alpha.sum() >= max_conc * (1.0 - 1e-9):
            return alpha, it, True, True
        if change < tol:
            return alpha, it, True, False
    return alpha, max_iter, False, False


# =========================================================================== #
# Beta-binomial
# =========================================================================== #
def _binomial_data(successes, trials) -> tuple[np.ndarray, np.ndarray]:
    """Validate successes/trials: equal-length, finite, integer, 0 <= k <= n."""
    k = np.asarray(successes, dtype=float)
    n = np.asarray(trials, dtype=float)
    k = k.reshape(1) if k.ndim == 0 else k
    n = n.reshape(1) if n.ndim == 0 else n
    if k.ndim != 1 or n.ndim != 1:
        raise ValueError("successes and trials must be one-dimensional")
    if k.size != n.size:
        raise ValueError(
            f"successes and trials must have the same length ({k.size} != {n.size})"
        )
    if k.size == 0:
        raise ValueError("successes and trials must not be empty")
    if not (np.all(np.isfinite(k)) and np.all(np.isfinite(n))):
        raise ValueError("successes and trials must be finite")
    if np.any(k < 0) or np.any(n < 0):
        raise ValueError("successes and trials must be non-negative counts")
    if np.any(k != np.round(k)) or np.any(n != np.round(n)):
        raise ValueError("successes and trials must be whole numbers")
    if np.any(k > n):
        raise ValueError("successes must not exceed trials")
    return k.astype(np.int64), n.astype(np.int64)


def beta_binomial_loglik(alpha, beta, successes, trials) -> float:
    r"""Marginal (beta-binomial) log-likelihood of a Beta(alpha, beta) prior.

    .. math::

        \ell(\alpha,\beta) = \sum_i \Big[\log\binom{n_i}{k_i}
        + \log B(k_i+\alpha,\, n_i-k_i+\beta) - \log B(\alpha,\beta)\Big]

    [@casella1985; @gelman2013, sec. 5.3], computed with ``scipy.stats.betabinom.logpmf``.
    Units with ``n_i = 0`` contribute 0.

    Parameters
    ----------
    alpha, beta : float
        Positive prior parameters.
    successes, trials : array-like, shape (n_units,)
        Counts ``0 <= k_i <= n_i``.

    Returns
    -------
    float

    Raises
    ------
    ValueError
        Non-positive or non-finite ``alpha``/``beta``, or bad counts.
    """
    a, b = float(alpha), float(beta)
    if not (np.isfinite(a) and np.isfinite(b) and a > 0 and b > 0):
        raise ValueError("alpha and beta must be finite and positive")
    k, n = _binomial_data(successes, trials)
    return float(stats.betabinom.logpmf(k, n, a, b).sum())


@dataclass(frozen=True, eq=False)
class BetaBinomialFit:
    r"""Result of :func:`fit_beta_binomial`.

    Attributes
    ----------
    alpha, beta : float
        ML Beta prior parameters.
    mean : float
        Prior mean ``alpha / (alpha + beta)``.
    concentration : float
        ``alpha + beta`` (prior sample size).
    posterior_alpha, posterior_beta : ndarray, shape (n_units,)
        ``alpha + k_i`` and ``beta + n_i - k_i``.
    posterior_mean : ndarray, shape (n_units,)
        ``(alpha + k_i) / (alpha + beta + n_i)``.
    loglik : float
        Maximised marginal log-likelihood (:func:`beta_binomial_loglik`).
    boundary : bool
        True when the data show no overdispersion: the MLE has
        ``alpha + beta -> infinity`` and ``concentration`` is capped at
        ``max_concentration`` (complete pooling towards ``mean``).
    converged : bool
        Whether the optimiser met its tolerance.
    n_iter : int
        Iterations used.
    """

    alpha: float
    beta: float
    mean: float
    concentration: float
    posterior_alpha: np.ndarray
    posterior_beta: np.ndarray
    posterior_mean: np.ndarray
    loglik: float
    boundary: bool
    converged: bool
    n_iter: int

    def interval(self, prob: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
        """Equal-tailed posterior interval from the Beta quantiles.

        Parameters
        ----------
        prob : float, default 0.95
            Interval probability in (0, 1).

        Returns
        -------
        lower, upper : ndarray, shape (n_units,)
        """
        q = (1.0 - _check_prob(prob)) / 2.0
        pa, pb = self.posterior_alpha, self.posterior_beta
        return special.betaincinv(pa, pb, q), special.betaincinv(pa, pb, 1.0 - q)


def fit_beta_binomial(
    successes, trials, *, tol: float = 1e-10, max_iter: int = 10_000,
    max_concentration: float = DEFAULT_MAX_CONCENTRATION,
) -> BetaBinomialFit:
    r"""Empirical Bayes for binomial proportions: marginal ML of a Beta prior.

    Model: ``k_i ~ Bin(n_i, p_i)``, ``p_i ~ Beta(alpha, beta)``.
    ``(alpha, beta)`` maximise the beta-binomial likelihood
    (:func:`beta_binomial_loglik`) and each unit gets the conjugate posterior
    ``Beta(alpha + k_i, beta + n_i - k_i)`` [@robbins1956; @casella1985;
    @gelman2013, sec. 5.3]. The beta-binomial is the two-category
    Dirichlet-multinomial, so the same Newton / Minka fixed-point solver is
    used [@minka2000].

    Units with ``n_i = 0`` contribute nothing to the likelihood; their
    posterior is the prior. If the data are not overdispersed relative to the
    binomial the MLE has ``alpha + beta -> infinity``: the concentration is
    then capped at ``max_concentration`` (default
    :data:`DEFAULT_MAX_CONCENTRATION` = 1e6) with ``mean`` the pooled
    proportion ``sum k / sum n``, and ``boundary = True``.

    Parameters
    ----------
    successes, trials : array-like, shape (n_units,)
        Whole-number counts ``0 <= k_i <= n_i``.
    tol : float, default 1e-10
        Relative change in ``(alpha, beta)`` at which to stop.
    max_iter : int, default 10000
        Iteration limit.
    max_concentration : float, default 1e6
        Cap on ``alpha + beta``.

    Returns
    -------
    BetaBinomialFit

    Raises
    ------
    ValueError
        Mismatched lengths, empty, non-finite, negative or fractional counts,
        ``k_i > n_i``; no unit with ``n_i >= 2`` (the concentration is then
        not identified); all successes or all failures (the MLE is degenerate
        at ``alpha = 0`` or ``beta = 0``).
    """
    k, n = _binomial_data(successes, trials)
    if not np.any(n >= 2):
        raise ValueError(
            "need at least one unit with trials >= 2: alpha + beta is not "
            "identified from 0/1 trials"
        )
    if k.sum() == 0 or k.sum() == n.sum():
        raise ValueError(
            "all trials are failures (or all successes): the beta-binomial MLE "
            "is degenerate (alpha or beta = 0)"
        )
    # sparse bins straight from the units (no histogram: trials may be huge)
    fit = _fit_bins(_bins_from_counts(np.column_stack([k, n - k])), tol, max_iter,
                    max_concentration, k.size)
    alpha, beta = float(fit["alpha"][0]), float(fit["alpha"][1])
    return BetaBinomialFit(
        alpha=alpha, beta=beta, mean=alpha / (alpha + beta),
        concentration=alpha + beta,
        posterior_alpha=alpha + k, posterior_beta=beta + (n - k),
        posterior_mean=(alpha + k) / (alpha + beta + n),
        loglik=fit["loglik"], boundary=fit["boundary"],
        converged=fit["converged"], n_iter=fit["n_iter"],
    )


# =========================================================================== #
# Dirichlet-multinomial
# =========================================================================== #
def _count_matrix(counts) -> np.ndarray:
    """Validate an (n_units, K) matrix of whole non-negative counts, K >= 2."""
    x = np.asarray(counts)
    if x.ndim != 2:
        raise ValueError(f"counts must be a 2-D (n_units, K) array, got shape {x.shape}")
    if x.shape[0] == 0:
        raise ValueError("counts must have at least one unit (row)")
    if x.shape[1] < 2:
        raise ValueError("counts need at least 2 categories (columns)")
    if x.dtype.kind in "iu":
        if x.dtype.kind == "i" and x.min() < 0:
            raise ValueError("counts must be non-negative")
        return x.astype(np.int64, copy=False)
    if x.dtype.kind not in "fb":
        raise ValueError(f"counts must be numeric, got dtype {x.dtype}")
    xf = x.astype(float, copy=False)
    if not np.all(np.isfinite(xf)):
        raise ValueError("counts must be finite")
    if np.any(xf < 0):
        raise ValueError("counts must be non-negative")
    if np.any(xf != np.round(xf)):
        raise ValueError("counts must be whole numbers")
    return xf.astype(np.int64)


def _check_alpha(alpha, k: int | None = None) -> np.ndarray:
    """Validate a positive finite concentration vector (of length k)."""
    a = np.asarray(alpha, dtype=float)
    if a.ndim != 1 or a.size < 2:
        raise ValueError("alpha must be a 1-D vector with at least 2 entries")
    if k is not None and a.size != k:
        raise ValueError(f"alpha has {a.size} entries but counts have {k} categories")
    if not np.all(np.isfinite(a)) or np.any(a <= 0):
        raise ValueError("alpha must be finite and strictly positive")
    return a


def dirichlet_multinomial_loglik(alpha, counts) -> float:
    r"""Dirichlet-multinomial marginal log-likelihood.

    With ``A = sum_k alpha_k`` and ``n_i = sum_k x_ik``:

    .. math::

        \ell(\alpha) = \sum_i \Big[\log\frac{n_i!}{\prod_k x_{ik}!}
        + \log\Gamma(A) - \log\Gamma(n_i + A)
        + \sum_k \{\log\Gamma(x_{ik}+\alpha_k) - \log\Gamma(\alpha_k)\}\Big]

    [@mosimann1962; @minka2000], computed by :func:`hbm.dirichlet_multinomial.dm_loglik` (the code
    chapter 4 shows).
    Units with ``n_i = 0`` contribute 0.

    Parameters
    ----------
    alpha : array-like, shape (K,)
        Positive concentration parameters.
    counts : array-like, shape (n_units, K)
        Whole non-negative counts.

    Returns
    -------
    float

    Raises
    ------
    ValueError
        Bad counts (see :func:`dirichlet_multinomial_suffstats`) or
        non-positive / wrong-length ``alpha``.
    """
    x = _count_matrix(counts)
    a = _check_alpha(alpha, x.shape[1])
    return dm_loglik(a, x)


@dataclass(frozen=True, eq=False)
class DMSuffStats:
    r"""Additive sufficient statistics of the Dirichlet-multinomial likelihood.

    The DM log-likelihood (:func:`dirichlet_multinomial_loglik`) depends on
    the data only through these histograms [@minka2000]:

    Attributes
    ----------
    count_hist : ndarray of int64, shape (K, max_count + 1)
        ``count_hist[k, c]`` = number of units with ``x_ik = c``.
    total_hist : ndarray of int64, shape (max_total + 1,)
        ``total_hist[m]`` = number of units with ``n_i = m``.
    n_units : int
        Number of units summarised (each row of ``count_hist`` and
        ``total_hist`` sums to it).

    Notes
    -----
    ``a + b`` merges the statistics of two disjoint chunks (histograms are
    zero-padded to a common length) and equals the statistics of the
    concatenated data; ``sum(list_of_stats)`` works too. Memory is
    ``K * (max_count + 1) + max_total + 1`` integers, independent of the
    number of units, but proportional to the largest count.
    """

    count_hist: np.ndarray
    total_hist: np.ndarray
    n_units: int

    def __post_init__(self):
        ch = np.asarray(self.count_hist)
        th = np.asarray(self.total_hist)
        if ch.ndim != 2 or ch.shape[0] < 2 or ch.shape[1] < 1:
            raise ValueError("count_hist must have shape (K >= 2, max_count + 1)")
        if th.ndim != 1 or th.size < 1:
            raise ValueError("total_hist must be a non-empty 1-D array")
        if ch.dtype.kind not in "iu" or th.dtype.kind not in "iu":
            raise ValueError("histograms must hold integers")
        if ch.min() < 0 or th.min() < 0:
            raise ValueError("histograms must be non-negative")
        n = int(self.n_units)
        if np.any(ch.sum(axis=1) != n) or int(th.sum()) != n:
            raise ValueError("every histogram must sum to n_units")
        total_from_counts = int(np.sum(ch * np.arange(ch.shape[1])))
        if total_from_counts != int(np.sum(th * np.arange(th.size))):
            raise ValueError("count_hist and total_hist describe different totals")
        object.__setattr__(self, "count_hist", ch.astype(np.int64, copy=False))
        object.__setattr__(self, "total_hist", th.astype(np.int64, copy=False))
        object.__setattr__(self, "n_units", n)

    @property
    def n_categories(self) -> int:
        """Number of categories ``K``."""
        return self.count_hist.shape[0]

    def __add__(self, other: "DMSuffStats") -> "DMSuffStats":
        if not isinstance(other, DMSuffStats):
            return NotImplemented
        if other.n_categories != self.n_categories:
            raise ValueError(
                f"cannot add statistics with {self.n_categories} and "
                f"{other.n_categories} categories"
            )
        w = max(self.count_hist.shape[1], other.count_hist.shape[1])
        m = max(self.total_hist.size, other.total_hist.size)
        ch = np.zeros((self.n_categories, w), dtype=np.int64)
        ch[:, : self.count_hist.shape[1]] += self.count_hist
        ch[:, : other.count_hist.shape[1]] += other.count_hist
        th = np.zeros(m, dtype=np.int64)
        th[: self.total_hist.size] += self.total_hist
        th[: other.total_hist.size] += other.total_hist
        return DMSuffStats(ch, th, self.n_units + other.n_units)

    def __radd__(self, other):
        # lets ``sum(stats_list)`` start from 0
        if isinstance(other, int) and other == 0:
            return self
        return NotImplemented


def dirichlet_multinomial_suffstats(counts) -> DMSuffStats:
    """Histogram sufficient statistics of an (n_units, K) count matrix.

    ``count_hist[k, c]`` counts units with ``x_ik = c`` and ``total_hist[m]``
    units with total ``m``; they determine the Dirichlet-multinomial
    likelihood exactly [@minka2000]. Cost O(n_units * K), one
    ``np.bincount`` per category.

    Parameters
    ----------
    counts : array-like, shape (n_units, K)
        Whole non-negative counts, ``K >= 2`` (integer or integral float).

    Returns
    -------
    DMSuffStats

    Raises
    ------
    ValueError
        Not 2-D, no rows, fewer than 2 columns, non-finite, negative or
        fractional counts.
    """
    x = _count_matrix(counts)
    width = int(x.max()) + 1
    ch = np.empty((x.shape[1], width), dtype=np.int64)
    for j in range(x.shape[1]):
        ch[j] = np.bincount(x[:, j], minlength=width)
    th = np.bincount(x.sum(axis=1)).astype(np.int64)
    return DMSuffStats(ch, th, x.shape[0])


@dataclass(frozen=True, eq=False)
class DirichletPosterior:
    r"""Per-unit conjugate posteriors ``Dirichlet(alpha + x_i)``.

    Attributes
    ----------
    posterior_alpha : ndarray, shape (n_units, K)
        ``alpha + x_i``.
    """

    posterior_alpha: np.ndarray

    @property
    def posterior_mean(self) -> np.ndarray:
        """``(alpha_k + x_ik) / (A + n_i)``, shape (n_units, K)."""
        return self.posterior_alpha / self.posterior_alpha.sum(axis=1, keepdims=True)

    def interval(self, prob: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
        r"""Equal-tailed marginal intervals, each of shape (n_units, K).

        The marginal of ``p_ik`` is ``Beta(a_ik, A_i - a_ik)`` with
        ``a_ik = alpha_k + x_ik``, ``A_i = A + n_i`` [@minka2000].

        Parameters
        ----------
        prob : float, default 0.95
            Interval probability in (0, 1).

        Returns
        -------
        lower, upper : ndarray, shape (n_units, K)
        """
        q = (1.0 - _check_prob(prob)) / 2.0
        a = self.posterior_alpha
        b = a.sum(axis=1, keepdims=True) - a
        return special.betaincinv(a, b, q), special.betaincinv(a, b, 1.0 - q)


def dirichlet_posterior(alpha, counts) -> DirichletPosterior:
    r"""Conjugate posterior ``Dirichlet(alpha + x_i)`` of every unit.

    Vectorised and cheap (no fitting), so posteriors for millions of units
    can be computed chunk by chunk once ``alpha`` is known [@minka2000;
    @gelman2013, sec. 3.4]. Units with zero total keep the prior.

    Parameters
    ----------
    alpha : array-like, shape (K,)
        Positive prior concentration (e.g. a fitted ``alpha``).
    counts : array-like, shape (n_units, K)
        Whole non-negative counts.

    Returns
    -------
    DirichletPosterior

    Raises
    ------
    ValueError
        Bad counts or ``alpha`` (non-positive, wrong length).
    """
    x = _count_matrix(counts)
    a = _check_alpha(alpha, x.shape[1])
    return DirichletPosterior(a + x)


@dataclass(frozen=True, eq=False)
class DirichletMultinomialFit:
    r"""Result of :func:`fit_dirichlet_multinomial` (or ``..._from_suffstats``).

    Attributes
    ----------
    alpha : ndarray, shape (K,)
        ML Dirichlet concentration vector.
    concentration : float
        ``A = alpha.sum()``.
    mean : ndarray, shape (K,)
        Prior mean ``alpha / A``.
    n_iter : int
        Iterations of the solver.
    converged : bool
        Whether the relative change fell below ``tol``.
    loglik : float
        Maximised log-likelihood (:func:`dirichlet_multinomial_loglik`).
    boundary : bool
        True when the data show no overdispersion and ``A`` was capped at
        ``max_concentration`` (``mean`` = pooled proportions).
    n_units : int
        Units in the data (zero-total units included).
    posterior_alpha, posterior_mean : ndarray, shape (n_units, K), or None
        Per-unit posteriors ``Dirichlet(alpha + x_i)``; None when fitted from
        sufficient statistics (use :meth:`posterior`).
    """

    alpha: np.ndarray
    concentration: float
    mean: np.ndarray
    n_iter: int
    converged: bool
    loglik: float
    boundary: bool
    n_units: int
    posterior_alpha: np.ndarray | None = None
    posterior_mean: np.ndarray | None = None

    def posterior(self, counts) -> DirichletPosterior:
        """Posterior of any count matrix under the fitted prior (see :func:`dirichlet_posterior`)."""
        return dirichlet_posterior(self.alpha, counts)

    def interval(self, prob: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
        """Equal-tailed marginal Beta intervals of the fitted units, each (n_units, K).

        Raises
        ------
        ValueError
            When the fit came from sufficient statistics (no per-unit data).
        """
        if self.posterior_alpha is None:
            raise ValueError(
                "fit has no per-unit data (fitted from sufficient statistics); "
                "use fit.posterior(counts).interval(prob)"
            )
        return DirichletPosterior(self.posterior_alpha).interval(prob)


def _fit_stats(stats_: DMSuffStats, tol, max_iter, max_conc) -> dict:
    """Fit from histograms (only their nonzero bins are used)."""
    return _fit_bins(_bins_from_hist(stats_.count_hist, stats_.total_hist),
                     tol, max_iter, max_conc, stats_.n_units)


def _fit_bins(b: _Bins, tol, max_iter, max_conc, n_units: int) -> dict:
    """Validate identifiability, run the solver, apply the boundary cap."""
    tol, max_iter, max_conc = float(tol), int(max_iter), float(max_conc)
    if not tol > 0:
        raise ValueError("tol must be positive")
    if max_iter < 1:
        raise ValueError("max_iter must be at least 1")
    if not (np.isfinite(max_conc) and max_conc > 0):
        raise ValueError("max_concentration must be finite and positive")
    if not np.any(b.tval >= 2):
        raise ValueError(
            "need at least one unit with total >= 2: the concentration is not "
            "identified from totals of 0 or 1"
        )
    pooled = np.bincount(b.cat, weights=b.wt * b.val, minlength=b.k)
    empty = np.nonzero(pooled == 0)[0]
    if empty.size:
        raise ValueError(
            f"categories {empty.tolist()} have zero counts in every unit: their "
            "alpha MLE is 0 (drop them or add data)"
        )
    alpha, n_iter, converged, hit_cap = _fit_polya(b, tol, max_iter, max_conc)
    ll = _polya_loglik(alpha, b)
    # the A -> infinity limit: pooled proportions at the cap
    capped = pooled / pooled.sum() * max_conc
    ll_cap = _polya_loglik(capped, b)
    boundary = bool(hit_cap or ll_cap > ll)
    if boundary:
        alpha, ll, converged = capped, ll_cap, True
    return {"alpha": alpha, "loglik": ll, "n_iter": n_iter,
            "converged": bool(converged), "boundary": boundary,
            "n_units": int(n_units)}


def _dm_fit_object(d: dict, posterior_alpha=None) -> DirichletMultinomialFit:
    alpha = d["alpha"]
    A = float(alpha.sum())
    post_mean = (None if posterior_alpha is None
                 else posterior_alpha / posterior_alpha.sum(axis=1, keepdims=True))
    return DirichletMultinomialFit(
        alpha=alpha, concentration=A, mean=alpha / A, n_iter=d["n_iter"],
        converged=d["converged"], loglik=d["loglik"], boundary=d["boundary"],
        n_units=d["n_units"], posterior_alpha=posterior_alpha,
        posterior_mean=post_mean,
    )


def fit_dirichlet_multinomial_from_suffstats(
    stats: DMSuffStats, tol: float = 1e-10, max_iter: int = 10_000, *,
    max_concentration: float = DEFAULT_MAX_CONCENTRATION,
) -> DirichletMultinomialFit:
    r"""Marginal ML of the Dirichlet prior from histogram sufficient statistics.

    Maximises :func:`dirichlet_multinomial_loglik` using only the nonzero
    bins of ``stats`` (cost independent of the number of units). Start:
    method of moments on the counts [@mosimann1962]. Iteration: Newton steps
    (Hessian ``diag(q) + z 1 1^T``) guarded by Minka's monotone fixed point
    [@minka2000]

    .. math::

        \alpha_k \leftarrow \alpha_k
        \frac{\sum_c h_k[c]\{\psi(c+\alpha_k)-\psi(\alpha_k)\}}
             {\sum_m t[m]\{\psi(m+A)-\psi(A)\}},

    which is used whenever the Hessian is not negative definite or the
    Newton step is infeasible or lowers the likelihood; each such step is
    followed by a bounded 1-D search over the concentration ``A`` with the
    mean fixed, since the plain fixed point crawls where the likelihood is
    flat in ``A``. Log-gamma and digamma differences are evaluated in a form
    that stays accurate when ``alpha_k`` is much larger than the counts.
    Stops when ``max_k |alpha_k^new - alpha_k| / alpha_k < tol``. Without
    overdispersion the MLE has ``A -> infinity``: ``A`` is capped at
    ``max_concentration`` with ``mean`` = pooled proportions and
    ``boundary = True``.

    Parameters
    ----------
    stats : DMSuffStats
        From :func:`dirichlet_multinomial_suffstats` (possibly summed over
        chunks).
    tol : float, default 1e-10
        Relative convergence tolerance.
    max_iter : int, default 10000
        Iteration limit (``converged = False`` if reached).
    max_concentration : float, default 1e6
        Cap on ``sum(alpha)``.

    Returns
    -------
    DirichletMultinomialFit
        With ``posterior_alpha = posterior_mean = None``; use
        :meth:`DirichletMultinomialFit.posterior` for per-unit posteriors.

    Raises
    ------
    ValueError
        ``stats`` not a :class:`DMSuffStats`; no unit with total >= 2; a
        category with zero counts everywhere; bad ``tol``/``max_iter``.
    """
    if not isinstance(stats, DMSuffStats):
        raise ValueError("stats must be a DMSuffStats")
    return _dm_fit_object(_fit_stats(stats, tol, max_iter, max_concentration))


def fit_dirichlet_multinomial(
    counts, tol: float = 1e-10, max_iter: int = 10_000, *,
    max_concentration: float = DEFAULT_MAX_CONCENTRATION,
    empty: str = "raise",
) -> DirichletMultinomialFit:
    r"""Empirical Bayes for category proportions: marginal ML of a Dirichlet prior.

    Model: ``x_i ~ Multinomial(n_i, p_i)``, ``p_i ~ Dirichlet(alpha)``.
    ``alpha`` maximises the Dirichlet-multinomial likelihood
    (:func:`dirichlet_multinomial_loglik`) [@mosimann1962; @minka2000]; each
    unit gets the conjugate posterior ``Dirichlet(alpha + x_i)``. Computed as
    :func:`dirichlet_multinomial_suffstats` followed by
    :func:`fit_dirichlet_multinomial_from_suffstats` (see there for the
    algorithm), so the cost is linear in the number of units (1e6 x 5 takes
    well under a second). Units with zero total contribute nothing; their
    posterior is the prior.

    Parameters
    ----------
    counts : array-like, shape (n_units, K)
        Whole non-negative counts, ``K >= 2``.
    tol, max_iter, max_concentration
        As in :func:`fit_dirichlet_multinomial_from_suffstats`.
    empty : {"raise", "zero"}
        What to do with a category that has zero counts in every unit, whose ML
        ``alpha_k`` is 0 (the likelihood grows as ``alpha_k -> 0``): ``"raise"`` a
        ``ValueError``, or ``"zero"``: fit the other categories and set ``alpha_k = 0``, the
        limit, so that every posterior gives that category probability 0. The likelihood of
        the other categories is unchanged by the limit (an all-zero category contributes
        ``Gamma(0 + alpha_k) / Gamma(alpha_k) = 1`` to each unit's term).

    Returns
    -------
    DirichletMultinomialFit
        Including per-unit ``posterior_alpha`` and ``posterior_mean``.

    Raises
    ------
    ValueError
        Bad counts, no unit with total >= 2, an all-zero category (with
        ``empty="raise"``), or fewer than two categories with counts.
    """
    if empty not in ("raise", "zero"):
        raise ValueError(f"empty must be 'raise' or 'zero', not {empty!r}")
    x = _count_matrix(counts)
    played = x.sum(axis=0) > 0
    if empty == "zero" and not played.all():
        if played.sum() < 2:
            raise ValueError("fewer than two categories have counts: no proportions to fit")
        d = _fit_stats(dirichlet_multinomial_suffstats(x[:, played]), tol, max_iter, max_concentration)
        alpha = np.zeros(x.shape[1])
        alpha[played] = d["alpha"]
        d = {**d, "alpha": alpha}
    else:
        d = _fit_stats(dirichlet_multinomial_suffstats(x), tol, max_iter, max_concentration)
    return _dm_fit_object(d, posterior_alpha=d["alpha"] + x)
