# Empirical Bayes for counts in K categories (chapter "Empirical Bayes"): the
# Dirichlet-multinomial marginal log-likelihood of alpha, and its maximum by Minka's
# fixed-point iteration (Minka 2000, eq. 55). hbm.eb uses dm_loglik; hbm.eb's fit does
# the same maximisation on histograms, with the boundary cases (alpha_k = 0, kappa =
# infinity).
import numpy as np
from scipy import special


def dm_loglik(alpha, counts):
    # sum over units of log p(x_i | alpha), theta_i integrated out
    x = np.asarray(counts, dtype=float)
    a = np.asarray(alpha, dtype=float)
    n, kappa = x.sum(axis=1), a.sum()
    per_unit = (
        special.gammaln(n + 1)
        - special.gammaln(x + 1).sum(axis=1)
        + special.gammaln(kappa)
        - special.gammaln(n + kappa)
        + (special.gammaln(x + a) - special.gammaln(a)).sum(axis=1)
    )
    return float(per_unit.sum())


def fit_dm(counts, tol=1e-10, max_iter=100_000):
    # alpha-hat maximising dm_loglik; a category nobody used gets alpha 0 (the limit)
    x = np.asarray(counts, dtype=float)
    x = x[x.sum(axis=1) > 0]
    used = x.sum(axis=0) > 0
    xu, n = x[:, used], x.sum(axis=1)
    alpha = xu.sum(axis=0) / n.sum()  # start: the pooled shares, kappa = 1
    for _ in range(max_iter):
        kappa = alpha.sum()
        top = (special.digamma(xu + alpha) - special.digamma(alpha)).sum(axis=0)
        bottom = (special.digamma(n + kappa) - special.digamma(kappa)).sum()
        new = alpha * top / bottom
        if np.max(np.abs(new - alpha) / alpha) < tol:
            alpha = new
            break
        alpha = new
    out = np.zeros(x.shape[1])
    out[used] = alpha
    return out
