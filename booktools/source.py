"""The book's source, shipped with the rendered book so that every reader can get the code.

The book has no public repository address, so the preface links an archive of the repository
itself: :func:`write_archive` writes ``borrowing-strength-source.tar.gz`` (the files git tracks,
as they are in the working tree; every file under the project except ignored output where git
is absent) into the rendered site. Unpacked, it is the project: ``pip install ".[book]"``
installs ``hbm`` and ``make book`` renders the book.
"""

from __future__ import annotations

import gzip
import io
import subprocess
import tarfile
from pathlib import Path

#: The archive's file name in the rendered site (the preface links it).
ARCHIVE = "borrowing-strength-source.tar.gz"
#: Its top folder when unpacked.
TOP = "borrowing-strength"
#: Never shipped when git cannot say what is tracked.
_SKIP = {".git", ".venv", "_book", "_render", "_freeze", ".cache", ".quarto", "node_modules", "__pycache__",
         ".pytest_cache", "hbm.egg-info"}


def source_files(root: Path) -> list[str]:
    """Project-relative paths of the source: ``git ls-files`` (existing files), else a walk."""
    root = Path(root)
    try:
        done = subprocess.run(["git", "ls-files", "-z"], cwd=root, capture_output=True, check=True)
        names = [n for n in done.stdout.decode().split("\0") if n]
    except (OSError, subprocess.CalledProcessError):
        names = [p.relative_to(root).as_posix() for p in root.rglob("*")
                 if p.is_file() and not _SKIP & set(p.relative_to(root).parts)]
    return sorted(n for n in names if (root / n).is_file() and not (root / n).is_symlink())


def write_archive(root: Path, site: Path) -> Path:
    """Write the source archive into ``site`` (the rendered book) and return its path.

    The archive is reproducible: members sorted, times and owners fixed.
    """
    root, site = Path(root), Path(site)
    site.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name in source_files(root):
            path = root / name
            info = tarfile.TarInfo(f"{TOP}/{name}")
            info.size = path.stat().st_size
            info.mode = 0o755 if path.stat().st_mode & 0o100 else 0o644
            info.mtime = 0
            with path.open("rb") as fh:
                tar.addfile(info, fh)
    out = site / ARCHIVE
    with out.open("wb") as fh, gzip.GzipFile(filename="", mode="wb", fileobj=fh, mtime=0) as gz:
        gz.write(buffer.getvalue())
    return out
