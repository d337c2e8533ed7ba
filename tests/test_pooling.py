"""Tests for hbm.pooling: no-pooling and complete-pooling baselines."""

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from hbm.pooling import PoolingResult, complete_pooling, group_summaries, no_pooling

SEEDS = [0, 1, 2, 3, 4]


def naive_complete_pooling(y, s, groups, prob=0.95):
    """Loop-per-group reference: weighted mean and 1/sqrt(sum w) per group."""
    z = stats.norm.ppf(0.5 + prob / 2)
    est, se = np.empty(len(y)), np.empty(len(y))
    for g in dict.fromkeys(groups):
        idx = [i for i, gi in enumerate(groups) if gi == g]
        w = np.array([1 / s[i] ** 2 for i in idx])
        est[idx] = np.sum(w * np.asarray(y)[idx]) / w.sum()
        se[idx] = 1 / np.sqrt(w.sum())
    return est, se, est - z * se, est + z * se


def test_no_pooling_hand_computed():
    """No pooling: estimate = y, interval = y -/+ 1.959964 * s."""
    res = no_pooling([1.0, -2.0], [0.5, 2.0])
    np.testing.assert_array_equal(res.estimate, [1.0, -2.0])
    np.testing.assert_array_equal(res.std_error, [0.5, 2.0])
    np.testing.assert_allclose(res.lower, [1 - 1.959963984540054 * 0.5, -2 - 1.959963984540054 * 2])
    np.testing.assert_allclose(res.upper, [1 + 1.959963984540054 * 0.5, -2 + 1.959963984540054 * 2])
    res90 = no_pooling([0.0], [1.0], prob=0.9)
    np.testing.assert_allclose(res90.upper, [1.6448536269514722])


def test_complete_pooling_hand_computed():
    """Weights 1/s^2 = (4, 1): mean (4*1 + 1*6)/5 = 2, se = 1/sqrt(5), same for every unit."""
    res = complete_pooling([1.0, 6.0], [0.5, 1.0])
    np.testing.assert_allclose(res.estimate, [2.0, 2.0])
    np.testing.assert_allclose(res.std_error, [1 / np.sqrt(5)] * 2)
    z = stats.norm.ppf(0.975)
    np.testing.assert_allclose(res.lower, 2 - z / np.sqrt(5))
    np.testing.assert_allclose(res.upper, 2 + z / np.sqrt(5))


def test_complete_pooling_groups_hand_computed():
    """Pooling is within groups: string labels, interleaved units."""
    res = complete_pooling([1.0, 10.0, 3.0, 20.0], [1.0, 1.0, 1.0, 1.0], groups=["a", "b", "a", "b"])
    np.testing.assert_allclose(res.estimate, [2.0, 15.0, 2.0, 15.0])
    np.testing.assert_allclose(res.std_error, [1 / np.sqrt(2)] * 4)


@pytest.mark.parametrize("seed", SEEDS)
def test_complete_pooling_matches_naive_loop(seed):
    """Vectorised pooling equals a per-group Python loop to 1e-12 (random labels, prob)."""
    rng = np.random.default_rng(seed)
    n = 200
    y = rng.normal(0, 3, n)
    s = rng.uniform(0.2, 3, n)
    groups = list(rng.choice(["x", "y", "z", "w"], n))
    prob = rng.uniform(0.5, 0.99)
    res = complete_pooling(y, s, groups=groups, prob=prob)
    for got, ref in zip((res.estimate, res.std_error, res.lower, res.upper),
                        naive_complete_pooling(y, s, groups, prob)):
        np.testing.assert_allclose(got, ref, rtol=1e-12, atol=1e-12)


def test_pooling_limits_identical_units_and_single_unit():
    """Identical units: complete pooling = common value; one unit per group = no pooling."""
    res = complete_pooling([3.0, 3.0, 3.0], [1.0, 2.0, 3.0])
    np.testing.assert_allclose(res.estimate, 3.0)
    y, s = np.array([1.0, 5.0, -2.0]), np.array([1.0, 2.0, 0.5])
    cp = complete_pooling(y, s, groups=[0, 1, 2])
    npool = no_pooling(y, s)
    np.testing.assert_allclose(cp.estimate, npool.estimate)
    np.testing.assert_allclose(cp.upper, npool.upper)


@pytest.mark.parametrize("seed", SEEDS)
def test_no_pooling_covers_nominally_complete_pooling_does_not(seed):
    """Heterogeneous truth (tau = 2): no pooling covers 0.95 +/- 0.03, complete pooling < 0.5."""
    rng = np.random.default_rng(seed)
    n = 2000
    theta = rng.normal(0, 2, n)
    s = rng.uniform(0.5, 1.5, n)
    y = rng.normal(theta, s)
    npool, cp = no_pooling(y, s), complete_pooling(y, s)
    assert abs(np.mean((npool.lower <= theta) & (theta <= npool.upper)) - 0.95) < 0.03
    assert np.mean((cp.lower <= theta) & (theta <= cp.upper)) < 0.5


@pytest.mark.parametrize("seed", SEEDS)
def test_complete_pooling_recovers_common_mean(seed):
    """Common truth mu = 1.5 (tau = 0): the pooled mean lies within 4 of its standard errors."""
    rng = np.random.default_rng(seed)
    s = rng.uniform(0.5, 2, 500)
    y = rng.normal(1.5, s)
    res = complete_pooling(y, s)
    assert abs(res.estimate[0] - 1.5) < 4 * res.std_error[0]


def test_pooling_result_to_frame():
    """to_frame() returns the four per-unit columns in order."""
    res = no_pooling([1.0, 2.0], [1.0, 1.0])
    assert isinstance(res, PoolingResult)
    df = res.to_frame()
    assert list(df.columns) == ["estimate", "std_error", "lower", "upper"]
    np.testing.assert_array_equal(df["estimate"].to_numpy(), [1.0, 2.0])
    assert len(df) == 2


def test_group_summaries_hand_computed():
    """Per group n, mean, sd (ddof=1), se = sd/sqrt(n), index in first-appearance order."""
    df = group_summaries([1.0, 10.0, 3.0, 20.0, 5.0, 30.0], ["b", "a", "b", "a", "b", "a"])
    assert list(df.index) == ["b", "a"]
    assert df.index.name == "group"
    assert list(df.columns) == ["n", "mean", "sd", "se"]
    np.testing.assert_array_equal(df["n"].to_numpy(), [3, 3])
    np.testing.assert_allclose(df["mean"].to_numpy(), [3.0, 20.0])
    np.testing.assert_allclose(df["sd"].to_numpy(), [2.0, 10.0])
    np.testing.assert_allclose(df["se"].to_numpy(), [2 / np.sqrt(3), 10 / np.sqrt(3)])


@pytest.mark.parametrize("seed", SEEDS[:3])
def test_group_summaries_match_pandas_groupby(seed):
    """Summaries equal pandas groupby(sort=False) mean/std/count (reference implementation)."""
    rng = np.random.default_rng(seed)
    g = rng.integers(0, 8, 400)
    v = rng.normal(g, 1 + g)
    df = group_summaries(v, g)
    ref = pd.Series(v).groupby(g, sort=False).agg(["count", "mean", "std"])
    assert list(df.index) == list(ref.index)
    np.testing.assert_array_equal(df["n"].to_numpy(), ref["count"].to_numpy())
    np.testing.assert_allclose(df["mean"].to_numpy(), ref["mean"].to_numpy(), rtol=1e-12)
    np.testing.assert_allclose(df["sd"].to_numpy(), ref["std"].to_numpy(), rtol=1e-12)


@pytest.mark.parametrize(
    ("y", "s", "match"),
    [
        ([1.0, 2.0], [1.0], "same length"),
        ([1.0, np.nan], [1.0, 1.0], "finite"),
        ([1.0, 2.0], [1.0, np.inf], "finite"),
        ([1.0, 2.0], [1.0, 0.0], "strictly positive"),
        ([1.0, 2.0], [-1.0, 1.0], "strictly positive"),
        ([], [], "empty"),
        ([[1.0]], [[1.0]], "one-dimensional"),
    ],
)
def test_pooling_rejects_bad_summaries(y, s, match):
    """Both baselines raise ValueError for mismatched, non-finite or non-positive input."""
    with pytest.raises(ValueError, match=match):
        no_pooling(y, s)
    with pytest.raises(ValueError, match=match):
        complete_pooling(y, s)


def test_pooling_rejects_bad_prob_and_groups():
    """prob outside (0, 1), wrong-length or missing group labels raise ValueError."""
    for prob in (0.0, 1.0, -0.5, 2.0):
        with pytest.raises(ValueError, match="prob"):
            no_pooling([1.0], [1.0], prob=prob)
        with pytest.raises(ValueError, match="prob"):
            complete_pooling([1.0], [1.0], prob=prob)
    with pytest.raises(ValueError, match="one label per unit"):
        complete_pooling([1.0, 2.0], [1.0, 1.0], groups=["a"])
    with pytest.raises(ValueError, match="missing"):
        complete_pooling([1.0, 2.0], [1.0, 1.0], groups=["a", None])
    with pytest.raises(ValueError, match="NaN"):
        complete_pooling([1.0, 2.0], [1.0, 1.0], groups=[1.0, np.nan])


def test_group_summaries_single_value_group_has_nan_sd():
    """A one-value group keeps n and mean, its sd and se are NaN, silently; other groups are exact."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no RuntimeWarning from 0/0
        df = group_summaries([1.0, 3.0, 7.0], ["a", "a", "b"])
    np.testing.assert_array_equal(df["n"].to_numpy(), [2, 1])
    np.testing.assert_allclose(df["mean"].to_numpy(), [2.0, 7.0])
    np.testing.assert_allclose(df["sd"].to_numpy(), [np.sqrt(2.0), np.nan])
    np.testing.assert_allclose(df["se"].to_numpy(), [1.0, np.nan])


def test_group_summaries_rejects_bad_input():
    """Mismatched lengths, non-finite values and empty input raise ValueError."""
    with pytest.raises(ValueError, match="one label per unit"):
        group_summaries([1.0, 2.0, 3.0], ["a", "a"])
    with pytest.raises(ValueError, match="finite"):
        group_summaries([1.0, np.nan], ["a", "a"])
    with pytest.raises(ValueError, match="empty"):
        group_summaries([], [])


def _old_factorize(groups):
    """The np.unique/argsort code pooling._factorize replaced (codes by first appearance)."""
    uniq, first, inverse = np.unique(np.asarray(groups), return_index=True, return_inverse=True)
    order = np.argsort(first, kind="stable")
    rank = np.empty_like(order)
    rank[order] = np.arange(order.size)
    return rank[inverse.reshape(-1)], uniq[order]


@pytest.mark.parametrize("groups", [["b", "a", "b", "c"], [3, 1, 3, 2, 1], np.array([2.5, 0.5, 2.5]),
                                    pd.Categorical(["x", "y", "x"]), np.array(["g2", "g10", "g1"], dtype=object)])
def test_factorize_equals_the_replaced_unique_code(groups):
    """pooling._factorize (pandas.factorize) gives the old codes and labels, in order of first appearance."""
    from hbm.pooling import _factorize

    codes, labels = _factorize(groups, len(groups))
    old_codes, old_labels = _old_factorize(groups)
    np.testing.assert_array_equal(codes, old_codes)
    np.testing.assert_array_equal(labels, old_labels)
    assert codes.dtype == old_codes.dtype and labels.dtype == old_labels.dtype
