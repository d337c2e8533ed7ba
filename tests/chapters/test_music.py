"""Chapter "Regional music preferences": its fits, recovery, borrowing strength and robustness."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from booktools import checks as quarto
from booktools.copyscript import run as run_copy
from hbm.book import music
from booktools.execute import execute_chapter
from tests.variants import VARIANTS

CHAPTER = "chapters/music.qmd"
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def ch(chapter):
    """The chapter, executed once per session."""
    return chapter(CHAPTER)


def test_static_checks(root):
    """Cross-references, citations, figure options and standalone model cells of the chapter are all valid."""
    problems = [p for p in quarto.check_all(root, files=[CHAPTER]) if p.startswith(CHAPTER)]
    assert problems == []


def test_three_level_fit_passes_diagnostics(ch):
    """The PyMC three-level fit (nutpie) has no divergences, R-hat <= 1.01 and ESS >= 100 per chain."""
    checks = ch.value("checks")
    assert checks.sampler == "nutpie" and checks.divergences == 0 and checks.max_rhat <= 1.01
    assert checks.ok


def test_bambi_by_region_fit_passes_diagnostics(ch):
    """Bambi's ~ 0 + region Dirichlet-multinomial fit (nutpie) passes every check."""
    checks = ch.value("checks_by_region")
    assert checks.sampler == "nutpie" and checks.ok


def test_failing_fits_are_flagged_in_the_prose(ch):
    """A fit whose diagnostics fail is called failed in the prose, and the pooled Bambi fit is then not used."""
    for name in ("checks_by_region", "checks_pooled", "checks"):
        checks = ch.value(name)
        assert ("diagnostics failed" in checks.message) == (not checks.ok), name
    shown = " ".join(r.data.get("text/plain", "") for r in ch.inline_results)
    for name in ("checks_by_region", "checks_pooled", "checks"):
        assert ch.value(name).message in shown, name
    # Only the sentence of the case that holds is shown.
    if ch.value("checks_pooled.ok"):
        assert "It passes them, but it is not the model this chapter needs" in ch.prose
        assert "Its estimates are therefore not used" not in ch.prose
    else:
        assert "Its estimates are therefore not used" in ch.prose


def test_book_data_fits_pass_so_no_unreliable_note(ch):
    """On the book's data every fit the prose reads passes, so no sentence calls a result unreliable."""
    assert ch.value("checks.ok") and ch.value("checks_by_region.ok")
    shown = " ".join(r.data.get("text/plain", "") for r in ch.inline_results)
    assert "not reliable here" not in shown


def test_posterior_predictive_check_is_computed(ch):
    """The posterior predictive check has one p-value per region and statistic, and its verdict matches them."""
    table = ch.value("ppc_table")
    assert len(table) == 6 * len(ch.value("regions"))
    assert table["p"].between(0, 1).all()
    extreme = int(((table["p"] < 0.025) | (table["p"] > 0.975)).sum())
    assert ch.value("n_extreme") == extreme and ch.value("n_stats") == len(table)
    shown = " ".join(r.data.get("text/plain", "") for r in ch.inline_results)
    verdict = "finds no clear misfit" if ch.value("ppc_fits") else "finds features of the data the model misses"
    assert verdict in shown


def test_recovers_regional_profiles(ch):
    """At most 2 of the 20 true p_rk fall outside their 95% intervals, and the posterior means' mean absolute error is below 0.02."""
    truth = ch.value("truth")
    assert truth is not None, "the project's data should come with its simulation truth"
    rec = music.recovery(ch.value("profiles"), music.truth_profiles(truth))
    assert rec["n"] == 20 and rec["missed"] <= 2
    assert rec["mae"] < 0.02 and rec["max_error"] < 0.06


def test_recovers_concentrations(ch):
    """At most 1 of the 4 true kappa_r falls outside its 95% interval; every posterior mean is within a factor 1.6 of the truth."""
    truth = ch.value("truth")
    kappas = ch.value("kappas")
    rec = music.recovery(kappas, music.truth_kappa(truth))
    assert rec["n"] == 4 and rec["missed"] <= 1
    ratio = rec["table"]["mean"] / rec["table"]["true"]
    assert ratio.between(1 / 1.6, 1.6).all()


def test_user_means_between_raw_shares_and_profile(ch):
    """Every user's posterior mean of every genre lies between their own share and the region's posterior mean profile (+-0.005)."""
    mean = ch.value("users.mean")
    raw = ch.value("raw")
    profile = ch.value("profile_mean[region_idx]")
    has_plays = ch.value("totals") > 0
    lo = np.minimum(raw, profile)[has_plays]
    hi = np.maximum(raw, profile)[has_plays]
    assert np.all(mean[has_plays] >= lo - 0.005) and np.all(mean[has_plays] <= hi + 0.005)


def test_user_means_are_convex_combinations(ch):
    """Given alpha (the posterior mean), user means are exactly w*raw + (1-w)*p_r with w = n/(n+kappa_r); over draws within 0.005."""
    alpha = ch.value("alpha").mean(axis=0)
    x, idx = ch.value("x"), ch.value("region_idx")
    keep = x.sum(1) > 0
    kappa = alpha.sum(1)
    w = music.shrinkage_weight(x.sum(1), kappa[idx])[:, None]
    exact = music.posterior_mean_given_alpha(alpha[idx], x)
    combo = w * music.shares(x) + (1 - w) * (alpha / kappa[:, None])[idx]
    np.testing.assert_allclose(exact[keep], combo[keep], rtol=1e-12, atol=1e-15)
    assert ch.value("convex_gap") < 0.005


def test_shrinkage_grows_as_plays_shrink(ch):
    """Within each region, shrinkage 1 - E[w] strictly decreases as total plays increase (equal totals: equal shrinkage)."""
    shrink, totals, idx = ch.value("shrinkage"), ch.value("totals"), ch.value("region_idx")
    for r in np.unique(idx):
        n, s = totals[idx == r], shrink[idx == r]
        order = np.argsort(n, kind="stable")
        n, s = n[order], s[order]
        dn, ds = np.diff(n), np.diff(s)
        assert np.all(ds[dn > 0] < 0) and np.allclose(ds[dn == 0], 0.0, atol=1e-12)
    fewest, median, most = (ch.value(f"shrinkage[row[{role!r}]]") for role in ("fewest", "median", "most"))
    assert fewest > median > most


def test_borrowing_strength_for_chosen_users(ch):
    """The lightest user sits nearer the regional profile than their own shares, the heaviest nearer their own shares."""
    row = ch.value("row")
    raw, mean, profile = ch.value("raw"), ch.value("users.mean"), ch.value("profile_mean[region_idx]")

    def distances(i):
        return np.abs(mean[i] - profile[i]).sum(), np.abs(mean[i] - raw[i]).sum()

    to_profile, to_own = distances(row["fewest"])
    assert to_profile < to_own
    to_profile, to_own = distances(row["most"])
    assert to_own < to_profile
    assert ch.value("users.weight[row['fewest']]") < 0.5 < ch.value("users.weight[row['most']]")


def test_new_user_gets_regional_profile_with_honest_uncertainty(ch):
    """A new user's posterior mean is the posterior mean profile; their intervals contain the profile's and are wider than the median user's."""
    np.testing.assert_allclose(ch.value("newcomers.mean"), ch.value("profile_mean"), rtol=1e-10)
    profiles = ch.value("profiles")
    regions, genres = ch.value("regions"), list(ch.value("GENRES"))
    lower = profiles.pivot(index="region", columns="genre", values="lower").loc[regions, genres].to_numpy()
    upper = profiles.pivot(index="region", columns="genre", values="upper").loc[regions, genres].to_numpy()
    assert np.all(ch.value("newcomers.lower") < lower) and np.all(ch.value("newcomers.upper") > upper)
    new_width, width, idx = ch.value("new_width"), ch.value("width"), ch.value("region_idx")
    for r in np.unique(idx):
        assert np.all(new_width[r] > np.median(width[idx == r], axis=0))


def test_prose_numbers(ch):
    """Counts in the prose come from the data file: 120 users in 4 regions of 30 users each."""
    assert ch.value("len(plays)") == 120 and ch.value("len(regions)") == 4
    assert "The file has 120 users in 4 regions, 30 users each" in ch.prose
    assert ch.value("has_truth") and "No simulation truth" not in ch.prose
    assert "The data were simulated, so the truth is known" in ch.prose
    assert "This copy is that file" in ch.prose
    assert "The recovery check above sets the estimates beside the simulation's truth." in ch.prose
    assert "The file read here is not the book's" not in ch.prose
    # The verdicts of the book's data, and not the other cases'.
    assert "The answer is not driven by the prior" in ch.prose
    assert "The concentrations do depend on the prior here" not in ch.prose
    assert "Every observed spread lies inside its prior interval" in ch.prose
    assert "n/a" not in ch.prose


@pytest.mark.parametrize("name", list(VARIANTS))
def test_own_data_sentences(variant, name):
    """On each own-data variant the chapter runs; counts, region names and verdicts in its prose match its data."""
    executed = variant(CHAPTER, name, VARIANTS[name])
    plays, regions = executed.value("plays"), executed.value("regions")
    upr = executed.value("users_per_region")
    shown = executed.prose
    assert f"{len(plays):,} user" in shown and f"in {len(regions)} region" in shown
    if len(regions) > 1:
        sizes = f"{upr.min()} users each" if upr.min() == upr.max() else f"from {upr.min()} to {upr.max()} users per region"
        assert sizes in shown
    assert "from 30 to 30" not in shown
    # Only regions in the file are named, and the kappa table has exactly them, by label.
    assert list(executed.value("kappa_table").index) == list(regions)
    kappas = executed.value("kappas")
    if len(regions) > 1:
        lone = [r for r, n in zip(regions, upr) if n == 1]
        assert f"Users in {kappas.drop(lone)['mean'].idxmax()} are the most alike" in shown
    # No truth file in any variant: the recovery says so.
    assert not executed.value("has_truth")
    assert "No simulation truth is available for this data file" in shown
    assert "The file read here is not the book's" in shown and "This copy is that file" not in shown
    assert "The data were simulated" not in shown and "n/a" not in shown
    # One of the predictive check's three verdicts, by its numbers.
    n_extreme, ppc_fits = executed.value("n_extreme"), executed.value("ppc_fits")
    assert ("The model reproduces what it was fitted to." in shown) == (n_extreme == 0)
    assert ("so the check finds no clear misfit" in shown) == (n_extreme > 0 and ppc_fits)
    assert ("That is more than chance alone gives" in shown) == (not ppc_fits)
    # A failed fit is said to be unreliable where its numbers are read (fast mode usually fails).
    if not (executed.value("checks.ok") and executed.value("checks_by_region.ok")):
        assert "not reliable here" in shown


def test_copied_code_runs_alone_and_reproduces_the_estimates(ch):
    """The visible code alone (fast mode): data summaries and observed check statistics exactly; κ_r within a factor 1.25."""
    run = run_copy(CHAPTER, keys=["plays_per_user.to_json()", "SEED", "ppc_table['observed'].to_json()",
                                  "summary['mean'].to_json()"])
    assert run.ok, run.tail()
    assert run.keys["SEED"] == ch.value("SEED")
    assert list(json.loads(run.keys["plays_per_user.to_json()"]).values()) == ch.value("totals").tolist()
    observed = json.loads(run.keys["ppc_table['observed'].to_json()"])
    book_observed = ch.value("ppc_table")["observed"]
    assert set(observed) == set(book_observed.index)
    for statistic, value in book_observed.items():
        assert observed[statistic] == pytest.approx(value, rel=1e-9), statistic
    means = json.loads(run.keys["summary['mean'].to_json()"])
    profiles, kappas = ch.value("profiles"), ch.value("kappas")
    # Fast mode samples 2 chains of 150 draws after 150 tuning steps: only the ranges are checked.
    copied = np.array([means[f"profile ({r}, {g})"] for r, g in zip(profiles["region"], profiles["genre"])])
    assert np.all((copied > 0) & (copied < 1))
    np.testing.assert_allclose(copied, profiles["mean"].to_numpy(), atol=0.05)  # rows paired by label
    copied_kappa = np.array([means[f"κ ({region})"] for region in kappas.index])
    print("κ, copy (fast) vs book:", copied_kappa, kappas["mean"].to_numpy())
    assert np.all(np.isfinite(copied_kappa) & (copied_kappa > 0))
    assert np.all(np.abs(np.log(copied_kappa / kappas["mean"].to_numpy())) < np.log(1.25))


def test_stated_priors_are_the_fitted_ones(ch):
    """The priors the text states, log c ~ N(3, 1) and log κ_r ~ N(3, 1.5), are the fitted model's; the page shows the model file."""
    from hbm.scale.three_level import three_level_model

    model = three_level_model(ch.value("plays"))  # the chapter fits three_level_model(plays)
    for name, stated in (("c", (3.0, 1.0)), ("log_kappa", (3.0, 1.5))):
        mu, sigma = model[name].owner.inputs[-2:]
        assert (float(np.unique(mu.eval())[0]), float(np.unique(sigma.eval())[0])) == stated, name
    text = (ROOT / CHAPTER).read_text()
    assert "{{< include ../hbm/scale/three_level.py >}}" in text and "model = three_level_model(plays)\n" in text
    source = (ROOT / "hbm/scale/three_level.py").read_text()
    assert '"""' not in source and "with pm.Model(coords=coords)" in source


def test_bambi_priors_are_the_stated_ones(ch):
    """Both Bambi fits' priors, read from the built models (model.parameters), are the numbers the cells and the text state."""
    fitted = ch.value("fitted_priors")
    regions = ch.value("regions")
    by_region = fitted["by region"]
    assert set(by_region) == {"region"}
    name, args = by_region["region"]
    assert name == "Normal"
    assert np.allclose(args["mu"], 0.0) and np.allclose(args["sigma"], 2.5)
    assert np.size(args["sigma"]) in (1, len(regions))
    assert fitted["hierarchical"] == {
        "Intercept": ("Normal", {"mu": 0.0, "sigma": 2.5}),
        "1|region": ("Normal", {"mu": 0.0, "sigma": ("HalfNormal", {"sigma": 2.5})}),
    }
    # Not left to Bambi: its default for ~ 0 + region would be 2.5 / sd(dummy) = 5.77 here.
    text = (ROOT / CHAPTER).read_text(encoding="utf-8")
    assert 'by_region_priors = {"region": bmb.Prior("Normal", mu=0, sigma=2.5)}' in text
    assert "priors=by_region_priors" in text and "priors=pooled_priors" in text
    assert '"Intercept": bmb.Prior("Normal", mu=0, sigma=2.5)' in text
    assert 'sigma=bmb.Prior("HalfNormal", sigma=2.5)' in text
    assert r"its prior is $\operatorname{Normal}(0, 2.5)$" in text
    assert r"$\beta_k \sim \operatorname{Normal}(0, 2.5)$" in text and "half-normal with scale 2.5" in text


def test_generating_values_are_declared(ch):
    """The simulation's generating values are shown where the data first appear, and are the truth file's."""
    table, truth = ch.value("generating_table"), ch.value("truth")
    for region in truth["regions"]:
        assert table.loc[region["region"], "true κ"] == region["kappa"]
        assert table.loc[region["region"], "Pop"] == region["p"]["pop"]
    text = (ROOT / CHAPTER).read_text(encoding="utf-8")
    assert text.index("tbl-music-truth") < text.index("## The model")


def test_kappa_prior_sensitivity_and_prior_check(ch):
    """The κ prior sensitivity table has every region under three prior scales; the prior predictive check has a spread per region."""
    table = ch.value("kappa_sensitivity")
    assert list(table.index) == list(ch.value("regions")) and table.shape[1] == 3
    assert ch.value("kappa_ratio") >= 1.0
    assert len(ch.value("prior_spread")) == len(ch.value("regions"))


def _copy_project(root, tmp_path):
    """A minimal project copy: the chapter and the data folder."""
    (tmp_path / "chapters").mkdir()
    shutil.copy(root / CHAPTER, tmp_path / CHAPTER)
    shutil.copytree(root / "data", tmp_path / "data")
    (tmp_path / "hbm" / "scale").mkdir(parents=True)  # the model file the chapter includes
    shutil.copy(root / "hbm/scale/three_level.py", tmp_path / "hbm/scale/three_level.py")
    return tmp_path / "data" / "music_plays.csv"


def test_tiny_region_is_counted(variant):
    """With a fifth, one-user region the chapter counts five regions and names the new one."""
    tiny = variant(CHAPTER, "tiny", VARIANTS["tiny"])
    assert len(tiny.value("regions")) == 5 and "Oceania" in tiny.value("regions")


def test_bad_data_stops_with_a_data_error(root, tmp_path):
    """A non-integer count stops the chapter with a DataError naming the file, the column and the line."""
    csv = _copy_project(root, tmp_path)
    lines = csv.read_text().splitlines()
    fields = lines[5].split(",")
    fields[3] = "lots"
    lines[5] = ",".join(fields)
    csv.write_text("\n".join(lines) + "\n")
    executed = execute_chapter(tmp_path / CHAPTER, root=tmp_path)
    assert executed.error is not None
    assert "DataError" in executed.error and "music_plays.csv" in executed.error
    assert "'rock'" in executed.error and "line 6" in executed.error


def test_summary_rows_carry_their_own_labels(ch):
    """Each 'profile (region, genre)' row of the page's az.summary is that region's and genre's posterior mean (label, not position)."""
    summary, profiles = ch.value("summary"), ch.value("profiles")
    for _, row in profiles.iterrows():
        assert float(summary.loc[f"profile ({row['region']}, {row['genre']})", "mean"]) == pytest.approx(row["mean"], abs=0.01)
