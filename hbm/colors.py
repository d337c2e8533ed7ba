"""The book's colours: one colour per concept, the same in every chart.

Each concept (the estimators, predictive checks, the two kinds of interval, genres, regions)
has its own colours, and no colour belongs to two concepts (``tests/test_colors.py`` checks
both), so orange means "no pooling" wherever it appears. Plain data and two small functions:
a chart turns them into a colour scale with ``alt.Scale(**scale(METHOD_COLORS, shown))``.

The first palette is Okabe and Ito's, distinguishable with the common colour-vision
deficiencies [1]_; genres use ColorBrewer's Set2 [2]_ and regions muted tones from Paul Tol's
schemes [3]_.

References
----------
.. [1] Okabe, M. and Ito, K. (2008). Color Universal Design (CUD): how to make figures and
   presentations that are friendly to colorblind people. https://jfly.uni-koeln.de/color/
.. [2] Brewer, C. A. (2002). ColorBrewer. https://colorbrewer2.org
.. [3] Tol, P. (2021). Colour schemes. SRON Technical Note SRON/EPS/TN/09-002.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

#: Okabe-Ito: the default colours of a chart that shows none of the concepts below.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000")

#: The estimators the book compares, and the simulation's truth.
METHOD_COLORS = {
    "No pooling": "#E69F00",
    "Complete pooling": "#56B4E9",
    "Partial pooling": "#0072B2",
    "Empirical Bayes": "#009E73",
    "Full Bayes": "#CC79A7",
    "Truth": "#000000",
}

#: Predictive checks: statistics of data replicated from the fitted model, the observed
#: statistic, and an observed statistic outside its replicated 95% range.
CHECK_COLORS = {
    "Replicated": "#C4C4C4",
    "Observed": "#332288",
    "Outside": "#C0142B",
}

#: The two kinds of interval compared in the intervals chapter.
INTERVAL_COLORS = {
    "Confidence": "#882255",
    "Credible": "#117733",
}

#: The two parameterizations of a hierarchical model.
PARAMETERIZATION_COLORS = {
    "Centred": "#AA4499",
    "Non-centred": "#44AA99",
}

#: A sampler's draws, and the divergent transitions among them.
SAMPLER_COLORS = {
    "Draw": "#9AA5B1",
    "Divergent": "#E7298A",
}

#: Genres, in the data file's column order (light tones).
GENRE_PALETTE = ("#FC8D62", "#8DA0CB", "#E78AC3", "#A6D854", "#FFD92F", "#66C2A5", "#E5C494", "#BEBADA")

#: Regions, in the data file's order (dark, muted tones).
REGION_PALETTE = ("#661100", "#999933", "#6699CC", "#0F4D5C", "#DDCC77", "#8C6D31", "#393B79", "#7B4173")

#: Every concept and its colours, for checks: no colour may appear under two concepts.
CONCEPTS = {
    "methods": tuple(METHOD_COLORS.values()),
    "predictive checks": tuple(CHECK_COLORS.values()),
    "intervals": tuple(INTERVAL_COLORS.values()),
    "parameterizations": tuple(PARAMETERIZATION_COLORS.values()),
    "sampler": tuple(SAMPLER_COLORS.values()),
    "genres": GENRE_PALETTE,
    "regions": REGION_PALETTE,
}


def scale(colors: Mapping[str, str], domain: Iterable[str] | None = None) -> dict:
    """The ``domain`` and ``range`` of a colour scale for some keys of a concept's colours.

    ``domain`` picks and orders the keys a chart shows (all of them by default), so a chart
    of three methods gives each the colour it has everywhere else.

    >>> scale(METHOD_COLORS, ["Truth"])
    {'domain': ['Truth'], 'range': ['#000000']}
    """
    domain = list(colors) if domain is None else [str(k) for k in domain]
    return {"domain": domain, "range": [colors[k] for k in domain]}


def _cycled(names: Iterable, palette: tuple[str, ...]) -> dict[str, str]:
    names = list(dict.fromkeys(str(n) for n in names))
    return {name: palette[k % len(palette)] for k, name in enumerate(names)}


def genre_colors(genres: Iterable) -> dict[str, str]:
    """Genre name -> colour, in the order given; past eight genres the palette repeats."""
    return _cycled(genres, GENRE_PALETTE)


def region_colors(regions: Iterable) -> dict[str, str]:
    """Region name -> colour, in the order given; past eight regions the palette repeats."""
    return _cycled(regions, REGION_PALETTE)
