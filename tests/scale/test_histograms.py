"""hbm.scale.histograms: regional sufficient statistics, added over chunks and blocks.

The end-to-end tests share one small log and one EB run on a local Dask cluster of two
worker processes (tests/scale/conftest.py). Speed is measured by bench/bench_eb_scaling.py,
not asserted here.
"""

import numpy as np
import pandas as pd
import pytest

from hbm import eb
from hbm import scale
from hbm.book import simulate
from hbm.book.data import GENRES
from hbm.scale import histograms, log as log_mod

from .helpers import K, frame_of


def test_region_stats_add_over_chunks():
    """Statistics of chunks, added, equal the statistics of the concatenated users, per region."""
    _, weights, alpha = log_mod._spec(simulate.REGION_PROFILES, simulate.REGION_KAPPA, GENRES)
    frames = [frame_of(*scale.simulate_chunk(1000 * j, 1000, np.random.default_rng(j), alpha, weights, 1, 80))
              for j in range(4)]
    parts = [scale.region_suffstats(f, simulate.REGIONS, GENRES) for f in frames]
    merged = histograms._merge(parts)
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
    only0 = scale.region_suffstats(frame_of(np.arange(2), np.zeros(2, np.int8), x), ("A", "B"), GENRES)
    only1 = scale.region_suffstats(frame_of(np.arange(2), np.ones(2, np.int8), x), ("A", "B"), GENRES)
    assert only0.by_region[1] is None
    both = only0 + only1
    assert both.region("A").n_units == both.region("B").n_units == 2
    with pytest.raises(ValueError, match="no users"):
        only0.region("B")
    with pytest.raises(ValueError, match="different regions"):
        only0 + scale.region_suffstats(frame_of(np.arange(2), np.zeros(2, np.int8), x), ("A", "C"), GENRES)


def test_stats_size_does_not_grow_with_users():
    """Histograms of 2,000 and 200,000 users with totals <= 100 stay within R (K + 1) 101 int64s (19 KB)."""
    _, weights, alpha = log_mod._spec(simulate.REGION_PROFILES, simulate.REGION_KAPPA, GENRES)
    sizes = []
    for n in (2_000, 200_000):
        frame = frame_of(*scale.simulate_chunk(0, n, np.random.default_rng(n), alpha, weights, 1, 100))
        sizes.append(scale.region_suffstats(frame, simulate.REGIONS, GENRES).nbytes)
    assert max(sizes) <= len(simulate.REGIONS) * (K + 1) * 101 * 8
    assert sizes[1] <= 1.5 * sizes[0]


def test_block_suffstats_equal_region_suffstats(rng):
    """Statistics of a dense CountBlock (with absent ids) equal region_suffstats of its users."""
    x = rng.integers(0, 30, size=(500, K)).astype(np.int32)
    region = rng.integers(-1, 4, size=500).astype(np.int8)
    block = scale.CountBlock(1000, x, region)
    got = scale.block_suffstats(block, simulate.REGIONS)
    ref = scale.region_suffstats(block.frame(GENRES), simulate.REGIONS, GENRES)
    assert got.n_users == ref.n_users == block.n_users
    for name in simulate.REGIONS:
        a, b = got.region(name), ref.region(name)
        assert np.array_equal(a.count_hist[:, : b.count_hist.shape[1]], b.count_hist)
        assert not a.count_hist[:, b.count_hist.shape[1]:].any()
        assert np.array_equal(a.total_hist[: b.total_hist.size], b.total_hist)
