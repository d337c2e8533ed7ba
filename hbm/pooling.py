"""No-pooling and complete-pooling baselines on summary statistics.

Every unit is described by an estimate ``y_i`` and its standard error ``s_i``.
The two baselines bracket the hierarchical model: *no pooling* treats every
unit alone, *complete pooling* replaces every unit by the precision-weighted
mean of its group [@gelman2013, sec. 5.5]. :func:`group_summaries` turns raw
unit-level data (e.g. students' scores by school) into those summaries.

The cores are pure NumPy/SciPy; pandas appears only in
:meth:`PoolingResult.to_frame` and :func:`group_summaries`, which return
tables.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

__all__ = [
    "PoolingResult",
    "no_pooling",
    "complete_pooling",
    "group_summaries",
]


# --------------------------------------------------------------------------- #
# Validation helpers (shared with hbm.eb and hbm.metrics)
# --------------------------------------------------------------------------- #
def _as_vector(x, name: str) -> np.ndarray:
    """Return ``x`` as a finite, non-empty 1-D float array or raise ValueError."""
    arr = np.asarray(x, dtype=float)
    if arr.ndim == 0:
        arr = arr.reshape(1)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"{name} must not be empty")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite (found NaN or infinity)")
    return arr


def _estimates_and_errors(estimates, std_errors) -> tuple[np.ndarray, np.ndarray]:
    """Validate a pair (estimates, standard errors) of equal length; s_i > 0."""
    y = _as_vector(estimates, "estimates")
    s = _as_vector(std_errors, "std_errors")
    if y.shape != s.shape:
        raise ValueError(
            f"estimates and std_errors must have the same length ({y.size} != {s.size})"
        )
    if np.any(s <= 0):
        raise ValueError("std_errors must be strictly positive")
    return y, s


def _z_value(prob: float) -> float:
    """Standard normal quantile for a central interval of probability ``prob``."""
    prob = float(prob)
    if not 0.0 < prob < 1.0:
        raise ValueError(f"prob must lie strictly between 0 and 1, got {prob}")
    return float(stats.norm.ppf(0.5 + prob / 2.0))


def _is_missing(label) -> bool:
    """True for None, NaN, pd.NA and NaT (labels that cannot name a group)."""
    if label is None or label is pd.NA or label is pd.NaT:
        return True
    return isinstance(label, (float, np.floating)) and label != label


def _factorize(groups, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Integer codes and unique labels (in order of first appearance), by ``pandas.factorize``.

    Labels of mixed types (``"a"`` and ``1``) are distinct groups.

    Parameters
    ----------
    groups : array-like of length ``n``
        Group labels (strings, integers, ...). Missing labels are rejected.
    n : int
        Expected length.

    Returns
    -------
    codes : ndarray of int, shape (n,)
        ``labels[codes[i]]`` is the label of unit ``i``.
    labels : ndarray, shape (n_groups,)
        Unique labels in order of first appearance.
    """
    g = np.asarray(groups)
    if g.ndim == 0:
        g = g.reshape(1)
    if g.ndim != 1:
        raise ValueError(f"groups must be one-dimensional, got shape {g.shape}")
    if g.size != n:
        raise ValueError(f"groups must have one label per unit ({g.size} != {n})")
    if g.dtype.kind == "f" and not np.all(np.isfinite(g)):
        raise ValueError("groups must not contain NaN or infinite labels")
    if g.dtype.kind == "O" and any(_is_missing(v) for v in g):
        raise ValueError("groups must not contain missing labels (None or NaN)")
    codes, labels = pd.factorize(g, use_na_sentinel=False)
    return codes.astype(np.int64, copy=False), np.asarray(labels)


def _sample_sd(sum_squares, n) -> np.ndarray:
    """Sample standard deviation ``sqrt(ss / (n - 1))`` where ``n >= 2``; NaN where ``n < 2``.

    A group with a single value has no spread to measure: its sd is NaN (not 0, not infinity),
    without a NumPy warning.
    """
    n = np.asarray(n, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        sd = np.sqrt(np.asarray(sum_squares, dtype=float) / (n - 1))
    return np.where(n >= 2, sd, np.nan)


def _weighted_group_means(
    y: np.ndarray, w: np.ndarray, codes: np.ndarray, n_groups: int
) -> tuple[np.ndarray, np.ndarray]:
    """Per-group ``sum(w*y)/sum(w)`` and ``sum(w)`` via ``np.bincount``."""
    sw = np.bincount(codes, weights=w, minlength=n_groups)
    swy = np.bincount(codes, weights=w * y, minlength=n_groups)
    return swy / sw, sw


# --------------------------------------------------------------------------- #
# Public API
# --------------------------------------------------------------------------- #
@dataclass(frozen=True, eq=False)
class PoolingResult:
    """Per-unit point estimates and central intervals of a pooling baseline.

    Attributes
    ----------
    estimate : ndarray, shape (n_units,)
        Point estimate for each unit.
    std_error : ndarray, shape (n_units,)
        Standard error used to build the interval.
    lower, upper : ndarray, shape (n_units,)
        Interval ``estimate -/+ z * std_error`` with ``z = Phi^{-1}((1 + prob) / 2)``.
    prob : float
        Nominal coverage of the intervals.
    """

    estimate: np.ndarray
    std_error: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    prob: float = 0.95

    def to_frame(self) -> pd.DataFrame:
        """Return a DataFrame with columns ``estimate, std_error, lower, upper``."""
        return pd.DataFrame(
            {
                "estimate": self.estimate,
                "std_error": self.std_error,
                "lower": self.lower,
                "upper": self.upper,
            }
        )


def no_pooling(estimates, std_errors, prob: float = 0.95) -> PoolingResult:
    r"""No pooling: every unit is estimated from its own data alone.

    The estimate of unit ``i`` is its own ``y_i`` and the interval is the
    Wald interval

    .. math:: y_i \pm z\, s_i, \qquad z = \Phi^{-1}\{(1 + \text{prob}) / 2\}

    (``z = 1.96`` for 95%) [@gelman2013, sec. 5.5].

    Parameters
    ----------
    estimates : array-like, shape (n_units,)
        Unit estimates ``y_i``.
    std_errors : array-like, shape (n_units,)
        Their standard errors ``s_i > 0``.
    prob : float, default 0.95
        Nominal coverage of the central interval, in (0, 1).

    Returns
    -------
    PoolingResult

    Raises
    ------
    ValueError
        Mismatched lengths, empty or non-finite input, non-positive standard
        errors, or ``prob`` outside (0, 1).
    """
    y, s = _estimates_and_errors(estimates, std_errors)
    z = _z_value(prob)
    return PoolingResult(
        estimate=y.copy(), std_error=s.copy(), lower=y - z * s, upper=y + z * s,
        prob=float(prob),
    )


def complete_pooling(
    estimates, std_errors, groups=None, prob: float = 0.95
) -> PoolingResult:
    r"""Complete pooling: every unit gets the precision-weighted mean of its group.

    With weights ``w_i = 1 / s_i^2`` the pooled mean of group ``g`` and its
    standard error are

    .. math::

        \bar y_g = \frac{\sum_{i \in g} w_i y_i}{\sum_{i \in g} w_i}, \qquad
        \operatorname{se}(\bar y_g) = \Big(\sum_{i \in g} w_i\Big)^{-1/2},

    and every unit ``i`` in ``g`` receives the estimate ``\bar y_g`` and the
    interval ``\bar y_g \pm z\,\operatorname{se}(\bar y_g)``
    [@gelman2013, sec. 5.5]. Without ``groups`` all units form one group.

    Notes
    -----
    The interval is an interval for the *group mean* under the assumption that
    all units in the group share one true effect (``tau = 0``). It is *not* an
    interval for the unit's own effect: when units truly differ, it is far too
    narrow and its coverage of the unit effects is poor (it shrinks towards 0
    as the number of units grows).

    Parameters
    ----------
    estimates : array-like, shape (n_units,)
        Unit estimates ``y_i``.
    std_errors : array-like, shape (n_units,)
        Their standard errors ``s_i > 0``.
    groups : array-like, shape (n_units,), optional
        Group labels (strings or integers); pooling is done within groups.
    prob : float, default 0.95
        Nominal coverage of the central interval, in (0, 1).

    Returns
    -------
    PoolingResult
        ``std_error`` holds the standard error of the pooled mean of each
        unit's group.

    Raises
    ------
    ValueError
        Mismatched lengths, empty or non-finite input, non-positive standard
        errors, missing group labels, or ``prob`` outside (0, 1).
    """
    y, s = _estimates_and_errors(estimates, std_errors)
    z = _z_value(prob)
    if groups is None:
        codes, n_groups = np.zeros(y.size, dtype=np.intp), 1
    else:
        codes, labels = _factorize(groups, y.size)
        n_groups = labels.size
    mean_g, precision_g = _weighted_group_means(y, 1.0 / s**2, codes, n_groups)
    est = mean_g[codes]
    se = np.sqrt(1.0 / precision_g)[codes]
    return PoolingResult(
        estimate=est, std_error=se, lower=est - z * se, upper=est + z * se,
        prob=float(prob),
    )


def group_summaries(values, groups) -> pd.DataFrame:
    r"""Summarise raw unit-level values by group.

    For group ``g`` with ``n_g`` values: ``mean`` is the sample mean, ``sd``
    the sample standard deviation (``ddof = 1``) and ``se = sd / sqrt(n_g)``,
    the usual standard error of the mean that the normal-normal model treats
    as known [@gelman2013, sec. 5.5]. A group with a single value keeps its
    ``n`` and ``mean``, and its ``sd`` and ``se`` are NaN: one value has no
    spread to estimate (a hierarchical model still estimates that group; only
    the no-pooling standard error is undefined).

    Parameters
    ----------
    values : array-like, shape (n,)
        Finite raw values (e.g. students' scores).
    groups : array-like, shape (n,)
        Group label of each value (e.g. school).

    Returns
    -------
    pandas.DataFrame
        Index ``group`` (labels in order of first appearance); columns
        ``n`` (int), ``mean``, ``sd``, ``se`` (NaN for a single-value group).

    Raises
    ------
    ValueError
        Mismatched lengths, empty or non-finite values, or missing labels.
    """
    x = _as_vector(values, "values")
    codes, labels = _factorize(groups, x.size)
    k = labels.size
    n = np.bincount(codes, minlength=k)
    mean = np.bincount(codes, weights=x, minlength=k) / n
    ss = np.bincount(codes, weights=(x - mean[codes]) ** 2, minlength=k)
    sd = _sample_sd(ss, n)
    return pd.DataFrame(
        {"n": n.astype(np.int64), "mean": mean, "sd": sd, "se": sd / np.sqrt(n)},
        index=pd.Index(labels, name="group"),
    )
