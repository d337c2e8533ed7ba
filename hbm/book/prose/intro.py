"""Sentences of chapter 1, 'Why borrow strength?' (``chapters/intro.qmd``).

Also the small sentence pieces the later chapters of this part reuse: ``k of n`` counts
(:func:`k_of_n`), digits that follow the data's scale (:func:`digits_for`), and the warning
that a fit failed its diagnostics (:func:`unreliable`).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from hbm.book.common import Inline, count, fmt, plural
from hbm.book.prose.common import digits_for, k_of_n  # noqa: F401 (re-exported)


def unreliable(checks, what: str = "these estimates") -> Inline:
    """A warning for a fit that failed its diagnostics (empty text when it passed).

    ``checks`` is a :class:`hbm.diagnostics.Diagnostics`.
    """
    if checks.ok:
        return Inline("")
    return Inline(
        f"The fit failed its sampler diagnostics ({'; '.join(checks.failures)}), so {what} are unreliable: "
        "the chains may not have explored the whole posterior, so the numbers can be off by more than "
        "their Monte Carlo error. "
    )


def diagnostics_sentence(checks) -> Inline:
    """``Sampler diagnostics: 4 chains of ... all checks pass.`` for the fit ``checks``."""
    return Inline(f"Sampler diagnostics: {checks.message}")


def data_sentence(by_school: pd.DataFrame) -> Inline:
    """How many students per school: a range, or one number when every school has as many."""
    lo, hi = int(by_school["n"].min()), int(by_school["n"].max())
    if len(by_school) == 1:
        return Inline(f"The one school has {plural(lo, 'student')}.")
    if lo == hi:
        return Inline(f"Every school has {plural(lo, 'student')}.")
    return Inline(f"Schools have from {count(lo)} to {plural(hi, 'student')}.")


def shrinkage_sentence(compare: pd.DataFrame, grand_mean: float, checks, unit: str = "points") -> Inline:
    """What the partially pooled estimates did to the smallest and the largest school.

    ``compare`` has one row per school (index: its label) with ``n`` (students), ``mean``
    (the school's own average) and ``partial`` (its partially pooled estimate). Whether each
    moved towards or away from ``grand_mean`` and whether the small one moved more are read
    off the numbers. A fit that failed its diagnostics is said to be unreliable first.
    """
    warning = unreliable(checks, "the amounts in this paragraph")
    moved = (compare["partial"] - compare["mean"]).abs()
    towards = (compare["partial"] - grand_mean).abs() <= (compare["mean"] - grand_mean).abs()

    def part(school):
        direction = "towards" if towards[school] else "away from"
        return (f"{school}, with {plural(compare.loc[school, 'n'], 'student')}, moved "
                f"{fmt(moved[school], '.1f')} {unit} {direction} the overall mean")

    if len(compare) == 1:
        return Inline(warning + f"{part(compare.index[0])}.")
    if compare["n"].min() == compare["n"].max():
        biggest = moved.idxmax()
        return Inline(
            warning + f"All schools tested as many students, so size cannot explain the differences: "
            f"{part(biggest)}, the most of any school, because its average lies furthest from the others."
        )
    smallest, largest = compare["n"].idxmin(), compare["n"].idxmax()
    verdict = (
        "The small school's average is noisy, so the model trusts it less."
        if moved[smallest] > moved[largest] else
        "Here the larger school moved more: how far a school moves depends on how far its average lies "
        "from the others as well as on its size."
    )
    return Inline(warning + f"{part(smallest)}; {part(largest)}.\n{verdict}")


def ppc_sentence(ppc: pd.DataFrame, checks=None) -> Inline:
    """Whether the observed school statistics lie inside their posterior predictive 95% ranges.

    ``ppc`` has one row per school and statistic, with columns ``school``, ``statistic``
    (``"average"`` or ``"SD"``), ``observed``, ``lower``, ``upper`` (the central 95% of the
    statistic over the data sets replicated from the posterior). ``checks``, the fit's
    :class:`hbm.diagnostics.Diagnostics`, marks the check as rough when the fit failed.
    """
    inside = (ppc["lower"] <= ppc["observed"]) & (ppc["observed"] <= ppc["upper"])
    parts, missed = [], []
    for stat in dict.fromkeys(ppc["statistic"]):
        rows = (ppc["statistic"] == stat).to_numpy()
        out = ppc.loc[rows & ~inside.to_numpy(), "school"].astype(str).tolist()
        if not out:
            who = "the school's" if rows.sum() == 1 else "every school's"
            parts.append(f"{who} observed {stat} lies inside the central 95% of its replicated values")
        else:
            missed.append(stat)
            parts.append(f"the observed {stat} of {plural(len(out), 'school')} ({', '.join(out)}) lies outside "
                         "the central 95% of its replicated values")
    if not missed:
        verdict = "the model reproduces what these statistics show, so by this check it fits the data"
    else:
        verdict = (f"the model does not reproduce the schools' {' or '.join(s + 's' for s in missed)}, "
                   "so it misses something in these data")
    warning = "" if checks is None or checks.ok else "The fit failed its diagnostics, so this check is only rough. "
    return Inline(warning + "In the data sets replicated from the posterior, " + "; ".join(parts) + f": {verdict}.")


def summary_sentence(compare: pd.DataFrame, grand_mean: float, checks, unit: str = "points") -> Inline:
    """The chapter summary's bullet on shrinkage: how many schools moved towards the overall mean, by how much."""
    towards = (compare["partial"] - grand_mean).abs() <= (compare["mean"] - grand_mean).abs()
    moved = (compare["partial"] - compare["mean"]).abs()
    text = (f"Partial pooling moved the estimates of {k_of_n(towards.sum(), len(compare), 'school')} towards the "
            f"overall mean, by {fmt(moved.min(), '.1f')} to {fmt(moved.max(), '.1f')} {unit}")
    if len(compare) > 1 and compare["n"].min() < compare["n"].max():
        smallest, largest = compare["n"].idxmin(), compare["n"].idxmax()
        text += (f"; the smallest school, {smallest}, moved {fmt(moved[smallest], '.1f')} and the largest, "
                 f"{largest}, {fmt(moved[largest], '.1f')}")
    text += "."
    if not checks.ok:
        text += " The fit failed its sampler diagnostics, so these amounts are unreliable."
    return Inline(text)


def ppc_summary(ppc: pd.DataFrame) -> Inline:
    """The chapter summary's bullet on the posterior predictive check: no misfit, or which statistic misfits."""
    inside = (ppc["lower"] <= ppc["observed"]) & (ppc["observed"] <= ppc["upper"])
    if inside.all():
        return Inline("The posterior predictive check finds every school's average and SD within what the model "
                      "simulates: by this check the model fits.")
    out = ppc[~inside].groupby("statistic", sort=False)["school"].nunique()
    listed = " and ".join(f"the {stat} of {plural(k, 'school')}" for stat, k in out.items())
    return Inline(f"The posterior predictive check flags {listed}: the model does not describe every school "
                  "as it stands.")
