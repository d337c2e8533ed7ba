"""Sentences of chapter 5, 'Credible intervals and confidence intervals' (``chapters/intervals.qmd``)."""

from __future__ import annotations

import pandas as pd

from hbm.book.common import Inline, count, fmt, pct, plural


def listing(names) -> str:
    """``'a'``, ``'a and b'``, ``'a, b and c'``."""
    names = list(names)
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def prior_source(other_share, n_other: int, n_genres: int) -> Inline:
    """Where the regional prior is centred: the other regions' mean share, or an even split when there is none."""
    if n_other:
        return Inline(f"the average of the other {plural(n_other, 'region')}' mean Rock shares, {fmt(other_share, '.3f')}"
                      if n_other > 1 else f"the other region's mean Rock share, {fmt(other_share, '.3f')}")
    return Inline(f"an even split over the {count(n_genres)} genres, {fmt(1 / n_genres, '.3f')}, as the file has no other region")


def design_sentence(design_ratio: float, total_plays: int, n_effective: float) -> Inline:
    """How much narrower the naive interval is than the cluster-robust one, and the plays' effective number."""
    if design_ratio >= 1:
        head = f"The naive interval is {fmt(design_ratio, '.1f')} times narrower than the cluster-robust one."
    else:
        head = f"The naive interval is {fmt(1 / design_ratio, '.1f')} times wider than the cluster-robust one."
    if n_effective < total_plays:
        tail = (f"Put the other way, the {count(total_plays)} correlated plays carry about as much information about $p$ "
                f"as {count(n_effective)} independent plays would.")
    else:
        tail = (f"The users' shares vary no more than independent plays would: the {count(total_plays)} plays carry "
                f"about as much information about $p$ as {count(n_effective)} independent plays.")
    return Inline(head + "\n" + tail)


def three_level_sentence(three_level, checks) -> Inline:
    """The three-level model's interval, or that it is unreliable because the fit failed its diagnostics."""
    text = (f"The three-level model's 95% equal-tailed credible interval for $p$ is [{fmt(three_level.lower, '.3f')}, "
            f"{fmt(three_level.upper, '.3f')}], with posterior mean {fmt(three_level.estimate, '.3f')}.")
    if not checks.ok:
        text += (" The fit failed its sampler diagnostics, so this interval is unreliable, and every comparison "
                 "with it below is marked as such.")
    return Inline(text)


def truth_sentence(real: pd.DataFrame, p_true: float | None = None) -> Inline:
    """Which intervals contain the simulation's true ``p``, or that there is no truth.

    ``real`` has one row per interval with ``short`` (its short name), ``lower`` and ``upper``.
    A missed interval is named with its end nearest the truth, to 4 decimals (3 can round onto p).
    """
    if p_true is None:
        return Inline("No simulation truth is available for this data file, so we cannot check which intervals "
                      "contain $p$.")
    covers = (real["lower"] <= p_true) & (p_true <= real["upper"])
    hit = real.loc[covers, "short"].tolist()
    miss = [f"{row.short} ({'lower' if p_true < row.lower else 'upper'} end "
            f"{fmt(row.lower if p_true < row.lower else row.upper, '.4f')})"
            for row in real[~covers].itertuples()]
    return Inline(
        f"The true $p$ of the simulation that generated this file is {fmt(p_true, '.4f')}. "
        + (f"It lies inside the {listing(hit)} intervals" if hit else "It lies inside none of the intervals")
        + (f", and outside the {listing(miss)} intervals." if miss else ".")
    )


def fixed_sentence(p_fixed: float, kappa_fixed: float, source: str) -> Inline:
    """Where the fixed experiment holds p and kappa: the truth, or estimates because there is none."""
    values = f"$p$ = {fmt(p_fixed, '.3f')} and $\\kappa$ = {fmt(kappa_fixed, '.1f')}"
    if source == "truth":
        return Inline(f"at the values that generated the file, {values}")
    return Inline(f"at their {source} estimates, {values}, because no simulation truth is available for this data file")


def bootstrap_sentence(phrase: str, n_users: int) -> Inline:
    """Why the percentile bootstrap misses, when it does; nothing to explain otherwise."""
    if phrase == "below":
        return Inline(f"With only {count(n_users)} users to resample, a percentile bootstrap distribution tends to be a "
                      "little too narrow (its spread uses divisor $m$ rather than $m - 1$, and it has no analogue of "
                      "the $t$ distribution's heavier tails), a known weakness of bootstrapping few clusters that the "
                      "$t$ interval avoids [@cameron2015].")
    return Inline(f"With {count(n_users)} users to resample, the percentile bootstrap's known weakness with few clusters "
                  "(a spread with divisor $m$ rather than $m - 1$) does not show here [@cameron2015].")


def regional_fixed_sentence(phrase: str, prior_mean: float, p_fixed: float) -> Inline:
    """What the regional prior does to fixed-p coverage, written for either outcome."""
    if phrase == "within Monte Carlo error of":
        return Inline(f"its prior pulls every estimate towards {fmt(prior_mean, '.3f')}, and a fixed $p$ of "
                      f"{fmt(p_fixed, '.3f')} is close enough to it that the pull costs no visible coverage.")
    return Inline(f"its prior pulls every estimate towards {fmt(prior_mean, '.3f')}, and a fixed $p$ of "
                  f"{fmt(p_fixed, '.3f')} is not where the prior expects it.")


def curve_sentence(flat_curve: pd.DataFrame, t_curve: pd.DataFrame, reps: int, k: float = 3.0) -> Inline:
    """Whether the flat-prior and t intervals stay within k Monte Carlo errors of 95% at every fixed p."""
    from hbm.metrics import coverage_mc_error

    band = k * coverage_mc_error(0.95, reps)
    held = [name for name, frame in (("cluster-robust t", t_curve), ("flat-prior credible", flat_curve))
            if ((frame["coverage"] - 0.95).abs() <= band).all()]
    span = (f"the flat-prior interval covered between {pct(flat_curve['coverage'].min(), 1)} and "
            f"{pct(flat_curve['coverage'].max(), 1)}")
    if len(held) == 2:
        return Inline(f"The cluster-robust t and flat-prior credible intervals hold within Monte Carlo error of 95% at "
                      f"every $p$: {span}.")
    if held:
        return Inline(f"Only the {held[0]} interval holds within Monte Carlo error of 95% at every $p$; {span}.")
    return Inline(f"Neither the cluster-robust t nor the flat-prior credible interval holds within Monte Carlo error "
                  f"of 95% at every $p$: {span}.")


def conditional_sentence(conditional: pd.Series, per_group: int, k: float = 3.0) -> Inline:
    """Whether the regional-prior credible interval covers about 95% in every group of similar data."""
    from hbm.metrics import coverage_mc_error

    band = k * coverage_mc_error(0.95, per_group)
    span = (f"The regional-prior credible interval covered between {pct(conditional.min(), 1)} and "
            f"{pct(conditional.max(), 1)} in the {count(len(conditional))} groups")
    if ((conditional - 0.95).abs() <= band).all():
        return Inline(span + ": whatever the data say, about 95% of the parameter values that could have produced "
                             "data like them lie inside the interval.")
    return Inline(span + ": not every group is within Monte Carlo error of 95%, so with these replications the "
                         "conditional promise is not borne out in every group.")


def compare_widths(a: float, b: float) -> Inline:
    """``'x% narrower than'`` or ``'x% wider than'``, comparing width ``a`` with width ``b``."""
    return Inline(f"{pct(abs(1 - a / b), 0)} {'narrower' if a < b else 'wider'} than")


def three_level_width(w_three: float, w_reg: float, checks) -> Inline:
    """The three-level interval's width against the regional-prior grid's, unreliable when the fit failed."""
    text = f"its interval is {compare_widths(w_three, w_reg)} the regional-prior grid interval"
    if not checks.ok:
        text += ", a comparison that is unreliable because the fit failed its sampler diagnostics"
    return Inline(text + ".")


def grid_close_sentence(regional, three_level, checks, tolerance: float = 0.01) -> Inline:
    """Whether the grid posterior's interval is close to the full model's (both ends within ``tolerance``)."""
    if not checks.ok:
        return Inline("The full model's interval on the real data cannot vouch for the grid here, because its fit "
                      "failed its sampler diagnostics.")
    close = abs(regional.lower - three_level.lower) <= tolerance and abs(regional.upper - three_level.upper) <= tolerance
    if close:
        return Inline("The regional-prior grid's interval on the real data is close to the full model's "
                      "(@fig-intervals), so the grid posteriors can stand in for it.")
    return Inline("On these data the regional-prior grid's interval differs from the full model's by more than "
                  f"{fmt(tolerance, '.2f')} at an end (@fig-intervals), so the simulation studies the grid posteriors, "
                  "not the full model.")


def narrowest_sentence(real: pd.DataFrame, naive_coverage: float) -> Inline:
    """The bullet on the binomial interval: the narrowest of all or not, and what its coverage shows."""
    naive = real.set_index("interval").loc["Binomial (Wald), plays independent"]
    narrowest = real.loc[real["width"].idxmin(), "interval"] == "Binomial (Wald), plays independent"
    head = ("The binomial interval is the narrowest of all" if narrowest else "The binomial interval is not the narrowest here")
    return Inline(f"{head}, {fmt(naive['width'], '.3f')} wide, because it treats correlated plays as independent and is "
                  "centred on a different quantity, the plays-weighted share; "
                  + (f"its narrowness is an error, as its coverage of {pct(naive_coverage, 0)} shows."
                     if naive_coverage < 0.9 else f"its coverage here was {pct(naive_coverage, 0)}."))


def drawn_sentence(phrase: str) -> Inline:
    """What the regional-prior interval's coverage under its own prior shows, for either outcome."""
    if phrase == "within Monte Carlo error of":
        return Inline("averaged over the parameters its prior describes, it is calibrated, as Bayes' theorem guarantees "
                      "when the prior is the process that generates the parameters [@cook2006].")
    return Inline("Bayes' theorem guarantees calibration when the prior is the process that generates the parameters "
                  "[@cook2006], so a miss this large points to too few replications or to the grid's resolution, "
                  "not to the promise.")
