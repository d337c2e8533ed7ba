r"""The creator A/B-test shrinkage study: models, creator effects and the replication study.

Each creator ``i`` in genre ``g[i]`` reports an observed effect :math:`y_i` with a known
standard error :math:`s_i`. The hierarchical model of the chapter is [@rubin1981;
@gelman2013, sec. 5.5]

.. math::

    \mu &\sim N(0, 1), \quad \sigma_{\mathrm{genre}} \sim N^+(0, 1), \quad
    \sigma_{\mathrm{creator}} \sim N^+(0, 1), \\
    \mu_g &\sim N(\mu, \sigma_{\mathrm{genre}}^2), \qquad
    \theta_i \sim N(\mu_{g[i]}, \sigma_{\mathrm{creator}}^2), \qquad
    y_i \sim N(\theta_i, s_i^2).

This module writes that model in PyMC in five parameterizations (:func:`build_model`):

``"noncentered"``
    every level non-centered, ``mu_g = mu + sigma_genre * z_g`` and
    ``theta_i = mu_g + sigma_creator * z_i`` (the original study's recipe);
``"centered_genre"``
    genre level centered, creator level non-centered;
``"centered"``
    both levels centered;
``"marginal"``
    genre level centered and the creators integrated out analytically,
    :math:`y_i \sim N(\mu_{g[i]}, s_i^2 + \sigma_{\mathrm{creator}}^2)`; the creators' effects
    are then drawn from their exact conditional posterior (:func:`creator_conditional_draws`);
``"marginal_noncentered"``
    the creators integrated out as in ``"marginal"``, the genre level non-centered: the
    remedy policy's alternative when a few creators per genre leave the genre means loosely
    pinned down and the centered version diverges.

Centering versus non-centering is a question of how informative the data are about each group
[@papaspiliopoulos2007; @betancourt2015]: a hundred creators inform each genre mean, so the
centered genre level samples well and the non-centered one poorly.

It also holds the Bambi workaround (:func:`bambi_unit_effects`: Bambi 0.21's
``predict(kind="response_params")`` raises a ``TypeError`` when the sigma formula is only an
offset), the evaluation of every method against the simulation truth (:func:`method_table`,
:func:`evaluate_methods`) and the replication study (:func:`replication_study`, from
:mod:`hbm.models.creators_sim`, which the chapter shows).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from hbm.models import creators as _model
from hbm.models import creators_sim as _sim
from hbm import posterior
from hbm.book.common import Inline, fmt, pct
from hbm.metrics import SIZE_BINS

__all__ = [
    "PARAMETERIZATIONS",
    "SIZE_BINS",
    "HYPERPARAMETERS",
    "creator_arrays",
    "build_model",
    "creator_conditional_moments",
    "creator_conditional_draws",
    "add_creator_draws",
    "creator_draws",
    "bambi_unit_effects",
    "summarise_units",
    "truth_frame",
    "method_table",
    "evaluate_methods",
    "sampler_row",
    "compile_marginal",
    "compiled_matches",
    "sample_compiled",
    "analyse_dataset",
    "replication_study",
    "summarise_replications",
]

#: The four parameterizations :func:`build_model` writes.
PARAMETERIZATIONS = _model.PARAMETERIZATIONS


#: The model's scalar and genre-level parameters (every parameterization has them).
HYPERPARAMETERS = ("mu_global", "sigma_genre", "sigma_creator", "mu_genre")



def creator_arrays(df: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]:
    """Observed effects, standard errors, genre codes and genre labels of a creators frame.

    Parameters
    ----------
    df : pandas.DataFrame
        From :func:`hbm.book.data.load_creators` (``genre`` Categorical, ``effect``, ``se``).

    Returns
    -------
    y, se : ndarray of float, shape (n_creators,)
    genre_idx : ndarray of int, shape (n_creators,)
        Codes into ``genres``.
    genres : list of str
        Genre labels in category order.
    """
    genre = pd.Categorical(df["genre"])
    return (
        df["effect"].to_numpy(dtype=float),
        df["se"].to_numpy(dtype=float),
        np.asarray(genre.codes, dtype=np.int64),
        [str(g) for g in genre.categories],
    )


#: The model and the creators' conditional draws live in :mod:`hbm.models.creators` (the chapter shows that
#: file): one copy, re-exported here for the replication study and the tests.
build_model = _model.build_model
creator_conditional_moments = _model.conditional_moments
add_creator_draws = _model.add_creator_draws


def creator_conditional_draws(fit, y, se, genre_idx, rng: np.random.Generator) -> np.ndarray:
    r"""Exact draws of every creator's effect from a fit of the marginal model.

    For each posterior draw of :math:`(\mu_g, \sigma_{\mathrm{creator}})`, one draw of each
    :math:`\theta_i` from its conditional posterior (:func:`creator_conditional_moments`).
    Together they are draws from the joint posterior, because
    :math:`p(\theta, \mu, \sigma \mid y) = p(\theta \mid \mu, \sigma, y)\, p(\mu, \sigma \mid y)`.

    Parameters
    ----------
    fit : xarray.DataTree
        Posterior with ``mu_genre`` (chain, draw, genre) and ``sigma_creator`` (chain, draw).
    y, se : array-like, shape (n_creators,)
    genre_idx : array-like of int, shape (n_creators,)
        Index of each creator's genre along ``mu_genre``'s genre dimension.
    rng : numpy.random.Generator

    Returns
    -------
    ndarray, shape (chains, draws, n_creators)
    """
    post = fit["posterior"]
    mu_genre = np.asarray(post["mu_genre"].transpose("chain", "draw", ...))
    sigma = np.asarray(post["sigma_creator"].transpose("chain", "draw"))[..., None]
    mean, sd = creator_conditional_moments(y, se, mu_genre[..., np.asarray(genre_idx)], sigma)
    return mean + sd * rng.standard_normal(mean.shape)


def creator_draws(fit, name: str = "theta") -> np.ndarray:
    """Posterior draws of the creators' effects, shape (chains * draws, n_creators) (:func:`hbm.posterior.draws`)."""
    return posterior.draws(fit, name)


#: Each row's ``mu`` in a Bambi model of intercepts, rebuilt from the posterior (Bambi 0.21's
#: ``predict(kind="response_params")`` fails with an offset-only sigma): the one implementation
#: is :func:`hbm.posterior.linear_predictor`, ``(fit, data, terms, intercept="Intercept")``.
bambi_unit_effects = posterior.linear_predictor


def summarise_units(draws: np.ndarray, prob: float = 0.95) -> pd.DataFrame:
    """:func:`hbm.posterior.summarise_draws` with the mean named ``estimate`` (as :meth:`hbm.pooling.PoolingResult.to_frame`)."""
    return posterior.summarise_draws(draws, prob=prob, mean_column="estimate")


def truth_frame(truth: Mapping | None, df: pd.DataFrame) -> pd.Series | None:
    """Each creator's true effect, aligned with ``df`` rows; ``None`` without truth.

    Raises
    ------
    KeyError
        The truth lacks a creator of ``df``.
    """
    if truth is None:
        return None
    true = pd.Series({c["creator_id"]: c["true_effect"] for c in truth["creators"]}, dtype=float)
    return true.reindex(df["creator_id"].astype(str)).set_axis(df.index)


def method_table(methods: Mapping[str, pd.DataFrame], df: pd.DataFrame) -> pd.DataFrame:
    """Stack per-creator estimates of several methods into one tidy frame.

    Parameters
    ----------
    methods : mapping
        Method name -> frame with ``estimate``, ``lower``, ``upper`` (one row per creator, in
        ``df`` order).
    df : pandas.DataFrame
        The creators.

    Returns
    -------
    pandas.DataFrame
        ``creator_id``, ``genre``, ``n``, ``effect``, ``se``, ``method`` (Categorical in the
        given order), ``estimate``, ``lower``, ``upper``.
    """
    parts = []
    for name, frame in methods.items():
        part = df[["creator_id", "genre", "n", "effect", "se"]].reset_index(drop=True).copy()
        part["method"] = name
        for col in ("estimate", "lower", "upper"):
            part[col] = np.asarray(frame[col], float)
        parts.append(part)
    out = pd.concat(parts, ignore_index=True)
    out["method"] = pd.Categorical(out["method"], categories=list(methods), ordered=True)
    return out


def evaluate_methods(table: pd.DataFrame, truth: pd.Series, edges=SIZE_BINS) -> pd.DataFrame:
    """MSE, coverage and mean width of every method, overall and by sample-size bin.

    Uses :func:`hbm.metrics.evaluate` on each method of a :func:`method_table`; ``truth``
    holds the true effects in the creators' order (:func:`truth_frame`); ``edges`` are the
    size-bin edges of :func:`hbm.metrics.size_bins` (default :data:`SIZE_BINS`).

    Returns
    -------
    pandas.DataFrame
        ``method``, ``bin``, ``n_units``, ``mse``, ``coverage``, ``mean_width``.
    """
    from hbm import metrics

    true = np.asarray(truth, float)
    rows = []
    for name, part in table.groupby("method", observed=True, sort=False):
        if len(part) != true.size:
            raise ValueError(f"method {name!r} has {len(part)} creators but the truth has {true.size}")
        res = metrics.evaluate(part["estimate"], part["lower"], part["upper"], true, n=part["n"], edges=edges)
        res.insert(0, "method", name)
        rows.append(res)
    out = pd.concat(rows, ignore_index=True)
    out["method"] = pd.Categorical(out["method"], categories=list(table["method"].cat.categories), ordered=True)
    out["bin"] = pd.Categorical(out["bin"], categories=list(rows[0]["bin"].cat.categories), ordered=True)
    return out


def sampler_row(checks, seconds: float) -> dict:
    """Sampling cost and quality of a fit: time, min bulk ESS, ESS per second, divergences, R-hat.

    Parameters
    ----------
    checks : hbm.diagnostics.Diagnostics
        :func:`hbm.diagnostics.check` of the fit, over the quantities that should count (the
        same set for every fit compared).
    seconds : float
        Sampling time (``pm.sample`` records it as the posterior's ``sampling_time``
        attribute; it excludes compilation).

    Returns
    -------
    dict
        ``seconds``, ``min bulk ESS``, ``ESS per second`` (min bulk ESS / seconds),
        ``divergences``, ``max R-hat``.
    """
    return {
        "seconds": float(seconds),
        "min bulk ESS": float(checks.min_ess_bulk),
        "ESS per second": float(checks.min_ess_bulk) / float(seconds),
        "divergences": int(checks.divergences),
        "max R-hat": float(checks.max_rhat),
    }


def compile_marginal(df: pd.DataFrame, genre_prior_scale: float = 1.0):
    """Compile the marginal model once with nutpie, for re-use on data sets of the same shape."""
    import nutpie

    return nutpie.compile_pymc_model(build_model(df, "marginal", genre_prior_scale=genre_prior_scale))


#: Whether a :func:`compile_marginal` model can be re-used on a data set (same creators and
#: genres count), and a nutpie fit of it with the data swapped in: :mod:`hbm.models.creators_sim`.
compiled_matches = _sim.same_shape
sample_compiled = _sim.sample_compiled

#: Every method's accuracy on one simulated data set, given a fit of the marginal model
#: (``metrics``, ``hyper``, ``sampler``), the replication study's loop over simulated data
#: sets, and each metric's mean over replications with its Monte Carlo error: the chapter
#: shows :mod:`hbm.models.creators_sim`, and these are its functions (one copy).
analyse_dataset = _sim.score_methods
replication_study = _sim.replication_study
summarise_replications = _sim.summarise_replications
