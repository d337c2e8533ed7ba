"""Empirical Bayes for millions of users on Dask: event logs, dense counts, streaming statistics.

The pipeline of the empirical-Bayes chapter, at any size:

1. :func:`write_play_log` simulates a play-event log (one row per play: ``user_id`` int32,
   ``region`` int8, ``genre`` int8) and writes it as Parquet *partitioned by time*: every
   file holds the plays of one time window, from nearly every user. Each user's genre
   shares are drawn from a regional Dirichlet prior, as in :func:`hbm.book.simulate.music`; the
   priors are the simulation's truth.
2. :func:`user_count_blocks` counts the plays per user and genre: one task per worker
   thread reads its share of the files with PyArrow and adds every play into a dense
   ``(n_users, K)`` int32 array (:func:`count_into`, a Numba loop); the arrays are summed
   across tasks block of users by block of users (a tree reduction). Memory follows the
   number of users, never the number of events.
3. :func:`streaming_suffstats` reduces the per-user counts, block by block, to the
   Dirichlet-multinomial sufficient statistics of every region
   (:class:`hbm.eb.DMSuffStats`: per-genre histograms of counts and a histogram of totals),
   merged by addition. Their size depends on the largest count, not on the number of users.
4. :func:`fit_priors` fits the global and regional Dirichlet priors by marginal maximum
   likelihood from those statistics alone (:func:`hbm.eb.fit_dirichlet_multinomial_from_suffstats`).
5. :func:`write_posteriors` computes every user's conjugate posterior
   ``Dirichlet(alpha_r + x_i)`` block by block (:func:`posterior_arrays`) on the worker that
   holds the block and writes it as Parquet.

:func:`run_eb` runs steps 2-5 and times them; the event log is read exactly once (the
per-user counts stay in the workers' memory for steps 3 and 5). :func:`bench_summary` reads
the figures of ``bench/results/eb_scaling.csv`` that the chapter quotes.

Every function that computes with Dask takes ``client``, a :class:`distributed.Client`.
Without one, :func:`cluster_client` connects to the scheduler named by the environment
variable ``DASK_SCHEDULER_ADDRESS`` if it is set, and otherwise starts a :func:`local_client`
for the call. On a multi-machine cluster the log's directory and the output directory must
be on storage every worker can reach (a shared file system), and ``hbm`` must be installed
on the workers.

References: @minka2000 (the sufficient statistics and the fixed point), @rocklin2015 (Dask),
@robbins1956 and @efron1975 (empirical Bayes).
"""

from __future__ import annotations

import json
import os
import threading
import time
import tracemalloc
from collections.abc import Iterable, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import psutil
import pyarrow as pa
import pyarrow.parquet as pq
from scipy import special

from hbm.book.data import GENRES, DataError
from hbm.eb import (
    DirichletMultinomialFit,
    DMSuffStats,
    dirichlet_multinomial_suffstats,
    fit_dirichlet_multinomial_from_suffstats,
)
from hbm.book.simulate import REGION_KAPPA, REGION_PROFILES, REGIONS

__all__ = [
    "EVENT_SCHEMA",
    "SCHEDULER_ENV",
    "PlayLog",
    "simulate_chunk",
    "events_table",
    "write_play_log",
    "read_play_log",
    "simulate_counts",
    "local_client",
    "cluster_client",
    "partial_user_counts",
    "CountBlock",
    "count_into",
    "count_files",
    "event_files",
    "max_user_id",
    "user_count_blocks",
    "user_genre_counts",
    "RegionStats",
    "region_suffstats",
    "block_suffstats",
    "streaming_suffstats",
    "EBPriors",
    "fit_priors",
    "posterior_arrays",
    "posterior_partition",
    "write_posterior_block",
    "write_posteriors",
    "read_posteriors",
    "PeakMemory",
    "traced_peak",
    "reset_peak_rss",
    "peak_rss",
    "ClusterPeaks",
    "ScaleRun",
    "run_eb",
    "bench_summary",
]

#: Columns of the play-event log: one row per play.
EVENT_SCHEMA = pa.schema([("user_id", pa.int32()), ("region", pa.int8()), ("genre", pa.int8())])

#: Environment variable naming the scheduler of a Dask cluster to run on.
SCHEDULER_ENV = "DASK_SCHEDULER_ADDRESS"

_LOG_META = "log.json"
_EVENTS = "events"


# =========================================================================== #
# 1. Simulated play-event logs, partitioned by time
# =========================================================================== #
@dataclass(frozen=True)
class PlayLog:
    """A play-event log on disk: ``<path>/events/part-*.parquet`` and ``<path>/log.json``.

    Attributes
    ----------
    path : pathlib.Path
        The log's directory.
    n_users, n_events, n_files : int
        Users simulated (every one has at least ``n_min >= 1`` plays), rows, Parquet files
        (time partitions).
    chunk_users : int
        Users per simulation chunk (the last chunk may hold fewer).
    nbytes : int
        Size of the Parquet files on disk.
    regions, genres : tuple of str
        Labels of the ``region`` and ``genre`` codes 0, 1, ...
    truth : dict
        The simulation's truth: ``seed``, ``n_min``, ``n_max``, ``region_weights`` and per
        region ``{"region", "p": {genre: p}, "kappa", "alpha": {genre: kappa p}}``.
    seconds : float
        Wall time of the generation.
    """

    path: Path
    n_users: int
    n_events: int
    n_files: int
    chunk_users: int
    nbytes: int
    regions: tuple[str, ...]
    genres: tuple[str, ...]
    truth: dict = field(repr=False)
    seconds: float = 0.0

    @property
    def events_path(self) -> Path:
        """Directory of the Parquet files."""
        return self.path / _EVENTS

    def true_alpha(self) -> np.ndarray:
        """True Dirichlet concentration ``kappa_r p_r`` of every region, shape (R, K)."""
        return np.array([[r["alpha"][g] for g in self.genres] for r in self.truth["regions"]])


def _spec(regions, profiles, kappa, region_weights) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Region labels, their weights and the (R, K) Dirichlet parameters kappa_r p_r."""
    regions = list(regions)
    profiles = REGION_PROFILES if profiles is None else profiles
    kappa = REGION_KAPPA if kappa is None else kappa
    missing = [r for r in regions if r not in profiles or r not in kappa]
    if missing:
        raise ValueError(f"no profile or kappa for region(s) {missing}")
    p = np.array([profiles[r] for r in regions], dtype=np.float64)
    if p.shape[1] != len(GENRES) or not np.allclose(p.sum(axis=1), 1.0):
        raise ValueError(f"each profile must be {len(GENRES)} probabilities summing to 1")
    k = np.array([kappa[r] for r in regions], dtype=np.float64)
    if np.any(k <= 0):
        raise ValueError("kappa must be positive")
    w = np.full(len(regions), 1.0 / len(regions)) if region_weights is None else np.asarray(
        region_weights, dtype=np.float64)
    if w.shape != (len(regions),) or np.any(w < 0) or not np.isclose(w.sum(), 1.0):
        raise ValueError("region_weights must be one non-negative weight per region, summing to 1")
    return regions, w, k[:, None] * p


def simulate_chunk(first_user: int, n_users: int, rng: np.random.Generator, alpha: np.ndarray,
                   region_weights: np.ndarray, n_min: int, n_max: int):
    r"""Simulate one chunk of users: ids, regions and genre counts.

    For user ``i``: region ``r_i ~ Categorical(w)``; genre shares
    ``theta_i ~ Dirichlet(alpha_{r_i})`` with ``alpha_r = kappa_r p_r``; total plays ``n_i``
    log-uniform on ``[n_min, n_max]`` (rounded); ``x_i ~ Multinomial(n_i, theta_i)``
    [@mosimann1962]. With ``n_min = 1, n_max = 100`` the mean is
    ``(n_max - n_min) / log(n_max / n_min) = 21.5`` plays per user.

    Parameters
    ----------
    first_user, n_users : int
        Ids are ``first_user, ..., first_user + n_users - 1``.
    rng : numpy.random.Generator
    alpha : ndarray, shape (R, K)
        Regional Dirichlet parameters.
    region_weights : ndarray, shape (R,)
    n_min, n_max : int
        Range of the total plays, ``1 <= n_min <= n_max``.

    Returns
    -------
    user_id : ndarray of int32, shape (n_users,)
    region : ndarray of int8, shape (n_users,)
    counts : ndarray of int64, shape (n_users, K)
    """
    if not 1 <= n_min <= n_max:
        raise ValueError("need 1 <= n_min <= n_max")
    if first_user + n_users > np.iinfo(np.int32).max:
        raise ValueError("user ids must fit in int32")
    user_id = np.arange(first_user, first_user + n_users, dtype=np.int32)
    region = rng.choice(len(region_weights), size=n_users, p=region_weights).astype(np.int8)
    theta = np.empty((n_users, alpha.shape[1]))
    for r in range(alpha.shape[0]):
        rows = region == r
        theta[rows] = rng.dirichlet(alpha[r], size=int(rows.sum()))
    lo, hi = np.log(n_min), np.log(n_max)
    totals = np.clip(np.rint(np.exp(rng.uniform(lo, hi, size=n_users))), n_min, n_max).astype(np.int64)
    counts = rng.multinomial(totals, theta)
    return user_id, region, counts


def events_table(user_id, region, counts, rng: np.random.Generator | None = None) -> pa.Table:
    """Expand per-user genre counts into one row per play (``EVENT_SCHEMA``).

    Parameters
    ----------
    user_id, region : ndarray, shape (n_users,)
    counts : ndarray, shape (n_users, K)
        ``counts[i, k]`` rows with ``user_id[i]``, ``region[i]`` and genre code ``k``.
    rng : numpy.random.Generator, optional
        If given, the rows are shuffled (a log ordered by time, not by user).

    Returns
    -------
    pyarrow.Table
    """
    counts = np.asarray(counts)
    n_users, k = counts.shape
    totals = counts.sum(axis=1)
    uid = np.repeat(np.asarray(user_id, dtype=np.int32), totals)
    reg = np.repeat(np.asarray(region, dtype=np.int8), totals)
    genre = np.repeat(np.tile(np.arange(k, dtype=np.int8), n_users), counts.ravel())
    if rng is not None:
        order = rng.permutation(uid.size)
        uid, reg, genre = uid[order], reg[order], genre[order]
    return pa.Table.from_arrays([pa.array(uid), pa.array(reg), pa.array(genre)], schema=EVENT_SCHEMA)


def _chunk_rng(seed: int, index: int) -> np.random.Generator:
    """The generator of chunk ``index``: independent streams from one seed (SeedSequence spawn)."""
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(index,)))


def _chunk_bounds(n_users: int, chunk_users: int) -> list[tuple[int, int]]:
    """(first user, users) of every chunk."""
    return [(s, min(chunk_users, n_users - s)) for s in range(0, n_users, chunk_users)]


def _slot_rng(seed: int, slot: int) -> np.random.Generator:
    """The generator that shuffles time partition ``slot`` (a stream distinct from every chunk's)."""
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(slot, 1)))


def _stage_chunk(staging_dir: str, index: int, first: int, size: int, seed: int, alpha, weights,
                 n_min: int, n_max: int, n_files: int) -> tuple[int, list[int]]:
    """Simulate chunk ``index``, give every play a time partition, stage it by partition.

    The staged file holds one row group per non-empty time partition, in partition order.
    Returns (events, row group of each partition or -1 where the chunk has none).
    """
    rng = _chunk_rng(seed, index)
    uid, reg, counts = simulate_chunk(first, size, rng, alpha, weights, n_min, n_max)
    table = events_table(uid, reg, counts)
    slot = rng.integers(0, n_files, size=table.num_rows, dtype=np.int32)
    table = table.take(pa.array(np.argsort(slot, kind="stable")))
    bounds = np.concatenate([[0], np.cumsum(np.bincount(slot, minlength=n_files))])
    groups, written = [], 0
    path = os.path.join(staging_dir, f"chunk-{index:05d}.parquet")
    with pq.ParquetWriter(path, EVENT_SCHEMA, compression="lz4") as writer:
        for t in range(n_files):
            rows = int(bounds[t + 1] - bounds[t])
            if rows:
                writer.write_table(table.slice(int(bounds[t]), rows), row_group_size=rows)
                groups.append(written)
                written += 1
            else:
                groups.append(-1)
    return table.num_rows, groups


def _write_slot(events_dir: str, staging_dir: str, slot: int, groups, seed: int,
                shuffle: bool) -> int:
    """Gather time partition ``slot`` from every staged chunk, shuffle it, write it; return bytes."""
    parts = [pq.ParquetFile(os.path.join(staging_dir, f"chunk-{j:05d}.parquet")).read_row_group(g[slot])
             for j, g in enumerate(groups) if g[slot] >= 0]
    table = pa.concat_tables(parts) if parts else EVENT_SCHEMA.empty_table()
    if shuffle and table.num_rows:
        table = table.take(pa.array(_slot_rng(seed, slot).permutation(table.num_rows)))
    path = os.path.join(events_dir, f"part-{slot:05d}.parquet")
    pq.write_table(table.combine_chunks(), path, compression="zstd")
    return os.path.getsize(path)


def write_play_log(out_dir, n_users: int, *, seed: int, chunk_users: int = 250_000,
                   n_files: int | None = None, n_min: int = 1, n_max: int = 100,
                   regions: Sequence[str] = REGIONS, profiles: Mapping | None = None,
                   kappa: Mapping | None = None, region_weights=None, shuffle: bool = True,
                   client=None) -> PlayLog:
    """Simulate a play-event log and write it as Parquet, partitioned by time.

    Users are simulated chunk by chunk: chunk ``j`` (users ``j * chunk_users`` onwards) by
    :func:`simulate_chunk` from its own generator (``SeedSequence(seed, spawn_key=(j,))``),
    expanded to one row per play by :func:`events_table`. Every play then falls in one of
    ``n_files`` time partitions, uniformly at random, and time partition ``t`` is written to
    ``events/part-<t>.parquet`` (zstd; rows shuffled, as plays arrive in time, not by user).
    So *every file holds plays of nearly every user*, and a user's counts are a sum over all
    files: counting needs a reduction across files, as with a real log partitioned by day.

    Generation runs in two passes: each chunk is staged to ``<out_dir>/_staging`` sorted by
    time partition, then each time partition is gathered from the staged chunks and written
    (the staging is deleted). Peak memory is that of one chunk or one time partition per
    worker; the files are the same whichever worker writes them, and are reproducible for a
    given ``seed``, ``chunk_users`` and ``n_files``.

    Parameters
    ----------
    out_dir : path-like
        A new or empty directory (created if needed).
    n_users : int
        Number of users (ids ``0 .. n_users - 1``).
    seed : int
        Seed of the whole log.
    chunk_users : int
        Users per simulation chunk.
    n_files : int, optional
        Time partitions (Parquet files); default one per simulation chunk.
    n_min, n_max : int
        Range of each user's total plays (log-uniform).
    regions : sequence of str
        Region labels (codes 0, 1, ... in this order).
    profiles, kappa : mapping, optional
        Region -> genre profile ``p_r`` and concentration ``kappa_r``; default
        :data:`hbm.book.simulate.REGION_PROFILES` and :data:`hbm.book.simulate.REGION_KAPPA`.
    region_weights : array-like, optional
        Share of users in each region (default equal).
    shuffle : bool
        Shuffle the rows within each file (otherwise they are ordered by user).
    client : distributed.Client, optional
        Runs both passes on its workers in parallel (the output directory must be reachable
        by every worker); without one everything runs here, one task after the other.

    Returns
    -------
    PlayLog
        Also recorded in ``<out_dir>/log.json`` (see :func:`read_play_log`).

    Raises
    ------
    ValueError
        Bad sizes or region specification, or a non-empty ``events`` directory.
    """
    import shutil

    start = time.perf_counter()
    if n_users < 1 or chunk_users < 1:
        raise ValueError("n_users and chunk_users must be positive")
    if n_users > np.iinfo(np.int32).max:
        raise ValueError("user ids must fit in int32")
    regions, weights, alpha = _spec(regions, profiles, kappa, region_weights)
    if not 1 <= n_min <= n_max:
        raise ValueError("need 1 <= n_min <= n_max")
    bounds = _chunk_bounds(n_users, chunk_users)
    n_files = len(bounds) if n_files is None else int(n_files)
    if n_files < 1:
        raise ValueError("n_files must be positive")
    out = Path(out_dir)
    events_dir = out / _EVENTS
    events_dir.mkdir(parents=True, exist_ok=True)
    if any(events_dir.iterdir()):
        raise ValueError(f"{events_dir} is not empty: write a log into a new directory")
    staging = out / "_staging"
    staging.mkdir(exist_ok=True)

    def run_all(func, arg_lists):
        if client is None:
            return [func(*a) for a in arg_lists]
        return client.gather([client.submit(func, *a, pure=False) for a in arg_lists])

    try:
        staged = run_all(_stage_chunk, [(str(staging), j, first, size, int(seed), alpha, weights,
                                         n_min, n_max, n_files)
                                        for j, (first, size) in enumerate(bounds)])
        groups = [g for _, g in staged]
        sizes = run_all(_write_slot, [(str(events_dir), str(staging), t, groups, int(seed), shuffle)
                                      for t in range(n_files)])
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    n_events = sum(s[0] for s in staged)
    nbytes = sum(sizes)
    truth = {
        "generator": "hbm.book.scale.write_play_log",
        "partitioning": "time",
        "seed": int(seed),
        "n_min": int(n_min),
        "n_max": int(n_max),
        "region_weights": [float(w) for w in weights],
        "regions": [
            {
                "region": r,
                "p": dict(zip(GENRES, (alpha[i] / alpha[i].sum()).tolist())),
                "kappa": float(alpha[i].sum()),
                "alpha": dict(zip(GENRES, alpha[i].tolist())),
            }
            for i, r in enumerate(regions)
        ],
    }
    log = PlayLog(out, n_users, n_events, n_files, chunk_users, nbytes, tuple(regions),
                  tuple(GENRES), truth, time.perf_counter() - start)
    meta = {"n_users": n_users, "n_events": n_events, "n_files": n_files,
            "chunk_users": chunk_users, "nbytes": nbytes, "regions": list(regions),
            "genres": list(GENRES), "truth": truth, "seconds": log.seconds}
    (out / _LOG_META).write_text(json.dumps(meta, indent=1) + "\n", encoding="utf-8")
    return log


def read_play_log(path) -> PlayLog:
    """The :class:`PlayLog` written by :func:`write_play_log` into ``path``.

    Raises
    ------
    DataError
        ``<path>/log.json`` is missing or not a log description.
    """
    path = Path(path)
    meta_path = path / _LOG_META
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        return PlayLog(path, meta["n_users"], meta["n_events"], meta["n_files"],
                       meta["chunk_users"], meta["nbytes"], tuple(meta["regions"]),
                       tuple(meta["genres"]), meta["truth"], meta["seconds"])
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise DataError(str(meta_path), f"not a play-event log description ({err})") from err


def simulate_counts(log: PlayLog) -> pd.DataFrame:
    """Recompute a log's per-user counts in memory, without reading its events.

    Re-runs :func:`simulate_chunk` with each chunk's generator, so the result is what
    aggregating the events must give. Meant for checks at small sizes (it holds every user).

    Returns
    -------
    pandas.DataFrame
        ``user_id``, ``region`` (code) and one count column per genre, sorted by user.
    """
    alpha = log.true_alpha()
    weights = np.asarray(log.truth["region_weights"], dtype=np.float64)
    frames = []
    for j, (first, size) in enumerate(_chunk_bounds(log.n_users, log.chunk_users)):
        uid, reg, x = simulate_chunk(first, size, _chunk_rng(log.truth["seed"], j), alpha, weights,
                                     log.truth["n_min"], log.truth["n_max"])
        frame = pd.DataFrame({"user_id": uid.astype(np.int64), "region": reg})
        for k, g in enumerate(log.genres):
            frame[g] = x[:, k]
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)



# =========================================================================== #
# 2. Events to per-user counts: per-file dense counts, tree-summed
# =========================================================================== #
@contextmanager
def local_client(n_workers: int = 1, threads_per_worker: int | None = None, memory_limit="auto",
                 processes: bool = True):
    """A :class:`distributed.Client` on a local cluster, closed on exit.

    The default is one worker process with a thread per core: the counting kernel, Parquet
    decoding and NumPy release the GIL, so threads share the per-user arrays without
    copying them, and the client stays a separate process (its memory is measured apart
    from the workers'). No dashboard is started and no fixed port is taken, and the cluster's log
    messages below errors are silenced.

    Parameters
    ----------
    n_workers : int
        Worker processes.
    threads_per_worker : int, optional
        Threads in each; default the cores divided among the workers (at least one).
    memory_limit : str or int
        Memory per worker before Dask spills to disk (``"auto"``: the machine's memory
        divided among the workers).
    processes : bool
        Workers in their own processes (default) or as threads of this process.

    Yields
    ------
    distributed.Client
    """
    import logging

    from distributed import Client, LocalCluster

    if threads_per_worker is None:
        threads_per_worker = max(1, (os.cpu_count() or 1) // n_workers)
    # No dashboard; the scheduler's plain HTTP server (which distributed starts even so, on port
    # 8787 by default) listens on a free loopback port, so a second cluster (another job, a test)
    # never collides with it and prints no "Port 8787 is already in use" warning.
    cluster = LocalCluster(n_workers=n_workers, threads_per_worker=threads_per_worker,
                           processes=processes, memory_limit=memory_limit, dashboard_address=None,
                           scheduler_kwargs={"dashboard": False, "dashboard_address": "127.0.0.1:0"},
                           silence_logs=logging.ERROR)
    client = Client(cluster)
    try:
        yield client
    finally:
        client.close()
        cluster.close()


@contextmanager
def cluster_client(client=None, address: str | None = None):
    """The client to compute with, for the duration of the block.

    In order: ``client`` if given; else a client connected to the scheduler at
    ``address`` or at the environment variable ``DASK_SCHEDULER_ADDRESS`` (a multi-machine
    cluster, e.g. ``tcp://10.0.0.5:8786`` started with ``dask scheduler`` and
    ``dask worker tcp://10.0.0.5:8786`` on each machine); else a :func:`local_client`.
    Clients created here are closed on exit.

    Yields
    ------
    distributed.Client
    """
    if client is not None:
        yield client
        return
    address = address or os.environ.get(SCHEDULER_ENV)
    if address:
        from distributed import Client

        with Client(address) as remote:
            yield remote
    else:
        with local_client() as local:
            yield local


_client_or_local = cluster_client


def _counts_meta(genres: Sequence[str]) -> pd.DataFrame:
    """Empty frame with the columns and dtypes of :func:`partial_user_counts`."""
    cols = {"user_id": np.array([], np.int64), "region": np.array([], np.int8)}
    cols.update({g: np.array([], np.int64) for g in genres})
    return pd.DataFrame(cols)


def partial_user_counts(events: pd.DataFrame, genres: Sequence[str] = GENRES,
                        source: str = "play-event log") -> pd.DataFrame:
    """Per-user genre counts of one in-memory frame of events (pure NumPy, no groupby).

    A reference and a convenience for small frames; the Dask job uses :func:`count_files`.
    With ``span = max(user_id) - min(user_id) + 1`` at most four times the number of rows the
    counts are one ``np.bincount`` of ``(user_id - min) * K + genre``; otherwise user ids are
    first compressed with ``np.unique``.

    Parameters
    ----------
    events : pandas.DataFrame
        Columns ``user_id``, ``region``, ``genre`` (codes ``0..K-1``).
    genres : sequence of str
        Labels of the genre codes.
    source : str
        Named in error messages.

    Returns
    -------
    pandas.DataFrame
        ``user_id`` (int64), ``region`` (int8) and one int64 count column per genre, one row
        per user present, sorted by ``user_id``.

    Raises
    ------
    DataError
        Genre codes outside ``0..K-1``, negative ids, or a user with two regions.
    """
    k = len(genres)
    uid = events["user_id"].to_numpy().astype(np.int64, copy=False)
    genre = events["genre"].to_numpy().astype(np.int64, copy=False)
    region = events["region"].to_numpy().astype(np.int8, copy=False)
    if uid.size == 0:
        return _counts_meta(genres)
    if genre.min() < 0 or genre.max() >= k:
        bad = genre[(genre < 0) | (genre >= k)][0]
        raise DataError(source, f"column 'genre' must hold codes 0..{k - 1} ({', '.join(genres)}); "
                        f"found {bad}", column="genre")
    lo, hi = int(uid.min()), int(uid.max())
    if lo < 0:
        raise DataError(source, f"column 'user_id' must hold non-negative ids; found {lo}",
                        column="user_id")
    span = hi - lo + 1
    if span <= 4 * uid.size:
        ids, idx = np.arange(lo, hi + 1, dtype=np.int64), uid - lo
    else:
        ids, idx = np.unique(uid, return_inverse=True)
    x = np.bincount(idx * k + genre, minlength=ids.size * k).reshape(ids.size, k)
    reg = np.full(ids.size, -1, dtype=np.int8)
    reg[idx] = region
    if not np.array_equal(reg[idx], region):
        clash = ids[idx[reg[idx] != region][0]]
        raise DataError(source, f"column 'region': user {clash} has plays in two regions",
                        column="region")
    present = reg >= 0
    out = pd.DataFrame({"user_id": ids[present], "region": reg[present]})
    for j, g in enumerate(genres):
        out[g] = x[present, j].astype(np.int64)
    return out


@dataclass(frozen=True, eq=False)
class CountBlock:
    """Genre counts of a contiguous block of users ``first .. first + n - 1``.

    Attributes
    ----------
    first : int
        Id of the block's first user.
    counts : ndarray of int32, shape (n, K)
        ``counts[i, k]`` = plays of genre ``k`` by user ``first + i``.
    region : ndarray of int8, shape (n,)
        Region code of each user; ``-1`` for an id without plays in the log.
    """

    first: int
    counts: np.ndarray
    region: np.ndarray

    @property
    def n_users(self) -> int:
        """Users with at least one play."""
        return int(np.count_nonzero(self.region >= 0))

    @property
    def nbytes(self) -> int:
        """Memory of the arrays."""
        return self.counts.nbytes + self.region.nbytes

    def frame(self, genres: Sequence[str] = GENRES) -> pd.DataFrame:
        """The users with plays as a frame like :func:`partial_user_counts`'s."""
        present = np.flatnonzero(self.region >= 0)
        out = pd.DataFrame({"user_id": (present + self.first).astype(np.int64),
                            "region": self.region[present]})
        for j, g in enumerate(genres):
            out[g] = self.counts[present, j].astype(np.int64)
        return out


_KERNEL = None


def _count_kernel():
    """The Numba counting loop (compiled on first use, cached on disk), or None without Numba."""
    global _KERNEL
    if _KERNEL is None:
        try:
            import numba
        except ImportError:  # pragma: no cover - numba comes with pytensor
            _KERNEL = False
            return None

        @numba.njit(nogil=True, cache=True)
        def kernel(counts, region_of, uid, genre, region):  # pragma: no cover - compiled
            n_users, k = counts.shape
            for i in range(uid.size):
                u, g, r = uid[i], genre[i], region[i]
                if u < 0 or u >= n_users:
                    return 1, i
                if g < 0 or g >= k:
                    return 2, i
                counts[u, g] += 1
                seen = region_of[u]
                if seen != r:
                    if seen >= 0 or r < 0:
                        return 3, i
                    region_of[u] = r
            return 0, -1

        _KERNEL = kernel
    return _KERNEL or None


def count_into(counts: np.ndarray, region_of: np.ndarray, uid, genre, region,
               source: str = "play-event log") -> None:
    r"""Add a batch of play events to dense per-user counts, in place.

    For every event ``e``: ``counts[u_e, g_e] += 1`` and ``region_of[u_e] = r_e``, one pass
    over the events with a Numba loop that releases the GIL (without Numba:
    ``np.add.at``). Memory is that of ``counts``, whatever the number of events.

    Parameters
    ----------
    counts : ndarray of int32, shape (n_users, K)
    region_of : ndarray of int8, shape (n_users,)
        ``-1`` for users not seen yet.
    uid, genre, region : ndarray
        One entry per event (``int32``, ``int8``, ``int8``).
    source : str
        Named in error messages.

    Raises
    ------
    DataError
        A user id outside ``0 .. n_users - 1``, a genre code outside ``0 .. K - 1``, or a
        user with plays in two regions (counts before the offending event are kept).
    """
    uid = np.ascontiguousarray(uid, dtype=np.int32)
    genre = np.ascontiguousarray(genre, dtype=np.int8)
    region = np.ascontiguousarray(region, dtype=np.int8)
    kernel = _count_kernel()
    if kernel is not None:
        status, i = kernel(counts, region_of, uid, genre, region)
    else:  # pragma: no cover - numba comes with pytensor
        status, i = _count_numpy(counts, region_of, uid, genre, region)
    if status == 1:
        raise DataError(source, f"column 'user_id' must hold ids 0..{counts.shape[0] - 1}; "
                        f"found {uid[i]}", column="user_id")
    if status == 2:
        raise DataError(source, f"column 'genre' must hold codes 0..{counts.shape[1] - 1}; "
                        f"found {genre[i]}", column="genre")
    if status == 3:
        raise DataError(source, f"column 'region': user {uid[i]} has plays in two regions",
                        column="region")


def _count_numpy(counts, region_of, uid, genre, region) -> tuple[int, int]:
    """NumPy version of the counting loop (same checks, same status codes)."""
    n_users, k = counts.shape
    bad = np.flatnonzero((uid < 0) | (uid >= n_users))
    if bad.size:
        return 1, int(bad[0])
    bad = np.flatnonzero((genre < 0) | (genre >= k))
    if bad.size:
        return 2, int(bad[0])
    np.add.at(counts.reshape(-1), uid.astype(np.int64) * k + genre, 1)
    seen = region_of[uid]
    bad = np.flatnonzero(((seen >= 0) & (seen != region)) | (region < 0))
    region_of[uid] = region
    if bad.size or not np.array_equal(region_of[uid], region):
        return 3, int(bad[0]) if bad.size else 0
    return 0, -1


_EVENT_COLUMNS = ["user_id", "genre", "region"]


def count_files(paths: Sequence, n_users: int, n_genres: int = len(GENRES)) -> tuple[np.ndarray, np.ndarray]:
    """Dense per-user counts of the plays in some Parquet files (one task of the reduction).

    Each file is read one row group at a time with PyArrow (three columns, no pandas) and
    added by :func:`count_into`, so memory is the ``(n_users, K)`` int32 counts plus one row
    group of events.

    Returns
    -------
    counts : ndarray of int32, shape (n_users, K)
    region_of : ndarray of int8, shape (n_users,)
    """
    counts = np.zeros((n_users, n_genres), dtype=np.int32)
    region_of = np.full(n_users, -1, dtype=np.int8)
    for path in paths:
        pf = pq.ParquetFile(path)
        for rg in range(pf.num_row_groups):
            batch = pf.read_row_group(rg, columns=_EVENT_COLUMNS, use_threads=False)
            cols = [batch.column(c).to_numpy() for c in _EVENT_COLUMNS]
            count_into(counts, region_of, *cols, source=str(path))
    return counts, region_of


def _block_views(partial, bounds) -> tuple:
    """Split a (counts, region_of) pair into per-block views (no copy)."""
    counts, region_of = partial
    return tuple((counts[a:b], region_of[a:b]) for a, b in bounds)


def _add_parts(*parts) -> tuple[np.ndarray, np.ndarray]:
    """Sum several (counts, region_of) pieces of the same users; regions must agree."""
    counts = parts[0][0].copy()
    region_of = parts[0][1].copy()
    for c, r in parts[1:]:
        counts += c
        clash = (region_of >= 0) & (r >= 0) & (region_of != r)
        if clash.any():
            raise DataError("play-event log", "column 'region': user with plays in two regions "
                            f"(block offset {int(np.flatnonzero(clash)[0])})", column="region")
        np.maximum(region_of, r, out=region_of)
    return counts, region_of


def _to_block(first: int, part) -> CountBlock:
    return CountBlock(int(first), part[0], part[1])


def event_files(events_path) -> list[str]:
    """The Parquet files of a log directory (``*.parquet``, sorted), or a list given as is."""
    if isinstance(events_path, (list, tuple)):
        return [str(p) for p in events_path]
    path = Path(events_path)
    if path.is_file():
        return [str(path)]
    files = sorted(str(p) for p in path.glob("*.parquet"))
    if not files:
        raise DataError(str(path), "no Parquet files (*.parquet) in the event log directory")
    return files


def max_user_id(files: Sequence[str]) -> int:
    """Largest ``user_id`` in the files, from the Parquet row-group statistics (no data read)."""
    top = -1
    for f in files:
        meta = pq.ParquetFile(f).metadata
        col = meta.schema.names.index("user_id")
        for rg in range(meta.num_row_groups):
            st = meta.row_group(rg).column(col).statistics
            if st is None or not st.has_min_max:
                top = max(top, int(pq.read_table(f, columns=["user_id"])["user_id"].to_numpy().max(initial=-1)))
                break
            top = max(top, int(st.max))
    return top


def _split(n: int, parts: int) -> list[tuple[int, int]]:
    """``parts`` contiguous (start, stop) ranges covering ``0 .. n - 1`` (none empty)."""
    edges = np.linspace(0, n, min(parts, n) + 1).astype(np.int64)
    return [(int(a), int(b)) for a, b in zip(edges[:-1], edges[1:])]


def user_count_blocks(events_path, n_users: int | None = None, genres: Sequence[str] = GENRES, *,
                      n_groups: int = 2, block_users: int = 1_000_000, fan_in: int = 4) -> list:
    r"""Lazy per-user genre counts of a Parquet event log: a list of ``dask.delayed`` blocks.

    User ids must be dense integers ``0 .. n_users - 1`` (a user table's row numbers). The
    log's files are split into ``n_groups`` groups (one per worker thread is best); a task
    per group reads its files and adds every play into one dense ``(n_users, K)`` int32
    array (:func:`count_files`). The group arrays are then summed block of users by block of
    users, in a tree of ``fan_in`` pieces at a time, so that the result is a list of
    :class:`CountBlock` that live on the workers. A user's plays may lie in any number of
    files; memory is ``(n_groups + 1) * n_users * K`` int32 counts at most, whatever the
    number of events.

    .. math:: x_{ik} = \sum_{f} \#\{e \in f : u_e = i, g_e = k\}

    Parameters
    ----------
    events_path : path-like, or list of paths
        Directory of Parquet files with ``EVENT_SCHEMA`` (local or on a file system shared
        by all workers), or the files.
    n_users : int, optional
        Number of user ids; default ``max(user_id) + 1`` from the files' statistics.
    genres : sequence of str
        Labels of the genre codes ``0 .. K - 1``.
    n_groups : int
        Counting tasks (each holds one dense array).
    block_users : int
        Users per output block (and per posterior file).
    fan_in : int
        Pieces added per task of the tree reduction.

    Returns
    -------
    list of dask.delayed.Delayed
        Each computes to a :class:`CountBlock`; together they cover ids ``0 .. n_users - 1``.
    """
    import dask

    files = event_files(events_path)
    if n_users is None:
        n_users = max_user_id(files) + 1
    if n_users < 1:
        raise DataError(str(events_path), "the event log has no plays")
    groups = [files[a:b] for a, b in _split(len(files), max(1, n_groups))]
    bounds = _split(n_users, max(1, -(-n_users // block_users), n_groups))
    partials = [dask.delayed(count_files, pure=True)(g, n_users, len(genres)) for g in groups]
    pieces = [dask.delayed(_block_views, nout=len(bounds), pure=True)(p, bounds) for p in partials]
    blocks = []
    for b, (first, _) in enumerate(bounds):
        level = [p[b] for p in pieces]
        while len(level) > 1:
            level = [dask.delayed(_add_parts, pure=True)(*level[i:i + fan_in]) if len(level[i:i + fan_in]) > 1
                     else level[i] for i in range(0, len(level), fan_in)]
        blocks.append(dask.delayed(_to_block, pure=True)(first, level[0]))
    return blocks


def _total_threads(client) -> int:
    """Worker threads of a cluster."""
    return max(1, sum(client.nthreads().values()))


def user_genre_counts(events_path, genres: Sequence[str] = GENRES, *, n_users: int | None = None,
                      client=None) -> pd.DataFrame:
    """Every user's genre counts from a Parquet event log, as one pandas frame (small logs).

    Computes :func:`user_count_blocks` on the cluster (:func:`cluster_client`) and brings
    the users with plays back to this process.

    Returns
    -------
    pandas.DataFrame
        Index ``user_id``; columns ``region`` and one count per genre.
    """
    with cluster_client(client) as c:
        lazy = user_count_blocks(events_path, n_users, genres, n_groups=_total_threads(c))
        blocks = c.compute(lazy, sync=True)
    frame = pd.concat([b.frame(genres) for b in blocks], ignore_index=True)
    return frame.set_index("user_id")


# =========================================================================== #
# 3. Streaming sufficient statistics
# =========================================================================== #
@dataclass(frozen=True)
class RegionStats:
    """Dirichlet-multinomial sufficient statistics of every region.

    Attributes
    ----------
    regions : tuple of str
    by_region : tuple of (DMSuffStats or None)
        One per region (None for a region without users).
    """

    regions: tuple[str, ...]
    by_region: tuple

    def __add__(self, other: "RegionStats") -> "RegionStats":
        if self.regions != other.regions:
            raise ValueError("cannot add statistics of different regions")
        merged = tuple(a if b is None else b if a is None else a + b
                       for a, b in zip(self.by_region, other.by_region))
        return RegionStats(self.regions, merged)

    def region(self, name: str) -> DMSuffStats:
        """The statistics of one region (ValueError if it has no users)."""
        stats = self.by_region[self.regions.index(name)]
        if stats is None:
            raise ValueError(f"region {name!r} has no users")
        return stats

    @property
    def overall(self) -> DMSuffStats:
        """The statistics of all users: the sum over regions."""
        return sum(s for s in self.by_region if s is not None)

    @property
    def n_users(self) -> int:
        """Users summarised."""
        return sum(s.n_units for s in self.by_region if s is not None)

    @property
    def nbytes(self) -> int:
        """Memory of all histograms (the whole input of the EB fit)."""
        return sum(s.count_hist.nbytes + s.total_hist.nbytes for s in self.by_region if s is not None)


def region_suffstats(counts: pd.DataFrame, regions: Sequence[str],
                     genres: Sequence[str] = GENRES) -> RegionStats:
    """Sufficient statistics of each region in one frame of per-user counts.

    Parameters
    ----------
    counts : pandas.DataFrame
        ``region`` codes and one count column per genre (e.g. a partition of
        :func:`user_genre_counts`).
    regions, genres : sequence of str

    Returns
    -------
    RegionStats
        :func:`hbm.eb.dirichlet_multinomial_suffstats` of each region's rows.
    """
    x = counts[list(genres)].to_numpy(np.int64)
    code = counts["region"].to_numpy()
    out = []
    for r in range(len(regions)):
        rows = code == r
        out.append(dirichlet_multinomial_suffstats(x[rows]) if rows.any() else None)
    return RegionStats(tuple(regions), tuple(out))


def block_suffstats(block: "CountBlock", regions: Sequence[str]) -> RegionStats:
    """Sufficient statistics of each region in one :class:`CountBlock` (no pandas).

    One ``np.bincount`` of ``region * W + x_ik`` per genre and one of ``region * T + n_i``
    (``W``, ``T``: one more than the largest count and total), so the cost is O(users * K)
    and the result equals :func:`region_suffstats` of the same users (up to zero padding).

    Returns
    -------
    RegionStats
    """
    n_regions = len(regions)
    present = block.region >= 0
    x = block.counts if present.all() else block.counts[present]
    code = (block.region if present.all() else block.region[present]).astype(np.int64)
    if x.shape[0] == 0:
        return RegionStats(tuple(regions), (None,) * n_regions)
    totals = x.sum(axis=1, dtype=np.int64)
    width, t_width = int(x.max()) + 1, int(totals.max()) + 1
    users = np.bincount(code, minlength=n_regions)
    ch = np.empty((n_regions, x.shape[1], width), dtype=np.int64)
    for k in range(x.shape[1]):
        ch[:, k, :] = np.bincount(code * width + x[:, k], minlength=n_regions * width).reshape(n_regions, width)
    th = np.bincount(code * t_width + totals, minlength=n_regions * t_width).reshape(n_regions, t_width)
    out = tuple(DMSuffStats(ch[r], th[r], int(users[r])) if users[r] else None for r in range(n_regions))
    return RegionStats(tuple(regions), out)


def _merge(stats: Iterable[RegionStats]) -> RegionStats:
    """Sum of several RegionStats."""
    stats = list(stats)
    total = stats[0]
    for s in stats[1:]:
        total = total + s
    return total


def _as_futures(c, counts) -> list:
    """Futures of a list of CountBlocks given as futures, delayed objects or blocks."""
    from dask.delayed import Delayed

    counts = list(counts)
    if counts and isinstance(counts[0], Delayed):
        return c.compute(counts)
    return counts


def streaming_suffstats(counts, regions: Sequence[str], genres: Sequence[str] = GENRES, *,
                        client=None, fan_in: int = 8) -> RegionStats:
    """Reduce per-user counts to regional sufficient statistics, block by block.

    Every block is summarised by :func:`block_suffstats` on the worker that holds it; the
    summaries are added in a tree (``fan_in`` at a time). Only the histograms travel: the
    per-user counts never leave the workers.

    Parameters
    ----------
    counts : list of CountBlock (futures, delayed or values), or pandas.DataFrame
        Per-user counts (:func:`user_count_blocks`, ideally computed once and kept).
    regions, genres : sequence of str
    client : distributed.Client, optional
        Default: :func:`cluster_client` (a pandas frame needs none).
    fan_in : int
        Summaries added per task.

    Returns
    -------
    RegionStats
    """
    if isinstance(counts, pd.DataFrame):
        return region_suffstats(counts, regions, genres)
    if isinstance(counts, CountBlock):
        return block_suffstats(counts, regions)
    with cluster_client(client) as c:
        parts = [c.submit(block_suffstats, b, tuple(regions), pure=False) for b in _as_futures(c, counts)]
        while len(parts) > 1:
            parts = [c.submit(_merge, parts[i:i + fan_in], pure=False) for i in range(0, len(parts), fan_in)]
        return parts[0].result()


# =========================================================================== #
# 4. The EB fit from sufficient statistics
# =========================================================================== #
@dataclass(frozen=True)
class EBPriors:
    """Global and regional Dirichlet priors fitted by marginal maximum likelihood.

    Attributes
    ----------
    regions, genres : tuple of str
    overall : hbm.eb.DirichletMultinomialFit
        One prior for all users.
    by_region : tuple of hbm.eb.DirichletMultinomialFit
        One prior per region.
    """

    regions: tuple[str, ...]
    genres: tuple[str, ...]
    overall: DirichletMultinomialFit
    by_region: tuple

    @property
    def alpha(self) -> np.ndarray:
        """Regional concentration vectors, shape (R, K)."""
        return np.array([f.alpha for f in self.by_region])

    def table(self) -> pd.DataFrame:
        """One row per prior (global first): ``kappa`` (= sum alpha) and the mean share of each genre."""
        rows = []
        for name, f in [("All users", self.overall), *zip(self.regions, self.by_region)]:
            rows.append({"prior": name, "kappa": f.concentration,
                         **{g: m for g, m in zip(self.genres, f.mean)}})
        return pd.DataFrame(rows).set_index("prior")


def fit_priors(stats: RegionStats, genres: Sequence[str] = GENRES) -> EBPriors:
    """Fit the global and every regional prior from sufficient statistics alone.

    Calls :func:`hbm.eb.fit_dirichlet_multinomial_from_suffstats` on
    ``stats.overall`` and on each region's statistics; the cost depends on the number of
    distinct counts and totals, not on the number of users.

    Raises
    ------
    ValueError
        A region without users, or a fit that did not converge.
    """
    overall = fit_dirichlet_multinomial_from_suffstats(stats.overall)
    fits = tuple(fit_dirichlet_multinomial_from_suffstats(stats.region(r)) for r in stats.regions)
    for name, f in [("all users", overall), *zip(stats.regions, fits)]:
        if not f.converged:
            raise ValueError(f"the EB fit for {name} did not converge in {f.n_iter} iterations")
    return EBPriors(stats.regions, tuple(genres), overall, fits)


# =========================================================================== #
# 5. Block-wise posteriors
# =========================================================================== #
def _posterior_schema(genres, interval_genres) -> pa.Schema:
    fields = [("user_id", pa.int32()), ("region", pa.int8()), ("n", pa.int32())]
    fields += [(f"{g}_mean", pa.float64()) for g in genres]
    for g in interval_genres:
        fields += [(f"{g}_lower", pa.float64()), (f"{g}_upper", pa.float64())]
    return pa.schema(fields)


def _posterior_meta(genres, interval_genres) -> pd.DataFrame:
    return _posterior_schema(genres, interval_genres).empty_table().to_pandas()


def _interval_by_distinct(a: np.ndarray, b_total: np.ndarray, x: np.ndarray, n: np.ndarray,
                          code: np.ndarray, q: float) -> tuple[np.ndarray, np.ndarray]:
    r"""Quantiles ``q`` and ``1 - q`` of ``Beta(a, b_total - a)``, one ``betaincinv`` per distinct case.

    ``a = alpha_rk + x_ik`` and ``b_total = A_r + n_i`` depend on a user only through
    ``(r, x_ik, n_i)``, which takes few distinct values (counts are small integers), so the
    inverse incomplete beta function is evaluated once per distinct triple and gathered.
    """
    top = int(n.max()) + 1
    key = (code.astype(np.int64) * top + n) * top + x
    size = int(code.max() + 1) * top * top
    if size <= max(4 * key.size, 1 << 16):
        seen = np.zeros(size, dtype=bool)
        seen[key] = True
        uniq = np.flatnonzero(seen)
        slot = np.zeros(size, dtype=np.int64)
        slot[uniq] = np.arange(uniq.size)
        inverse = slot[key]
        first = np.empty(uniq.size, dtype=np.int64)
        first[inverse] = np.arange(key.size)
    else:
        uniq, first, inverse = np.unique(key, return_index=True, return_inverse=True)
    a_u, b_u = a[first], b_total[first] - a[first]
    lower = special.betaincinv(a_u, b_u, q)[inverse]
    upper = special.betaincinv(a_u, b_u, 1.0 - q)[inverse]
    return lower, upper


def posterior_arrays(counts: np.ndarray, code: np.ndarray, alpha: np.ndarray,
                     interval_index: Sequence[int] = (0,), prob: float = 0.95) -> dict:
    r"""Closed-form EB posteriors of a block of users, as NumPy arrays.

    User ``i`` in region ``r`` has the conjugate posterior ``Dirichlet(alpha_r + x_i)``
    [@minka2000; @gelman2013, sec. 3.4]; with ``a_ik = alpha_rk + x_ik`` and
    ``A_i = sum_k a_ik = A_r + n_i``:

    .. math:: E[p_{ik} \mid x_i] = a_{ik} / A_i, \qquad
              p_{ik} \mid x_i \sim \mathrm{Beta}(a_{ik}, A_i - a_{ik}),

    and the equal-tailed ``prob`` interval is the Beta's ``(1 - prob) / 2`` and
    ``(1 + prob) / 2`` quantiles (``scipy.special.betaincinv``). The quantiles are computed
    once per distinct ``(r, x_ik, n_i)`` (see :func:`_interval_by_distinct`), which makes
    them as cheap as the means.

    Parameters
    ----------
    counts : ndarray, shape (n, K)
        Whole counts.
    code : ndarray of int, shape (n,)
        Region code of each user (row of ``alpha``).
    alpha : ndarray, shape (R, K)
        Regional priors.
    interval_index : sequence of int
        Genres (columns) that get an interval.
    prob : float
        Interval probability in (0, 1).

    Returns
    -------
    dict
        ``"n"`` (int32), ``"mean"`` (float64, (n, K)), ``"lower"`` and ``"upper"``
        (float64, (n, len(interval_index))).
    """
    if not 0.0 < prob < 1.0:
        raise ValueError(f"prob must lie strictly between 0 and 1, got {prob}")
    x = np.asarray(counts)
    code = np.asarray(code).astype(np.intp, copy=False)
    alpha = np.asarray(alpha, dtype=np.float64)
    n = x.sum(axis=1, dtype=np.int64)
    a = alpha[code] + x
    total = alpha.sum(axis=1)[code] + n
    mean = a / total[:, None]
    q = (1.0 - prob) / 2.0
    lower = np.empty((x.shape[0], len(interval_index)))
    upper = np.empty_like(lower)
    if x.shape[0]:
        for j, k in enumerate(interval_index):
            lower[:, j], upper[:, j] = _interval_by_distinct(a[:, k], total, x[:, k].astype(np.int64),
                                                             n, code, q)
    return {"n": n.astype(np.int32), "mean": mean, "lower": lower, "upper": upper}


def _posterior_table(user_id, code, counts, alpha, genres, interval_genres, prob) -> pa.Table:
    genres = list(genres)
    post = posterior_arrays(counts, code, alpha, [genres.index(g) for g in interval_genres], prob)
    cols = [np.asarray(user_id, dtype=np.int32), np.asarray(code, dtype=np.int8), post["n"]]
    cols += [post["mean"][:, k] for k in range(len(genres))]
    for j in range(len(interval_genres)):
        cols += [post["lower"][:, j], post["upper"][:, j]]
    return pa.Table.from_arrays([pa.array(c) for c in cols],
                                schema=_posterior_schema(genres, interval_genres))


def posterior_partition(counts: pd.DataFrame, alpha: np.ndarray, genres: Sequence[str] = GENRES,
                        interval_genres: Sequence[str] = ("pop",), prob: float = 0.95) -> pd.DataFrame:
    r"""Closed-form EB posteriors of the users in one frame of counts (see :func:`posterior_arrays`).

    Parameters
    ----------
    counts : pandas.DataFrame
        ``user_id`` (column or index), ``region`` codes and one count column per genre.
    alpha : ndarray, shape (R, K)
        Prior of each region code.
    genres, interval_genres : sequence of str
    prob : float
        Interval probability.

    Returns
    -------
    pandas.DataFrame
        ``user_id``, ``region``, ``n``, ``<genre>_mean`` and ``<genre>_lower``/``_upper``
        (float64).
    """
    if "user_id" not in counts.columns:
        counts = counts.reset_index()
    if len(counts) == 0:
        return _posterior_meta(genres, interval_genres)
    return _posterior_table(counts["user_id"].to_numpy(), counts["region"].to_numpy(),
                            counts[list(genres)].to_numpy(np.int64), alpha, genres,
                            interval_genres, prob).to_pandas()


def write_posterior_block(block: CountBlock, alpha: np.ndarray, genres: Sequence[str],
                          interval_genres: Sequence[str], prob: float, path: str) -> int:
    """Posteriors of one block's users with plays, written to one Parquet file; returns rows.

    Written with PyArrow in one row group per 1,048,576 users, with Parquet's dictionary
    encoding and no further compression: a user's posterior depends on the counts only
    through ``(r, x_i)``, so each column holds few distinct values and the dictionary
    shrinks it several times, while a general-purpose codec costs more time than it saves.
    """
    present = block.region >= 0
    if present.all():
        uid = np.arange(block.first, block.first + block.region.size)
        code, x = block.region, block.counts
    else:
        idx = np.flatnonzero(present)
        uid, code, x = idx + block.first, block.region[idx], block.counts[idx]
    table = _posterior_table(uid, code, x, alpha, genres, interval_genres, prob)
    pq.write_table(table, path, compression="none", row_group_size=1 << 20)
    return table.num_rows


def write_posteriors(counts, priors: EBPriors, out_path, *, interval_genres=("pop",),
                     prob: float = 0.95, client=None) -> Path:
    """Compute every user's posterior block by block on the workers and write them as Parquet.

    Block ``b`` is written to ``<out_path>/part-<b>.parquet`` by the worker that holds it
    (:func:`write_posterior_block`); only the file names travel.

    Parameters
    ----------
    counts : list of CountBlock futures or delayed, or pandas.DataFrame
        Per-user counts (:func:`user_count_blocks`, persisted), or a frame like
        :func:`partial_user_counts`'s.
    priors : EBPriors
        Regional priors (:func:`fit_priors`).
    out_path : path-like
        Directory for the Parquet files (created; on a shared file system for a
        multi-machine cluster).
    interval_genres, prob
        See :func:`posterior_arrays`.
    client : distributed.Client, optional

    Returns
    -------
    pathlib.Path
    """
    genres = list(priors.genres)
    out = Path(out_path)
    out.mkdir(parents=True, exist_ok=True)
    if isinstance(counts, pd.DataFrame):
        frame = posterior_partition(counts, priors.alpha, genres, interval_genres, prob)
        frame.to_parquet(out / "part-00000.parquet", index=False)
        return out
    with cluster_client(client) as c:
        futures = [c.submit(write_posterior_block, blk, priors.alpha, genres, list(interval_genres),
                            prob, str(out / f"part-{b:05d}.parquet"), pure=False)
                   for b, blk in enumerate(_as_futures(c, counts))]
        c.gather(futures)
    return out


def read_posteriors(path) -> pd.DataFrame:
    """Posteriors written by :func:`write_posteriors`, sorted by user (loads them all)."""
    frame = pq.read_table(path).to_pandas()
    return frame.sort_values("user_id", ignore_index=True)


# =========================================================================== #
# Measurement
# =========================================================================== #
class PeakMemory:
    """Peak resident memory (RSS) of this process and its child processes, sampled.

    A background thread sums the RSS of this process and of all its descendants (for a
    local Dask cluster: the nannies and worker processes) every ``interval`` seconds.
    RSS counts pages shared between processes once per process, so the sum is an upper
    bound; short spikes between samples are missed. Workers on other machines are not
    seen.

    Attributes
    ----------
    peak_total, peak_main, peak_children : int
        Largest sampled bytes: all processes, this process alone, the descendants alone.
    """

    def __init__(self, interval: float = 0.05):
        self.interval = interval
        self.peak_total = self.peak_main = self.peak_children = 0
        self._stop = threading.Event()
        self._thread = None

    def _sample(self) -> None:
        me = psutil.Process()
        while True:
            main = me.memory_info().rss
            children = 0
            for p in me.children(recursive=True):
                try:
                    children += p.memory_info().rss
                except (psutil.NoSuchProcess, psutil.AccessDenied):
                    pass
            self.peak_main = max(self.peak_main, main)
            self.peak_children = max(self.peak_children, children)
            self.peak_total = max(self.peak_total, main + children)
            if self._stop.wait(self.interval):
                return

    def __enter__(self) -> "PeakMemory":
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def traced_peak(func, *args, **kwargs):
    """Run ``func`` under :mod:`tracemalloc`; return (result, peak bytes allocated during it).

    NumPy reports its array buffers to tracemalloc, so this measures what a pure
    NumPy/SciPy step such as the EB fit allocates (not the memory already held).
    """
    tracing = tracemalloc.is_tracing()
    if not tracing:
        tracemalloc.start()
    tracemalloc.reset_peak()
    base = tracemalloc.get_traced_memory()[0]
    try:
        result = func(*args, **kwargs)
        peak = tracemalloc.get_traced_memory()[1] - base
    finally:
        if not tracing:
            tracemalloc.stop()
    return result, max(int(peak), 0)



def reset_peak_rss() -> bool:
    """Reset this process's peak resident memory (Linux ``VmHWM``) to its current RSS.

    Writes ``5`` to ``/proc/self/clear_refs`` (Linux 4.0 and later). Returns False where
    that is not possible; :func:`peak_rss` then reports the peak since the process started.
    """
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def peak_rss() -> int:
    """Peak resident memory of this process in bytes since :func:`reset_peak_rss` (or its start).

    Read from ``VmHWM`` in ``/proc/self/status``, which the kernel keeps exactly (no
    sampling); elsewhere from ``resource.getrusage``'s ``ru_maxrss``.
    """
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    import resource
    import sys

    scale_ = 1 if sys.platform == "darwin" else 1024
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * scale_


def _pid_and_reset() -> tuple[int, int]:
    reset_peak_rss()
    return os.getpid(), psutil.Process().memory_info().rss


def _pid_and_peak() -> tuple[int, int]:
    return os.getpid(), peak_rss()


class ClusterPeaks:
    """Exact peak resident memory of the client process and of every Dask worker process.

    On entry every worker (``client.run``) and this process reset their kernel peak
    (:func:`reset_peak_rss`); on exit each reports its ``VmHWM`` (:func:`peak_rss`). Works
    for workers on other machines too. Workers running as threads of this process are
    counted once, as the client.

    Attributes
    ----------
    client_peak : int
        Bytes, this process.
    client_start : int
        Resident bytes of this process on entry.
    worker_peaks : dict
        Worker address -> bytes, worker processes other than this one.
    worker_start : dict
        Worker address -> resident bytes on entry (what a worker holds before the job:
        its libraries and anything left from earlier work).
    """

    def __init__(self, client):
        self.client = client
        self.client_peak = self.client_start = 0
        self.worker_peaks: dict = {}
        self.worker_start: dict = {}

    def __enter__(self) -> "ClusterPeaks":
        me = os.getpid()
        got = self.client.run(_pid_and_reset)
        self.worker_start = {addr: rss for addr, (pid, rss) in got.items() if pid != me}
        reset_peak_rss()
        self.client_start = psutil.Process().memory_info().rss
        return self

    def __exit__(self, *exc) -> None:
        if exc[0] is not None:
            return
        me = os.getpid()
        got = self.client.run(_pid_and_peak)
        self.client_peak = peak_rss()
        self.worker_peaks = {addr: peak for addr, (pid, peak) in got.items() if pid != me}

    @property
    def workers_total(self) -> int:
        """Sum of the worker processes' peaks (an upper bound of their joint peak)."""
        return int(sum(self.worker_peaks.values()))

    @property
    def workers_start_total(self) -> int:
        """Sum of the worker processes' resident memory on entry."""
        return int(sum(self.worker_start.values()))

    @property
    def worker_max(self) -> int:
        """Largest single worker's peak."""
        return int(max(self.worker_peaks.values(), default=0))


# =========================================================================== #
# The whole EB job
# =========================================================================== #
@dataclass(frozen=True)
class ScaleRun:
    """Result and costs of :func:`run_eb`.

    Attributes
    ----------
    n_users, n_events : int
    stats : RegionStats
    priors : EBPriors
    posterior_path : pathlib.Path
    seconds : dict
        Wall time of each step: ``aggregate`` (read the events, count them per user and sum
        over files), ``suffstats``, ``fit``, ``posteriors`` (compute and write) and ``total``.
    peak_rss : int
        Peak RSS of the client process plus the worker processes (:class:`ClusterPeaks`).
    peak_rss_workers : int
        The worker processes' part of it (sum over workers).
    fit_peak_bytes : int
        Bytes allocated at peak by the EB fit itself (:func:`traced_peak`; the least of
        three repeats after the timed steps, as other threads of the client are traced too).
    sample : pandas.DataFrame or None
        Per-user counts of the first ``sample_users`` users (for a full-Bayes fit of a
        subsample), or None.
    peak_rss_client : int
        Peak RSS of the client process.
    counts_bytes : int
        Memory of the per-user counts (all blocks).
    client_start_rss : int
        The client process's resident memory when the job started.
    workers_start_rss : int
        The worker processes' resident memory when the job started (sum over workers), so
        that ``peak_rss_workers - workers_start_rss`` is what the job itself added.
    n_workers, n_threads : int
        Worker processes and threads of the cluster.
    """

    n_users: int
    n_events: int
    stats: RegionStats
    priors: EBPriors
    posterior_path: Path
    seconds: dict
    peak_rss: int
    peak_rss_workers: int
    fit_peak_bytes: int
    sample: pd.DataFrame | None = field(default=None, repr=False)
    peak_rss_client: int = 0
    counts_bytes: int = 0
    workers_start_rss: int = 0
    client_start_rss: int = 0
    n_workers: int = 0
    n_threads: int = 0

    @property
    def users_per_second(self) -> float:
        """Users processed per second of the whole job."""
        return self.n_users / self.seconds["total"]


def _block_nbytes(block: CountBlock) -> int:
    return block.nbytes


def _block_head(block: CountBlock, genres, n: int) -> pd.DataFrame:
    return block.frame(genres).head(n)


def run_eb(log: PlayLog, out_dir, *, client=None, interval_genres=("pop",), prob: float = 0.95,
           block_users: int = 1_000_000, n_groups: int | None = None, sample_users: int = 0) -> ScaleRun:
    """The whole EB job: count, sufficient statistics, fit, posteriors; timed and measured.

    1. :func:`user_count_blocks`: the event files are counted by one task per worker thread
       into dense per-user arrays, which are summed block of users by block of users; the
       blocks stay in the workers' memory.
    2. :func:`block_suffstats` of every block, added in a tree (:func:`streaming_suffstats`).
    3. :func:`fit_priors` here, from the statistics alone.
    4. :func:`write_posterior_block` of every block, on the worker that holds it.

    Runs on ``client``, or on the cluster at ``DASK_SCHEDULER_ADDRESS``, or on a local
    cluster (:func:`cluster_client`). On a multi-machine cluster the log and ``out_dir``
    must be on a file system every worker can read and write, with ``hbm`` installed on
    the workers.

    Parameters
    ----------
    log : PlayLog
        From :func:`write_play_log` or :func:`read_play_log`.
    out_dir : path-like
        Directory for the posteriors' Parquet files (``<out_dir>/posteriors``).
    client : distributed.Client, optional
    interval_genres, prob
        See :func:`posterior_arrays`.
    block_users : int
        Users per block (and per posterior file).
    n_groups : int, optional
        Counting tasks, each holding one dense ``(n_users, K)`` array; default one per
        worker thread of the cluster. On workers with many threads and many users, fewer
        groups save memory at the cost of parallelism.
    sample_users : int
        Also return the counts of this many users (the first ids), after the timed steps.

    Returns
    -------
    ScaleRun
    """
    from distributed import wait

    seconds = {}
    with cluster_client(client) as c:
        n_threads = _total_threads(c)
        n_workers = len(c.nthreads())
        with ClusterPeaks(c) as peaks:
            start = time.perf_counter()
            lazy = user_count_blocks(log.events_path, log.n_users, log.genres, n_groups=n_groups or n_threads,
                                     block_users=block_users)
            blocks = c.compute(lazy)
            wait(blocks)
            seconds["aggregate"] = time.perf_counter() - start
            t = time.perf_counter()
            stats = streaming_suffstats(blocks, log.regions, log.genres, client=c)
            seconds["suffstats"] = time.perf_counter() - t
            t = time.perf_counter()
            priors = fit_priors(stats, log.genres)
            seconds["fit"] = time.perf_counter() - t
            t = time.perf_counter()
            path = write_posteriors(blocks, priors, Path(out_dir) / "posteriors",
                                    interval_genres=interval_genres, prob=prob, client=c)
            seconds["posteriors"] = time.perf_counter() - t
            seconds["total"] = time.perf_counter() - start
        # tracemalloc also sees the allocations of the client's other threads (Dask's
        # communication), so the fit's own peak is the least of three traced repeats
        fit_peak = min(traced_peak(fit_priors, stats, log.genres)[1] for _ in range(3))
        counts_bytes = sum(c.gather(c.map(_block_nbytes, blocks)))
        sample = None
        if sample_users > 0:
            sample = c.submit(_block_head, blocks[0], list(log.genres), sample_users).result()
        del blocks
    return ScaleRun(stats.n_users, log.n_events, stats, priors, path, seconds,
                    peaks.client_peak + peaks.workers_total, peaks.workers_total, fit_peak, sample,
                    peak_rss_client=peaks.client_peak, counts_bytes=int(counts_bytes),
                    workers_start_rss=peaks.workers_start_total, client_start_rss=peaks.client_start,
                    n_workers=n_workers, n_threads=n_threads)


# =========================================================================== #
# Recorded benchmark figures
# =========================================================================== #
def bench_summary(path=None) -> dict:
    """The figures of the recorded EB benchmark that the chapter quotes.

    Parameters
    ----------
    path : path-like, optional
        The CSV written by ``python bench/run.py eb_scaling`` (``make bench``); default
        ``bench/results/eb_scaling.csv`` of the project this package lives in.

    Returns
    -------
    dict
        For the largest log (``users``, ``events``, ``files``, ``parquet_mib``): ``total_s``,
        ``users_per_s``, ``steps_s`` (``aggregate``, ``suffstats``, ``fit``, ``posteriors``),
        ``client_peak_mib``, ``client_start_mib``, ``workers_peak_mib``,
        ``workers_start_mib`` (the processes' memory before the job), ``counts_mib`` (the per-user counts the workers hold),
        ``posteriors_mib`` (on disk), ``max_error_vs_closed_form``,
        ``dask_engine``; the same counting by the single-node engine on the same files
        (``single_node_engine``, ``single_node_count_s``, ``single_node_peak_mib``) beside
        the job's own counting step (``dask_count_s``); the same job on two single-threaded
        worker processes (``two_process_total_s``, ``two_process_count_s``; None where
        absent); the smallest log (``small_users``,
        ``small_total_s``, ``small_users_per_s``); the full Bayes row (``full_bayes_users``,
        ``full_bayes_s``, ``full_bayes_users_per_s``; None where absent); and ``measured``
        (UTC date and time) and ``machine``.

    Raises
    ------
    FileNotFoundError
        No recorded benchmark.
    """
    if path is None:
        path = Path(__file__).resolve().parents[2] / "bench" / "results" / "eb_scaling.csv"
    table = pd.read_csv(path)
    eb_rows = table[table["method"].str.startswith("Empirical Bayes")].set_index("users").sort_index()
    duck = table[table["method"].str.startswith("Counting only")].set_index("users")
    fb = table[table["method"].str.startswith("Full Bayes")]
    two = table[table["method"].str.startswith("Same EB job on 2 worker processes")].set_index("users")
    big, small = int(eb_rows.index.max()), int(eb_rows.index.min())
    row = eb_rows.loc[big]
    single = duck.loc[big] if big in duck.index else None
    fb_row = fb.iloc[0] if len(fb) else None
    return {
        "measured": str(row["measured"]),
        "machine": str(row["machine"]),
        "users": big,
        "events": int(row["events"]),
        "files": int(row["files"]),
        "parquet_mib": float(row["Parquet MiB"]),
        "total_s": float(row["total s"]),
        "users_per_s": int(row["users per s"]),
        "steps_s": {step: float(row[f"{step} s"]) for step in ("aggregate", "suffstats", "fit", "posteriors")},
        "client_peak_mib": int(row["client peak RSS MiB"]),
        "client_start_mib": int(row["client start RSS MiB"]),
        "workers_peak_mib": int(row["workers' peak RSS MiB"]),
        "workers_start_mib": int(row["workers' start RSS MiB"]),
        "counts_mib": float(row["counts MiB"]),
        "posteriors_mib": float(row["posteriors MiB"]),
        "max_error_vs_closed_form": float(row["max error vs closed form"]),
        "dask_engine": str(row["engine"]),
        "dask_count_s": float(row["aggregate s"]),
        "single_node_engine": None if single is None else str(single["engine"]),
        "single_node_count_s": None if single is None else float(single["aggregate s"]),
        "single_node_peak_mib": None if single is None else int(single["peak RSS MiB"]),
        "two_process_total_s": float(two.loc[big, "total s"]) if big in two.index else None,
        "two_process_count_s": float(two.loc[big, "aggregate s"]) if big in two.index else None,
        "small_users": small,
        "small_total_s": float(eb_rows.loc[small, "total s"]),
        "small_users_per_s": int(eb_rows.loc[small, "users per s"]),
        "full_bayes_users": None if fb_row is None else int(fb_row["users"]),
        "full_bayes_s": None if fb_row is None else float(fb_row["total s"]),
        "full_bayes_users_per_s": None if fb_row is None else float(fb_row["users per s"]),
    }
