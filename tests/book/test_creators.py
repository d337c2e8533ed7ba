"""hbm.book.creators: the creator models, exact conditional draws, the Bambi workaround and the study runner."""

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from scipy import stats

from hbm.book import creators as cr
from hbm import diagnostics
from hbm.book.simulate import creators as simulate_creators


def _posterior(**variables):
    """A DataTree whose posterior holds the given (dims, values) variables, plus no divergences."""
    post = xr.Dataset({name: (dims, np.asarray(values, float)) for name, (dims, values, *_) in variables.items()})
    for name, (dims, values, *coords) in variables.items():
        if coords:
            post = post.assign_coords({dims[-1]: coords[0]})
    chains, draws = post.sizes["chain"], post.sizes["draw"]
    stats_ = xr.Dataset({"diverging": (("chain", "draw"), np.zeros((chains, draws), bool))})
    return xr.DataTree.from_dict({"posterior": post, "sample_stats": stats_})


def _frame(y, se, genre, n=None):
    """A creators frame with the loader's schema."""
    k = len(y)
    return pd.DataFrame({
        "creator_id": [f"c{i:03d}" for i in range(k)],
        "genre": pd.Categorical(genre),
        "n": np.full(k, 100) if n is None else np.asarray(n),
        "effect": np.asarray(y, float),
        "se": np.asarray(se, float),
    })


# --------------------------------------------------------------------------- conditional posterior


def test_conditional_moments_hand_computed():
    """y=1, se=1, mu=0, sigma=1 gives B=1/2: mean 0.5 and sd sqrt(0.5); se=sigma/3 gives B=1/10."""
    mean, sd = cr.creator_conditional_moments(1.0, 1.0, 0.0, 1.0)
    assert mean == pytest.approx(0.5) and sd == pytest.approx(np.sqrt(0.5))
    mean, sd = cr.creator_conditional_moments(2.0, 1.0, 1.0, 3.0)
    assert mean == pytest.approx(1.0 + 0.9 * 1.0) and sd == pytest.approx(np.sqrt(0.9))


def test_conditional_moments_match_precision_weighting(rng):
    """The shrinkage form equals the naive precision-weighted conjugate update for random inputs."""
    y, se = rng.normal(size=200), rng.uniform(0.05, 1.0, size=200)
    mu, sigma = rng.normal(size=200), rng.uniform(0.05, 1.0, size=200)
    mean, sd = cr.creator_conditional_moments(y, se, mu, sigma)
    precision = 1 / se**2 + 1 / sigma**2
    np.testing.assert_allclose(mean, (y / se**2 + mu / sigma**2) / precision, rtol=1e-12)
    np.testing.assert_allclose(sd, np.sqrt(1 / precision), rtol=1e-12)


def test_conditional_moments_limits():
    """sigma=0 pools completely (tau = mu, sd 0); a huge sigma returns the data (tau = y, sd = se)."""
    y, se = np.array([0.3, -1.0]), np.array([0.2, 0.5])
    mean, sd = cr.creator_conditional_moments(y, se, 0.7, 0.0)
    np.testing.assert_allclose(mean, 0.7) and np.testing.assert_allclose(sd, 0.0)
    mean, sd = cr.creator_conditional_moments(y, se, 0.7, 1e8)
    np.testing.assert_allclose(mean, y, atol=1e-12)
    np.testing.assert_allclose(sd, se, rtol=1e-12)


def test_conditional_draws_have_the_conditional_moments(rng):
    """With fixed (mu_genre, sigma) draws, the creators' draws have the conjugate mean and sd (4 MC errors)."""
    chains, draws = 4, 5000
    mu_genre = np.broadcast_to([0.2, 0.8], (chains, draws, 2))
    fit = _posterior(mu_genre=(("chain", "draw", "genre"), mu_genre),
                     sigma_creator=(("chain", "draw"), np.full((chains, draws), 0.4)))
    y, se, g = np.array([1.0, -0.5, 0.8]), np.array([0.4, 0.1, 0.8]), np.array([0, 1, 1])
    out = cr.creator_conditional_draws(fit, y, se, g, rng)
    assert out.shape == (chains, draws, 3)
    mean, sd = cr.creator_conditional_moments(y, se, np.array([0.2, 0.8, 0.8]), 0.4)
    flat = out.reshape(-1, 3)
    n = flat.shape[0]
    assert np.all(np.abs(flat.mean(axis=0) - mean) < 4 * sd / np.sqrt(n))
    np.testing.assert_allclose(flat.std(axis=0), sd, rtol=0.03)


def test_add_creator_draws_keeps_attrs_and_labels(rng):
    """The draws are added as theta (chain, draw, creator) labelled by creator_id; posterior attrs survive."""
    df = _frame([0.1, 0.5, 0.9], [0.2, 0.3, 0.4], ["a", "a", "b"])
    fit = _posterior(mu_genre=(("chain", "draw", "genre"), np.zeros((2, 10, 2))),
                     sigma_creator=(("chain", "draw"), np.ones((2, 10))))
    fit["posterior"].attrs["inference_library"] = "nutpie"
    fit = cr.add_creator_draws(fit, df, rng)
    tau = fit["posterior"]["theta"]
    assert tau.dims == ("chain", "draw", "creator")
    assert list(tau["creator"].values) == ["c000", "c001", "c002"]
    assert fit["posterior"].attrs["inference_library"] == "nutpie"
    assert cr.creator_draws(fit).shape == (20, 3)


# --------------------------------------------------------------------------- Bambi workaround


def test_bambi_unit_effects_sum_intercept_and_terms():
    """Each row gets Intercept + (1|genre)[its genre] + (1|creator_id)[its id], in the data's row order."""
    intercept = np.array([[1.0, 2.0]])
    genre = np.array([[[10.0, 20.0], [30.0, 40.0]]])  # levels b, a (not data order)
    creator = np.array([[[100.0, 200.0, 300.0], [400.0, 500.0, 600.0]]])
    fit = _posterior(
        Intercept=(("chain", "draw"), intercept),
        **{"1|genre": (("chain", "draw", "genre__factor_dim"), genre, ["b", "a"]),
           "1|creator_id": (("chain", "draw", "creator_id__factor_dim"), creator, ["x", "y", "z"])},
    )
    data = pd.DataFrame({"genre": ["a", "b", "a"], "creator_id": ["z", "x", "y"]})
    out = cr.bambi_unit_effects(fit, data, ["1|genre", "1|creator_id"])
    expected = np.array([[1 + 20 + 300, 1 + 10 + 100, 1 + 20 + 200],
                         [2 + 40 + 600, 2 + 30 + 400, 2 + 40 + 500]])
    np.testing.assert_allclose(out, expected)


def test_bambi_unit_effects_without_intercept_and_with_interaction():
    """Without an Intercept only the terms add up; (1|a:b) is looked up by the level "<a>:<b>"."""
    fit = _posterior(**{"1|g:c": (("chain", "draw", "g:c__factor_dim"), np.array([[[1.0, 2.0]]]), ["u:1", "v:2"])})
    data = pd.DataFrame({"g": ["v", "u"], "c": [2, 1]})
    np.testing.assert_allclose(cr.bambi_unit_effects(fit, data, ["1|g:c"]), [[2.0, 1.0]])


def test_bambi_unit_effects_unknown_level_or_term_raises():
    """A level or term absent from the posterior is a KeyError naming it."""
    fit = _posterior(**{"1|g": (("chain", "draw", "g__factor_dim"), np.zeros((1, 1, 1)), ["a"])})
    with pytest.raises(KeyError, match="'b'"):
        cr.bambi_unit_effects(fit, pd.DataFrame({"g": ["b"]}), ["1|g"])
    with pytest.raises(KeyError, match="1|h"):
        cr.bambi_unit_effects(fit, pd.DataFrame({"g": ["a"]}), ["1|h"])


@pytest.fixture(scope="module")
def tiny_creators():
    """Three genres of four creators, simulated with known truth."""
    observed, _ = simulate_creators(n_per_genre=4, n_genres=3, seed=11)
    return observed


def test_bambi_unit_effects_match_predict_where_predict_works(tiny_creators):
    """With a sigma intercept (so predict works), the helper equals predict's mu draw for draw."""
    import bambi as bmb

    model = bmb.Model("effect ~ 1 + (1|genre) + (1|creator_id)", tiny_creators)
    fit = model.fit(draws=20, tune=20, chains=2, cores=1, random_seed=3, progressbar=False, quiet=True)
    ours = cr.bambi_unit_effects(fit, tiny_creators, ["1|genre", "1|creator_id"])
    pred = model.predict(fit, kind="response_params", inplace=False)
    mu = pred["posterior"]["mu"]
    expected = np.asarray(mu.stack(sample=("chain", "draw")).transpose("sample", ...))
    np.testing.assert_allclose(ours, expected, rtol=1e-10, atol=1e-12)


def test_predict_with_offset_only_sigma_still_raises(tiny_creators):
    """Bambi 0.21's predict raises TypeError with an offset-only sigma: why the helper exists.

    If this starts failing, Bambi fixed it and the chapter may use predict again.
    """
    import bambi as bmb

    model = bmb.Model(bmb.Formula("effect ~ 1 + (1|genre)", "sigma ~ 0 + offset(np.log(se))"), tiny_creators)
    fit = model.fit(draws=20, tune=20, chains=1, cores=1, random_seed=3, progressbar=False, quiet=True)
    with pytest.raises(TypeError):
        model.predict(fit, kind="response_params", inplace=False)


# --------------------------------------------------------------------------- models


def test_build_model_rejects_unknown_parameterization(tiny_creators):
    """Only the named parameterizations are accepted."""
    with pytest.raises(ValueError, match="parameterization"):
        cr.build_model(tiny_creators, "sideways")


def test_marginal_logp_is_the_closed_form(tiny_creators):
    """The marginal model's log density equals priors + sum log N(y | mu_g, se^2 + sigma^2), by hand."""
    model = cr.build_model(tiny_creators, "marginal")
    point = {"mu_global": 0.3, "sigma_genre_log__": np.log(0.5), "sigma_creator_log__": np.log(0.4),
             "mu_genre": np.array([0.1, 0.6, 0.9])}
    logp = float(model.compile_logp()(point))
    y, se, g, _ = cr.creator_arrays(tiny_creators)
    expected = (
        stats.norm.logpdf(0.3, 0, 1)
        + stats.halfnorm.logpdf(0.5) + np.log(0.5)  # log-Jacobian of the log transform
        + stats.halfnorm.logpdf(0.4) + np.log(0.4)
        + stats.norm.logpdf(point["mu_genre"], 0.3, 0.5).sum()
        + stats.norm.logpdf(y, point["mu_genre"][g], np.sqrt(se**2 + 0.4**2)).sum()
    )
    assert logp == pytest.approx(expected, rel=1e-10)


def test_marginal_noncentered_is_the_marginal_model_with_mu_g_from_z(tiny_creators):
    """The non-centered marginal model's density is the closed form with mu_g = mu + sigma_G z_g and z_g ~ N(0, 1)."""
    model = cr.build_model(tiny_creators, "marginal_noncentered")
    assert {"z_genre"} <= {v.name for v in model.free_RVs} and "mu_genre" in model.named_vars
    z = np.array([0.4, -1.2, 0.7])
    point = {"mu_global": 0.3, "sigma_genre_log__": np.log(0.5), "sigma_creator_log__": np.log(0.4),
             "z_genre": z}
    logp = float(model.compile_logp()(point))
    y, se, g, _ = cr.creator_arrays(tiny_creators)
    mu_genre = 0.3 + 0.5 * z
    expected = (
        stats.norm.logpdf(0.3, 0, 1)
        + stats.halfnorm.logpdf(0.5) + np.log(0.5)
        + stats.halfnorm.logpdf(0.4) + np.log(0.4)
        + stats.norm.logpdf(z).sum()
        + stats.norm.logpdf(y, mu_genre[g], np.sqrt(se**2 + 0.4**2)).sum()
    )
    assert logp == pytest.approx(expected, rel=1e-10)


def test_parameterizations_define_the_same_theta(tiny_creators):
    """Non-centered tau = mu_g + sigma z equals the centered model's tau at matching points."""
    nc = cr.build_model(tiny_creators, "noncentered")
    free = {v.name for v in nc.free_RVs}
    assert {"z_genre", "z_creator"} <= free and "theta" in nc.named_vars
    c = cr.build_model(tiny_creators, "centered")
    assert "theta" in {v.name for v in c.free_RVs}
    cg = cr.build_model(tiny_creators, "centered_genre")
    assert {"mu_genre", "z_creator"} <= {v.name for v in cg.free_RVs}
    tau_graph = nc.replace_rvs_by_values([nc["theta"]])[0]
    fn = nc.compile_fn(tau_graph, inputs=nc.value_vars, on_unused_input="ignore", random_seed=1)
    z_g, z_c = np.array([1.0, -1.0, 0.5]), np.linspace(-1, 1, 12)
    tau = fn({"mu_global": 0.2, "sigma_genre_log__": np.log(0.3), "z_genre": z_g,
              "sigma_creator_log__": np.log(0.4), "z_creator": z_c})
    g = np.asarray(tiny_creators["genre"].cat.codes)
    np.testing.assert_allclose(tau, 0.2 + 0.3 * z_g[g] + 0.4 * z_c)


@pytest.fixture(scope="module")
def compiled():
    """The marginal model compiled once with nutpie, for the simulator's default shape."""
    observed, _ = simulate_creators(seed=1)
    return cr.compile_marginal(observed)


def test_compiled_matches_shape(compiled):
    """A compiled model is re-usable only on data with as many creators and genres."""
    observed, _ = simulate_creators(seed=2)
    assert cr.compiled_matches(compiled, observed)
    assert not cr.compiled_matches(compiled, observed.iloc[:400])
    small, _ = simulate_creators(n_per_genre=125, n_genres=4, seed=2)
    assert not cr.compiled_matches(compiled, small)


def test_sample_compiled_is_named_nutpie(compiled):
    """A direct nutpie fit is tagged and named nutpie, and records its sampling time."""
    observed, _ = simulate_creators(seed=2)
    fit = cr.sample_compiled(compiled, observed, seed=1, chains=2, draws=100, tune=100)
    assert diagnostics.sampler_name(fit) == "nutpie"
    assert fit["posterior"].attrs["sampling_time"] > 0
    del fit["posterior"].attrs["inference_library"]  # as nutpie.sample leaves it
    assert diagnostics.sampler_name(fit) == "nutpie"  # read from sample_stats


def test_recovery_across_seeds(compiled):
    """On 4 simulated data sets: sigma_creator within 0.06 of 0.4, HBM MSE < 0.6 x no pooling, no divergences."""
    study = cr.replication_study(4, seed=101, compiled=compiled, chains=2, draws=500, tune=500)
    hyper = study["hyper"].set_index(["rep", "parameter"])
    for r in range(4):
        assert abs(hyper.loc[(r, "sigma_creator"), "posterior mean"] - 0.4) < 0.06
        assert abs(hyper.loc[(r, "sigma_creator"), "EB estimate"] - 0.4) < 0.06
    overall = study["metrics"][study["metrics"]["bin"] == "all"].pivot(index="rep", columns="method", values="mse")
    assert (overall["Partial pooling"] < 0.6 * overall["No pooling"]).all()
    assert (overall["Empirical Bayes"] < 0.6 * overall["No pooling"]).all()
    assert study["sampler"]["divergences"].sum() == 0
    assert study["sampler"]["max R-hat"].max() < 1.03  # 2 short chains per data set


def test_replication_study_needs_two_reps():
    """A single replication has no Monte Carlo error: refused."""
    with pytest.raises(ValueError, match="at least 2"):
        cr.replication_study(1, seed=1)


# --------------------------------------------------------------------------- evaluation


def test_method_table_and_evaluate_methods_by_hand():
    """Two methods on three creators: MSE, coverage and width computed by hand, overall and by bin."""
    df = _frame([0.0, 1.0, 2.0], [0.1, 0.1, 0.1], ["a", "a", "b"], n=[50, 200, 1000])
    methods = {
        "A": pd.DataFrame({"estimate": [0.0, 1.0, 2.0], "lower": [-1.0, 0.5, 1.9], "upper": [1.0, 1.5, 2.1]}),
        "B": pd.DataFrame({"estimate": [1.0, 1.0, 1.0], "lower": [0.9, 0.9, 0.9], "upper": [1.1, 1.1, 1.1]}),
    }
    table = cr.method_table(methods, df)
    assert list(table["method"].cat.categories) == ["A", "B"] and len(table) == 6
    truth = pd.Series([0.5, 1.0, 3.0])
    res = cr.evaluate_methods(table, truth).set_index(["method", "bin"])
    assert res.loc[("A", "all"), "mse"] == pytest.approx((0.25 + 0 + 1) / 3)
    assert res.loc[("A", "all"), "coverage"] == pytest.approx(2 / 3)
    assert res.loc[("A", "all"), "mean_width"] == pytest.approx((2 + 1 + 0.2) / 3)
    assert res.loc[("B", "all"), "mse"] == pytest.approx((0.25 + 0 + 4) / 3)
    assert res.loc[("B", "all"), "coverage"] == pytest.approx(1 / 3)
    assert res.loc[("B", "n < 100"), "mse"] == pytest.approx(0.25)
    assert res.loc[("B", "> 500"), "n_units"] == 1


def test_evaluate_methods_rejects_misaligned_truth():
    """A truth of the wrong length is an error, not a silent misalignment."""
    df = _frame([0.0, 1.0], [0.1, 0.1], ["a", "a"])
    table = cr.method_table({"A": pd.DataFrame({"estimate": [0, 1], "lower": [0, 1], "upper": [0, 1]})}, df)
    with pytest.raises(ValueError, match="truth"):
        cr.evaluate_methods(table, pd.Series([0.0, 1.0, 2.0]))


def test_summarise_units_matches_numpy(rng):
    """Estimate, sd and the 95% equal-tailed interval are numpy's mean, sd and quantiles."""
    draws = rng.normal(size=(4000, 3))
    out = cr.summarise_units(draws)
    np.testing.assert_allclose(out["estimate"], draws.mean(axis=0))
    np.testing.assert_allclose(out["sd"], draws.std(axis=0, ddof=1))
    np.testing.assert_allclose(out["lower"], np.quantile(draws, 0.025, axis=0))
    np.testing.assert_allclose(out["upper"], np.quantile(draws, 0.975, axis=0))


def test_truth_frame_aligns_by_creator_id():
    """True effects are looked up by creator_id and follow the frame's rows; no truth gives None."""
    df = _frame([0.0, 1.0], [0.1, 0.1], ["a", "a"]).iloc[::-1]
    truth = {"creators": [{"creator_id": "c000", "true_effect": 5.0}, {"creator_id": "c001", "true_effect": 7.0}]}
    out = cr.truth_frame(truth, df)
    assert list(out) == [7.0, 5.0] and list(out.index) == list(df.index)
    assert cr.truth_frame(None, df) is None


def test_summarise_replications_mean_and_mc_error():
    """Each metric's mean over replications and its sd / sqrt(R), per method."""
    metrics_ = pd.DataFrame({
        "method": ["A"] * 4, "bin": ["all"] * 4, "rep": range(4),
        "mse": [1.0, 2.0, 3.0, 4.0], "coverage": [0.9, 0.95, 1.0, 0.95], "mean_width": [1.0] * 4,
    })
    out = cr.summarise_replications(metrics_)
    assert out.loc["A", "mse"] == pytest.approx(2.5)
    assert out.loc["A", "mse_mc"] == pytest.approx(np.std([1, 2, 3, 4], ddof=1) / 2)
    assert out.loc["A", "mean_width_mc"] == 0 and out.loc["A", "reps"] == 4


def test_sampler_row_from_diagnostics(rng):
    """ESS per second is the minimum bulk ESS over the sampling time; the rest is copied."""
    fit = _posterior(a=(("chain", "draw"), rng.normal(size=(4, 500))))
    checks = diagnostics.check(fit)
    row = cr.sampler_row(checks, 2.0)
    assert row["ESS per second"] == pytest.approx(checks.min_ess_bulk / 2.0)
    assert row["divergences"] == 0 and row["max R-hat"] == checks.max_rhat


# --------------------------------------------------------------------------- one implementation (#15)


def _chapter_marginal_model(creators):
    """The marginal model as chapters/creators.qmd wrote it before #15 (its model cell, verbatim)."""
    import pymc as pm

    genre = creators["genre"].cat
    coords = {"genre": list(genre.categories), "creator": list(creators["creator_id"])}
    with pm.Model(coords=coords) as creator_model:
        effect = pm.Data("effect", creators["effect"].to_numpy(), dims="creator")
        se = pm.Data("se", creators["se"].to_numpy(), dims="creator")
        genre_idx = pm.Data("genre_idx", genre.codes.to_numpy(), dims="creator")
        mu_global = pm.Normal("mu_global", 0, 1)
        sigma_genre = pm.HalfNormal("sigma_genre", 1)
        sigma_creator = pm.HalfNormal("sigma_creator", 1)
        mu_genre = pm.Normal("mu_genre", mu_global, sigma_genre, dims="genre")
        pm.Normal("y", mu_genre[genre_idx], pm.math.sqrt(se**2 + sigma_creator**2),
                  observed=effect, dims="creator")
    return creator_model


def test_build_model_marginal_is_the_chapters_model(tiny_creators, rng):
    """build_model(df, "marginal") has the chapter's variables, coordinates, data and log density (rel 1e-12)."""
    ours, chapter = cr.build_model(tiny_creators, "marginal"), _chapter_marginal_model(tiny_creators)
    assert [v.name for v in ours.free_RVs] == [v.name for v in chapter.free_RVs]
    assert [v.name for v in ours.observed_RVs] == [v.name for v in chapter.observed_RVs]
    assert {k: list(v) for k, v in ours.coords.items()} == {k: list(v) for k, v in chapter.coords.items()}
    for name in ("effect", "se", "genre_idx"):
        np.testing.assert_array_equal(ours[name].get_value(), chapter[name].get_value())
    logp_ours, logp_chapter = ours.compile_logp(), chapter.compile_logp()
    for _ in range(5):
        point = {"mu_global": rng.normal(), "sigma_genre_log__": rng.normal(), "sigma_creator_log__": rng.normal(),
                 "mu_genre": rng.normal(size=3)}
        assert logp_ours(point) == pytest.approx(logp_chapter(point), rel=1e-12)


def test_summarise_units_equals_the_replaced_numpy_code(rng):
    """summarise_units (now hbm.posterior.summarise_draws) equals the old mean/sd/quantile frame to 1e-14."""
    draws = rng.normal(size=(1000, 4)) * [1, 2, 3, 4]
    old = pd.DataFrame({"estimate": draws.mean(axis=0), "sd": draws.std(axis=0, ddof=1),
                        "lower": np.quantile(draws, 0.05, axis=0), "upper": np.quantile(draws, 0.95, axis=0)})
    pd.testing.assert_frame_equal(cr.summarise_units(draws, prob=0.9), old, check_exact=False, rtol=0, atol=1e-14)


def test_analyse_dataset_hyper_table_equals_the_replaced_code(rng):
    """The hyperparameter rows (posterior mean, covered by the central interval) equal the old ravel/quantile code."""
    df = _frame([0.1, 0.5, -0.2, 0.3], [0.2, 0.3, 0.2, 0.1], ["a", "a", "b", "b"], n=[50, 200, 600, 80])
    post = {name: (("chain", "draw"), rng.gamma(4.0, 0.1, size=(2, 200))) for name in HYPER_SCALARS}
    post["mu_genre"] = (("chain", "draw", "genre"), rng.normal(size=(2, 200, 2)), ["a", "b"])
    fit = _posterior(**post)
    truth = {"sigma_genre": 0.3, "sigma_creator": 10.0,
             "creators": [{"creator_id": c, "true_effect": 0.0} for c in df["creator_id"]]}
    hyper = cr.analyse_dataset(df, truth, fit, np.random.default_rng(1), prob=0.9)["hyper"]
    for name, row in hyper.set_index("parameter").iterrows():
        d = np.asarray(fit["posterior"][name]).ravel()
        lo, hi = np.quantile(d, [0.05, 0.95])
        assert row["posterior mean"] == pytest.approx(d.mean(), rel=1e-14)
        assert row["covered"] == bool(lo <= truth[name] <= hi) and row["truth"] == truth[name]
    assert list(hyper["parameter"]) == ["sigma_genre", "sigma_creator"] and list(hyper["covered"]) == [True, False]
    assert hyper["covered"].dtype == bool


HYPER_SCALARS = ("mu_global", "sigma_genre", "sigma_creator")
