# Empirical Bayes for estimates y_j with known standard errors s_j (chapter "Empirical
# Bayes"): theta_j ~ N(mu, tau^2) integrated out leaves y_j ~ N(mu, s_j^2 + tau^2).
# For a given tau the best mu is the precision-weighted mean, so tau-hat maximises the
# profile log-likelihood over [0, range of y]; tau = 0 (complete pooling) wins ties.
# hbm.eb uses nn_loglik.
import numpy as np
from scipy import optimize, stats


def nn_loglik(mu, tau, y, se):
    y, se = np.asarray(y, dtype=float), np.asarray(se, dtype=float)
    return float(stats.norm.logpdf(y, mu, np.sqrt(se**2 + tau**2)).sum())


def best_mu(tau, y, se):
    w = 1 / (np.asarray(se, dtype=float) ** 2 + tau**2)
    return float(np.sum(w * np.asarray(y, dtype=float)) / np.sum(w))


def fit_nn(y, se):
    # returns (mu-hat, tau-hat)
    def profile(tau):
        return nn_loglik(best_mu(tau, y, se), tau, y, se)

    top = float(np.ptp(y))
    tau = 0.0
    if top > 0:
        res = optimize.minimize_scalar(
            lambda t: -profile(t),
            bounds=(0, top),
            method="bounded",
            options={"xatol": 1e-10 * top},
        )
        if -res.fun > profile(0.0) + 1e-9:
            tau = float(res.x)
    return best_mu(tau, y, se), tau
