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

Each timed job runs twice (``HBM_EB_BENCH_REPEATS``) and the faster run is recorded, with
the machine's one-minute load average when it started (column ``load avg at start``): the
machine may be shared, and a busy moment only slows a run down.

Every size checks its posteriors against the closed form computed in NumPy/SciPy from the
simulation's own counts for 10,000 random users (column ``max error vs closed form``).

For contrast, the full hierarchical Bayes model of the regional chapter (``hbm.book.music``) is
fitted with nutpie to 5,000 users taken from the smallest size's run.

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
import pandas as pd
import pyarrow.parquet as pq
from scipy import special

from hbm import scale
from hbm.scale import MUSIC_LOG
from hbm.book.common import SEED
from hbm.book.data import GENRES

TITLE = ("Empirical Bayes at scale on Dask: wall time of each step, peak memory of client and "
         "workers and users per second of the EB job (hbm.scale), the same counting by DuckDB "
         "in one process, and the full Bayes model on 5,000 users")

SIZES = tuple(int(s) for s in os.environ.get("HBM_EB_BENCH_USERS", "1000000,10000000").split(","))
CHUNK_USERS = 250_000
FULL_BAYES_USERS = int(os.environ.get("HBM_EB_BENCH_FB_USERS", "5000"))
CHECK_USERS = 10_000
REPEATS = int(os.environ.get("HBM_EB_BENCH_REPEATS", "2"))
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


def cached_log(n_users: int, client) -> scale.PlayLog:
    """The log of ``n_users`` users under bench/results/scratch/, generated once (keyed by its parameters)."""
    path = SCRATCH / f"eb-log-v{LOG_VERSION}-n{n_users}-seed{SEED}-chunk{CHUNK_USERS}"
    if (path / "log.json").exists():
        return scale.read_play_log(path)
    tmp = path.with_name(path.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    scale.write_play_log(tmp, n_users, seed=SEED, chunk_users=CHUNK_USERS, client=client, **MUSIC_LOG)
    tmp.rename(path)
    return scale.read_play_log(path)


def closed_form_error(log: scale.PlayLog, run: scale.ScaleRun) -> float:
    """Largest absolute difference between written posteriors and the closed form, on 10,000 users.

    The users are drawn from the first simulation chunk; their counts come from the
    simulation itself (``hbm.scale.simulate_chunk``), not from the job's counting, and the
    closed form is ``a / sum(a)`` and ``betaincinv(a_pop, sum(a) - a_pop, q)`` with
    ``a = alpha_r + x_i``.
    """
    weights = np.asarray(log.truth["region_weights"])
    first = min(CHUNK_USERS, log.n_users)
    uid, reg, x = scale.simulate_chunk(0, first, scale.log._chunk_rng(log.truth["seed"], 0), log.true_alpha(),
                                       weights, log.truth["n_min"], log.truth["n_max"])
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
    true_kappa = log.true_alpha().sum(axis=1)
    kappa_error = np.max(np.abs(run.priors.alpha.sum(axis=1) / true_kappa - 1))
    post_bytes = sum(f.stat().st_size for f in run.posterior_path.glob("*.parquet"))
    return {
        "method": method,
        "engine": f"Dask {dask.__version__}",
        "cluster": f"{run.n_workers} worker process(es), {run.n_threads} thread(s) in all",
        "users": log.n_users,
        "events": log.n_events,
        "files": log.n_files,
        "Parquet MiB": round(log.nbytes / MIB, 1),
        "generate s": round(log.seconds, 1),
        "aggregate s": round(run.seconds["aggregate"], 2),
        "suffstats s": round(run.seconds["suffstats"], 2),
        "fit s": round(run.seconds["fit"], 3),
        "posteriors s": round(run.seconds["posteriors"], 2),
        "total s": round(run.seconds["total"], 2),
        "users per s": round(run.users_per_second),
        "client start RSS MiB": round(run.client_start_rss / MIB),
        "client peak RSS MiB": round(run.peak_rss_client / MIB),
        "workers' start RSS MiB": round(run.workers_start_rss / MIB),
        "workers' peak RSS MiB": round(run.peak_rss_workers / MIB),
        "peak RSS MiB": round(run.peak_rss / MIB),
        "counts MiB": round(run.counts_bytes / MIB, 1),
        "posteriors MiB": round(post_bytes / MIB, 1),
        "suffstats KiB": round(run.stats.nbytes / 1024, 1),
        "fit peak KiB": round(run.fit_peak_bytes / 1024, 1),
        "max kappa error": round(float(kappa_error), 3),
        "max error vs closed form": closed_form_error(log, run),
        "plays per genre": plays_per_genre(run),
    }


def plays_per_genre(run: scale.ScaleRun) -> list[int]:
    """Plays of each genre, from the job's sufficient statistics (sum over c of c * count_hist[k, c])."""
    hist = run.stats.overall.count_hist
    return [int(v) for v in (hist * np.arange(hist.shape[1])).sum(axis=1)]


def best_job_row(method: str, log: scale.PlayLog, client, out: Path, sample_users: int = 0):
    """Run the EB job REPEATS times; return the row of the fastest run (and its sample)."""
    best, sample = None, None
    for _ in range(REPEATS):
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


def eb_rows(n_users: int, client) -> tuple[list[dict], pd.DataFrame | None, tuple[str, ...]]:
    """Run the EB job on the cached log of ``n_users`` users, then DuckDB on its files."""
    log = cached_log(n_users, client)
    sample_users = FULL_BAYES_USERS if n_users == min(SIZES) else 0
    row, sample = best_job_row("Empirical Bayes (hbm.scale, Dask: {workers} worker process, {threads} threads)",
                               log, client, SCRATCH / f"eb-out-n{n_users}", sample_users)
    duck = min((duckdb_counts(log, row) for _ in range(REPEATS)), key=lambda r: r["total s"])
    print(duck, flush=True)
    return [row, duck], sample, log.regions


def two_process_row(n_users: int) -> dict:
    """The EB job on two single-threaded worker processes: partial counts cross processes, as between machines."""
    log = cached_log(n_users, None)
    with scale.local_client(n_workers=2, threads_per_worker=1) as client:
        warm_up(client)
        row, _ = best_job_row("Same EB job on 2 worker processes x 1 thread (partial counts travel between "
                              "processes over TCP)", log, client, SCRATCH / f"eb-out-2p-n{n_users}")
    return row


def full_bayes_row(sample: pd.DataFrame, regions) -> dict:
    """Fit the regional chapter's full Bayes model to the sampled users; time and memory."""
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
    return {
        "method": f"Full Bayes (hbm.book.music three-level model, {check.sampler})",
        "engine": check.sampler,
        "users": len(plays),
        "events": int(sample[list(GENRES)].to_numpy().sum()),
        "total s": round(seconds, 1),
        "users per s": round(len(plays) / seconds, 1),
        "peak RSS MiB": round(mem.peak_total / MIB),
        "diagnostics": "pass" if check.ok else "FAIL: " + "; ".join(check.failures),
    }


def warm_up(client) -> None:
    """Run a 20,000-user job first, unrecorded, so that no size pays for imports or compilation."""
    log = cached_log(20_000, client)
    out = SCRATCH / "eb-out-warm-up"
    shutil.rmtree(out, ignore_errors=True)
    scale.run_eb(log, out, client=client)
    shutil.rmtree(out, ignore_errors=True)


def run() -> pd.DataFrame:
    SCRATCH.mkdir(parents=True, exist_ok=True)
    measured = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    rows, sample, regions = [], None, None
    with scale.local_client(n_workers=N_WORKERS, threads_per_worker=THREADS) as client:
        for n in SIZES:  # generate missing logs first, so that no timed job overlaps generation
            cached_log(n, client)
        warm_up(client)
        for n in SIZES:
            got_rows, got, regions = eb_rows(n, client)
            rows += got_rows
            if got is not None:
                sample = got
    rows.append(two_process_row(max(SIZES)))
    if sample is not None and FULL_BAYES_USERS > 0:
        rows.append(full_bayes_row(sample, regions))
    table = pd.DataFrame(rows).drop(columns="plays per genre")
    table["measured"] = measured
    table["machine"] = machine()
    return table
