"""Confidence and credible intervals for one genre's share in one region, and their coverage.

The estimand is a regional profile parameter of the music model: for region r and genre g,
p = E[theta_i | user i in region r], the mean of users' shares of genre g, not one user's share
and not the share of all plays. One genre's plays y_i among user i's n_i plays follow a
beta-binomial, theta_i ~ Beta(kappa p, kappa (1 - p)), y_i | theta_i ~ Binomial(n_i, theta_i).

The interval computations live in three short modules without docstrings, which the intervals
chapter shows in full on the page (one copy): :mod:`hbm._intervals_ci` (the binomial, cluster-t
and cluster-bootstrap confidence intervals), :mod:`hbm._intervals_grid` (the grid posterior and
its credible intervals) and :mod:`hbm._intervals_coverage` (the coverage study). This module
re-exports them and adds the data helpers and constants.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
from hbm._intervals_ci import (Intervals, cluster_bootstrap_interval, cluster_t_interval,
                               naive_binomial_interval)
from hbm._intervals_coverage import coverage_study, draw_parameters, simulate_successes, summarise_coverage
from hbm._intervals_grid import grid_posterior
from hbm.metrics import coverage_mc_error


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
    "naive_binomial_interval",
    "cluster_t_interval",
    "cluster_bootstrap_interval",
    "grid_posterior",
    "simulate_successes",
    "draw_parameters",
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
        means.append((y / n).mean())
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


def coverage_phrase(coverage: float, n_reps: int, nominal: float = 0.95, k: float = 3.0) -> str:
    """Words for a coverage estimate against its nominal level, at ``k`` Monte Carlo errors.

    ``"within Monte Carlo error of"``, ``"below"`` or ``"above"`` the nominal level, judged by
    ``|coverage - nominal| <= k * sqrt(nominal (1 - nominal) / n_reps)``.
    """
    if abs(coverage - nominal) <= k * coverage_mc_error(nominal, n_reps):
        return "within Monte Carlo error of"
    return "below" if coverage < nominal else "above"
