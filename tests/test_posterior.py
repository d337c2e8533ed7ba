"""hbm.posterior: group means rebuilt from a Bambi fit's draws, and draw summaries."""

import arviz as az
import numpy as np
import pytest
import xarray as xr

import pandas as pd

from hbm import posterior
from hbm.posterior import group_intercepts, group_levels, summarise_draws


def _bambi_like(rng):
    """A posterior shaped like Bambi's for `y ~ 1 + (1|school)`, three schools."""
    intercept = rng.normal(10, 1, size=(2, 100))
    offsets = rng.normal(0, 1, size=(2, 100, 3))
    post = xr.Dataset(
        {
            "Intercept": (("chain", "draw"), intercept),
            "1|school": (("chain", "draw", "school__factor_dim"), offsets),
        },
        coords={"school__factor_dim": ["A", "B", "C"]},
    )
    return xr.DataTree.from_dict({"posterior": post}), intercept, offsets


def test_group_intercepts_add_offsets_to_intercept(rng):
    """Each group's draws are Intercept + its offset, flattened over chains and draws."""
    tree, intercept, offsets = _bambi_like(rng)
    draws = group_intercepts(tree, "school")
    assert draws.shape == (200, 3)
    expected = (intercept[..., None] + offsets).reshape(200, 3)
    np.testing.assert_allclose(draws, expected)
    assert group_levels(tree, "school") == ["A", "B", "C"]


def test_summarise_draws_matches_numpy(rng):
    """Mean, sd and the equal-tailed interval are numpy's mean, sd(ddof=1) and quantiles."""
    draws = rng.normal(size=(4000, 2))
    table = summarise_draws(draws, ["a", "b"], prob=0.9)
    np.testing.assert_allclose(table["mean"], draws.mean(axis=0))
    np.testing.assert_allclose(table["sd"], draws.std(axis=0, ddof=1))
    np.testing.assert_allclose(table["lower"], np.quantile(draws, 0.05, axis=0))
    np.testing.assert_allclose(table["upper"], np.quantile(draws, 0.95, axis=0))
    assert list(table.index) == ["a", "b"]


def test_summarise_constant_draws_is_degenerate():
    """Constant draws give that constant as mean and both interval ends, sd zero."""
    table = summarise_draws(np.full((10, 1), 2.5), ["x"])
    assert table.loc["x"].tolist() == [2.5, 0.0, 2.5, 2.5]


def test_group_intercepts_rejects_non_group_term(rng):
    """A term without exactly one group dimension is refused with a clear message."""
    tree, _, _ = _bambi_like(rng)
    tree["posterior"]["1|bad"] = tree["posterior"]["Intercept"]
    with pytest.raises(ValueError, match="one group dimension"):
        group_intercepts(tree, "bad")


def test_by_label_matches_by_name_not_position():
    """Values in another order come back in the labels' order; missing or extra labels raise, naming them."""
    values = pd.Series([3.0, 1.0, 2.0], index=["School 10", "School 1", "School 9"])
    out = posterior.by_label(values, ["School 1", "School 9", "School 10"])
    assert list(out.index) == ["School 1", "School 9", "School 10"]
    assert list(out) == [1.0, 2.0, 3.0]
    with pytest.raises(KeyError, match="missing \\['School 2'\\]"):
        posterior.by_label(values, ["School 1", "School 2", "School 10"])
    with pytest.raises(KeyError, match="duplicated"):
        posterior.by_label(pd.Series([1.0, 2.0], index=["a", "a"]), ["a"])


def _fit_of(**variables):
    """A DataTree whose posterior holds the given (name -> (dims, values)) variables."""
    coords = {}
    for dims, values in variables.values():
        for d, size in zip(dims, np.shape(values)):
            if d not in ("chain", "draw"):
                coords.setdefault(d, [f"{d[:1]}{i}" for i in range(size)])
    return xr.DataTree.from_dict({"posterior": xr.Dataset(variables, coords=coords)})


def test_draws_stack_chain_major_like_reshape(rng):
    """draws() equals numpy's reshape of (chain, draw, ...) to (chain * draw, ...), for a fit and a DataArray."""
    values = rng.normal(size=(3, 50, 4, 2))
    fit = _fit_of(v=(("chain", "draw", "a", "b"), values))
    np.testing.assert_array_equal(posterior.draws(fit, "v"), values.reshape(150, 4, 2))
    np.testing.assert_array_equal(posterior.draws(fit, "v", dims=("b", "a")),
                                  values.reshape(150, 4, 2).transpose(0, 2, 1))
    np.testing.assert_array_equal(posterior.draws(fit["posterior"]["v"]), values.reshape(150, 4, 2))
    # the stacking it replaces: xarray's stack over (chain, draw)
    old = np.asarray(fit["posterior"]["v"].stack(sample=("chain", "draw")).transpose("sample", "a", "b"))
    np.testing.assert_array_equal(posterior.draws(fit, "v"), old)


def test_eti_equals_numpy_quantiles(rng):
    """eti() is the (1 -/+ prob)/2 quantiles along the axis (numpy's linear rule), to 1e-14."""
    values = rng.gamma(2.0, size=(999, 3, 2))
    lower, upper = posterior.eti(values, 0.9)
    ref_lo, ref_hi = np.quantile(values, [0.05, 0.95], axis=0)
    np.testing.assert_allclose(lower, ref_lo, rtol=0, atol=1e-14)
    np.testing.assert_allclose(upper, ref_hi, rtol=0, atol=1e-14)
    lo1, hi1 = posterior.eti(values[:, 0, 0], 0.5)
    assert lo1 == pytest.approx(np.quantile(values[:, 0, 0], 0.25), abs=1e-14)
    assert hi1 == pytest.approx(np.quantile(values[:, 0, 0], 0.75), abs=1e-14)


def test_summarise_draws_equals_arviz_summary_eti(rng):
    """summarise_draws of draws() gives az.summary's mean, sd and 95% eti bounds (to 1e-12)."""
    values = rng.normal(size=(4, 500, 3)) * [1.0, 2.0, 0.5]
    fit = _fit_of(theta=(("chain", "draw", "school"), values))
    ours = summarise_draws(posterior.draws(fit, "theta"), ["s0", "s1", "s2"], prob=0.95)
    ref = az.summary(fit, kind="stats", ci_prob=0.95, ci_kind="eti", round_to="none")
    np.testing.assert_allclose(ours["mean"], ref["mean"].astype(float), rtol=1e-12)
    np.testing.assert_allclose(ours["sd"], ref["sd"].astype(float), rtol=1e-12)
    np.testing.assert_allclose(ours["lower"], ref["eti95_lb"].astype(float), rtol=1e-12)
    np.testing.assert_allclose(ours["upper"], ref["eti95_ub"].astype(float), rtol=1e-12)


def test_summarise_draws_default_index_and_mean_column(rng):
    """Without labels the index is 0..n-1; mean_column renames the mean (as creators' 'estimate')."""
    table = summarise_draws(rng.normal(size=(100, 3)), mean_column="estimate")
    assert list(table.columns) == ["estimate", "sd", "lower", "upper"]
    assert isinstance(table.index, pd.RangeIndex) and list(table.index) == [0, 1, 2]


def _old_unit_effects(fit, data, terms, intercept="Intercept"):
    """The implementation linear_predictor replaced (hbm.book.creators.bambi_unit_effects before #15)."""
    post = fit["posterior"]
    total = None
    if intercept in post:
        total = np.asarray(post[intercept].stack(sample=("chain", "draw")))[:, None]
    for term in terms:
        da = post[term]
        (dim,) = [d for d in da.dims if d not in ("chain", "draw")]
        levels = pd.Index([str(v) for v in da[dim].values])
        columns = term.split("|", 1)[1].split(":")
        keys = data[columns[0]].astype(str)
        for col in columns[1:]:
            keys = keys + ":" + data[col].astype(str)
        draws = np.asarray(da.stack(sample=("chain", "draw")).transpose("sample", dim))[:, levels.get_indexer(keys)]
        total = draws if total is None else total + draws
    return total


def test_linear_predictor_equals_the_old_row_sums(rng):
    """Intercept + (1|g) + (1|g:c) per row, exactly as the replaced implementation added them."""
    fit = _fit_of(
        Intercept=(("chain", "draw"), rng.normal(size=(2, 30))),
        **{"1|g": (("chain", "draw", "g__factor_dim"), rng.normal(size=(2, 30, 2))),
           "1|g:c": (("chain", "draw", "g:c__factor_dim"), rng.normal(size=(2, 30, 2)))},
    )
    fit["posterior"] = fit["posterior"].to_dataset().assign_coords(
        {"g__factor_dim": ["a", "b"], "g:c__factor_dim": ["a:x", "b:y"]})
    data = pd.DataFrame({"g": ["b", "a", "b"], "c": ["y", "x", "y"]})
    ours = posterior.linear_predictor(fit, data, ["1|g", "1|g:c"])
    np.testing.assert_array_equal(ours, _old_unit_effects(fit, data, ["1|g", "1|g:c"]))
    assert ours.shape == (60, 3)


def test_linear_predictor_keeps_a_response_dimension(rng):
    """A multivariate term (level x response) gives (sample, row, response): Intercept[k] + u[level, k]."""
    intercept = rng.normal(size=(2, 10, 3))
    offsets = rng.normal(size=(2, 10, 2, 3))
    fit = _fit_of(Intercept=(("chain", "draw", "resp_dim"), intercept),
                  **{"1|region": (("chain", "draw", "region__factor_dim", "resp_dim"), offsets)})
    fit["posterior"] = fit["posterior"].to_dataset().assign_coords({"region__factor_dim": ["N", "S"]})
    out = posterior.linear_predictor(fit, pd.DataFrame({"region": ["S", "N"]}), ["1|region"])
    expected = (intercept[:, :, None, :] + offsets[:, :, [1, 0], :]).reshape(20, 2, 3)
    np.testing.assert_allclose(out, expected, rtol=0, atol=1e-15)


def test_predictive_check_by_hand():
    """predictive_check: the interval is the replicated values' 2.5%/97.5% quantiles, p the share below the observed value."""
    rep = np.arange(1.0, 101.0)
    out = posterior.predictive_check({"T": 50.5, "U": 200.0}, {"T": rep, "U": rep})
    assert out.loc["T", "lower"] == pytest.approx(np.quantile(rep, 0.025))
    assert out.loc["T", "upper"] == pytest.approx(np.quantile(rep, 0.975))
    assert out.loc["T", "p"] == 0.5 and out.loc["U", "p"] == 1.0
    assert bool(out.loc["T", "inside"]) and not bool(out.loc["U", "inside"])


def test_predictive_check_ignores_undefined_replications_and_keeps_tuple_names():
    """NaN replications are left out of the interval; tuple names give a MultiIndex; names must match."""
    out = posterior.predictive_check({("A", "SD"): 1.0}, {("A", "SD"): [np.nan, 0.0, 2.0]}, prob=0.5)
    assert list(out.index) == [("A", "SD")] and isinstance(out.index, pd.MultiIndex)
    assert out["lower"].iloc[0] == pytest.approx(0.5) and out["upper"].iloc[0] == pytest.approx(1.5)
    with pytest.raises(ValueError, match="different statistics"):
        posterior.predictive_check({"a": 1.0}, {"b": [1.0]})


def test_predictive_check_leaves_out_statistics_undefined_on_the_data():
    """An observed NaN (the SD of a one-row group) is left out, silently; all-NaN replications give NaN bounds."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no All-NaN RuntimeWarning
        out = posterior.predictive_check(
            {("A", "SD"): 1.0, ("B", "SD"): np.nan, ("C", "SD"): 2.0},
            {("A", "SD"): [np.nan, 0.0, 2.0, 4.0], ("B", "SD"): [np.nan] * 4, ("C", "SD"): [np.nan] * 4})
    assert list(out.index) == [("A", "SD"), ("C", "SD")]
    assert out.loc[("A", "SD"), "p"] == pytest.approx(1 / 3)  # one of the three defined replications is below
    assert np.isnan(out.loc[("C", "SD"), ["lower", "upper", "p"]].to_numpy(float)).all()
    assert out["inside"].tolist() == [True, False]


def test_outer_tail_chance_by_hand():
    """Two of four p-values in the outer 5% (a NaN left out): chance 1 - 0.95^4 - 4(0.05)(0.95^3); none gives 1."""
    from hbm.posterior import outer_tail_chance

    k, chance = outer_tail_chance([0.01, 0.5, np.nan, 0.99, 0.5])
    assert k == 2
    assert chance == pytest.approx(1 - 0.95**4 - 4 * 0.05 * 0.95**3, rel=1e-12)
    assert outer_tail_chance([0.3, 0.7]) == (0, 1.0)
