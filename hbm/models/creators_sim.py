# The replication study of the book's creator chapter: simulate creators from the
# hierarchical model, fit each simulated data set with the compiled model of
# hbm.models.creators, and score every method against the simulation's truth.
# One copy: the book's data file and the chapter's replications both come from here.
import time

import arviz as az
import numpy as np
import nutpie
import pandas as pd

from hbm import eb, metrics, pooling
from hbm.models.creators import add_creator_draws, build_model

CREATOR_GENRES = ("Music", "Gaming", "Comedy", "Education", "Beauty")


def simulate_creators(
    n_per_genre=100,
    n_genres=5,
    *,
    seed=2014,
    rng=None,
    genres=None,
    mu_global=0.5,
    sigma_genre=0.3,
    sigma_creator=0.4,
    s=4.65,
    n_min=30,
    n_max=5000,
):
    # mu_g ~ N(mu, sigma_G^2), theta_i ~ N(mu_g, tau^2), y_i ~ N(theta_i, s_i^2), with
    # s_i = s / sqrt(n_i) and n_i log-uniform on [n_min, n_max]. Returns the observed
    # frame (creators in genre blocks) and the truth.
    if rng is None:
        if seed is None:
            raise ValueError("pass an integer seed or a numpy Generator as rng")
        rng = np.random.default_rng(seed)
    else:
        seed = None
    if n_min < 2 or n_max < n_min:
        raise ValueError("need 2 <= n_min <= n_max")
    if genres is None:
        extra = [f"Genre {g + 1}" for g in range(len(CREATOR_GENRES), n_genres)]
        genres = list(CREATOR_GENRES[:n_genres]) + extra
    genres = list(genres)
    if len(genres) != n_genres:
        raise ValueError("genres must name n_genres genres")
    total = n_per_genre * n_genres
    g_idx = np.repeat(np.arange(n_genres), n_per_genre)
    mu_genre = rng.normal(mu_global, sigma_genre, size=n_genres)
    true_effect = rng.normal(mu_genre[g_idx], sigma_creator)
    log_n = rng.uniform(np.log(n_min), np.log(n_max), size=total)
    n = np.clip(np.rint(np.exp(log_n)).astype(np.int64), n_min, n_max)
    se = s / np.sqrt(n)
    effect = true_effect + rng.normal(0.0, se)
    ids = [f"c{i + 1:0{max(4, len(str(total)))}d}" for i in range(total)]
    observed = pd.DataFrame(
        {
            "creator_id": pd.Series(ids, dtype="str"),
            "genre": pd.Categorical.from_codes(g_idx, categories=genres),
            "n": n,
            # Rounded as the CSV file stores them (+ 0.0 turns -0.0 into 0.0).
            "effect": np.round(effect, 6) + 0.0,
            "se": np.round(se, 6) + 0.0,
        }
    )
    truth = {
        "generator": "hbm.models.creators_sim.simulate_creators",
        "seed": seed,
        "mu_global": mu_global,
        "sigma_genre": sigma_genre,
        "sigma_creator": sigma_creator,
        "s": s,
        "n_min": n_min,
        "n_max": n_max,
        "genres": [
            {"genre": genres[g], "mu_genre": mu_genre[g], "n_creators": n_per_genre}
            for g in range(n_genres)
        ],
        "creators": [
            {"creator_id": c, "genre": genres[g], "true_effect": effect_}
            for c, g, effect_ in zip(ids, g_idx, true_effect)
        ],
    }
    return observed, truth


def same_shape(compiled, creators):
    # Whether a compiled model can take this data set: as many creators and genres.
    keys = [k for var, k in compiled.shared_var_keys.items() if var.name == "effect"]
    n_genres = pd.Categorical(creators["genre"]).categories.size
    return (
        len(keys) == 1
        and compiled.shared_data[keys[0]].shape == (len(creators),)
        and tuple(compiled.shapes.get("mu_genre", ())) == (n_genres,)
    )


def sample_compiled(compiled, creators, *, seed, chains=2, draws=500, tune=500,
                    target_accept=0.9):
    # Swap a data set into the compiled model (nothing is recompiled) and sample it.
    start = time.perf_counter()
    fit = nutpie.sample(
        compiled.with_data(
            effect=creators["effect"].to_numpy(float),
            se=creators["se"].to_numpy(float),
            genre_idx=np.asarray(pd.Categorical(creators["genre"]).codes, "int64"),
        ),
        chains=chains,
        draws=draws,
        tune=tune,
        seed=seed,
        target_accept=target_accept,
        progress_bar=False,
    )
    seconds = time.perf_counter() - start
    fit["posterior"].attrs.update(inference_library="nutpie", sampling_time=seconds)
    return fit


def posterior_intervals(fit, names, prob=0.95):
    # Posterior mean and central (equal-tailed) interval of each named quantity.
    s = az.summary(fit, var_names=names, kind="stats", ci_prob=prob, ci_kind="eti",
                   round_to="none")
    return pd.DataFrame(
        {
            "estimate": s["mean"].to_numpy(),
            "lower": s.filter(like="_lb").iloc[:, 0].to_numpy(),
            "upper": s.filter(like="_ub").iloc[:, 0].to_numpy(),
        },
        index=s.index,
    )


def score_methods(creators, truth, fit, rng, prob=0.95):
    # Every method's estimates and intervals on one data set, scored against the truth:
    # MSE, coverage and mean width, overall and by the experiments' sample size.
    y, se = creators["effect"].to_numpy(float), creators["se"].to_numpy(float)
    genre = np.asarray(pd.Categorical(creators["genre"]).codes)
    fit = add_creator_draws(fit, creators, rng)
    eb_fit = eb.fit_normal_normal(y, se, groups=genre)
    eb_lower, eb_upper = eb_fit.interval(prob)
    estimates = {
        "No pooling": pooling.no_pooling(y, se, prob=prob).to_frame(),
        "Complete pooling": pooling.complete_pooling(
            y, se, groups=genre, prob=prob
        ).to_frame(),
        "Partial pooling": posterior_intervals(fit, ["theta"], prob).reset_index(
            drop=True
        ),
        "Empirical Bayes": pd.DataFrame(
            {"estimate": eb_fit.posterior_mean, "lower": eb_lower, "upper": eb_upper}
        ),
    }
    true_by_id = {c["creator_id"]: c["true_effect"] for c in truth["creators"]}
    true = creators["creator_id"].astype(str).map(true_by_id).to_numpy(float)
    scores = pd.concat(
        [
            metrics.evaluate(
                est["estimate"], est["lower"], est["upper"], true, n=creators["n"]
            ).assign(method=name)
            for name, est in estimates.items()
        ],
        ignore_index=True,
    )
    # The two spreads: posterior mean, and whether the central interval has the truth.
    spreads = ["sigma_genre", "sigma_creator"]
    summary = posterior_intervals(fit, spreads, prob).loc[spreads]
    true_spread = np.array([float(truth[name]) for name in spreads])
    lower, upper = summary["lower"].to_numpy(), summary["upper"].to_numpy()
    hyper = pd.DataFrame(
        {
            "parameter": spreads,
            "truth": true_spread,
            "posterior mean": summary["estimate"].to_numpy(),
            "covered": metrics.inside(lower, upper, true_spread),
            "EB estimate": [np.nan, eb_fit.tau],
        }
    )
    hyper_names = ["mu_global", "sigma_genre", "sigma_creator", "mu_genre"]
    rhat = az.rhat(fit["posterior"].to_dataset()[hyper_names])
    sampler = {
        "divergences": int(np.asarray(fit["sample_stats"]["diverging"]).sum()),
        "max R-hat": float(max(np.max(rhat[v].values) for v in hyper_names)),
        "seconds": float(fit["posterior"].attrs.get("sampling_time", np.nan)),
    }
    return {"metrics": scores, "hyper": hyper, "sampler": sampler}


def replication_study(n_reps, seed, compiled=None, *, simulate=simulate_creators,
                      chains=2, draws=500, tune=500, target_accept=0.9, prob=0.95):
    # Data set r is simulate(seed=seed + r), sampled with seed + r; the model is
    # compiled once and re-used with each data set swapped in.
    if n_reps < 2:
        raise ValueError("n_reps must be at least 2 (for Monte Carlo errors)")
    start = time.perf_counter()
    scores, hyper, sampler = [], [], []
    for r in range(n_reps):
        observed, truth = simulate(seed=seed + r)
        if compiled is None or not same_shape(compiled, observed):
            compiled = nutpie.compile_pymc_model(build_model(observed, "marginal"))
        fit = sample_compiled(compiled, observed, seed=seed + r, chains=chains,
                              draws=draws, tune=tune, target_accept=target_accept)
        out = score_methods(observed, truth, fit, np.random.default_rng(seed + r), prob)
        scores.append(out["metrics"].assign(rep=r))
        hyper.append(out["hyper"].assign(rep=r))
        sampler.append({"rep": r, **out["sampler"]})
    return {
        "metrics": pd.concat(scores, ignore_index=True),
        "hyper": pd.concat(hyper, ignore_index=True),
        "sampler": pd.DataFrame(sampler),
        "seconds": time.perf_counter() - start,
    }


def summarise_replications(scores, bin_label="all"):
    # Each metric's mean over the data sets, with its Monte Carlo error sd / sqrt(R).
    part = scores[scores["bin"] == bin_label]
    rows = {}
    for name, g in part.groupby("method", observed=True, sort=False):
        row = {}
        for col in ("mse", "coverage", "mean_width"):
            row[col] = float(g[col].mean())
            row[f"{col}_mc"] = metrics.mc_error(g[col].to_numpy())
        rows[name] = {**row, "reps": int(g["rep"].nunique())}
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("method")
