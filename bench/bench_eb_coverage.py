"""Where does empirical Bayes stop losing anything? Interval width and coverage against users per region.

For each number of users per region, from 10 to 1,000,000, users are simulated from the music
simulation's four regional priors (``hbm.scale.log.simulate_chunk``, about 21 plays a user,
keeping each user's true genre shares), and both methods are fitted to the regional
histograms alone: empirical Bayes (``hbm.scale.fit_priors``, marginal maximum likelihood) and
full Bayes (``hbm.scale.fit_full_bayes``, chapter 3's three-level model with nutpie). Each
user's 95% interval for the Pop share is the EB plug-in Beta interval and the full Bayes
mixture over the posterior draws (``hbm.scale.mixture.pair_posteriors``). Recorded: the median
interval width of each method and the share of users whose interval holds their true Pop
share (coverage), pooled over replications (more at small sizes, where one data set holds few
users), with its binomial standard error.

``HBM_EB_COVERAGE_SIZES=10,100,1000`` runs other sizes.
"""

from __future__ import annotations

import os
import time

import numpy as np
import pandas as pd

from hbm import scale
from hbm.book import simulate
from hbm.book.common import SEED
from hbm.book.data import GENRES
from hbm.scale import histograms, log, mixture

TITLE = ("Empirical Bayes against full Bayes by users per region: median width and coverage of the users' "
         "95% intervals for the Pop share (simulated users with known shares)")

SIZES = tuple(int(s) for s in os.environ.get(
    "HBM_EB_COVERAGE_SIZES", "10,30,100,300,1000,10000,100000,1000000").split(","))
REPLICATIONS = {10: 25, 30: 10, 100: 5, 300: 3, 1000: 2}


def one_data_set(per_region: int, rep: int) -> dict:
    """Both methods on one simulated data set of about ``per_region`` users in each region."""
    _, weights, alpha = log._spec(simulate.REGION_PROFILES, simulate.REGION_KAPPA, GENRES)
    rng = np.random.default_rng(np.random.SeedSequence(SEED, spawn_key=(per_region, rep)))
    _, code, x, theta = log.simulate_chunk(0, per_region * len(weights), rng, alpha, weights, 1, 100,
                                           return_theta=True)
    frame = pd.DataFrame({"region": code, **{g: x[:, k] for k, g in enumerate(GENRES)}})
    stats = scale.region_suffstats(frame, simulate.REGIONS, GENRES)
    truth = theta[:, 0]
    out = {}
    try:
        eb = scale.posterior_arrays(x, code, scale.fit_priors(stats, GENRES).alpha, interval_index=(0,))
        out["eb"] = (eb["lower"][:, 0], eb["upper"][:, 0])
    except ValueError:  # the marginal likelihood has no finite maximum in some region
        out["eb"] = None
    fit = scale.fit_full_bayes(stats, GENRES, random_seed=SEED + rep)
    n = x.sum(axis=1)
    keys = histograms.encode_pairs(code, 0, n, x[:, 0], len(GENRES))
    table = mixture.pair_posteriors(np.unique(keys), fit.alpha)
    row = table.locate(keys)
    out["fb"] = (table.lower[row], table.upper[row])
    out["fb_ok"] = fit.check.ok
    out["truth"] = truth
    return out


def run() -> pd.DataFrame:
    rows = []
    for per_region in SIZES:
        start = time.perf_counter()
        reps = REPLICATIONS.get(per_region, 1)
        got = [one_data_set(per_region, rep) for rep in range(reps)]
        row = {"users per region": per_region, "replications": reps,
               "users": sum(g["truth"].size for g in got)}
        for method, key in (("EB", "eb"), ("full Bayes", "fb")):
            done = [g for g in got if g[key] is not None]
            lower = np.concatenate([g[key][0] for g in done])
            upper = np.concatenate([g[key][1] for g in done])
            truth = np.concatenate([g["truth"] for g in done])
            cover = float(np.mean((lower <= truth) & (truth <= upper)))
            row[f"{method} median width"] = float(np.median(upper - lower))
            row[f"{method} coverage"] = cover
            row[f"{method} coverage SE"] = float(np.sqrt(cover * (1 - cover) / truth.size))
            row[f"{method} fits"] = len(done)
        row["full Bayes fits passing diagnostics"] = sum(g["fb_ok"] for g in got)
        row["seconds"] = round(time.perf_counter() - start, 1)
        print(row, flush=True)
        rows.append(row)
    return pd.DataFrame(rows)
