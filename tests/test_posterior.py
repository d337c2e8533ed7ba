"""hbm.posterior: group means rebuilt from a Bambi fit's draws, and draw summaries."""

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
