"""Where the scale jobs run, and what memory they take there.

Every function that computes with Dask takes ``client``, a :class:`distributed.Client`.
Without one, :func:`cluster_client` connects to the scheduler named by the environment
variable ``DASK_SCHEDULER_ADDRESS`` if it is set, and otherwise starts a :func:`local_client`
for the call. On a multi-machine cluster the log's directory and the output directory must
be on storage every worker can reach (a shared file system), and ``hbm[scale]`` must be
installed on the workers. :class:`ClusterPeaks` measures the exact peak resident memory of
the client and of every worker process, wherever they run.
"""

from __future__ import annotations

import os
import threading
import tracemalloc
from contextlib import contextmanager

import psutil

__all__ = [
    "SCHEDULER_ENV",
    "local_client",
    "cluster_client",
    "total_threads",
    "PeakMemory",
    "traced_peak",
    "reset_peak_rss",
    "peak_rss",
    "ClusterPeaks",
]

#: Environment variable naming the scheduler of a Dask cluster to run on.
SCHEDULER_ENV = "DASK_SCHEDULER_ADDRESS"


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




# =========================================================================== #
# Peak memory of the client and of the workers
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


def total_threads(client) -> int:
    """Worker threads of a cluster."""
    return max(1, sum(client.nthreads().values()))
