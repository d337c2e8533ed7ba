"""hbm.scale.model: the three-level model's likelihood from histograms, in NumPy and in PyMC, and its priors."""

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from hbm import eb
from hbm.scale import model


def _per_user_loglik(x, code, alpha):
    """Sum over users (with plays) of scipy's Dirichlet-multinomial log-pmf."""
    return sum(stats.dirichlet_multinomial.logpmf(x[i], alpha[code[i]], x[i].sum())
               for i in range(len(x)) if x[i].sum() > 0)


def _bins(x, code, n_regions):
    return model.histogram_bins([eb.dirichlet_multinomial_suffstats(x[code == r]) for r in range(n_regions)])


def test_histogram_loglik_hand_case():
    """One user with counts (1, 0) under alpha (1, 1) has probability 1/2; two such users, 1/4."""
    bins = _bins(np.array([[1, 0], [1, 0]]), np.array([0, 0]), 1)
    assert model.histogram_loglik([[1.0, 1.0]], bins) == pytest.approx(np.log(0.25), abs=1e-12)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_histogram_loglik_equals_per_user_sum(seed):
    """On 400 users in 3 regions (some with no plays, some with 300), the histogram log-likelihood equals the per-user sum to 1e-9."""
    rng = np.random.default_rng(seed)
    n = np.concatenate([rng.integers(0, 40, size=395), [300, 0, 1, 250, 120]])
    code = rng.integers(0, 3, size=n.size)
    alpha = rng.uniform(0.2, 20.0, size=(3, 5))
    x = np.array([rng.multinomial(m, rng.dirichlet(alpha[r])) for m, r in zip(n, code)])
    bins = _bins(x, code, 3)
    assert abs(model.histogram_loglik(alpha, bins) - _per_user_loglik(x, code, alpha)) < 1e-9
    assert bins.size < x.size  # fewer cells than users times genres


def test_histogram_loglik_rejects_bad_alpha():
    """A non-positive alpha or the wrong shape raises ValueError."""
    bins = _bins(np.array([[1, 2], [0, 3]]), np.array([0, 0]), 1)
    with pytest.raises(ValueError):
        model.histogram_loglik([[1.0, 0.0]], bins)
    with pytest.raises(ValueError):
        model.histogram_loglik([[1.0, 1.0, 1.0]], bins)


def test_pymc_potential_equals_numpy_loglik():
    """The model's pm.Potential plus the multinomial constant equals histogram_loglik at a given alpha."""
    import pytensor

    rng = np.random.default_rng(4)
    x = rng.integers(0, 6, size=(60, 3))
    code = rng.integers(0, 2, size=60)
    bins = _bins(x, code, 2)
    m = model.histogram_model(bins, ["a", "b"], ["g1", "g2", "g3"])
    alpha = np.array([[1.0, 2.0, 0.5], [3.0, 1.0, 1.5]])
    kappa = alpha.sum(axis=1)
    potential = pytensor.function([m["p"], m["log_kappa"]], m.potentials[0], on_unused_input="ignore")
    got = float(potential(alpha / kappa[:, None], np.log(kappa))) + bins.const
    assert got == pytest.approx(model.histogram_loglik(alpha, bins), abs=1e-9)
    assert got == pytest.approx(_per_user_loglik(x, code, alpha), abs=1e-9)


def test_same_priors_as_the_music_chapter():
    """hbm.book.music's three-level model and the histogram model have the same free variables and prior log-density."""
    from hbm.book import music
    from hbm.book.data import GENRES

    assert music.C_PRIOR is model.C_PRIOR and music.KAPPA_PRIOR is model.KAPPA_PRIOR
    plays = pd.DataFrame({"user_id": ["u0", "u1"], "region": pd.Categorical(["A", "B"]),
                          **{g: [1, 2] for g in GENRES}})
    chapter = music.three_level_model(plays)
    x = plays[list(GENRES)].to_numpy()
    here = model.histogram_model(_bins(x, np.array([0, 1]), 2), ["A", "B"], GENRES)
    assert [v.name for v in chapter.free_RVs] == [v.name for v in here.free_RVs]
    point = here.initial_point()
    rng = np.random.default_rng(0)
    point = {k: v + rng.normal(0, 0.3, size=np.shape(v)) for k, v in point.items()}
    prior_chapter = chapter.compile_logp(vars=chapter.free_RVs)(point)
    prior_here = here.compile_logp(vars=here.free_RVs)(point)
    assert prior_chapter == pytest.approx(prior_here, abs=1e-10)
