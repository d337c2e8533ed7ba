"""Empirical Bayes for millions of users: event logs, Dask aggregation, streaming statistics.

The pipeline of the empirical-Bayes chapter, at any size:

1. :func:`write_play_log` simulates a play-event log (one row per play: ``user_id`` int32,
   ``region`` int8, ``genre`` int8) and writes it as Parquet, one file per chunk of users, so
   the whole log is never in memory. Each user's genre shares are drawn from a regional
   Dirichlet prior, as in :func:`hbm.simulate.music`; the priors are the simulation's truth.
2. :func:`user_genre_counts` aggregates the events to one row per user with Dask DataFrame:
   a NumPy count within every Parquet partition, then a groupby-sum across partitions, so a
   user's plays may be spread over any number of files.
3. :func:`streaming_suffstats` reduces the per-user counts, partition by partition, to the
   Dirichlet-multinomial sufficient statistics of every region
   (:class:`hbm.eb.DMSuffStats`: per-genre histograms of counts and a histogram of totals),
   merged by addition. Their size depends on the largest count, not on the number of users.
4. :func:`fit_priors` fits the global and regional Dirichlet priors by marginal maximum
   likelihood from those statistics alone (:func:`hbm.eb.fit_dirichlet_multinomial_from_suffstats`).
5. :func:`write_posteriors` computes every user's conjugate posterior
   ``Dirichlet(alpha_r + x_i)`` partition by partition and writes it as Parquet.

:func:`run_eb` runs steps 2-5 and times them; the event log is read exactly once (the per-user
counts are persisted in the cluster's memory for steps 3 and 5).

Every function that computes with Dask takes ``client``, a :class:`distributed.Client`.
Without one, a :func:`local_client` (a local cluster of worker processes) is started for the
call. Pass a client connected to a multi-machine cluster to run the same code there; the
log's directory must then be on storage every worker can reach (a shared file system), and
``hbm`` must be installed on the workers.

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

from hbm.data import GENRES, DataError
from hbm.eb import (
    DirichletMultinomialFit,
    DirichletPosterior,
    DMSuffStats,
    dirichlet_multinomial_suffstats,
    fit_dirichlet_multinomial_from_suffstats,
)
from hbm.simulate import REGION_KAPPA, REGION_PROFILES, REGIONS

__all__ = [
    "EVENT_SCHEMA",
    "PlayLog",
    "simulate_chunk",
    "events_table",
    "write_play_log",
    "read_play_log",
    "simulate_counts",
    "local_client",
    "partial_user_counts",
    "user_genre_counts",
    "RegionStats",
    "region_suffstats",
    "streaming_suffstats",
    "EBPriors",
    "fit_priors",
    "posterior_partition",
    "write_posteriors",
    "read_posteriors",
    "PeakMemory",
    "traced_peak",
    "ScaleRun",
    "run_eb",
]

#: Columns of the play-event log: one row per play.
EVENT_SCHEMA = pa.schema([("user_id", pa.int32()), ("region", pa.int8()), ("genre", pa.int8())])

_LOG_META = "log.json"
_EVENTS = "events"


# =========================================================================== #
# 1. Simulated play-event logs, chunk by chunk
# =========================================================================== #
@dataclass(frozen=True)
class PlayLog:
    """A play-event log on disk: ``<path>/events/part-*.parquet`` and ``<path>/log.json``.

    Attributes
    ----------
    path : pathlib.Path
        The log's directory.
    n_users, n_events, n_files : int
        Users simulated (every one has at least ``n_min >= 1`` plays), rows, Parquet files.
    chunk_users : int
        Users per file (the last file may hold fewer).
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


def _write_chunk(events_dir: str, index: int, first: int, size: int, seed: int, alpha, weights,
                 n_min: int, n_max: int, shuffle: bool) -> tuple[int, int]:
    """Simulate and write chunk ``index``; return (events, bytes on disk)."""
    rng = _chunk_rng(seed, index)
    uid, reg, counts = simulate_chunk(first, size, rng, alpha, weights, n_min, n_max)
    table = events_table(uid, reg, counts, rng if shuffle else None)
    path = os.path.join(events_dir, f"part-{index:05d}.parquet")
    pq.write_table(table, path, compression="zstd")
    return table.num_rows, os.path.getsize(path)


def write_play_log(out_dir, n_users: int, *, seed: int, chunk_users: int = 250_000,
                   n_min: int = 1, n_max: int = 100, regions: Sequence[str] = REGIONS,
                   profiles: Mapping | None = None, kappa: Mapping | None = None,
                   region_weights=None, shuffle: bool = True, client=None) -> PlayLog:
    """Simulate a play-event log chunk by chunk and write it as Parquet.

    Chunk ``j`` (users ``j * chunk_users`` onwards) is simulated by :func:`simulate_chunk`
    from its own generator (``SeedSequence(seed, spawn_key=(j,))``), expanded to one row per
    play by :func:`events_table` (shuffled), and written to ``events/part-<j>.parquet``
    (zstd). Peak memory is that of one chunk per worker; the result is the same whichever
    worker writes which chunk, and is reproducible for a given ``seed`` and ``chunk_users``.

    Parameters
    ----------
    out_dir : path-like
        A new or empty directory (created if needed).
    n_users : int
        Number of users.
    seed : int
        Seed of the whole log.
    chunk_users : int
        Users per Parquet file.
    n_min, n_max : int
        Range of each user's total plays (log-uniform).
    regions : sequence of str
        Region labels (codes 0, 1, ... in this order).
    profiles, kappa : mapping, optional
        Region -> genre profile ``p_r`` and concentration ``kappa_r``; default
        :data:`hbm.simulate.REGION_PROFILES` and :data:`hbm.simulate.REGION_KAPPA`.
    region_weights : array-like, optional
        Share of users in each region (default equal).
    shuffle : bool
        Shuffle the rows within each file.
    client : distributed.Client, optional
        Writes the chunks on its workers in parallel; without one they are written here,
        one after the other.

    Returns
    -------
    PlayLog
        Also recorded in ``<out_dir>/log.json`` (see :func:`read_play_log`).

    Raises
    ------
    ValueError
        Bad sizes or region specification, or a non-empty ``events`` directory.
    """
    start = time.perf_counter()
    if n_users < 1 or chunk_users < 1:
        raise ValueError("n_users and chunk_users must be positive")
    regions, weights, alpha = _spec(regions, profiles, kappa, region_weights)
    if not 1 <= n_min <= n_max:
        raise ValueError("need 1 <= n_min <= n_max")
    out = Path(out_dir)
    events_dir = out / _EVENTS
    events_dir.mkdir(parents=True, exist_ok=True)
    if any(events_dir.iterdir()):
        raise ValueError(f"{events_dir} is not empty: write a log into a new directory")
    bounds = _chunk_bounds(n_users, chunk_users)
    args = [(str(events_dir), j, first, size, int(seed), alpha, weights, n_min, n_max, shuffle)
            for j, (first, size) in enumerate(bounds)]
    if client is None:
        results = [_write_chunk(*a) for a in args]
    else:
        futures = [client.submit(_write_chunk, *a, pure=False) for a in args]
        results = client.gather(futures)
    n_events = sum(r[0] for r in results)
    nbytes = sum(r[1] for r in results)
    truth = {
        "generator": "hbm.scale.write_play_log",
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
    log = PlayLog(out, n_users, n_events, len(bounds), chunk_users, nbytes, tuple(regions),
                  tuple(GENRES), truth, time.perf_counter() - start)
    meta = {"n_users": n_users, "n_events": n_events, "n_files": len(bounds),
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
# 2. Aggregation with Dask DataFrame
# =========================================================================== #
@contextmanager
def local_client(n_workers: int = 2, threads_per_worker: int = 1, memory_limit="4GiB"):
    """A :class:`distributed.Client` on a local cluster of worker processes, closed on exit.

    No dashboard is started (no port is taken), and the cluster's log messages below errors
    are silenced.

    Parameters
    ----------
    n_workers, threads_per_worker : int
        Worker processes and threads in each.
    memory_limit : str or int
        Memory per worker before Dask spills to disk.

    Yields
    ------
    distributed.Client
    """
    import logging

    from distributed import Client, LocalCluster

    cluster = LocalCluster(n_workers=n_workers, threads_per_worker=threads_per_worker,
                           processes=True, memory_limit=memory_limit, dashboard_address=None,
                           silence_logs=logging.ERROR)
    client = Client(cluster)
    try:
        yield client
    finally:
        client.close()
        cluster.close()


@contextmanager
def _client_or_local(client):
    """The given client, or a local one for the duration of the block."""
    if client is not None:
        yield client
    else:
        with local_client() as local:
            yield local


def _counts_meta(genres: Sequence[str]) -> pd.DataFrame:
    """Empty frame with the columns and dtypes of :func:`partial_user_counts`."""
    cols = {"user_id": np.array([], np.int64), "region": np.array([], np.int8)}
    cols.update({g: np.array([], np.int64) for g in genres})
    return pd.DataFrame(cols)


def partial_user_counts(events: pd.DataFrame, genres: Sequence[str] = GENRES,
                        source: str = "play-event log") -> pd.DataFrame:
    """Per-user genre counts of one partition of events (pure NumPy, no groupby).

    With ``span = max(user_id) - min(user_id) + 1`` at most four times the number of rows the
    counts are one ``np.bincount`` of ``(user_id - min) * K + genre``; otherwise user ids are
    first compressed with ``np.unique``. A user whose events fall into several partitions gets
    one row in each; :func:`user_genre_counts` adds them up.

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


def user_genre_counts(events_path, genres: Sequence[str] = GENRES, split_out: int | None = None):
    """Lazy Dask DataFrame of every user's genre counts from a Parquet event log.

    Each Parquet partition is counted by :func:`partial_user_counts`; a ``groupby("user_id")``
    then sums a user's rows over partitions (``region`` by ``max``: it is constant per user),
    so the log may be partitioned by time, user or anything else. Nothing is computed until
    the result is persisted or computed (e.g. by :func:`run_eb` with a client).

    Parameters
    ----------
    events_path : path-like or str
        Directory (or glob, or any fsspec URL) of Parquet files with ``EVENT_SCHEMA``.
    genres : sequence of str
        Labels of the genre codes.
    split_out : int, optional
        Output partitions of the groupby (default: as many as input files).

    Returns
    -------
    dask.dataframe.DataFrame
        Index ``user_id``; columns ``region`` and one count per genre.
    """
    import dask.dataframe as dd

    events = dd.read_parquet(str(events_path), columns=["user_id", "region", "genre"])
    partial = events.map_partitions(partial_user_counts, list(genres), str(events_path),
                                    meta=_counts_meta(genres))
    how = {"region": "max", **{g: "sum" for g in genres}}
    nparts = split_out or events.npartitions
    return partial.groupby("user_id", sort=False).agg(how, split_out=nparts)


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


def _merge(stats: Iterable[RegionStats]) -> RegionStats:
    """Sum of several RegionStats."""
    stats = list(stats)
    total = stats[0]
    for s in stats[1:]:
        total = total + s
    return total


def streaming_suffstats(counts, regions: Sequence[str], genres: Sequence[str] = GENRES, *,
                        client=None, fan_in: int = 8) -> RegionStats:
    """Reduce per-user counts to regional sufficient statistics, partition by partition.

    Every partition is summarised by :func:`region_suffstats` on the workers; the summaries
    are added in a tree (``fan_in`` at a time). Only the histograms travel: the per-user
    counts never leave the workers.

    Parameters
    ----------
    counts : dask.dataframe.DataFrame or pandas.DataFrame
        Per-user counts (:func:`user_genre_counts`, ideally persisted).
    regions, genres : sequence of str
    client : distributed.Client, optional
        Default: a local cluster for the call (a pandas frame needs none).
    fan_in : int
        Summaries added per task.

    Returns
    -------
    RegionStats
    """
    if isinstance(counts, pd.DataFrame):
        return region_suffstats(counts, regions, genres)
    import dask

    parts = [dask.delayed(region_suffstats)(p, tuple(regions), tuple(genres))
             for p in counts.to_delayed()]
    while len(parts) > 1:
        parts = [dask.delayed(_merge)(parts[i:i + fan_in]) for i in range(0, len(parts), fan_in)]
    with _client_or_local(client) as c:
        return c.compute(parts[0]).result()


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
# 5. Chunk-wise posteriors
# =========================================================================== #
def _posterior_meta(genres, interval_genres) -> pd.DataFrame:
    cols = {"user_id": np.array([], np.int64), "region": np.array([], np.int8),
            "n": np.array([], np.int64)}
    cols.update({f"{g}_mean": np.array([], np.float32) for g in genres})
    for g in interval_genres:
        cols[f"{g}_lower"] = np.array([], np.float32)
        cols[f"{g}_upper"] = np.array([], np.float32)
    return pd.DataFrame(cols)


def posterior_partition(counts: pd.DataFrame, alpha: np.ndarray, genres: Sequence[str] = GENRES,
                        interval_genres: Sequence[str] = ("pop",), prob: float = 0.95) -> pd.DataFrame:
    r"""Closed-form EB posteriors of the users in one frame of counts.

    User ``i`` in region ``r`` gets ``Dirichlet(alpha_r + x_i)``
    (:class:`hbm.eb.DirichletPosterior`): posterior means
    ``(alpha_rk + x_ik) / (A_r + n_i)`` for every genre and, for ``interval_genres``, the
    equal-tailed ``prob`` interval of the marginal ``Beta(a_ik, A_i - a_ik)`` (the same
    quantiles as :meth:`hbm.eb.DirichletPosterior.interval`, computed only for the genres
    asked for, since ``betaincinv`` dominates the cost). Stored as float32.

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
        ``user_id``, ``region``, ``n``, ``<genre>_mean`` and ``<genre>_lower``/``_upper``.
    """
    if "user_id" not in counts.columns:
        counts = counts.reset_index()
    if len(counts) == 0:
        return _posterior_meta(genres, interval_genres)
    x = counts[list(genres)].to_numpy(np.int64)
    code = counts["region"].to_numpy().astype(np.intp)
    post = DirichletPosterior(np.asarray(alpha, dtype=np.float64)[code] + x)
    out = pd.DataFrame({"user_id": counts["user_id"].to_numpy(np.int64),
                        "region": code.astype(np.int8), "n": x.sum(axis=1)})
    mean = post.posterior_mean
    for k, g in enumerate(genres):
        out[f"{g}_mean"] = mean[:, k].astype(np.float32)
    q = (1.0 - prob) / 2.0
    a_all = post.posterior_alpha
    total = a_all.sum(axis=1)
    for g in interval_genres:
        a = a_all[:, list(genres).index(g)]
        b = total - a
        out[f"{g}_lower"] = special.betaincinv(a, b, q).astype(np.float32)
        out[f"{g}_upper"] = special.betaincinv(a, b, 1.0 - q).astype(np.float32)
    return out


def write_posteriors(counts, priors: EBPriors, out_path, *, interval_genres=("pop",),
                     prob: float = 0.95, client=None) -> Path:
    """Compute every user's posterior partition by partition and write them as Parquet.

    Parameters
    ----------
    counts : dask.dataframe.DataFrame
        Per-user counts (:func:`user_genre_counts`).
    priors : EBPriors
        Regional priors (:func:`fit_priors`).
    out_path : path-like
        Directory for the Parquet files.
    interval_genres, prob
        See :func:`posterior_partition`.
    client : distributed.Client, optional

    Returns
    -------
    pathlib.Path
    """
    genres = list(priors.genres)
    post = counts.map_partitions(posterior_partition, priors.alpha, genres, list(interval_genres),
                                 prob, meta=_posterior_meta(genres, interval_genres))
    with _client_or_local(client) as c:
        c.compute(post.to_parquet(str(out_path), write_index=False, compute=False)).result()
    return Path(out_path)


def read_posteriors(path) -> pd.DataFrame:
    """Posteriors written by :func:`write_posteriors`, sorted by user (loads them all)."""
    frame = pd.read_parquet(path)
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
        Wall time of each step: ``aggregate`` (read events, count, persist per-user counts),
        ``suffstats``, ``fit``, ``posteriors`` and ``total``.
    peak_rss : int
        Peak RSS of this process plus its descendants over the job (:class:`PeakMemory`).
    peak_rss_workers : int
        The descendants' part of it (the local workers).
    fit_peak_bytes : int
        Bytes allocated at peak by the EB fit itself (:func:`traced_peak`).
    sample : pandas.DataFrame or None
        Per-user counts of the first ``sample_users`` users of the first partition (for a
        full-Bayes fit of a subsample), or None.
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

    @property
    def users_per_second(self) -> float:
        """Users processed per second of the whole job."""
        return self.n_users / self.seconds["total"]


def run_eb(log: PlayLog, out_dir, *, client=None, interval_genres=("pop",), prob: float = 0.95,
           split_out: int | None = None, sample_users: int = 0) -> ScaleRun:
    """The whole EB job: aggregate, sufficient statistics, fit, posteriors; timed.

    The per-user counts are persisted in the workers' memory once, so the event log is read
    once; the statistics and the posteriors are computed from them.

    Parameters
    ----------
    log : PlayLog
        From :func:`write_play_log` or :func:`read_play_log`.
    out_dir : path-like
        Directory for the posteriors' Parquet files (``<out_dir>/posteriors``).
    client : distributed.Client, optional
        Default: a local cluster for the call.
    interval_genres, prob
        See :func:`posterior_partition`.
    split_out : int, optional
        See :func:`user_genre_counts`.
    sample_users : int
        Also return the counts of this many users (from the first partition, after the
        timed steps), e.g. for a full-Bayes fit of a subsample.

    Returns
    -------
    ScaleRun
    """
    from distributed import wait

    seconds = {}
    with _client_or_local(client) as c, PeakMemory() as mem:
        start = time.perf_counter()
        counts = c.persist(user_genre_counts(log.events_path, log.genres, split_out))
        wait(counts)
        seconds["aggregate"] = time.perf_counter() - start
        t = time.perf_counter()
        stats = streaming_suffstats(counts, log.regions, log.genres, client=c)
        seconds["suffstats"] = time.perf_counter() - t
        t = time.perf_counter()
        priors, fit_peak = traced_peak(fit_priors, stats, log.genres)
        seconds["fit"] = time.perf_counter() - t
        t = time.perf_counter()
        path = write_posteriors(counts, priors, Path(out_dir) / "posteriors",
                                interval_genres=interval_genres, prob=prob, client=c)
        seconds["posteriors"] = time.perf_counter() - t
        seconds["total"] = time.perf_counter() - start
        sample = None
        if sample_users > 0:
            sample = c.compute(counts.partitions[0].head(sample_users, compute=False)).result()
            sample = sample.reset_index().sort_values("user_id", ignore_index=True)
        del counts
    return ScaleRun(stats.n_users, log.n_events, stats, priors, path, seconds, mem.peak_total,
                    mem.peak_children, fit_peak, sample)
