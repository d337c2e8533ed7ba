"""Empirical Bayes at 1 and 10 million users on Dask: time of each step, peak memory, users per second.

For each size, a play-event log is simulated once (``hbm.scale.write_play_log``: about 21
plays a user, partitioned by time into one zstd Parquet file per 250,000 users simulated, each
file holding plays of nearly every user) and cached under ``bench/results/scratch/``, keyed
by its parameters; generating it is not part of the job's time. The EB job then runs on a
local Dask cluster of one worker process with two threads (``hbm.scale.run_eb``): count the
events per user and genre (a reduction across files), the regional sufficient statistics,
the regional Dirichlet priors, and every user's posterior (means of all five genres and a
95% equal-tailed interval of the Pop share, float64) written to Parquet.

Memory is the exact peak resident memory (Linux ``VmHWM``, reset at the start of the job) of
the client process and of the worker process (``hbm.scale.ClusterPeaks``), next to the size
of the per-user counts the workers hold. The largest size is run a second time on two
single-threaded worker processes, where the partial counts travel between processes over
TCP as they would between machines.

In the same run and on the same files, DuckDB (pinned in the ``bench`` extra) computes the
same per-user genre counts in this one process with as many threads: what the counting
costs without Dask's distribution. Its peak memory is that of this process during the query.

Each timed job runs twice (``HBM_EB_BENCH_REPEATS``; once on the heavy-tailed log) and the faster run is recorded, with
the machine's one-minute load average when it started (column ``load avg at start``): the
machine may be shared, and a busy moment only slows a run down.

Every size checks its posteriors against the closed form computed in NumPy/SciPy from the
simulation's own counts for 10,000 random users (column ``max error vs closed form``).

Full Bayes runs in the same run, on the same files and the same cluster
(``hbm.scale.run_full_bayes``): the same count pass, the regional histograms and the distinct
``(x, n)`` pairs of every block, chapter 3's three-level model fitted with nutpie on the
histograms (compiled once, in the unrecorded warm-up, and reused), the posterior of every
distinct pair (means over all draws, intervals over thinned draws), and every user's
posterior mean and 95% interval of all five genres written to Parquet. Its rows report the
histogram cells, the distinct pairs, the diagnostics, the largest error against brute force
(means over all draws, on 2,000 simulated users; intervals by root-finding, on 20), the
largest change of an interval had all draws been used (on 300 random pairs), and the ratio
of its wall time to the EB job's on the same files.

A heavy-tailed log (``HBM_EB_BENCH_HEAVY_USERS`` users, default one million; totals from a
Pareto law with exponent 1.2 from 5 plays, capped at 100,000: some users with 10,000+ plays)
runs both jobs too, so the distinct-pairs shortcut is measured beyond the bounded counts.

For contrast, the full hierarchical Bayes model of the regional chapter (``hbm.book.music``,
one Dirichlet-multinomial term per user) is fitted with nutpie to 5,000 users taken from the
smallest size's run, and the histogram fit to the same users: the row
"Full Bayes on histograms ... same users" records the largest gap between the two fits'
posterior means of ``log kappa_r`` and ``p_r`` in Monte Carlo standard errors, and the
largest gaps between their users' posterior means and interval ends.

``HBM_EB_BENCH_USERS=200000,1000000 HBM_EB_BENCH_FB_USERS=0 python bench/run.py eb_scaling``
runs other sizes, without the full Bayes fit (the results file then records them).
"""

from __future__ import annotations

import datetime as dt
import os
import platform
import shutil
import time
from pathlib import Path

import dask
import numpy as np
import nutpie
import pandas as pd
import pyarrow.parquet as pq
from scipy import special

from hbm import scale
from hbm.book.scale import MUSIC_LOG
from hbm.book.common import SEED
from hbm.book.data import GENRES

TITLE = ("Empirical Bayes and full Bayes at scale on Dask: wall time of each step, peak memory of client "
         "and workers and users per second of the EB job and of the full Bayes job on histograms (hbm.scale), "
         "a heavy-tailed log, the same counting by DuckDB in one process, and chapter 3's per-user full Bayes "
         "model on 5,000 users beside the histogram fit")

SIZES = tuple(int(s) for s in os.environ.get("HBM_EB_BENCH_USERS", "1000000,10000000").split(","))
CHUNK_USERS = 250_000
FULL_BAYES_USERS = int(os.environ.get("HBM_EB_BENCH_FB_USERS", "5000"))
CHECK_USERS = 10_000
REPEATS = int(os.environ.get("HBM_EB_BENCH_REPEATS", "2"))
HEAVY_USERS = int(os.environ.get("HBM_EB_BENCH_HEAVY_USERS", "1000000"))
HEAVY = {"tail": 1.2, "n_min": 5, "n_max": 100_000}
N_WORKERS, THREADS = 1, os.cpu_count() or 2
SCRATCH = Path(__file__).resolve().parent / "results" / "scratch"
MIB = 2**20
LOG_VERSION = 2  # bump when write_play_log's output changes


def machine() -> str:
    """CPU model, cores, memory and Python of this machine, in one line."""
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import psutil

    ram = psutil.virtual_memory().total / 2**30
    return (f"{model} ({platform.machine()}), {os.cpu_count()} cores, {ram:.0f} GiB RAM, "
            f"Python {platform.python_version()}")


def cached_log(n_users: int, client, **shape) -> scale.PlayLog:
    """The log of ``n_users`` users under bench/results/scratch/, generated once (keyed by its parameters)."""
    tag = "".join(f"-{k}{v}" for k, v in sorted(shape.items()))
    path = SCRATCH / f"eb-log-v{LOG_VERSION}-n{n_users}-seed{SEED}-chunk{CHUNK_USERS}{tag}"
    if (path / "log.json").exists():
        return scale.read_play_log(path)
    tmp = path.with_name(path.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    scale.write_play_log(tmp, n_users, seed=SEED, chunk_users=CHUNK_USERS, client=client, **MUSIC_LOG, **shape)
    tmp.rename(path)
    return scale.read_play_log(path)


def closed_form_error(log: scale.PlayLog, run: scale.ScaleRun) -> float:
    """Largest absolute difference between written posteriors and the closed form, on 10,000 users.

    The users are drawn from the first simulation chunk; their counts come from the
    simulation itself (``hbm.scale.simulate_chunk``), not from the job's counting, and the
    closed form is ``a / sum(a)`` and ``betaincinv(a_pop, sum(a) - a_pop, q)`` with
    ``a = alpha_r + x_i``.
    """
    uid, reg, x, first = first_chunk(log)
    rows = np.sort(np.random.default_rng(SEED).choice(first, size=min(CHECK_USERS, first), replace=False))
    post = pq.read_table(run.posterior_path, filters=[("user_id", "<", first)]).to_pandas().set_index("user_id")
    got = post.loc[uid[rows]]
    a = run.priors.alpha[reg[rows]] + x[rows]
    big_a = a.sum(axis=1)
    errors = [np.abs(got[f"{g}_mean"].to_numpy() - a[:, k] / big_a).max() for k, g in enumerate(GENRES)]
    for q, col in [(0.025, "pop_lower"), (0.975, "pop_upper")]:
        errors.append(np.abs(got[col].to_numpy() - special.betaincinv(a[:, 0], big_a - a[:, 0], q)).max())
    if not np.array_equal(got["n"].to_numpy(), x[rows].sum(axis=1)):
        raise AssertionError("posterior totals differ from the simulated counts")
    return float(max(errors))


def first_chunk(log: scale.PlayLog):
    """Ids, regions and counts of the log's first simulation chunk, from the simulation itself."""
    weights = np.asarray(log.truth["region_weights"])
    first = min(CHUNK_USERS, log.n_users)
    uid, reg, x = scale.simulate_chunk(0, first, scale.log._chunk_rng(log.truth["seed"], 0), log.true_alpha(),
                                       weights, log.truth["n_min"], log.truth["n_max"], log.truth.get("tail"))
    return uid, reg, x, first


def duckdb_counts(log: scale.PlayLog, job: dict) -> dict:
    """Per-user genre counts of the same files by DuckDB in this process; time, memory, check."""
    import duckdb

    genres = ", ".join(f"count(*) FILTER (WHERE genre = {k}) AS {g}" for k, g in enumerate(log.genres))
    query = (f"SELECT user_id, any_value(region) AS region, {genres} "
             f"FROM read_parquet('{log.events_path}/*.parquet') GROUP BY user_id")
    con = duckdb.connect(config={"threads": THREADS})
    con.execute("SET enable_progress_bar = false")
    load = os.getloadavg()[0]
    scale.reset_peak_rss()
    start = time.perf_counter()
    table = con.sql(query).to_arrow_table()
    seconds = time.perf_counter() - start
    peak = scale.peak_rss()
    con.close()
    # the same users and the same plays per genre as the Dask job counted
    per_genre = [int(table.column(g).to_numpy().sum()) for g in log.genres]
    if table.num_rows != job["users"] or per_genre != job["plays per genre"]:
        raise AssertionError("DuckDB's counts differ from the Dask job's")
    del table
    return {
        "method": f"Counting only: DuckDB {duckdb.__version__}, one process, {THREADS} threads",
        "engine": f"DuckDB {duckdb.__version__}",
        "users": job["users"],
        "events": log.n_events,
        "files": log.n_files,
        "Parquet MiB": round(log.nbytes / MIB, 1),
        "aggregate s": round(seconds, 2),
        "total s": round(seconds, 2),
        "users per s": round(job["users"] / seconds),
        "client peak RSS MiB": round(peak / MIB),
        "peak RSS MiB": round(peak / MIB),
        "load avg at start": round(load, 2),
    }


def job_row(method: str, log: scale.PlayLog, run: scale.ScaleRun) -> dict:
    """One table row for a run of the EB job."""
    kappa_error = np.max(np.abs(run.priors.alpha.sum(axis=1) / log.true_alpha().sum(axis=1) - 1))
    return {
        **job_columns(method, f"Dask {dask.__version__}", log, run, ("aggregate", "suffstats", "fit", "posteriors")),
        "fit s": round(run.seconds["fit"], 3),
        "suffstats KiB": round(run.stats.nbytes / 1024, 1),
        "fit peak KiB": round(run.fit_peak_bytes / 1024, 1),
        "max kappa error": round(float(kappa_error), 3),
        "max error vs closed form": closed_form_error(log, run),
        "plays per genre": plays_per_genre(run),
    }


def job_columns(method: str, engine: str, log: scale.PlayLog, run, steps) -> dict:
    """The columns both jobs' rows share: the log, each step's and the whole time, memory."""
    post_bytes = sum(f.stat().st_size for f in run.posterior_path.glob("*.parquet"))
    return {
        "method": method,
        "engine": engine,
        "cluster": f"{run.n_workers} worker process(es), {run.n_threads} thread(s) in all",
        "users": log.n_users,
        "events": log.n_events,
        "files": log.n_files,
        "Parquet MiB": round(log.nbytes / MIB, 1),
        "generate s": round(log.seconds, 1),
        **{f"{step} s": round(run.seconds[step], 2) for step in steps},
        "total s": round(run.seconds["total"], 2),
        "users per s": round(run.users_per_second),
        "client start RSS MiB": round(run.client_start_rss / MIB),
        "client peak RSS MiB": round(run.peak_rss_client / MIB),
        "workers' start RSS MiB": round(run.workers_start_rss / MIB),
        "workers' peak RSS MiB": round(run.peak_rss_workers / MIB),
        "peak RSS MiB": round(run.peak_rss / MIB),
        "counts MiB": round(run.counts_bytes / MIB, 1),
        "posteriors MiB": round(post_bytes / MIB, 1),
    }


def plays_per_genre(run: scale.ScaleRun) -> list[int]:
    """Plays of each genre, from the job's sufficient statistics (sum over c of c * count_hist[k, c])."""
    hist = run.stats.overall.count_hist
    return [int(v) for v in (hist * np.arange(hist.shape[1])).sum(axis=1)]


def best_job_row(method: str, log: scale.PlayLog, client, out: Path, sample_users: int = 0, repeats: int = REPEATS):
    """Run the EB job ``repeats`` times; return the row of the fastest run (and its sample)."""
    best, sample = None, None
    for _ in range(repeats):
        shutil.rmtree(out, ignore_errors=True)
        load = os.getloadavg()[0]
        run = scale.run_eb(log, out, client=client, sample_users=sample_users)
        row = job_row(method.format(workers=run.n_workers, threads=run.n_threads), log, run)
        row["load avg at start"] = round(load, 2)
        if best is None or row["total s"] < best["total s"]:
            best = row
        sample = run.sample if run.sample is not None else sample
    shutil.rmtree(out, ignore_errors=True)
    print(best, flush=True)
    return best, sample


def eb_rows(n_users: int, client, **shape) -> tuple[list[dict], pd.DataFrame | None, tuple[str, ...]]:
    """Run the EB job on the cached log of ``n_users`` users, the full Bayes job, then DuckDB on its files."""
    log = cached_log(n_users, client, **shape)
    sample_users = FULL_BAYES_USERS if n_users == min(SIZES) and not shape else 0
    kind = ", heavy-tailed log" if shape else ""
    repeats = 1 if shape else REPEATS  # the heavy-tailed log shows what holds, not the fastest time
    row, sample = best_job_row("Empirical Bayes (hbm.scale, Dask: {workers} worker process, {threads} threads)" + kind,
                               log, client, SCRATCH / f"eb-out-n{n_users}", sample_users, repeats)
    fb = best_fb_row("Full Bayes on histograms (hbm.scale, Dask: {workers} worker process, {threads} threads, "
                     "nutpie)" + kind, log, client, SCRATCH / f"fb-out-n{n_users}", row, repeats)
    heavy = {"max plays per user": fb.pop("_max total"), "users with 10,000+ plays": fb.pop("_heavy users")}
    if shape:
        row.update(heavy)
        fb.update(heavy)
        return [row, fb], sample, log.regions
    duck = min((duckdb_counts(log, row) for _ in range(REPEATS)), key=lambda r: r["total s"])
    print(duck, flush=True)
    return [row, fb, duck], sample, log.regions


def best_fb_row(method: str, log: scale.PlayLog, client, out: Path, eb_row: dict, repeats: int = REPEATS) -> dict:
    """Run the full Bayes job ``repeats`` times on the same files; the row of the fastest run."""
    best = None
    for _ in range(repeats):
        shutil.rmtree(out, ignore_errors=True)
        load = os.getloadavg()[0]
        run = scale.run_full_bayes(log, out, client=client, random_seed=SEED)
        row = fb_job_row(method.format(workers=run.n_workers, threads=run.n_threads), log, run)
        row["load avg at start"] = round(load, 2)
        if best is None or row["total s"] < best["total s"]:
            best = row
    shutil.rmtree(out, ignore_errors=True)
    best["full Bayes / EB time"] = round(best["total s"] / eb_row["total s"], 2)
    print(best, flush=True)
    return best


def fb_job_row(method: str, log: scale.PlayLog, run: scale.FullBayesRun) -> dict:
    """One table row for a run of the full Bayes job (with its checks against brute force)."""
    kappa = run.fit.alpha.sum(axis=2).mean(axis=0)
    totals = sum(s.total_hist for s in run.histograms.stats.by_region if s is not None)
    check = run.fit.check
    return {
        **job_columns(method, f"Dask {dask.__version__}, nutpie {nutpie.__version__}", log, run,
                      ("aggregate", "histograms", "fit", "compile", "pairs", "posteriors")),
        "histogram cells": run.fit.n_bins,
        "distinct pairs": int(run.histograms.pairs.size),
        "interval draws": run.pairs.interval_draws,
        "max kappa error": round(float(np.max(np.abs(kappa / log.true_alpha().sum(axis=1) - 1))), 3),
        "diagnostics": "pass" if check.ok else "FAIL: " + "; ".join(check.failures),
        "divergences": check.divergences,
        "max R-hat": round(check.max_rhat, 4),
        "min ESS bulk": round(check.min_ess_bulk),
        "max error vs brute force": brute_force_error(log, run),
        "max interval change with all draws": thinning_change(run),
        "_max total": int(np.flatnonzero(totals).max()),
        "_heavy users": int(totals[10_000:].sum()),
    }


def brute_force_error(log: scale.PlayLog, run: scale.FullBayesRun) -> float:
    """Largest difference between written posteriors and brute force, from the simulation's own counts.

    Means of every genre for 2,000 users of the first chunk: the average over all draws of
    ``(alpha_rk + x_ik) / (kappa_r + n_i)``; Pop intervals for 20 of them: the root of the
    mixture's CDF over the job's thinned draws by ``scipy.optimize.brentq``.
    """
    from scipy import optimize

    uid, reg, x, first = first_chunk(log)
    rows = np.sort(np.random.default_rng(SEED + 1).choice(first, size=min(2_000, first), replace=False))
    post = pq.read_table(run.posterior_path, filters=[("user_id", "<", first)]).to_pandas().set_index("user_id")
    got = post.loc[uid[rows]]
    alpha = run.fit.alpha
    kappa = alpha.sum(axis=2)
    n = x[rows].sum(axis=1)
    errors = []
    for k, g in enumerate(GENRES):
        want = ((alpha[:, reg[rows], k] + x[rows, k]) / (kappa[:, reg[rows]] + n)).mean(axis=0)
        errors.append(np.abs(got[f"{g}_mean"].to_numpy() - want).max())
    thin = scale.thin_draws(alpha, run.pairs.interval_draws)
    for i in rows[:20]:
        a = thin[:, reg[i], 0] + x[i, 0]
        b = thin[:, reg[i]].sum(axis=1) + x[i].sum() - a
        for q, col in ((0.025, "pop_lower"), (0.975, "pop_upper")):
            root = optimize.brentq(lambda t: special.betainc(a, b, t).mean() - q, 0, 1, xtol=1e-14)
            errors.append(abs(post.loc[uid[i], col] - root))
    return float(max(errors))


def thinning_change(run: scale.FullBayesRun) -> float:
    """Largest change of an interval end on 300 random distinct pairs had all draws been used."""
    pairs = run.histograms.pairs
    pick = np.sort(np.random.default_rng(SEED).choice(pairs.size, size=min(300, pairs.size), replace=False))
    full = scale.pair_posteriors(pairs[pick], run.fit.alpha, interval_draws=run.fit.alpha.shape[0])
    row = run.pairs.locate(pairs[pick])
    return float(max(np.abs(full.lower - run.pairs.lower[row]).max(), np.abs(full.upper - run.pairs.upper[row]).max()))


def two_process_row(n_users: int) -> dict:
    """The EB job on two single-threaded worker processes: partial counts cross processes, as between machines."""
    log = cached_log(n_users, None)
    with scale.local_client(n_workers=2, threads_per_worker=1) as client:
        warm_up(client)
        row, _ = best_job_row("Same EB job on 2 worker processes x 1 thread (partial counts travel between "
                              "processes over TCP)", log, client, SCRATCH / f"eb-out-2p-n{n_users}")
    return row


def full_bayes_rows(sample: pd.DataFrame, regions) -> list[dict]:
    """Fit the regional chapter's full Bayes model to the sampled users, and the histogram fit; times, agreement."""
    from hbm import diagnostics
    from hbm.book import music

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
    chapter = {
        "method": f"Full Bayes (hbm.book.music three-level model, {check.sampler})",
        "engine": check.sampler,
        "users": len(plays),
        "events": int(sample[list(GENRES)].to_numpy().sum()),
        "total s": round(seconds, 1),
        "users per s": round(len(plays) / seconds, 1),
        "peak RSS MiB": round(mem.peak_total / MIB),
        "diagnostics": "pass" if check.ok else "FAIL: " + "; ".join(check.failures),
    }
    return [chapter, histogram_agreement_row(sample, regions, fit)]


def histogram_agreement_row(sample: pd.DataFrame, regions, chapter_fit) -> dict:
    """The histogram fit of the same users: its time and its gaps to the per-user fit (Monte Carlo SEs, users)."""
    import arviz as az

    from hbm.book import music

    x = sample[list(GENRES)].to_numpy(np.int64)
    code = sample["region"].to_numpy()
    start = time.perf_counter()
    stats = scale.region_suffstats(sample, regions, GENRES)
    fit = scale.fit_full_bayes(stats, GENRES, random_seed=SEED)
    keys = scale.encode_pairs(code[:, None], np.arange(len(GENRES))[None, :], x.sum(axis=1)[:, None], x, len(GENRES))
    table = scale.pair_posteriors(np.unique(keys), fit.alpha)
    seconds = time.perf_counter() - start
    gaps = []
    for var in ("log_kappa", "p"):
        a = az.summary(chapter_fit, var_names=[var], kind="all", round_to="none")
        b = az.summary(fit.fit, var_names=[var], kind="all", round_to="none")
        gaps.append(np.max(np.abs(a["mean"].to_numpy() - b["mean"].to_numpy())
                           / np.hypot(a["mcse_mean"].to_numpy(), b["mcse_mean"].to_numpy())))
    row = table.locate(keys.ravel()).reshape(keys.shape)
    ref = music.user_posteriors(music.alpha_draws(chapter_fit), x, code, rng=np.random.default_rng(SEED))
    return {
        "method": "Full Bayes on histograms (hbm.scale.fit_full_bayes and pair posteriors), same users",
        "engine": f"nutpie {nutpie.__version__}",
        "users": len(sample),
        "events": int(x.sum()),
        "fit s": round(fit.seconds["sample"], 2),
        "compile s": round(fit.seconds["compile"], 2),
        "total s": round(seconds, 2),
        "users per s": round(len(sample) / seconds, 1),
        "histogram cells": fit.n_bins,
        "distinct pairs": int(table.keys.size),
        "interval draws": table.interval_draws,
        "diagnostics": "pass" if fit.check.ok else "FAIL: " + "; ".join(fit.check.failures),
        "max gap in MCSE": round(float(max(gaps)), 2),
        "max user mean gap": float(np.max(np.abs(table.mean[row] - ref.mean))),
        "max user interval gap": float(max(np.max(np.abs(table.lower[row] - ref.lower)),
                                           np.max(np.abs(table.upper[row] - ref.upper)))),
    }


def warm_up(client) -> float:
    """Run 20,000-user jobs first, unrecorded, so that no size pays for imports or compilation.

    Returns the seconds the full Bayes model took to compile (once per process).
    """
    log = cached_log(20_000, client)
    out = SCRATCH / "eb-out-warm-up"
    shutil.rmtree(out, ignore_errors=True)
    scale.run_eb(log, out, client=client)
    shutil.rmtree(out, ignore_errors=True)
    run = scale.run_full_bayes(log, out, client=client, random_seed=SEED)
    shutil.rmtree(out, ignore_errors=True)
    return run.seconds["compile"]


def run() -> pd.DataFrame:
    SCRATCH.mkdir(parents=True, exist_ok=True)
    measured = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    rows, sample, regions = [], None, None
    with scale.local_client(n_workers=N_WORKERS, threads_per_worker=THREADS) as client:
        for n in SIZES:  # generate missing logs first, so that no timed job overlaps generation
            cached_log(n, client)
        if HEAVY_USERS:
            cached_log(HEAVY_USERS, client, **HEAVY)
        compile_s = warm_up(client)
        for n in SIZES:
            got_rows, got, regions = eb_rows(n, client)
            rows += got_rows
            if got is not None:
                sample = got
        if HEAVY_USERS:
            rows += eb_rows(HEAVY_USERS, client, **HEAVY)[0]
    rows.append(two_process_row(max(SIZES)))
    if sample is not None and FULL_BAYES_USERS > 0:
        rows += full_bayes_rows(sample, regions)
    table = pd.DataFrame(rows).drop(columns="plays per genre")
    table["model compile s (once, in the warm-up)"] = round(compile_s, 1)
    table["measured"] = measured
    table["machine"] = machine()
    return table
