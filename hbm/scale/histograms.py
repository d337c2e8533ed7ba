r"""Histograms of per-user counts: all that the hyperparameters' likelihood needs of the users.

With the users' genre shares integrated out, the Dirichlet-multinomial likelihood of region
``r`` depends on its users only through the histogram of their totals ``h_r(n)`` and, for
each genre, the histogram of their counts ``h_rj(x)`` [@minka2000] (:class:`RegionStats`, one
:class:`hbm.eb.DMSuffStats` a region); and a user's posterior given the hyperparameters
depends on them only through their ``(x_ij, n_i)`` pairs, which take few distinct values
(:class:`Histograms` keeps the set). Both are computed block by block on the workers that
hold the per-user counts (:mod:`hbm.scale.count`) and added in a tree: only the histograms
travel, and their size follows the largest count, not the number of users.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from hbm.eb import DMSuffStats, dirichlet_multinomial_suffstats
from hbm.scale.cluster import cluster_client
from hbm.scale.count import CountBlock

__all__ = [
    "RegionStats",
    "region_suffstats",
    "block_suffstats",
    "streaming_suffstats",
    "Histograms",
    "encode_pairs",
    "decode_pairs",
    "count_pairs",
    "block_histograms",
    "streaming_histograms",
]

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
                     genres: Sequence[str]) -> RegionStats:
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


def _merge(stats: Iterable):
    """Sum of several summaries (:class:`RegionStats` or :class:`Histograms`)."""
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


def streaming_suffstats(counts, regions: Sequence[str], genres: Sequence[str], *,
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
        return _reduce_blocks(c, block_suffstats, counts, (tuple(regions),), fan_in)


def _reduce_blocks(c, summarise, counts, args: tuple, fan_in: int):
    """``summarise(block, *args)`` on the worker that holds each block, added in a tree."""
    parts = [c.submit(summarise, b, *args, pure=False) for b in _as_futures(c, counts)]
    while len(parts) > 1:
        parts = [c.submit(_merge, parts[i:i + fan_in], pure=False) for i in range(0, len(parts), fan_in)]
    return parts[0].result()


# =========================================================================== #
# Distinct (x, n) pairs: what a user's posterior depends on
# =========================================================================== #
_BITS = 24
_MASK = (1 << _BITS) - 1


def encode_pairs(region, genre, n, x, n_genres: int) -> np.ndarray:
    """One int64 key per (region, genre, total n, count x): ``((r K + j) << 48) | (n << 24) | x``.

    Keys sort by region, genre, total, count. Totals must be below 2**24 (16,777,216 plays).
    """
    n = np.asarray(n, dtype=np.int64)
    if n.size and int(n.max()) > _MASK:
        raise ValueError(f"a user's total plays must be below {_MASK + 1:,} for the pair keys")
    group = np.asarray(region, dtype=np.int64) * n_genres + np.asarray(genre, dtype=np.int64)
    return (group << (2 * _BITS)) | (n << _BITS) | np.asarray(x, dtype=np.int64)


def decode_pairs(keys, n_genres: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(region, genre, n, x) of keys made by :func:`encode_pairs`."""
    keys = np.asarray(keys, dtype=np.int64)
    group = keys >> (2 * _BITS)
    return group // n_genres, group % n_genres, (keys >> _BITS) & _MASK, keys & _MASK


def count_pairs(counts: np.ndarray, code: np.ndarray) -> np.ndarray:
    """Sorted distinct keys (:func:`encode_pairs`) of every user's ``(x_ij, n_i)`` in every genre.

    Where ``regions * K * (max n + 1)^2`` is small (bounded counts) the distinct pairs are
    marked in a dense table, in O(users * K); otherwise (heavy-tailed totals) they are
    sorted with ``np.unique``.
    """
    x = np.asarray(counts, dtype=np.int64)
    k = x.shape[1]
    if x.shape[0] == 0:
        return np.empty(0, dtype=np.int64)
    code = np.asarray(code, dtype=np.int64)
    n = x.sum(axis=1)
    width = int(n.max()) + 1
    groups = (int(code.max()) + 1) * k
    group = code[:, None] * k + np.arange(k)[None, :]
    if groups * width * width <= max(8 * x.size, 1 << 20):
        seen = np.zeros(groups * width * width, dtype=bool)
        seen[((group * width + n[:, None]) * width + x).ravel()] = True
        flat = np.flatnonzero(seen)
        g, rest = np.divmod(flat, width * width)
        return encode_pairs(g // k, g % k, rest // width, rest % width, k)
    return np.unique(encode_pairs(code[:, None], np.arange(k)[None, :], n[:, None], x, k).ravel())


@dataclass(frozen=True)
class Histograms:
    """The regional histograms and the distinct ``(region, genre, n, x)`` of a set of users.

    Attributes
    ----------
    stats : RegionStats
        Histograms of totals and of each genre's counts, per region.
    pairs : ndarray of int64
        Sorted distinct keys (:func:`encode_pairs`): one per (region, genre, total, count)
        that some user has.
    """

    stats: RegionStats
    pairs: np.ndarray

    def __add__(self, other: "Histograms") -> "Histograms":
        return Histograms(self.stats + other.stats, np.union1d(self.pairs, other.pairs))

    @property
    def nbytes(self) -> int:
        """Memory of the histograms and the pair keys."""
        return self.stats.nbytes + self.pairs.nbytes


def block_histograms(block: CountBlock, regions: Sequence[str]) -> Histograms:
    """:func:`block_suffstats` and :func:`count_pairs` of one block's users with plays."""
    present = block.region >= 0
    x = block.counts if present.all() else block.counts[present]
    code = block.region if present.all() else block.region[present]
    return Histograms(block_suffstats(block, regions), count_pairs(x, code))


def streaming_histograms(counts, regions: Sequence[str], genres: Sequence[str], *, client=None,
                         fan_in: int = 8) -> Histograms:
    """Like :func:`streaming_suffstats`, with the distinct pairs too (:func:`block_histograms`).

    Parameters
    ----------
    counts : list of CountBlock (futures, delayed or values), or pandas.DataFrame
        Per-user counts (a frame: ``region`` codes and one column per genre).
    regions, genres : sequence of str
    client : distributed.Client, optional
    fan_in : int
        Summaries added per task.

    Returns
    -------
    Histograms
    """
    if isinstance(counts, pd.DataFrame):
        x = counts[list(genres)].to_numpy(np.int64)
        code = counts["region"].to_numpy()
        return Histograms(region_suffstats(counts, regions, genres), count_pairs(x, code))
    if isinstance(counts, CountBlock):
        return block_histograms(counts, regions)
    with cluster_client(client) as c:
        return _reduce_blocks(c, block_histograms, counts, (tuple(regions),), fan_in)
