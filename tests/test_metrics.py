"""Tests for hbm.metrics: accuracy metrics and the stratified evaluation table."""

import numpy as np
import pandas as pd
import pytest

from hbm import metrics

SEEDS = [0, 1, 2, 3, 4]


def naive_evaluate(est, lo, hi, truth, n, edges):
    """Row-by-row Python reference for evaluate() with the documented bin rule."""
    def bin_of(v):
        if v < edges[0]:
            return 0
        for j in range(len(edges) - 1):
            if (v >= edges[j] if j == 0 else v > edges[j]) and v <= edges[j + 1]:
                return j + 1
        return len(edges)

    rows = {}
    for e, l, h, t, m in zip(est, lo, hi, truth, n):
        for key in ("all", bin_of(m)):
            r = rows.setdefault(key, [0, 0.0, 0, 0.0])
            r[0] += 1
            r[1] += (e - t) ** 2
            r[2] += l <= t <= h
            r[3] += h - l
    return {k: (r[0], r[1] / r[0], r[2] / r[0], r[3] / r[0]) for k, r in rows.items()}


def test_mse_coverage_width_hand_computed():
    """Small hand cases: mse = 5/3, coverage counts bounds as inside, width = mean(u - l)."""
    assert metrics.mse([1.0, 2.0, 3.0], [0.0, 0.0, 4.0]) == pytest.approx((1 + 4 + 1) / 3)
    assert metrics.coverage([0.0, 0.0, 0.0], [1.0, 1.0, 1.0], [0.0, 1.0, 1.5]) == pytest.approx(2 / 3)
    assert metrics.mean_width([0.0, -1.0], [1.0, 2.0]) == pytest.approx(2.0)


def test_shrinkage_factor_hand_computed():
    """B = 1 - (pooled - target)/(raw - target): 1 fully shrunk, 0 unshrunk, nan at raw == target."""
    b = metrics.shrinkage_factor([4.0, 4.0, 2.0, 0.0], [0.0, 4.0, 1.0, 0.0], 0.0)
    np.testing.assert_allclose(b[:3], [1.0, 0.0, 0.5])
    assert np.isnan(b[3])
    b2 = metrics.shrinkage_factor([4.0, 6.0], [3.0, 3.0], [2.0, 0.0])
    np.testing.assert_allclose(b2, [0.5, 0.5])


def test_shrinkage_factor_recovers_normal_normal_b():
    """With known mu and tau the factor equals s^2/(s^2 + tau^2) exactly."""
    rng = np.random.default_rng(3)
    y, s, mu, tau = rng.normal(0, 2, 50), rng.uniform(0.5, 2, 50), 0.3, 1.2
    b = s**2 / (s**2 + tau**2)
    pooled = mu + (1 - b) * (y - mu)
    np.testing.assert_allclose(metrics.shrinkage_factor(y, pooled, mu), b, rtol=1e-9)


def test_mc_errors_hand_computed():
    """mc_error = sd(ddof=1)/sqrt(R); coverage_mc_error = sqrt(p(1-p)/n), vectorised."""
    assert metrics.mc_error([1.0, 2.0, 3.0, 4.0]) == pytest.approx(np.std([1, 2, 3, 4], ddof=1) / 2)
    assert metrics.coverage_mc_error(0.95, 1000) == pytest.approx(np.sqrt(0.95 * 0.05 / 1000))
    assert isinstance(metrics.coverage_mc_error(0.5, 4), float)
    np.testing.assert_allclose(metrics.coverage_mc_error([0.5, 1.0], [100, 10]), [0.05, 0.0])


@pytest.mark.parametrize("seed", SEEDS)
def test_mc_error_matches_spread_of_replicated_means(seed):
    """mc_error of R = 400 draws matches the sd of 50 replicated means of 400 (within 30%)."""
    rng = np.random.default_rng(seed)
    means = rng.normal(0, 1, (400, 50)).mean(axis=0)  # 50 means of R = 400 values each
    single = metrics.mc_error(rng.normal(0, 1, 400))
    assert single == pytest.approx(np.std(means, ddof=1), rel=0.3)
    assert single == pytest.approx(1 / np.sqrt(400), rel=0.15)


@pytest.mark.parametrize("seed", SEEDS)
def test_coverage_of_exact_intervals_is_nominal(seed):
    """Exact 95% normal intervals cover 0.95 within 4 binomial MC errors (n = 5000)."""
    rng = np.random.default_rng(seed)
    truth = rng.normal(0, 1, 5000)
    y = rng.normal(truth, 1.0)
    cov = metrics.coverage(y - 1.959964, y + 1.959964, truth)
    assert abs(cov - 0.95) < 4 * metrics.coverage_mc_error(0.95, 5000)


def test_size_bins_default_edges_exact():
    """Default bins: n < 100 -> 'n < 100', 100..500 inclusive -> '100-500', > 500 -> '> 500'."""
    cat = metrics.size_bins([0, 99, 100, 101, 499, 500, 501, 10_000])
    assert isinstance(cat, pd.Categorical) and cat.ordered
    assert list(cat.categories) == ["n < 100", "100-500", "> 500"]
    assert list(cat) == ["n < 100", "n < 100", "100-500", "100-500", "100-500", "100-500",
                         "> 500", "> 500"]


def test_size_bins_custom_edges_and_labels():
    """Three edges: (e1, e2] style middle bins; one edge: n < e / >= e; custom labels kept."""
    cat = metrics.size_bins([5, 10, 11, 20, 21, 30, 31], edges=(10, 20, 30))
    assert list(cat.categories) == ["n < 10", "10-20", "20-30", "> 30"]
    assert list(cat.codes) == [0, 1, 1, 1, 2, 2, 3]
    one = metrics.size_bins([4, 5, 6], edges=(5,))
    assert list(one) == ["n < 5", ">= 5", ">= 5"]
    lab = metrics.size_bins([1, 200, 900], labels=["small", "medium", "large"])
    assert list(lab) == ["small", "medium", "large"]
    assert list(metrics.size_bins([1.5], edges=(2.5, 10)).categories)[0] == "n < 2.5"


def test_evaluate_hand_computed():
    """'all' row first, then bins (empty bins kept with NaN metrics), values by hand."""
    df = metrics.evaluate(
        estimate=[1.0, 2.0, 3.0], lower=[0.0, 0.0, 0.0], upper=[2.0, 2.0, 2.0],
        truth=[1.0, 1.0, 1.0], n=[10, 200, 150],
    )
    assert list(df.columns) == ["bin", "n_units", "mse", "coverage", "mean_width"]
    assert list(df["bin"]) == ["all", "n < 100", "100-500", "> 500"]
    assert df["bin"].cat.ordered
    np.testing.assert_array_equal(df["n_units"].to_numpy(), [3, 1, 2, 0])
    np.testing.assert_allclose(df["mse"].to_numpy()[:3], [5 / 3, 0.0, 2.5])
    np.testing.assert_allclose(df["coverage"].to_numpy()[:3], [1.0, 1.0, 1.0])
    np.testing.assert_allclose(df["mean_width"].to_numpy()[:3], [2.0, 2.0, 2.0])
    assert df.iloc[3][["mse", "coverage", "mean_width"]].isna().all()
    only_all = metrics.evaluate([1.0], [0.0], [2.0], [1.0])
    assert list(only_all["bin"]) == ["all"] and len(only_all) == 1


@pytest.mark.parametrize("seed", SEEDS[:3])
def test_evaluate_matches_naive_loop(seed):
    """evaluate() equals a row-by-row Python reference to 1e-12 on random data."""
    rng = np.random.default_rng(seed)
    m = 300
    truth = rng.normal(0, 1, m)
    est = truth + rng.normal(0, 0.5, m)
    half = rng.uniform(0.1, 1.5, m)
    n = rng.integers(1, 1000, m)
    n[:3] = [100, 500, 99]
    df = metrics.evaluate(est, est - half, est + half, truth, n=n)
    ref = naive_evaluate(est, est - half, est + half, truth, n, (100, 500))
    for i, key in enumerate(["all", 0, 1, 2]):
        row = df.iloc[i]
        assert row["n_units"] == ref[key][0]
        np.testing.assert_allclose(row[["mse", "coverage", "mean_width"]].to_numpy(float),
                                   ref[key][1:], rtol=1e-12)


@pytest.mark.parametrize(
    ("func", "args", "match"),
    [
        (metrics.mse, ([1.0, 2.0], [1.0]), "same length"),
        (metrics.mse, ([1.0, np.nan], [1.0, 1.0]), "finite"),
        (metrics.mse, ([], []), "empty"),
        (metrics.mse, ([[1.0]], [[1.0]]), "one-dimensional"),
        (metrics.coverage, ([0.0], [1.0], [0.5, 0.5]), "same length"),
        (metrics.coverage, ([2.0], [1.0], [1.5]), "lower <= upper"),
        (metrics.coverage, ([0.0], [np.inf], [1.5]), "finite"),
        (metrics.mean_width, ([0.0, 1.0], [1.0]), "same length"),
        (metrics.mean_width, ([2.0], [1.0]), "lower <= upper"),
        (metrics.shrinkage_factor, ([1.0, 2.0], [1.0], 0.0), "same length"),
        (metrics.shrinkage_factor, ([1.0, 2.0], [1.0, 1.0], [0.0, 0.0, 0.0]), "same length"),
        (metrics.shrinkage_factor, ([1.0], [np.nan], 0.0), "finite"),
        (metrics.mc_error, ([1.0],), "at least 2"),
        (metrics.mc_error, ([1.0, np.nan],), "finite"),
        (metrics.coverage_mc_error, (1.2, 10), r"\[0, 1\]"),
        (metrics.coverage_mc_error, (0.5, 0), "positive"),
        (metrics.coverage_mc_error, (np.nan, 10), "finite"),
        (metrics.size_bins, ([-1, 5],), "non-negative"),
        (metrics.size_bins, ([1, np.nan],), "finite"),
        (metrics.size_bins, ([1], (500, 100)), "increasing"),
        (metrics.size_bins, ([1], ()), "at least one"),
        (metrics.size_bins, ([1], (np.inf,)), "finite"),
        (metrics.size_bins, ([1], (100, 500), ["a", "b"]), "need 3 labels"),
        (metrics.size_bins, ([1], (100, 500), ["a", "a", "b"]), "unique"),
        (metrics.evaluate, ([1.0], [0.0], [2.0], [1.0, 2.0]), "same length"),
        (metrics.evaluate, ([1.0], [3.0], [2.0], [1.0]), "lower <= upper"),
        (metrics.evaluate, ([1.0], [0.0], [2.0], [1.0], [1, 2]), "same length"),
        (metrics.evaluate, ([1.0], [0.0], [2.0], [1.0], [-1]), "non-negative"),
    ],
)
def test_metrics_reject_bad_input(func, args, match):
    """Every metric raises ValueError for mismatched, non-finite or invalid input."""
    with pytest.raises(ValueError, match=match):
        func(*args)


def test_inside_includes_bounds_and_excludes_nan():
    """inside() is True on the bounds, False outside and for a missing value, elementwise."""
    from hbm.metrics import inside

    got = inside([0, 0, 0, 0], [1, 1, 1, 1], [0.0, 1.0, 1.5, np.nan])
    assert got.tolist() == [True, True, False, False]


def test_inside_keeps_labels_and_coverage_is_its_mean():
    """With pandas input inside() aligns by label; coverage() is the mean of inside()."""
    from hbm.metrics import coverage, inside

    lower = pd.Series([0.0, 1.0], index=["a", "b"])
    upper = pd.Series([2.0, 3.0], index=["a", "b"])
    values = pd.Series([2.5, 1.5], index=["b", "a"])  # another order: paired by label
    assert inside(lower, upper, values).to_dict() == {"a": True, "b": True}
    assert coverage([0, 0], [1, 1], [0.5, 2]) == np.mean(inside([0, 0], [1, 1], [0.5, 2])) == 0.5
