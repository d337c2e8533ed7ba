# Three 95% confidence intervals for a region's mean share p of one genre, from each
# user's plays
# y_i of that genre out of n_i plays. Each works on one data set (y of shape (m,)) or on
# R
# simulated data sets at once (shape (R, m)); n is the same for all.
from dataclasses import dataclass

import numpy as np
from scipy import stats

from hbm.metrics import inside


@dataclass(frozen=True)
class Intervals:
    estimate: np.ndarray
    lower: np.ndarray
    upper: np.ndarray

    @property
    def width(self):
        return self.upper - self.lower

    def covers(self, truth):
        return inside(self.lower, self.upper, truth)


def as_batch(y, n):
    # y as an (R, m) float array, n broadcast to it; whether y was a single data set
    y = np.asarray(y, dtype=float)
    single = y.ndim == 1
    y = np.atleast_2d(y)
    n = np.broadcast_to(np.asarray(n, dtype=float), y.shape)
    if y.shape[1] == 0 or np.any(n < 1) or np.any(y < 0) or np.any(y > n):
        raise ValueError("need at least one user, totals n_i >= 1 and 0 <= y_i <= n_i")
    return y, n, single


def batch_result(single, estimate, lower, upper):
    if single:
        return Intervals(estimate[0], lower[0], upper[0])
    return Intervals(estimate, lower, upper)


# 1. Every play an independent coin flip: the binomial (Wald) interval on q = sum(y) /
# sum(n).
def naive_binomial_interval(y, n, prob=0.95):
    y, n, single = as_batch(y, n)
    z = stats.norm.ppf(0.5 + prob / 2)
    total = n.sum(axis=1)
    q = y.sum(axis=1) / total
    half = z * np.sqrt(q * (1 - q) / total)
    return batch_result(single, q, q - half, q + half)


# 2. Users as clusters: the mean of users' shares, p_hat = mean(y_i / n_i), plus or
# minus a t
# quantile times its cluster-robust standard error s / sqrt(m). With one user: no
# interval.
def cluster_t_interval(y, n, prob=0.95):
    y, n, single = as_batch(y, n)
    shares = y / n
    m = shares.shape[1]
    estimate = shares.mean(axis=1)
    if m < 2:
        half = np.full_like(estimate, np.nan)
    else:
        half = (
            stats.t.ppf(0.5 + prob / 2, m - 1) * shares.std(axis=1, ddof=1) / np.sqrt(m)
        )
    return batch_result(single, estimate, estimate - half, estimate + half)


# 3. Resample whole users with replacement (a cluster bootstrap), recompute p_hat each
# time, and
# take the 2.5% and 97.5% quantiles of the n_boot resampled means (the percentile
# interval).
def cluster_bootstrap_interval(y, n, prob=0.95, n_boot=1000, *, rng, chunk=64):
    y, n, single = as_batch(y, n)
    shares = y / n
    reps, m = shares.shape
    tail = (1 - prob) / 2
    lower, upper = np.empty(reps), np.empty(reps)
    for start in range(
        0, reps, chunk
    ):  # a block of data sets at a time, to bound memory
        block = shares[start : start + chunk]
        users = rng.integers(0, m, size=(len(block), n_boot, m))
        means = np.take_along_axis(block[:, None, :], users, axis=2).mean(axis=2)
        lower[start : start + chunk], upper[start : start + chunk] = np.quantile(
            means, [tail, 1 - tail], axis=1
        )
    return batch_result(single, shares.mean(axis=1), lower, upper)
