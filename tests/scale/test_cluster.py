"""hbm.scale.cluster: clients, scheduler addresses and peak memory.

The end-to-end tests share one small log and one EB run on a local Dask cluster of two
worker processes (tests/scale/conftest.py). Speed is measured by bench/bench_eb_scaling.py,
not asserted here.
"""

import numpy as np
import pyarrow.parquet as pq

from hbm import scale
from hbm.book.data import GENRES



def test_traced_peak_sees_numpy_allocation():
    """A function allocating an 8 MB array reports a peak of at least 8 MB."""
    result, peak = scale.traced_peak(lambda: float(np.ones(1_000_000).sum()))
    assert result == 1e6
    assert peak >= 8_000_000


def test_peak_memory_samples_this_process():
    """PeakMemory reports at least this process's resident memory."""
    import psutil

    with scale.PeakMemory(interval=0.01) as mem:
        block = np.ones(5_000_000)
        block[::512] = 2.0
    assert mem.peak_main >= 40_000_000
    assert mem.peak_total >= mem.peak_main
    assert psutil.Process().memory_info().rss > 0


def test_scheduler_address_from_environment(client, monkeypatch, tmp_path):
    """With DASK_SCHEDULER_ADDRESS set and no client, the job connects to that scheduler instead of starting a cluster."""
    monkeypatch.setenv(scale.SCHEDULER_ENV, client.scheduler.address)
    with scale.cluster_client() as c:
        assert c.scheduler.address == client.scheduler.address
        assert c is not client
    events = tmp_path / "events"
    events.mkdir()
    pq.write_table(scale.events_table(np.array([0, 1]), np.array([0, 3]), np.array([[1, 2, 0, 0, 0], [0, 0, 0, 0, 4]])),
                   events / "a.parquet")
    got = scale.user_genre_counts(events, GENRES)
    assert got.loc[1, "rock"] + got.loc[1, "hiphop"] + got.loc[1, "electronic"] + got.loc[1, "classical"] == 4


def test_local_client_takes_no_fixed_port():
    """Two local clusters at once (the book's chapter and a test, say) start without a port warning."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # "Port 8787 is already in use" would raise here
        with scale.local_client(processes=False) as first, scale.local_client(processes=False) as second:
            assert first.scheduler.address != second.scheduler.address
