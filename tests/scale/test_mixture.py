"""hbm.scale.mixture and the distinct pairs of hbm.scale.histograms: user posteriors once per distinct (x, n)."""

import numpy as np
import pytest
from scipy import optimize, special

from hbm.scale import histograms, mixture


def test_pair_keys_round_trip_and_order():
    """encode_pairs/decode_pairs round-trip, and keys sort by region, genre, total, count."""
    r, j, n, x = np.array([1, 0, 0, 0]), np.array([0, 4, 4, 1]), np.array([3, 10, 2, 70_000]), np.array([3, 0, 2, 9])
    keys = histograms.encode_pairs(r, j, n, x, 5)
    for got, want in zip(histograms.decode_pairs(keys, 5), (r, j, n, x)):
        assert np.array_equal(got, want)
    assert np.argsort(keys).tolist() == [3, 2, 1, 0]
    with pytest.raises(ValueError):
        histograms.encode_pairs([0], [0], [2**24], [0], 5)


def test_count_pairs_hand_case():
    """Users (2, 0) and (1, 1) in region 0 and (2, 0) in region 1 give five distinct (region, genre, n, x)."""
    keys = histograms.count_pairs(np.array([[2, 0], [1, 1], [2, 0]]), np.array([0, 0, 1]))
    r, j, n, x = histograms.decode_pairs(keys, 2)
    assert list(zip(r, j, n, x)) == [(0, 0, 2, 1), (0, 0, 2, 2), (0, 1, 2, 0), (0, 1, 2, 1), (1, 0, 2, 2), (1, 1, 2, 0)]


def test_count_pairs_dense_and_sorted_paths_agree(rng):
    """The dense-table path (bounded counts) and np.unique path (one heavy user) give the distinct keys of a direct set."""
    x = rng.integers(0, 30, size=(5000, 5))
    code = rng.integers(0, 4, size=5000)
    n = x.sum(axis=1)
    want = sorted({(c, j, m, v) for c, m, row in zip(code, n, x) for j, v in enumerate(row)})
    got = histograms.count_pairs(x, code)
    assert list(zip(*[a.tolist() for a in histograms.decode_pairs(got, 5)])) == want
    heavy = np.vstack([x, [[40_000, 1, 2, 3, 4]]])
    got_heavy = histograms.count_pairs(heavy, np.append(code, 0))
    assert np.array_equal(np.setdiff1d(got_heavy, got), histograms.encode_pairs(
        [0] * 5, range(5), [40_010] * 5, [40_000, 1, 2, 3, 4], 5))


def test_one_component_mixture_is_the_beta_quantile():
    """A mixture of one Beta(a, b) has the quantiles of scipy's betaincinv, to 1e-10."""
    a = np.array([[0.5], [3.0], [40.0], [2.0]])
    b = np.array([[0.7], [9.0], [3000.0], [20_000.0]])
    got = mixture.beta_mixture_quantiles(a, b, (0.025, 0.5, 0.975))
    want = np.column_stack([special.betaincinv(a[:, 0], b[:, 0], q) for q in (0.025, 0.5, 0.975)])
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-10)


def test_mixture_quantiles_solve_the_mixture_cdf(rng):
    """For 300 wide mixtures of 50 Betas the quantiles solve the mixture's CDF (root by brentq) to 1e-9, relative to min(t, 1 - t)."""
    scale = rng.gamma(20, 1 / 20, size=(1, 50))
    a = rng.uniform(0.3, 40, size=(300, 1)) * scale
    b = rng.uniform(0.5, 200, size=(300, 1)) * scale[:, ::-1]
    got = mixture.beta_mixture_quantiles(a, b, (0.025, 0.975))
    for d in range(0, 300, 7):
        for c, q in enumerate((0.025, 0.975)):
            root = optimize.brentq(lambda t: special.betainc(a[d], b[d], t).mean() - q, 0, 1, xtol=1e-300, rtol=1e-15)
            assert abs(got[d, c] - root) < 1e-9 * min(root, 1 - root)


def test_pair_posteriors_equal_brute_force(rng):
    """For a few users the table's mean equals the average over draws of (alpha + x) / (kappa + n) to 1e-12, and
    its interval the quantiles of 400,000 Monte Carlo draws from the mixture to 0.003."""
    alpha = np.array([[2.0, 1.0, 0.5], [6.0, 3.0, 1.0]])[None] * rng.gamma(30, 1 / 30, size=(400, 2, 1))
    users = np.array([[0, 0, 0], [3, 1, 0], [40, 2, 9], [0, 7, 1]])
    code = np.array([0, 1, 1, 0])
    keys = histograms.count_pairs(users, code)
    table = mixture.pair_posteriors(keys, alpha, interval_draws=400)
    n = users.sum(axis=1)
    for i in range(len(users)):
        for j in range(3):
            row = table.locate(histograms.encode_pairs([code[i]], [j], [n[i]], [users[i, j]], 3))[0]
            a = alpha[:, code[i], j] + users[i, j]
            total = alpha[:, code[i]].sum(axis=1) + n[i]
            assert table.mean[row] == pytest.approx(np.mean(a / total), abs=1e-12)
            draws = rng.beta(np.repeat(a, 1000), np.repeat(total - a, 1000))
            lo, hi = np.quantile(draws, [0.025, 0.975])
            assert abs(table.lower[row] - lo) < 3e-3 and abs(table.upper[row] - hi) < 3e-3
    assert table.interval_draws == 400


def test_pair_posteriors_thin_the_draws_for_many_pairs():
    """interval_draws_for keeps every draw for few pairs, at least 16 for many, and thin_draws spans the chains."""
    assert mixture.interval_draws_for(100, 4000) == 4000
    assert mixture.interval_draws_for(10**7, 4000) == 16
    assert mixture.interval_draws_for(40_000, 4000) == 25
    thin = mixture.thin_draws(np.arange(4000.0)[:, None, None], 32)
    assert thin[0, 0, 0] == 0 and thin[-1, 0, 0] == 3999 and thin.shape == (32, 1, 1)


def test_locate_rejects_unknown_pair():
    """Looking up a pair the table does not hold raises KeyError."""
    table = mixture.pair_posteriors(histograms.count_pairs(np.array([[1, 1]]), np.array([0])),
                                    np.ones((10, 1, 2)))
    with pytest.raises(KeyError):
        table.locate(histograms.encode_pairs([0], [0], [5], [1], 2))


def test_genre_columns_dense_and_binary_search_agree(rng):
    """Looking users up in the dense tables (bounded totals) and by binary search (a heavy user) gives the same values."""
    x = rng.integers(0, 20, size=(300, 3))
    code = rng.integers(0, 2, size=300)
    alpha = np.array([[2.0, 1.0, 0.5], [6.0, 3.0, 1.0]])[None] * rng.gamma(30, 1 / 30, size=(50, 2, 1))
    bounded = mixture.pair_posteriors(histograms.count_pairs(x, code), alpha)
    heavy_x = np.vstack([x, [[5_000, 1, 2]]])
    heavy_code = np.append(code, 1)
    heavy = mixture.pair_posteriors(histograms.count_pairs(heavy_x, heavy_code), alpha)
    assert bounded._dense is not None and heavy._dense is None
    n = x.sum(axis=1)
    for k in range(3):
        for got, want in zip(bounded.genre_columns(x[:, k], n, code, k), heavy.genre_columns(x[:, k], n, code, k)):
            np.testing.assert_array_equal(got, want)
        row = bounded.locate(histograms.encode_pairs(code, k, n, x[:, k], 3))
        np.testing.assert_array_equal(bounded.genre_columns(x[:, k], n, code, k)[0], bounded.mean[row])
    with pytest.raises(KeyError):
        bounded.genre_columns(np.array([0]), np.array([1]), np.array([5]), 0)  # no region 5
