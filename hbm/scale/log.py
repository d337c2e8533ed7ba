"""Simulated play-event logs at any size, partitioned by time, with the simulation's truth.

One row per play (``user_id`` int32, ``region`` int8, ``genre`` int8), written as Parquet
files that each hold one time window of plays from nearly every user, as a real service's
daily files do. Each user's genre shares are drawn from a regional Dirichlet prior
``Dirichlet(kappa_r p_r)``; the totals are log-uniform (bounded, the default) or, with
``tail``, heavy-tailed (a discrete Pareto law: a few users with tens of thousands of plays).

References: @mosimann1962 (the Dirichlet-multinomial), @rocklin2015 (Dask).
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from hbm.errors import DataError

__all__ = [
    "EVENT_SCHEMA",
    "PlayLog",
    "simulate_chunk",
    "events_table",
    "write_play_log",
    "read_play_log",
    "simulate_counts",
]

#: Columns of the play-event log: one row per play.
EVENT_SCHEMA = pa.schema([("user_id", pa.int32()), ("region", pa.int8()), ("genre", pa.int8())])

_LOG_META = "log.json"
_EVENTS = "events"


# =========================================================================== #
# Simulated play-event logs, partitioned by time
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


def _spec(profiles: Mapping, kappa: Mapping, genres: Sequence[str], region_weights=None,
          regions: Sequence[str] | None = None) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Region labels, their weights and the (R, K) Dirichlet parameters kappa_r p_r."""
    regions = list(profiles) if regions is None else list(regions)
    missing = [r for r in regions if r not in profiles or r not in kappa]
    if missing:
        raise ValueError(f"no profile or kappa for region(s) {missing}")
    p = np.array([profiles[r] for r in regions], dtype=np.float64)
    if p.shape[1] != len(genres) or not np.allclose(p.sum(axis=1), 1.0):
        raise ValueError(f"each profile must be {len(genres)} probabilities summing to 1")
    k = np.array([kappa[r] for r in regions], dtype=np.float64)
    if np.any(k <= 0):
        raise ValueError("kappa must be positive")
    w = np.full(len(regions), 1.0 / len(regions)) if region_weights is None else np.asarray(
        region_weights, dtype=np.float64)
    if w.shape != (len(regions),) or np.any(w < 0) or not np.isclose(w.sum(), 1.0):
        raise ValueError("region_weights must be one non-negative weight per region, summing to 1")
    return regions, w, k[:, None] * p


def simulate_chunk(first_user: int, n_users: int, rng: np.random.Generator, alpha: np.ndarray,
                   region_weights: np.ndarray, n_min: int, n_max: int, tail: float | None = None,
                   return_theta: bool = False):
    r"""Simulate one chunk of users: ids, regions and genre counts.

    For user ``i``: region ``r_i ~ Categorical(w)``; genre shares
    ``theta_i ~ Dirichlet(alpha_{r_i})`` with ``alpha_r = kappa_r p_r``; total plays ``n_i``
    log-uniform on ``[n_min, n_max]`` (rounded), or with ``tail`` heavy-tailed,
    ``n_i = min(floor(n_min U^{-1/tail}), n_max)`` with ``U ~ Uniform(0, 1)`` (a discrete
    Pareto law, ``P(n_i >= m) ~ (n_min / m)^tail``); ``x_i ~ Multinomial(n_i, theta_i)``
    [@mosimann1962]. With ``n_min = 1, n_max = 100`` and no tail the mean is
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
    tail : float, optional
        Pareto exponent of the totals (heavy-tailed; about ``n_min * tail / (tail - 1)``
        plays a user for ``tail > 1``); default log-uniform totals.
    return_theta : bool
        Also return the users' true genre shares (for coverage studies).

    Returns
    -------
    user_id : ndarray of int32, shape (n_users,)
    region : ndarray of int8, shape (n_users,)
    counts : ndarray of int64, shape (n_users, K)
    theta : ndarray of float64, shape (n_users, K)
        Only with ``return_theta``.
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
    if tail is None:
        lo, hi = np.log(n_min), np.log(n_max)
        totals = np.clip(np.rint(np.exp(rng.uniform(lo, hi, size=n_users))), n_min, n_max).astype(np.int64)
    else:
        if tail <= 0:
            raise ValueError("tail must be positive")
        u = 1.0 - rng.uniform(size=n_users)  # in (0, 1]
        totals = np.minimum(np.floor(n_min * u ** (-1.0 / tail)), n_max).astype(np.int64)
    counts = rng.multinomial(totals, theta)
    return (user_id, region, counts, theta) if return_theta else (user_id, region, counts)


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
                 n_min: int, n_max: int, n_files: int, tail: float | None = None) -> tuple[int, list[int]]:
    """Simulate chunk ``index``, give every play a time partition, stage it by partition.

    The staged file holds one row group per non-empty time partition, in partition order.
    Returns (events, row group of each partition or -1 where the chunk has none).
    """
    rng = _chunk_rng(seed, index)
    uid, reg, counts = simulate_chunk(first, size, rng, alpha, weights, n_min, n_max, tail)
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


def write_play_log(out_dir, n_users: int, *, seed: int, profiles: Mapping, kappa: Mapping,
                   genres: Sequence[str], regions: Sequence[str] | None = None,
                   chunk_users: int = 250_000, n_files: int | None = None, n_min: int = 1,
                   n_max: int = 100, tail: float | None = None, region_weights=None,
                   shuffle: bool = True, client=None) -> PlayLog:
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
    profiles, kappa : mapping
        Region -> genre profile ``p_r`` (one probability per genre) and concentration
        ``kappa_r`` (the book's simulation: :data:`hbm.book.simulate.REGION_PROFILES` and
        :data:`hbm.book.simulate.REGION_KAPPA`).
    genres : sequence of str
        Labels of the genre codes 0, 1, ...
    regions : sequence of str, optional
        Region labels (codes 0, 1, ... in this order); default the keys of ``profiles``.
    n_min, n_max : int
        Range of each user's total plays.
    tail : float, optional
        Heavy-tailed totals with this Pareto exponent (see :func:`simulate_chunk`); default
        log-uniform.
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
    start = time.perf_counter()
    if n_users < 1 or chunk_users < 1:
        raise ValueError("n_users and chunk_users must be positive")
    if n_users > np.iinfo(np.int32).max:
        raise ValueError("user ids must fit in int32")
    regions, weights, alpha = _spec(profiles, kappa, genres, region_weights, regions)
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
                                         n_min, n_max, n_files, tail)
                                        for j, (first, size) in enumerate(bounds)])
        groups = [g for _, g in staged]
        sizes = run_all(_write_slot, [(str(events_dir), str(staging), t, groups, int(seed), shuffle)
                                      for t in range(n_files)])
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    n_events = sum(s[0] for s in staged)
    nbytes = sum(sizes)
    truth = {
        "generator": "hbm.scale.write_play_log",
        "partitioning": "time",
        "seed": int(seed),
        "n_min": int(n_min),
        "n_max": int(n_max),
        "tail": None if tail is None else float(tail),
        "region_weights": [float(w) for w in weights],
        "regions": [
            {
                "region": r,
                "p": dict(zip(genres, (alpha[i] / alpha[i].sum()).tolist())),
                "kappa": float(alpha[i].sum()),
                "alpha": dict(zip(genres, alpha[i].tolist())),
            }
            for i, r in enumerate(regions)
        ],
    }
    log = PlayLog(out, n_users, n_events, n_files, chunk_users, nbytes, tuple(regions),
                  tuple(genres), truth, time.perf_counter() - start)
    meta = {"n_users": n_users, "n_events": n_events, "n_files": n_files,
            "chunk_users": chunk_users, "nbytes": nbytes, "regions": list(regions),
            "genres": list(genres), "truth": truth, "seconds": log.seconds}
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
                                     log.truth["n_min"], log.truth["n_max"], log.truth.get("tail"))
        frame = pd.DataFrame({"user_id": uid.astype(np.int64), "region": reg})
        for k, g in enumerate(log.genres):
            frame[g] = x[:, k]
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)



# =========================================================================== #
