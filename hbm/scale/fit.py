"""The fits at scale: empirical Bayes and full Bayes, from the regional histograms alone.

:func:`fit_priors` fits every region's Dirichlet prior by marginal maximum likelihood
(:func:`hbm.eb.fit_dirichlet_multinomial_from_suffstats`); :func:`fit_full_bayes` samples the
three-level model of chapter 3 (:func:`hbm.scale.model.histogram_model`) with nutpie. Both
cost O(distinct counts), whatever the number of users.

References: @minka2000, @robbins1956 and @efron1975 (empirical Bayes), @gelman2013.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from hbm import diagnostics
from hbm.eb import DirichletMultinomialFit, fit_dirichlet_multinomial_from_suffstats
from hbm.scale.histograms import RegionStats
from hbm.scale.model import C_PRIOR, KAPPA_PRIOR, histogram_bins, histogram_model

__all__ = ["EBPriors", "fit_priors", "FullBayesFit", "fit_full_bayes"]


# =========================================================================== #
# Empirical Bayes: marginal maximum likelihood
# =========================================================================== #
@dataclass(frozen=True)
class EBPriors:
    """Global and regional Dirichlet priors fitted by marginal maximum likelihood.

    Attributes
    ----------
    regions, genres : tuple of str
    overall : hbm.eb.DirichletMultinomialFit
        One prior for all users.
    by_region : tuple of hbm.eb.DirichletMultinomialFit
        One prior per region.
    """

    regions: tuple[str, ...]
    genres: tuple[str, ...]
    overall: DirichletMultinomialFit
    by_region: tuple

    @property
    def alpha(self) -> np.ndarray:
        """Regional concentration vectors, shape (R, K)."""
        return np.array([f.alpha for f in self.by_region])

    def table(self) -> pd.DataFrame:
        """One row per prior (global first): ``kappa`` (= sum alpha) and the mean share of each genre."""
        rows = []
        for name, f in [("All users", self.overall), *zip(self.regions, self.by_region)]:
            rows.append({"prior": name, "kappa": f.concentration,
                         **{g: m for g, m in zip(self.genres, f.mean)}})
        return pd.DataFrame(rows).set_index("prior")


def fit_priors(stats: RegionStats, genres: Sequence[str]) -> EBPriors:
    """Fit the global and every regional prior from sufficient statistics alone.

    Calls :func:`hbm.eb.fit_dirichlet_multinomial_from_suffstats` on
    ``stats.overall`` and on each region's statistics; the cost depends on the number of
    distinct counts and totals, not on the number of users.

    Raises
    ------
    ValueError
        A region without users, or a fit that did not converge.
    """
    overall = fit_dirichlet_multinomial_from_suffstats(stats.overall)
    fits = tuple(fit_dirichlet_multinomial_from_suffstats(stats.region(r)) for r in stats.regions)
    for name, f in [("all users", overall), *zip(stats.regions, fits)]:
        if not f.converged:
            raise ValueError(f"the EB fit for {name} did not converge in {f.n_iter} iterations")
    return EBPriors(stats.regions, tuple(genres), overall, fits)


# =========================================================================== #
# Full Bayes: the three-level model sampled on the histograms
# =========================================================================== #
_COMPILED: dict = {}


@dataclass(frozen=True)
class FullBayesFit:
    """A nutpie fit of the three-level model on regional histograms.

    Attributes
    ----------
    regions, genres : tuple of str
    alpha : ndarray, shape (S, R, K)
        Posterior draws of every region's Dirichlet parameters (chains stacked).
    check : hbm.diagnostics.Diagnostics
        Divergences, R-hat, ESS, tree depth, E-BFMI.
    seconds : dict
        ``compile`` (0 when the compiled model was reused) and ``sample``.
    n_bins : int
        Histogram cells the likelihood sums over.
    fit : xarray.DataTree
        The whole fit.
    """

    regions: tuple[str, ...]
    genres: tuple[str, ...]
    alpha: np.ndarray
    check: diagnostics.Diagnostics
    seconds: dict
    n_bins: int
    fit: object = field(repr=False)

    def table(self) -> pd.DataFrame:
        """Posterior mean of ``kappa`` and of each genre's share of the profile, per region."""
        kappa = self.alpha.sum(axis=2)
        share = (self.alpha / kappa[..., None]).mean(axis=0)
        frame = pd.DataFrame(share, index=list(self.regions), columns=list(self.genres))
        frame.insert(0, "kappa", kappa.mean(axis=0))
        return frame.rename_axis("prior")


def _compiled(bins, regions, genres, c_prior, kappa_prior):
    """The nutpie-compiled model for these regions and genres (compiled once per process)."""
    import nutpie

    key = (tuple(regions), tuple(genres), tuple(c_prior), tuple(kappa_prior))
    if key not in _COMPILED:
        model = histogram_model(bins, regions, genres, c_prior=c_prior, kappa_prior=kappa_prior)
        _COMPILED[key] = nutpie.compile_pymc_model(model, freeze_model=False)
        return _COMPILED[key], True
    return _COMPILED[key].with_data(**bins.data()), False


def fit_full_bayes(stats: RegionStats, genres: Sequence[str], *, random_seed: int, draws: int = 1000,
                   tune: int = 1000, chains: int = 4, cores: int | None = None,
                   c_prior=C_PRIOR, kappa_prior=KAPPA_PRIOR) -> FullBayesFit:
    """Sample the three-level model on the regional histograms with nutpie.

    The model (:func:`hbm.scale.model.histogram_model`) is compiled on the first call in a
    process and reused afterwards with the new histograms (``seconds["compile"]`` is then
    0). Same histograms and seed, same draws.

    Parameters
    ----------
    stats : RegionStats
        Regional histograms (every region must have users).
    genres : sequence of str
    random_seed : int
    draws, tune, chains : int
        Kept draws and warm-up iterations per chain, and chains.
    cores : int, optional
        Chains sampled at once (default: nutpie's, one per core).
    c_prior, kappa_prior : tuple of float
        (mean, sd) of the normal priors on log c and log kappa_r (chapter 3's by default).

    Returns
    -------
    FullBayesFit
    """
    import nutpie

    for r in stats.regions:
        stats.region(r)  # raises for a region without users
    bins = histogram_bins(stats.by_region)
    start = time.perf_counter()
    compiled, fresh = _compiled(bins, stats.regions, genres, c_prior, kappa_prior)
    compile_s = time.perf_counter() - start if fresh else 0.0
    start = time.perf_counter()
    kwargs = {} if cores is None else {"cores": cores}
    fit = nutpie.sample(compiled, draws=draws, tune=tune, chains=chains, seed=int(random_seed),
                        progress_bar=False, **kwargs)
    sample_s = time.perf_counter() - start
    post = fit["posterior"]["alpha"].transpose("chain", "draw", "region", "genre")
    alpha = np.asarray(post, dtype=np.float64).reshape(-1, len(stats.regions), len(genres))
    check = diagnostics.check(fit, var_names=["p_global", "c", "p", "log_kappa"])
    return FullBayesFit(tuple(stats.regions), tuple(genres), alpha, check,
                        {"compile": compile_s, "sample": sample_s}, bins.size, fit)
