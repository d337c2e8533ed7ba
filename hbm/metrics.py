"""Accuracy metrics for unit-level estimates against known truth.

Pure NumPy functions (:func:`mse`, :func:`inside`, :func:`coverage`, :func:`mean_width`,
:func:`shrinkage_factor`, :func:`mc_error`, :func:`coverage_mc_error`) plus
two pandas helpers at the edge: :func:`size_bins` (an ordered Categorical of
sample-size bins) and :func:`evaluate` (the tidy table the chapters tabulate
for each method, overall and by sample size), following the simulation
study design of @gelman2013 [sec. 5.5] and @efron1975.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from hbm.pooling import _as_vector as _vec  # finite, non-empty 1-D float array

__all__ = [
    "SIZE_BINS",
    "mse",
    "inside",
    "coverage",
    "mean_width",
    "shrinkage_factor",
    "mc_error",
    "coverage_mc_error",
    "size_bins",
    "evaluate",
]


#: Default sample-size bin edges of :func:`size_bins` and :func:`evaluate`: units with
#: ``n < 100``, ``100 <= n <= 500`` and ``n > 500`` (the creator study's design, after
#: @efron1975's small/large split). Every caller that bins sizes uses this one constant.
SIZE_BINS: tuple[int, int] = (100, 500)


def _same_length(**arrays: np.ndarray) -> None:
    """Raise ValueError unless all arrays share one length."""
    sizes = {name: a.size for name, a in arrays.items()}
    if len(set(sizes.values())) > 1:
        detail = ", ".join(f"{k}={v}" for k, v in sizes.items())
        raise ValueError(f"inputs must have the same length ({detail})")


def _interval(lower, upper) -> tuple[np.ndarray, np.ndarray]:
    """Validated interval bounds with ``lower <= upper``."""
    lo, hi = _vec(lower, "lower"), _vec(upper, "upper")
    _same_length(lower=lo, upper=hi)
    if np.any(lo > hi):
        raise ValueError("every interval needs lower <= upper")
    return lo, hi


def mse(estimate, truth) -> float:
    r"""Mean squared error :math:`\frac{1}{n}\sum_i (\hat\theta_i - \theta_i)^2`.

    The loss under which @efron1975 compare Stein's estimator with the raw
    estimates.

    Parameters
    ----------
    estimate, truth : array-like, shape (n,)
        Point estimates and the true values.

    Returns
    -------
    float

    Raises
    ------
    ValueError
        Mismatched lengths, empty or non-finite input.
    """
    est, tru = _vec(estimate, "estimate"), _vec(truth, "truth")
    _same_length(estimate=est, truth=tru)
    return float(np.mean((est - tru) ** 2))


def inside(lower, upper, values):
    r"""Whether each value lies in its interval, bounds included: :math:`\mathbf 1\{l_i \le x_i \le u_i\}`.

    The one interval-membership test of the library: :func:`coverage` is its mean, and
    predictive checks (:func:`hbm.posterior.predictive_check`) and interval objects
    (:meth:`hbm.intervals.Intervals.covers`) call it. Broadcasts like NumPy and keeps a pandas
    index: with a ``Series`` or ``DataFrame`` column among the arguments it returns a boolean
    ``Series``, aligned by label. A missing bound or value (NaN) is not inside.

    Parameters
    ----------
    lower, upper : array-like or pandas.Series
        Interval bounds.
    values : array-like or pandas.Series
        The values to test (a true parameter, an observed statistic).

    Returns
    -------
    numpy.ndarray or pandas.Series of bool

    Examples
    --------
    >>> inside([0, 0], [1, 1], [0.5, 2.0]).tolist()
    [True, False]
    """
    series = [x for x in (lower, upper, values) if isinstance(x, pd.Series)]
    if series:
        index = series[0].index
        lo, hi, x = (x.reindex(index) if isinstance(x, pd.Series) else x for x in (lower, upper, values))
        if any(isinstance(x, pd.Series) and not x.index.equals(index) for x in (lower, upper, values)):
            missing = {str(i) for x in series for i in x.index} ^ {str(i) for i in index}
            if missing:
                raise ValueError(f"inside(): labels that not every argument has: {sorted(missing)[:5]}")
        return ((lo <= x) & (x <= hi)).astype(bool)
    lo, hi, x = np.asarray(lower, float), np.asarray(upper, float), np.asarray(values, float)
    return (lo <= x) & (x <= hi)


def coverage(lower, upper, truth) -> float:
    r"""Fraction of units whose truth lies in its interval, bounds included.

    .. math:: \frac{1}{n}\sum_i \mathbf 1\{l_i \le \theta_i \le u_i\}

    Parameters
    ----------
    lower, upper : array-like, shape (n,)
        Interval bounds (``lower <= upper``).
    truth : array-like, shape (n,)
        True values.

    Returns
    -------
    float
        In [0, 1]; compare with the nominal level [@gelman2013, sec. 4.4].

    Raises
    ------
    ValueError
        Mismatched lengths, empty or non-finite input, or ``lower > upper``.
    """
    lo, hi = _interval(lower, upper)
    tru = _vec(truth, "truth")
    _same_length(lower=lo, truth=tru)
    return float(np.mean(inside(lo, hi, tru)))


def mean_width(lower, upper) -> float:
    r"""Average interval width :math:`\frac{1}{n}\sum_i (u_i - l_i)`.

    The price paid for coverage in frequency evaluations of interval
    estimates [@gelman2013, sec. 4.4].

    Parameters
    ----------
    lower, upper : array-like, shape (n,)
        Interval bounds (``lower <= upper``).

    Returns
    -------
    float

    Raises
    ------
    ValueError
        Mismatched lengths, empty or non-finite input, or ``lower > upper``.
    """
    lo, hi = _interval(lower, upper)
    return float(np.mean(hi - lo))


def shrinkage_factor(raw, pooled, target) -> np.ndarray:
    r"""Elementwise shrinkage of ``raw`` towards ``target``.

    .. math:: B_i = 1 - \frac{\text{pooled}_i - \text{target}_i}{\text{raw}_i - \text{target}_i}

    ``B = 1``: fully shrunk to the target; ``B = 0``: not shrunk; for the
    normal-normal model with known ``mu`` it equals ``s_i^2/(s_i^2+tau^2)``
    [@efron1975; @morris1983]. ``target`` may be a scalar.

    Parameters
    ----------
    raw, pooled : array-like, shape (n,)
        Unpooled and pooled estimates.
    target : float or array-like, shape (n,)
        What the estimates are shrunk towards (e.g. the grand mean).

    Returns
    -------
    ndarray, shape (n,)
        ``nan`` where ``raw == target`` (shrinkage undefined).

    Raises
    ------
    ValueError
        Mismatched lengths, empty or non-finite input.
    """
    r, p = _vec(raw, "raw"), _vec(pooled, "pooled")
    _same_length(raw=r, pooled=p)
    t = _vec(target, "target")
    if t.size == 1:
        t = np.full_like(r, t[0])
    _same_length(raw=r, target=t)
    denom = r - t
    ratio = np.divide(p - t, denom, out=np.full_like(r, np.nan), where=denom != 0)
    return 1.0 - ratio


def mc_error(values) -> float:
    r"""Monte Carlo standard error of a mean over ``R`` replications.

    .. math:: \operatorname{sd}(v) / \sqrt{R}, \quad \text{sd with ddof} = 1.

    The usual Monte Carlo standard error of a simulation average
    [@gelman2013, sec. 10.5].

    Parameters
    ----------
    values : array-like, shape (R,)
        One summary (e.g. the MSE) per simulation replication, ``R >= 2``.

    Returns
    -------
    float

    Raises
    ------
    ValueError
        Fewer than 2 values, or non-finite values.
    """
    v = _vec(values, "values")
    if v.size < 2:
        raise ValueError("mc_error needs at least 2 replications")
    return float(np.std(v, ddof=1) / np.sqrt(v.size))


def coverage_mc_error(p, n):
    r"""Binomial standard error of an estimated coverage, :math:`\sqrt{p(1-p)/n}`.

    Each interval covers or not, so an observed coverage over ``n``
    independent intervals is a binomial proportion [@gelman2013, sec. 4.4].

    Parameters
    ----------
    p : float or array-like
        Coverage proportion(s) in [0, 1].
    n : int or array-like
        Number of intervals behind each proportion (``n > 0``).

    Returns
    -------
    float or ndarray
        A float for scalar input, else an array (broadcast of ``p`` and ``n``).

    Raises
    ------
    ValueError
        ``p`` outside [0, 1], ``n <= 0``, or non-finite input.
    """
    pa, na = np.asarray(p, dtype=float), np.asarray(n, dtype=float)
    if not (np.all(np.isfinite(pa)) and np.all(np.isfinite(na))):
        raise ValueError("p and n must be finite")
    if np.any((pa < 0) | (pa > 1)):
        raise ValueError("p must lie in [0, 1]")
    if np.any(na <= 0):
        raise ValueError("n must be positive")
    out = np.sqrt(pa * (1.0 - pa) / na)
    return float(out) if out.ndim == 0 else out


def _fmt_edge(e: float) -> str:
    """'100' for integral edges, else the shortest float repr."""
    return str(int(e)) if float(e).is_integer() else f"{e:g}"


def _edges(edges: Sequence[float]) -> np.ndarray:
    """Validated strictly increasing finite edges."""
    e = np.asarray(edges, dtype=float).reshape(-1)
    if e.size == 0:
        raise ValueError("edges must contain at least one value")
    if not np.all(np.isfinite(e)):
        raise ValueError("edges must be finite")
    if np.any(np.diff(e) <= 0):
        raise ValueError("edges must be strictly increasing")
    return e


def _default_labels(e: np.ndarray) -> list[str]:
    """Labels matching the bin rule of :func:`size_bins`."""
    if e.size == 1:
        return [f"n < {_fmt_edge(e[0])}", f">= {_fmt_edge(e[0])}"]
    middle = [f"{_fmt_edge(a)}-{_fmt_edge(b)}" for a, b in zip(e[:-1], e[1:])]
    return [f"n < {_fmt_edge(e[0])}", *middle, f"> {_fmt_edge(e[-1])}"]


def size_bins(n, edges: Sequence[float] = SIZE_BINS, labels=None) -> pd.Categorical:
    r"""Bin sample sizes into an ordered categorical.

    With edges :math:`e_1 < \dots < e_m` (``m >= 2``) the bins are

    - ``n < e_1`` (label ``"n < e1"``),
    - ``e_1 <= n <= e_2`` (label ``"e1-e2"``), then
      ``e_{j} < n <= e_{j+1}`` for ``j = 2, ..., m-1`` (label ``"ej-ej+1"``),
    - ``n > e_m`` (label ``"> em"``).

    So the default :data:`SIZE_BINS`, ``(100, 500)``, gives ``"n < 100"`` (n < 100),
    ``"100-500"`` (100 <= n <= 500) and ``"> 500"`` (n > 500). With a single
    edge ``e`` the bins are ``n < e`` (``"n < e"``) and ``n >= e``
    (``">= e"``). Used to stratify metrics by sample size, where shrinkage
    matters most for small units [@efron1975].

    Parameters
    ----------
    n : array-like, shape (n_units,)
        Non-negative sample sizes.
    edges : sequence of float, default :data:`SIZE_BINS`
        Strictly increasing bin edges.
    labels : sequence of str, optional
        Custom labels, one per bin (``len(edges) + 1``).

    Returns
    -------
    pandas.Categorical
        Ordered, with categories in increasing size order (all bins are
        categories even when empty).

    Raises
    ------
    ValueError
        Non-finite or negative sizes, bad edges, or the wrong number of labels.
    """
    x = _vec(n, "n")
    if np.any(x < 0):
        raise ValueError("sample sizes n must be non-negative")
    e = _edges(edges)
    if labels is None:
        labels = _default_labels(e)
    labels = [str(lab) for lab in labels]
    if len(labels) != e.size + 1:
        raise ValueError(f"need {e.size + 1} labels for {e.size} edges, got {len(labels)}")
    if len(set(labels)) != len(labels):
        raise ValueError("labels must be unique")
    if e.size == 1:
        code = (x >= e[0]).astype(np.intp)
    else:
        # right-closed bins (e_j, e_{j+1}], except the first middle bin which
        # also includes its left edge e_1 (pandas.cut closes every bin on the same side,
        # so it cannot express this rule)
        code = np.searchsorted(e, x, side="left")  # 0 for n <= e_1 ...
        code[x == e[0]] = 1
    return pd.Categorical.from_codes(code, categories=labels, ordered=True)


def evaluate(
    estimate,
    lower,
    upper,
    truth,
    n=None,
    edges: Sequence[float] = SIZE_BINS,
) -> pd.DataFrame:
    r"""Tidy accuracy table: MSE, interval coverage and mean width, by size bin.

    A frequency evaluation of point and interval estimates against known
    truth [@gelman2013, sec. 4.4]; for unit ``i`` in a row's set ``S``:
    ``mse = mean_S (est_i - truth_i)^2``, ``coverage = mean_S 1{lower_i <=
    truth_i <= upper_i}``, ``mean_width = mean_S (upper_i - lower_i)``.

    Rows: ``"all"`` first, then (when ``n`` is given) one row per bin of
    :func:`size_bins` (``edges`` as there), including empty bins (with
    ``n_units = 0`` and NaN metrics) so tables of different methods align.

    Parameters
    ----------
    estimate : array-like, shape (n_units,)
        Point estimates.
    lower, upper : array-like, shape (n_units,)
        Interval bounds.
    truth : array-like, shape (n_units,)
        True unit values.
    n : array-like, shape (n_units,), optional
        Sample size of each unit, for the stratified rows.
    edges : sequence of float, default :data:`SIZE_BINS`
        Bin edges passed to :func:`size_bins`.

    Returns
    -------
    pandas.DataFrame
        Columns ``bin`` (ordered Categorical), ``n_units``, ``mse``
        (:func:`mse`), ``coverage`` (:func:`coverage`), ``mean_width``
        (:func:`mean_width`).

    Raises
    ------
    ValueError
        Mismatched lengths, non-finite input, ``lower > upper``, or bad ``n``.
    """
    est, tru = _vec(estimate, "estimate"), _vec(truth, "truth")
    lo, hi = _interval(lower, upper)
    _same_length(estimate=est, lower=lo, truth=tru)
    masks = [("all", np.ones(est.size, dtype=bool))]
    if n is not None:
        nn = _vec(n, "n")
        _same_length(estimate=est, n=nn)
        bins = size_bins(nn, edges=edges)
        codes = np.asarray(bins.codes)
        masks += [(lab, codes == j) for j, lab in enumerate(bins.categories)]
    rows = []
    for label, m in masks:
        k = int(m.sum())
        if k == 0:
            rows.append((label, 0, np.nan, np.nan, np.nan))
            continue
        rows.append(
            (
                label,
                k,
                mse(est[m], tru[m]),
                coverage(lo[m], hi[m], tru[m]),
                mean_width(lo[m], hi[m]),
            )
        )
    out = pd.DataFrame(rows, columns=["bin", "n_units", "mse", "coverage", "mean_width"])
    out["bin"] = pd.Categorical(
        out["bin"], categories=[lab for lab, _ in masks], ordered=True
    )
    out["n_units"] = out["n_units"].astype(np.int64)
    return out
