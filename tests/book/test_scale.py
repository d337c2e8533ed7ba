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
