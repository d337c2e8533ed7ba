"""Find and run the real Quarto, and read its output for errors and warnings.

``make book`` and the test suite render with the same Quarto: the ``quarto`` on ``PATH``, else
the offline Quarto that the project's machines keep beside the checkout
(``../shared/quarto/bin/quarto``), else none (the render test then skips and says why).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

#: Where the project's machines keep a Quarto that works without internet access.
SHARED_QUARTO = Path("..") / "shared" / "quarto" / "bin" / "quarto"
#: Quarto prints its own problems as lines starting with these (after colour codes).
PROBLEM_RE = re.compile(r"^(?:\x1b\[[0-9;]*m)*\s*(ERROR|WARN(?:ING)?)\b[:(]?", re.IGNORECASE)
ANSI_RE = re.compile(r"\x1b\[[0-9;]*m")


def find_quarto(root: Path | None = None) -> str | None:
    """The Quarto to render with: ``quarto`` on ``PATH``, else ``<root>/../shared/quarto/bin/quarto``.

    ``HBM_NO_QUARTO=1`` makes it ``None``: the tests then execute only the chapters they read,
    with :mod:`booktools.execute`, instead of rendering the whole book (quicker while working on
    one chapter; ``make test`` renders).
    """
    if os.environ.get("HBM_NO_QUARTO"):
        return None
    found = shutil.which("quarto")
    if found:
        return found
    candidate = (Path(root) if root else Path.cwd()) / SHARED_QUARTO
    return str(candidate.resolve()) if candidate.exists() else None


def render_env(root: Path) -> dict[str, str]:
    """The environment a render needs: the project's Python for Quarto and the PyTensor flags.

    The same values as the Makefile exports, so a render from the tests equals ``make book``.
    """
    root = Path(root).resolve()
    env = dict(os.environ)
    env.setdefault("PYTENSOR_FLAGS", pytensor_flags(root))
    env["QUARTO_PYTHON"] = sys.executable
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env


def pytensor_flags(root: Path) -> str:
    """PyTensor's flags for this project: its compile cache, and Numba's fastmath off.

    With fastmath on, a model loaded from the compile cache samples other numbers than a
    freshly compiled one for the same seed; off, a re-render is identical whether the cache is
    cold or warm (README: reproducibility).
    """
    return f"base_compiledir={Path(root).resolve() / '.cache' / 'pytensor'},numba__fastmath=False"


@dataclass
class RenderResult:
    """What one ``quarto render`` did."""

    command: list[str]
    returncode: int
    output: str
    seconds: float

    @property
    def problems(self) -> list[str]:
        """Quarto's ``ERROR``/``WARN`` lines (and Python tracebacks), colour codes removed."""
        return quarto_problems(self.output)

    @property
    def ok(self) -> bool:
        """Exit code 0 and not one error or warning."""
        return self.returncode == 0 and not self.problems


#: The one warning that is not a problem: a chapter's footer links its notebook
#: (``chapters/<name>.ipynb``), which the post-render step writes after Quarto has looked for it.
DOWNLOAD_LINK_RE = re.compile(r"^WARN: Unable to resolve link target: chapters/[\w-]+\.ipynb$")


def quarto_problems(output: str) -> list[str]:
    """Every line of a render's output that reports an error or a warning (but the notebook links of :data:`DOWNLOAD_LINK_RE`)."""
    lines = [ANSI_RE.sub("", line) for line in output.splitlines()]
    found = [line.strip() for line in lines
             if PROBLEM_RE.match(line) and not DOWNLOAD_LINK_RE.match(line.strip())]
    found += [line.strip() for line in lines if line.startswith("Traceback (most recent call last)")]
    return found


def render(root: Path, *args: str, quarto: str | None = None, timeout: float | None = None) -> RenderResult:
    """Run ``quarto render [args]`` in ``root`` and capture everything it prints.

    Raises
    ------
    FileNotFoundError
        No Quarto was found (see :func:`find_quarto`).
    """
    root = Path(root)
    quarto = quarto or find_quarto(root)
    if quarto is None:
        raise FileNotFoundError("no quarto on PATH and none at ../shared/quarto/bin/quarto")
    command = [quarto, "render", *args]
    start = time.perf_counter()
    proc = subprocess.run(command, cwd=root, env=render_env(root), stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, timeout=timeout)
    return RenderResult(command, proc.returncode, proc.stdout, time.perf_counter() - start)
