"""hbm.diagnostics: the verdict and sentence every chapter shows for a fit."""

import arviz as az
import numpy as np
import pytest

from hbm import diagnostics


def _fit(draws, diverging=None, library="nutpie"):
    """A DataTree with the given posterior draws (chain, draw) and divergence flags."""
    draws = np.asarray(draws, dtype=float)
    diverging = np.zeros(draws.shape, bool) if diverging is None else diverging
    tree = az.from_dict({"posterior": {"x": draws}, "sample_stats": {"diverging": diverging}})
    tree["posterior"].attrs["inference_library"] = library
    return tree


def test_well_mixed_chains_pass(rng):
    """Independent normal draws in four chains pass every check and say so."""
    checks = diagnostics.check(_fit(rng.normal(size=(4, 1000))))
    assert checks.ok and checks.failures == []
    assert (checks.chains, checks.draws, checks.divergences) == (4, 1000, 0)
    assert checks.max_rhat < 1.01 and checks.min_ess_bulk > 2000
    assert checks.message.startswith("4 chains of 1000 draws with nutpie: 0 divergences")
    assert checks.message.endswith("all checks pass.")
    assert repr(checks.message) == str(checks.message)  # shows without quotes inline


def test_divergences_fail_and_are_counted(rng):
    """Any divergent transition fails the fit, and the message says how many."""
    diverging = np.zeros((4, 1000), bool)
    diverging[1, [3, 30, 300]] = True
    checks = diagnostics.check(_fit(rng.normal(size=(4, 1000)), diverging))
    assert not checks.ok
    assert checks.divergences == 3
    assert "3 divergent transitions" in checks.message and "diagnostics failed" in checks.message


def test_chains_that_disagree_fail_rhat(rng):
    """Chains centred in different places give R-hat above 1.01 and a failed verdict."""
    draws = rng.normal(size=(4, 1000)) + np.array([[0.0], [0.0], [3.0], [3.0]])
    checks = diagnostics.check(_fit(draws))
    assert checks.max_rhat > 1.01
    assert any(f.startswith("R-hat") for f in checks.failures)


def test_autocorrelated_chains_fail_ess(rng):
    """A strongly autocorrelated random walk has too few effective draws (< 100 per chain)."""
    steps = rng.normal(scale=0.01, size=(4, 1000))
    checks = diagnostics.check(_fit(np.cumsum(steps, axis=1)))
    assert checks.min_ess_bulk < checks.min_ess == 400
    assert any(f.startswith("bulk ESS") for f in checks.failures)


@pytest.mark.parametrize("library, name", [("nutpie", "nutpie"), ("pymc", "PyMC's NUTS")])
def test_sampler_is_named(rng, library, name):
    """The sampler is read from the fit's attributes and named in words."""
    assert diagnostics.sampler_name(_fit(rng.normal(size=(2, 50)), library=library)) == name


def test_compare_has_one_row_per_fit(rng):
    """compare() tabulates named fits with their verdicts."""
    good = _fit(rng.normal(size=(4, 500)))
    bad = _fit(rng.normal(size=(4, 500)), np.ones((4, 500), bool))
    table = diagnostics.compare({"good": good, "bad": bad})
    assert list(table.index) == ["good", "bad"]
    assert list(table["checks"]) == ["pass", "FAIL"]
    assert table.loc["bad", "divergences"] == 2000


def test_sampler_read_from_sample_stats_when_posterior_is_silent(rng):
    """nutpie.sample called directly names itself on sample_stats only; that is used."""
    tree = az.from_dict({"posterior": {"x": rng.normal(size=(2, 50))},
                         "sample_stats": {"diverging": np.zeros((2, 50), bool)}})
    tree["sample_stats"].attrs["inference_library"] = "nutpie"
    assert diagnostics.sampler_name(tree) == "nutpie"


def _hmc_fit(rng, energy, saturated=None, stat="maxdepth_reached"):
    """Well-mixed draws with the given energy per (chain, draw) and tree-depth flags."""
    draws = rng.normal(size=energy.shape)
    stats = {"diverging": np.zeros(energy.shape, bool), "energy": energy}
    if saturated is not None:
        stats[stat] = saturated
    return az.from_dict({"posterior": {"x": draws}, "sample_stats": stats})


def test_bfmi_is_arviz_and_low_bfmi_fails(rng):
    """min_bfmi is arviz.bfmi's smallest chain value; a chain below 0.3 fails the fit and is named."""
    energy = rng.normal(size=(4, 1000))
    energy[2] = np.cumsum(rng.normal(size=1000)) * 0.05  # a random walk: tiny energy transitions
    checks = diagnostics.check(_hmc_fit(rng, energy))
    expected = np.asarray(az.bfmi(_hmc_fit(rng, energy))["energy"]).min()
    assert checks.min_bfmi == pytest.approx(expected, rel=1e-12)
    assert checks.min_bfmi < diagnostics.MIN_BFMI and not checks.ok
    assert "E-BFMI down to" in checks.message


def test_independent_energy_passes_bfmi(rng):
    """Independent energies give E-BFMI near 2 (the variance of differences is twice the variance)."""
    checks = diagnostics.check(_hmc_fit(rng, rng.normal(size=(4, 1000))))
    assert checks.min_bfmi > 1.5 and checks.ok


@pytest.mark.parametrize("stat", diagnostics.TREEDEPTH_STATS)
def test_treedepth_saturation_beyond_one_percent_fails(rng, stat):
    """40 of 4000 transitions (1%) at the maximum depth pass; 41 fail, for PyMC's and nutpie's stat names."""
    saturated = np.zeros((4, 1000), bool)
    saturated[0, :40] = True
    checks = diagnostics.check(_hmc_fit(rng, rng.normal(size=(4, 1000)), saturated, stat))
    assert checks.treedepth_hits == 40 and checks.ok
    saturated[1, 0] = True
    checks = diagnostics.check(_hmc_fit(rng, rng.normal(size=(4, 1000)), saturated, stat))
    assert checks.treedepth_hits == 41 and not checks.ok
    assert "41 transitions hit the maximum tree depth" in checks.message


def test_without_energy_or_depth_stats_those_checks_are_skipped(rng):
    """A fit without energy or tree-depth statistics is judged on the other checks alone."""
    checks = diagnostics.check(_fit(rng.normal(size=(4, 1000))))
    assert np.isnan(checks.min_bfmi) and checks.treedepth_hits == 0 and checks.ok


def test_one_divergence_reads_in_the_singular(rng):
    """One divergent transition reads '1 divergence' and '1 divergent transition', not plurals."""
    diverging = np.zeros((4, 1000), bool)
    diverging[2, 7] = True
    checks = diagnostics.check(_fit(rng.normal(size=(4, 1000)), diverging))
    assert ": 1 divergence, max R-hat" in checks.message
    assert "1 divergent transition;" in checks.message or "1 divergent transition." in checks.message
    assert "1 divergences" not in checks.message and "1 divergent transitions" not in checks.message
