"""A chapter's visible code, as a reader copies it: extracted, and run on its own.

The third kind of reader copies a chapter's code into their own project. What they can copy is
every code cell the page shows (folded chart code included: one click unfolds it), in order.
:func:`visible_cells` extracts those cells from a ``.qmd`` (Quarto ``{{< include >}}``
shortcodes resolved, ``#|`` option lines dropped); :func:`run` runs them as one plain Python
script in a fresh interpreter, in an empty folder that holds only copies of the chapter's data
files under ``data/``, with the ``hbm`` library importable and ``hbm.book`` (the book's own
machinery) blocked. A visible cell that uses a name only a hidden cell defines, or calls the
book's sentence helpers, fails there.

Fast mode (the default) caps every sampler call at :data:`hbm.book.common.FAST_CAPS` and turns
the remedy policy's refits off, as ``quarto render -P fast:true`` does; that is the runner's
doing, before the reader's code starts, not part of the code.

Command line::

    python -m booktools.copyscript chapters/intro.qmd [--full] [--keep DIR] [--key EXPR ...]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import textwrap
from dataclasses import dataclass
from pathlib import Path

from booktools.execute import INCLUDE_RE, read_chapter, resolve_includes

ROOT = Path(__file__).resolve().parents[1]
HIDDEN = {"include": "false", "echo": "false"}

#: Run before the reader's code (never shown to readers): fast mode, and ``hbm.book`` blocked.
PRELUDE = """\
import sys

if {fast}:
    from hbm.book.common import _cap_samplers

    _cap_samplers()
for _name in [n for n in sys.modules if n == "hbm.book" or n.startswith("hbm.book.")]:
    del sys.modules[_name]


class _NoBook:
    def find_spec(self, name, path=None, target=None):
        if name == "hbm.book" or name.startswith("hbm.book."):
            raise ImportError(
                f"{{name}}: the book's own machinery is not available to copied code"
            )
        return None


sys.meta_path.insert(0, _NoBook())
del _NoBook, _name
"""

#: Run after the reader's code: the key expressions' values, written as JSON.
EPILOGUE = """\
import json as _json

_keys = {keys!r}
_out = {{}}
for _k in _keys:
    _v = eval(_k)
    try:
        _out[_k] = float(_v)
    except (TypeError, ValueError):
        _out[_k] = str(_v)
with open("copy-keys.json", "w") as _fh:
    _json.dump(_out, _fh)
"""


def included_files(qmd: str | os.PathLike) -> list[Path]:
    """The files a ``.qmd`` includes with ``{{< include >}}``, resolved."""
    path = Path(qmd)
    text = path.read_text(encoding="utf-8")
    return [(path.parent / m.group(1)).resolve() for m in INCLUDE_RE.finditer(text)]


def is_visible(options: dict[str, str]) -> bool:
    """Whether a cell with these ``#|`` options shows its code on the page."""
    return not any(options.get(key, "").lower() == value for key, value in HIDDEN.items())


def visible_cells(qmd: str | os.PathLike) -> list[str]:
    """The code of every cell the page shows, in order, option lines dropped, includes resolved."""
    path = Path(qmd)
    _, cells, _ = read_chapter(path)
    out = []
    for cell in cells:
        if not is_visible(cell.options):
            continue
        lines = [line for line in cell.source.splitlines() if not line.startswith("#|")]
        out.append(resolve_includes("\n".join(lines).strip("\n"), path.parent))
    return out


def code_lines(qmd: str | os.PathLike) -> dict[str, int]:
    """Non-blank code lines a reader sees: ``open`` (models, fits, summaries) and ``folded`` (charts)."""
    path = Path(qmd)
    _, cells, _ = read_chapter(path)
    counts = {"open": 0, "folded": 0}
    for cell in cells:
        if not is_visible(cell.options):
            continue
        lines = [line for line in cell.source.splitlines() if not line.startswith("#|")]
        code = resolve_includes("\n".join(lines), path.parent)
        n = sum(1 for line in code.splitlines() if line.strip())
        counts["folded" if cell.options.get("code-fold", "").lower() == "true" else "open"] += n
    return counts


def script(qmd: str | os.PathLike, *, fast: bool = True, keys: list[str] | tuple[str, ...] = ()) -> str:
    """The runnable script: prelude, the visible cells in order, and the key-value epilogue."""
    parts = [PRELUDE.format(fast=bool(fast))]
    for i, code in enumerate(visible_cells(qmd), start=1):
        parts.append(f"# --- visible cell {i} ---\n{code}\n")
    if keys:
        parts.append(EPILOGUE.format(keys=list(keys)))
    return "\n".join(parts)


def data_files(qmd: str | os.PathLike, root: Path = ROOT) -> list[str]:
    """The data files the chapter reads (``chapters/_inputs.yml``), relative to ``root``."""
    from booktools.freshness import read_manifest

    rel = Path(qmd).resolve().relative_to(root.resolve()).as_posix()
    inputs = read_manifest(root).get(rel)
    if inputs is None:
        raise KeyError(f"{rel} is not in chapters/_inputs.yml")
    return list(inputs.data)


@dataclass
class CopyRun:
    """What one run of a chapter's copied code did."""

    returncode: int
    output: str
    keys: dict
    folder: Path

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    def tail(self, lines: int = 40) -> str:
        return "\n".join(self.output.splitlines()[-lines:])


def run(qmd: str | os.PathLike, *, root: Path = ROOT, keys=(), fast: bool = True, data_dir: Path | None = None,
        folder: Path | None = None, timeout: int = 1800) -> CopyRun:
    """Run a chapter's visible code as a script in a fresh interpreter and an empty folder.

    Parameters
    ----------
    qmd : path
        The chapter.
    root : Path
        The project root (where ``chapters/_inputs.yml`` and ``data/`` are).
    keys : sequence of str
        Expressions evaluated in the script's namespace at its end; their values come back in
        ``CopyRun.keys`` (floats where they convert).
    fast : bool
        Cap the samplers as fast mode does.
    data_dir : Path, optional
        Take the data files from here instead of ``root / "data"``.
    folder : Path, optional
        Run here (created empty) instead of a temporary folder that is removed afterwards.
    """
    qmd = Path(qmd)
    if not qmd.is_absolute():
        qmd = root / qmd
    temp = None
    if folder is None:
        temp = tempfile.TemporaryDirectory(prefix="copy-")
        folder = Path(temp.name)
    folder.mkdir(parents=True, exist_ok=True)
    try:
        source = Path(data_dir) if data_dir is not None else root / "data"
        (folder / "data").mkdir(exist_ok=True)
        for rel in data_files(qmd, root):
            src = source / Path(rel).name
            if src.exists():
                shutil.copy(src, folder / "data" / src.name)
        (folder / "chapter.py").write_text(script(qmd, fast=fast, keys=list(keys)), encoding="utf-8")
        env = dict(os.environ)
        env.pop("PYTHONPATH", None)
        # The hbm library of this checkout (not the book's modules: the prelude blocks them).
        env["PYTHONPATH"] = str(root)
        env.setdefault("MPLBACKEND", "Agg")
        done = subprocess.run([sys.executable, "chapter.py"], cwd=folder, env=env, capture_output=True,
                              text=True, timeout=timeout)
        values = {}
        if (folder / "copy-keys.json").exists():
            values = json.loads((folder / "copy-keys.json").read_text())
        return CopyRun(done.returncode, done.stdout + done.stderr, values, folder)
    finally:
        if temp is not None:
            temp.cleanup()


def lines_table(root: Path = ROOT) -> str:
    """The README's table: per chapter, the visible model code and the folded chart code, in lines."""
    from booktools.freshness import computational_chapters

    rows = ["| chapter | open code lines (models, fits, summaries) | folded chart lines |", "|---|---:|---:|"]
    for chapter in computational_chapters(root):
        n = code_lines(root / chapter)
        rows.append(f"| `{chapter}` | {n['open']} | {n['folded']} |")
    return "\n".join(rows)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("chapter", nargs="?", help="the chapter (omit with --table)")
    parser.add_argument("--table", action="store_true", help="print the README's table of code lines and exit")
    parser.add_argument("--full", action="store_true", help="do not cap the samplers")
    parser.add_argument("--keep", type=Path, help="run in this folder and keep it")
    parser.add_argument("--key", action="append", default=[], help="an expression to report")
    parser.add_argument("--print", action="store_true", help="print the script and exit")
    parser.add_argument("--lines", action="store_true", help="print the open and folded code lines and exit")
    args = parser.parse_args(argv)
    if args.table:
        print(lines_table())
        return 0
    if args.chapter is None:
        parser.error("a chapter is needed")
    if args.lines:
        print(code_lines(args.chapter))
        return 0
    if args.print:
        print(script(args.chapter, fast=not args.full, keys=args.key))
        return 0
    result = run(args.chapter, keys=args.key, fast=not args.full, folder=args.keep)
    print(result.tail(60) if not result.ok else textwrap.shorten(result.output, 2000))
    for key, value in result.keys.items():
        print(f"{key} = {value}")
    print("copy run:", "ok" if result.ok else f"FAILED (exit {result.returncode})")
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
