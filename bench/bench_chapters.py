"""Wall time of each chapter, executed as Quarto's Jupyter engine would (booktools.execute)."""

from pathlib import Path

import pandas as pd

from booktools import checks as quarto
from booktools.execute import execute_chapter

TITLE = "Execution time of each chapter (fresh kernel, as Quarto's Jupyter engine runs it)"
ROOT = Path(__file__).resolve().parents[1]


def run() -> pd.DataFrame:
    rows = []
    for name in quarto.book_files(ROOT):
        if not name.endswith(".qmd"):
            continue
        executed = execute_chapter(ROOT / name, root=ROOT)
        rows.append({
            "chapter": name,
            "seconds": round(executed.seconds, 1),
            "python cells": len(executed.cells),
            "inline values": len(executed.inline),
            "status": "ok" if executed.error is None else executed.error,
        })
    return pd.DataFrame(rows)
