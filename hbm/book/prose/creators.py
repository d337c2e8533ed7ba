"""Sentences of chapters/creators.qmd ("The creator A/B-test shrinkage study"), built from its results.

Every function takes computed results (tables, numbers, :class:`hbm.diagnostics.Diagnostics`,
``truth=None``) and returns an :class:`hbm.book.common.Inline`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import numpy as np
import pandas as pd

from hbm.book.common import Inline, count, fmt, pct, plural
from hbm.book.prose.common import group_sizes, num, ppc_verdict, unreliable

#: Sample-size bins of :func:`hbm.metrics.size_bins`, in prose.
BIN_WORDS = {"n < 100": "fewer than 100 users", "100-500": "100 to 500 users", "> 500": "more than 500 users"}


def intro_truth(has_truth: bool) -> Inline:
    """The introduction's last sentence: what can be measured against the truth."""
    if has_truth:
        return Inline("Because the data are simulated, we know every creator's true effect and can measure, rather "
                      "than argue, which approach is closer to the truth.")
    return Inline("On data without a simulation truth, as here, the chapter can compare the approaches with each other "
                  "but not with the creators' true effects; its replication study (@sec-creators-replications) still "
                  "measures them on simulated data.")


def truth_note(has_truth: bool, source: str) -> Inline:
    """Where the data come from, and whether the validation sections can use a truth."""
    if has_truth:
        return Inline("The data were simulated by `hbm.book.simulate.creators` from exactly the hierarchical model below, "
                      "so that model is correctly specified here; the simulation's truth (every creator's true effect and "
                      "the hyperparameters) is kept beside the file and belongs to it, so the validation sections compare "
                      "every method with it.")
    return Inline(f"No simulation truth is available for this data file ({source}): the validation sections say so "
                  "and the rest of the analysis runs as usual.")


def data_sentence(n_creators: int, per_genre: pd.Series, n: pd.Series, se: pd.Series, share_small: float) -> Inline:
    """Creators, genres and their sizes, sample sizes and standard errors."""
    sizes = "" if len(per_genre) == 1 else f", {group_sizes(per_genre, 'creator', 'genre')}"
    return Inline(
        f"It holds {plural(n_creators, 'creator')} in {plural(len(per_genre), 'genre')}{sizes}. "
        f"Sample sizes run from {count(n.min())} to {count(n.max())} users, so standard errors run from "
        f"{num(se.min())} to {num(se.max())}; {pct(share_small)} of the experiments had fewer than 100 users."
    )


def agreement_sentence(diff_bambi: pd.Series, diff_eb: pd.Series, corr_bambi: float, corr_eb: float,
                       min_per_genre: int, fits: Mapping, tolerance: float = 0.05) -> Inline:
    """Whether Bambi, PyMC and empirical Bayes agree on the creators' effects, written either way."""
    head = (f"Bambi and PyMC fit the same model, parameterized differently and sampled with different random draws; "
            f"their posterior means of the creators' effects differ by at most {num(diff_bambi.max())} (median "
            f"{num(diff_bambi.median())}, correlation {fmt(corr_bambi, '.4f')}). Empirical Bayes differs from PyMC by at "
            f"most {num(diff_eb.max())} (correlation {fmt(corr_eb, '.4f')}).")
    if max(diff_bambi.max(), diff_eb.max()) <= tolerance:
        tail = (f" With {count(min_per_genre)} or more creators per genre, the three answers are practically the same, "
                "and the rest of the chapter uses the PyMC fit as *the* hierarchical model.")
    else:
        tail = (" The three answers differ noticeably here; the rest of the chapter uses the PyMC fit as the hierarchical "
                "model, and its differences from the others are worth a look before any decision.")
    return Inline(head + tail + unreliable(fits, "these comparisons"))


def shrinkage_sentence(shrink_by_bin: pd.Series, moved_max: float, moved_n: int) -> Inline:
    """Average shrinkage per sample-size bin (bins without creators are left out)."""
    parts = [f"one with {BIN_WORDS.get(b, b)} {pct(v)}" for b, v in shrink_by_bin.items() if np.isfinite(v)]
    if parts:
        parts[0] = parts[0].replace("one with", "a creator with", 1)
        listed = parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + ", and " + parts[-1]
        head = f"On average the model pulls {listed} of the way to the genre mean (@fig-creators-shrinkage-n)."
    else:
        head = "No creator falls in any sample-size bin."
    return Inline(head + f" The largest move is {num(moved_max)}, for a creator with {plural(moved_n, 'user')}.")


def sigma_genre_sentence(n_genres: int, mean: float, lower: float, upper: float, true: float | None = None) -> Inline:
    """How well the genre spread is identified, from the number of genres, written for 1, few and many."""
    truth = "" if true is None or not np.isfinite(true) else f" (true {num(true)})"
    interval = f"posterior mean {num(mean)} and a 95% interval from {num(lower)} to {num(upper)}{truth}"
    if n_genres == 1:
        return Inline(f"With a single genre the data say nothing about the spread of genres: $\\sigma_{{\\text{{genre}}}}$ "
                      f"has {interval}, which is its prior.")
    loosely = n_genres < 10
    return Inline(
        f"The spread of genres is {'not' if loosely else 'reasonably well'} pinned down: with "
        f"{'only ' if loosely else ''}{plural(n_genres, 'genre')}, $\\sigma_{{\\text{{genre}}}}$ has {interval}. "
        f"{plural(n_genres, 'genre')} {'is' if n_genres == 1 else 'are'} only that many draws from the genre "
        "distribution, whatever the number of creators."
    )


def genre_recovery_sentence(n_genres: int, covered: float, err: float, cp_covered: float, width_ratio: float,
                            min_per_genre: int, has_truth: bool) -> Inline:
    """The genre means against the truth (either verdict), or without truth only the interval widths."""
    cp = (f"Complete pooling's genre intervals are {fmt(width_ratio, '.1f')} times narrower"
          + (f" and contain {count(cp_covered)} of the {count(n_genres)}" if has_truth else "")
          + f": they treat a genre's creators as if they shared one effect, so they ignore both the creator-to-creator "
          f"spread and that a genre's {count(min_per_genre)} or more creators are only a sample of it.")
    if not has_truth:
        return Inline("No simulation truth is available, so the genre means cannot be checked against true values "
                      f"(@fig-creators-genres shows the estimates). {cp}")
    verdict = "are well recovered" if covered == n_genres else "are not all recovered"
    return Inline(f"The genre means {verdict} (@fig-creators-genres): the hierarchical model's 95% intervals for the "
                  f"{plural(n_genres, 'genre mean')} contain {count(covered)} of the true ones, and its largest error is "
                  f"{num(err)}. {cp}")


def validation_text(overall: pd.DataFrame, by_bin: pd.DataFrame, n_creators: int, coverage_mc: float,
                    reference: pd.DataFrame, design: Mapping, true_sigma_creator: float | None,
                    has_truth: bool) -> Inline:
    """The validation section's results (Markdown paragraphs and bullets), or the no-truth sentence."""
    if not has_truth:
        return Inline("No simulation truth is available for this data file, so the methods cannot be scored against "
                      "true effects here; @sec-creators-replications scores them on simulated data.")
    PP, NP, CP = "Partial pooling", "No pooling", "Complete pooling"
    o, ref = overall, reference
    ratio = o.loc[PP, "mse"] / o.loc[NP, "mse"]
    better = "below" if ratio < 1 else "above"
    paras = [
        f"The hierarchical model's MSE is {fmt(o.loc[PP, 'mse'], '.3f')} against {fmt(o.loc[NP, 'mse'], '.3f')} for no "
        f"pooling and {fmt(o.loc[CP, 'mse'], '.3f')} for complete pooling: {pct(ratio)} of the no-pooling error, "
        f"{better} it.\n"
        f"Its intervals cover {pct(o.loc[PP, 'coverage'], 1)} of the true effects (nominal 95%, Monte Carlo error "
        f"±{pct(coverage_mc, 1)} for {plural(n_creators, 'creator')}) while being {fmt(o.loc[PP, 'mean_width'])} wide on "
        f"average against {fmt(o.loc[NP, 'mean_width'])} for no pooling.\n"
        f"Complete pooling's intervals cover {pct(o.loc[CP, 'coverage'], 1)}.",
        "How our numbers compare with the values quoted in the brief:",
        f"- No pooling: MSE {fmt(o.loc[NP, 'mse'], '.3f')} against the quoted {fmt(ref.loc[NP, 'mse'], '.3f')}, width "
        f"{fmt(o.loc[NP, 'mean_width'])} against {fmt(ref.loc[NP, 'mean_width'])}. The no-pooling MSE is just the average "
        f"squared standard error, and the simulator's design (standard error {num(design['s'])}/√n, n log-uniform on "
        f"{count(design['n_min'])} to {count(design['n_max'])}) makes its expectation {fmt(design['np_mse'], '.3f')}.\n"
        f"- Complete pooling: MSE {fmt(o.loc[CP, 'mse'], '.3f')} against {fmt(ref.loc[CP, 'mse'], '.3f')} (about "
        f"$\\sigma_{{\\text{{creator}}}}^2$, which is {num(true_sigma_creator ** 2)} in the simulation), coverage "
        f"{pct(o.loc[CP, 'coverage'])} against {pct(ref.loc[CP, 'coverage'])} and width {fmt(o.loc[CP, 'mean_width'])} "
        f"against {fmt(ref.loc[CP, 'mean_width'])}. Our interval is the one stated in @sec-creators-baselines, for the "
        "genre mean; the brief does not say how it built its complete-pooling interval, so the coverage columns are not "
        "comparable.\n"
        f"- Hierarchical model: MSE {fmt(o.loc[PP, 'mse'], '.3f')} against {fmt(ref.loc[PP, 'mse'], '.3f')}, coverage "
        f"{pct(o.loc[PP, 'coverage'])} against {pct(ref.loc[PP, 'coverage'])}, width {fmt(o.loc[PP, 'mean_width'])} "
        f"against {fmt(ref.loc[PP, 'mean_width'])}. The brief gives neither its exact design nor how it built its "
        "intervals, so where the two differ we cannot say why; ours are checked for calibration by the replications.",
    ]
    b = by_bin.set_index(["method", "bin"])["mse"]
    small = ("n < 100" in by_bin["bin"].astype(str).values
             and np.isfinite(b.get((PP, "n < 100"), np.nan)) and np.isfinite(b.get((NP, "n < 100"), np.nan)))
    if small:
        r_small = b[(PP, "n < 100")] / b[(NP, "n < 100")]
        paras.append(f"@fig-creators-mse-bins splits the MSE by sample size.\nFor experiments with fewer than 100 users "
                     f"the hierarchical model's MSE is {pct(r_small)} of no pooling's.")
    else:
        paras.append("@fig-creators-mse-bins splits the MSE by sample size.")
    return Inline("\n\n".join(paras))


def replication_sentence(summary: pd.DataFrame, min_per_genre: int) -> Inline:
    """Whether empirical Bayes is distinguishable from the full model across replications."""
    PP, EB = "Partial pooling", "Empirical Bayes"
    gap = abs(summary.loc[EB, "mse"] - summary.loc[PP, "mse"])
    mc = np.hypot(summary.loc[EB, "mse_mc"], summary.loc[PP, "mse_mc"])
    same = gap <= 2 * mc
    head = (f"Empirical Bayes is {'indistinguishable from' if same else 'distinguishable from'} the full hierarchical "
            f"model here (MSE {fmt(summary.loc[EB, 'mse'], '.4f')}, coverage {pct(summary.loc[EB, 'coverage'], 1)})")
    if same:
        return Inline(head + f": with {count(min_per_genre)} creators per genre, the plug-in uncertainty it ignores is "
                      "negligible.")
    return Inline(head + ": the plug-in uncertainty it ignores shows.")


def bench_sentence(bench: pd.DataFrame | None, title: str | None) -> Inline:
    """The recorded sampler benchmark, naming the data it was measured on (from the record's title)."""
    if bench is None:
        return Inline("No benchmark has been recorded for this copy of the book, so there are no measured figures to quote.")
    recipe = bench[bench["version"].str.startswith("recipe")].iloc[0]
    fast = bench[bench["version"].str.startswith("fast")].iloc[0]
    ratio = fast["ESS per second"] / recipe["ESS per second"]
    size = re.search(r"([\d,]+) creators in (\d+) genres", title or "")
    on = (f"on {size.group(1)} creators in {size.group(2)} genres (the book's data file when it was recorded)"
          if size else "on the book's data file when it was recorded")
    text = (f"The recorded run was measured {on}. There the recipe sampled for {fmt(recipe['sampling s'], '.1f')} "
            f"seconds and reached a minimum bulk ESS of {count(recipe['min bulk ESS'])} with "
            f"{plural(recipe['divergences'], 'divergent transition')}; the fast version sampled for "
            f"{fmt(fast['sampling s'], '.2f')} seconds with a minimum bulk ESS of {count(fast['min bulk ESS'])}, "
            f"{plural(fast['divergences'], 'divergence')} and R-hat at most {fmt(fast['max R-hat'], '.3f')}: "
            f"{fmt(ratio, ',.0f')} times the ESS per second.")
    centered = bench[bench["version"] == "all centered"]
    if len(centered):
        c = centered.iloc[0]
        good = c["divergences"] == 0 and c["max R-hat"] <= 1.01
        text += (f" Centering both levels, without integrating anything out, {'also samples well' if good else 'does not sample cleanly'} "
                 f"on those data (minimum bulk ESS {count(c['min bulk ESS'])}, {plural(c['divergences'], 'divergence')}, "
                 f"R-hat at most {fmt(c['max R-hat'], '.3f')}).")
    return Inline(text)


def ppc_sentence(pvalues: pd.Series, checks) -> Inline:
    """The posterior predictive check's verdict, written either way, with the fit's reliability."""
    return Inline(ppc_verdict(pvalues, reproduces="the spread and the tails of the effects it was fitted to")
                  + unreliable({"the PyMC fit": checks}, "the replicated data"))


def summary_bullets(n_creators: int, n_genres: int, mse_ratio: float, coverage: float, has_truth: bool,
                    rep_ratio: float, n_reps: int, rep_coverage: float, shrink_small: float,
                    ppc: Inline, fits_ok: bool) -> Inline:
    """The chapter's summary as Markdown bullet points."""
    lines = [f"- {plural(n_creators, 'creator')} in {plural(n_genres, 'genre')}: Bambi, PyMC and empirical Bayes fit "
             "the same hierarchical model, and the PyMC version with the creators integrated out samples fastest."]
    if np.isfinite(shrink_small):
        lines.append(f"- Experiments with fewer than 100 users are pulled {pct(shrink_small)} of the way to their genre "
                     "mean on average; large ones barely move.")
    if has_truth:
        lines.append(f"- Against the simulation's truth the hierarchical model's MSE is {pct(mse_ratio)} of no pooling's, "
                     f"with {pct(coverage, 1)} coverage of nominal 95% intervals.")
    else:
        lines.append("- This data file has no simulation truth, so the methods were not scored on it.")
    lines.append(f"- Over {plural(n_reps, 'simulated data set')} its MSE averages {pct(rep_ratio)} of no pooling's and "
                 f"its intervals cover {pct(rep_coverage, 1)}.")
    lines.append(f"- Posterior predictive check: {ppc.strip()}")
    if not fits_ok:
        lines.append("- At least one fit the chapter reads failed its sampler diagnostics: its numbers above are rough.")
    return Inline("\n".join(lines))
