"""hbm.scale.jobs (empirical Bayes): the whole job's statistics, fit and reported costs.

The end-to-end tests share one small log and one EB run on a local Dask cluster of two
worker processes (tests/scale/conftest.py). Speed is measured by bench/bench_eb_scaling.py,
not asserted here.
"""

import numpy as np

from hbm import eb
from hbm.book.data import GENRES

from .helpers import K, N_USERS


def test_streamed_stats_and_fit_equal_direct(pipeline):
    """Streamed statistics equal those of the direct counts; the regional priors equal fit_dirichlet_multinomial's exactly."""
    log, run, direct = pipeline
    assert run.stats.n_users == N_USERS
    for r, name in enumerate(log.regions):
        x = direct.loc[direct["region"] == r, list(GENRES)].to_numpy()
        ref = eb.dirichlet_multinomial_suffstats(x)
        got = run.stats.region(name)
        assert np.array_equal(got.count_hist[:, : ref.count_hist.shape[1]], ref.count_hist)
        assert np.array_equal(got.total_hist[: ref.total_hist.size], ref.total_hist)
        assert np.array_equal(run.priors.by_region[r].alpha, eb.fit_dirichlet_multinomial(x).alpha)
    assert np.array_equal(run.priors.overall.alpha,
                          eb.fit_dirichlet_multinomial(direct[list(GENRES)].to_numpy()).alpha)


def test_run_reports_costs(pipeline):
    """The run reports positive step times, client and worker peak memory, the counts' size and a small fit peak."""
    log, run, direct = pipeline
    assert set(run.seconds) == {"aggregate", "suffstats", "fit", "posteriors", "total"}
    assert all(v > 0 for v in run.seconds.values())
    assert run.peak_rss_client > 0 and run.peak_rss_workers > 0
    assert run.peak_rss == run.peak_rss_client + run.peak_rss_workers
    assert 0 < run.workers_start_rss <= run.peak_rss_workers
    assert 0 < run.client_start_rss <= run.peak_rss_client
    assert run.n_workers == 2 and run.n_threads == 2
    assert run.counts_bytes == N_USERS * (4 * K + 1)
    assert 0 < run.fit_peak_bytes < 2 * 1024 * 1024
    assert run.users_per_second > 0
    assert run.sample["user_id"].tolist() == list(range(100))
    assert np.array_equal(run.sample[list(GENRES)].to_numpy(), direct[list(GENRES)].to_numpy()[:100])
