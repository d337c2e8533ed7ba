"""hbm.scale.jobs on a real multi-process cluster: a `dask scheduler` and two `dask worker` processes on loopback.

Both jobs run unchanged against the scheduler's address; one worker is killed (SIGKILL) as soon
as the first tasks of a job have finished, and the results must be identical to the local
run's (tests/scale/conftest.py). Every wait is bounded, and the processes are ended in the
fixture's teardown. Loopback only: the scheduler and workers listen on 127.0.0.1.
"""

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from hbm import scale

from .helpers import ROOT, SEED

DASK = Path(sys.executable).parent / "dask"
TIMEOUT = 60


def _wait_for(predicate, what: str, timeout: float = TIMEOUT, interval: float = 0.05):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout} s waiting for {what}")


@pytest.fixture(scope="module")
def loopback_cluster(tmp_path_factory):
    """A scheduler and two single-threaded workers (no nanny: a killed worker stays dead), on 127.0.0.1."""
    from distributed import Client

    folder = tmp_path_factory.mktemp("cluster")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    procs = []

    def start(args, name):
        log = open(folder / f"{name}.log", "w")
        procs.append(subprocess.Popen([str(DASK), *args], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT))

    try:
        info = folder / "scheduler.json"
        start(["scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard", "--scheduler-file", str(info)],
              "scheduler")
        _wait_for(lambda: info.exists() and info.stat().st_size > 0, "the scheduler file")
        address = json.loads(info.read_text())["address"]
        assert address.startswith("tcp://127.0.0.1:")
        def two_workers():
            """Start workers until two are alive (the first call starts both); return every worker pid started."""
            with Client(address, timeout=TIMEOUT) as c:
                for _ in range(2 - len(c.nthreads())):
                    name = f"worker-{len(procs) - 1}"
                    start(["worker", address, "--host", "127.0.0.1", "--nthreads", "1", "--no-nanny",
                           "--no-dashboard", "--memory-limit", "0", "--name", name], name)
                c.wait_for_workers(2, timeout=TIMEOUT)
            return {p.pid for p in procs[1:]}

        yield address, two_workers
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
        for p in procs:
            p.wait(timeout=TIMEOUT)


def _run_killing_one_worker(address, worker_pids, job):
    """Run ``job(client)`` in a thread; SIGKILL a worker holding results once a task has finished."""
    from distributed import Client

    with Client(address, timeout=TIMEOUT) as client, Client(address, timeout=TIMEOUT) as watcher:
        pids = watcher.run(os.getpid)
        assert set(pids.values()) <= worker_pids  # only processes this test started
        result, errors = {}, []

        def target():
            try:
                result["value"] = job(client)
            except BaseException as err:  # reported below
                errors.append(err)

        thread = threading.Thread(target=target, daemon=True)
        thread.start()
        holding = {}
        _wait_for(lambda: holding.update({a: k for a, k in watcher.has_what().items() if k}) or holding or
                  not thread.is_alive(), "a finished task")
        assert thread.is_alive(), "the job finished before any worker could be killed"
        victim = next(iter(holding))
        os.kill(pids[victim], signal.SIGKILL)
        thread.join(timeout=4 * TIMEOUT)
        assert not thread.is_alive(), "the job did not finish after a worker was killed"
        if errors:
            raise errors[0]
        assert len(watcher.nthreads()) == 1
        return result["value"]


def _same_frames(a_path, b_path):
    a, b = scale.read_posteriors(a_path), scale.read_posteriors(b_path)
    pd.testing.assert_frame_equal(a, b, check_exact=True)


def test_both_jobs_on_a_loopback_cluster_survive_a_killed_worker(loopback_cluster, pipeline, full_bayes, tmp_path):
    """EB then full Bayes run against the scheduler's address, each losing a worker mid-job; results equal the local run's."""
    address, two_workers = loopback_cluster
    log, eb_local, _ = pipeline
    _, fb_local, _, _ = full_bayes

    eb_remote = _run_killing_one_worker(address, two_workers(), lambda c: scale.run_eb(
        log, tmp_path / "eb", client=c, block_users=5_000))
    assert np.array_equal(eb_remote.priors.alpha, eb_local.priors.alpha)
    _same_frames(eb_remote.posterior_path, eb_local.posterior_path)

    # the second job starts on two workers again: one more in place of the dead one
    fb_remote = _run_killing_one_worker(address, two_workers(), lambda c: scale.run_full_bayes(
        log, tmp_path / "fb", client=c, random_seed=SEED, block_users=5_000))
    assert np.array_equal(fb_remote.fit.alpha, fb_local.fit.alpha)
    assert np.array_equal(fb_remote.histograms.pairs, fb_local.histograms.pairs)
    _same_frames(fb_remote.posterior_path, fb_local.posterior_path)
