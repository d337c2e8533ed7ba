"""Benchmark harness: ``make bench`` runs every ``bench/bench_*.py`` and writes its table.

Each benchmark module defines ``TITLE`` (a sentence) and ``run() -> pandas.DataFrame``. The
harness writes ``bench/results/<name>.csv`` (for chapters to read) and ``<name>.md`` (for
people), with the machine and date, and prints the table. ``python bench/run.py NAME ...``
runs only the named benchmarks (``chapters``, ``eb_scaling``, ...).

Performance is measured here, never asserted by timing in the tests.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import os
import platform
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"


def discover() -> dict[str, Path]:
    """Benchmark name -> module path, for every ``bench_<name>.py`` beside this file."""
    return {p.stem.removeprefix("bench_"): p for p in sorted(HERE.glob("bench_*.py"))}


def load(path: Path):
    """Import a benchmark module from its path."""
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def machine() -> str:
    """A one-line description of where the benchmark ran."""
    return f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"


def write(name: str, title: str, table) -> Path:
    """Write the table as CSV and Markdown under bench/results/."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    table.to_csv(RESULTS / f"{name}.csv", index=False)
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    md = f"# {title}\n\nMeasured {stamp} on {machine()}.\n\n{table.to_markdown(index=False)}\n"
    (RESULTS / f"{name}.md").write_text(md, encoding="utf-8")
    return RESULTS / f"{name}.md"


def main(argv: list[str]) -> int:
    available = discover()
    names = argv or list(available)
    unknown = [n for n in names if n not in available]
    if unknown:
        print(f"unknown benchmark(s) {unknown}; available: {sorted(available)}", file=sys.stderr)
        return 2
    for name in names:
        module = load(available[name])
        print(f"== {name}: {module.TITLE}", flush=True)
        table = module.run()
        path = write(name, module.TITLE, table)
        print(table.to_string(index=False))
        print(f"-> {path.relative_to(HERE.parent)}\n", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
