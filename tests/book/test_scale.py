"""hbm.book.scale: the recorded benchmark's figures."""

import pandas as pd

from hbm.book import scale as book_scale


def test_bench_summary_reads_recorded_figures(tmp_path):
    """bench_summary returns the largest EB row's figures, the single-node engine's counting, the date and the machine."""
    common = {"measured": "2026-11-30 10:00 UTC", "machine": "test box, 2 cores"}
    eb_row = {"method": "Empirical Bayes (hbm.book.scale, Dask)", "engine": "Dask 1", "events": 10, "files": 2,
              "Parquet MiB": 1.0, "aggregate s": 2.0, "suffstats s": 0.1, "fit s": 0.01, "posteriors s": 1.0,
              "users per s": 100, "client peak RSS MiB": 200, "client start RSS MiB": 150, "workers' peak RSS MiB": 900, "workers' start RSS MiB": 300, "counts MiB": 5.0,
              "posteriors MiB": 4.0, "max error vs closed form": 1e-16, **common}
    rows = [
        {**eb_row, "users": 100, "total s": 1.0},
        {**eb_row, "users": 1000, "total s": 3.5, "users per s": 285},
        {"method": "Counting only: DuckDB 9", "engine": "DuckDB 9", "users": 1000, "aggregate s": 4.0,
         "total s": 4.0, "peak RSS MiB": 700, **common},
        {"method": "Full Bayes (nutpie)", "engine": "nutpie", "users": 50, "total s": 10.0, "users per s": 5.0, **common},
        {**eb_row, "method": "Same EB job on 2 worker processes x 1 thread", "users": 1000, "total s": 6.0,
         "aggregate s": 4.5},
    ]
    path = tmp_path / "eb.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    got = book_scale.bench_summary(path)
    assert got["users"] == 1000 and got["total_s"] == 3.5 and got["users_per_s"] == 285
    assert got["steps_s"] == {"aggregate": 2.0, "suffstats": 0.1, "fit": 0.01, "posteriors": 1.0}
    assert got["client_peak_mib"] == 200 and got["client_start_mib"] == 150 and got["workers_peak_mib"] == 900 and got["workers_start_mib"] == 300
    assert got["single_node_engine"] == "DuckDB 9" and got["single_node_count_s"] == 4.0
    assert got["dask_count_s"] == 2.0 and got["small_users"] == 100
    assert got["full_bayes_users"] == 50 and got["full_bayes_users_per_s"] == 5.0
    assert got["two_process_total_s"] == 6.0 and got["two_process_count_s"] == 4.5
    assert got["measured"] == common["measured"] and got["machine"] == common["machine"]


def test_bench_summary_of_the_recorded_benchmark():
    """The committed bench/results/eb_scaling.csv has every column bench_summary reads (10M users recorded)."""
    got = book_scale.bench_summary()
    assert got["users"] >= 1_000_000
    assert got["single_node_engine"] is not None and got["measured"] and got["machine"]


def test_bench_summary_reads_the_full_bayes_rows(tmp_path):
    """bench_summary returns the full Bayes job's figures at the largest size, on the heavy-tailed log, and its agreement."""
    common = {"measured": "2026-12-02 10:00 UTC", "machine": "test box, 2 cores", "events": 10, "files": 2,
              "Parquet MiB": 1.0, "users per s": 100, "client peak RSS MiB": 200, "client start RSS MiB": 150,
              "workers' peak RSS MiB": 900, "workers' start RSS MiB": 300, "counts MiB": 5.0, "posteriors MiB": 4.0}
    eb = {**common, "engine": "Dask 1", "aggregate s": 2.0, "suffstats s": 0.1, "fit s": 0.01, "posteriors s": 1.0,
          "max error vs closed form": 1e-16}
    fb = {**common, "engine": "Dask 1, nutpie 1", "aggregate s": 2.0, "histograms s": 0.5, "fit s": 3.0, "pairs s": 1.0,
          "posteriors s": 2.0, "histogram cells": 1500, "distinct pairs": 50_000, "interval draws": 20,
          "diagnostics": "pass", "min ESS bulk": 900, "max error vs brute force": 1e-15,
          "max interval change with all draws": 1e-4, "load avg at start": 1.5}
    method = "Full Bayes on histograms (hbm.scale, Dask: 1 worker process, 2 threads, nutpie)"
    rows = [
        {**eb, "method": "Empirical Bayes (hbm.scale, Dask)", "users": 100, "total s": 1.0},
        {**eb, "method": "Empirical Bayes (hbm.scale, Dask)", "users": 1000, "total s": 4.0},
        {**fb, "method": method, "users": 100, "total s": 5.0, "full Bayes / EB time": 5.0},
        {**fb, "method": method, "users": 1000, "total s": 8.5, "full Bayes / EB time": 2.125},
        {**eb, "method": "Empirical Bayes (hbm.scale, Dask), heavy-tailed log", "users": 100, "total s": 2.0},
        {**fb, "method": method + ", heavy-tailed log", "users": 100, "total s": 30.0, "full Bayes / EB time": 15.0,
         "max plays per user": 90_000, "users with 10,000+ plays": 12},
        {"method": "Full Bayes (hbm.book.music three-level model, nutpie)", "users": 50, "total s": 10.0,
         "users per s": 5.0, **{k: common[k] for k in ("measured", "machine")}},
        {"method": "Full Bayes on histograms (hbm.scale.fit_full_bayes and pair posteriors), same users", "users": 50,
         "total s": 1.5, "diagnostics": "pass", "max gap in MCSE": 1.2, "max user mean gap": 0.001,
         "max user interval gap": 0.01, **{k: common[k] for k in ("measured", "machine")}},
    ]
    path = tmp_path / "eb.csv"
    table = pd.DataFrame(rows)
    table["model compile s (once, in the warm-up)"] = 20.0
    table.to_csv(path, index=False)
    got = book_scale.bench_summary(path)
    assert got["users"] == 1000 and got["total_s"] == 4.0  # the heavy-tailed EB row is not a size
    job = got["full_bayes_job"]
    assert job["total_s"] == 8.5 and job["ratio_to_eb"] == 2.125 and job["distinct_pairs"] == 50_000
    assert job["steps_s"] == {"aggregate": 2.0, "histograms": 0.5, "fit": 3.0, "pairs": 1.0, "posteriors": 2.0}
    assert got["full_bayes_small_job"]["total_s"] == 5.0
    heavy = got["full_bayes_heavy"]
    assert heavy["max_plays"] == 90_000 and heavy["users_10k"] == 12 and heavy["eb_total_s"] == 2.0
    assert got["full_bayes_agreement"]["max_gap_mcse"] == 1.2
    assert got["full_bayes_compile_s"] == 20.0
    assert got["full_bayes_users"] == 50 and got["full_bayes_s"] == 10.0
