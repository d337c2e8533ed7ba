# The coverage study: draw many data sets from the beta-binomial model with a known p,
# compute
# every interval on each, and record whether it contains the p that generated the data
# [Cook et al. 2006]. The users' play counts n_i stay as they are; each replication
# draws
#   theta_i ~ Beta(kappa p, kappa (1 - p)),  y_i ~ Binomial(n_i, theta_i).
import numpy as np
import pandas as pd

from hbm._intervals_ci import (
    cluster_bootstrap_interval,
    cluster_t_interval,
    naive_binomial_interval,
)
from hbm._intervals_grid import grid_posterior
from hbm.metrics import coverage_mc_error


def simulate_successes(p, kappa, totals, *, rng, n_reps=None):
    # p, kappa: one value per replication, or scalars repeated n_reps times -> y of
    # shape (R, m)
    p, kappa = np.atleast_1d(p).astype(float), np.atleast_1d(kappa).astype(float)
    reps = n_reps or max(len(p), len(kappa))
    p, kappa = (
        np.broadcast_to(p, (reps,))[:, None],
        np.broadcast_to(kappa, (reps,))[:, None],
    )
    theta = rng.beta(kappa * p, kappa * (1 - p), size=(reps, len(totals)))
    return rng.binomial(np.asarray(totals), theta)


def draw_parameters(prior, kappa_prior, *, n_reps, rng):
    # p ~ Beta(a, b) and log kappa ~ Normal(mu, sigma), one pair per replication
    p = rng.beta(*prior, size=n_reps)
    kappa = np.exp(rng.normal(*kappa_prior, size=n_reps))
    return p, kappa


def coverage_study(
    p, kappa, totals, *, rng, priors, kappa_prior, n_reps=None, prob=0.95, n_boot=1000
):
    # one row per replication and interval: the truth, the interval, and whether it
    # covered
    y = simulate_successes(p, kappa, totals, rng=rng, n_reps=n_reps)
    truth = np.broadcast_to(np.asarray(p, dtype=float), (len(y),))
    found = {
        "naive": naive_binomial_interval(y, totals, prob),
        "bootstrap": cluster_bootstrap_interval(y, totals, prob, n_boot, rng=rng),
        "cluster_t": cluster_t_interval(y, totals, prob),
    }
    for name, credible in grid_posterior(y, totals, priors, kappa_prior, prob).items():
        found[f"credible:{name}"] = credible
    return pd.concat(
        [
            pd.DataFrame(
                {
                    "rep": np.arange(len(y)),
                    "method": method,
                    "p": truth,
                    "kappa": np.broadcast_to(np.asarray(kappa, dtype=float), (len(y),)),
                    "estimate": iv.estimate,
                    "lower": iv.lower,
                    "upper": iv.upper,
                    "covered": iv.covers(truth),
                    "width": iv.width,
                }
            )
            for method, iv in found.items()
        ],
        ignore_index=True,
    )


def summarise_coverage(results, by=("method",), nominal=0.95):
    # coverage per group, its Monte Carlo standard error and a band of two of them, how
    # many
    # standard errors it lies from the nominal level, and the mean width
    out = (
        results.groupby(list(by), sort=False, observed=True)
        .agg(
            coverage=("covered", "mean"),
            n_reps=("covered", "size"),
            mean_width=("width", "mean"),
        )
        .reset_index()
    )
    out["mc_se"] = coverage_mc_error(out["coverage"], out["n_reps"])
    out["band_lower"] = (out["coverage"] - 2 * out["mc_se"]).clip(0, 1)
    out["band_upper"] = (out["coverage"] + 2 * out["mc_se"]).clip(0, 1)
    out["z"] = (out["coverage"] - nominal) / coverage_mc_error(nominal, out["n_reps"])
    return out
