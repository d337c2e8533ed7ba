"""The creator model: the original study's sampling recipe against the chapter's fast version.

The recipe writes every level non-centered and samples with PyMC's own NUTS (its defaults:
target_accept 0.8). The fast version centers the genre level, integrates the creators out,
samples with nutpie (target_accept 0.9) and draws each creator's effect from its exact
conditional posterior (hbm.book.creators). Every version takes 4 chains of 1,000 draws after 1,000
tuning steps on data/creator_experiments.csv, seeded with hbm.book.common.SEED.

ESS is the minimum bulk ESS over the same quantities for every version: mu_global,
sigma_genre, sigma_creator, the genre means and all creators' effects tau. ESS per second uses
the sampling time (for the fast version including the conditional draws), which excludes
compilation; compilation is reported separately. The intermediate nutpie versions separate
the sampler's contribution from the parameterization's. The two Bambi rows (nutpie) count ESS
over all of the Bambi model's parameters (intercept, spreads, group terms): Bambi's default
hierarchy (a common intercept plus non-centered offsets) and the chapter's Bambi model (genre
term with a hyperprior mean, both terms centered).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd

TITLE = ("Creator model, 500 creators in 5 genres: the original recipe (all non-centered, PyMC's "
         "own NUTS) against the chapter's fast version (centered genres, creators integrated out, nutpie)")
ROOT = Path(__file__).resolve().parents[1]
DRAWS, TUNE, CHAINS = 1000, 1000, 4


def _row(version, sampler, fit, compile_s, sampling_s, var_names="model"):
    """One table row; ESS over the model's quantities (with ``tau``), or all parameters (None)."""
    from hbm import diagnostics
    from hbm.book.creators import HYPERPARAMETERS

    if var_names == "model":
        var_names = [*HYPERPARAMETERS, "theta"]
    checks = diagnostics.check(fit, var_names=var_names)
    return {
        "version": version,
        "sampler": sampler,
        "compile + set-up s": round(compile_s, 1),
        "sampling s": round(sampling_s, 2),
        "min bulk ESS": int(checks.min_ess_bulk),
        "ESS per second": round(checks.min_ess_bulk / sampling_s, 1),
        "divergences": checks.divergences,
        "max R-hat": round(checks.max_rhat, 3),
    }


def _pymc(df, parameterization, sampler, target_accept, seed):
    """Fit one parameterization with pm.sample; return (fit, compile s, sampling s)."""
    import pymc as pm

    from hbm.book.creators import build_model

    start = time.perf_counter()
    fit = pm.sample(model=build_model(df, parameterization), draws=DRAWS, tune=TUNE, chains=CHAINS,
                    cores=2, nuts_sampler=sampler, target_accept=target_accept, random_seed=seed,
                    progressbar=False, quiet=True)
    total = time.perf_counter() - start
    sampling = float(fit["posterior"].attrs["sampling_time"])
    return fit, total - sampling, sampling


def _bambi(df, default, seed):
    """Fit Bambi's default hierarchy or the chapter's Bambi model with nutpie."""
    import bambi as bmb

    sigma = "sigma ~ 0 + offset(np.log(se))"  # known standard errors
    if default:
        model = bmb.Model(bmb.Formula("effect ~ 1 + (1|genre) + (1|creator_id)", sigma), df)
    else:
        priors = {
            "1|genre": bmb.Prior("Normal", mu=bmb.Prior("Normal", mu=0, sigma=1),
                                 sigma=bmb.Prior("HalfNormal", sigma=1), noncentered=False),
            "1|creator_id": bmb.Prior("Normal", mu=0, sigma=bmb.Prior("HalfNormal", sigma=1), noncentered=False),
        }
        model = bmb.Model(bmb.Formula("effect ~ 0 + (1|genre) + (1|creator_id)", sigma), df, priors=priors)
    start = time.perf_counter()
    fit = model.fit(inference_method="nutpie", draws=DRAWS, tune=TUNE, chains=CHAINS, random_seed=seed,
                    progressbar=False, quiet=True)
    total = time.perf_counter() - start
    sampling = float(fit["posterior"].attrs["sampling_time"])
    return fit, total - sampling, sampling


def run() -> pd.DataFrame:
    import nutpie

    from hbm.book.common import SEED
    from hbm.book.creators import add_creator_draws, build_model
    from hbm.book.data import load_creators

    df = load_creators(ROOT / "data" / "creator_experiments.csv")
    rows = []

    fit, comp, samp = _pymc(df, "noncentered", "pymc", 0.8, SEED)
    rows.append(_row("recipe: all non-centered", "PyMC's NUTS", fit, comp, samp))

    for name, label in [("noncentered", "all non-centered"), ("centered_genre", "centered genre, non-centered creators"),
                        ("centered", "all centered")]:
        fit, comp, samp = _pymc(df, name, "nutpie", 0.9, SEED)
        rows.append(_row(label, "nutpie", fit, comp, samp))

    fit, comp, samp = _bambi(df, True, SEED)
    rows.append(_row("Bambi default: intercept + non-centered offsets", "nutpie", fit, comp, samp, None))
    fit, comp, samp = _bambi(df, False, SEED)
    rows.append(_row("Bambi, the chapter's model (centered)", "nutpie", fit, comp, samp, None))

    start = time.perf_counter()
    compiled = nutpie.compile_pymc_model(build_model(df, "marginal"))
    comp = time.perf_counter() - start
    start = time.perf_counter()
    fit = nutpie.sample(compiled, draws=DRAWS, tune=TUNE, chains=CHAINS, target_accept=0.9, seed=SEED,
                        progress_bar=False)
    fit = add_creator_draws(fit, df, np.random.default_rng(SEED))
    samp = time.perf_counter() - start
    rows.append(_row("fast: centered genre, creators integrated out", "nutpie", fit, comp, samp))

    table = pd.DataFrame(rows)
    table["ESS/s vs recipe"] = (table["ESS per second"] / table["ESS per second"].iloc[0]).round(1)
    return table
