"""The count pass: a play-event log to dense per-user genre counts, on a Dask cluster.

One task per worker thread reads its share of the Parquet files with PyArrow, a row group at
a time, and adds every play into a dense ``(n_users, K)`` int32 array (:func:`count_into`, a
Numba loop that releases the GIL); the arrays are summed block of users by block of users in
a tree (:func:`user_count_blocks`). Memory follows the number of users, never the number of
events, and the blocks stay in the workers' memory for the histograms
(:mod:`hbm.scale.histograms`) and the posteriors (:mod:`hbm.scale.posteriors`), so the log
is read once.

References: @rocklin2015 (Dask).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from hbm.errors import DataError
from hbm.scale.cluster import cluster_client, total_threads

__all__ = [
    "partial_user_counts",
    "CountBlock",
    "count_into",
    "count_files",
    "event_files",
    "max_user_id",
    "user_count_blocks",
    "user_genre_counts",
]


def _counts_meta(genres: Sequence[str]) -> pd.DataFrame:
    """Empty frame with the columns and dtypes of :func:`partial_user_counts`."""
    cols = {"user_id": np.array([], np.int64), "region": np.array([], np.int8)}
    cols.update({g: np.array([], np.int64) for g in genres})
    return pd.DataFrame(cols)


def partial_user_counts(events: pd.DataFrame, genres: Sequence[str],
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

    def frame(self, genres: Sequence[str]) -> pd.DataFrame:
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


def count_files(paths: Sequence, n_users: int, n_genres: int) -> tuple[np.ndarray, np.ndarray]:
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


def user_count_blocks(events_path, n_users: int | None, genres: Sequence[str], *,
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


def user_genre_counts(events_path, genres: Sequence[str], *, n_users: int | None = None,
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
        lazy = user_count_blocks(events_path, n_users, genres, n_groups=total_threads(c))
        blocks = c.compute(lazy, sync=True)
    frame = pd.concat([b.frame(genres) for b in blocks], ignore_index=True)
    return frame.set_index("user_id")


# =========================================================================== #
# 3. Streaming sufficient statistics
