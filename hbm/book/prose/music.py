"""Sentences of chapters/music.qmd ("Regional music preferences"), built from its results.

Every function takes computed results (counts, summaries, :class:`hbm.diagnostics.Diagnostics`,
``truth=None``) and returns an :class:`hbm.book.common.Inline`; the chapter shows it inline.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from hbm.book.common import Inline, count, fmt, pct, plural
from hbm.book.prose.common import _failed, group_sizes, k_of_n, num, ppc_verdict, unreliable  # noqa: F401 (re-exported)


def data_sentence(n_users: int, users_per_region: Sequence[int], total_plays: int) -> Inline:
    """The file's size: users, regions, users per region and plays."""
    n_regions = len(users_per_region)
    sizes = "" if n_regions == 1 else f", {group_sizes(users_per_region, 'user', 'region')}"
    return Inline(f"The file has {plural(n_users, 'user')} in {plural(n_regions, 'region')}{sizes}, "
                  f"with {plural(total_plays, 'play')} in all.")


def totals_sentence(totals: np.ndarray, few: int) -> Inline:
    """The range and median of users' totals, and how many users have ``few`` plays or fewer."""
    totals = np.asarray(totals)
    k = int((totals <= few).sum())
    who, verb = ("user", "has") if k == 1 else ("users", "have")
    return Inline(
        f"Users' totals range from {count(totals.min())} to {count(totals.max())} plays, with a median of "
        f"{fmt(np.median(totals), 'g')}; {count(k)} {who} ({pct(k / len(totals))}) {verb} {count(few)} plays or fewer."
    )


def pooled_verdict(checks) -> Inline:
    """What the chapter does with Bambi's ``~ 1 + (1|region)`` fit, given its diagnostics."""
    if checks.ok:
        return Inline("It passes them, but it is not the model this chapter needs (see below), "
                      "so its estimates are not used.")
    return Inline("Its estimates are therefore not used in this chapter.")


def steps_sentence(steps_three: float, steps_pooled: float, pooled_name: str) -> Inline:
    """The three-level fit's leapfrog steps per draw, against the pooled Bambi fit's."""
    head = f"It needed {fmt(steps_three, '.0f')} leapfrog steps per draw on average"
    if not np.isfinite(steps_pooled):
        return Inline(head + ".")
    relation = "fewer than" if steps_three < steps_pooled else ("as many as" if steps_three == steps_pooled else "more than")
    return Inline(f"{head}, {relation} the {fmt(steps_pooled, '.0f')} of {pooled_name}.")


def profile_gap_sentence(gap: float, region: str, n_region: int, min_users: int, threshold: float = 0.02) -> Inline:
    """How far the three-level profiles are from the separate-regions fit, and what that says."""
    size = f"{fmt(100 * gap, '.1f')} percentage points"
    if gap < threshold:
        return Inline(
            f"The regions' profiles from the three-level model and from Bambi's `~ 0 + region` fit differ by at "
            f"most {size}: with {count(min_users)} or more users per region, each region's own users carry far "
            "more weight than what the other regions say."
        )
    return Inline(
        f"The regions' profiles from the three-level model and from Bambi's `~ 0 + region` fit differ by up to "
        f"{size}, most in {region} ({plural(n_region, 'user')}): there the pull of the other regions is visible."
    )


def concentration_sentence(kappas: pd.DataFrame, fits: Mapping) -> Inline:
    """Which region's users are most and least alike (posterior mean kappa), with the fits' reliability."""
    if len(kappas) == 1:
        region = kappas.index[0]
        text = f"Users in {region} have a posterior mean $\\kappa$ of {num(kappas.loc[region, 'mean'])}."
    else:
        tightest, loosest = kappas["mean"].idxmax(), kappas["mean"].idxmin()
        text = (f"Users in {tightest} are the most alike (posterior mean $\\kappa$ of "
                f"{num(kappas.loc[tightest, 'mean'])}), those in {loosest} the least "
                f"({num(kappas.loc[loosest, 'mean'])}).")
    return Inline(text + unreliable(fits, "these comparisons"))


def c_sentence(lower: float, upper: float, n_regions: int) -> Inline:
    """The interval of the regions' concentration c around the global profile."""
    inform = "informs" if n_regions == 1 else "inform"
    return Inline(
        f"The regions' profiles cluster around the global profile with concentration $c$ between {num(lower)} and "
        f"{num(upper)} (95% equal-tailed interval): only {plural(n_regions, 'region')} {inform} it, so it stays uncertain."
    )


def interval_text(mean: float, lower: float, upper: float) -> str:
    """``52.4 (31.2 to 80.1)``: a posterior mean and interval for a table cell, as the prose prints them."""
    return f"{num(mean)} ({num(lower)} to {num(upper)})"


def user_sentences(fewest: Mapping, median: Mapping, most: Mapping) -> Inline:
    """What the model does for the lightest, the median and the heaviest user.

    Each mapping has ``id``, ``n`` (plays), ``region``, ``w`` (posterior mean weight on the
    user's own shares) and ``width`` (mean interval width over genres, a proportion).
    """
    def where(u):
        if u["w"] < 0.5:
            return "their posterior sits nearer the regional profile than their own shares"
        if u["w"] > 0.9:
            return "their posterior is essentially their own shares"
        return "their posterior sits nearer their own shares than the regional profile"

    first = (f"User {fewest['id']} in {fewest['region']} has {plural(fewest['n'], 'play')}, so the weight on their own "
             f"shares is {fmt(fewest['w'])}: {where(fewest)}, {pct(1 - fewest['w'])} of the way from their own shares "
             "to it.")
    second = (f"User {median['id']}, whose {plural(median['n'], 'play')} put them in the middle of all users, gets weight "
              f"{fmt(median['w'])}, and user {most['id']}, with {plural(most['n'], 'play')}, gets {fmt(most['w'])}: "
              f"{where(most)}.")
    a, b = 100 * fewest["width"], 100 * most["width"]
    trend = "narrow" if b < a else "do not narrow"
    third = (f"The intervals {trend} accordingly, from an average width of {fmt(a, '.0f')} percentage points per genre for "
             f"the lightest user to {fmt(b, '.0f')} for the heaviest.")
    return Inline(" ".join([first, second, third]))


def newcomer_sentence(region: str, genre: str, mean: float, lower: float, upper: float,
                      profile_lower: float, profile_upper: float) -> Inline:
    """A new user's posterior for one genre against the interval of the regional profile."""
    ratio = (upper - lower) / (profile_upper - profile_lower)
    head = (f"A new user in {region} gets the regional profile as posterior mean, {pct(mean)} {genre} for instance, "
            f"with a 95% interval from {pct(lower)} to {pct(upper)}.")
    if ratio > 1.5:
        return Inline(head + f" That is {fmt(ratio, '.1f')} times as wide as the interval of the profile itself, "
                      f"{pct(profile_lower)} to {pct(profile_upper)}: what a new user likes varies as much as the "
                      "region's users do, and knowing the region's average better does not remove that.")
    return Inline(head + f" That is about as wide as the interval of the profile itself, {pct(profile_lower)} to "
                  f"{pct(profile_upper)}: in this region the users hardly differ from its average.")


def recovery_sentence(rec_profiles: Mapping | None, rec_kappa: Mapping | None) -> Inline:
    """The posterior against the simulation's truth, or that no truth is available.

    ``rec_profiles`` and ``rec_kappa`` are :func:`hbm.book.music.recovery` results, ``None``
    without truth.
    """
    if rec_profiles is None:
        return Inline("No simulation truth is available for this data file (the truth file is missing or belongs to "
                      "different data), so the posterior cannot be checked against it.")
    p, k = rec_profiles, rec_kappa
    return Inline(
        f"The data were simulated, so the truth is known: {k_of_n(p['n'] - p['missed'], p['n'], 'true regional share')} "
        f"lie inside their 95% intervals, and the posterior means miss them by "
        f"{fmt(100 * p['mae'], '.1f')} percentage points on average (at most {fmt(100 * p['max_error'], '.1f')}); "
        f"{k_of_n(k['n'] - k['missed'], k['n'], 'true concentration')} lie inside theirs."
    )


def ppc_sentence(pvalues: pd.Series, checks) -> Inline:
    """The three-level model's posterior predictive check, with the fit's reliability."""
    return Inline(ppc_verdict(pvalues) + unreliable({"the three-level fit": checks}, "the replicated data"))


def summary_bullets(n_users: int, n_regions: int, n_params: int, fewest: Mapping, most: Mapping,
                    tightest: str, loosest: str, recovery: Inline, fits_ok: bool,
                    ppc: Inline | None = None) -> Inline:
    """The chapter's summary as Markdown bullet points."""
    lines = [
        f"- One fit of the regions' and the world's {count(n_params)} parameters gives each of the "
        f"{plural(n_users, 'user')} in {plural(n_regions, 'region')} a full posterior of their preferences; the "
        "closed form of the Dirichlet does the rest.",
        f"- The lightest user ({plural(fewest['n'], 'play')}) keeps weight {fmt(fewest['w'])} on their own shares, the "
        f"heaviest ({plural(most['n'], 'play')}) {fmt(most['w'])}: few plays borrow the region's profile, many keep "
        "their own.",
    ]
    if n_regions > 1:
        lines.append(f"- The regions' concentrations set where between the two each user sits: users in {tightest} are "
                     f"the most alike, in {loosest} the least.")
    if ppc is not None:
        lines.append(f"- Posterior predictive check: {ppc.strip()}")
    lines.append(f"- {recovery}")
    if not fits_ok:
        lines.append("- At least one fit the chapter reads failed its sampler diagnostics: its numbers above are rough.")
    return Inline("\n".join(lines))
