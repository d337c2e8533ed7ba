"""The whole jobs, timed and measured: empirical Bayes (:func:`run_eb`) and full Bayes (:func:`run_full_bayes`).

Both read the event log once (:func:`hbm.scale.count.user_count_blocks`, the blocks stay in
the workers' memory), reduce it to regional histograms on the workers, fit here from the
histograms alone, and write every user's posterior from the workers. They run unchanged on a
local cluster or on a multi-machine one (:func:`hbm.scale.cluster.cluster_client`); Dask
recomputes the blocks of a worker that dies, and the results do not change.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from hbm.scale.cluster import ClusterPeaks, cluster_client, total_threads, traced_peak
from hbm.scale.count import CountBlock, user_count_blocks
from hbm.scale.fit import EBPriors, FullBayesFit, fit_full_bayes, fit_priors
from hbm.scale.histograms import Histograms, RegionStats, streaming_histograms, streaming_suffstats
from hbm.scale.log import PlayLog
from hbm.scale.mixture import PairPosteriors, interval_draws_for, pair_posteriors
from hbm.scale.posteriors import write_full_bayes_posteriors, write_posteriors

__all__ = ["ScaleRun", "run_eb", "FullBayesRun", "run_full_bayes"]


class _Steps:
    """Wall time of named steps (``with steps("name"):``) and of the whole, from creation."""

    def __init__(self):
        self.seconds: dict = {}
        self.start = time.perf_counter()

    @contextmanager
    def __call__(self, name: str):
        t = time.perf_counter()
        yield
        self.seconds[name] = time.perf_counter() - t

    def done(self) -> dict:
        self.seconds["total"] = time.perf_counter() - self.start
        return self.seconds


class _Job:
    """A job on a cluster: its client, the counted blocks, the step timer and the memory peaks."""

    def __init__(self, c):
        self.client = c
        self.n_threads = total_threads(c)
        self.n_workers = len(c.nthreads())
        self.blocks = self.peaks = self.steps = None

    @contextmanager
    def measured(self, log: PlayLog, n_groups: int | None, block_users: int):
        """Peak memory and step times around the block, which starts with the count pass (``aggregate``).

        The log's files are counted by one task per group into dense per-user arrays, summed
        block of users by block of users (:func:`hbm.scale.count.user_count_blocks`); the
        blocks (futures, in ``self.blocks``) stay in the workers' memory.
        """
        from distributed import wait

        with ClusterPeaks(self.client) as self.peaks:
            self.steps = _Steps()
            with self.steps("aggregate"):
                self.blocks = self.client.compute(user_count_blocks(
                    log.events_path, log.n_users, log.genres, n_groups=n_groups or self.n_threads,
                    block_users=block_users))
                wait(self.blocks)
            yield self

    def costs(self) -> dict:
        """The memory and cluster figures both runs report; releases the blocks."""
        counts_bytes = sum(self.client.gather(self.client.map(_block_nbytes, self.blocks)))
        self.blocks = None
        p = self.peaks
        return {"peak_rss": p.client_peak + p.workers_total, "peak_rss_client": p.client_peak,
                "peak_rss_workers": p.workers_total, "client_start_rss": p.client_start,
                "workers_start_rss": p.workers_start_total, "counts_bytes": int(counts_bytes),
                "n_workers": self.n_workers, "n_threads": self.n_threads}


# =========================================================================== #
# Empirical Bayes
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
    with cluster_client(client) as c:
        job = _Job(c)
        with job.measured(log, n_groups, block_users):
            with job.steps("suffstats"):
                stats = streaming_suffstats(job.blocks, log.regions, log.genres, client=c)
            with job.steps("fit"):
                priors = fit_priors(stats, log.genres)
            with job.steps("posteriors"):
                path = write_posteriors(job.blocks, priors, Path(out_dir) / "posteriors",
                                        interval_genres=interval_genres, prob=prob, client=c)
            seconds = job.steps.done()
        # tracemalloc also sees the allocations of the client's other threads (Dask's
        # communication), so the fit's own peak is the least of three traced repeats
        fit_peak = min(traced_peak(fit_priors, stats, log.genres)[1] for _ in range(3))
        sample = None
        if sample_users > 0:
            sample = c.submit(_block_head, job.blocks[0], list(log.genres), sample_users).result()
        costs = job.costs()
    return ScaleRun(stats.n_users, log.n_events, stats, priors, path, seconds, fit_peak_bytes=fit_peak,
                    sample=sample, **costs)


# =========================================================================== #
# Full Bayes
# =========================================================================== #
@dataclass(frozen=True)
class FullBayesRun:
    """Result and costs of :func:`run_full_bayes`.

    Attributes
    ----------
    n_users, n_events : int
    histograms : Histograms
        Regional histograms and the distinct ``(region, genre, n, x)``.
    fit : FullBayesFit
        Draws and diagnostics of the three-level model.
    pairs : PairPosteriors
        Every distinct pair's posterior mean and interval.
    posterior_path : pathlib.Path
    seconds : dict
        Wall time of each step: ``aggregate`` (read and count the events), ``histograms``,
        ``fit`` (sampling, and compiling the model where this process had not yet),
        ``pairs`` (the posteriors of the distinct pairs), ``posteriors`` (every user's,
        written) and ``total``; ``compile`` is the part of ``fit`` spent compiling.
    peak_rss, peak_rss_client, peak_rss_workers, client_start_rss, workers_start_rss : int
        As in :class:`ScaleRun`.
    counts_bytes : int
        Memory of the per-user counts (all blocks).
    n_workers, n_threads : int
    """

    n_users: int
    n_events: int
    histograms: Histograms
    fit: FullBayesFit
    pairs: PairPosteriors = field(repr=False)
    posterior_path: Path = Path()
    seconds: dict = field(default_factory=dict)
    peak_rss: int = 0
    peak_rss_client: int = 0
    peak_rss_workers: int = 0
    client_start_rss: int = 0
    workers_start_rss: int = 0
    counts_bytes: int = 0
    n_workers: int = 0
    n_threads: int = 0

    @property
    def users_per_second(self) -> float:
        """Users processed per second of the whole job."""
        return self.n_users / self.seconds["total"]


def _pair_chunks(c, keys: np.ndarray, alpha: np.ndarray, parts: int, **kwargs) -> PairPosteriors:
    """:func:`pair_posteriors` of ``parts`` slices of the keys on the workers, joined in order."""
    bounds = np.linspace(0, keys.size, max(1, min(parts, keys.size)) + 1).astype(np.int64)
    [shared] = c.scatter([alpha], broadcast=True)
    futures = [c.submit(pair_posteriors, keys[a:b], shared, pure=False, **kwargs)
               for a, b in zip(bounds[:-1], bounds[1:])]
    done = c.gather(futures)
    first = done[0]
    return PairPosteriors(keys, *(np.concatenate([getattr(d, name) for d in done]) for name in ("mean", "lower", "upper")),
                          first.n_genres, first.prob, first.interval_draws)


def run_full_bayes(log: PlayLog, out_dir, *, random_seed: int, client=None, prob: float = 0.95,
                   draws: int = 500, tune: int = 500, chains: int = 4, interval_draws: int | None = None,
                   block_users: int = 1_000_000, n_groups: int | None = None) -> FullBayesRun:
    """The whole full Bayes job: count, histograms, nutpie fit, pair posteriors, user posteriors.

    1. :func:`hbm.scale.count.user_count_blocks`, as in :func:`run_eb`: the log is read once
       and the per-user counts stay on the workers.
    2. :func:`hbm.scale.histograms.streaming_histograms`: the regional histograms and the
       distinct ``(region, genre, n, x)`` of every block, added in a tree.
    3. :func:`hbm.scale.fit.fit_full_bayes` here: the three-level model of chapter 3,
       sampled with nutpie on the histograms alone (exact: no user is left out).
    4. :func:`hbm.scale.mixture.pair_posteriors` of the distinct pairs, split over the
       workers: means over all draws, intervals over ``interval_draws`` draws.
    5. :func:`hbm.scale.posteriors.write_full_bayes_block` of every block on its worker:
       means and intervals of every genre for every user, as Parquet.

    Parameters
    ----------
    log : PlayLog
    out_dir : path-like
        Directory for the posteriors (``<out_dir>/posteriors``).
    random_seed : int
        The sampler's seed: same log and seed, same posteriors, on any cluster.
    client : distributed.Client, optional
    prob : float
        Interval probability.
    draws, tune, chains : int
        Passed to nutpie: 2,000 draws in all by default (the histogram model is small and
        mixes well; the benchmark records its effective sample sizes).
    interval_draws : int, optional
        Posterior draws (evenly thinned) that the intervals' mixtures are taken over; default
        :func:`hbm.scale.mixture.interval_draws_for` the number of distinct pairs.
    block_users, n_groups : int
        As in :func:`run_eb`.

    Returns
    -------
    FullBayesRun
    """
    with cluster_client(client) as c:
        job = _Job(c)
        with job.measured(log, n_groups, block_users):
            with job.steps("histograms"):
                hist = streaming_histograms(job.blocks, log.regions, log.genres, client=c)
            with job.steps("fit"):
                fit = fit_full_bayes(hist.stats, log.genres, random_seed=random_seed, draws=draws, tune=tune,
                                     chains=chains)
            with job.steps("pairs"):
                if interval_draws is None:
                    interval_draws = interval_draws_for(hist.pairs.size, fit.alpha.shape[0])
                pairs = _pair_chunks(c, hist.pairs, fit.alpha, 4 * job.n_threads, prob=prob,
                                     interval_draws=interval_draws)
            with job.steps("posteriors"):
                path = write_full_bayes_posteriors(job.blocks, pairs, log.genres, Path(out_dir) / "posteriors",
                                                   client=c)
            seconds = job.steps.done()
            seconds["compile"] = fit.seconds["compile"]
        costs = job.costs()
    return FullBayesRun(hist.stats.n_users, log.n_events, hist, fit, pairs, path, seconds, **costs)
