# The posterior of a region's mean share p in the beta-binomial model, on a grid [Gelman
# et al.
# 2013, sec. 5.3], for one or more Beta priors on p:
#   y_i ~ BetaBinomial(n_i, kappa p, kappa (1 - p)),  p ~ Beta(a, b),  log kappa ~
# Normal(mu, sigma).
# The log posterior is evaluated on a grid over (p, log kappa); kappa is summed out, and
# the
# posterior mean and the equal-tailed interval of p are read off the marginal density of
# p.
# The grid starts over all of (0, 1) x (mu - 6 sigma, mu + 6 sigma) and zooms in, a few
# times,
# on the box where the posterior is within a factor exp(15) of its peak, so that it
# resolves
# narrow posteriors as well as wide ones (20 x 20 points while zooming, then 100 x 20).
# No sampler:
# the result is exact up to the grid.
import numpy as np
from scipy import special

from hbm._intervals_ci import as_batch, batch_result


def beta_binomial_loglik(y, n, p, log_kappa):
    # y, n: (R, m); p: (R, J); log_kappa: (R, K) -> (R, J, K). The binomial
    # coefficients, which
    # involve neither p nor kappa, are left out.
    m = y.shape[1]
    kappa = np.exp(log_kappa)[:, None, :]
    a, b = p[:, :, None] * kappa, (1 - p)[:, :, None] * kappa
    users = special.gammaln(y[:, None, None, :] + a[..., None])
    users += special.gammaln((n - y)[:, None, None, :] + b[..., None])
    totals = special.gammaln(n[:, None, None, :] + kappa[..., None]).sum(axis=-1)
    return (
        users.sum(axis=-1)
        + m * special.gammaln(kappa)
        - totals
        - m * (special.gammaln(a) + special.gammaln(b))
    )


def log_posteriors(y, n, p, log_kappa, priors, kappa_prior):
    mu, sigma = kappa_prior
    shared = beta_binomial_loglik(y, n, p, log_kappa)
    shared -= 0.5 * ((log_kappa - mu) / sigma)[:, None, :] ** 2
    return {
        name: shared + ((a - 1) * np.log(p) + (b - 1) * np.log1p(-p))[:, :, None]
        for name, (a, b) in priors.items()
    }


def box(axis, keep, low, high):
    # from the first to the last kept grid point of each row, one step wider, within
    # [low, high]
    rows = np.arange(len(axis))
    first = np.argmax(keep, axis=1)
    last = keep.shape[1] - 1 - np.argmax(keep[:, ::-1], axis=1)
    step = axis[:, 1] - axis[:, 0]
    return (
        np.maximum(axis[rows, first] - step, low),
        np.minimum(axis[rows, last] + step, high),
    )


def quantile(x, density, cdf, q):
    # the q quantile of each row when the density is linear between grid points (the CDF
    # is
    # then quadratic within a step: solve f0 t + slope t^2 / 2 = mass left, for t)
    rows = np.arange(len(x))
    j = np.clip((cdf < q).sum(axis=1) - 1, 0, x.shape[1] - 2)
    h = x[rows, j + 1] - x[rows, j]
    f0, f1 = density[rows, j], density[rows, j + 1]
    left = q - cdf[rows, j]
    root = np.sqrt(np.maximum(f0**2 + 2 * (f1 - f0) / h * left, 0))
    t = np.where(f0 + root > 0, 2 * left / np.maximum(f0 + root, 1e-300), 0)
    return x[rows, j] + np.clip(t, 0, h)


def grid_block(y, n, priors, kappa_prior, prob, points, final, zooms):
    mu, sigma = kappa_prior
    p_range, k_range = (1e-9, 1 - 1e-9), (mu - 6 * sigma, mu + 6 * sigma)
    p_lo, p_hi = np.full(len(y), p_range[0]), np.full(len(y), p_range[1])
    k_lo, k_hi = np.full(len(y), k_range[0]), np.full(len(y), k_range[1])
    for zoom in range(zooms + 1):
        p = p_lo[:, None] + (p_hi - p_lo)[:, None] * np.linspace(
            0, 1, final if zoom == zooms else points
        )
        log_kappa = k_lo[:, None] + (k_hi - k_lo)[:, None] * np.linspace(0, 1, points)
        logpost = log_posteriors(y, n, p, log_kappa, priors, kappa_prior)
        if zoom == zooms:
            break
        near = np.any(
            [lp >= lp.max(axis=(1, 2), keepdims=True) - 15 for lp in logpost.values()],
            axis=0,
        )
        p_lo, p_hi = box(p, near.any(axis=2), *p_range)
        k_lo, k_hi = box(log_kappa, near.any(axis=1), *k_range)
    tail = (1 - prob) / 2
    out = {}
    for name, lp in logpost.items():
        # kappa summed out on its even grid: the marginal density of p, normalised
        density = np.exp(lp - lp.max(axis=(1, 2), keepdims=True)).sum(axis=2)
        steps = 0.5 * (density[:, 1:] + density[:, :-1]) * np.diff(p, axis=1)
        density /= steps.sum(axis=1, keepdims=True)
        cdf = np.concatenate([np.zeros((len(p), 1)), np.cumsum(steps, axis=1)], axis=1)
        cdf /= cdf[:, -1:]
        mean = (p * density).sum(axis=1) / density.sum(axis=1)
        out[name] = (
            mean,
            quantile(p, density, cdf, tail),
            quantile(p, density, cdf, 1 - tail),
        )
    return out


def grid_posterior(
    y, n, priors, kappa_prior, prob=0.95, *, points=20, final=100, zooms=3, chunk=32
):
    # priors: {name: (a, b)}. Returns {name: Intervals}: the posterior mean and interval
    # of p.
    if any(min(ab) < 1 for ab in priors.values()):
        raise ValueError("Beta priors on p need a, b >= 1 (a bounded density)")
    y, n, single = as_batch(y, n)
    found = {name: np.empty((3, len(y))) for name in priors}
    for start in range(
        0, len(y), chunk
    ):  # a block of data sets at a time, to bound memory
        rows = slice(start, start + chunk)
        block = grid_block(
            y[rows], n[rows], priors, kappa_prior, prob, points, final, zooms
        )
        for name, values in block.items():
            found[name][:, rows] = values
    return {name: batch_result(single, *values) for name, values in found.items()}
