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

This module writes that model in PyMC in four parameterizations (:func:`build_model`):

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
    are then drawn from their exact conditional posterior (:func:`creator_conditional_draws`).

Centering versus non-centering is a question of how informative the data are about each group
[@papaspiliopoulos2007; @betancourt2015]: a hundred creators inform each genre mean, so the
centered genre level samples well and the non-centered one poorly.

It also holds the Bambi workaround (:func:`bambi_unit_effects`: Bambi 0.21's
``predict(kind="response_params")`` raises a ``TypeError`` when the sigma formula is only an
offset), the evaluation of every method against the simulation truth (:func:`method_table`,
:func:`evaluate_methods`) and the replication study (:func:`replication_study`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence

import numpy as np
import pandas as pd

from hbm.models import creators as _model
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


def compiled_matches(compiled, df: pd.DataFrame) -> bool:
    """Whether a :func:`compile_marginal` model can be re-used on ``df`` (same creators and genres count)."""
    effect = [key for var, key in compiled.shared_var_keys.items() if var.name == "effect"]
    if len(effect) != 1:
        return False
    n_genres = pd.Categorical(df["genre"]).categories.size
    return (compiled.shared_data[effect[0]].shape == (len(df),)
            and tuple(compiled.shapes.get("mu_genre", ())) == (n_genres,))


def sample_compiled(compiled, df: pd.DataFrame, *, seed: int, chains: int = 2, draws: int = 500,
                    tune: int = 500, target_accept: float = 0.9):
    """Sample a compiled marginal model (:func:`compile_marginal`) on another data set with nutpie.

    The data containers are swapped with ``compiled.with_data``; nothing is recompiled.
    ``target_accept = 0.9`` (nutpie's default is 0.8): at 0.8 the marginal model showed a few
    divergent transitions on some seeds, at 0.9 none. The
    posterior is tagged ``inference_library = "nutpie"`` (as ``pm.sample`` does), and
    ``sampling_time`` records the wall time of the call.

    Returns
    -------
    xarray.DataTree
    """
    import nutpie

    y, se, g, _ = creator_arrays(df)
    start = time.perf_counter()
    fit = nutpie.sample(compiled.with_data(effect=y, se=se, genre_idx=g), chains=chains, draws=draws,
                        tune=tune, seed=seed, target_accept=target_accept, progress_bar=False)
    seconds = time.perf_counter() - start
    fit["posterior"].attrs.update(inference_library="nutpie", sampling_time=seconds)
    return fit


def analyse_dataset(df: pd.DataFrame, truth: Mapping, fit, rng: np.random.Generator,
                    prob: float = 0.95) -> dict:
    """Every method's accuracy on one simulated data set, given a fit of the marginal model.

    Methods: no pooling, complete pooling (genre means), the hierarchical model (creators
    drawn with :func:`add_creator_draws`) and empirical Bayes
    (:func:`hbm.eb.fit_normal_normal` with ``groups=genre``).

    Returns
    -------
    dict
        ``metrics`` (frame of :func:`evaluate_methods`), ``hyper`` (frame: for
        ``sigma_genre`` and ``sigma_creator`` the truth, posterior mean, whether the central
        ``prob`` interval covers the truth, and the EB estimate of ``sigma_creator``),
        ``sampler`` (divergences and max R-hat of the fit).
    """
    import arviz as az

    from hbm import eb, pooling

    y, se, g, _ = creator_arrays(df)
    fit = add_creator_draws(fit, df, rng)
    methods = {
        "No pooling": pooling.no_pooling(y, se, prob=prob).to_frame(),
        "Complete pooling": pooling.complete_pooling(y, se, groups=g, prob=prob).to_frame(),
        "Partial pooling": summarise_units(creator_draws(fit), prob=prob),
    }
    eb_fit = eb.fit_normal_normal(y, se, groups=g)
    lo, hi = eb_fit.interval(prob)
    methods["Empirical Bayes"] = pd.DataFrame({"estimate": eb_fit.posterior_mean, "lower": lo, "upper": hi})
    table = method_table(methods, df)
    metrics_ = evaluate_methods(table, truth_frame(truth, df))
    hyper = posterior.summarise_draws(
        np.column_stack([posterior.draws(fit, name) for name in ("sigma_genre", "sigma_creator")]),
        ["sigma_genre", "sigma_creator"], prob=prob)
    true = pd.Series({name: float(truth[name]) for name in hyper.index})
    hyper = pd.DataFrame({"parameter": hyper.index, "truth": true.to_numpy(),
                          "posterior mean": hyper["mean"].to_numpy(),
                          "covered": ((hyper["lower"] <= true) & (true <= hyper["upper"])).to_numpy()})
    hyper["EB estimate"] = [np.nan, eb_fit.tau]
    rhat = az.rhat(fit["posterior"].to_dataset()[list(HYPERPARAMETERS)])
    sampler = {"divergences": int(np.asarray(fit["sample_stats"]["diverging"]).sum()),
               "max R-hat": float(max(np.max(rhat[v].values) for v in HYPERPARAMETERS)),
               "seconds": float(fit["posterior"].attrs.get("sampling_time", np.nan))}
    return {"metrics": metrics_, "hyper": hyper, "sampler": sampler}


def replication_study(n_reps: int, seed: int, compiled=None, *, simulate: Callable | None = None,
                      chains: int = 2, draws: int = 500, tune: int = 500, target_accept: float = 0.9,
                      prob: float = 0.95) -> dict:
    """Repeat the whole study on ``n_reps`` simulated data sets.

    Data set ``r`` is ``hbm.book.simulate.creators(seed=seed + r)``; its marginal-model fit uses
    nutpie seed ``seed + r`` and the creators' conditional draws
    ``numpy.random.default_rng(seed + r)``. The marginal model is compiled once
    (:func:`compile_marginal`, or pass ``compiled``) and re-used with swapped data.

    Parameters
    ----------
    n_reps : int
        Number of simulated data sets (>= 2, for Monte Carlo errors).
    seed : int
        Base seed.
    compiled : nutpie compiled model, optional
        A :func:`compile_marginal` model; re-used when it has the simulated data's shape
        (:func:`compiled_matches`), else a new one is compiled once.
    simulate : callable, optional
        ``simulate(seed=...) -> (observed, truth)``; default :func:`hbm.book.simulate.creators`.
    chains, draws, tune : int
        nutpie settings per data set.
    target_accept : float
        nutpie's target acceptance rate.
    prob : float
        Interval probability.

    Returns
    -------
    dict
        ``metrics`` (the :func:`evaluate_methods` rows of every data set, with ``rep``),
        ``hyper`` and ``sampler`` (one row per data set), ``seconds`` (total wall time).
    """
    if n_reps < 2:
        raise ValueError("n_reps must be at least 2 (Monte Carlo errors need replications)")
    if simulate is None:
        from hbm.book.simulate import creators as simulate
    start = time.perf_counter()
    metrics_, hyper, sampler = [], [], []
    for r in range(n_reps):
        observed, truth = simulate(seed=seed + r)
        if compiled is None or not compiled_matches(compiled, observed):
            compiled = compile_marginal(observed)
        fit = sample_compiled(compiled, observed, seed=seed + r, chains=chains, draws=draws, tune=tune,
                              target_accept=target_accept)
        out = analyse_dataset(observed, truth, fit, np.random.default_rng(seed + r), prob=prob)
        metrics_.append(out["metrics"].assign(rep=r))
        hyper.append(out["hyper"].assign(rep=r))
        sampler.append({"rep": r, **out["sampler"]})
    return {
        "metrics": pd.concat(metrics_, ignore_index=True),
        "hyper": pd.concat(hyper, ignore_index=True),
        "sampler": pd.DataFrame(sampler),
        "seconds": time.perf_counter() - start,
    }


def summarise_replications(metrics_: pd.DataFrame, bin_label: str = "all") -> pd.DataFrame:
    """Mean of each metric over replications and its Monte Carlo error, per method.

    The Monte Carlo error of a mean over ``R`` replications is ``sd / sqrt(R)``
    (:func:`hbm.metrics.mc_error`).

    Parameters
    ----------
    metrics_ : pandas.DataFrame
        The ``metrics`` frame of :func:`replication_study`.
    bin_label : str
        Which row of each evaluation (``"all"`` or a size bin).

    Returns
    -------
    pandas.DataFrame
        Index ``method``; columns ``mse``, ``mse_mc``, ``coverage``, ``coverage_mc``,
        ``mean_width``, ``mean_width_mc``, ``reps``.
    """
    from hbm import metrics

    part = metrics_[metrics_["bin"] == bin_label]
    rows = {}
    for name, g in part.groupby("method", observed=True, sort=False):
        row = {}
        for col in ("mse", "coverage", "mean_width"):
            row[col] = float(g[col].mean())
            row[f"{col}_mc"] = metrics.mc_error(g[col].to_numpy())
        row["reps"] = int(g["rep"].nunique())
        rows[name] = row
    out = pd.DataFrame.from_dict(rows, orient="index")
    out.index.name = "method"
    return out
