"""Empirical Bayes at 1 and 10 million users: time, peak memory, users per second (hbm.scale).

For each size: simulate a play-event log to Parquet chunk by chunk (250,000 users a file,
about 21 plays a user), then run the EB job of the empirical-Bayes chapter on a local Dask
cluster of two single-threaded worker processes (``hbm.scale.run_eb``): aggregate the events
to per-user genre counts, stream the regional sufficient statistics, fit the regional
Dirichlet priors from those statistics alone, and write every user's posterior (means of all
five genres and a 95% equal-tailed interval of the Pop share) to Parquet.

Memory is measured two ways: the peak RSS of this process plus its child processes (the
local Dask nanny and worker processes), sampled every 50 ms by ``hbm.scale.PeakMemory``; and
the bytes the EB fit itself allocates at peak, traced by ``tracemalloc``
(``hbm.scale.traced_peak``), next to the size of the sufficient statistics it reads.

For contrast, the full hierarchical Bayes model of the regional chapter
(``hbm.music``) is fitted with nutpie to 5,000 users taken from the 1-million-user run.

``HBM_EB_BENCH_USERS=200000,1000000 HBM_EB_BENCH_FB_USERS=1000 python bench/run.py eb_scaling``
runs other sizes (the results file then records them).
"""

from __future__ import annotations

import os
import tempfile
import time

import numpy as np
import pandas as pd

from hbm import scale
from hbm.book import SEED

TITLE = ("Empirical Bayes at scale: wall time, peak memory and users per second of the EB job "
         "(hbm.scale on a local Dask cluster), and of the full Bayes model on 5,000 users")

SIZES = tuple(int(s) for s in os.environ.get("HBM_EB_BENCH_USERS", "1000000,10000000").split(","))
CHUNK_USERS = 250_000
FULL_BAYES_USERS = int(os.environ.get("HBM_EB_BENCH_FB_USERS", "5000"))
MIB = 2**20


def _eb_row(n_users: int, client) -> tuple[dict, pd.DataFrame | None, tuple[str, ...]]:
    """Generate a log of ``n_users`` users, run the EB job; return its row, a sample, the regions."""
    with tempfile.TemporaryDirectory(prefix="hbm-eb-bench-") as tmp:
        with scale.PeakMemory() as gen_mem:
            log = scale.write_play_log(f"{tmp}/log", n_users, seed=SEED, chunk_users=CHUNK_USERS,
                                       client=client)
        sample_users = FULL_BAYES_USERS if n_users == min(SIZES) else 0
        run = scale.run_eb(log, tmp, client=client, sample_users=sample_users)
        true_kappa = log.true_alpha().sum(axis=1)
        kappa_error = np.max(np.abs(run.priors.alpha.sum(axis=1) / true_kappa - 1))
    row = {
        "method": "Empirical Bayes (hbm.scale, Dask)",
        "users": n_users,
        "events": log.n_events,
        "Parquet MiB": round(log.nbytes / MIB, 1),
        "generate s": round(log.seconds, 1),
        "generate peak RSS MiB": round(gen_mem.peak_total / MIB),
        "aggregate s": round(run.seconds["aggregate"], 1),
        "suffstats s": round(run.seconds["suffstats"], 2),
        "fit s": round(run.seconds["fit"], 3),
        "posteriors s": round(run.seconds["posteriors"], 1),
        "total s": round(run.seconds["total"], 1),
        "users per s": round(run.users_per_second),
        "peak RSS MiB": round(run.peak_rss / MIB),
        "workers' peak RSS MiB": round(run.peak_rss_workers / MIB),
        "suffstats KiB": round(run.stats.nbytes / 1024, 1),
        "fit peak KiB": round(run.fit_peak_bytes / 1024, 1),
        "max kappa error": round(float(kappa_error), 3),
    }
    return row, run.sample, log.regions


def _full_bayes_row(sample: pd.DataFrame, regions) -> dict:
    """Fit the regional chapter's full Bayes model to the sampled users; time and memory."""
    from hbm import diagnostics, music
    from hbm.data import GENRES

    plays = pd.DataFrame({
        "user_id": [f"u{i}" for i in sample["user_id"]],
        "region": pd.Categorical.from_codes(sample["region"].to_numpy(), categories=list(regions)),
    })
    for g in GENRES:
        plays[g] = sample[g].to_numpy(np.int64)
    with scale.PeakMemory() as mem:
        start = time.perf_counter()
        fit = music.fit_three_level(plays, random_seed=SEED)
        seconds = time.perf_counter() - start
    check = diagnostics.check(fit)
    return {
        "method": f"Full Bayes (hbm.music three-level model, {check.sampler})",
        "users": len(plays),
        "events": int(sample[list(GENRES)].to_numpy().sum()),
        "total s": round(seconds, 1),
        "users per s": round(len(plays) / seconds, 1),
        "peak RSS MiB": round(mem.peak_total / MIB),
        "diagnostics": "pass" if check.ok else "FAIL: " + "; ".join(check.failures),
    }


def _warm_up(client) -> None:
    """Run a 20,000-user job first, unrecorded, so that no size pays for the workers' imports."""
    with tempfile.TemporaryDirectory(prefix="hbm-eb-bench-") as tmp:
        log = scale.write_play_log(f"{tmp}/log", 20_000, seed=SEED, chunk_users=5_000, client=client)
        scale.run_eb(log, tmp, client=client)


def run() -> pd.DataFrame:
    rows, sample, regions = [], None, None
    with scale.local_client(n_workers=2, threads_per_worker=1) as client:
        _warm_up(client)
        for n in SIZES:
            row, got, regions = _eb_row(n, client)
            rows.append(row)
            if got is not None:
                sample = got
            print(row, flush=True)
    if sample is not None:
        rows.append(_full_bayes_row(sample, regions))
    return pd.DataFrame(rows)
