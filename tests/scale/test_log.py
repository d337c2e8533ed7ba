"""hbm.scale.log: simulated play-event logs, partitioned by time, and their description.

The end-to-end tests share one small log and one EB run on a local Dask cluster of two
worker processes (tests/scale/conftest.py). Speed is measured by bench/bench_eb_scaling.py,
not asserted here.
"""

import numpy as np
import pyarrow.parquet as pq
import pytest

from hbm import scale
from hbm.book import simulate
from hbm.book.data import GENRES, DataError
from hbm.book.scale import MUSIC_LOG
from hbm.scale import log as log_mod

from .helpers import CHUNK, K, N_USERS


def test_events_table_hand_case():
    """Counts [[2,0,1],[0,1,0]] expand to three rows of user 5 and one row of user 9 with those genres."""
    counts = np.array([[2, 0, 1], [0, 1, 0]])
    table = scale.events_table(np.array([5, 9]), np.array([1, 0]), counts)
    assert table.schema == scale.EVENT_SCHEMA
    assert table.column("user_id").to_pylist() == [5, 5, 5, 9]
    assert table.column("region").to_pylist() == [1, 1, 1, 0]
    assert table.column("genre").to_pylist() == [0, 0, 2, 1]


def test_events_table_shuffle_keeps_multiset():
    """Shuffling reorders the rows but the per-user counts are unchanged."""
    rng = np.random.default_rng(1)
    counts = rng.integers(0, 5, size=(50, K))
    ids = np.arange(50)
    plain = scale.events_table(ids, np.zeros(50), counts).to_pandas()
    mixed = scale.events_table(ids, np.zeros(50), counts, rng).to_pandas()
    assert len(plain) == len(mixed) == counts.sum()
    assert not np.array_equal(plain["user_id"].to_numpy(), mixed["user_id"].to_numpy())
    back = scale.partial_user_counts(mixed, GENRES)
    assert np.array_equal(back[list(GENRES)].to_numpy(), counts[counts.sum(axis=1) > 0])


def test_simulate_chunk_ranges_and_reproducibility():
    """Ids are consecutive int32, totals lie in [n_min, n_max], and a seed reproduces the chunk."""
    _, weights, alpha = log_mod._spec(simulate.REGION_PROFILES, simulate.REGION_KAPPA, GENRES)
    a = scale.simulate_chunk(100, 1000, np.random.default_rng(3), alpha, weights, 2, 50)
    b = scale.simulate_chunk(100, 1000, np.random.default_rng(3), alpha, weights, 2, 50)
    uid, reg, x = a
    assert uid.dtype == np.int32 and reg.dtype == np.int8
    assert np.array_equal(uid, np.arange(100, 1100))
    assert x.sum(axis=1).min() >= 2 and x.sum(axis=1).max() <= 50
    assert set(np.unique(reg)) == {0, 1, 2, 3}
    assert all(np.array_equal(p, q) for p, q in zip(a, b))


def test_spec_rejects_bad_regions():
    """Unknown regions, bad weights and bad profiles raise ValueError."""
    with pytest.raises(ValueError, match="no profile"):
        log_mod._spec(simulate.REGION_PROFILES, simulate.REGION_KAPPA, GENRES, regions=["Mars"])
    with pytest.raises(ValueError, match="region_weights"):
        log_mod._spec(simulate.REGION_PROFILES, simulate.REGION_KAPPA, GENRES, [0.5, 0.5, 0.5, 0.5])
    with pytest.raises(ValueError, match="profile"):
        log_mod._spec({"X": (0.5, 0.5)}, {"X": 3.0}, GENRES)


def test_read_play_log_missing_description(tmp_path):
    """A directory without log.json raises DataError naming the file."""
    with pytest.raises(DataError, match="log.json"):
        scale.read_play_log(tmp_path)


def test_log_layout(pipeline):
    """The log has one zstd Parquet file per time partition with EVENT_SCHEMA, and log.json round-trips."""
    log, _, direct = pipeline
    files = sorted(log.events_path.glob("*.parquet"))
    assert len(files) == log.n_files == 3
    assert pq.read_schema(files[0]).remove_metadata() == scale.EVENT_SCHEMA
    assert pq.read_metadata(files[0]).row_group(0).column(0).compression == "ZSTD"
    assert sum(pq.read_metadata(f).num_rows for f in files) == log.n_events == direct[list(GENRES)].to_numpy().sum()
    again = scale.read_play_log(log.path)
    assert again.n_events == log.n_events and again.truth == log.truth
    assert again.truth["partitioning"] == "time"
    assert np.array_equal(again.true_alpha(), log.true_alpha())
    assert not (log.path / "_staging").exists()


def test_log_is_partitioned_by_time(pipeline):
    """Every file holds plays of users from every simulation chunk, and most users with 3+ plays appear in several files."""
    log, _, direct = pipeline
    per_file = [np.unique(pq.read_table(f, columns=["user_id"])["user_id"].to_numpy())
                for f in sorted(log.events_path.glob("*.parquet"))]
    for users in per_file:
        assert set(np.unique(users // CHUNK)) == {0, 1, 2}
        assert users.size > N_USERS / 2
    files_per_user = np.bincount(np.concatenate(per_file), minlength=N_USERS)
    heavy = direct[list(GENRES)].to_numpy().sum(axis=1) >= 3
    assert np.mean(files_per_user[heavy] >= 2) > 0.8


def test_write_without_client_is_identical(pipeline, tmp_path):
    """Writing the same log in-process (no client) gives identical Parquet files."""
    log, _, _ = pipeline
    local = scale.write_play_log(tmp_path / "log", N_USERS, seed=11, chunk_users=CHUNK, **MUSIC_LOG)
    pairs = list(zip(sorted(log.events_path.iterdir()), sorted(local.events_path.iterdir())))
    assert len(pairs) == 3
    for a, b in pairs:
        assert pq.read_table(a).equals(pq.read_table(b))


def test_write_refuses_nonempty_directory(pipeline):
    """Writing into a directory that already holds a log raises ValueError."""
    log, _, _ = pipeline
    with pytest.raises(ValueError, match="not empty"):
        scale.write_play_log(log.path, 10, seed=1, **MUSIC_LOG)
