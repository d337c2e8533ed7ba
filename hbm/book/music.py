"""Three-level multinomial-Dirichlet model of users' genre preferences, and its summaries.

The model (chapter "Regional music preferences") has three levels. For user :math:`i` in
region :math:`r = r(i)` with play counts :math:`x_i` over the :math:`K` genres of
:data:`hbm.book.data.GENRES` and total :math:`n_i = \\sum_k x_{ik}`,

.. math::

    x_i \\mid \\theta_i &\\sim \\mathrm{Multinomial}(n_i, \\theta_i), \\\\
    \\theta_i \\mid \\alpha_r &\\sim \\mathrm{Dirichlet}(\\alpha_r), \\qquad
        \\alpha_r = \\kappa_r p_r, \\\\
    p_r \\mid c, p_{\\mathrm{global}} &\\sim \\mathrm{Dirichlet}(c\\, p_{\\mathrm{global}}),

with :math:`p_{\\mathrm{global}} \\sim \\mathrm{Dirichlet}(1, \\dots, 1)`,
:math:`\\log c \\sim N(3, 1)` and :math:`\\log \\kappa_r \\sim N(3, 1.5)`. Here :math:`p_r` is
region :math:`r`'s genre profile (the mean of its users' :math:`\\theta_i`) and
:math:`\\kappa_r = \\sum_k \\alpha_{rk}` its concentration (large: users alike). Integrating
:math:`\\theta_i` out gives the Dirichlet-multinomial likelihood [mosimann1962]_ [minka2000]_,
so the sampler sees only :math:`p_{\\mathrm{global}}, c, p_r, \\kappa_r`.

Given :math:`\\alpha_r`, conjugacy makes each user's posterior closed form,
:math:`\\theta_i \\mid x_i, \\alpha_r \\sim \\mathrm{Dirichlet}(\\alpha_r + x_i)`, with mean

.. math::

    E[\\theta_i \\mid x_i, \\alpha_r] = \\frac{\\alpha_r + x_i}{\\kappa_r + n_i}
        = w_i \\frac{x_i}{n_i} + (1 - w_i)\\, p_r, \\qquad w_i = \\frac{n_i}{n_i + \\kappa_r},

a convex combination of the user's own shares and the regional profile: the *shrinkage*
:math:`1 - w_i = \\kappa_r / (n_i + \\kappa_r)` grows as the user's total :math:`n_i`
shrinks [gelman2013]_. Averaging over posterior draws of :math:`\\alpha_r` integrates over
the uncertainty in the region's profile and concentration (:func:`user_posteriors`).

References
----------
.. [mosimann1962] Mosimann (1962), On the compound multinomial distribution, the
   multivariate beta-distribution, and correlations among proportions. Biometrika 49.
.. [minka2000] Minka (2000), Estimating a Dirichlet distribution. Technical report.
.. [gelman2013] Gelman et al. (2013), *Bayesian Data Analysis*, 3rd ed., sections 5.3 and 23.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from hbm import posterior
from hbm.scale import three_level
from hbm.book.data import GENRE_LABELS, GENRES, counts_matrix

__all__ = [
    "C_PRIOR",
    "KAPPA_PRIOR",
    "region_codes",
    "shares",
    "region_shares",
    "user_shares_long",
    "three_level_model",
    "fit_three_level",
    "alpha_draws",
    "bambi_alpha_draws",
    "profile_summary",
    "kappa_summary",
    "posterior_mean_given_alpha",
    "shrinkage_weight",
    "UserPosterior",
    "user_posteriors",
    "pick_users",
    "truth_profiles",
    "truth_kappa",
    "recovery",
]

#: Priors of log c and log kappa_r (mean, sd): the one definition is :mod:`hbm.scale.three_level`
#: (shown in the chapter; the full Bayes job at scale fits the same model).
C_PRIOR: tuple[float, float] = three_level.C_PRIOR
KAPPA_PRIOR: tuple[float, float] = three_level.KAPPA_PRIOR


def region_codes(plays: pd.DataFrame) -> tuple[np.ndarray, list[str]]:
    """Each user's region index and the region labels (categories without users dropped).

    Parameters
    ----------
    plays : pandas.DataFrame
        From :func:`hbm.book.data.load_music` (``region`` is Categorical).

    Returns
    -------
    codes : numpy.ndarray of int, shape (n_users,)
        ``regions[codes[i]]`` is user ``i``'s region.
    regions : list of str
        In the order of the column's categories (order of first appearance in the file).
    """
    region = pd.Categorical(plays["region"])
    region = region.remove_unused_categories()
    return np.asarray(region.codes, dtype=np.int64), [str(r) for r in region.categories]


def shares(counts: np.ndarray) -> np.ndarray:
    """Each row's counts divided by its total: :math:`x_{ik} / n_i` (NaN where :math:`n_i = 0`).

    Parameters
    ----------
    counts : array_like, shape (n, K)
        Non-negative counts.

    Returns
    -------
    numpy.ndarray, shape (n, K)
    """
    x = np.asarray(counts, dtype=np.float64)
    n = x.sum(axis=-1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, x / np.where(n > 0, n, 1.0), np.nan)


def region_shares(plays: pd.DataFrame) -> pd.DataFrame:
    """Tidy regional genre shares: all plays of a region's users pooled, then divided.

    Returns
    -------
    pandas.DataFrame
        One row per (region, genre): ``region``, ``genre`` (display label), ``plays``,
        ``share`` (plays in the genre / all plays in the region), ``users`` (users in the
        region) and ``total`` (all plays in the region). Rows in region, then genre order.
    """
    codes, regions = region_codes(plays)
    x = counts_matrix(plays)
    rows = []
    for r, region in enumerate(regions):
        totals = x[codes == r].sum(axis=0)
        total = int(totals.sum())
        for k, genre in enumerate(GENRES):
            rows.append({
                "region": region, "genre": GENRE_LABELS[genre], "plays": int(totals[k]),
                "share": totals[k] / total if total > 0 else np.nan,
                "users": int((codes == r).sum()), "total": total,
            })
    return pd.DataFrame(rows)


def user_shares_long(plays: pd.DataFrame) -> pd.DataFrame:
    """Tidy per-user genre shares :math:`x_{ik}/n_i`, for users with at least one play.

    Returns
    -------
    pandas.DataFrame
        Columns ``user_id``, ``region``, ``n`` (the user's total plays), ``genre`` (display
        label), ``share``; one row per (user, genre).
    """
    x = counts_matrix(plays)
    keep = x.sum(axis=1) > 0
    wide = pd.DataFrame(shares(x[keep]), columns=[GENRE_LABELS[g] for g in GENRES])
    wide.insert(0, "n", x[keep].sum(axis=1))
    wide.insert(0, "region", plays["region"].astype(str).to_numpy()[keep])
    wide.insert(0, "user_id", plays["user_id"].astype(str).to_numpy()[keep])
    return wide.melt(id_vars=["user_id", "region", "n"], var_name="genre", value_name="share")


#: The model, from :mod:`hbm.scale.three_level` (one copy, shown in the chapter).
three_level_model = three_level.three_level_model


def fit_three_level(plays: pd.DataFrame, random_seed, *, draws: int = 1000,
                    tune: int = 1000, chains: int = 4, target_accept: float = 0.8,
                    **model_kwargs):
    """Sample :func:`three_level_model` with nutpie.

    Parameters
    ----------
    plays : pandas.DataFrame
        See :func:`three_level_model`.
    random_seed : int
        Passed to ``pymc.sample``.
    draws, tune, chains : int
        Draws kept per chain, warm-up iterations per chain, number of chains.
    target_accept : float
        NUTS's target acceptance rate.
    **model_kwargs
        Passed to :func:`three_level_model` (the priors).

    Returns
    -------
    xarray.DataTree
        The fit, with groups ``posterior`` and ``sample_stats``.
    """
    import pymc as pm

    model = three_level_model(plays, **model_kwargs)
    return pm.sample(
        draws=draws, tune=tune, chains=chains, target_accept=target_accept, model=model,
        random_seed=random_seed, nuts_sampler="nutpie", progressbar=False, quiet=True,
    )


def alpha_draws(fit, var_name: str = "alpha") -> np.ndarray:
    """Posterior draws of :math:`\\alpha_r` from a fit of :func:`three_level_model`.

    Returns
    -------
    numpy.ndarray, shape (chains * draws, n_regions, K)
        Regions in the model's ``region`` coordinate order, genres in :data:`GENRES` order.
    """
    return posterior.draws(fit, var_name, dims=("region", "genre"))


def bambi_alpha_draws(fit, regions) -> np.ndarray:
    """Posterior draws of :math:`\\alpha_r` from a Bambi ``dirichlet_multinomial`` fit.

    Bambi's family has a log link on the Dirichlet parameter, so
    :math:`\\alpha_{rk} = \\exp(\\eta_{rk})`. Two formulas are understood: ``~ 0 + region``
    (a coefficient ``region`` per genre and region: :math:`\\eta_{rk} = \\beta_{rk}`) and
    ``~ 1 + (1|region)`` (:math:`\\eta_{rk} = \\beta_{k} + u_{rk}`, ``Intercept`` plus the
    varying term ``1|region``).

    Parameters
    ----------
    fit : xarray.DataTree
        From ``bambi.Model.fit``.
    regions : sequence of str
        The region order wanted (e.g. from :func:`region_codes`).

    Returns
    -------
    numpy.ndarray, shape (chains * draws, len(regions), K)
        Genres in the order of the response's columns.
    """
    post = fit["posterior"]
    if "1|region" in post:
        term, intercept = "1|region", "Intercept"
    elif "region" in post:
        term, intercept = "region", None
    else:
        raise KeyError("expected a 'region' or '1|region' term in the fit's posterior")
    eta = posterior.linear_predictor(fit, pd.DataFrame({"region": [str(r) for r in regions]}), [term], intercept)
    return np.exp(np.asarray(eta, dtype=np.float64))


def profile_summary(alpha: np.ndarray, regions, prob: float = 0.95) -> pd.DataFrame:
    """Posterior mean and equal-tailed interval of each regional profile :math:`p_{rk}`.

    Parameters
    ----------
    alpha : numpy.ndarray, shape (S, R, K)
        Draws of :math:`\\alpha_r` (:func:`alpha_draws` or :func:`bambi_alpha_draws`).
    regions : sequence of str
        The R region labels.
    prob : float
        Interval probability.

    Returns
    -------
    pandas.DataFrame
        One row per (region, genre): ``region``, ``genre`` (key of :data:`GENRES`),
        ``label`` (display label), ``mean``, ``lower``, ``upper`` of
        :math:`p_{rk} = \\alpha_{rk} / \\kappa_r`.
    """
    alpha = np.asarray(alpha, dtype=np.float64)
    p = alpha / alpha.sum(axis=-1, keepdims=True)
    S, R, K = p.shape
    summary = posterior.summarise_draws(p.reshape(S, R * K), prob=prob)  # region-major columns
    return pd.DataFrame({
        "region": np.repeat(list(regions), K),
        "genre": np.tile(list(GENRES), R),
        "label": np.tile([GENRE_LABELS[g] for g in GENRES], R),
        **{col: summary[col].to_numpy() for col in ("mean", "lower", "upper")},
    })


def kappa_summary(alpha: np.ndarray, regions, prob: float = 0.95) -> pd.DataFrame:
    """Posterior mean and equal-tailed interval of each concentration :math:`\\kappa_r`.

    Returns
    -------
    pandas.DataFrame
        Index ``region``; columns ``mean``, ``lower``, ``upper`` of
        :math:`\\kappa_r = \\sum_k \\alpha_{rk}`.
    """
    kappa = np.asarray(alpha, dtype=np.float64).sum(axis=-1)
    summary = posterior.summarise_draws(kappa, regions, prob=prob)[["mean", "lower", "upper"]]
    return summary.rename_axis("region")


def posterior_mean_given_alpha(alpha_r: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Exact posterior mean of :math:`\\theta_i` given :math:`\\alpha_r`: :math:`(\\alpha_r + x_i) / (\\kappa_r + n_i)`.

    Parameters
    ----------
    alpha_r : array_like, shape (..., K)
        Dirichlet parameters (broadcast against ``counts``).
    counts : array_like, shape (..., K)
        Play counts.

    Returns
    -------
    numpy.ndarray
        The mean of :math:`\\mathrm{Dirichlet}(\\alpha_r + x_i)`; equals
        :math:`w_i x_i/n_i + (1 - w_i)\\,\\alpha_r/\\kappa_r` with :math:`w_i` from
        :func:`shrinkage_weight`.
    """
    a = np.asarray(alpha_r, dtype=np.float64) + np.asarray(counts, dtype=np.float64)
    return a / a.sum(axis=-1, keepdims=True)


def shrinkage_weight(n, kappa) -> np.ndarray:
    """Weight :math:`w = n / (n + \\kappa)` of a user's own shares in their posterior mean.

    The shrinkage towards the regional profile is :math:`1 - w = \\kappa / (n + \\kappa)`;
    it is 1 for a user with no plays and tends to 0 as :math:`n \\to \\infty`.
    """
    n = np.asarray(n, dtype=np.float64)
    return n / (n + np.asarray(kappa, dtype=np.float64))


@dataclass(frozen=True)
class UserPosterior:
    """Users' posteriors of :math:`\\theta_i`, averaged over draws of :math:`\\alpha_r`.

    Attributes
    ----------
    mean, lower, upper : numpy.ndarray, shape (n_users, K)
        Posterior mean and equal-tailed ``prob`` interval of each :math:`\\theta_{ik}`.
    weight : numpy.ndarray, shape (n_users,)
        Posterior mean of :math:`w_i = n_i / (n_i + \\kappa_r)`; the shrinkage is ``1 - weight``.
    n : numpy.ndarray, shape (n_users,)
        Users' totals.
    prob : float
        The intervals' probability.
    """

    mean: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    weight: np.ndarray
    n: np.ndarray
    prob: float


def user_posteriors(alpha: np.ndarray, counts, region_idx, *, prob: float = 0.95,
                    rng: np.random.Generator | None = None,
                    block: int = 2_000_000) -> UserPosterior:
    """Closed-form user posteriors :math:`\\mathrm{Dirichlet}(\\alpha_r + x_i)`, mixed over draws.

    For each posterior draw :math:`s` of :math:`\\alpha_r`, user :math:`i`'s posterior is
    :math:`\\mathrm{Dirichlet}(\\alpha_r^{(s)} + x_i)`, whose genre-:math:`k` marginal is
    :math:`\\mathrm{Beta}(a_{ik}^{(s)}, A_i^{(s)} - a_{ik}^{(s)})` with
    :math:`a^{(s)}_{ik} = \\alpha^{(s)}_{rk} + x_{ik}` and
    :math:`A_i^{(s)} = \\kappa^{(s)}_r + n_i`. The posterior given the data alone is the mixture
    of these over draws: its mean is the average of the exact means
    :math:`a^{(s)}_{ik} / A^{(s)}_i`, and its interval is read off one Beta draw per posterior
    draw (a draw from the mixture), with ``rng``. A user with no plays gets the posterior
    predictive of a new user in that region, :math:`\\theta \\sim \\mathrm{Dirichlet}(\\alpha_r)`
    integrated over :math:`\\alpha_r`.

    Parameters
    ----------
    alpha : numpy.ndarray, shape (S, R, K)
        Posterior draws of :math:`\\alpha_r`.
    counts : array_like of int, shape (n_users, K)
        Play counts (rows of zeros for new users).
    region_idx : array_like of int, shape (n_users,)
        Each user's region, indexing ``alpha``'s second axis.
    prob : float
        Interval probability.
    rng : numpy.random.Generator, optional
        For the interval's Beta draws (default: ``default_rng(0)``; pass a seeded one).
    block : int
        Users are processed in blocks of about ``block / (S K)`` to bound memory.

    Returns
    -------
    UserPosterior
    """
    rng = np.random.default_rng(0) if rng is None else rng
    alpha = np.asarray(alpha, dtype=np.float64)
    x = np.asarray(counts, dtype=np.float64)
    idx = np.asarray(region_idx, dtype=np.int64)
    if x.ndim != 2 or x.shape[1] != alpha.shape[2] or idx.shape != (x.shape[0],):
        raise ValueError("counts must be (n_users, K) and region_idx (n_users,) matching alpha (S, R, K)")
    S, _, K = alpha.shape
    n = x.sum(axis=1)
    kappa = alpha.sum(axis=-1)  # (S, R)
    out = {key: np.empty_like(x) for key in ("mean", "lower", "upper")}
    weight = np.empty(len(n))
    step = max(1, block // (S * K))
    for start in range(0, len(n), step):
        sl = slice(start, start + step)
        a = alpha[:, idx[sl], :] + x[None, sl, :]  # (S, m, K)
        total = kappa[:, idx[sl]] + n[None, sl]  # (S, m)
        out["mean"][sl] = (a / total[..., None]).mean(axis=0)
        theta = rng.beta(a, total[..., None] - a)
        out["lower"][sl], out["upper"][sl] = posterior.eti(theta, prob)
        weight[sl] = (n[None, sl] / total).mean(axis=0)
    return UserPosterior(out["mean"], out["lower"], out["upper"], weight, n, prob)


def pick_users(plays: pd.DataFrame) -> dict[str, str]:
    """The users with the fewest, the median and the most plays (ids), ties to the first row.

    Only users with at least one play are considered.

    Returns
    -------
    dict
        ``{"fewest": id, "median": id, "most": id}``.
    """
    n = pd.Series(counts_matrix(plays).sum(axis=1), index=plays["user_id"].astype(str))
    n = n[n > 0]
    if n.empty:
        raise ValueError("no user has any plays")
    order = n.sort_values(kind="stable")
    return {
        "fewest": str(order.index[0]),
        "median": str(order.index[(len(order) - 1) // 2]),
        "most": str(order.index[-1]),
    }


def truth_profiles(truth: dict) -> pd.DataFrame:
    """True regional profiles from a :func:`hbm.book.simulate.music` truth dict.

    Returns
    -------
    pandas.DataFrame
        ``region``, ``genre`` (key of :data:`GENRES`), ``true``; region then genre order.
    """
    return pd.DataFrame([
        {"region": reg["region"], "genre": g, "true": float(reg["p"][g])}
        for reg in truth["regions"] for g in GENRES
    ])


def truth_kappa(truth: dict) -> pd.Series:
    """True concentrations :math:`\\kappa_r` from a truth dict, indexed by region."""
    return pd.Series(
        {reg["region"]: float(reg["kappa"]) for reg in truth["regions"]}, name="true"
    ).rename_axis("region")


def recovery(summary: pd.DataFrame, true: pd.DataFrame | pd.Series) -> dict:
    """How well a posterior summary recovers known truth.

    Parameters
    ----------
    summary : pandas.DataFrame
        With ``mean``, ``lower``, ``upper`` (from :func:`profile_summary`, keyed by
        ``region`` and ``genre`` columns; or :func:`kappa_summary`, indexed by region).
    true : pandas.DataFrame or pandas.Series
        From :func:`truth_profiles` (``region``, ``genre``, ``true``) or :func:`truth_kappa`.

    Returns
    -------
    dict
        ``table`` (the summary joined with ``true``, plus ``covered``), ``coverage``
        (fraction of true values inside their intervals), ``n``, ``missed`` (count outside),
        ``mae`` (mean absolute error of the posterior means) and ``max_error``.
    """
    if isinstance(true, pd.Series):
        table = summary.join(true, how="inner")
    else:
        table = summary.merge(true, on=["region", "genre"], how="inner")
    covered = (table["lower"] <= table["true"]) & (table["true"] <= table["upper"])
    table = table.assign(covered=covered)
    err = (table["mean"] - table["true"]).abs()
    return {
        "table": table,
        "coverage": float(covered.mean()),
        "n": int(len(table)),
        "missed": int((~covered).sum()),
        "mae": float(err.mean()),
        "max_error": float(err.max()),
    }
