"""Contracts of hbm.book.simulate: determinism, schemas, recovery of the truth, reproducible files."""

import json
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from hbm.book import data, simulate

SEEDS = range(10)
LOADERS = {
    "schools.csv": data.load_schools,
    "eight_schools.csv": data.load_eight_schools,
    "music_plays.csv": data.load_music,
    "creator_experiments.csv": data.load_creators,
}
FILES = [
    "schools.csv",
    "schools.truth.json",
    "eight_schools.csv",
    "music_plays.csv",
    "music_plays.truth.json",
    "creator_experiments.csv",
    "creator_experiments.truth.json",
]


def _theta(truth):
    return np.array([[u["theta"][g] for g in data.GENRES] for u in truth["users"]])


# --- determinism and shape --------------------------------------------------------


@pytest.mark.parametrize("sim", [simulate.schools, simulate.music, simulate.creators])
def test_same_seed_same_draw(sim):
    """A seed fixes the draw; another seed changes it."""
    a, ta = sim(seed=7)
    b, tb = sim(seed=7)
    c, _ = sim(seed=8)
    pd.testing.assert_frame_equal(a, b)
    assert ta == tb and ta["seed"] == 7
    assert not a.equals(c)


@pytest.mark.parametrize("sim", [simulate.schools, simulate.music, simulate.creators])
def test_rng_equals_seed(sim):
    """Passing rng=default_rng(s) gives the seed-s draw, recorded with seed None."""
    a, ta = sim(seed=3)
    b, tb = sim(rng=np.random.default_rng(3))
    pd.testing.assert_frame_equal(a, b)
    assert tb["seed"] is None and {**tb, "seed": 3} == ta


def test_seed_or_rng_required():
    """A simulator with neither seed nor rng refuses to guess."""
    with pytest.raises(ValueError, match="seed"):
        simulate.schools(seed=None)


@pytest.mark.parametrize(
    "sim, loader, formats",
    [
        (simulate.schools, data.load_schools, {"score": "{:.1f}"}),
        (simulate.eight_schools, data.load_eight_schools, {"y": "{:g}", "se": "{:g}"}),
        (simulate.music, data.load_music, {}),
        (simulate.creators, data.load_creators, {"effect": "{:.6f}", "se": "{:.6f}"}),
    ],
)
def test_observed_round_trips_through_loader(sim, loader, formats, tmp_path):
    """Each simulated frame has its loader's schema: written and loaded back, it is unchanged."""
    observed, truth = sim()
    path = tmp_path / "x.csv"
    path.write_bytes(simulate.to_csv_bytes(observed, formats))
    pd.testing.assert_frame_equal(loader(path), observed)
    json.dumps(truth, allow_nan=False)  # truth is JSON-serializable


def test_eight_schools_exact():
    """eight_schools returns Rubin's (1981) values and no truth."""
    df, truth = simulate.eight_schools()
    assert truth is None
    assert df["school"].tolist() == list("ABCDEFGH")
    assert df["y"].tolist() == [28, 8, -3, 7, -1, 1, 18, 12]
    assert df["se"].tolist() == [15, 10, 16, 11, 9, 11, 10, 18]


# --- schools ----------------------------------------------------------------------


def test_schools_defaults():
    """Default: 8 schools 'School A'..'H' of varying sizes 5..60, truth per school."""
    df, truth = simulate.schools()
    sizes = df.groupby("school", observed=True).size()
    assert list(sizes.index) == [f"School {c}" for c in "ABCDEFGH"]
    assert sorted(sizes) == [5, 7, 10, 15, 21, 29, 42, 60]
    assert [s["n"] for s in truth["schools"]] == sizes.tolist()
    assert {k: truth[k] for k in ("mu_overall", "tau", "alpha", "beta")} == {
        "mu_overall": 70.0, "tau": 6.0, "alpha": 6.0, "beta": 500.0
    }
    assert df["student_id"].is_unique and (df["score"] == df["score"].round(1)).all()


def test_schools_sizes_validated():
    """Explicit sizes must give one integer >= 2 per school."""
    with pytest.raises(ValueError, match="sizes"):
        simulate.schools(n_schools=3, sizes=[5, 1, 5])


def test_schools_hyperparameters_recovered():
    """Over 400 schools, the school means and variances match their priors (4-SE tolerances)."""
    _, t = simulate.schools(n_schools=400, seed=11, sizes=[2] * 400)
    mu = np.array([s["mu"] for s in t["schools"]])
    var = np.array([s["sigma"] for s in t["schools"]]) ** 2
    assert abs(mu.mean() - 70) < 4 * 6 / 20  # SE of the mean = tau / sqrt(400)
    assert abs(mu.std() - 6) < 1.0
    assert abs(var.mean() - 100) < 4 * 50 / 20  # E = beta/(alpha-1), SD = E/sqrt(alpha-2)


@pytest.mark.parametrize("seed", SEEDS)
def test_schools_sample_moments_near_truth(seed):
    """With 200 students per school, sample means and SDs sit near each school's mu and sigma."""
    df, t = simulate.schools(n_schools=5, seed=seed, sizes=[200] * 5)
    g = df.groupby("school", observed=True)["score"]
    mu = np.array([s["mu"] for s in t["schools"]])
    sigma = np.array([s["sigma"] for s in t["schools"]])
    assert np.all(np.abs(g.mean().to_numpy() - mu) < 4.5 * sigma / np.sqrt(200))
    assert np.all(np.abs(g.std().to_numpy() / sigma - 1) < 0.25)


# --- music ------------------------------------------------------------------------


def test_music_default_profiles():
    """Default regional profiles are the documented constants and p_global is their mean."""
    _, t = simulate.music()
    p = {r["region"]: r["p"] for r in t["regions"]}
    assert list(p) == ["North America", "Europe", "Asia", "Latin America"]
    assert (p["North America"]["pop"], p["North America"]["rock"]) == (0.32, 0.26)
    europe = p["Europe"]
    assert (europe["rock"], europe["pop"], europe["classical"]) == (0.37, 0.21, 0.18)
    assert p["Asia"]["pop"] == 0.42
    assert (p["Latin America"]["hiphop"], p["Latin America"]["rock"]) == (0.37, 0.26)
    mat = np.array([[p[r][g] for g in data.GENRES] for r in p])
    np.testing.assert_allclose(mat.sum(axis=1), 1.0)
    np.testing.assert_allclose(mat.mean(axis=0), [t["p_global"][g] for g in data.GENRES])
    assert t["profiles_drawn"] is False


@pytest.mark.parametrize("seed", SEEDS)
def test_music_structure_and_totals(seed):
    """120 users, 30 per region; totals in [3, 1000]; >= 3 with <= 10 plays and >= 3 with >= 500."""
    df, t = simulate.music(seed=seed)
    x = data.counts_matrix(df)
    n = x.sum(axis=1)
    assert df["user_id"].tolist()[:2] == ["u001", "u002"] and len(df) == 120
    assert df["region"].value_counts().tolist() == [30] * 4
    assert n.tolist() == [u["n"] for u in t["users"]]
    assert n.min() >= 3 and n.max() <= 1000
    assert (n <= 10).sum() >= 3 and (n >= 500).sum() >= 3
    np.testing.assert_allclose(_theta(t).sum(axis=1), 1.0, atol=1e-6)


def test_music_regional_profiles_and_kappa_recovered():
    """Over 1000 users per region, mean theta is near p_r (0.02) and kappa_r within 20%."""
    df, t = simulate.music(n_users=4000, seed=5)
    theta = _theta(t)
    for r in t["regions"]:
        th = theta[(df["region"] == r["region"]).to_numpy()]
        p = np.array([r["p"][g] for g in data.GENRES])
        assert np.abs(th.mean(axis=0) - p).max() < 0.02
        # sum_k Var(theta_k) = (1 - sum_k p_k^2) / (kappa + 1)
        kappa_hat = (1 - (p**2).sum()) / th.var(axis=0).sum() - 1
        assert abs(kappa_hat / r["kappa"] - 1) < 0.2


def test_music_counts_follow_theta():
    """Pooled counts per region match the users' mean theta weighted by totals (within 0.02)."""
    df, t = simulate.music(n_users=2000, seed=9)
    x, theta = data.counts_matrix(df), _theta(t)
    n = x.sum(axis=1)
    for r in t["regions"]:
        m = (df["region"] == r["region"]).to_numpy()
        expected = (n[m, None] * theta[m]).sum(axis=0) / n[m].sum()
        assert np.abs(x[m].sum(axis=0) / n[m].sum() - expected).max() < 0.02


def test_music_drawn_profiles_center_on_global():
    """With draw_profiles, 400 drawn profiles average to p_global; their spread gives c (20%)."""
    regions = [f"R{i}" for i in range(400)]
    _, t = simulate.music(n_users=400, seed=2, regions=regions, kappa=20.0, draw_profiles=True)
    p = np.array([[r["p"][g] for g in data.GENRES] for r in t["regions"]])
    pg = np.array(simulate.P_GLOBAL)
    assert np.abs(p.mean(axis=0) - pg).max() < 0.02
    c_hat = (1 - (pg**2).sum()) / p.var(axis=0).sum() - 1
    assert abs(c_hat / t["c"] - 1) < 0.2 and t["profiles_drawn"] is True


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"regions": ["Mars"]}, "no profile"),
        ({"regions": ["Mars"], "profiles": {"Mars": [0.2] * 5}}, "no kappa"),
        ({"p_global": [0.5, 0.5, 0.5, 0.0, 0.0]}, "p_global"),
    ],
)
def test_music_rejects_incomplete_parameters(kwargs, match):
    """Regions without a profile or kappa, or a p_global not summing to 1, are refused."""
    with pytest.raises(ValueError, match=match):
        simulate.music(**kwargs)


# --- creators ---------------------------------------------------------------------


def test_creators_structure():
    """500 creators c0001..c0500, 100 in each of five genres, se = s/sqrt(n) to 6 decimals."""
    df, t = simulate.creators()
    assert len(df) == 500 and df["creator_id"].iloc[[0, -1]].tolist() == ["c0001", "c0500"]
    assert list(df["genre"].cat.categories) == ["Music", "Gaming", "Comedy", "Education", "Beauty"]
    assert df["genre"].value_counts().tolist() == [100] * 5
    assert df["n"].between(30, 5000).all() and df["n"].dtype == np.int64
    np.testing.assert_array_equal(df["se"], np.round(4.65 / np.sqrt(df["n"]), 6))
    assert [c["creator_id"] for c in t["creators"]] == df["creator_id"].tolist()


def test_creators_no_pooling_mse_near_target():
    """Over ten seeds: mean(1/n) ~ 0.00648, no-pooling MSE ~ 0.140, genre-mean pooling ~ 0.16."""
    inv_n, nopool, genre_pool = [], [], []
    for seed in SEEDS:
        df, t = simulate.creators(seed=seed)
        true = np.array([c["true_effect"] for c in t["creators"]])
        gmean = df.groupby("genre", observed=True)["effect"].transform("mean").to_numpy()
        inv_n.append(np.mean(1 / df["n"]))
        nopool.append(np.mean((df["effect"] - true) ** 2))
        genre_pool.append(np.mean((gmean - true) ** 2))
    # Per-seed SDs are about 0.0004, 0.02 and 0.01: the means of ten have a quarter of that.
    assert abs(np.mean(inv_n) - 0.00648) < 0.0006
    assert abs(np.mean(nopool) - 0.140) < 0.02
    assert abs(np.mean(genre_pool) - 0.160) < 0.02


@pytest.mark.parametrize("seed", SEEDS)
def test_creators_errors_standard_normal(seed):
    """Standardized errors (effect - true)/se have mean near 0 and SD near 1 (500 per seed)."""
    df, t = simulate.creators(seed=seed)
    true = np.array([c["true_effect"] for c in t["creators"]])
    z = (df["effect"] - true) / df["se"]
    assert abs(z.mean()) < 4 / np.sqrt(500) and abs(z.std() - 1) < 0.15


def test_creators_hierarchy_recovered():
    """Over 400 genres, genre means spread by sigma_genre, creators by sigma_creator (15%)."""
    _, t = simulate.creators(n_per_genre=50, n_genres=400, seed=4)
    mu = np.array([g["mu_genre"] for g in t["genres"]])
    true = np.array([c["true_effect"] for c in t["creators"]]).reshape(400, 50)
    assert t["genres"][5]["genre"] == "Genre 6"
    assert abs(mu.mean() - 0.5) < 4 * 0.3 / 20 and abs(mu.std() / 0.3 - 1) < 0.15
    assert abs((true - mu[:, None]).std() / 0.4 - 1) < 0.15


@pytest.mark.parametrize(
    "kwargs", [{"n_min": 1}, {"n_min": 50, "n_max": 40}, {"genres": ["A", "B"]}]
)
def test_creators_rejects_bad_parameters(kwargs):
    """Sample sizes below 2, an empty size range or a wrong number of genre names are refused."""
    with pytest.raises(ValueError):
        simulate.creators(**kwargs)


# --- files --------------------------------------------------------------------------


def test_write_all_reproduces_committed_files(tmp_path, root):
    """write_all twice writes the committed data/ files byte for byte; the 2nd run is a no-op."""
    first = simulate.write_all(tmp_path)
    assert [(p.name, s) for p, s in first] == [(f, "written") for f in FILES]
    second = simulate.write_all(tmp_path)
    assert [s for _, s in second] == ["unchanged"] * len(FILES)
    for name in FILES:
        assert (tmp_path / name).read_bytes() == (root / "data" / name).read_bytes(), name


def test_written_files_match_simulators(tmp_path):
    """Written CSVs load to the simulators' frames; truth files add data_file and data_sha256."""
    simulate.write_all(tmp_path)
    sims = {
        "schools.csv": simulate.schools(),
        "eight_schools.csv": simulate.eight_schools(),
        "music_plays.csv": simulate.music(),
        "creator_experiments.csv": simulate.creators(),
    }
    for name, (observed, truth) in sims.items():
        path = tmp_path / name
        pd.testing.assert_frame_equal(LOADERS[name](path), observed)
        loaded = data.load_truth(path)
        if truth is None:
            assert loaded is None
        else:
            assert loaded.pop("data_sha256") == data.sha256_bytes(path.read_bytes())
            assert loaded.pop("data_file") == name and loaded == truth


def test_write_all_refuses_to_overwrite(tmp_path):
    """A differing file is named and nothing is written unless overwrite=True."""
    simulate.write_all(tmp_path)
    (tmp_path / "music_plays.csv").write_text("mine\n")
    (tmp_path / "schools.csv").unlink()
    with pytest.raises(FileExistsError, match="music_plays.csv"):
        simulate.write_all(tmp_path)
    assert not (tmp_path / "schools.csv").exists()
    status = dict((p.name, s) for p, s in simulate.write_all(tmp_path, overwrite=True))
    assert status["music_plays.csv"] == "overwritten" and status["schools.csv"] == "written"
    assert data.load_truth(tmp_path / "music_plays.csv") is not None


def test_cli_main(tmp_path, capsys):
    """main() writes and reports files; a clash exits 1 naming the file; --force resolves it."""
    assert simulate.main(["--out", str(tmp_path)]) == 0
    assert "written" in capsys.readouterr().out
    (tmp_path / "creator_experiments.truth.json").write_text("{}\n")
    assert simulate.main(["--out", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "creator_experiments.truth.json" in err and "--force" in err
    assert simulate.main(["--out", str(tmp_path), "--force"]) == 0
    assert "overwritten" in capsys.readouterr().out


def test_python_dash_m_entry_point(tmp_path, root):
    """`python -m hbm.book.simulate --out DIR` runs and writes all files."""
    env = {**os.environ, "PYTHONPATH": str(root)}
    res = subprocess.run(
        [sys.executable, "-m", "hbm.book.simulate", "--out", str(tmp_path)],
        capture_output=True, text=True, env=env, cwd=tmp_path, check=False,
    )
    assert res.returncode == 0, res.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(FILES)
