"""Posterior draws of Bambi and PyMC fits: stacked, summarised, rebuilt per unit.

One implementation of each step the chapters and the book's helpers share:

- :func:`draws`: a variable's draws with chains and draws stacked into one ``sample`` axis
  (``arviz.extract``), chain-major, as a NumPy array;
- :func:`eti` and :func:`summarise_draws`: equal-tailed intervals and the mean/sd/interval
  table of draws (``arviz.eti``; the same bounds as ``arviz.summary(..., ci_kind="eti")``);
- :func:`linear_predictor`: a Bambi model's linear predictor per row, rebuilt from the common
  intercept and the terms' draws (Bambi stores a varying intercept ``(1|g)`` as offsets from
  ``Intercept``; the group's mean is their sum), which also works where ``model.predict``
  does not; :func:`group_intercepts` is its one-term case;
- :func:`predictive_check`: observed statistics against the equal-tailed interval of the same
  statistics on replicated data sets, with their predictive p-values.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import arviz as az
import numpy as np
import pandas as pd

from hbm.metrics import inside

#: The sampling dimensions of a fit's posterior, stacked (in this order) into ``sample``.
SAMPLE_DIMS = ("chain", "draw")


def draws(data, var_name: str | None = None, dims: Sequence[str] | None = None) -> np.ndarray:
    """Posterior draws with chains and draws stacked into one leading ``sample`` axis.

    Uses ``arviz.extract`` (chain-major: all draws of chain 0, then chain 1, ...), the same
    order as ``numpy.reshape`` of a ``(chain, draw, ...)`` array.

    Parameters
    ----------
    data : xarray.DataTree or xarray.DataArray
        A fit (then ``var_name`` is required) or one variable with dims ``chain`` and ``draw``.
    var_name : str, optional
        The posterior variable of a fit.
    dims : sequence of str, optional
        Order of the remaining axes (default: the variable's own order).

    Returns
    -------
    numpy.ndarray, shape (chains * draws, *other dims)
    """
    if var_name is None:
        da = data
    else:
        da = az.extract(data, var_names=var_name)
    if "sample" not in da.dims:
        da = da.stack(sample=SAMPLE_DIMS)
    other = [d for d in da.dims if d != "sample"] if dims is None else list(dims)
    return np.asarray(da.transpose("sample", *other))


def eti(values, prob: float = 0.95, axis: int = 0) -> tuple[np.ndarray, np.ndarray]:
    r"""Equal-tailed ``prob`` interval along ``axis``: the :math:`(1 \mp \text{prob})/2` quantiles.

    ``arviz.eti`` on the array (linear interpolation between order statistics, as
    ``numpy.quantile``); the interval ``arviz.summary(..., ci_kind="eti")`` reports.

    Returns
    -------
    lower, upper : numpy.ndarray
        ``values``' shape without ``axis`` (floats for 1-D input).
    """
    bounds = az.eti(np.asarray(values, dtype=float), prob, axis=axis)
    return bounds[..., 0], bounds[..., 1]


def summarise_draws(draws: np.ndarray, labels=None, prob: float = 0.95, *,
                    mean_column: str = "mean") -> pd.DataFrame:
    """Posterior mean, sd and equal-tailed ``prob`` interval of each column of ``draws``.

    The sd has divisor :math:`S - 1` and the interval is :func:`eti`, as in
    ``arviz.summary(..., kind="stats", ci_kind="eti")``.

    Parameters
    ----------
    draws : array-like, shape (S, n_columns)
        Draws (e.g. from :func:`draws`).
    labels : sequence, optional
        The index; default ``0 .. n_columns - 1``.
    prob : float
        Interval probability.
    mean_column : str
        Name of the mean's column (``"estimate"`` stacks with
        :meth:`hbm.pooling.PoolingResult.to_frame`).

    Returns
    -------
    pandas.DataFrame
        Columns ``mean`` (or ``mean_column``), ``sd``, ``lower``, ``upper``.
    """
    draws = np.asarray(draws, dtype=float)
    lower, upper = eti(draws, prob)
    return pd.DataFrame(
        {mean_column: draws.mean(axis=0), "sd": draws.std(axis=0, ddof=1), "lower": lower, "upper": upper},
        index=None if labels is None else pd.Index(list(labels)),
    )


def _level_dim(da, term: str) -> str:
    """The dimension of a Bambi term that holds its levels (not chain/draw or the response's)."""
    dims = [d for d in da.dims if d not in SAMPLE_DIMS]
    factor = term.split("|", 1)[-1]
    named = [d for d in dims if d.startswith(factor)]
    if len(named) == 1:
        return named[0]
    if len(dims) != 1:
        raise ValueError(f"expected one group dimension in {term!r}, found {dims}")
    return dims[0]


def linear_predictor(fit, data: pd.DataFrame, terms: Sequence[str],
                     intercept: str | None = "Intercept") -> np.ndarray:
    r"""Each row's linear predictor in a Bambi model of intercepts, rebuilt from the posterior.

    For a model ``y ~ [1 +] (1|a) + (1|b) + ...`` (or a common term ``~ 0 + a``) the linear
    predictor of row ``i`` is

    .. math:: \eta_i = \beta_0 + u^{(a)}_{a[i]} + u^{(b)}_{b[i]} + \dots

    (:math:`\beta_0` only when the posterior has ``intercept``), summed draw by draw. A term
    over an interaction, ``(1|a:b)``, is looked up by the level ``"<a>:<b>"`` as Bambi labels
    it. A multivariate response (e.g. Bambi's ``dirichlet_multinomial``, whose terms carry a
    response dimension) keeps that dimension as trailing axes.

    Bambi 0.21's ``model.predict(idata, kind="response_params")`` raises
    ``TypeError: 'str' object cannot be interpreted as an integer`` when the sigma formula is
    only an offset (``"sigma ~ 0 + offset(np.log(se))"``, the known-standard-error model);
    this works there.

    Parameters
    ----------
    fit : xarray.DataTree
        The Bambi fit.
    data : pandas.DataFrame
        The rows to compute (e.g. the data the model was fitted to, or one row per level).
    terms : sequence of str
        Term names as in the posterior, e.g. ``["1|genre", "1|creator_id"]`` or ``["region"]``.
    intercept : str or None
        Name of the common intercept; ignored when ``None`` or when the posterior lacks it.

    Returns
    -------
    numpy.ndarray, shape (chains * draws, n_rows, *response dims)

    Raises
    ------
    KeyError
        A term is not in the posterior, or a row's level is not among the term's levels.
    ValueError
        No intercept and no terms, or a term whose level dimension cannot be told.
    """
    import xarray as xr

    post = fit["posterior"]
    total = post[intercept] if intercept is not None and intercept in post else None
    for term in terms:
        if term not in post:
            raise KeyError(f"group term {term!r} not in the posterior "
                           f"(has {list(post.data_vars)})")
        da = post[term]
        dim = _level_dim(da, term)
        levels = pd.Index([str(v) for v in da[dim].values])
        columns = term.split("|", 1)[-1].split(":")
        keys = data[columns[0]].astype(str)
        for col in columns[1:]:
            keys = keys + ":" + data[col].astype(str)
        pos = levels.get_indexer(keys)
        if (pos < 0).any():
            missing = keys[pos < 0].iloc[0]
            raise KeyError(f"level {missing!r} of {term!r} is not in the posterior")
        rows = da.isel({dim: xr.DataArray(pos, dims="row")}).reset_coords(drop=True)
        total = rows if total is None else total + rows
    if total is None:
        raise ValueError("no intercept and no terms: nothing to add up")
    if "row" not in total.dims:  # intercept only: the same for every row
        total = total.expand_dims(row=len(data), axis=-1)
    rest = [d for d in total.dims if d not in (*SAMPLE_DIMS, "row")]
    return draws(total, dims=["row", *rest])


def group_levels(idata, group: str) -> list[str]:
    """The group labels of ``(1|group)``, in the order of :func:`group_intercepts` columns."""
    term = f"1|{group}"
    offsets = idata["posterior"][term]
    return [str(v) for v in offsets[_level_dim(offsets, term)].values]


def group_intercepts(idata, group: str, intercept: str = "Intercept") -> np.ndarray:
    """Draws of each group's mean, ``Intercept + (1|group)[j]`` (:func:`linear_predictor`).

    Returns
    -------
    draws : ndarray, shape (chains * draws, n_groups)
        In the order of the term's coordinate (see :func:`group_levels`).
    """
    return linear_predictor(idata, pd.DataFrame({group: group_levels(idata, group)}), [f"1|{group}"], intercept)


def by_label(values: pd.Series | pd.DataFrame, labels, what: str = "estimates"):
    """``values`` in the order of ``labels``, matched by label, never by position.

    Fits order their groups their own way (Bambi sorts levels, a loader keeps the file's
    order); every table that puts two of them side by side goes through this.

    Raises
    ------
    KeyError
        A label has no value, or ``values`` has labels that ``labels`` lacks; the message names them.
    """
    labels = pd.Index([str(v) for v in labels])
    index = pd.Index([str(v) for v in values.index])
    if index.has_duplicates:
        raise KeyError(f"{what}: duplicated labels {sorted(set(index[index.duplicated()]))}")
    missing, extra = labels.difference(index), index.difference(labels)
    if len(missing) or len(extra):
        raise KeyError(f"{what}: labels do not match: missing {list(missing)}, unexpected {list(extra)}")
    out = values.copy()
    out.index = index
    return out.reindex(labels)


def predictive_check(observed: Mapping, replicated: Mapping, prob: float = 0.95) -> pd.DataFrame:
    r"""Observed statistics against their predictive distribution (a posterior or plug-in check).

    For each statistic :math:`T`, with observed value :math:`T(y)` and values
    :math:`T(y^{\text{rep}}_s)` on replicated data sets :math:`s = 1..S`: the equal-tailed
    ``prob`` interval of the replicated values, and the predictive p-value
    :math:`p = \frac{1}{S} \sum_s \mathbb{1}[T(y^{\text{rep}}_s) < T(y)]` [gelman2013]_
    (ch. 6). Replicated values that are NaN (a statistic undefined on that data set) are left
    out of the interval and of :math:`p`. A statistic whose observed value is NaN (undefined
    on the data, such as the SD of a group with a single row) is left out of the result: there
    is nothing to check. One whose replicated values are all NaN gets NaN bounds and ``p``, and
    ``inside`` False.

    Parameters
    ----------
    observed : mapping
        Statistic name (a string, or a tuple such as ``(school, "SD")``) -> observed value.
    replicated : mapping
        The same names -> array of the statistic's replicated values, shape ``(S,)``.
    prob : float
        Interval probability.

    Returns
    -------
    pandas.DataFrame
        Indexed by statistic (a MultiIndex for tuple names), with ``observed``, ``lower``,
        ``upper``, ``p`` and ``inside`` (``lower <= observed <= upper``).

    References
    ----------
    .. [gelman2013] Gelman et al. (2013), Bayesian Data Analysis, 3rd ed., ch. 6.
    """
    if set(observed) != set(replicated):
        raise ValueError(f"observed and replicated name different statistics: {sorted(map(str, set(observed) ^ set(replicated)))}")
    tail = (1 - prob) / 2
    rows = {}
    for name, value in observed.items():
        if np.isnan(float(value)):
            continue
        rep = np.asarray(replicated[name], dtype=float).ravel()
        rep = rep[~np.isnan(rep)]
        lower, upper = np.quantile(rep, [tail, 1 - tail]) if rep.size else (np.nan, np.nan)
        rows[name] = {"observed": float(value), "lower": float(lower), "upper": float(upper),
                      "p": float(np.mean(rep < float(value))) if rep.size else np.nan}
    out = pd.DataFrame.from_dict(rows, orient="index", columns=["observed", "lower", "upper", "p"])
    if len(out) and all(isinstance(k, tuple) for k in rows):
        out.index = pd.MultiIndex.from_tuples(list(rows))
    out["inside"] = inside(out["lower"], out["upper"], out["observed"])
    return out


def outer_tail_chance(pvalues, prob: float = 0.95) -> tuple[int, float]:
    r"""How many predictive p-values lie in the outer tails, and the chance of that many or more.

    With :math:`m` statistics, :math:`k` of them with :math:`p < (1 - \text{prob})/2` or
    :math:`p > (1 + \text{prob})/2`, the chance is the binomial tail
    :math:`P(K \ge k)` for :math:`K \sim \mathrm{Binomial}(m, 1 - \text{prob})`: how often a
    model that fits would put as many statistics in the outer tails, treating the statistics as
    independent (a rough guide: statistics of one data set are usually correlated). NaN
    p-values are left out. ``k = 0`` gives chance 1.

    Parameters
    ----------
    pvalues : array-like
        Predictive p-values, as the ``p`` column of :func:`predictive_check`.
    prob : float
        The central probability (0.95: the outer 5%).

    Returns
    -------
    tuple of (int, float)
        ``k`` and the chance.
    """
    from scipy.stats import binom

    p = np.asarray(pvalues, dtype=float)
    p = p[~np.isnan(p)]
    tail = (1 - prob) / 2
    k = int(np.sum((p < tail) | (p > 1 - tail)))
    return k, float(binom.sf(k - 1, p.size, 1 - prob)) if k else 1.0
