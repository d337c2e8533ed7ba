r"""The three-level model on histograms: its priors, its exact likelihood and its PyMC form.

The model is chapter 3's (:mod:`hbm.book.music`): a global genre profile
:math:`p_{\mathrm{global}} \sim \mathrm{Dirichlet}(1, \dots, 1)`, regional profiles
:math:`p_r \sim \mathrm{Dirichlet}(c\, p_{\mathrm{global}})` with :math:`\log c \sim N(3, 1)`,
concentrations :math:`\log \kappa_r \sim N(3, 1.5)`, and for user :math:`i` in region
:math:`r` genre shares :math:`\theta_i \sim \mathrm{Dirichlet}(\alpha_r)`,
:math:`\alpha_r = \kappa_r p_r`, with counts :math:`x_i \sim \mathrm{Multinomial}(n_i, \theta_i)`.
With :math:`\theta_i` integrated out, user :math:`i` contributes the Dirichlet-multinomial
log-likelihood

.. math::

    \log\Gamma(\kappa_r) - \log\Gamma(\kappa_r + n_i)
    + \sum_j \{\log\Gamma(\alpha_{rj} + x_{ij}) - \log\Gamma(\alpha_{rj})\} + \mathrm{const},

so the sum over users depends on them only through the histograms :math:`h_r(n)` of the
totals and :math:`h_{rj}(x)` of each genre's counts [@mosimann1962; @minka2000]:

.. math::

    \ell(\alpha) = \sum_r \Big[\sum_{n > 0} h_r(n) \{\log\Gamma(\kappa_r) - \log\Gamma(\kappa_r + n)\}
    + \sum_j \sum_{x > 0} h_{rj}(x) \{\log\Gamma(\alpha_{rj} + x) - \log\Gamma(\alpha_{rj})\}\Big]
    + C,

with :math:`C = \sum_r \sum_n h_r(n) \log n! - \sum_{r,j} \sum_x h_{rj}(x) \log x!`. Each
evaluation costs O(distinct counts), whatever the number of users: :func:`histogram_loglik`
in NumPy, :func:`histogram_model` in PyMC (a ``pm.Potential`` over the same bins, the
constant left out).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import special

from hbm.scale.three_level import C_PRIOR, KAPPA_PRIOR, regional_priors

__all__ = [
    "C_PRIOR",
    "KAPPA_PRIOR",
    "HistogramBins",
    "histogram_bins",
    "histogram_loglik",
    "regional_hyperpriors",
    "histogram_model",
]

# C_PRIOR (log c) and KAPPA_PRIOR (log kappa_r): one definition, in hbm.scale.three_level.


@dataclass(frozen=True)
class HistogramBins:
    """The nonzero cells of the regional histograms, as flat arrays (the model's data).

    Attributes
    ----------
    total_region, total_n, total_weight : ndarray
        One entry per region and total ``n > 0`` with ``h_r(n) > 0``: the region code, ``n``
        and ``h_r(n)``.
    count_region, count_genre, count_x, count_weight : ndarray
        One entry per region, genre and count ``x > 0`` with ``h_rj(x) > 0``.
    const : float
        The multinomial coefficients' part ``C`` of the log-likelihood.
    n_regions, n_genres : int
    """

    total_region: np.ndarray
    total_n: np.ndarray
    total_weight: np.ndarray
    count_region: np.ndarray
    count_genre: np.ndarray
    count_x: np.ndarray
    count_weight: np.ndarray
    const: float
    n_regions: int
    n_genres: int

    @property
    def size(self) -> int:
        """Number of cells: the cost of one evaluation of the likelihood."""
        return int(self.total_n.size + self.count_x.size)

    def data(self) -> dict:
        """The arrays by name, as :func:`histogram_model` declares them."""
        return {"total_region": self.total_region, "total_n": self.total_n, "total_weight": self.total_weight,
                "count_region": self.count_region, "count_genre": self.count_genre, "count_x": self.count_x,
                "count_weight": self.count_weight}


def histogram_bins(by_region: Sequence) -> HistogramBins:
    """The nonzero histogram cells of every region.

    Parameters
    ----------
    by_region : sequence of hbm.eb.DMSuffStats or None
        One per region (``RegionStats.by_region``); None for a region without users.

    Returns
    -------
    HistogramBins
    """
    stats = list(by_region)
    k = next(s.n_categories for s in stats if s is not None)
    tr, tn, tw, cr, cg, cx, cw = ([] for _ in range(7))
    for r, s in enumerate(stats):
        if s is None:
            continue
        m = np.flatnonzero(s.total_hist[1:]) + 1
        tr.append(np.full(m.size, r)), tn.append(m), tw.append(s.total_hist[m])
        j, x = np.nonzero(s.count_hist[:, 1:])
        cr.append(np.full(j.size, r)), cg.append(j), cx.append(x + 1), cw.append(s.count_hist[j, x + 1])
    ints = [np.concatenate(v).astype(np.int64) for v in (tr, tn, cr, cg, cx)]
    tw, cw = (np.concatenate(v).astype(np.float64) for v in (tw, cw))
    const = float(np.sum(tw * special.gammaln(ints[1] + 1.0)) - np.sum(cw * special.gammaln(ints[4] + 1.0)))
    return HistogramBins(ints[0], ints[1], tw, ints[2], ints[3], ints[4], cw, const, len(stats), int(k))


def histogram_loglik(alpha, bins: HistogramBins) -> float:
    r"""The three-level model's log-likelihood of :math:`\alpha` from the histograms alone.

    .. math::

        \ell(\alpha) = \sum_r \sum_{n>0} h_r(n)\{\log\Gamma(\kappa_r) - \log\Gamma(\kappa_r + n)\}
        + \sum_{r,j} \sum_{x>0} h_{rj}(x)\{\log\Gamma(\alpha_{rj} + x) - \log\Gamma(\alpha_{rj})\} + C

    with :math:`\kappa_r = \sum_j \alpha_{rj}`: the sum over users of the Dirichlet-multinomial
    log-pmf [@mosimann1962; @minka2000, eq. 52], in O(distinct counts).

    Parameters
    ----------
    alpha : array-like, shape (R, K)
        Positive Dirichlet parameters of every region.
    bins : HistogramBins
        From :func:`histogram_bins`.

    Returns
    -------
    float
    """
    a = np.asarray(alpha, dtype=np.float64)
    if a.shape != (bins.n_regions, bins.n_genres) or np.any(~np.isfinite(a)) or np.any(a <= 0):
        raise ValueError(f"alpha must be a positive ({bins.n_regions}, {bins.n_genres}) array")
    kappa = a.sum(axis=1)[bins.total_region]
    ac = a[bins.count_region, bins.count_genre]
    return bins.const + float(
        np.sum(bins.total_weight * (special.gammaln(kappa) - special.gammaln(kappa + bins.total_n)))
        + np.sum(bins.count_weight * (special.gammaln(ac + bins.count_x) - special.gammaln(ac))))


#: Declare the model's upper levels in the current ``pymc.Model``: the one definition is
#: :func:`hbm.scale.three_level.regional_priors`, shown in the music chapter.
regional_hyperpriors = regional_priors


def histogram_model(bins: HistogramBins, regions: Sequence[str], genres: Sequence[str], *,
                    c_prior=C_PRIOR, kappa_prior=KAPPA_PRIOR):
    """The three-level model in PyMC with the users integrated out, on histograms.

    The priors are :func:`regional_hyperpriors`; the likelihood is one ``pm.Potential``,
    :func:`histogram_loglik` without its constant, over the bins declared as ``pm.Data``
    (so a compiled model can take other histograms of the same regions and genres).

    Returns
    -------
    pymc.Model
    """
    import pymc as pm
    import pytensor.tensor as pt

    if len(regions) != bins.n_regions or len(genres) != bins.n_genres:
        raise ValueError("regions and genres must match the histograms")
    with pm.Model(coords={"region": list(regions), "genre": list(genres)}) as model:
        kappa, alpha = regional_hyperpriors(len(genres), c_prior, kappa_prior)
        d = {name: pm.Data(name, value) for name, value in bins.data().items()}
        k = kappa[d["total_region"]]
        a = alpha[d["count_region"], d["count_genre"]]
        pm.Potential("histogram_loglik",
                     pt.sum(d["total_weight"] * (pt.gammaln(k) - pt.gammaln(k + d["total_n"])))
                     + pt.sum(d["count_weight"] * (pt.gammaln(a + d["count_x"]) - pt.gammaln(a))))
    return model
