"""Quarto pre-render hook: re-execute exactly the chapters whose inputs changed.

Registered in ``_quarto.yml`` (``project: pre-render``). Quarto runs it from the project root
with its Python (``QUARTO_PYTHON``; ``make book`` sets it to ``.venv/bin/python``). It prints
which chapters will re-run and why, deletes exactly their frozen results and Jupyter-cache
entries, and exits non-zero (so the render stops before executing anything) when a changed
data file fails validation. The logic is in :func:`booktools.freshness.pre_render`.
"""

import sys
from pathlib import Path

# The project's own hbm, even if another copy is installed.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

try:
    from booktools.freshness import main
except ImportError as exc:
    sys.exit(f"scripts/pre_render.py: cannot import booktools.freshness ({exc}); render with `make book`, "
             "or set QUARTO_PYTHON to the project's .venv/bin/python")

if __name__ == "__main__":
    sys.exit(main(["pre-render"]))
