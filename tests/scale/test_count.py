"""hbm.scale.count: events to dense per-user counts, in memory and on a Dask cluster.

The end-to-end tests share one small log and one EB run on a local Dask cluster of two
worker processes (tests/scale/conftest.py). Speed is measured by bench/bench_eb_scaling.py,
not asserted here.
"""

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from hbm import scale
from hbm.book.data import GENRES, DataError
from hbm.scale import count as count_mod

from .helpers import K


def _naive_counts(events: pd.DataFrame) -> pd.DataFrame:
    """Reference: a pandas crosstab of user by genre."""
    table = pd.crosstab(events["user_id"], events["genre"]).reindex(columns=range(K), fill_value=0)
    table.columns = list(GENRES)
    return table.reset_index().astype(np.int64)


@pytest.mark.parametrize("spread", [10, 10**7], ids=["dense-ids", "sparse-ids"])
def test_partial_user_counts_matches_crosstab(spread, rng):
    """Dense (bincount) and sparse (np.unique) id paths both equal a crosstab of the events."""
    ids = np.unique(rng.integers(0, spread * 100, size=300))
    uid = rng.choice(ids, size=5000)
    events = pd.DataFrame({"user_id": uid.astype(np.int32), "region": (uid % 4).astype(np.int8),
                           "genre": rng.integers(0, K, size=5000).astype(np.int8)})
    got = scale.partial_user_counts(events, GENRES)
    want = _naive_counts(events)
    assert np.array_equal(got["user_id"].to_numpy(), want["user_id"].to_numpy())
    assert np.array_equal(got[list(GENRES)].to_numpy(), want[list(GENRES)].to_numpy())
    assert np.array_equal(got["region"].to_numpy(), got["user_id"].to_numpy() % 4)


def test_partial_user_counts_empty_partition():
    """An empty partition gives an empty frame with the declared columns and dtypes."""
    empty = pd.DataFrame({"user_id": np.array([], np.int32), "region": np.array([], np.int8),
                          "genre": np.array([], np.int8)})
    got = scale.partial_user_counts(empty, GENRES)
    assert len(got) == 0
    assert got.dtypes.equals(count_mod._counts_meta(GENRES).dtypes)


def test_partial_user_counts_bad_input_names_column():
    """A genre code out of range or a user in two regions raises DataError naming the column."""
    bad_genre = pd.DataFrame({"user_id": [1, 2], "region": [0, 0], "genre": [0, 7]})
    with pytest.raises(DataError, match="column 'genre'") as err:
        scale.partial_user_counts(bad_genre, GENRES, source="logs/part-0.parquet")
    assert err.value.column == "genre" and "logs/part-0.parquet" in str(err.value)
    two_regions = pd.DataFrame({"user_id": [1, 1], "region": [0, 2], "genre": [0, 1]})
    with pytest.raises(DataError, match="user 1 has plays in two regions"):
        scale.partial_user_counts(two_regions, GENRES)
    negative = pd.DataFrame({"user_id": [-1], "region": [0], "genre": [0]})
    with pytest.raises(DataError, match="user_id"):
        scale.partial_user_counts(negative, GENRES)


def test_dask_counts_equal_direct(pipeline, client):
    """Dask counting of the time-partitioned events equals the simulated per-user counts exactly."""
    log, _, direct = pipeline
    got = scale.user_genre_counts(log.events_path, GENRES, client=client).reset_index()
    assert np.array_equal(got["user_id"].to_numpy(), direct["user_id"].to_numpy())
    assert np.array_equal(got["region"].to_numpy(), direct["region"].to_numpy())
    assert np.array_equal(got[list(GENRES)].to_numpy(), direct[list(GENRES)].to_numpy())


def test_users_split_across_files_are_summed(tmp_path, client):
    """A user whose plays are spread over two files gets one row with the summed counts; absent ids get none."""
    events = tmp_path / "events"
    events.mkdir()
    x1 = np.array([[1, 0, 2, 0, 0], [0, 1, 0, 0, 0]])
    x2 = np.array([[0, 3, 0, 0, 1], [2, 0, 0, 0, 0]])
    pq.write_table(scale.events_table(np.array([7, 8]), np.array([1, 0]), x1), events / "a.parquet")
    pq.write_table(scale.events_table(np.array([7, 9]), np.array([1, 2]), x2), events / "b.parquet")
    got = scale.user_genre_counts(events, GENRES, client=client).sort_index()
    assert got.index.tolist() == [7, 8, 9]
    assert got.loc[7, list(GENRES)].tolist() == [1, 3, 2, 0, 1]
    assert got["region"].tolist() == [1, 0, 2]


def test_region_clash_across_files_raises(tmp_path, client):
    """A user with plays in two regions, in two different files, raises DataError."""
    events = tmp_path / "events"
    events.mkdir()
    x = np.array([[1, 0, 0, 0, 0]])
    pq.write_table(scale.events_table(np.array([3]), np.array([1]), x), events / "a.parquet")
    pq.write_table(scale.events_table(np.array([3]), np.array([2]), x), events / "b.parquet")
    with pytest.raises(DataError, match="two regions"):
        scale.user_genre_counts(events, GENRES, client=client)


def test_count_into_validates_events():
    """Ids outside 0..n_users-1, genre codes outside 0..K-1 and a second region raise DataError."""
    counts, region = np.zeros((4, K), np.int32), np.full(4, -1, np.int8)
    scale.count_into(counts, region, np.array([0, 3, 3]), np.array([1, 2, 2]), np.array([0, 1, 1]))
    assert counts[3, 2] == 2 and counts[0, 1] == 1 and region.tolist() == [0, -1, -1, 1]
    with pytest.raises(DataError, match="user_id"):
        scale.count_into(counts, region, np.array([4]), np.array([0]), np.array([0]), source="f.parquet")
    with pytest.raises(DataError, match="genre"):
        scale.count_into(counts, region, np.array([1]), np.array([K]), np.array([0]))
    with pytest.raises(DataError, match="two regions"):
        scale.count_into(counts, region, np.array([3]), np.array([0]), np.array([2]))


def test_count_numpy_fallback_equals_numba_kernel(rng):
    """The NumPy fallback of the counting loop gives the same counts, regions and status codes as the Numba kernel."""
    uid = rng.integers(0, 300, size=5000).astype(np.int32)
    region_of_user = rng.integers(0, 4, size=300).astype(np.int8)
    genre = rng.integers(0, K, size=5000).astype(np.int8)
    got, want = [(np.zeros((300, K), np.int32), np.full(300, -1, np.int8)) for _ in range(2)]
    assert count_mod._count_numpy(*got, uid, genre, region_of_user[uid]) == (0, -1)
    scale.count_into(*want, uid, genre, region_of_user[uid])
    assert np.array_equal(got[0], want[0]) and np.array_equal(got[1], want[1])
    assert count_mod._count_numpy(*got, np.array([300], np.int32), np.array([0], np.int8), np.array([0], np.int8))[0] == 1
    assert count_mod._count_numpy(*got, np.array([0], np.int32), np.array([K], np.int8), np.array([0], np.int8))[0] == 2
    other = np.array([(region_of_user[0] + 1) % 4], np.int8)
    assert count_mod._count_numpy(*got, np.array([0], np.int32), np.array([0], np.int8), other)[0] == 3
