"""Data with known truth for the book, deterministic given a seed.

Each simulator returns ``(observed, truth)``: ``observed`` has exactly the
schema of the matching loader in :mod:`hbm.book.data` (so ``load_*`` of the written
CSV gives back an equal frame), and ``truth`` is a JSON-serializable dict of
hyperparameters and per-unit true values, with floats rounded to 8
significant digits. Every truth dict also holds ``generator`` (the function's
dotted name) and ``seed`` (``None`` when a caller passed ``rng`` instead).

:func:`write_all` writes the book's ``data/`` directory byte for byte
reproducibly; ``python -m hbm.book.simulate [--out data] [--force]`` runs it.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from hbm.book.data import GENRES, SCHEMAS, sha256_bytes, truth_path

# The creators' simulator lives in hbm.models.creators_sim (one copy, shown in the creator
# chapter); it imports PyMC and nutpie, so it is imported only when the creators are simulated.
def __getattr__(name: str):
    if name == "CREATOR_GENRES":
        from hbm.models.creators_sim import CREATOR_GENRES

        return CREATOR_GENRES
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

__all__ = [
    "DEFAULT_SEEDS",
    "REGIONS",
    "P_GLOBAL",
    "REGION_PROFILES",
    "REGION_KAPPA",
    "CREATOR_GENRES",
    "schools",
    "eight_schools",
    "music",
    "creators",
    "to_csv_bytes",
    "write_all",
    "main",
]

#: Seeds of the committed ``data/`` files. ``creators`` is the first seed from
#: 2013 up whose realized no-pooling MSE (0.137) and genre-mean-pooling MSE
#: (0.154) lie within 0.01 of their expectations (0.140 and 0.160), so the
#: committed draw is a typical one; the others were taken as first chosen.
DEFAULT_SEEDS: dict[str, int] = {"schools": 1981, "music": 1962, "creators": 2014}

#: Default regions of the music data, in output order.
REGIONS: tuple[str, ...] = ("North America", "Europe", "Asia", "Latin America")

#: Regional genre profiles p_r (order of ``hbm.book.data.GENRES``: pop, rock,
#: hiphop, classical, electronic). Drawn once around :data:`P_GLOBAL` and
#: then fixed, so the book's prose can quote them; their spread matches
#: Dirichlet(c p_global) with c = 20 (method-of-moments estimate 19.8).
REGION_PROFILES: dict[str, tuple[float, ...]] = {
    "North America": (0.32, 0.26, 0.22, 0.07, 0.13),
    "Europe": (0.21, 0.37, 0.10, 0.18, 0.14),
    "Asia": (0.42, 0.15, 0.14, 0.12, 0.17),
    "Latin America": (0.19, 0.26, 0.37, 0.05, 0.13),
}

#: Global genre profile: the mean of :data:`REGION_PROFILES`.
P_GLOBAL: tuple[float, ...] = (0.285, 0.26, 0.2075, 0.105, 0.1425)

#: Regional concentrations kappa_r: how alike users of a region are
#: (larger = users closer to their regional profile).
REGION_KAPPA: dict[str, float] = {
    "North America": 20.0,
    "Europe": 12.0,
    "Asia": 40.0,
    "Latin America": 25.0,
}

_SIG = 8  # significant digits kept in truth files


def _rng(
    seed: int | None, rng: np.random.Generator | None
) -> tuple[np.random.Generator, int | None]:
    """A generator from ``rng`` (recorded seed None) or ``default_rng(seed)``."""
    if rng is not None:
        return rng, None
    if seed is None:
        raise ValueError("pass an integer seed or a numpy Generator as rng")
    return np.random.default_rng(seed), int(seed)


def _r(x):
    """Round floats to ``_SIG`` significant digits, recursively; numpy -> Python."""
    if isinstance(x, Mapping):
        return {str(k): _r(v) for k, v in x.items()}
    if isinstance(x, (list, tuple, np.ndarray)):
        return [_r(v) for v in x]
    if isinstance(x, (bool, np.bool_)):
        return bool(x)
    if isinstance(x, (int, np.integer)):
        return int(x)
    if isinstance(x, (float, np.floating)):
        return float(f"{float(x):.{_SIG}g}") + 0.0  # + 0.0 turns -0.0 into 0.0
    return x


def _letters(k: int) -> str:
    """0 -> 'A', 25 -> 'Z', 26 -> 'AA' (spreadsheet-style labels)."""
    s = ""
    k += 1
    while k:
        k, rem = divmod(k - 1, 26)
        s = chr(65 + rem) + s
    return s


def _round(x: np.ndarray, decimals: int) -> np.ndarray:
    """Round as the CSV will show the values (and never -0.0)."""
    return np.round(x, decimals) + 0.0


def schools(
    n_schools: int = 8,
    *,
    seed: int | None = DEFAULT_SEEDS["schools"],
    rng: np.random.Generator | None = None,
    mu_overall: float = 70.0,
    tau: float = 6.0,
    alpha: float = 6.0,
    beta: float = 500.0,
    sizes: Sequence[int] | None = None,
    n_min: int = 5,
    n_max: int = 60,
) -> tuple[pd.DataFrame, dict]:
    """Simulate students' test scores in schools with their own means and variances.

    The generative model [gelman2013]_ is, for school j and student i,

    .. math::

        \\mu_j \\sim N(\\mu, \\tau^2), \\qquad
        \\sigma_j^2 \\sim \\mathrm{InvGamma}(\\alpha, \\beta), \\qquad
        y_{ij} \\sim N(\\mu_j, \\sigma_j^2),

    so :math:`E[\\sigma_j^2] = \\beta/(\\alpha-1)` (100 by default: residual
    SDs near 10 points). School sizes vary: by default ``n_schools`` sizes
    spread geometrically from ``n_min`` to ``n_max`` (5, 7, 10, ..., 60 for
    eight schools), assigned to schools in random order, so a few small
    schools show shrinkage. Scores are rounded to 0.1 point (the rounding is
    part of the observed data; scores are not clipped to 0-100).

    Parameters
    ----------
    n_schools : int
        Number of schools, labelled "School A", "School B", ...
    seed : int, optional
        Seed for ``numpy.random.default_rng``; ignored when ``rng`` is given.
    rng : numpy.random.Generator, optional
        A generator to draw from instead of ``seed``.
    mu_overall, tau : float
        Mean and SD of the school means.
    alpha, beta : float
        Shape and scale of the inverse-gamma prior on school variances.
    sizes : sequence of int, optional
        Students per school (each >= 2), in school order; overrides
        ``n_min``/``n_max``.
    n_min, n_max : int
        Smallest and largest default school sizes.

    Returns
    -------
    observed : pandas.DataFrame
        ``student_id`` ("s0001", ...), ``school`` (Categorical), ``score``;
        the schema of :func:`hbm.book.data.load_schools`.
    truth : dict
        ``{"generator", "seed", "mu_overall", "tau", "alpha", "beta",
        "schools": [{"school", "mu", "sigma", "n"}, ...]}`` (one record per
        school, in school order; ``sigma`` is the residual SD).

    References
    ----------
    .. [gelman2013] Gelman et al. (2013), *Bayesian Data Analysis*, 3rd ed.
    """
    gen, used_seed = _rng(seed, rng)
    if sizes is None:
        sizes = np.rint(np.geomspace(n_min, n_max, n_schools)).astype(np.int64)
        sizes = gen.permutation(sizes)
    sizes = np.asarray(sizes, dtype=np.int64)
    if sizes.shape != (n_schools,) or (sizes < 2).any():
        raise ValueError("sizes must give n_schools integers, each >= 2")
    labels = [f"School {_letters(j)}" for j in range(n_schools)]

    mu = gen.normal(mu_overall, tau, size=n_schools)
    sigma2 = beta / gen.gamma(alpha, 1.0, size=n_schools)  # InvGamma(alpha, beta)
    sigma = np.sqrt(sigma2)
    school_idx = np.repeat(np.arange(n_schools), sizes)
    y = gen.normal(mu[school_idx], sigma[school_idx])

    width = max(4, len(str(len(y))))
    observed = pd.DataFrame(
        {
            "student_id": pd.Series([f"s{i + 1:0{width}d}" for i in range(len(y))], dtype="str"),
            "school": pd.Categorical.from_codes(school_idx, categories=labels),
            "score": _round(y, 1),
        }
    )
    truth = {
        "generator": "hbm.book.simulate.schools",
        "seed": used_seed,
        "mu_overall": mu_overall,
        "tau": tau,
        "alpha": alpha,
        "beta": beta,
        "schools": [
            {"school": labels[j], "mu": mu[j], "sigma": sigma[j], "n": sizes[j]}
            for j in range(n_schools)
        ],
    }
    return observed, _r(truth)


def eight_schools() -> tuple[pd.DataFrame, None]:
    """Return Rubin's eight-schools data (SAT coaching experiments).

    Observed effects :math:`y_j` and standard errors :math:`\\sigma_j` of
    coaching programmes in eight schools, modelled as
    :math:`y_j \\sim N(\\theta_j, \\sigma_j^2)` [rubin1981]_ [gelman2013]_.
    These are real data, so there is no truth.

    Returns
    -------
    observed : pandas.DataFrame
        ``school`` (Categorical "A".."H"), ``y`` = 28, 8, -3, 7, -1, 1, 18,
        12 and ``se`` = 15, 10, 16, 11, 9, 11, 10, 18; the schema of
        :func:`hbm.book.data.load_eight_schools`.
    truth : None
        Always ``None`` (kept for the common ``(observed, truth)`` shape).

    References
    ----------
    .. [rubin1981] Rubin (1981), Estimation in parallel randomized experiments.
    .. [gelman2013] Gelman et al. (2013), *Bayesian Data Analysis*, 3rd ed.
    """
    labels = list("ABCDEFGH")
    observed = pd.DataFrame(
        {
            "school": pd.Categorical(labels, categories=labels),
            "y": np.array([28, 8, -3, 7, -1, 1, 18, 12], dtype=np.float64),
            "se": np.array([15, 10, 16, 11, 9, 11, 10, 18], dtype=np.float64),
        }
    )
    return observed, None


def music(
    n_users: int = 120,
    *,
    seed: int | None = DEFAULT_SEEDS["music"],
    rng: np.random.Generator | None = None,
    regions: Sequence[str] = REGIONS,
    p_global: Sequence[float] = P_GLOBAL,
    c: float = 20.0,
    profiles: Mapping[str, Sequence[float]] | None = None,
    draw_profiles: bool = False,
    kappa: Mapping[str, float] | float | None = None,
    n_min: int = 3,
    n_max: int = 1000,
) -> tuple[pd.DataFrame, dict]:
    """Simulate users' play counts over five genres, in three levels.

    The Dirichlet-multinomial hierarchy [mosimann1962]_ [minka2000]_ is, for
    region r and user i in r,

    .. math::

        p_r \\sim \\mathrm{Dirichlet}(c\\, p_{\\mathrm{global}}), \\qquad
        \\theta_i \\sim \\mathrm{Dirichlet}(\\kappa_r p_r), \\qquad
        x_i \\sim \\mathrm{Multinomial}(n_i, \\theta_i).

    By default (``draw_profiles=False``) the regional profiles are the fixed
    constants :data:`REGION_PROFILES` (drawn once around :data:`P_GLOBAL`):
    North America Pop 32% / Rock 26%; Europe Rock 37% / Pop 21% / Classical
    18%; Asia Pop 42%; Latin America Hip-Hop 37% / Rock 26%. With
    ``draw_profiles=True`` fresh profiles are drawn from
    Dirichlet(c p_global), for replications. Users are split evenly over
    regions (in blocks, in region order). Totals :math:`n_i` are
    log-uniform on [``n_min``, ``n_max``], stratified within each region
    (one draw per equal-width stratum of log n, in random order, rounded),
    so every region has users with very few plays (about a fifth <= 10)
    and a few heavy users (>= 500).

    Parameters
    ----------
    n_users : int
        Number of users ("u001", ...).
    seed : int, optional
        Seed for ``numpy.random.default_rng``; ignored when ``rng`` is given.
    rng : numpy.random.Generator, optional
        A generator to draw from instead of ``seed``.
    regions : sequence of str
        Region labels, in output order.
    p_global : sequence of float
        Global profile over ``hbm.book.data.GENRES`` (sums to 1).
    c : float
        Concentration of regional profiles around ``p_global``.
    profiles : mapping, optional
        Region -> profile; default :data:`REGION_PROFILES`. Ignored when
        ``draw_profiles`` is true.
    draw_profiles : bool
        Draw regional profiles from Dirichlet(c p_global) instead.
    kappa : mapping or float, optional
        Region -> concentration kappa_r (or one value for all); default
        :data:`REGION_KAPPA`.
    n_min, n_max : int
        Range of the users' total plays.

    Returns
    -------
    observed : pandas.DataFrame
        ``user_id``, ``region`` (Categorical) and one count per genre; the
        schema of :func:`hbm.book.data.load_music`.
    truth : dict
        ``{"generator", "seed", "genres": [...], "p_global": {genre: p},
        "c", "profiles_drawn": bool, "n_min", "n_max",
        "regions": [{"region", "p": {genre: p}, "kappa", "n_users"}, ...],
        "users": [{"user_id", "region", "n", "theta": {genre: p}}, ...]}``.

    References
    ----------
    .. [mosimann1962] Mosimann (1962), On the compound multinomial distribution.
    .. [minka2000] Minka (2000), Estimating a Dirichlet distribution.
    """
    gen, used_seed = _rng(seed, rng)
    regions = list(regions)
    n_reg, n_gen = len(regions), len(GENRES)
    p_global = np.asarray(p_global, dtype=np.float64)
    if p_global.shape != (n_gen,) or not np.isclose(p_global.sum(), 1.0):
        raise ValueError(f"p_global must be {n_gen} probabilities summing to 1")

    if draw_profiles:
        p = gen.dirichlet(c * p_global, size=n_reg)
    else:
        table = REGION_PROFILES if profiles is None else profiles
        missing = [r for r in regions if r not in table]
        if missing:
            raise ValueError(
                f"no profile for region(s) {missing}; pass profiles= or draw_profiles=True"
            )
        p = np.array([table[r] for r in regions], dtype=np.float64)
    if kappa is None:
        kappa = REGION_KAPPA
    if isinstance(kappa, Mapping):
        missing = [r for r in regions if r not in kappa]
        if missing:
            raise ValueError(f"no kappa for region(s) {missing}")
        k = np.array([kappa[r] for r in regions], dtype=np.float64)
    else:
        k = np.full(n_reg, float(kappa))

    # Even split over regions, in blocks of region order.
    per_region = np.full(n_reg, n_users // n_reg) + (np.arange(n_reg) < n_users % n_reg)
    region_idx = np.repeat(np.arange(n_reg), per_region)

    theta = np.empty((n_users, n_gen))
    totals = np.empty(n_users, dtype=np.int64)
    lo, hi = np.log(n_min), np.log(n_max)
    for r in range(n_reg):
        rows = np.flatnonzero(region_idx == r)
        m = len(rows)
        theta[rows] = gen.dirichlet(k[r] * p[r], size=m)
        u = (gen.permutation(m) + gen.uniform(size=m)) / m  # one draw per stratum
        totals[rows] = np.clip(np.rint(np.exp(lo + u * (hi - lo))), n_min, n_max)
    counts = gen.multinomial(totals, theta)

    width = max(3, len(str(n_users)))
    ids = [f"u{i + 1:0{width}d}" for i in range(n_users)]
    observed = pd.DataFrame(
        {
            "user_id": pd.Series(ids, dtype="str"),
            "region": pd.Categorical.from_codes(region_idx, categories=regions),
        }
    )
    for j, g in enumerate(GENRES):
        observed[g] = counts[:, j].astype(np.int64)

    def by_genre(v):
        return dict(zip(GENRES, v))

    truth = {
        "generator": "hbm.book.simulate.music",
        "seed": used_seed,
        "genres": list(GENRES),
        "p_global": by_genre(p_global),
        "c": c,
        "profiles_drawn": bool(draw_profiles),
        "n_min": n_min,
        "n_max": n_max,
        "regions": [
            {"region": regions[r], "p": by_genre(p[r]), "kappa": k[r], "n_users": per_region[r]}
            for r in range(n_reg)
        ],
        "users": [
            {
                "user_id": ids[i],
                "region": regions[region_idx[i]],
                "n": totals[i],
                "theta": by_genre(theta[i]),
            }
            for i in range(n_users)
        ],
    }
    return observed, _r(truth)


def creators(
    n_per_genre: int = 100,
    n_genres: int = 5,
    *,
    seed: int | None = DEFAULT_SEEDS["creators"],
    rng: np.random.Generator | None = None,
    genres: Sequence[str] | None = None,
    mu_global: float = 0.5,
    sigma_genre: float = 0.3,
    sigma_creator: float = 0.4,
    s: float = 4.65,
    n_min: int = 30,
    n_max: int = 5000,
) -> tuple[pd.DataFrame, dict]:
    """Simulate one A/B test per creator: observed effects with standard errors.

    The simulator is :func:`hbm.models.creators_sim.simulate_creators` (the creator chapter
    shows that file; one copy); this wrapper records the truth as the book's files do
    (``generator`` is this function, floats rounded to 8 significant digits).

    The normal hierarchy [rubin1981]_ [gelman2013]_ is, for genre g and
    creator i in g,

    .. math::

        \\mu_g \\sim N(\\mu, \\sigma_{\\mathrm{genre}}^2), \\qquad
        \\tau_i \\sim N(\\mu_{g}, \\sigma_{\\mathrm{creator}}^2), \\qquad
        \\hat\\tau_i \\sim N(\\tau_i, s_i^2), \\quad s_i = s/\\sqrt{n_i},

    with sample sizes :math:`n_i` log-uniform on [``n_min``, ``n_max``]
    (rounded). The defaults make the no-pooling MSE
    :math:`E[s_i^2] = s^2 (1/n_{\\min} - 1/n_{\\max}) / \\ln(n_{\\max}/n_{\\min})
    \\approx 0.140`, and pooling each creator to its genre mean costs about
    :math:`\\sigma_{\\mathrm{creator}}^2 = 0.16`. Effects and standard errors
    are rounded to 6 decimals (part of the observed data).

    Parameters
    ----------
    n_per_genre : int
        Creators per genre.
    n_genres : int
        Number of genres.
    seed : int, optional
        Seed for ``numpy.random.default_rng``; ignored when ``rng`` is given.
    rng : numpy.random.Generator, optional
        A generator to draw from instead of ``seed``.
    genres : sequence of str, optional
        Genre labels; default :data:`CREATOR_GENRES`, then "Genre 6", ...
    mu_global : float
        Mean of the genre means.
    sigma_genre : float
        SD of the genre means around ``mu_global``.
    sigma_creator : float
        SD of creators' true effects around their genre mean.
    s : float
        Per-user outcome SD: ``se = s / sqrt(n)``.
    n_min, n_max : int
        Range of the experiments' sample sizes (``n_min`` >= 2).

    Returns
    -------
    observed : pandas.DataFrame
        ``creator_id`` ("c0001", ...), ``genre`` (Categorical), ``n``,
        ``effect``, ``se``; the schema of :func:`hbm.book.data.load_creators`.
        Creators come in genre blocks.
    truth : dict
        ``{"generator", "seed", "mu_global", "sigma_genre", "sigma_creator",
        "s", "n_min", "n_max", "genres": [{"genre", "mu_genre",
        "n_creators"}, ...], "creators": [{"creator_id", "genre",
        "true_effect"}, ...]}``.

    References
    ----------
    .. [rubin1981] Rubin (1981), Estimation in parallel randomized experiments.
    .. [gelman2013] Gelman et al. (2013), *Bayesian Data Analysis*, 3rd ed.
    """
    gen, used_seed = _rng(seed, rng)
    from hbm.models.creators_sim import simulate_creators

    observed, truth = simulate_creators(
        n_per_genre,
        n_genres,
        rng=gen,
        genres=genres,
        mu_global=mu_global,
        sigma_genre=sigma_genre,
        sigma_creator=sigma_creator,
        s=s,
        n_min=n_min,
        n_max=n_max,
    )
    truth = {**truth, "generator": "hbm.book.simulate.creators", "seed": used_seed}
    return observed, _r(truth)


# File name, simulator, CSV number formats per column ("{:.1f}" etc.).
_OUTPUTS: dict[str, tuple[str, dict[str, str]]] = {
    "schools": ("schools.csv", {"score": "{:.1f}"}),
    "eight_schools": ("eight_schools.csv", {"y": "{:g}", "se": "{:g}"}),
    "music": ("music_plays.csv", {}),
    "creators": ("creator_experiments.csv", {"effect": "{:.6f}", "se": "{:.6f}"}),
}


def to_csv_bytes(df: pd.DataFrame, formats: Mapping[str, str] | None = None) -> bytes:
    """Serialize a frame as reproducible CSV bytes.

    Parameters
    ----------
    df : pandas.DataFrame
        The frame; written without its index.
    formats : mapping, optional
        Column -> ``str.format`` pattern for float columns (e.g. ``"{:.6f}"``).

    Returns
    -------
    bytes
        UTF-8 CSV with ``\\n`` line endings.
    """
    out = df.copy()
    for col, fmt in (formats or {}).items():
        out[col] = [fmt.format(v + 0.0) for v in out[col].to_numpy(dtype=np.float64)]
    return out.to_csv(index=False, lineterminator="\n").encode("utf-8")


def _truth_bytes(truth: dict, data: bytes, csv_name: str) -> bytes:
    """Truth JSON: sorted keys, indent 1, trailing newline, with the CSV's hash."""
    record = {**truth, "data_file": csv_name, "data_sha256": sha256_bytes(data)}
    return (json.dumps(record, sort_keys=True, indent=1, allow_nan=False) + "\n").encode("utf-8")


def _planned(seeds: Mapping[str, int]) -> list[tuple[str, bytes]]:
    """(file name, bytes) of every file ``write_all`` writes."""
    frames = {
        "schools": schools(seed=seeds["schools"]),
        "eight_schools": eight_schools(),
        "music": music(seed=seeds["music"]),
        "creators": creators(seed=seeds["creators"]),
    }
    files = []
    for key, (name, formats) in _OUTPUTS.items():
        observed, truth = frames[key]
        assert list(observed.columns) == SCHEMAS[key].names
        data = to_csv_bytes(observed, formats)
        files.append((name, data))
        if truth is not None:
            files.append((truth_path(name).name, _truth_bytes(truth, data, name)))
    return files


def write_all(
    out_dir: str | Path = "data",
    seeds: Mapping[str, int] = DEFAULT_SEEDS,
    *,
    overwrite: bool = False,
) -> list[tuple[Path, str]]:
    """Write every dataset of the book and its truth file, reproducibly.

    Writes ``schools.csv``, ``eight_schools.csv``, ``music_plays.csv`` and
    ``creator_experiments.csv``, and beside each simulated CSV a truth file
    ``<stem>.truth.json``: the simulator's truth dict plus ``data_file`` (the
    CSV's name) and ``data_sha256`` (SHA-256 of the CSV bytes). Output is
    byte-for-byte reproducible for given seeds. Nothing is written if any
    existing file differs from what would be written and ``overwrite`` is
    false; existing identical files are left alone.

    Parameters
    ----------
    out_dir : str or pathlib.Path
        Directory to write to (created if needed).
    seeds : mapping
        Seeds by dataset (``schools``, ``music``, ``creators``); missing keys
        take :data:`DEFAULT_SEEDS`.
    overwrite : bool
        Replace existing files whose content differs (CLI: ``--force``).

    Returns
    -------
    list of (pathlib.Path, str)
        Each file with ``"written"``, ``"overwritten"`` or ``"unchanged"``.

    Raises
    ------
    FileExistsError
        A file exists with different content and ``overwrite`` is false; the
        message names the file(s).
    """
    seeds = {**DEFAULT_SEEDS, **seeds}
    out = Path(out_dir)
    plan = [(out / name, data) for name, data in _planned(seeds)]
    status = []
    for path, data in plan:
        if not path.exists():
            status.append("written")
        elif path.read_bytes() == data:
            status.append("unchanged")
        else:
            status.append("overwritten")
    clash = [str(p) for (p, _), st in zip(plan, status) if st == "overwritten"]
    if clash and not overwrite:
        raise FileExistsError(
            f"refusing to overwrite {', '.join(clash)}: the file(s) differ from what "
            "hbm.book.simulate would write (pass overwrite=True, or --force on the command line)"
        )
    out.mkdir(parents=True, exist_ok=True)
    for (path, data), st in zip(plan, status):
        if st != "unchanged":
            path.write_bytes(data)
    return [(p, st) for (p, _), st in zip(plan, status)]


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: ``python -m hbm.book.simulate [--out data] [--force]``.

    Runs :func:`write_all` and prints each file with its status.

    Parameters
    ----------
    argv : sequence of str, optional
        Arguments; default ``sys.argv[1:]``.

    Returns
    -------
    int
        Exit status: 0 on success, 1 when a file would be overwritten
        without ``--force`` (the refusal is printed to stderr).
    """
    parser = argparse.ArgumentParser(
        prog="python -m hbm.book.simulate",
        description="Write the book's simulated data sets and their truth files.",
    )
    parser.add_argument("--out", default="data", help="output directory (default: data)")
    parser.add_argument(
        "--force", action="store_true", help="overwrite files whose content differs"
    )
    args = parser.parse_args(argv)
    try:
        result = write_all(args.out, overwrite=args.force)
    except FileExistsError as err:
        print(f"hbm.book.simulate: {err}", file=sys.stderr)
        return 1
    for path, st in result:
        print(f"{st:>11}  {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
