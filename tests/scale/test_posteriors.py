"""hbm.scale.posteriors (empirical Bayes): closed-form posteriors of blocks and of the whole job.

The end-to-end tests share one small log and one EB run on a local Dask cluster of two
worker processes (tests/scale/conftest.py). Speed is measured by bench/bench_eb_scaling.py,
not asserted here.
"""

import numpy as np
import pytest

from hbm import eb
from hbm import scale
from hbm.book.data import GENRES

from .helpers import K, N_USERS, frame_of


def test_posterior_partition_equals_dirichlet_posterior(rng):
    """Means and Pop/Rock intervals equal hbm.eb.DirichletPosterior's for each user's regional prior, to 1e-12."""
    alpha = np.array([[2.0, 1, 1, 0.5, 0.5], [1.0, 3, 1, 1, 2]])
    x = rng.integers(0, 20, size=(40, K))
    reg = rng.integers(0, 2, size=40).astype(np.int8)
    got = scale.posterior_partition(frame_of(np.arange(40), reg, x), alpha, GENRES, interval_genres=("pop", "rock"))
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
    frame = frame_of(np.array([0]), np.array([0], np.int8), np.array([[3, 1, 0, 0, 0]]))
    got = scale.posterior_partition(frame, np.ones((1, K)), GENRES)
    assert got.loc[0, "pop_mean"] == pytest.approx(4 / 9, abs=1e-15)
    assert got.loc[0, "pop_lower"] < 4 / 9 < got.loc[0, "pop_upper"]


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
