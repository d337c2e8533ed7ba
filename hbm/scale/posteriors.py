"""Every user's posterior, block by block on the workers that hold the counts, written to Parquet.

Empirical Bayes: the conjugate posterior ``Dirichlet(alpha_r + x_i)`` given the fitted priors
(:func:`posterior_arrays`). Full Bayes: the mixture over posterior draws, looked up per user
in the table of distinct ``(region, genre, n, x)`` (:class:`hbm.scale.mixture.PairPosteriors`,
sent once to every worker). Either way each block of users becomes one Parquet file, written
by the worker that holds it; only file names travel back.

References: @minka2000, @gelman2013 (sec. 3.4).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from scipy import special

from hbm.scale.cluster import cluster_client
from hbm.scale.count import CountBlock
from hbm.scale.fit import EBPriors
from hbm.scale.histograms import _as_futures
from hbm.scale.mixture import PairPosteriors

__all__ = [
    "posterior_arrays",
    "posterior_partition",
    "write_posterior_block",
    "write_posteriors",
    "read_posteriors",
    "full_bayes_arrays",
    "write_full_bayes_block",
    "write_full_bayes_posteriors",
]


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


def posterior_partition(counts: pd.DataFrame, alpha: np.ndarray, genres: Sequence[str],
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
    uid, code, x = _present(block)
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
# Full Bayes: mixtures over the posterior draws, looked up per distinct pair
# =========================================================================== #
def _full_bayes_schema(genres) -> pa.Schema:
    fields = [("user_id", pa.int32()), ("region", pa.int8()), ("n", pa.int32())]
    fields += [(f"{g}_mean", pa.float64()) for g in genres]
    for g in genres:
        fields += [(f"{g}_lower", pa.float64()), (f"{g}_upper", pa.float64())]
    return pa.schema(fields)


def full_bayes_arrays(counts: np.ndarray, code: np.ndarray, table: PairPosteriors) -> dict:
    """Full Bayes posterior of a block of users, gathered from the table of distinct pairs.

    Returns
    -------
    dict
        ``"n"`` (int32), ``"mean"``, ``"lower"``, ``"upper"`` (float64, (n, K)).
    """
    x = np.asarray(counts, dtype=np.int64)
    n = x.sum(axis=1)
    cols = [table.genre_columns(x[:, k], n, code, k) for k in range(x.shape[1])]
    return {"n": n.astype(np.int32), **{name: np.column_stack([c[i] for c in cols]) if cols else np.empty((0, 0))
                                        for i, name in enumerate(("mean", "lower", "upper"))}}


def write_full_bayes_block(block: CountBlock, table: PairPosteriors, genres: Sequence[str], path: str) -> int:
    """Full Bayes posteriors of one block's users with plays, written to one Parquet file; returns rows.

    Columns ``user_id``, ``region``, ``n``, then ``<genre>_mean`` of every genre, then
    ``<genre>_lower`` and ``<genre>_upper`` of every genre (float64), written like
    :func:`write_posterior_block`.
    """
    out = _full_bayes_table(*_present(block), table, genres)
    pq.write_table(out, path, compression="none", row_group_size=1 << 20)
    return out.num_rows


def _full_bayes_table(uid, code, x, table: PairPosteriors, genres) -> pa.Table:
    x = np.asarray(x)
    n = x.sum(axis=1, dtype=np.int64)
    per_genre = [table.genre_columns(np.ascontiguousarray(x[:, k]), n, code, k) for k in range(len(genres))]
    cols = [np.asarray(uid, dtype=np.int32), np.asarray(code, dtype=np.int8), n.astype(np.int32)]
    cols += [mean for mean, _, _ in per_genre]
    for _, lower, upper in per_genre:
        cols += [lower, upper]
    return pa.Table.from_arrays([pa.array(c) for c in cols], schema=_full_bayes_schema(genres))


def write_full_bayes_posteriors(counts, table: PairPosteriors, genres: Sequence[str], out_path, *,
                                client=None) -> Path:
    """Every user's full Bayes posterior, block by block on the workers, as Parquet.

    The table of distinct pairs is sent once to every worker; block ``b`` is written to
    ``<out_path>/part-<b>.parquet`` by the worker that holds it.

    Parameters
    ----------
    counts : list of CountBlock futures or delayed, or pandas.DataFrame
        Per-user counts (a frame: ``user_id``, ``region`` codes, one column per genre).
    table : PairPosteriors
        From :func:`hbm.scale.mixture.pair_posteriors` on the same users' pairs.
    genres : sequence of str
    out_path : path-like
    client : distributed.Client, optional

    Returns
    -------
    pathlib.Path
    """
    out = Path(out_path)
    out.mkdir(parents=True, exist_ok=True)
    if isinstance(counts, pd.DataFrame):
        frame = counts if "user_id" in counts.columns else counts.reset_index()
        written = _full_bayes_table(frame["user_id"].to_numpy(), frame["region"].to_numpy(),
                                    frame[list(genres)].to_numpy(np.int64), table, genres)
        pq.write_table(written, out / "part-00000.parquet", compression="none")
        return out
    with cluster_client(client) as c:
        [shared] = c.scatter([table], broadcast=True)
        futures = [c.submit(write_full_bayes_block, blk, shared, list(genres), str(out / f"part-{b:05d}.parquet"),
                            pure=False) for b, blk in enumerate(_as_futures(c, counts))]
        c.gather(futures)
    return out


def _present(block: CountBlock):
    """(user ids, region codes, counts) of a block's users with plays."""
    present = block.region >= 0
    if present.all():
        return np.arange(block.first, block.first + block.region.size), block.region, block.counts
    idx = np.flatnonzero(present)
    return idx + block.first, block.region[idx], block.counts[idx]
