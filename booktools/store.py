"""The store of executed chapters: jupyter-cache, keyed by each chapter's full fingerprint.

Quarto's own ``execute: cache: true`` refuses inline expressions, which the book needs, so
jupyter-cache plays another role here: it keeps every executed chapter (the executed notebook,
with its inline values in Quarto's ``user_expressions`` layout, and the named results the
chapter's last cell pickled with :func:`hbm.book.common.save_results`) under the chapter's full
fingerprint (:func:`booktools.freshness.fingerprint`: its ``.qmd``, data files, ``hbm`` modules
and stack versions). Two writers fill it:

* the post-render step files what Quarto executed during ``make book`` (``keep-ipynb``);
* :func:`booktools.execute.execute_chapter` runs (the own-data variants of the tests, or every
  chapter where Quarto is absent) are filed by :func:`execute_and_store`.

Readers (the tests, the benchmarks) call :func:`get`; a repeated ``make test`` with nothing
changed re-executes nothing. The store lives in :data:`STORE_DIR` (``.cache/executed``).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import nbformat
from jupyter_cache.base import CacheBundleIn
from jupyter_cache.cache.db import NbCacheRecord
from jupyter_cache.cache.main import JupyterCacheBase, NbArtifacts

from booktools.execute import InlineResult, inline_results, shown_prose

#: The store's folder, relative to the project root.
STORE_DIR = ".cache/executed"
#: Notebook metadata key that carries the chapter and fingerprint (part of the hash).
META_KEY = "booktools"
NOTEBOOK_FILE = "executed.ipynb"
RESULTS_FILE = "results.pkl"


def fingerprint_key(fingerprint: Mapping) -> str:
    """A short, stable key for a fingerprint: SHA-256 of its canonical JSON, 16 hex digits."""
    text = json.dumps(fingerprint, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


class _FingerprintCache(JupyterCacheBase):
    """jupyter-cache whose hash covers the fingerprint too, so variants never overwrite each other."""

    def create_hashed_notebook(self, nb, nb_metadata=("kernelspec", META_KEY), cell_metadata=None):
        return super().create_hashed_notebook(nb, nb_metadata=nb_metadata, cell_metadata=cell_metadata)


def _cache(root: Path) -> _FingerprintCache:
    path = Path(root) / STORE_DIR
    path.mkdir(parents=True, exist_ok=True)
    return _FingerprintCache(str(path))


@dataclass
class StoredChapter:
    """An executed chapter from the store: notebook, inline results and named results."""

    chapter: str
    key: str
    notebook: nbformat.NotebookNode
    results: dict
    seconds: float | None = None

    @property
    def inline_results(self) -> list[InlineResult]:
        """Every inline value, in document order (an expression may occur more than once)."""
        return inline_results(self.notebook)

    @property
    def inline(self) -> dict[str, str]:
        """Expression -> the text the page shows (first occurrence)."""
        out: dict[str, str] = {}
        for item in self.inline_results:
            out.setdefault(item.expr, item.text)
        return out

    @property
    def prose(self) -> str:
        """The chapter's text as the page reads it: markdown with every inline value in place."""
        return shown_prose(self.notebook)

    def __getitem__(self, name: str):
        return self.results[name]

    def value(self, expr: str):
        """Evaluate ``expr`` over the chapter's named results (with ``np``, ``pd``, ``az``)."""
        import arviz as az
        import numpy as np
        import pandas as pd

        namespace = {"np": np, "pd": pd, "az": az}
        namespace.update(self.results)
        return eval(expr, namespace)  # noqa: S307 - our own test expressions


def put(root: Path, chapter: str, key: str, notebook: nbformat.NotebookNode, results_file: Path,
        seconds: float | None = None) -> None:
    """File an executed chapter under ``(chapter, key)``, replacing an older record of it."""
    remove(root, chapter, key)
    nb = nbformat.from_dict(json.loads(json.dumps(notebook)))
    nb.metadata[META_KEY] = {"chapter": chapter, "key": key}
    with tempfile.TemporaryDirectory() as tmp:
        nbformat.write(nb, Path(tmp) / NOTEBOOK_FILE)
        shutil.copyfile(results_file, Path(tmp) / RESULTS_FILE)
        bundle = CacheBundleIn(
            nb, uri=chapter, data={"key": key, "seconds": seconds},
            artifacts=NbArtifacts([Path(tmp) / NOTEBOOK_FILE, Path(tmp) / RESULTS_FILE], in_folder=tmp),
        )
        _cache(root).cache_notebook_bundle(bundle, check_validity=False, overwrite=True)


def _records(root: Path, chapter: str) -> list[NbCacheRecord]:
    if not (Path(root) / STORE_DIR / "global.db").exists():
        return []
    return [r for r in _cache(root).list_cache_records() if r.uri == chapter]


def has(root: Path, chapter: str, key: str) -> bool:
    """Whether the store holds ``chapter`` executed with fingerprint ``key``."""
    return any(r.data.get("key") == key for r in _records(root, chapter))


def get(root: Path, chapter: str, key: str) -> StoredChapter | None:
    """The stored execution of ``chapter`` with fingerprint ``key``, or ``None``."""
    from hbm.book.common import load_results

    for record in _records(root, chapter):
        if record.data.get("key") != key:
            continue
        bundle = _cache(root).get_cache_bundle(record.pk)
        folder = Path(bundle.artifacts.in_folder)
        try:
            nb = nbformat.read(folder / NOTEBOOK_FILE, as_version=4)
            results = load_results(folder / RESULTS_FILE)
        except OSError:
            return None
        return StoredChapter(chapter, key, nb, results, record.data.get("seconds"))
    return None


def remove(root: Path, chapter: str, key: str | None = None) -> int:
    """Remove the records of ``chapter`` (only those with ``key`` if given); return how many."""
    removed = 0
    for record in _records(root, chapter):
        if key is None or record.data.get("key") == key:
            try:
                _cache(root).remove_cache(record.pk)
            except KeyError:
                NbCacheRecord.remove_records([record.pk], _cache(root).db)
            removed += 1
    return removed


# --------------------------------------------------------------------------- executing


class ChapterFailed(RuntimeError):
    """A chapter raised while it was executed for the store; the message says where and why."""


def project_fingerprint(root: Path, chapter: str, project: Path | None = None) -> dict:
    """The fingerprint of ``chapter`` as it stands in ``project`` (default: ``root``).

    ``project`` is a copy of the chapter and ``data/`` (an own-data variant): its ``.qmd`` and
    data files are hashed there, the ``hbm`` modules in ``root``.
    """
    from booktools import freshness

    root = Path(root)
    project = Path(project) if project is not None else root
    inputs = freshness.read_manifest(root).get(chapter) or freshness._unrecorded_inputs(root)
    fp = freshness.fingerprint(root, chapter, inputs, freshness.stack_versions())
    if project != root:
        fp["source"] = freshness._sha256(project / chapter)
        data_files = sorted(p.relative_to(project).as_posix() for p in (project / "data").rglob("*") if p.is_file())
        fp["inputs"] = {path: sha for path, sha in fp["inputs"].items() if path not in inputs.data}
        fp["inputs"].update({path: freshness._sha256(project / path) for path in data_files})
    return fp


def ensure(root: Path, chapter: str, *, project: Path | None = None, uri: str | None = None,
           timeout: int = 1800, parameters: dict | None = None, lock=None) -> StoredChapter:
    """The stored execution of ``chapter``, executing it first if the store lacks it.

    Parameters
    ----------
    root : pathlib.Path
        The project root (the store lives there).
    chapter : str
        The chapter, relative to the project root (``chapters/intro.qmd``).
    project : pathlib.Path, optional
        A copy of the project in which to run it (an own-data variant); default ``root``.
    uri : str, optional
        The store's name for this execution (default: ``chapter``; variants use
        ``chapters/intro.qmd#reordered``).
    timeout : int
        Seconds allowed per cell.
    parameters : dict, optional
        Values for the chapter's parameters cell (``{"fast": True}``); part of the key.
    lock : threading.Lock, optional
        Held while the store is read or written, when several threads run chapters at once
        (the execution itself runs outside it).

    Raises
    ------
    ChapterFailed
        The chapter raised; nothing is stored.
    """
    from booktools.execute import execute_chapter
    from hbm.book.common import results_path

    root = Path(root)
    project = Path(project) if project is not None else root
    uri = uri or chapter
    fp = project_fingerprint(root, chapter, project)
    if parameters:
        fp["parameters"] = {k: repr(v) for k, v in sorted(parameters.items())}
    key = fingerprint_key(fp)
    lock = lock if lock is not None else contextlib.nullcontext()
    with lock:
        found = get(root, uri, key)
    if found is not None:
        return found
    results = project / results_path(Path(chapter).stem)
    results.unlink(missing_ok=True)
    executed = execute_chapter(project / chapter, root=project, timeout=timeout, parameters=parameters)
    if executed.error:
        raise ChapterFailed(executed.error)
    if not results.exists():
        raise ChapterFailed(f"{chapter}: ran, but saved no results (it must end with a save_results cell)")
    with lock:
        remove(root, uri)  # older fingerprints of the same execution
        put(root, uri, key, executed.notebook, results, executed.seconds)
        return get(root, uri, key)
