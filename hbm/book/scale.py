"""The book's side of :mod:`hbm.scale`: logs simulated from the music chapter's regions, and the recorded benchmark.

The jobs themselves (counting, histograms, the empirical Bayes and full Bayes fits, the
posterior writers) are the library's :mod:`hbm.scale`; this module only adds what is the
book's own:

- :data:`MUSIC_LOG`: the keyword arguments that make :func:`hbm.scale.log.write_play_log`
  simulate the regions, profiles and concentrations of :mod:`hbm.book.simulate`;
- :func:`bench_summary`: the figures of ``bench/results/eb_scaling.csv`` that chapter 4 quotes.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from hbm.book.data import GENRES
from hbm.book.simulate import REGION_KAPPA, REGION_PROFILES, REGIONS

__all__ = ["MUSIC_LOG", "bench_summary"]

#: ``write_play_log(path, n_users, seed=..., **MUSIC_LOG)`` simulates the music chapter's regions.
MUSIC_LOG: dict = {"profiles": REGION_PROFILES, "kappa": REGION_KAPPA, "genres": GENRES, "regions": REGIONS}


def bench_summary(path=None) -> dict:
    """The figures of the recorded EB benchmark that the chapter quotes.

    Parameters
    ----------
    path : path-like, optional
        The CSV written by ``python bench/run.py eb_scaling`` (``make bench``); default
        ``bench/results/eb_scaling.csv`` of the project this package lives in.

    Returns
    -------
    dict
        For the largest log (``users``, ``events``, ``files``, ``parquet_mib``): ``total_s``,
        ``users_per_s``, ``steps_s`` (``aggregate``, ``suffstats``, ``fit``, ``posteriors``),
        ``client_peak_mib``, ``client_start_mib``, ``workers_peak_mib``,
        ``workers_start_mib`` (the processes' memory before the job), ``counts_mib`` (the per-user counts the workers hold),
        ``posteriors_mib`` (on disk), ``max_error_vs_closed_form``,
        ``dask_engine``; the same counting by the single-node engine on the same files
        (``single_node_engine``, ``single_node_count_s``, ``single_node_peak_mib``) beside
        the job's own counting step (``dask_count_s``); the same job on two single-threaded
        worker processes (``two_process_total_s``, ``two_process_count_s``; None where
        absent); the smallest log (``small_users``,
        ``small_total_s``, ``small_users_per_s``); the full Bayes row (``full_bayes_users``,
        ``full_bayes_s``, ``full_bayes_users_per_s``; None where absent); the full Bayes job on
        histograms at the largest and smallest size (``full_bayes_job``,
        ``full_bayes_small_job``: ``total_s``, ``ratio_to_eb``, ``steps_s``, memory, cells,
        distinct pairs, diagnostics, errors), on the heavy-tailed log (``full_bayes_heavy``),
        its agreement with the per-user fit (``full_bayes_agreement``) and the model's
        one-time compilation (``full_bayes_compile_s``), each None where absent; and ``measured``
        (UTC date and time) and ``machine``.

    Raises
    ------
    FileNotFoundError
        No recorded benchmark.
    """
    if path is None:
        path = Path(__file__).resolve().parents[2] / "bench" / "results" / "eb_scaling.csv"
    table = pd.read_csv(path)
    heavy = table["method"].str.contains("heavy-tailed", regex=False)
    eb_rows = table[table["method"].str.startswith("Empirical Bayes") & ~heavy].set_index("users").sort_index()
    duck = table[table["method"].str.startswith("Counting only")].set_index("users")
    fb = table[table["method"].str.startswith("Full Bayes (")]
    two = table[table["method"].str.startswith("Same EB job on 2 worker processes")].set_index("users")
    big, small = int(eb_rows.index.max()), int(eb_rows.index.min())
    row = eb_rows.loc[big]
    single = duck.loc[big] if big in duck.index else None
    fb_row = fb.iloc[0] if len(fb) else None
    return {
        "measured": str(row["measured"]),
        "machine": str(row["machine"]),
        "users": big,
        "events": int(row["events"]),
        "files": int(row["files"]),
        "parquet_mib": float(row["Parquet MiB"]),
        "total_s": float(row["total s"]),
        "users_per_s": int(row["users per s"]),
        "steps_s": {step: float(row[f"{step} s"]) for step in ("aggregate", "suffstats", "fit", "posteriors")},
        "client_peak_mib": int(row["client peak RSS MiB"]),
        "client_start_mib": int(row["client start RSS MiB"]),
        "workers_peak_mib": int(row["workers' peak RSS MiB"]),
        "workers_start_mib": int(row["workers' start RSS MiB"]),
        "counts_mib": float(row["counts MiB"]),
        "posteriors_mib": float(row["posteriors MiB"]),
        "max_error_vs_closed_form": float(row["max error vs closed form"]),
        "dask_engine": str(row["engine"]),
        "dask_count_s": float(row["aggregate s"]),
        "single_node_engine": None if single is None else str(single["engine"]),
        "single_node_count_s": None if single is None else float(single["aggregate s"]),
        "single_node_peak_mib": None if single is None else int(single["peak RSS MiB"]),
        "two_process_total_s": float(two.loc[big, "total s"]) if big in two.index else None,
        "two_process_count_s": float(two.loc[big, "aggregate s"]) if big in two.index else None,
        "small_users": small,
        "small_total_s": float(eb_rows.loc[small, "total s"]),
        "small_users_per_s": int(eb_rows.loc[small, "users per s"]),
        "full_bayes_users": None if fb_row is None else int(fb_row["users"]),
        "full_bayes_s": None if fb_row is None else float(fb_row["total s"]),
        "full_bayes_users_per_s": None if fb_row is None else float(fb_row["users per s"]),
        **_full_bayes_figures(table, heavy, big, small),
    }


def _full_bayes_figures(table: pd.DataFrame, heavy: pd.Series, big: int, small: int) -> dict:
    """The full Bayes job's figures (None where the record has none)."""
    jobs = table["method"].str.startswith("Full Bayes on histograms (hbm.scale, Dask")
    fb = table[jobs & ~heavy].set_index("users")
    eb = table[table["method"].str.startswith("Empirical Bayes") & heavy]
    fb_heavy = table[jobs & heavy]
    agree = table[table["method"].str.startswith("Full Bayes on histograms") & table["method"].str.endswith("same users")]

    def job(users):
        if users not in fb.index:
            return None
        row = fb.loc[users]
        return {
            "total_s": float(row["total s"]), "ratio_to_eb": float(row["full Bayes / EB time"]),
            "users_per_s": int(row["users per s"]),
            "steps_s": {step: float(row[f"{step} s"]) for step in ("aggregate", "histograms", "fit", "pairs", "posteriors")},
            "client_peak_mib": int(row["client peak RSS MiB"]), "workers_peak_mib": int(row["workers' peak RSS MiB"]),
            "histogram_cells": int(row["histogram cells"]), "distinct_pairs": int(row["distinct pairs"]),
            "interval_draws": int(row["interval draws"]), "diagnostics": str(row["diagnostics"]),
            "min_ess_bulk": int(row["min ESS bulk"]), "max_error_vs_brute_force": float(row["max error vs brute force"]),
            "max_interval_change_all_draws": float(row["max interval change with all draws"]),
            "load_avg": float(row["load avg at start"]),
        }

    heavy_figures = None
    if len(fb_heavy) and len(eb):
        h, e = fb_heavy.iloc[0], eb.iloc[0]
        heavy_figures = {
            "users": int(h["users"]), "events": int(h["events"]), "max_plays": int(h["max plays per user"]),
            "users_10k": int(h["users with 10,000+ plays"]), "eb_total_s": float(e["total s"]),
            "total_s": float(h["total s"]), "ratio_to_eb": float(h["full Bayes / EB time"]),
            "fit_s": float(h["fit s"]), "pairs_s": float(h["pairs s"]),
            "histogram_cells": int(h["histogram cells"]), "distinct_pairs": int(h["distinct pairs"]),
            "diagnostics": str(h["diagnostics"]), "max_error_vs_brute_force": float(h["max error vs brute force"]),
        }
    agreement = None
    if len(agree):
        a = agree.iloc[0]
        agreement = {"users": int(a["users"]), "total_s": float(a["total s"]), "max_gap_mcse": float(a["max gap in MCSE"]),
                     "max_user_mean_gap": float(a["max user mean gap"]),
                     "max_user_interval_gap": float(a["max user interval gap"]), "diagnostics": str(a["diagnostics"])}
    compile_col = "model compile s (once, in the warm-up)"
    return {
        "full_bayes_job": job(big),
        "full_bayes_small_job": job(small),
        "full_bayes_heavy": heavy_figures,
        "full_bayes_agreement": agreement,
        "full_bayes_compile_s": float(table[compile_col].iloc[0]) if compile_col in table else None,
    }
