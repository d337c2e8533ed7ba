"""Tidy summaries of posterior draws from Bambi and PyMC fits.

Bambi stores a varying intercept ``(1|g)`` as offsets from the common ``Intercept``; the
group's mean is their sum. These helpers rebuild such unit-level quantities from the draws
(rather than ``model.predict``), which also works where ``predict`` does not.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def _factor_dim(da) -> str:
    """The group dimension of a Bambi group-specific term (the one that is not chain/draw)."""
    dims = [d for d in da.dims if d not in ("chain", "draw")]
    if len(dims) != 1:
        raise ValueError(f"expected one group dimension, found {dims}")
    return dims[0]


def group_intercepts(idata, group: str, intercept: str = "Intercept") -> np.ndarray:
    """Draws of each group's mean, ``Intercept + (1|group)[j]``.

    Returns
    -------
    draws : ndarray, shape (chains * draws, n_groups)
        In the order of the term's coordinate (see :func:`group_levels`).
    """
    post = idata["posterior"]
    offsets = post[f"1|{group}"]
    dim = _factor_dim(offsets)
    total = post[intercept] + offsets
    return np.asarray(total.stack(sample=("chain", "draw")).transpose("sample", dim))


def group_levels(idata, group: str) -> list[str]:
    """The group labels of ``(1|group)``, in the order of :func:`group_intercepts` columns."""
    offsets = idata["posterior"][f"1|{group}"]
    return [str(v) for v in offsets[_factor_dim(offsets)].values]


def summarise_draws(draws: np.ndarray, labels, prob: float = 0.95) -> pd.DataFrame:
    """Posterior mean, sd and equal-tailed ``prob`` interval of each column of ``draws``.

    Columns ``mean``, ``sd``, ``lower``, ``upper``; the index is ``labels``.
    """
    draws = np.asarray(draws, dtype=float)
    tail = (1 - prob) / 2
    lower, upper = np.quantile(draws, [tail, 1 - tail], axis=0)
    return pd.DataFrame(
        {"mean": draws.mean(axis=0), "sd": draws.std(axis=0, ddof=1), "lower": lower, "upper": upper},
        index=pd.Index(list(labels)),
    )


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
