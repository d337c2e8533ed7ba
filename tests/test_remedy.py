"""hbm.remedy: the shared policy that re-fits a model whose diagnostics fail, and says what it did."""

import numpy as np
import pytest

import arviz as az
from hbm import remedy
from hbm.diagnostics import check


def _tree(draws: np.ndarray, diverging: int = 0) -> object:
    """A DataTree with posterior draws (chain, draw) of x and ``diverging`` divergent transitions."""
    flags = np.zeros(draws.shape, bool)
    flags.flat[:diverging] = True
    tree = az.from_dict({"posterior": {"x": draws}, "sample_stats": {"diverging": flags}})
    tree["posterior"].attrs["inference_library"] = "nutpie"
    return tree


def _good(draws: int, seed: int = 0) -> np.ndarray:
    """Independent normal draws in four chains: every check passes."""
    return np.random.default_rng(seed).normal(size=(4, draws))


def _short_ess(draws: int) -> np.ndarray:
    """Four chains of blocks of 12 repeated normal values: R-hat passes, the ESS is about draws/3."""
    blocks = np.random.default_rng(2).normal(size=(4, draws // 12 + 1))
    return np.repeat(blocks, 12, axis=1)[:, :draws]


def _offset_until_long_warm_up(offset: float):
    """A fake fit whose last two chains sit ``offset`` away until the warm-up has 2,000 steps."""
    def make(draws, tune, **_):
        shift = np.array([[0.0], [0.0], [offset], [offset]]) if tune < 2000 else 0.0
        return _tree(_good(draws) + shift)

    return make


class Recorder:
    """A fake fit function: returns ``make(**settings)`` and records every call's settings."""

    def __init__(self, make):
        self.make = make
        self.calls = []

    def __call__(self, *, draws, tune, target_accept, parameterization):
        self.calls.append(dict(draws=draws, tune=tune, target_accept=target_accept,
                               parameterization=parameterization))
        return self.make(draws=draws, tune=tune, target_accept=target_accept,
                         parameterization=parameterization)


def test_a_fit_that_passes_is_not_refitted():
    """A passing first fit is returned as is: one call with the given settings, reliable, one sentence."""
    fake = Recorder(lambda draws, **_: _tree(_good(draws)))
    result = remedy.fit_with_remedies(fake, draws=500, tune=700, target_accept=0.85)
    assert fake.calls == [dict(draws=500, tune=700, target_accept=0.85, parameterization="centered")]
    assert result.reliable and result.stopped == "passed" and result.refits == 0
    assert result.attempts[0].change == ""
    assert result.description == "The first fit passed every diagnostic check."
    assert repr(result.description) == str(result.description)  # inline: no quotes


def test_short_ess_takes_more_draws_and_says_why():
    """ESS below 100 per chain: twice the draws (or the extrapolated need), with the ESS in the reason."""
    fake = Recorder(lambda draws, **_: _tree(_short_ess(draws) if draws < 2000 else _good(draws)))
    result = remedy.fit_with_remedies(fake, draws=1000)
    first = result.attempts[0].diagnostics
    assert first.max_rhat <= 1.01 and min(first.min_ess_bulk, first.min_ess_tail) < 400
    assert [c["draws"] for c in fake.calls] == [1000, 2000]
    assert [c["tune"] for c in fake.calls] == [1000, 1000]
    kind, ess = ("bulk", first.min_ess_bulk) if first.min_ess_bulk <= first.min_ess_tail else ("tail", first.min_ess_tail)
    change = f"took 2,000 draws instead of 1,000 because the {kind} ESS was {ess:.0f}, below 400"
    assert result.attempts[1].change == change
    assert result.reliable and result.refits == 1
    assert result.description == f"The model was re-fitted once: it {change}; the last fit passes every diagnostic check."


def test_very_short_ess_extrapolates_the_draws_up_to_the_cap():
    """An ESS far below the target asks for the extrapolated draws (ESS grows with draws), capped at max_draws."""
    fake = Recorder(lambda draws, **_: _tree(_short_ess(draws) if draws < 1000 else _good(draws)))
    result = remedy.fit_with_remedies(fake, draws=300, max_draws=2500)
    first = result.attempts[0].diagnostics
    wanted = 300 * 400 / min(first.min_ess_bulk, first.min_ess_tail) * 1.2
    assert fake.calls[1]["draws"] == min(2500, max(600, 100 * int(np.ceil(wanted / 100))))
    assert result.reliable


def test_disagreeing_chains_take_more_draws_and_a_longer_warm_up():
    """R-hat above 1.01 with enough ESS (chains with slightly offset means): twice the draws and tuning steps."""
    fake = Recorder(_offset_until_long_warm_up(0.3))
    result = remedy.fit_with_remedies(fake, draws=1000, tune=1000)
    rhat = result.attempts[0].diagnostics.max_rhat
    assert rhat > 1.01 and result.attempts[0].diagnostics.failures == [f"R-hat up to {rhat:.3f}, above 1.01"]
    assert [(c["draws"], c["tune"]) for c in fake.calls] == [(1000, 1000), (2000, 2000)]
    assert result.attempts[1].change.startswith(
        f"took 2,000 draws and 2,000 tuning steps instead of 1,000 and 1,000 because R-hat was {rhat:.3f}, above 1.01")
    assert result.reliable


def test_disagreeing_chains_with_short_ess_give_both_reasons():
    """R-hat high and ESS short together: one refit with the extrapolated draws, the doubled warm-up, both reasons."""
    fake = Recorder(_offset_until_long_warm_up(3.0))
    result = remedy.fit_with_remedies(fake, draws=1000, tune=1000, max_draws=3000)
    first = result.attempts[0].diagnostics
    assert fake.calls[1]["tune"] == 2000 and fake.calls[1]["draws"] == 3000  # the extrapolation, capped
    assert " because R-hat was " in result.attempts[1].change and " ESS was " in result.attempts[1].change
    assert first.max_rhat > 1.01 and first.min_ess_bulk < 400
    assert result.reliable


def test_a_centred_fit_that_diverges_is_switched_to_the_other_parameterization():
    """Divergences in the centred fit: the next fit is non-centred with the other settings unchanged."""
    fake = Recorder(lambda draws, parameterization, **_: _tree(_good(draws), 5 if parameterization == "centered" else 0))
    result = remedy.fit_with_remedies(fake)
    assert [c["parameterization"] for c in fake.calls] == ["centered", "noncentered"]
    assert fake.calls[1] == dict(draws=1000, tune=1000, target_accept=0.8, parameterization="noncentered")
    assert result.attempts[1].change == (
        "switched from the centred to the non-centred parameterization because the centred fit "
        "had 5 divergent transitions")
    assert result.reliable and result.settings.parameterization == "noncentered"


def test_an_integrated_out_parameterization_reads_in_words():
    """A parameterization named "marginal" (a level integrated out) reads "integrated-out" in the sentence."""
    fake = Recorder(lambda draws, parameterization, **_: _tree(_good(draws), 2 if parameterization == "centered" else 0))
    result = remedy.fit_with_remedies(fake, parameterizations=("centered", "marginal"))
    assert result.attempts[1].change == (
        "switched from the centred to the integrated-out parameterization because the centred fit "
        "had 2 divergent transitions")


def test_divergences_left_after_switching_raise_target_accept_step_by_step():
    """Divergences in every parameterization: target_accept rises 0.8 -> 0.9 -> 0.95, one step per refit."""
    fake = Recorder(lambda draws, target_accept, **_: _tree(_good(draws), 0 if target_accept >= 0.95 else 1))
    result = remedy.fit_with_remedies(fake)
    assert [(c["parameterization"], c["target_accept"]) for c in fake.calls] == [
        ("centered", 0.8), ("noncentered", 0.8), ("noncentered", 0.9), ("noncentered", 0.95)]
    assert [a.change for a in result.attempts[2:]] == [
        "raised the target acceptance rate from 0.8 to 0.9 because the non-centred fit had 1 divergent transition",
        "raised the target acceptance rate from 0.9 to 0.95 because the non-centred fit had 1 divergent transition"]
    assert result.reliable and result.refits == 3
    assert result.description.startswith("The model was re-fitted 3 times: it switched from the centred")


def test_a_fit_that_still_fails_after_the_budget_is_flagged_unreliable():
    """Divergences that never go away: max_refits refits, then the last fit comes back unreliable, saying so."""
    fake = Recorder(lambda draws, **_: _tree(_good(draws), 7))
    result = remedy.fit_with_remedies(fake, max_refits=2)
    assert len(fake.calls) == 3 and result.stopped == "budget" and not result.reliable
    assert result.fit is not None and result.diagnostics.divergences == 7
    assert result.description.endswith(
        "; the last fit still fails its diagnostics after 2 refits, the most allowed"
        ", with 7 divergent transitions. It is not reliable.")
    table = result.table()
    assert list(table.index) == ["attempt 1", "attempt 2", "attempt 3"]
    assert list(table["checks"]) == ["FAIL"] * 3 and table["change"].iloc[0] == ""


def test_the_table_names_its_settings_in_words():
    """A page shows the table as it is: settings are named in words, not by their argument names."""
    fake = Recorder(lambda draws, target_accept, **_: _tree(_good(draws), 0 if target_accept >= 0.9 else 1))
    table = remedy.fit_with_remedies(fake, parameterizations=("only",)).table()
    settings = ["parameterization", "draws", "warm-up steps", "target acceptance rate", "change"]
    assert set(settings) <= set(table.columns)
    assert not {"target_accept", "tune"} & set(table.columns)
    assert list(table["target acceptance rate"]) == [0.8, 0.9]
    assert list(table["warm-up steps"]) == [1000, 1000]


def test_no_remedy_left_stops_early():
    """One parameterization and target_accept at its cap: divergences have no remedy, so no refit."""
    fake = Recorder(lambda draws, **_: _tree(_good(draws), 2))
    result = remedy.fit_with_remedies(fake, target_accept=0.99, parameterizations=("only",))
    assert len(fake.calls) == 1 and result.stopped == "no remedy" and not result.reliable
    assert result.description == ("The first fit still fails its diagnostics with no change left to try"
                                  ", with 2 divergent transitions. It is not reliable.")


def test_draws_at_their_cap_are_not_raised():
    """A short ESS with draws already at max_draws has no remedy: the fit is returned unreliable."""
    fake = Recorder(lambda draws, **_: _tree(_short_ess(draws)))
    result = remedy.fit_with_remedies(fake, draws=1000, max_draws=1000)
    assert len(fake.calls) == 1 and result.stopped == "no remedy" and not result.reliable


def test_the_verdict_is_hbm_diagnostics_check():
    """Each attempt's diagnostics are exactly hbm.diagnostics.check of its fit (same thresholds)."""
    tree = _tree(_good(400), 3)
    result = remedy.fit_with_remedies(lambda **_: tree, max_refits=0)
    assert result.diagnostics.failures == check(tree).failures == ["3 divergent transitions"]
    assert result.description == ("The first fit still fails its diagnostics with no refit allowed"
                                  ", with 3 divergent transitions. It is not reliable.")


@pytest.mark.parametrize("kwargs, match", [
    (dict(max_refits=-1), "max_refits"),
    (dict(draws=0), "draws"),
    (dict(draws=5000), "max_draws"),
    (dict(target_accept=1.0), "target_accept"),
    (dict(parameterizations=()), "parameterization"),
])
def test_bad_budgets_are_refused(kwargs, match):
    """Nonsense budgets raise ValueError before anything is fitted."""
    fake = Recorder(lambda **_: pytest.fail("fitted"))
    with pytest.raises(ValueError, match=match):
        remedy.fit_with_remedies(fake, **kwargs)


# --------------------------------------------------------------------------- a real sampler
EIGHT_Y = np.array([28.0, 8.0, -3.0, 7.0, -1.0, 1.0, 18.0, 12.0])
EIGHT_SE = np.array([15.0, 10.0, 16.0, 11.0, 9.0, 11.0, 10.0, 18.0])


@pytest.fixture(scope="session")
def eight_schools_remedied():
    """The eight-schools model with PyMC (nutpie), centred first, remedied by the policy: sampled once per session."""
    pm = pytest.importorskip("pymc")

    def fit(*, draws, tune, target_accept, parameterization):
        with pm.Model():
            mu = pm.Normal("mu", 0.0, 5.0)
            tau = pm.HalfCauchy("tau", 5.0)
            if parameterization == "centered":
                theta = pm.Normal("theta", mu, tau, shape=8)
            else:
                z = pm.Normal("z", 0.0, 1.0, shape=8)
                theta = pm.Deterministic("theta", mu + tau * z)
            pm.Normal("y", theta, EIGHT_SE, observed=EIGHT_Y)
            return pm.sample(draws=draws, tune=tune, chains=4, cores=1, target_accept=target_accept,
                             random_seed=20261202, progressbar=False, nuts_sampler="nutpie")

    return remedy.fit_with_remedies(fit, draws=500, tune=500, max_refits=3, max_draws=1000,
                                    var_names=["mu", "tau", "theta"])


def test_real_centred_eight_schools_is_switched_to_non_centred(eight_schools_remedied):
    """The centred eight schools diverge; the policy re-fits it non-centred, and records and says so."""
    result = eight_schools_remedied
    first, second = result.attempts[:2]
    assert first.settings.parameterization == "centered" and first.diagnostics.divergences > 0
    assert second.settings.parameterization == "noncentered"
    assert second.change.startswith("switched from the centred to the non-centred parameterization because "
                                    f"the centred fit had {first.diagnostics.divergences} divergent transition")
    assert result.description.startswith("The model was re-fitted")
    assert result.reliable, result.description
