"""Quarto post-render hook: store the fingerprints of the chapters just rendered.

Registered in ``_quarto.yml`` (``project: post-render``); Quarto runs it only after a
successful render, from the project root. The logic is in :func:`booktools.freshness.post_render`.
"""

import sys
from pathlib import Path

# The project's own hbm, even if another copy is installed.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

try:
    from booktools.freshness import main
except ImportError as exc:
    sys.exit(f"scripts/post_render.py: cannot import booktools.freshness ({exc}); render with `make book`, "
             "or set QUARTO_PYTHON to the project's .venv/bin/python")

if __name__ == "__main__":
    sys.exit(main(["post-render"]))
