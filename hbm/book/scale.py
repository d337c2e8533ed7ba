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
        ``full_bayes_s``, ``full_bayes_users_per_s``; None where absent); and ``measured``
        (UTC date and time) and ``machine``.

    Raises
    ------
    FileNotFoundError
        No recorded benchmark.
    """
    if path is None:
        path = Path(__file__).resolve().parents[2] / "bench" / "results" / "eb_scaling.csv"
    table = pd.read_csv(path)
    eb_rows = table[table["method"].str.startswith("Empirical Bayes")].set_index("users").sort_index()
    duck = table[table["method"].str.startswith("Counting only")].set_index("users")
    fb = table[table["method"].str.startswith("Full Bayes")]
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
    }
