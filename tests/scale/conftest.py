"""Shared fixtures of the hbm.scale tests: a local Dask cluster, one small log and one EB run on it."""

import pytest

from hbm import scale
from hbm.book.scale import MUSIC_LOG

from .helpers import CHUNK, N_USERS, SEED


@pytest.fixture(scope="session")
def client():
    """A local Dask cluster with two single-threaded worker processes (counts cross processes)."""
    with scale.local_client(n_workers=2, threads_per_worker=1) as c:
        yield c


@pytest.fixture(scope="session")
def pipeline(tmp_path_factory, client):
    """A 24,000-user log in three time partitions, written by the cluster, and the EB job run on it (blocks of 5,000 users)."""
    root = tmp_path_factory.mktemp("scale")
    log = scale.write_play_log(root / "log", N_USERS, seed=SEED, chunk_users=CHUNK, client=client, **MUSIC_LOG)
    run = scale.run_eb(log, root, client=client, block_users=5_000, sample_users=100)
    return log, run, scale.simulate_counts(log)


@pytest.fixture(scope="session")
def full_bayes(pipeline, client, tmp_path_factory):
    """The full Bayes job on the shared 24,000-user log, on the same cluster (blocks of 5,000 users)."""
    log, eb_run, direct = pipeline
    run = scale.run_full_bayes(log, tmp_path_factory.mktemp("fb"), client=client, random_seed=SEED,
                               block_users=5_000)
    return log, run, direct, eb_run
