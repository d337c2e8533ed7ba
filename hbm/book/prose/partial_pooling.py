"""Sentences of chapter 2, 'Partial pooling from first principles' (``chapters/partial-pooling.qmd``)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from hbm.book.common import Inline, count, fmt, pct, plural
from hbm.book.prose.common import _failed, digits_for, k_of_n
from hbm.book.prose.intro import unreliable

#: Rubin's eight schools (Gelman et al. 2013, table 5.2): effect y and standard error, in SAT points.
RUBIN_Y = (28.0, 8.0, -3.0, 7.0, -1.0, 1.0, 18.0, 12.0)
RUBIN_SE = (15.0, 10.0, 16.0, 11.0, 9.0, 11.0, 10.0, 18.0)


def eight_unit(eight: pd.DataFrame) -> Inline:
    """``"SAT points"`` when the file holds Rubin's eight schools (in any order), else ``"units of y"``."""
    pairs = sorted(zip(np.round(eight["y"].astype(float), 6), np.round(eight["se"].astype(float), 6)))
    return Inline("SAT points" if pairs == sorted(zip(RUBIN_Y, RUBIN_SE)) else "units of y")


def fits_verdict(checks: dict) -> Inline:
    """One sentence for several fits' diagnostics: all pass, or each fit's own message."""
    if not _failed(checks):
        return Inline(f"Sampler diagnostics: {k_of_n(len(checks), len(checks), 'fit')} pass every check "
                      "(no divergences, R-hat at most 1.01, bulk and tail ESS at least 100 per chain).")
    return Inline("Sampler diagnostics, fit by fit. " + " ".join(f"{name}: {c.message}" for name, c in checks.items()))


def shrinkage_paragraph(estimates: pd.DataFrame, between: pd.Series, smallest: str, largest: str,
                        checks: dict) -> Inline:
    """Which schools' partially pooled estimates lie between their own and the pooled mean, and how far each moves.

    ``estimates`` has one row per school with ``n``, ``No pooling``, ``Complete pooling``,
    ``Partial pooling`` and ``shrinkage``; ``between`` is True where the partial estimate lies
    between the other two; ``checks`` maps each fit's name to its diagnostics.
    """
    failed = _failed(checks)
    warning = "" if not failed else (
        f"The {' and '.join(failed).lower()} {'fit' if len(failed) == 1 else 'fits'} failed {'its' if len(failed) == 1 else 'their'} "
        "sampler diagnostics (@tbl-pp-diagnostics), so the estimates in this paragraph are unreliable. "
    )
    n, k = len(between), int(between.sum())
    pooled = fmt(estimates["Complete pooling"].iloc[0], ".1f")
    if n == 1:
        lie = (f"The partially pooled estimate of the 1 school {'lies' if k else 'does not lie'} between its own "
               f"average and the pooled mean of {pooled}.")
    else:
        lie = (f"The partially pooled estimates of {k_of_n(k, n, 'school')} lie between each school's own average "
               f"and the pooled mean of {pooled}.")
        if 0 < k < n:
            outside = ", ".join(map(str, between.index[~between]))
            lie += (f" For {outside} it lies outside that range: its estimate is pulled towards the model's overall "
                    "mean, which need not equal the pooled mean of all students.")
    sizes = lambda s: f"{s}, with {plural(estimates.loc[s, 'n'], 'student')}"  # noqa: E731
    if n == 1 or estimates.loc[smallest, "n"] == estimates.loc[largest, "n"]:
        move = ""
    elif estimates.loc[smallest, "shrinkage"] > estimates.loc[largest, "shrinkage"]:
        move = (f"\nHow far a school moves depends on how much its own data say: {sizes(smallest)}, goes "
                f"{pct(estimates.loc[smallest, 'shrinkage'])} of the way to the pooled mean, and {sizes(largest)}, "
                f"goes {pct(estimates.loc[largest, 'shrinkage'])} of the way.")
    else:
        move = (f"\n{sizes(smallest)}, goes {pct(estimates.loc[smallest, 'shrinkage'])} of the way to the pooled mean "
                f"and {sizes(largest)}, {pct(estimates.loc[largest, 'shrinkage'])}: here the larger school moves "
                "further, so size alone does not decide how far a school moves.")
    return Inline(warning + lie + move)


def prior_sentence(prior_ranges: dict, unit: str = "points") -> Inline:
    """The central 95% ranges of the prior predictive school averages and SDs, and whether they cover the data.

    ``prior_ranges[(model, statistic)] = (lower, upper, share of observed schools inside)``
    for the models ``"PyMC: inverse-gamma sigma"`` and ``"Bambi: log-normal sigma"`` and the
    statistics ``"School average"`` and ``"School SD"``.
    """
    means = prior_ranges["PyMC: inverse-gamma sigma", "School average"]
    ig_sd = prior_ranges["PyMC: inverse-gamma sigma", "School SD"]
    ln_sd = prior_ranges["Bambi: log-normal sigma", "School SD"]
    # Decimals: the means with two significant digits at their largest; each SD with two of its own.
    dm = f".{digits_for(means[:2])}f"

    def sd(x):
        return fmt(x, f".{digits_for([x])}f")

    text = (f"Under the inverse-gamma model's priors, 95% of simulated school averages lie between "
            f"{fmt(means[0], dm)} and {fmt(means[1], dm)} {unit} and 95% of simulated school SDs between "
            f"{sd(ig_sd[0])} and {sd(ig_sd[1])}; under Bambi's, the school SDs range from "
            f"{sd(ln_sd[0])} to {sd(ln_sd[1])}.\n")
    if all(r[2] == 1 for r in prior_ranges.values()):
        return Inline(text + "Every observed school average and SD falls inside these central 95% ranges: the priors "
                             "are wide, but on the scale of the data, and rule out nothing the data show.")
    return Inline(text + "Some observed school averages or SDs fall outside these central 95% ranges: the priors are "
                         "in tension with the data and deserve a second look.")


def recovery_sentence(estimates: pd.DataFrame, partial: pd.DataFrame, mu_ig: pd.DataFrame,
                      sigma_ln: pd.DataFrame, sigma_ig: pd.DataFrame, truth: pd.DataFrame | None = None,
                      checks: dict | None = None) -> Inline:
    """How well the fits recover the simulation's school means and SDs, or that no truth is available.

    ``truth`` has one row per school (its label) with columns ``mu`` and ``sigma``; the
    summaries have ``lower`` and ``upper`` (95% equal-tailed) per school; all are paired by
    label. ``checks`` maps fit names to diagnostics; a failed fit is named as unreliable.
    """
    if truth is None:
        return Inline("No simulation truth is available for this data file (it has no matching truth file), "
                      "so the estimates cannot be compared with true values.")
    t = truth.reindex(estimates.index)

    def inside(summary, column):
        s = summary.reindex(estimates.index)
        return int(((s["lower"] <= t[column]) & (t[column] <= s["upper"])).sum())

    n = len(t)
    mse_no = float(np.mean((estimates["No pooling"] - t["mu"]) ** 2))
    mse_partial = float(np.mean((estimates["Partial pooling"] - t["mu"]) ** 2))
    text = (
        "The data were simulated with known school means and SDs, so we can check.\n"
        f"The 95% equal-tailed intervals of the partially pooled school means contain the true mean for "
        f"{count(inside(partial, 'mu'))} of {plural(n, 'school')} (the inverse-gamma model's: "
        f"{count(inside(mu_ig, 'mu'))}), and the 95% intervals of the school SDs contain the true SD for "
        f"{count(inside(sigma_ln, 'sigma'))} (log-normal) and {count(inside(sigma_ig, 'sigma'))} (inverse-gamma).\n"
        f"Partial pooling's mean squared error for the school means is {fmt(mse_partial, '.1f')}, "
    )
    if mse_partial < mse_no:
        text += f"lower than the {fmt(mse_no, '.1f')} of the schools' own averages."
    else:
        text += (f"not lower than the {fmt(mse_no, '.1f')} of the schools' own averages: with {plural(n, 'school')} "
                 "one data set can go either way, and shrinkage wins on average over data sets, not in every one.")
    failed = _failed(checks or {})
    if failed:
        text += f"\nThese comparisons use fits that failed their diagnostics ({', '.join(failed)}) and are unreliable."
    return Inline(text)


def range_sentence(eight: pd.DataFrame, unit: str) -> Inline:
    """The range of the estimates and of their standard errors, with digits that follow the data's scale."""
    dy, ds = f".{digits_for(eight['y'])}f", f".{digits_for(eight['se'])}f"
    return Inline(
        f"The estimates range from {fmt(eight['y'].min(), dy)} to {fmt(eight['y'].max(), dy)} {unit}, but their "
        f"standard errors are {fmt(eight['se'].min(), ds)} to {fmt(eight['se'].max(), ds)}: much of the spread "
        "may be noise, and how much is real is what $\\tau$ measures."
    )


def exact_sentence(versus: pd.DataFrame, exact, checks, what: str = "Bambi's non-centered fit") -> Inline:
    """Whether an MCMC fit agrees with the quadrature (largest |z| below 4), stated as unreliable if it failed."""
    worst = float(versus["z"].abs().max())
    verb = "agrees with" if worst < 4 else "does not agree with"
    text = (f"{what} {verb} the quadrature: the exact posterior means of $\\mu$ and $\\tau$ are "
            f"{fmt(exact.mu_mean, '.2f')} and {fmt(exact.tau_mean, '.2f')}, the MCMC ones "
            f"{fmt(versus.loc['mu', 'mcmc'], '.2f')} and {fmt(versus.loc['tau', 'mcmc'], '.2f')}, and over all "
            f"{count(len(versus))} parameters the largest gap is {fmt(worst, '.1f')} Monte Carlo standard errors (MCSE).")
    if not checks.ok:
        text += (" The fit failed its sampler diagnostics, so its MCSEs, and this comparison, are unreliable.")
    return Inline(text)


def explored_phrase(checks) -> Inline:
    """Whether the centered fit's MCSE can be read: its diagnostics say whether the chains explored the posterior."""
    return Inline("by its diagnostics these did not" if not checks.ok else "and here the diagnostics do not object")


def failure_note(diagnostics_table: pd.DataFrame, illustrations=("Eight schools: Centered", "Eight schools: Non-centered")) -> Inline:
    """How many of the chapter's fits pass, and what a failure means for the estimates the prose reads."""
    failed = diagnostics_table.index[diagnostics_table["checks"] != "pass"].tolist()
    n = len(diagnostics_table)
    head = f"{k_of_n(n - len(failed), n, 'fit')[0].upper()}{k_of_n(n - len(failed), n, 'fit')[1:]} pass every check."
    if not failed:
        return Inline(head)
    relied = [f for f in failed if not f.startswith(tuple(illustrations))]
    text = head + f" Failing: {'; '.join(failed)}."
    if relied:
        text += f" The estimates from {', '.join(relied)} should not be trusted as they stand."
    else:
        text += (" All of these come from the comparison of parameterizations, there to show the funnel; no estimate "
                 "in this chapter relies on them except as the example of what goes wrong.")
    return Inline(text)


def ppc_sentence(ppc: pd.DataFrame, checks) -> Inline:
    """The inverse-gamma model's posterior predictive check: do replicated school averages and SDs cover the observed ones?"""
    inside = (ppc["lower"] <= ppc["observed"]) & (ppc["observed"] <= ppc["upper"])
    n = ppc["school"].nunique()
    text = (f"The observed school averages and SDs lie inside the central 95% of their replicated values for "
            f"{count(int(inside.sum()))} of the {count(len(ppc))} school statistics ({plural(n, 'school')}, two each): ")
    text += ("the model with a variance per school reproduces what these statistics show, so by this check it fits the data."
             if inside.all() else
             f"{', '.join(f'{r.school} ({r.statistic})' for r in ppc[~inside].itertuples())} "
             f"{'falls' if (~inside).sum() == 1 else 'fall'} outside, so the model misses something in these data.")
    if not checks.ok:
        text = "The fit failed its diagnostics, so this check is only rough. " + text
    return Inline(text)


def eight_ppc_sentence(eight_ppc: pd.DataFrame, checks) -> Inline:
    """The eight-schools check: each observed y_j against the central 95% of its replicated values."""
    inside = (eight_ppc["lower"] <= eight_ppc["observed"]) & (eight_ppc["observed"] <= eight_ppc["upper"])
    n = len(eight_ppc)
    if inside.all():
        text = (f"Every observed estimate lies inside the central 95% of its replicated values ({k_of_n(n, n, 'school')}): "
                "by this check the model fits, which with one noisy estimate per school is a weak test.")
    else:
        text = (f"The observed estimate of {', '.join(map(str, eight_ppc.loc[~inside, 'school']))} lies outside the central "
                f"95% of its replicated values ({count(int((~inside).sum()))} of {plural(n, 'school')}): the model does "
                "not reproduce every school.")
    if not checks.ok:
        text = "The fit failed its diagnostics, so this check is only rough. " + text
    return Inline(text)


def summary_shrinkage(estimates: pd.DataFrame, between: pd.Series, checks: dict) -> Inline:
    """Summary bullet: where the partially pooled means lie and the range of shrinkage."""
    text = (f"With one shared $\\sigma$, partial pooling put the means of {k_of_n(int(between.sum()), len(between), 'school')} "
            f"between their own average and the pooled mean, going {pct(estimates['shrinkage'].min())} to "
            f"{pct(estimates['shrinkage'].max())} of the way to the pooled mean.")
    if _failed(checks):
        text += f" The {', '.join(_failed(checks))} fit failed its diagnostics, so these numbers are unreliable."
    return Inline(text)


def summary_variances(sigmas: pd.DataFrame, model_gap: pd.Series, checks: dict) -> Inline:
    """Summary bullet: the two variance hierarchies side by side."""
    spread = {m: float(sigmas[m].std()) for m in ("sample SD", "log-normal", "inverse-gamma")}
    pulled = spread["log-normal"] < spread["sample SD"] and spread["inverse-gamma"] < spread["sample SD"]
    text = (f"Giving each school its own SD, the log-normal (Bambi) and inverse-gamma (PyMC) hierarchies differ by at most "
            f"{fmt(model_gap.max(), '.2f')} points for any school, and "
            + ("both pull the schools' SDs towards each other." if pulled else
               "they do not both pull the schools' SDs towards each other on these data."))
    if _failed(checks):
        text += f" The {', '.join(_failed(checks))} fit failed its diagnostics, so this comparison is unreliable."
    return Inline(text)


def summary_eight(versus: pd.DataFrame, exact, checks, centered, noncentered) -> Inline:
    """Summary bullet: the eight schools, exact against MCMC, centered against non-centered."""
    worst = float(versus["z"].abs().max())
    text = (f"For the eight schools the exact posterior means of $\\mu$ and $\\tau$ are {fmt(exact.mu_mean, '.2f')} and "
            f"{fmt(exact.tau_mean, '.2f')}; Bambi's non-centered fit is within {fmt(worst, '.1f')} MCSE of the "
            f"quadrature for every parameter" + ("" if checks.ok else ", but it failed its diagnostics") + ". ")
    after = "none" if noncentered.divergences == 0 else count(noncentered.divergences)
    text += (f"The centered form at the default target acceptance had {plural(centered.divergences, 'divergence')}; "
             f"the non-centered form at 0.99 had {after}.")
    return Inline(text)


def summary_ppc(ppc: pd.DataFrame, eight_ppc: pd.DataFrame) -> Inline:
    """Summary bullet: the two posterior predictive checks' verdicts."""
    def n_out(frame):
        return int((~((frame["lower"] <= frame["observed"]) & (frame["observed"] <= frame["upper"]))).sum())

    a, b = n_out(ppc), n_out(eight_ppc)
    first = ("the inverse-gamma model reproduces every school's average and SD" if a == 0 else
             f"the inverse-gamma model misses {plural(a, 'school statistic')}")
    second = ("the eight-schools model every observed estimate" if b == 0 else
              f"the eight-schools model misses {plural(b, 'observed estimate')}")
    return Inline(f"In the posterior predictive checks, {first}, and {second}.")


def variance_sentence(similar: str, model_gap: pd.Series, checks: dict) -> Inline:
    """How close the two variance hierarchies are, said to be unreliable first when a fit failed."""
    failed = _failed(checks)
    warning = "" if not failed else (
        f"The {' and '.join(failed)} {'fit' if len(failed) == 1 else 'fits'} failed the sampler diagnostics "
        "(@tbl-pp-diagnostics), so this comparison is unreliable. ")
    return Inline(warning + f"The two hierarchies give {similar}: their posterior means differ by at most "
                            f"{fmt(model_gap.max(), '.2f')} points for any school.")
