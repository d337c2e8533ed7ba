"""Wall time of `make test` on a fresh clone: install, the real Quarto render and every test.

A clone of the committed HEAD in a temporary folder beside this checkout (so that
``../shared/quarto`` is found as in CI), with nothing cached: no ``.venv`` (created and
installed by ``make``), no compiled models, no store of executed chapters. The Quarto found
is the one CI uses. Run it alone with ``python bench/run.py make_test`` (about 25 minutes).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pandas as pd

TITLE = "make test on a fresh clone (2 cores): install, the real Quarto render of the whole book, every test"
ROOT = Path(__file__).resolve().parents[1]


def _summary(output: str) -> str:
    lines = [ln for ln in output.splitlines() if re.search(r"\d+ (passed|failed)", ln)]
    return lines[-1].strip("= ") if lines else "no pytest summary"


def run() -> pd.DataFrame:
    parent = Path(tempfile.mkdtemp(prefix="fresh-", dir=ROOT.parent))
    clone = parent / "main"
    try:
        subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
        shared = ROOT.parent / "shared"
        if shared.exists():
            (parent / "shared").symlink_to(shared, target_is_directory=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTENSOR", "QUARTO_", "VIRTUAL_ENV"))}
        rows = []
        for step, target in (("install", "install"), ("test", "test")):
            start = time.perf_counter()
            done = subprocess.run(["make", target], cwd=clone, env=env, capture_output=True, text=True)
            rows.append({
                "step": f"make {target}",
                "minutes": round((time.perf_counter() - start) / 60, 1),
                "exit code": done.returncode,
                "result": _summary(done.stdout) if target == "test" else ("ok" if done.returncode == 0 else done.stderr[-300:]),
            })
        rows.append({"step": "total", "minutes": round(sum(r["minutes"] for r in rows), 1),
                     "exit code": max(r["exit code"] for r in rows), "result": rows[-1]["result"]})
        return pd.DataFrame(rows)
    finally:
        shutil.rmtree(parent, ignore_errors=True)
