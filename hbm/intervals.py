r"""Confidence and credible intervals for one genre's share in one region, and their coverage.

The estimand is a regional profile parameter of the music model (:func:`hbm.book.simulate.music`):
for region :math:`r` and genre :math:`g`,

.. math::

    p = p_{r,g} = E[\theta_{i,g} \mid \text{user } i \text{ in region } r],

the mean of users' shares of genre :math:`g` in the population model, not one user's share
and not the share of all plays. Because one coordinate of a Dirichlet is a Beta
[@mosimann1962], the plays :math:`y_i` of genre :math:`g` among user :math:`i`'s
:math:`n_i` plays follow a beta-binomial,

.. math::

    \theta_{i} \sim \mathrm{Beta}(\kappa p, \kappa(1-p)), \qquad
    y_i \mid \theta_i \sim \mathrm{Binomial}(n_i, \theta_i), \qquad
    E[y_i / n_i] = p,

with :math:`\kappa = \kappa_r` the region's concentration. Plays of one user are not
independent: their intra-user correlation is :math:`\rho = 1/(\kappa + 1)`, so
:math:`\operatorname{Var}(y_i/n_i) = p(1-p)\{\rho + (1-\rho)/n_i\}`.

Intervals (all central, equal-tailed, of probability ``prob``; each function works on a batch
of replications at once: ``y`` of shape ``(n_reps, n_users)`` or ``(n_users,)``):

- :func:`naive_binomial_interval`: the Wald interval for a binomial proportion, treating all
  :math:`\sum_i n_i` plays as independent; centred on the plays-weighted ratio
  :math:`\sum y_i / \sum n_i`. Too narrow under clustering.
- :func:`cluster_bootstrap_interval`: the percentile interval of the mean of users' shares
  :math:`\hat p = m^{-1}\sum_i y_i/n_i` over bootstrap resamples of users [@efron1993].
- :func:`cluster_t_interval`: :math:`\hat p \pm t_{m-1}\, s/\sqrt m`, with :math:`s` the sample
  standard deviation of users' shares: the cluster-robust (sandwich) standard error of a mean
  of one value per cluster [@cameron2015].
- :func:`grid_posterior`: the Bayesian posterior of :math:`p` in the two-parameter
  beta-binomial model with priors :math:`p \sim \mathrm{Beta}(a, b)` and
  :math:`\log\kappa \sim N(\mu_\kappa, \sigma_\kappa^2)`, computed on an adaptive 2-D grid
  over :math:`(p, \log\kappa)` with :math:`\kappa` integrated out; its equal-tailed credible
  interval.

:func:`coverage_study` repeats the data-generating process many times, vectorized and seeded,
and records whether each interval covered the parameter that generated the data
[@neyman1937; @cook2006].
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import interpolate, special, stats

from hbm.metrics import coverage_mc_error, inside


__all__ = [
    "KAPPA_PRIOR",
    "FLAT_PRIOR",
    "REGIONAL_CONCENTRATION",
    "Intervals",
    "region_counts",
    "pick_region",
    "simulation_parameters",
    "other_regions_share",
    "regional_prior",
    "user_shares",
    "naive_binomial_interval",
    "cluster_t_interval",
    "cluster_bootstrap_interval",
    "GridPosterior",
    "grid_posterior",
    "simulate_successes",
    "draw_parameters",
    "METHODS",
    "coverage_study",
    "summarise_coverage",
    "coverage_phrase",
]

#: Prior on a region's concentration, (mean, sd) of ``log kappa ~ N(3, 1.5^2)``: median
#: ``exp(3)``, about 20, and 95% between about 1 and 380 (users anywhere from all-or-nothing to
#: nearly identical). The one definition: the grid posterior here and the three-level music
#: model (:data:`hbm.book.music.KAPPA_PRIOR` is this constant) share it.
KAPPA_PRIOR: tuple[float, float] = (3.0, 1.5)

#: Uniform prior on the share, Beta(1, 1).
FLAT_PRIOR: tuple[float, float] = (1.0, 1.0)

#: Concentration ``c`` of the regional prior ``Beta(c m, c (1 - m))``: regions' shares spread
#: around their common mean ``m`` with standard deviation ``sqrt(m (1 - m) / (c + 1))``.
REGIONAL_CONCENTRATION: float = 20.0

# Grid settings of grid_posterior (see its docstring).
_COARSE_LOGIT = np.linspace(-7.0, 7.0, 22)
_COARSE_LOG_KAPPA = np.linspace(np.log(0.02), np.log(5e4), 12)
_FINE_P, _FINE_KAPPA = 24, 12
_THRESHOLD = 12.0  # log-density drop that bounds the grid box (tail mass below 1e-5)
_P_FLOOR = 1e-9
_UPSAMPLE = 8  # spline refinement of the marginal density of p


@dataclass(frozen=True)
class Intervals:
    """Point estimates and interval ends, one per replication (arrays of equal shape)."""

    estimate: np.ndarray
    lower: np.ndarray
    upper: np.ndarray

    @property
    def width(self) -> np.ndarray:
        """``upper - lower``."""
        return self.upper - self.lower

    def covers(self, truth) -> np.ndarray:
        """Whether ``lower <= truth <= upper``, elementwise."""
        truth = np.asarray(truth, dtype=float)
        return inside(self.lower, self.upper, truth)


# --------------------------------------------------------------------------- data


def count_columns(music: pd.DataFrame, labels=("user_id", "region")) -> list[str]:
    """The category count columns of a play-count frame: every column but the ``labels``."""
    return [c for c in music.columns if c not in labels]


def region_counts(music: pd.DataFrame, region: str, genre: str = "rock") -> tuple[np.ndarray, np.ndarray]:
    """Plays of ``genre`` and total plays of each user in ``region`` who has any plays.

    Parameters
    ----------
    music : pandas.DataFrame
        A frame from :func:`hbm.book.data.load_music`.
    region : str
        A region label.
    genre : str
        One of the count columns (:func:`count_columns`).

    Returns
    -------
    y, n : ndarray of int64, shape (m,)
        ``y_i`` plays of the genre out of ``n_i >= 1`` plays, for the region's users with
        ``n_i >= 1`` (users with no plays say nothing about shares and are left out).

    Raises
    ------
    ValueError
        Unknown genre or region, or no user of the region has any plays.
    """
    genres = count_columns(music)
    if genre not in genres:
        raise ValueError(f"unknown genre {genre!r}; expected one of {', '.join(genres)}")
    rows = music[music["region"].astype(str) == str(region)]
    if rows.empty:
        regions = ", ".join(map(str, pd.unique(music["region"].astype(str))))
        raise ValueError(f"no users in region {region!r} (regions: {regions})")
    n = rows[genres].to_numpy(dtype=np.int64).sum(axis=1)
    y = rows[genre].to_numpy(dtype=np.int64)
    keep = n > 0
    if not keep.any():
        raise ValueError(f"no user in region {region!r} has any plays")
    return y[keep], n[keep]


def pick_region(music: pd.DataFrame, preferred: str = "Europe") -> str:
    """``preferred`` if at least two of its users have plays, else the region with most such users.

    Lets a chapter written about one region run on a reader's file with other region labels
    (the cluster intervals need two users). With no user having any play at all, returns the
    first region.
    """
    n = music[count_columns(music)].to_numpy(dtype=np.int64).sum(axis=1)
    counts = music["region"].astype(str)[n > 0].value_counts(sort=False)
    if counts.get(preferred, 0) >= 2:
        return preferred
    if counts.empty:
        return str(music["region"].astype(str).iloc[0])
    return str(counts.idxmax())


def simulation_parameters(truth: dict | None, y, n, region: str,
                          genre: str = "rock") -> tuple[float, float, str]:
    """The ``(p, kappa)`` a simulation holds fixed, and where they came from.

    Parameters
    ----------
    truth : dict or None
        From :func:`hbm.book.data.load_truth` (the structure of :func:`hbm.book.simulate.music`).
    y, n : array-like
        The region's plays of the genre and total plays (for the fallback).
    region, genre : str

    Returns
    -------
    p, kappa : float
        The region's true profile entry and concentration when ``truth`` has the region;
        otherwise the empirical Bayes (marginal maximum likelihood) beta-binomial fit of
        ``y, n`` (:func:`hbm.eb.fit_beta_binomial`): ``p = alpha / (alpha + beta)``,
        ``kappa = alpha + beta``. If that fit is degenerate (all plays or none of the genre)
        ``p = (sum y + 1/2) / (sum n + 1)`` and ``kappa`` is the prior median
        ``exp(KAPPA_PRIOR[0])``.
    source : str
        ``"truth"``, ``"empirical Bayes"`` or ``"fallback"``.
    """
    for entry in (truth or {}).get("regions", []):
        if str(entry.get("region")) == str(region) and genre in entry.get("p", {}):
            return float(entry["p"][genre]), float(entry["kappa"]), "truth"
    from hbm.eb import fit_beta_binomial  # noqa: PLC0415 (only needed without truth)

    try:
        fit = fit_beta_binomial(y, n)
        return float(fit.mean), float(fit.concentration), "empirical Bayes"
    except ValueError:
        y, n = np.asarray(y), np.asarray(n)
        return float((y.sum() + 0.5) / (n.sum() + 1.0)), float(np.exp(KAPPA_PRIOR[0])), "fallback"


def user_shares(y, n) -> np.ndarray:
    """Each user's share ``y_i / n_i`` (float array of the broadcast shape)."""
    return np.asarray(y, dtype=float) / np.asarray(n, dtype=float)


def other_regions_share(music: pd.DataFrame, region: str, genre: str = "rock") -> tuple[float | None, int]:
    """The average over the *other* regions of each region's mean user share of ``genre``.

    Parameters
    ----------
    music : pandas.DataFrame
        A frame from :func:`hbm.book.data.load_music`.
    region : str
        The region left out.
    genre : str
        The genre.

    Returns
    -------
    share : float or None
        :math:`\\frac{1}{R-1}\\sum_{r' \\ne r} \\bar s_{r'}` with :math:`\\bar s_{r'}` the mean
        of ``y_i / n_i`` over region :math:`r'`'s users with plays; ``None`` when no other
        region has a user with plays.
    n_regions : int
        How many other regions entered the average.
    """
    means = []
    for other in pd.unique(music["region"].astype(str)):
        if other == str(region):
            continue
        try:
            y, n = region_counts(music, other, genre)
        except ValueError:
            continue
        means.append(user_shares(y, n).mean())
    return (float(np.mean(means)) if means else None), len(means)


def regional_prior(mean: float | None, concentration: float = REGIONAL_CONCENTRATION,
                   fallback_mean: float | None = None) -> tuple[float, float]:
    """Beta prior ``(c m, c (1 - m))`` centred on other regions' share ``m``.

    With no other region (``mean`` None) it falls back to ``m = fallback_mean`` (the chapter
    uses an even split over the genres, ``1 / K``). The prior standard deviation is ``sqrt(m (1 - m) / (c + 1))``. If ``c m`` or
    ``c (1 - m)`` would fall below 1 (a share within ``1 / c`` of 0 or 1), ``c`` is raised to
    ``max(1 / m, 1 / (1 - m))`` so that both parameters are at least 1 and the prior density
    stays bounded, as :func:`grid_posterior` needs.
    """
    if mean is None and fallback_mean is None:
        raise ValueError("no other region's share to centre the prior on, and no fallback_mean")
    m = float(fallback_mean) if mean is None else float(mean)
    if not 0.0 < m < 1.0:
        raise ValueError(f"the prior mean must lie strictly between 0 and 1, got {m}")
    if concentration <= 0:
        raise ValueError("concentration must be positive")
    c = max(float(concentration), 1.0 / m, 1.0 / (1.0 - m))
    return c * m, c * (1.0 - m)


def _batch(y, n) -> tuple[np.ndarray, np.ndarray, bool]:
    """``y``, ``n`` as float arrays of shape (R, m); whether the input was a single data set."""
    y = np.asarray(y, dtype=float)
    single = y.ndim == 1
    y = np.atleast_2d(y)
    n = np.broadcast_to(np.asarray(n, dtype=float), y.shape)
    if y.ndim != 2:
        raise ValueError("y must have shape (n_users,) or (n_reps, n_users)")
    if y.shape[1] == 0:
        raise ValueError("need at least one user")
    if np.any(n < 1) or np.any(y < 0) or np.any(y > n):
        raise ValueError("need totals n_i >= 1 and 0 <= y_i <= n_i")
    return y, n, single


def _out(single: bool, *arrays) -> Intervals:
    """Intervals, unwrapped to scalars-as-0-d arrays for a single data set."""
    if single:
        arrays = tuple(np.asarray(a)[0] for a in arrays)
    return Intervals(*arrays)


def _check_prob(prob: float) -> float:
    prob = float(prob)
    if not 0.0 < prob < 1.0:
        raise ValueError(f"prob must lie strictly between 0 and 1, got {prob}")
    return prob


# --------------------------------------------------------------------------- confidence intervals


def naive_binomial_interval(y, n, prob: float = 0.95) -> Intervals:
    r"""Wald interval treating every play as an independent Bernoulli trial.

    .. math::

        \hat q = \frac{\sum_i y_i}{\sum_i n_i}, \qquad
        \hat q \pm z_{(1+\text{prob})/2} \sqrt{\hat q (1-\hat q) / \textstyle\sum_i n_i}.

    :math:`\hat q` estimates the plays-weighted share :math:`\sum n_i\theta_i/\sum n_i`, which
    equals :math:`p` in expectation only when heavy and light users have the same mean share;
    its standard error ignores that plays of one user are correlated (design effect
    :math:`1 + (\bar n - 1)\rho` and more with unequal :math:`n_i`), so the interval is too
    narrow.

    Parameters
    ----------
    y, n : array-like, shape (m,) or (R, m)
        Successes and totals (``n`` broadcasts against ``y``).
    prob : float
        Interval probability.

    Returns
    -------
    Intervals
    """
    y, n, single = _batch(y, n)
    z = stats.norm.ppf(0.5 + _check_prob(prob) / 2)
    total = n.sum(axis=1)
    q = y.sum(axis=1) / total
    half = z * np.sqrt(q * (1 - q) / total)
    return _out(single, q, q - half, q + half)


def cluster_t_interval(y, n, prob: float = 0.95) -> Intervals:
    r"""Mean of users' shares with a cluster-robust standard error and a t quantile.

    .. math::

        \hat p = \frac1m \sum_i \frac{y_i}{n_i}, \qquad
        \hat p \pm t_{m-1,\,(1+\text{prob})/2}\; \frac{s}{\sqrt m},

    with :math:`s` the sample standard deviation (divisor :math:`m-1`) of the shares. With one
    value per cluster this is the CR1 cluster-robust standard error of a mean [@cameron2015].
    :math:`\hat p` is unbiased for :math:`p` whatever the :math:`n_i`. Ends are not clipped to
    [0, 1]. With a single user (``m = 1``) the estimate is that user's share and both ends are
    NaN: one share has no spread to estimate.

    Parameters
    ----------
    y, n : array-like, shape (m,) or (R, m)
    prob : float

    Returns
    -------
    Intervals
    """
    y, n, single = _batch(y, n)
    m = y.shape[1]
    prob = _check_prob(prob)
    s = y / n
    est = s.mean(axis=1)
    if m < 2:
        half = np.full_like(est, np.nan)
    else:
        half = stats.t.ppf(0.5 + prob / 2, m - 1) * s.std(axis=1, ddof=1) / np.sqrt(m)
    return _out(single, est, est - half, est + half)


def cluster_bootstrap_interval(y, n, prob: float = 0.95, n_boot: int = 1000, *, rng,
                               chunk: int = 64) -> Intervals:
    r"""Percentile interval of the mean of users' shares over bootstrap resamples of users.

    Each resample draws :math:`m` users with replacement (whole users, so plays stay with
    their user: a cluster bootstrap) and recomputes :math:`\hat p = m^{-1}\sum y_i/n_i`; the
    interval is the :math:`(1\mp\text{prob})/2` quantiles of the ``n_boot`` resampled means
    [@efron1993, ch. 13]. Vectorized over replications in chunks of ``chunk``.

    Parameters
    ----------
    y, n : array-like, shape (m,) or (R, m)
    prob : float
    n_boot : int
        Bootstrap resamples per data set.
    rng : numpy.random.Generator
        Source of the resampling.
    chunk : int
        Replications resampled at once (memory ``chunk * n_boot * m`` indices).

    Returns
    -------
    Intervals
        ``estimate`` is the mean of shares of the data (not of the resamples).
    """
    y, n, single = _batch(y, n)
    tail = (1 - _check_prob(prob)) / 2
    s = y / n
    reps, m = s.shape
    lower, upper = np.empty(reps), np.empty(reps)
    for start in range(0, reps, chunk):
        block = s[start:start + chunk]
        idx = rng.integers(0, m, size=(len(block), n_boot, m))
        means = np.take_along_axis(block[:, None, :], idx, axis=2).mean(axis=2)
        lower[start:start + chunk], upper[start:start + chunk] = np.quantile(means, [tail, 1 - tail], axis=1)
    return _out(single, s.mean(axis=1), lower, upper)


# --------------------------------------------------------------------------- grid posterior


@dataclass(frozen=True)
class GridPosterior:
    """Posterior of ``p`` on a grid, one row per replication, for one prior.

    Attributes
    ----------
    p : ndarray, shape (R, J)
        Grid points (increasing in each row).
    density : ndarray, shape (R, J)
        Marginal posterior density of ``p`` at the points (``kappa`` integrated out), each
        row integrating to 1 by the trapezoidal rule.
    intervals : Intervals
        Posterior mean and equal-tailed interval of probability ``prob``.
    prob : float
    """

    p: np.ndarray
    density: np.ndarray
    intervals: Intervals
    prob: float


def _kappa_log_prior(log_kappa, kappa_prior) -> np.ndarray:
    mu, sigma = kappa_prior
    return -0.5 * ((log_kappa - mu) / sigma) ** 2


def _p_log_prior(p, ab) -> np.ndarray:
    a, b = ab
    return (a - 1) * np.log(p) + (b - 1) * np.log1p(-p)


def _loglik(y, n, p, log_kappa) -> np.ndarray:
    r"""Beta-binomial log-likelihood (without binomial coefficients) on grids.

    ``y, n``: (R, m); ``p``: (R, J); ``log_kappa``: (R, K). Returns (R, J, K):
    :math:`\sum_i \log B(y_i + \kappa p, n_i - y_i + \kappa(1-p)) - \log B(\kappa p, \kappa(1-p))`.
    """
    kappa = np.exp(log_kappa)
    a = p[:, :, None] * kappa[:, None, :]  # (R, J, K)
    b = (1.0 - p)[:, :, None] * kappa[:, None, :]
    yy = y[:, None, None, :]
    m = y.shape[1]
    out = special.gammaln(yy + a[..., None]).sum(axis=-1)
    out += special.gammaln((n - y)[:, None, None, :] + b[..., None]).sum(axis=-1)
    out -= m * (special.gammaln(a) + special.gammaln(b))
    kappa_terms = m * special.gammaln(kappa) - special.gammaln(n[:, None, :] + kappa[:, :, None]).sum(axis=-1)
    return out + kappa_terms[:, None, :]


def _box(logposts, p_axis, lk_axis, step_p, step_lk):
    """Bounding box of the cells within _THRESHOLD of each posterior's maximum, widened by one
    step (in the axes' own scale); ``at_lo``/``at_hi`` flag boxes touching the p axis ends."""
    keep = np.zeros(logposts[0].shape, bool)
    for lp in logposts:
        keep |= lp >= lp.max(axis=(1, 2), keepdims=True) - _THRESHOLD
    anyp, anyk = keep.any(axis=2), keep.any(axis=1)  # (R, J), (R, K)
    J, K = anyp.shape[1], anyk.shape[1]
    j_lo = np.argmax(anyp, axis=1)
    j_hi = J - 1 - np.argmax(anyp[:, ::-1], axis=1)
    k_lo = np.argmax(anyk, axis=1)
    k_hi = K - 1 - np.argmax(anyk[:, ::-1], axis=1)
    rows = np.arange(len(j_lo))
    p_lo = p_axis[rows, j_lo] - step_p
    p_hi = p_axis[rows, j_hi] + step_p
    lk_lo = np.where(k_lo > 0, lk_axis[rows, k_lo] - step_lk, lk_axis[rows, 0])
    lk_hi = np.where(k_hi < K - 1, lk_axis[rows, k_hi] + step_lk, lk_axis[rows, -1])
    return p_lo, p_hi, lk_lo, lk_hi, j_lo == 0, j_hi == J - 1


def _fine(y, n, priors, kappa_prior, p_lo, p_hi, lk_lo, lk_hi):
    """Log posteriors (one per prior) on the fine grid of each replication's box."""
    u = np.linspace(0.0, 1.0, _FINE_P)
    p = p_lo[:, None] + (p_hi - p_lo)[:, None] * u
    v = np.linspace(0.0, 1.0, _FINE_KAPPA)
    lk = lk_lo[:, None] + (lk_hi - lk_lo)[:, None] * v
    ll = _loglik(y, n, p, lk) + _kappa_log_prior(lk, kappa_prior)[:, None, :]
    return p, lk, [ll + _p_log_prior(p, ab)[:, :, None] for ab in priors]


def _quantile_linear_density(x, dens, cdf, q):
    """Quantile ``q`` of each row when the density is piecewise linear between grid points.

    Within the segment holding ``q`` the CDF is quadratic; solve it exactly.
    """
    rows = np.arange(len(x))
    j = np.clip((cdf < q).sum(axis=1) - 1, 0, x.shape[1] - 2)
    h = x[rows, j + 1] - x[rows, j]
    f0, f1 = dens[rows, j], dens[rows, j + 1]
    need = q - cdf[rows, j]  # mass to accumulate within the segment
    slope = (f1 - f0) / h
    # solve f0 t + slope t^2 / 2 = need for t in [0, h] (stable form of the quadratic root)
    disc = np.sqrt(np.maximum(f0 * f0 + 2 * slope * need, 0.0))
    t = np.where(f0 + disc > 0, 2 * need / np.maximum(f0 + disc, 1e-300), 0.0)
    return x[rows, j] + np.clip(t, 0.0, h)


def _summarise(p, lk, logpost, prob):
    """Marginal density of p, its mean and equal-tailed interval, from a grid log posterior.

    ``kappa`` is integrated out by the trapezoidal rule in ``log kappa``; the log of the
    marginal density (smooth, near quadratic) is interpolated by a cubic spline onto a grid
    ``_UPSAMPLE`` times finer, where the density is treated as piecewise linear.
    """
    dk = lk[:, 1] - lk[:, 0]
    wk = np.ones(lk.shape[1])
    wk[[0, -1]] = 0.5
    logm = special.logsumexp(logpost + np.log(wk), axis=2) + np.log(dk)[:, None]  # (R, J)
    u = np.linspace(0.0, 1.0, p.shape[1])
    uf = np.linspace(0.0, 1.0, (p.shape[1] - 1) * _UPSAMPLE + 1)
    logf = interpolate.CubicSpline(u, logm - logm.max(axis=1, keepdims=True), axis=1)(uf)
    pf = p[:, :1] + (p[:, -1:] - p[:, :1]) * uf
    dens = np.exp(logf)
    dens /= np.trapezoid(dens, pf, axis=1)[:, None]
    mean = np.trapezoid(pf * dens, pf, axis=1)
    seg = 0.5 * (dens[:, 1:] + dens[:, :-1]) * np.diff(pf, axis=1)
    cdf = np.concatenate([np.zeros((len(pf), 1)), np.cumsum(seg, axis=1)], axis=1)
    tail = (1 - prob) / 2
    lower = _quantile_linear_density(pf, dens, cdf, tail)
    upper = _quantile_linear_density(pf, dens, cdf, 1 - tail)
    return pf, dens, Intervals(mean, lower, upper)


def grid_posterior(y, n, priors: Mapping[str, tuple[float, float]] | None = None,
                   kappa_prior: tuple[float, float] = KAPPA_PRIOR, prob: float = 0.95,
                   *, chunk: int = 64, max_zoom: int = 4) -> dict[str, GridPosterior]:
    r"""Posterior of the regional share ``p`` in the beta-binomial model, on a 2-D grid.

    Model, for users :math:`i = 1..m` of one region:

    .. math::

        y_i \mid p, \kappa \sim \mathrm{BetaBinomial}(n_i, \kappa p, \kappa(1-p)), \qquad
        p \sim \mathrm{Beta}(a, b), \qquad \log\kappa \sim N(\mu_\kappa, \sigma_\kappa^2).

    The unnormalized log posterior is evaluated on a grid over :math:`(p, \log\kappa)`;
    :math:`\kappa` is integrated out by the trapezoidal rule in :math:`\log\kappa` (the prior
    is a density on :math:`\log\kappa`), giving the log marginal density of :math:`p` at the
    grid points. That smooth, nearly quadratic curve is interpolated by a cubic spline onto a
    grid 8 times finer, where the density is taken as piecewise linear: its integral gives the
    posterior mean, and its exactly inverted CDF the equal-tailed interval.

    The grid adapts to each data set. A coarse grid (22 points in logit p over [-7, 7], 12 in
    log kappa over [log 0.02, log 5e4]) finds the box of cells whose log posterior is within
    12 of its maximum under any of the priors (posterior mass outside is below about 1e-5),
    widened by one coarse step; a 24 x 12 grid over that box gives the result. When the same
    rule applied to the fine grid gives a box less than a third as wide in either direction,
    the fine stage is repeated on it (at most ``max_zoom`` times), so that narrow posteriors
    from large data sets are resolved too. This assumes a unimodal posterior and prior
    densities bounded on the box (``a, b >= 1``). Against a brute-force grid the interval ends
    agree to within 1% of a posterior standard deviation (``tests/test_intervals.py``; typically
    about 0.1%).

    Parameters
    ----------
    y, n : array-like, shape (m,) or (R, m)
        Plays of the genre and total plays (``n_i >= 1``) of each user; ``n`` broadcasts.
    priors : mapping of str to (a, b), optional
        Named Beta priors on ``p``, each with ``a, b >= 1``; default ``{"flat": (1, 1)}``.
        All priors share one likelihood evaluation.
    kappa_prior : (float, float)
        ``(mu, sigma)`` of the normal prior on ``log kappa``; default :data:`KAPPA_PRIOR`.
    prob : float
        Interval probability.
    chunk : int
        Replications evaluated at once (temporary arrays of about ``chunk * 300 * m`` floats).
    max_zoom : int
        Most fine-stage repetitions.

    Returns
    -------
    dict of str to GridPosterior
        One per prior, in the order given.

    References
    ----------
    Gelman et al. (2013), *Bayesian Data Analysis*, 3rd ed., sec. 5.3 (the same grid
    computation for the rat tumour beta-binomial example).
    """
    priors = dict(priors or {"flat": FLAT_PRIOR})
    for name, (a, b) in priors.items():
        if not (a >= 1 and b >= 1 and np.isfinite(a) and np.isfinite(b)):
            raise ValueError(f"prior {name!r}: need finite a, b >= 1, got ({a}, {b})")
    if not (kappa_prior[1] > 0):
        raise ValueError("kappa_prior sigma must be positive")
    prob = _check_prob(prob)
    y, n, single = _batch(y, n)
    reps = y.shape[0]
    prior_list = list(priors.values())
    n_out = (_FINE_P - 1) * _UPSAMPLE + 1
    p_all = np.empty((reps, n_out))
    dens_all = {k: np.empty((reps, n_out)) for k in priors}
    est = {k: np.empty((3, reps)) for k in priors}
    expit = special.expit
    step_logit = _COARSE_LOGIT[1] - _COARSE_LOGIT[0]
    step_ck = _COARSE_LOG_KAPPA[1] - _COARSE_LOG_KAPPA[0]
    for start in range(0, reps, chunk):
        sl = slice(start, start + chunk)
        yb, nb = y[sl], n[sl]
        r = len(yb)
        # coarse stage: fixed grid in logit p and log kappa
        lp = np.broadcast_to(_COARSE_LOGIT, (r, len(_COARSE_LOGIT)))
        lk = np.broadcast_to(_COARSE_LOG_KAPPA, (r, len(_COARSE_LOG_KAPPA)))
        ll = _loglik(yb, nb, expit(lp), lk) + _kappa_log_prior(lk, kappa_prior)[:, None, :]
        posts = [ll + _p_log_prior(expit(lp), ab)[:, :, None] for ab in prior_list]
        l_lo, l_hi, lk_lo, lk_hi, at_lo, at_hi = _box(posts, lp, lk, step_logit, step_ck)
        p_lo = np.where(at_lo, _P_FLOOR, expit(l_lo))
        p_hi = np.where(at_hi, 1 - _P_FLOOR, expit(l_hi))
        # fine stages: zoom while the box shrinks a lot
        todo = np.arange(r)
        pf = np.empty((r, _FINE_P))
        lkf = np.empty((r, _FINE_KAPPA))
        postf = [np.empty((r, _FINE_P, _FINE_KAPPA)) for _ in prior_list]
        for _ in range(max_zoom + 1):
            p_, lk_, posts_ = _fine(yb[todo], nb[todo], prior_list, kappa_prior,
                                    p_lo[todo], p_hi[todo], lk_lo[todo], lk_hi[todo])
            pf[todo], lkf[todo] = p_, lk_
            for dst, src in zip(postf, posts_):
                dst[todo] = src
            sp, sk = p_[:, 1] - p_[:, 0], lk_[:, 1] - lk_[:, 0]
            n_lo, n_hi, nk_lo, nk_hi, _, _ = _box(posts_, p_, lk_, sp, sk)
            n_lo = np.maximum(n_lo, _P_FLOOR)
            n_hi = np.minimum(n_hi, 1 - _P_FLOOR)
            shrunk = ((n_hi - n_lo) < (p_hi[todo] - p_lo[todo]) / 3) | (
                (nk_hi - nk_lo) < (lk_hi[todo] - lk_lo[todo]) / 3)
            if not shrunk.any():
                break
            todo = todo[shrunk]  # zoom in on these rows' new boxes
            p_lo[todo], p_hi[todo] = n_lo[shrunk], n_hi[shrunk]
            lk_lo[todo], lk_hi[todo] = nk_lo[shrunk], nk_hi[shrunk]
        for name, post in zip(priors, postf):
            p_fine, dens, iv = _summarise(pf, lkf, post, prob)
            p_all[sl] = p_fine
            dens_all[name][sl] = dens
            est[name][:, sl] = iv.estimate, iv.lower, iv.upper
    out = {}
    for name in priors:
        e, lo, hi = est[name]
        p_, d_ = (p_all[0], dens_all[name][0]) if single else (p_all, dens_all[name])
        out[name] = GridPosterior(p_, d_, _out(single, e, lo, hi), prob)
    return out


# --------------------------------------------------------------------------- simulation


def simulate_successes(p, kappa, totals, *, rng, n_reps: int | None = None) -> np.ndarray:
    r"""Draw one genre's plays for users with fixed totals, from the beta-binomial model.

    :math:`\theta_i \sim \mathrm{Beta}(\kappa p, \kappa(1-p))`,
    :math:`y_i \sim \mathrm{Binomial}(n_i, \theta_i)`: exactly the marginal of one genre in
    :func:`hbm.book.simulate.music` (a Dirichlet's coordinate is a Beta, a multinomial's a
    binomial).

    Parameters
    ----------
    p, kappa : float or array-like, shape (R,)
        Share and concentration, one per replication (scalars are repeated).
    totals : array-like of int, shape (m,)
        Users' total plays ``n_i``, the same in every replication.
    rng : numpy.random.Generator
    n_reps : int, optional
        Replications; default ``len(p)`` (or 1 for scalars).

    Returns
    -------
    ndarray of int64, shape (R, m)
    """
    totals = np.asarray(totals, dtype=np.int64)
    p = np.atleast_1d(np.asarray(p, dtype=float))
    kappa = np.atleast_1d(np.asarray(kappa, dtype=float))
    reps = n_reps if n_reps is not None else max(len(p), len(kappa))
    p = np.broadcast_to(p, (reps,))[:, None]
    kappa = np.broadcast_to(kappa, (reps,))[:, None]
    theta = rng.beta(kappa * p, kappa * (1 - p), size=(reps, len(totals)))
    return rng.binomial(totals, theta)


def draw_parameters(prior: tuple[float, float], kappa_prior: tuple[float, float] = KAPPA_PRIOR,
                    *, n_reps: int, rng) -> tuple[np.ndarray, np.ndarray]:
    """Draw ``p ~ Beta(a, b)`` and ``log kappa ~ N(mu, sigma^2)``, ``n_reps`` of each."""
    p = rng.beta(prior[0], prior[1], size=n_reps)
    kappa = np.exp(rng.normal(kappa_prior[0], kappa_prior[1], size=n_reps))
    return p, kappa


#: Display names of the intervals in :func:`coverage_study` output, in display order.
METHODS = {
    "naive": "Binomial (Wald), plays independent",
    "bootstrap": "Cluster bootstrap over users",
    "cluster_t": "Cluster-robust t over users",
}


def coverage_study(p, kappa, totals, *, rng, priors: Mapping[str, tuple[float, float]],
                   n_reps: int | None = None, prob: float = 0.95, n_boot: int = 1000,
                   kappa_prior: tuple[float, float] = KAPPA_PRIOR) -> pd.DataFrame:
    """Simulate data sets and record every interval's coverage of the generating ``p``.

    Each replication draws ``y`` with :func:`simulate_successes` and computes the naive
    binomial, cluster bootstrap and cluster-robust t intervals and one credible interval per
    prior (:func:`grid_posterior`).

    Parameters
    ----------
    p, kappa : float or array-like, shape (R,)
        The truth of each replication: fixed (scalars), or drawn (e.g. :func:`draw_parameters`).
    totals : array-like of int, shape (m,)
        Users' total plays, fixed across replications.
    rng : numpy.random.Generator
        Drives both the data and the bootstrap.
    priors : mapping of str to (a, b)
        Beta priors of the credible intervals; keys become ``method`` values ``"credible:<key>"``.
    n_reps : int, optional
        Needed when ``p`` and ``kappa`` are scalars.
    prob, n_boot, kappa_prior
        As in the interval functions.

    Returns
    -------
    pandas.DataFrame
        Tidy: one row per replication and interval, columns ``rep``, ``method``, ``p``
        (truth), ``kappa``, ``estimate``, ``lower``, ``upper``, ``covered``, ``width``.
    """
    y = simulate_successes(p, kappa, totals, rng=rng, n_reps=n_reps)
    reps = y.shape[0]
    truth_p = np.broadcast_to(np.asarray(p, dtype=float), (reps,))
    truth_k = np.broadcast_to(np.asarray(kappa, dtype=float), (reps,))
    found = {
        "naive": naive_binomial_interval(y, totals, prob),
        "bootstrap": cluster_bootstrap_interval(y, totals, prob, n_boot, rng=rng),
        "cluster_t": cluster_t_interval(y, totals, prob),
    }
    for name, post in grid_posterior(y, totals, priors, kappa_prior, prob).items():
        found[f"credible:{name}"] = post.intervals
    frames = [
        pd.DataFrame({
            "rep": np.arange(reps), "method": name, "p": truth_p, "kappa": truth_k,
            "estimate": iv.estimate, "lower": iv.lower, "upper": iv.upper,
            "covered": iv.covers(truth_p), "width": iv.width,
        })
        for name, iv in found.items()
    ]
    return pd.concat(frames, ignore_index=True)


def summarise_coverage(results: pd.DataFrame, by=("method",), nominal: float = 0.95) -> pd.DataFrame:
    """Coverage, its Monte Carlo error and mean width, per group of a :func:`coverage_study` frame.

    Returns one row per group with ``coverage``, ``n_reps``, ``mc_se`` (binomial standard error
    at the observed coverage), ``band_lower``/``band_upper`` (coverage +- 2 mc_se, clipped to
    [0, 1]), ``z`` (``(coverage - nominal) / sqrt(nominal (1 - nominal) / n_reps)``, the
    distance from the nominal level in standard errors under the nominal level) and
    ``mean_width``.
    """
    g = results.groupby(list(by), sort=False, observed=True)
    out = g.agg(coverage=("covered", "mean"), n_reps=("covered", "size"),
                mean_width=("width", "mean")).reset_index()
    out["mc_se"] = coverage_mc_error(out["coverage"], out["n_reps"])
    out["band_lower"] = (out["coverage"] - 2 * out["mc_se"]).clip(0, 1)
    out["band_upper"] = (out["coverage"] + 2 * out["mc_se"]).clip(0, 1)
    out["z"] = (out["coverage"] - nominal) / coverage_mc_error(nominal, out["n_reps"])
    return out


def coverage_phrase(coverage: float, n_reps: int, nominal: float = 0.95, k: float = 3.0) -> str:
    """Words for a coverage estimate against its nominal level, at ``k`` Monte Carlo errors.

    ``"within Monte Carlo error of"``, ``"below"`` or ``"above"`` the nominal level, judged by
    ``|coverage - nominal| <= k * sqrt(nominal (1 - nominal) / n_reps)``.
    """
    if abs(coverage - nominal) <= k * coverage_mc_error(nominal, n_reps):
        return "within Monte Carlo error of"
    return "below" if coverage < nominal else "above"
