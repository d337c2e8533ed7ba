r"""Full Bayes user posteriors, computed once per distinct ``(x, n)`` and averaged over draws.

Given the region's parameters :math:`\alpha_r` (draw :math:`s`), user :math:`i`'s genre shares
are :math:`\mathrm{Dirichlet}(\alpha_r + x_i)`, so the share of genre :math:`j` is
:math:`\mathrm{Beta}(a_s, b_s)` with :math:`a_s = \alpha^{(s)}_{rj} + x_{ij}` and
:math:`b_s = \kappa^{(s)}_r + n_i - a_s` [@gelman2013, sec. 3.4]. The posterior given the data
alone is the mixture of these over the posterior draws. It depends on the user only through
the region, the genre, the count :math:`x_{ij}` and the total :math:`n_i`, so it is computed
once per distinct ``(r, j, n, x)`` (:func:`pair_posteriors`) and looked up for every user.

- The mean is exact over all draws: :math:`\frac1S \sum_s a_s / (\kappa^{(s)}_r + n)
  = g_{rj}(n) + x\, g_r(n)` with :math:`g_r(n) = \frac1S \sum_s 1/(\kappa^{(s)}_r + n)` and
  :math:`g_{rj}(n) = \frac1S \sum_s \alpha^{(s)}_{rj}/(\kappa^{(s)}_r + n)`.
- The equal-tailed interval solves the mixture's CDF,
  :math:`\frac1S \sum_s I_q(a_s, b_s) = (1 \mp p)/2`, by safeguarded Halley iterations
  from the quantile of the Beta with the mixture's mean and variance
  (:func:`beta_mixture_quantiles`), over draws evenly thinned from the chains: all of them
  for a few hundred pairs, and as many as a million pair-draws allow (at least 16) for
  more (:func:`interval_draws_for`). At scale the hyperparameters' posterior is so narrow
  that the draws' Beta distributions nearly coincide, and the thinning changes nothing the
  written digits show; the benchmark measures the change against all draws.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
from scipy import special

from hbm.scale.histograms import decode_pairs, encode_pairs

__all__ = ["beta_mixture_quantiles", "PairPosteriors", "pair_posteriors", "thin_draws", "interval_draws_for",
           "INTERVAL_BUDGET", "MIN_INTERVAL_DRAWS"]


def beta_mixture_quantiles(a, b, probs, *, step_tol: float = 1e-5, max_iter: int = 100) -> np.ndarray:
    r"""Quantiles of equal-weight mixtures of Beta distributions, one mixture per row.

    Solves :math:`F(t) = \frac1S \sum_s I_t(a_{ds}, b_{ds}) = q` for every row :math:`d`
    (``scipy.special.betainc`` is :math:`I`) by Halley's method, with the mixture's density
    and its derivative, from the ``q`` quantile of the Beta distribution that has the
    mixture's mean and variance. A bracket ``[lo, hi]`` with ``F(lo) < q < F(hi)`` is kept,
    and a step that leaves it is replaced by bisection, so every row converges. A row stops
    once its last step is below ``step_tol`` times ``min(t, 1 - t)``; Halley's method
    converges cubically, so the relative error left is of the order of the cube of that.

    Parameters
    ----------
    a, b : array-like, shape (D, S)
        Positive parameters of the S components of each of D mixtures.
    probs : sequence of float
        Probabilities in (0, 1).
    step_tol : float
        Size of the last step, relative to ``min(t, 1 - t)``, at which a row stops.
    max_iter : int
        Iterations at most (RuntimeError if some row has not stopped).

    Returns
    -------
    ndarray, shape (D, len(probs))
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.ndim != 2 or a.shape != b.shape:
        raise ValueError("a and b must be (D, S) arrays of the same shape")
    log_beta = special.betaln(a, b)
    m_s = a / (a + b)
    mean = m_s.mean(axis=1)
    second = (m_s * (a + 1) / (a + b + 1)).mean(axis=1)
    common = np.maximum(mean * (1 - mean) / np.maximum(second - mean**2, 1e-300) - 1, 1e-12)
    start_a, start_b = mean * common, (1 - mean) * common
    out = np.empty((a.shape[0], len(probs)))
    for col, q in enumerate(probs):
        if not 0.0 < q < 1.0:
            raise ValueError("probabilities must lie in (0, 1)")
        t = special.betaincinv(start_a, start_b, q)
        lo, hi = np.zeros(a.shape[0]), np.ones(a.shape[0])
        active = np.arange(a.shape[0])
        for _ in range(max_iter):
            if active.size == 0:
                break
            ta = np.clip(t[active], 1e-300, 1 - 1e-16)
            aa, bb = a[active], b[active]
            g = special.betainc(aa, bb, ta[:, None]).mean(axis=1) - q
            with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
                # the density overflows only next to 0 or 1 with a or b below 1: bisect there
                dens_s = np.exp((aa - 1) * np.log(ta)[:, None] + (bb - 1) * np.log1p(-ta)[:, None] - log_beta[active])
                dens = dens_s.mean(axis=1)
                slope = (dens_s * ((aa - 1) / ta[:, None] - (bb - 1) / (1 - ta)[:, None])).mean(axis=1)
                newton = g / dens
                step = newton / (1 - 0.5 * newton * slope / dens)
            lo[active] = np.where(g < 0, ta, lo[active])
            hi[active] = np.where(g > 0, ta, hi[active])
            new = ta - step
            bad = ~np.isfinite(new) | ~np.isfinite(dens) | (new <= lo[active]) | (new >= hi[active])
            new[bad] = 0.5 * (lo[active][bad] + hi[active][bad])
            t[active] = new
            scale = np.minimum(new, 1 - new)
            done = (~bad & (np.abs(step) <= step_tol * scale)) | (g == 0) | (hi[active] - lo[active] <= 1e-15)
            active = active[~done]
        else:
            if active.size:
                raise RuntimeError(f"{active.size} mixture quantiles did not converge in {max_iter} iterations")
        out[:, col] = t
    return out


def thin_draws(alpha: np.ndarray, n: int) -> np.ndarray:
    """``n`` draws evenly spaced through the stacked chains (all of them if there are fewer)."""
    alpha = np.asarray(alpha, dtype=np.float64)
    if n >= alpha.shape[0]:
        return alpha
    return alpha[np.linspace(0, alpha.shape[0] - 1, n).round().astype(np.int64)]


@dataclass(frozen=True)
class PairPosteriors:
    """Posterior mean and interval of a genre share for every distinct ``(region, genre, n, x)``.

    Attributes
    ----------
    keys : ndarray of int64, shape (D,)
        Sorted keys (:func:`hbm.scale.histograms.encode_pairs`).
    mean, lower, upper : ndarray of float64, shape (D,)
    n_genres : int
    prob : float
    interval_draws : int
        Draws the intervals' mixtures are taken over.
    """

    keys: np.ndarray
    mean: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    n_genres: int
    prob: float
    interval_draws: int

    def locate(self, keys) -> np.ndarray:
        """Row of each key (KeyError for a key that is not in the table)."""
        keys = np.asarray(keys, dtype=np.int64)
        idx = np.searchsorted(self.keys, keys)
        idx = np.minimum(idx, self.keys.size - 1)
        if not np.array_equal(self.keys[idx], keys):
            raise KeyError("a user's (region, genre, n, x) is not in the table of distinct pairs")
        return idx

    @property
    def nbytes(self) -> int:
        return int(self.keys.nbytes + self.mean.nbytes + self.lower.nbytes + self.upper.nbytes)

    @cached_property
    def _dense(self):
        """(width, mean, lower, upper) tables indexed by ``((r K + j) W + n) W + x``, or None for large totals."""
        if self.keys.size == 0:
            return None
        r, j, n, x = decode_pairs(self.keys, self.n_genres)
        width = int(n.max()) + 1
        size = (int(r.max()) + 1) * self.n_genres * width * width
        if size > 1 << 22:
            return None
        slot = ((r * self.n_genres + j) * width + n) * width + x
        tables = []
        for values in (self.mean, self.lower, self.upper):
            dense = np.full(size, np.nan)
            dense[slot] = values
            tables.append(dense)
        return (width, *tables)

    def genre_columns(self, x, n, code, genre: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Posterior mean, lower and upper end of genre ``genre`` for users with counts ``x`` of it.

        Where the totals are bounded (the table spans at most four million cells) the values
        are gathered from dense tables over ``(region, genre, n, x)``; otherwise each user's
        key is looked up by binary search (:meth:`locate`).

        Parameters
        ----------
        x, n, code : ndarray, shape (users,)
            The users' counts of the genre, totals and region codes.
        genre : int

        Raises
        ------
        KeyError
            A user's pair is not in the table.
        """
        dense = self._dense
        n = np.asarray(n)
        if dense is not None and (n.size == 0 or int(n.max()) < dense[0]):
            width = dense[0]
            idx = (np.asarray(code, dtype=np.int64) * self.n_genres + genre) * width * width + n * width + x
            if idx.size and int(idx.max()) >= dense[1].size:
                raise KeyError("a user's region is not in the table of distinct pairs")
            out = tuple(table[idx] for table in dense[1:])
            if np.isnan(out[0]).any():
                raise KeyError("a user's (region, genre, n, x) is not in the table of distinct pairs")
            return out
        row = self.locate(encode_pairs(code, genre, n, x, self.n_genres))
        return self.mean[row], self.lower[row], self.upper[row]


def _means(alpha: np.ndarray, region, genre, n, x) -> np.ndarray:
    """Exact mixture means over all draws, through the distinct (region, n)."""
    kappa = alpha.sum(axis=2)  # (S, R)
    rn, inverse = np.unique(np.stack([region, n]), axis=1, return_inverse=True)
    inverse = inverse.ravel()
    inv_tot = 1.0 / (kappa[:, rn[0]] + rn[1][None, :])  # (S, U)
    g = inv_tot.mean(axis=0)
    g_genre = np.einsum("sug,su->ug", alpha[:, rn[0], :], inv_tot) / alpha.shape[0]  # (U, K)
    return g_genre[inverse, genre] + x * g[inverse]


#: Pairs times draws that the intervals' mixtures are solved over, by default.
INTERVAL_BUDGET = 1_000_000
#: Draws the intervals' mixtures are taken over at least, by default.
MIN_INTERVAL_DRAWS = 16


def interval_draws_for(n_pairs: int, n_draws: int, budget: int = INTERVAL_BUDGET,
                       minimum: int = MIN_INTERVAL_DRAWS) -> int:
    """Draws for the intervals: as many as ``budget`` pair-draws allow, at least ``minimum``, at most all."""
    return int(min(n_draws, max(minimum, budget // max(n_pairs, 1))))


def pair_posteriors(keys, alpha, *, prob: float = 0.95, interval_draws: int | None = None,
                    chunk_elements: int = 400_000) -> PairPosteriors:
    """Full Bayes posterior mean and ``prob`` interval of each distinct pair's genre share.

    Parameters
    ----------
    keys : ndarray of int64
        Sorted distinct keys (``Histograms.pairs``).
    alpha : ndarray, shape (S, R, K)
        Posterior draws of the regions' Dirichlet parameters.
    prob : float
        Interval probability.
    interval_draws : int, optional
        Draws, evenly thinned, over which the intervals' mixtures are solved (the means use
        all). Default :func:`interval_draws_for` the number of pairs: all draws for a few
        hundred pairs, no fewer than 16 for any number.
    chunk_elements : int
        Pairs times draws held at once.

    Returns
    -------
    PairPosteriors
    """
    if not 0.0 < prob < 1.0:
        raise ValueError(f"prob must lie strictly between 0 and 1, got {prob}")
    keys = np.asarray(keys, dtype=np.int64)
    alpha = np.asarray(alpha, dtype=np.float64)
    k = alpha.shape[2]
    region, genre, n, x = decode_pairs(keys, k)
    mean = _means(alpha, region, genre, n, x) if keys.size else np.empty(0)
    if interval_draws is None:
        interval_draws = interval_draws_for(keys.size, alpha.shape[0])
    thin = thin_draws(alpha, interval_draws)
    lower, upper = np.empty(keys.size), np.empty(keys.size)
    step = max(1, chunk_elements // thin.shape[0])
    q = (1.0 - prob) / 2.0
    for s in range(0, keys.size, step):
        sl = slice(s, s + step)
        a = thin[:, region[sl], genre[sl]].T + x[sl, None]
        b = thin.sum(axis=2)[:, region[sl]].T + n[sl, None] - a
        lower[sl], upper[sl] = beta_mixture_quantiles(a, b, (q, 1.0 - q)).T
    return PairPosteriors(keys, mean, lower, upper, k, float(prob), int(thin.shape[0]))
