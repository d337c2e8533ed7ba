"""Sentences of chapters/empirical-bayes.qmd ("Empirical Bayes at the scale of millions of users").

Every function takes computed results (priors, summaries, :class:`hbm.diagnostics.Diagnostics`,
``truth=None``, the benchmark record or ``None``) and returns an :class:`hbm.book.common.Inline`.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from hbm.book.common import Inline, count, fmt, pct, plural
from hbm.book.prose.common import group_sizes, num, ppc_verdict, unreliable


def data_sentence(n_users: int, users_per_region: pd.Series, totals: np.ndarray) -> Inline:
    """Users, regions (with their sizes) and the range of plays per user."""
    totals = np.asarray(totals)
    sizes = "" if len(users_per_region) == 1 else f" ({group_sizes(users_per_region, 'user', 'region')})"
    return Inline(
        f"The regional data hold {plural(n_users, 'user')} in {plural(len(users_per_region), 'region')}{sizes}, "
        f"with between {count(totals.min())} and {count(totals.max())} plays each (median {fmt(np.median(totals), 'g')})."
    )


def priors_sentence(kappa_hat: pd.Series, global_kappa: float) -> Inline:
    """Which region's users are most and least alike, and how the single prior compares."""
    finite = kappa_hat[np.isfinite(kappa_hat)]
    boundary = kappa_hat.index[~np.isfinite(kappa_hat)].tolist()
    parts = []
    if len(finite) == 1:
        r = finite.index[0]
        parts.append(f"Users in {r} have $\\hat\\kappa =$ {num(finite[r])}: their profile counts as that many plays.")
    elif len(finite) > 1:
        hi, lo = finite.idxmax(), finite.idxmin()
        parts.append(f"Users in {hi} are the most alike ($\\hat\\kappa =$ {num(finite[hi])}: their profile counts as "
                     f"that many plays), users in {lo} the least ($\\hat\\kappa =$ {num(finite[lo])}).")
    if boundary:
        parts.append(f"In {', '.join(boundary)} the estimate sits on the boundary, $\\hat\\kappa = \\infty$: empirical "
                     "Bayes gives every user there the regional profile and nothing of their own.")
    above = int((kappa_hat > global_kappa).sum())
    n = len(kappa_hat)
    if above == n:
        relation = "below every regional estimate"
    elif above:
        relation = f"below {count(above)} of the {count(n)} regional estimates"
    else:
        relation = "below none of the regional estimates"
    tail = (": a single prior must also cover the differences between regions." if above > n / 2
            else ".")
    parts.append(f"One prior for everybody has $\\hat\\kappa =$ {num(global_kappa)}, {relation}{tail}")
    return Inline(" ".join(parts))


def truth_sentence(kappa_hat: pd.Series, pop_hat: pd.Series, truth: Mapping | None, users_per_region: pd.Series) -> Inline:
    """The EB estimates against the simulation's truth, paired by region; or that there is none."""
    if truth is None:
        return Inline("No simulation truth is available for this data file, so the estimates cannot be compared "
                      "with true values.")
    true_kappa = pd.Series({r["region"]: r["kappa"] for r in truth["regions"]})
    true_pop = pd.Series({r["region"]: r["p"]["pop"] for r in truth["regions"]})
    regions = [r for r in kappa_hat.index if r in true_kappa.index]
    ratio = kappa_hat[regions] / true_kappa[regions]
    worst = (ratio - 1).abs().idxmax()
    pop_error = (pop_hat[regions] - true_pop[regions]).abs().max()
    return Inline(
        f"The data were simulated, so the estimates can be checked: with {group_sizes(users_per_region, 'user', 'region')}, "
        f"the estimated concentrations are off by up to {pct(abs(ratio[worst] - 1))} ({worst}: {num(kappa_hat[worst])} "
        f"against a true {num(true_kappa[worst])}), while the regional Pop shares are within {fmt(pop_error, '.3f')} of "
        "the truth."
    )


def beta_sentence(dirichlet_pop: float, beta_pop: float, tolerance: float = 0.01) -> Inline:
    """Whether the beta-binomial and Dirichlet fits agree on the Pop mean for all users."""
    same = abs(dirichlet_pop - beta_pop) <= tolerance
    return Inline(
        f"Its Pop-share priors, drawn in @fig-eb-pop-priors, have {'nearly the same means as' if same else 'other means than'} "
        f"the Dirichlet fits ({fmt(dirichlet_pop, '.3f')} against {fmt(beta_pop, '.3f')} for all users) and their own "
        "concentrations $a + b$, because the Dirichlet ties one $\\kappa$ to all five genres."
    )


def inside_sentence(inside: pd.Series) -> Inline:
    """Whether every EB concentration lies inside the full Bayes 95% interval."""
    if inside.all():
        return Inline("The estimated concentrations all lie inside the full posterior's 95% intervals")
    out = inside.index[~inside.to_numpy()].tolist()
    return Inline(f"{count(len(out))} of the {count(len(inside))} estimated concentrations ({', '.join(map(str, out))}) "
                  "lie outside the full posterior's 95% intervals")


def where_sentence(widest_region: str, narrowest_region: str) -> Inline:
    """Whether the region with the widest kappa interval is where EB's intervals fall shortest."""
    if widest_region == narrowest_region:
        return Inline("the region whose concentration has the widest interval relative to its size")
    return Inline(f"although {widest_region}'s concentration has the widest interval relative to its size: how much the "
                  "prior matters also depends on how far a user's plays are from the regional profile")


def width_sentence(ratio_light: float, ratio_heavy: float, light_cut: int) -> Inline:
    """EB against full Bayes interval widths for light and heavy users, written either way."""
    def share(r):
        return f"{pct(r)} of the full Bayes one"
    head = (f"For users with at most {count(light_cut)} plays, whose posterior leans on the regional prior, the median "
            f"empirical Bayes 95% interval of the Pop share is {share(ratio_light)}")
    if not np.isfinite(ratio_heavy):
        return Inline(head + "; no user has more plays.")
    return Inline(head + f"; for heavier users, whose own plays dominate, it is {pct(ratio_heavy)}.")


def fb_reliability(checks) -> Inline:
    """Whether the full Bayes numbers can be read: its fit passed its diagnostics, or they are unreliable and why.

    Never empty: Quarto shows the source of an inline expression whose value is empty.
    """
    if checks.ok:
        return Inline(" The full Bayes fit passed its sampler diagnostics, so these comparisons can be read as they stand.")
    return unreliable({"the full Bayes fit": checks}, "the full Bayes numbers in this section")


def schools_sentence(tau: float, mu: float, sd_max: float, n_schools: int) -> Inline:
    """What the plug-in estimate of tau does to the schools, for tau = 0 and tau > 0."""
    if tau == 0:
        where = "in the only school" if n_schools == 1 else f"in all {plural(n_schools, 'school')}"
        return Inline(
            "The schools' estimates vary no more than their standard errors alone would make them. "
            f"Plugged in, that estimate says every school has the same effect, {fmt(mu, '.1f')}, "
            f"with posterior standard deviation {fmt(sd_max, '.1f')} for every school: complete pooling, and 95% intervals "
            f"of zero width. Empirical Bayes is certain that the effect is the same {where}, "
            f"on the evidence of {plural(n_schools, 'noisy number')}."
        )
    return Inline(
        "For this data file that is not 0, so empirical Bayes shrinks each school part of the way towards the estimated "
        f"mean of {fmt(mu, '.1f')}, with posterior standard deviations up to {fmt(sd_max, '.1f')}; it still treats the "
        "estimated spread as known."
    )


def bench_sentence(b: Mapping | None) -> Inline:
    """The recorded benchmark, from :func:`hbm.book.scale.bench_summary`, or that there is none."""
    if b is None:
        return Inline("No benchmark has been recorded for this copy of the book, so there are no measured figures to quote.")
    steps = b["steps_s"]
    single = b.get("single_node_count_s")
    text = (
        f"Measured on {b['measured']} on {b['machine']}: at {count(b['users'])} users ({count(b['events'])} play events in"
        f" {count(b['files'])} Parquet files, {fmt(b['parquet_mib'], '.0f')} MiB) the whole job took {fmt(b['total_s'], '.1f')} s,"
        f" {count(b['users_per_s'])} users a second: {fmt(steps['aggregate'], '.1f')} s to read and count the events,"
        f" {fmt(steps['suffstats'], '.2f')} s for the sufficient statistics, {fmt(steps['fit'], '.2f')} s for the fit and"
        f" {fmt(steps['posteriors'], '.1f')} s to compute and write every user's posterior mean and 95% interval."
        f" The client peaked at {count(b['client_peak_mib'])} MiB and the workers at {count(b['workers_peak_mib'])} MiB"
        f" ({count(b['workers_start_mib'])} MiB before the job began): what they hold is the per-user counts"
        f" ({fmt(b['counts_mib'], '.0f')} MiB) and the block of posteriors being written, never the events."
        f" At {count(b['small_users'])} users the job took {fmt(b['small_total_s'], '.2f')} s."
        f" The posteriors agree with the closed form computed in NumPy to {fmt(b['max_error_vs_closed_form'], '.0e')}."
    )
    if single is not None:
        dask = b["dask_count_s"]
        text += (f" The same counting done by {b['single_node_engine']} in one process on the same files took "
                 f"{fmt(single, '.1f')} s (peak {count(b['single_node_peak_mib'])} MiB) against the job's {fmt(dask, '.1f')} s:")
        if single > dask:
            text += (f" on one machine the distributed job is {fmt(single / dask, '.1f')} times faster, because it counts "
                     "into dense per-user arrays where the engine groups rows.")
        else:
            text += (f" on one machine the distribution costs {fmt(dask / single, '.1f')} times the engine's time, the "
                     "price of being able to add machines.")
    if b.get("full_bayes_s") is not None:
        text += (f" The full Bayes model took {fmt(b['full_bayes_s'], '.0f')} s for {count(b['full_bayes_users'])} users,"
                 f" {fmt(b['full_bayes_users_per_s'], '.1f')} users a second.")
    return Inline(text)


def ppc_sentence(pvalues: pd.Series) -> Inline:
    """The plug-in predictive check's verdict, written either way."""
    return ppc_verdict(pvalues, "the empirical Bayes model", "predictive distribution under the fitted priors",
                       "the data it was fitted to")


def summary_bullets(mean_gap_max: float, ratio_light: float, light_cut: int, tau_hat: float,
                    p_tau_above: float, tau_threshold: float, kappa_error: float, users_per_region_scale: int,
                    ppc_pvalues: pd.Series, fb_ok: bool) -> Inline:
    """The chapter's summary as Markdown bullet points."""
    lines = [
        f"- On the regional data empirical Bayes and full Bayes posterior means differ by at most "
        f"{fmt(100 * mean_gap_max, '.1f')} percentage points: for the users' expected shares it loses almost nothing"
        if mean_gap_max < 0.02 else
        f"- On the regional data empirical Bayes and full Bayes posterior means differ by up to "
        f"{fmt(100 * mean_gap_max, '.1f')} percentage points: here the plug-in prior matters even for the means",
    ]
    lines[0] += "." if fb_ok else " (the full Bayes fit failed its diagnostics, so this comparison is rough)."
    if np.isfinite(ratio_light):
        verdict = "narrower" if ratio_light < 1 else "no narrower"
        lines.append(f"- Its intervals are {verdict} than full Bayes where the prior matters: {pct(ratio_light)} of the "
                     f"width, in the median, for users with at most {count(light_cut)} plays.")
    if tau_hat == 0:
        lines.append(f"- With eight-schools-sized data it can collapse: $\\hat\\tau = 0$ means complete pooling with "
                     f"zero-width intervals, while full Bayes keeps a {pct(p_tau_above)} probability that $\\tau$ exceeds "
                     f"{fmt(tau_threshold, 'g')}.")
    else:
        lines.append(f"- On the schools' data $\\hat\\tau =$ {fmt(tau_hat, '.1f')}, not on the boundary; full Bayes still "
                     f"averages over $\\tau$ (probability {pct(p_tau_above)} that it exceeds {fmt(tau_threshold, 'g')}).")
    lines.append(f"- At scale it is cheap and exact enough: with about {count(users_per_region_scale)} users a region the "
                 f"simulated concentrations are recovered within {pct(kappa_error, 1)}.")
    from scipy.stats import binom

    extreme = int(((ppc_pvalues < 0.025) | (ppc_pvalues > 0.975)).sum())
    misfit = extreme > 0 and binom.sf(extreme - 1, len(ppc_pvalues), 0.05) < 0.05
    lines.append("- The fitted priors do not reproduce how much users differ in some regions and genres: the "
                 "predictive check finds more extreme spreads than chance would give." if misfit else
                 "- The fitted priors reproduce how much users differ within each region: the predictive check finds "
                 "no clear misfit.")
    return Inline("\n".join(lines))
