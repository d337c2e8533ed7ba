"""hbm.scale: chunked event logs, Dask aggregation, streaming statistics, chunk-wise posteriors.

The end-to-end tests run the whole pipeline on a small log with a real local Dask cluster
(two worker processes) and compare every intermediate with a direct in-memory computation,
exactly.
"""

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from hbm import eb, scale, simulate
from hbm.data import GENRES, DataError, counts_matrix

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


def test_fit_memory_independent_of_users():
    """The EB fit from statistics allocates about the same peak memory for 20,000 and 400,000 users."""
    _, weights, alpha = scale._spec(simulate.REGIONS, None, None, None)
    peaks = []
    for n in (20_000, 400_000):
        frame = _frame(*scale.simulate_chunk(0, n, np.random.default_rng(7), alpha, weights, 1, 100))
        stats = scale.region_suffstats(frame, simulate.REGIONS)
        _, peak = scale.traced_peak(scale.fit_priors, stats)
        peaks.append(peak)
    assert peaks[1] < 2 * peaks[0] + 64 * 1024
    assert peaks[1] < 4 * 1024 * 1024  # far below the 400,000 x 5 count matrix (16 MB)


# --------------------------------------------------------------------------- #
# Recovery of the simulation's prior
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4])
def test_eb_recovers_concentration_music_simulator(seed):
    """hbm.simulate.music with 1,000 users per region: each kappa_r within 15% and each p_r within 0.025 (about 5 SE)."""
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
    """Means and Pop intervals equal hbm.eb.DirichletPosterior's for each user's regional prior (float32)."""
    alpha = np.array([[2.0, 1, 1, 0.5, 0.5], [1.0, 3, 1, 1, 2]])
    x = rng.integers(0, 20, size=(40, K))
    reg = rng.integers(0, 2, size=40).astype(np.int8)
    got = scale.posterior_partition(_frame(np.arange(40), reg, x), alpha, interval_genres=("pop", "rock"))
    for r in range(2):
        rows = reg == r
        post = eb.dirichlet_posterior(alpha[r], x[rows])
        lower, upper = post.interval(0.95)
        for k, g in enumerate(GENRES):
            assert np.array_equal(got.loc[rows, f"{g}_mean"], post.posterior_mean[:, k].astype(np.float32))
        for k, g in enumerate(("pop", "rock")):
            assert np.array_equal(got.loc[rows, f"{g}_lower"], lower[:, k].astype(np.float32))
            assert np.array_equal(got.loc[rows, f"{g}_upper"], upper[:, k].astype(np.float32))
    assert np.array_equal(got["n"], x.sum(axis=1))


def test_posterior_partition_hand_case():
    """One user with 3 Pop plays of 4 under alpha = (1,1,1,1,1): Pop mean (1+3)/(5+4) = 4/9."""
    frame = _frame(np.array([0]), np.array([0], np.int8), np.array([[3, 1, 0, 0, 0]]))
    got = scale.posterior_partition(frame, np.ones((1, K)))
    assert got.loc[0, "pop_mean"] == np.float32(4 / 9)
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
N_USERS, CHUNK = 6_000, 2_000


@pytest.fixture(scope="module")
def client():
    """A local Dask cluster with two worker processes for this module."""
    with scale.local_client(n_workers=2) as c:
        yield c


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory, client):
    """A 6,000-user log in three files, written by the cluster, and the EB job run on it."""
    root = tmp_path_factory.mktemp("scale")
    log = scale.write_play_log(root / "log", N_USERS, seed=11, chunk_users=CHUNK, client=client)
    run = scale.run_eb(log, root, client=client)
    return log, run, scale.simulate_counts(log)


def test_log_layout(pipeline):
    """The log has one zstd Parquet file per chunk with EVENT_SCHEMA, and log.json round-trips."""
    log, _, direct = pipeline
    files = sorted(log.events_path.glob("*.parquet"))
    assert len(files) == log.n_files == 3
    assert pq.read_schema(files[0]).remove_metadata() == scale.EVENT_SCHEMA
    assert sum(pq.read_metadata(f).num_rows for f in files) == log.n_events == direct[list(GENRES)].to_numpy().sum()
    again = scale.read_play_log(log.path)
    assert again.n_events == log.n_events and again.truth == log.truth
    assert np.array_equal(again.true_alpha(), log.true_alpha())


def test_write_without_client_is_identical(pipeline, tmp_path):
    """Writing the same log in-process (no client) gives byte-identical Parquet files."""
    log, _, _ = pipeline
    local = scale.write_play_log(tmp_path / "log", N_USERS, seed=11, chunk_users=CHUNK)
    for a, b in zip(sorted(log.events_path.iterdir()), sorted(local.events_path.iterdir())):
        assert pq.read_table(a).equals(pq.read_table(b))


def test_write_refuses_nonempty_directory(pipeline):
    """Writing into a directory that already holds a log raises ValueError."""
    log, _, _ = pipeline
    with pytest.raises(ValueError, match="not empty"):
        scale.write_play_log(log.path, 10, seed=1)


def test_dask_counts_equal_direct(pipeline, client):
    """Dask aggregation of the events equals the simulated per-user counts exactly."""
    log, _, direct = pipeline
    got = client.compute(scale.user_genre_counts(log.events_path)).result()
    got = got.reset_index().sort_values("user_id", ignore_index=True)
    assert np.array_equal(got["user_id"].to_numpy(), direct["user_id"].to_numpy())
    assert np.array_equal(got["region"].to_numpy(), direct["region"].to_numpy())
    assert np.array_equal(got[list(GENRES)].to_numpy(), direct[list(GENRES)].to_numpy())


def test_users_split_across_files_are_summed(tmp_path, client):
    """A user whose plays are spread over two files gets one row with the summed counts."""
    events = tmp_path / "events"
    events.mkdir()
    x1 = np.array([[1, 0, 2, 0, 0], [0, 1, 0, 0, 0]])
    x2 = np.array([[0, 3, 0, 0, 1], [2, 0, 0, 0, 0]])
    pq.write_table(scale.events_table(np.array([7, 8]), np.array([1, 0]), x1), events / "a.parquet")
    pq.write_table(scale.events_table(np.array([7, 9]), np.array([1, 2]), x2), events / "b.parquet")
    got = client.compute(scale.user_genre_counts(events)).result().sort_index()
    assert got.index.tolist() == [7, 8, 9]
    assert got.loc[7, list(GENRES)].tolist() == [1, 3, 2, 0, 1]
    assert got["region"].tolist() == [1, 0, 2]


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


def test_posteriors_equal_direct(pipeline):
    """Chunk-wise posteriors on the cluster equal DirichletPosterior of the direct counts (float32, exactly)."""
    log, run, direct = pipeline
    post = scale.read_posteriors(run.posterior_path)
    assert np.array_equal(post["user_id"].to_numpy(), direct["user_id"].to_numpy())
    x = direct[list(GENRES)].to_numpy()
    pa_ = run.priors.alpha[direct["region"].to_numpy()] + x
    dp = eb.DirichletPosterior(pa_)
    lower, upper = dp.interval(0.95)
    for k, g in enumerate(GENRES):
        assert np.array_equal(post[f"{g}_mean"].to_numpy(), dp.posterior_mean[:, k].astype(np.float32))
    assert np.array_equal(post["pop_lower"].to_numpy(), lower[:, 0].astype(np.float32))
    assert np.array_equal(post["pop_upper"].to_numpy(), upper[:, 0].astype(np.float32))


def test_run_reports_costs(pipeline):
    """The run reports positive step times, worker memory, and a fit peak far below the counts' size."""
    _, run, _ = pipeline
    assert set(run.seconds) == {"aggregate", "suffstats", "fit", "posteriors", "total"}
    assert all(v > 0 for v in run.seconds.values())
    assert run.peak_rss_workers > 0 and run.peak_rss >= run.peak_rss_workers
    assert 0 < run.fit_peak_bytes < 2 * 1024 * 1024
    assert run.users_per_second > 0
