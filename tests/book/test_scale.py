"""hbm.book.scale: time-partitioned event logs, Dask counting, streaming statistics, block-wise posteriors.

The end-to-end tests run the whole pipeline on a small log with a real local Dask cluster
(two worker processes, so partial counts cross processes) and compare every intermediate
with a direct in-memory computation: counts and priors exactly, posteriors to 1e-9 or
closer. Speed is measured by bench/bench_eb_scaling.py, not asserted here.
"""

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from hbm import eb
from hbm.book import scale, simulate
from hbm.book.data import GENRES, DataError, counts_matrix

ROOT = Path(__file__).resolve().parents[2]

K = len(GENRES)


# --------------------------------------------------------------------------- #
# Simulation and events
# --------------------------------------------------------------------------- #
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
    back = scale.partial_user_counts(mixed)
    assert np.array_equal(back[list(GENRES)].to_numpy(), counts[counts.sum(axis=1) > 0])


def test_simulate_chunk_ranges_and_reproducibility():
    """Ids are consecutive int32, totals lie in [n_min, n_max], and a seed reproduces the chunk."""
    _, weights, alpha = scale._spec(simulate.REGIONS, None, None, None)
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
        scale._spec(["Mars"], None, None, None)
    with pytest.raises(ValueError, match="region_weights"):
        scale._spec(simulate.REGIONS, None, None, [0.5, 0.5, 0.5, 0.5])
    with pytest.raises(ValueError, match="profile"):
        scale._spec(["X"], {"X": (0.5, 0.5)}, {"X": 3.0}, None)


# --------------------------------------------------------------------------- #
# Per-partition counts
# --------------------------------------------------------------------------- #
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
    got = scale.partial_user_counts(events)
    want = _naive_counts(events)
    assert np.array_equal(got["user_id"].to_numpy(), want["user_id"].to_numpy())
    assert np.array_equal(got[list(GENRES)].to_numpy(), want[list(GENRES)].to_numpy())
    assert np.array_equal(got["region"].to_numpy(), got["user_id"].to_numpy() % 4)


def test_partial_user_counts_empty_partition():
    """An empty partition gives an empty frame with the declared columns and dtypes."""
    empty = pd.DataFrame({"user_id": np.array([], np.int32), "region": np.array([], np.int8),
                          "genre": np.array([], np.int8)})
    got = scale.partial_user_counts(empty)
    assert len(got) == 0
    assert got.dtypes.equals(scale._counts_meta(GENRES).dtypes)


def test_partial_user_counts_bad_input_names_column():
    """A genre code out of range or a user in two regions raises DataError naming the column."""
    bad_genre = pd.DataFrame({"user_id": [1, 2], "region": [0, 0], "genre": [0, 7]})
    with pytest.raises(DataError, match="column 'genre'") as err:
        scale.partial_user_counts(bad_genre, source="logs/part-0.parquet")
    assert err.value.column == "genre" and "logs/part-0.parquet" in str(err.value)
    two_regions = pd.DataFrame({"user_id": [1, 1], "region": [0, 2], "genre": [0, 1]})
    with pytest.raises(DataError, match="user 1 has plays in two regions"):
        scale.partial_user_counts(two_regions)
    negative = pd.DataFrame({"user_id": [-1], "region": [0], "genre": [0]})
    with pytest.raises(DataError, match="user_id"):
        scale.partial_user_counts(negative)


# --------------------------------------------------------------------------- #
# Sufficient statistics
# --------------------------------------------------------------------------- #
def _frame(uid, reg, x):
    frame = pd.DataFrame({"user_id": uid.astype(np.int64), "region": reg})
    for k, g in enumerate(GENRES):
        frame[g] = x[:, k]
    return frame


def test_region_stats_add_over_chunks():
    """Statistics of chunks, added, equal the statistics of the concatenated users, per region."""
    _, weights, alpha = scale._spec(simulate.REGIONS, None, None, None)
    frames = [_frame(*scale.simulate_chunk(1000 * j, 1000, np.random.default_rng(j), alpha, weights, 1, 80))
              for j in range(4)]
    parts = [scale.region_suffstats(f, simulate.REGIONS) for f in frames]
    merged = scale._merge(parts)
    whole = pd.concat(frames)
    for r, name in enumerate(simulate.REGIONS):
        x = whole.loc[whole["region"] == r, list(GENRES)].to_numpy()
        ref = eb.dirichlet_multinomial_suffstats(x)
        got = merged.region(name)
        assert got.n_units == len(x)
        w = ref.count_hist.shape[1]
        assert np.array_equal(got.count_hist[:, :w], ref.count_hist)
        assert not got.count_hist[:, w:].any()
        assert np.array_equal(got.total_hist[: ref.total_hist.size], ref.total_hist)
    assert merged.n_users == 4000
    assert merged.overall.n_units == 4000


def test_region_stats_missing_region():
    """A region absent from a chunk is None there, is filled by another chunk, and errors if absent everywhere."""
    x = np.array([[1, 2, 0, 0, 1], [3, 0, 0, 1, 0]])
    only0 = scale.region_suffstats(_frame(np.arange(2), np.zeros(2, np.int8), x), ("A", "B"))
    only1 = scale.region_suffstats(_frame(np.arange(2), np.ones(2, np.int8), x), ("A", "B"))
    assert only0.by_region[1] is None
    both = only0 + only1
    assert both.region("A").n_units == both.region("B").n_units == 2
    with pytest.raises(ValueError, match="no users"):
        only0.region("B")
    with pytest.raises(ValueError, match="different regions"):
        only0 + scale.region_suffstats(_frame(np.arange(2), np.zeros(2, np.int8), x), ("A", "C"))


def test_stats_size_does_not_grow_with_users():
    """Histograms of 2,000 and 200,000 users with totals <= 100 stay within R (K + 1) 101 int64s (19 KB)."""
    _, weights, alpha = scale._spec(simulate.REGIONS, None, None, None)
    sizes = []
    for n in (2_000, 200_000):
        frame = _frame(*scale.simulate_chunk(0, n, np.random.default_rng(n), alpha, weights, 1, 100))
        sizes.append(scale.region_suffstats(frame, simulate.REGIONS).nbytes)
    assert max(sizes) <= len(simulate.REGIONS) * (K + 1) * 101 * 8
    assert sizes[1] <= 1.5 * sizes[0]


_FIT_PEAKS = """
import json, numpy as np, pandas as pd
from hbm.book import scale, simulate
from hbm.book.data import GENRES
_, weights, alpha = scale._spec(simulate.REGIONS, None, None, None)
peaks = []
for n in (20_000, 400_000):
    uid, reg, x = scale.simulate_chunk(0, n, np.random.default_rng(7), alpha, weights, 1, 100)
    frame = pd.DataFrame({"user_id": uid.astype(np.int64), "region": reg, **{g: x[:, k] for k, g in enumerate(GENRES)}})
    stats = scale.region_suffstats(frame, simulate.REGIONS)
    peaks.append(scale.traced_peak(scale.fit_priors, stats)[1])
print(json.dumps(peaks))
"""


def test_fit_memory_independent_of_users():
    """The EB fit from statistics allocates about the same peak memory for 20,000 and 400,000 users.

    Measured in a fresh interpreter: tracemalloc counts every thread's allocations, and other
    tests run chapters in background threads of this one.
    """
    import json
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", _FIT_PEAKS], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    peaks = json.loads(done.stdout.strip().splitlines()[-1])
    assert peaks[1] < 2 * peaks[0] + 64 * 1024
    assert peaks[1] < 4 * 1024 * 1024  # far below the 400,000 x 5 count matrix (16 MB)


# --------------------------------------------------------------------------- #
# Recovery of the simulation's prior
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4])
def test_eb_recovers_concentration_music_simulator(seed):
    """hbm.book.simulate.music with 1,000 users per region: each kappa_r within 15% and each p_r within 0.025 (about 5 SE)."""
    observed, truth = simulate.music(n_users=4000, seed=seed)
    x = counts_matrix(observed)
    for region in truth["regions"]:
        rows = (observed["region"] == region["region"]).to_numpy()
        fit = eb.fit_dirichlet_multinomial(x[rows])
        p = np.array([region["p"][g] for g in GENRES])
        assert abs(fit.concentration / region["kappa"] - 1) < 0.15
        assert np.max(np.abs(fit.mean - p)) < 0.025


def test_eb_recovers_concentration_from_streamed_stats():
    """Streamed statistics of 5 seeds x 40,000 users (about 21 plays each): kappa_r within 12%, mean ratio within 4%."""
    _, weights, alpha = scale._spec(simulate.REGIONS, None, None, None)
    ratios = []
    for seed in range(5):
        rng = np.random.default_rng(seed)
        parts = [scale.region_suffstats(_frame(*scale.simulate_chunk(
            10_000 * j, 10_000, rng, alpha, weights, 1, 100)), simulate.REGIONS) for j in range(4)]
        priors = scale.fit_priors(scale._merge(parts))
        ratio = priors.alpha.sum(axis=1) / alpha.sum(axis=1)
        assert np.all(np.abs(ratio - 1) < 0.12), ratio
        assert np.max(np.abs(priors.alpha / priors.alpha.sum(axis=1, keepdims=True)
                             - alpha / alpha.sum(axis=1, keepdims=True))) < 0.02
        ratios.append(ratio)
    assert abs(np.mean(ratios) - 1) < 0.04


# --------------------------------------------------------------------------- #
# Posteriors
# --------------------------------------------------------------------------- #
def test_posterior_partition_equals_dirichlet_posterior(rng):
    """Means and Pop/Rock intervals equal hbm.eb.DirichletPosterior's for each user's regional prior, to 1e-12."""
    alpha = np.array([[2.0, 1, 1, 0.5, 0.5], [1.0, 3, 1, 1, 2]])
    x = rng.integers(0, 20, size=(40, K))
    reg = rng.integers(0, 2, size=40).astype(np.int8)
    got = scale.posterior_partition(_frame(np.arange(40), reg, x), alpha, interval_genres=("pop", "rock"))
    for r in range(2):
        rows = reg == r
        post = eb.dirichlet_posterior(alpha[r], x[rows])
        lower, upper = post.interval(0.95)
        for k, g in enumerate(GENRES):
            np.testing.assert_allclose(got.loc[rows, f"{g}_mean"], post.posterior_mean[:, k], rtol=0, atol=1e-12)
        for k, g in enumerate(("pop", "rock")):
            np.testing.assert_allclose(got.loc[rows, f"{g}_lower"], lower[:, k], rtol=0, atol=1e-12)
            np.testing.assert_allclose(got.loc[rows, f"{g}_upper"], upper[:, k], rtol=0, atol=1e-12)
    assert np.array_equal(got["n"], x.sum(axis=1))


@pytest.mark.parametrize("max_count", [60, 5000], ids=["lookup-table", "np-unique"])
def test_posterior_arrays_equal_elementwise_betaincinv(max_count, rng):
    """Quantiles computed once per distinct (region, x_ik, n_i) equal betaincinv evaluated user by user, exactly."""
    from scipy import special

    alpha = np.array([[2.0, 1, 1, 0.5, 0.5], [1.0, 3, 1, 1, 2], [0.3, 0.3, 0.3, 0.3, 0.3]])
    x = rng.integers(0, max_count, size=(3000, K))
    x[:1000] = x[1000:2000]  # repeated count vectors share their quantiles
    code = rng.integers(0, 3, size=3000)
    got = scale.posterior_arrays(x, code, alpha, interval_index=(0, 3), prob=0.9)
    a = alpha[code] + x
    total = alpha.sum(axis=1)[code] + x.sum(axis=1)
    q = (1 - 0.9) / 2
    for j, k in enumerate((0, 3)):
        assert np.array_equal(got["lower"][:, j], special.betaincinv(a[:, k], total - a[:, k], q))
        assert np.array_equal(got["upper"][:, j], special.betaincinv(a[:, k], total - a[:, k], 1 - q))
    assert np.array_equal(got["mean"], a / total[:, None])


def test_posterior_partition_hand_case():
    """One user with 3 Pop plays of 4 under alpha = (1,1,1,1,1): Pop mean (1+3)/(5+4) = 4/9."""
    frame = _frame(np.array([0]), np.array([0], np.int8), np.array([[3, 1, 0, 0, 0]]))
    got = scale.posterior_partition(frame, np.ones((1, K)))
    assert got.loc[0, "pop_mean"] == pytest.approx(4 / 9, abs=1e-15)
    assert got.loc[0, "pop_lower"] < 4 / 9 < got.loc[0, "pop_upper"]


# --------------------------------------------------------------------------- #
# Measurement helpers
# --------------------------------------------------------------------------- #
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


def test_read_play_log_missing_description(tmp_path):
    """A directory without log.json raises DataError naming the file."""
    with pytest.raises(DataError, match="log.json"):
        scale.read_play_log(tmp_path)


# --------------------------------------------------------------------------- #
# The whole pipeline on a local Dask cluster
# --------------------------------------------------------------------------- #
N_USERS, CHUNK = 24_000, 8_000


@pytest.fixture(scope="module")
def client():
    """A local Dask cluster with two single-threaded worker processes (counts cross processes)."""
    with scale.local_client(n_workers=2, threads_per_worker=1) as c:
        yield c


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory, client):
    """A 24,000-user log in three time partitions, written by the cluster, and the EB job run on it (blocks of 5,000 users)."""
    root = tmp_path_factory.mktemp("scale")
    log = scale.write_play_log(root / "log", N_USERS, seed=11, chunk_users=CHUNK, client=client)
    run = scale.run_eb(log, root, client=client, block_users=5_000, sample_users=100)
    return log, run, scale.simulate_counts(log)


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
    local = scale.write_play_log(tmp_path / "log", N_USERS, seed=11, chunk_users=CHUNK)
    pairs = list(zip(sorted(log.events_path.iterdir()), sorted(local.events_path.iterdir())))
    assert len(pairs) == 3
    for a, b in pairs:
        assert pq.read_table(a).equals(pq.read_table(b))


def test_write_refuses_nonempty_directory(pipeline):
    """Writing into a directory that already holds a log raises ValueError."""
    log, _, _ = pipeline
    with pytest.raises(ValueError, match="not empty"):
        scale.write_play_log(log.path, 10, seed=1)


def test_dask_counts_equal_direct(pipeline, client):
    """Dask counting of the time-partitioned events equals the simulated per-user counts exactly."""
    log, _, direct = pipeline
    got = scale.user_genre_counts(log.events_path, client=client).reset_index()
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
    got = scale.user_genre_counts(events, client=client).sort_index()
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
        scale.user_genre_counts(events, client=client)


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
    assert scale._count_numpy(*got, uid, genre, region_of_user[uid]) == (0, -1)
    scale.count_into(*want, uid, genre, region_of_user[uid])
    assert np.array_equal(got[0], want[0]) and np.array_equal(got[1], want[1])
    assert scale._count_numpy(*got, np.array([300], np.int32), np.array([0], np.int8), np.array([0], np.int8))[0] == 1
    assert scale._count_numpy(*got, np.array([0], np.int32), np.array([K], np.int8), np.array([0], np.int8))[0] == 2
    other = np.array([(region_of_user[0] + 1) % 4], np.int8)
    assert scale._count_numpy(*got, np.array([0], np.int32), np.array([0], np.int8), other)[0] == 3


def test_block_suffstats_equal_region_suffstats(rng):
    """Statistics of a dense CountBlock (with absent ids) equal region_suffstats of its users."""
    x = rng.integers(0, 30, size=(500, K)).astype(np.int32)
    region = rng.integers(-1, 4, size=500).astype(np.int8)
    block = scale.CountBlock(1000, x, region)
    got = scale.block_suffstats(block, simulate.REGIONS)
    ref = scale.region_suffstats(block.frame(), simulate.REGIONS)
    assert got.n_users == ref.n_users == block.n_users
    for name in simulate.REGIONS:
        a, b = got.region(name), ref.region(name)
        assert np.array_equal(a.count_hist[:, : b.count_hist.shape[1]], b.count_hist)
        assert not a.count_hist[:, b.count_hist.shape[1]:].any()
        assert np.array_equal(a.total_hist[: b.total_hist.size], b.total_hist)


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


def test_posteriors_equal_closed_form_on_sample(pipeline):
    """On 10,000 random users the written posteriors equal the closed form computed in NumPy/SciPy from the simulated counts, to 1e-9."""
    from scipy import special

    log, run, direct = pipeline
    post = scale.read_posteriors(run.posterior_path)
    assert len(post) == N_USERS
    assert np.array_equal(post["user_id"].to_numpy(), direct["user_id"].to_numpy())
    rows = np.random.default_rng(5).choice(N_USERS, size=10_000, replace=False)
    x = direct[list(GENRES)].to_numpy()[rows]
    a = run.priors.alpha[direct["region"].to_numpy()[rows]] + x
    big_a = a.sum(axis=1)
    got = post.iloc[rows]
    assert np.array_equal(got["n"].to_numpy(), x.sum(axis=1))
    for k, g in enumerate(GENRES):
        np.testing.assert_allclose(got[f"{g}_mean"].to_numpy(), a[:, k] / big_a, rtol=0, atol=1e-9)
    for q, col in [(0.025, "pop_lower"), (0.975, "pop_upper")]:
        np.testing.assert_allclose(got[col].to_numpy(), special.betaincinv(a[:, 0], big_a - a[:, 0], q),
                                   rtol=0, atol=1e-9)


def test_posteriors_equal_dirichlet_posterior(pipeline):
    """Block-wise posteriors on the cluster equal hbm.eb.DirichletPosterior of the direct counts for every user (to 1e-12)."""
    log, run, direct = pipeline
    post = scale.read_posteriors(run.posterior_path)
    x = direct[list(GENRES)].to_numpy()
    dp = eb.DirichletPosterior(run.priors.alpha[direct["region"].to_numpy()] + x)
    lower, upper = dp.interval(0.95)
    for k, g in enumerate(GENRES):
        np.testing.assert_allclose(post[f"{g}_mean"].to_numpy(), dp.posterior_mean[:, k], rtol=0, atol=1e-12)
    np.testing.assert_allclose(post["pop_lower"].to_numpy(), lower[:, 0], rtol=0, atol=1e-12)
    np.testing.assert_allclose(post["pop_upper"].to_numpy(), upper[:, 0], rtol=0, atol=1e-12)
    assert len(list(run.posterior_path.glob("part-*.parquet"))) == N_USERS // 5_000 + 1


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
    got = scale.user_genre_counts(events)
    assert got.loc[1, "rock"] + got.loc[1, "hiphop"] + got.loc[1, "electronic"] + got.loc[1, "classical"] == 4


# --------------------------------------------------------------------------- #
# The recorded benchmark
# --------------------------------------------------------------------------- #
def test_bench_summary_reads_recorded_figures(tmp_path):
    """bench_summary returns the largest EB row's figures, the single-node engine's counting, the date and the machine."""
    common = {"measured": "2026-11-30 10:00 UTC", "machine": "test box, 2 cores"}
    eb_row = {"method": "Empirical Bayes (hbm.book.scale, Dask)", "engine": "Dask 1", "events": 10, "files": 2,
              "Parquet MiB": 1.0, "aggregate s": 2.0, "suffstats s": 0.1, "fit s": 0.01, "posteriors s": 1.0,
              "users per s": 100, "client peak RSS MiB": 200, "client start RSS MiB": 150, "workers' peak RSS MiB": 900, "workers' start RSS MiB": 300, "counts MiB": 5.0,
              "posteriors MiB": 4.0, "max error vs closed form": 1e-16, **common}
    rows = [
        {**eb_row, "users": 100, "total s": 1.0},
        {**eb_row, "users": 1000, "total s": 3.5, "users per s": 285},
        {"method": "Counting only: DuckDB 9", "engine": "DuckDB 9", "users": 1000, "aggregate s": 4.0,
         "total s": 4.0, "peak RSS MiB": 700, **common},
        {"method": "Full Bayes (nutpie)", "engine": "nutpie", "users": 50, "total s": 10.0, "users per s": 5.0, **common},
        {**eb_row, "method": "Same EB job on 2 worker processes x 1 thread", "users": 1000, "total s": 6.0,
         "aggregate s": 4.5},
    ]
    path = tmp_path / "eb.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    got = scale.bench_summary(path)
    assert got["users"] == 1000 and got["total_s"] == 3.5 and got["users_per_s"] == 285
    assert got["steps_s"] == {"aggregate": 2.0, "suffstats": 0.1, "fit": 0.01, "posteriors": 1.0}
    assert got["client_peak_mib"] == 200 and got["client_start_mib"] == 150 and got["workers_peak_mib"] == 900 and got["workers_start_mib"] == 300
    assert got["single_node_engine"] == "DuckDB 9" and got["single_node_count_s"] == 4.0
    assert got["dask_count_s"] == 2.0 and got["small_users"] == 100
    assert got["full_bayes_users"] == 50 and got["full_bayes_users_per_s"] == 5.0
    assert got["two_process_total_s"] == 6.0 and got["two_process_count_s"] == 4.5
    assert got["measured"] == common["measured"] and got["machine"] == common["machine"]


def test_bench_summary_of_the_recorded_benchmark():
    """The committed bench/results/eb_scaling.csv has every column bench_summary reads (10M users recorded)."""
    got = scale.bench_summary()
    assert got["users"] >= 1_000_000
    assert got["single_node_engine"] is not None and got["measured"] and got["machine"]


def test_local_client_takes_no_fixed_port():
    """Two local clusters at once (the book's chapter and a test, say) start without a port warning."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # "Port 8787 is already in use" would raise here
        with scale.local_client(processes=False) as first, scale.local_client(processes=False) as second:
            assert first.scheduler.address != second.scheduler.address
