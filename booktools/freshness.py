"""Re-execute exactly the chapters whose inputs changed since they were last rendered.

Quarto's freeze (``execute: freeze: auto``) keys on a chapter's source alone, so after a reader
swaps a CSV in ``data/`` or edits an ``hbm`` module a re-render would show the old numbers.
This module closes that gap, files what Quarto executed, and publishes only complete renders.

* **Inputs.** Each computational chapter's inputs (the data files it reads through
  :mod:`hbm.book.data` and the ``hbm`` modules it imports, transitively) are *recorded by executing
  it*: :data:`hbm.book.data.READ_LOG` lists every file the loaders read and ``sys.modules`` every
  ``hbm`` module imported, read from the chapter's live kernel (``record``) or from the results
  its last cell saved (the store), by :func:`chapter_inputs`. They are kept in the committed
  manifest :data:`MANIFEST` (``chapters/_inputs.yml``), written by
  ``python -m booktools.freshness record`` and checked against the last execution of every
  chapter by ``tests/test_freshness.py``. A chapter missing from the manifest counts every data
  file and every ``hbm`` module as its input, so it is never left stale.
* **Fingerprints.** A chapter's fingerprint is the SHA-256 of its ``.qmd`` and of each input
  file, plus the versions of the pinned stack (:data:`STACK`) and of Python. The fingerprints of
  the last successful render live in :data:`FINGERPRINTS` (``_freeze/.fingerprints.json``); a
  chapter is also stale when the store of executed chapters (:mod:`booktools.store`) lacks its
  execution under the current fingerprint.
* **Pre-render** (:func:`pre_render`, run by Quarto through ``scripts/pre_render.py``): validate
  every data file the book reads with its :mod:`hbm.book.data` loader (a bad file stops the render
  before anything is deleted or executed), print one line per stale chapter saying why, delete
  exactly those chapters' ``_freeze/`` entries and store records, and keep the new
  fingerprints and the stale chapters as pending (:data:`PENDING`, :data:`PENDING_STALE`).
* **Post-render** (:func:`post_render`, ``scripts/post_render.py``): Quarto runs it only after
  a successful render. It files the notebooks Quarto executed (``keep-ipynb``) and the results
  they saved in the store, stores their fingerprints, makes the render read offline
  (:mod:`booktools.offline`) and copies it from :data:`RENDER_DIR` to :data:`PUBLISHED` when it
  holds every page (:func:`publish`), so a failed render leaves the last good book in place.

Documented Quarto behaviour relied on (Quarto >= 1.4; source files of quarto-cli named)
------------------------------------------------------------------------------------------
* ``project: pre-render/post-render`` scripts run with the project directory as working
  directory; a ``.py`` script runs with Quarto's Python (``QUARTO_PYTHON`` if set, else
  ``python3`` on ``PATH``; ``src/core/run/python.ts``, ``src/core/jupyter/exec.ts``). Both get
  ``QUARTO_PROJECT_RENDER_ALL`` ("1" for a render of the whole project) and
  ``QUARTO_PROJECT_OUTPUT_DIR``; pre-render also gets ``QUARTO_PROJECT_INPUT_FILES`` and
  post-render ``QUARTO_PROJECT_OUTPUT_FILES``, newline-separated paths relative to the project
  directory; with ``QUARTO_USE_FILE_FOR_PROJECT_INPUT_FILES`` (or ``..._OUTPUT_FILES``) set the
  list is written to that file instead (https://quarto.org/docs/projects/scripts.html).
* A script that exits non-zero makes the render fail before anything is executed (pre-render)
  (``runScripts`` in ``src/command/render/project.ts`` throws on ``!result.success``), and
  post-render scripts run only when the render had no error.
* Frozen results of ``<dir>/<stem>.qmd`` live in ``_freeze/<dir>/<stem>/``
  (``execute-results/html.json`` and figure folders; ``asFreezerDir`` in
  ``src/command/render/freeze.ts`` drops the ``_files`` suffix); Quarto keeps a hidden copy with
  the same layout under ``.quarto/_freeze/``. A frozen result is used when its stored hash of
  the source matches, so deleting the folder forces execution.
* Quarto 1.7 writes the executed notebook of ``<dir>/<stem>.qmd`` to
  ``<dir>/<stem>.quarto_ipynb`` (inline values in each markdown cell's ``user_expressions``)
  and, with ``keep-ipynb``, deletes it only when the project render ends, after post-render
  (``cleanupFileInformationCache`` in ``src/project/project-shared.ts``).
"""

from __future__ import annotations

import hashlib
import inspect
import json
import os
import pickle
import platform
import re
import shutil
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import yaml

from booktools import store
from booktools.offline import make_offline
from booktools.source import write_archive
from hbm.book.common import INPUTS_PROBE

__all__ = [
    "MANIFEST",
    "FINGERPRINTS",
    "PENDING",
    "STACK",
    "KERNEL_PROBE",
    "ChapterInputs",
    "is_computational",
    "computational_chapters",
    "inputs_from_kernel_state",
    "chapter_inputs",
    "read_manifest",
    "write_manifest",
    "record",
    "stack_versions",
    "fingerprint",
    "changes",
    "stale_chapters",
    "loaders",
    "validate_inputs",
    "freeze_dirs",
    "invalidate",
    "executed_notebook",
    "file_executed",
    "publish",
    "status",
    "pre_render",
    "post_render",
    "main",
]

#: The committed record of each chapter's inputs, relative to the project root.
MANIFEST = "chapters/_inputs.yml"
#: Fingerprints of the chapters as last rendered: Quarto's state, not in git.
FINGERPRINTS = "_freeze/.fingerprints.json"
#: Fingerprints of the chapters being rendered, stored by :func:`post_render` on success.
PENDING = "_freeze/.fingerprints.pending.json"
#: The chapters that :func:`pre_render` found stale, i.e. that Quarto re-executes.
PENDING_STALE = "_freeze/.stale.pending.json"
#: Where Quarto renders (``output-dir`` in ``_quarto.yml``) and where a complete render is published.
RENDER_DIR = "_render"
PUBLISHED = "_book"
#: Distributions whose versions are part of every fingerprint (the pinned stack and ``hbm``;
#: ArviZ 1.x computes its summaries in arviz-base/arviz-stats, so those count too).
STACK = (
    "bambi", "pymc", "pytensor", "arviz", "arviz-base", "arviz-stats", "nutpie",
    "numpy", "pandas", "altair", "scipy", "hbm",
)
#: Where chapters without a manifest entry may read from: all of it counts as their input.
DATA_DIR = "data"
PACKAGE_DIR = "hbm"

#: One expression evaluated in an executed chapter's kernel: what the loaders read, which
#: ``hbm`` modules are imported (name -> file) and the kernel's working directory. The same
#: expression that :func:`hbm.book.common.save_results` keeps with a chapter's results.
KERNEL_PROBE = INPUTS_PROBE

_PYTHON_CHUNK = re.compile(r"^```+\s*\{python[\s,}]")
_FORMAT = 1  # version of the fingerprint files' layout


@dataclass(frozen=True)
class ChapterInputs:
    """What a chapter reads: data files and ``hbm`` module sources, as project-relative paths.

    Attributes
    ----------
    data : tuple of str
        Files read through :mod:`hbm.book.data` (CSV files and truth files), sorted.
    modules : tuple of str
        Source files of the ``hbm`` modules imported, transitively, sorted
        (e.g. ``hbm/__init__.py``, ``hbm/book/data.py``).
    """

    data: tuple[str, ...] = ()
    modules: tuple[str, ...] = ()

    @property
    def files(self) -> tuple[str, ...]:
        """All input files: ``data`` then ``modules``."""
        return self.data + self.modules


# --------------------------------------------------------------------------- chapters


def _rel(path: str | os.PathLike, root: Path) -> str:
    """``path`` relative to ``root`` in POSIX form; absolute if it lies outside ``root``."""
    p = Path(path)
    p = p if p.is_absolute() else Path(root) / p
    try:
        return p.resolve().relative_to(Path(root).resolve()).as_posix()
    except ValueError:
        return p.resolve().as_posix()


def is_computational(path: Path) -> bool:
    """Whether a ``.qmd`` has a Python chunk (so Quarto executes, freezes and caches it)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError:
        return False
    return any(_PYTHON_CHUNK.match(line) for line in text.splitlines())


def computational_chapters(root: Path, files: Iterable[str] | None = None) -> list[str]:
    """The ``.qmd`` files with Python chunks among ``files`` (default: the book's files).

    Parameters
    ----------
    root : pathlib.Path
        The project root.
    files : iterable of str, optional
        Paths relative to ``root`` or absolute; default: every file ``_quarto.yml`` lists.

    Returns
    -------
    list of str
        Project-relative POSIX paths, in the given order, without duplicates.
    """
    root = Path(root)
    if files is None:
        from booktools.checks import book_files

        files = book_files(root)
    out: list[str] = []
    for name in files:
        rel = _rel(name, root)
        if rel.endswith(".qmd") and rel not in out and is_computational(root / rel):
            out.append(rel)
    return out


def _module_file(name: str, file: str | None) -> str:
    """Project-relative source of module ``name``: ``hbm.book.data`` -> ``hbm/book/data.py``.

    Derived from the name, not from ``file``, so it is the same wherever ``hbm`` is installed
    (an editable install, a copy of the project); ``file`` only says whether it is a package.
    """
    parts = name.split(".")
    if file is not None and Path(file).name == "__init__.py":
        return "/".join(parts) + "/__init__.py"
    return "/".join(parts) + ".py"


def inputs_from_kernel_state(state: Mapping, root: Path) -> ChapterInputs:
    """Turn what :data:`KERNEL_PROBE` returned into a chapter's inputs.

    Parameters
    ----------
    state : mapping
        ``reads`` (paths the loaders read, in order, repeats allowed), ``modules`` (imported
        ``hbm`` module name -> its ``__file__``) and ``cwd`` (the kernel's working directory,
        against which relative reads are resolved).
    root : pathlib.Path
        The project root; paths are made relative to it.

    Returns
    -------
    ChapterInputs
    """
    cwd = Path(state.get("cwd") or root)
    data = sorted({_rel(p if Path(p).is_absolute() else cwd / p, root) for p in state.get("reads", [])})
    modules = sorted(
        {_module_file(name, file) for name, file in state.get("modules", {}).items() if file}
    )
    return ChapterInputs(tuple(data), tuple(modules))


def chapter_inputs(executed, root: Path) -> ChapterInputs:
    """The inputs of a chapter that has run, read from its live kernel.

    Call it right after execution, before anything else runs in that kernel (a later
    ``executed.value("load_music()")`` would add to what the chapter seems to read).

    Parameters
    ----------
    executed : booktools.execute.ExecutedChapter or booktools.store.StoredChapter
        Executed with ``keep_kernel=True``, or from the store (whose named results carry what
        :func:`hbm.book.common.save_results` saw at the end of the chapter).
    root : pathlib.Path
        The project root.

    Returns
    -------
    ChapterInputs
    """
    results = getattr(executed, "results", None)
    if results is not None and "__inputs__" in results:
        return inputs_from_kernel_state(results["__inputs__"], root)
    return inputs_from_kernel_state(executed.value(KERNEL_PROBE), root)


# --------------------------------------------------------------------------- manifest

_MANIFEST_HEADER = """\
# The inputs of each computational chapter: the data files it reads through hbm.book.data and the
# hbm modules it imports (transitively), recorded by executing the chapter. Generated by
#   python -m booktools.freshness record [CHAPTER ...]
# do not edit by hand. tests/test_freshness.py checks it against what each chapter really
# reads; scripts/pre_render.py re-executes a chapter when one of these files changed.
"""


def read_manifest(root: Path) -> dict[str, ChapterInputs]:
    """The recorded inputs of each chapter (empty if :data:`MANIFEST` does not exist).

    Raises
    ------
    ValueError
        The manifest is not a mapping of chapter -> ``{data: [...], modules: [...]}``.
    """
    path = Path(root) / MANIFEST
    if not path.exists():
        return {}
    raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    if not isinstance(raw, dict):
        raise ValueError(f"{MANIFEST}: expected a mapping of chapter -> inputs")
    out = {}
    for chapter, entry in raw.items():
        entry = entry or {}
        if not isinstance(entry, dict) or set(entry) - {"data", "modules"}:
            raise ValueError(f"{MANIFEST}: {chapter}: expected the keys 'data' and 'modules'")
        out[str(chapter)] = ChapterInputs(
            tuple(sorted(map(str, entry.get("data") or []))),
            tuple(sorted(map(str, entry.get("modules") or []))),
        )
    return out


def write_manifest(root: Path, manifest: Mapping[str, ChapterInputs]) -> Path:
    """Write :data:`MANIFEST` (chapters sorted, stable layout) and return its path."""
    body = {
        chapter: {"data": list(inputs.data), "modules": list(inputs.modules)}
        for chapter, inputs in sorted(manifest.items())
    }
    path = Path(root) / MANIFEST
    path.parent.mkdir(parents=True, exist_ok=True)
    text = _MANIFEST_HEADER + (yaml.safe_dump(body, sort_keys=False, default_flow_style=False) if body else "{}\n")
    path.write_text(text, encoding="utf-8")
    return path


def record(root: Path, chapters: Sequence[str] | None = None, timeout: int = 900) -> dict[str, ChapterInputs]:
    """Execute chapters as Quarto would and record their inputs in :data:`MANIFEST`.

    Parameters
    ----------
    root : pathlib.Path
        The project root.
    chapters : sequence of str, optional
        Chapters to record (default: every computational chapter of the book). Entries of
        other chapters are kept while their file exists.
    timeout : int
        Seconds allowed per cell.

    Returns
    -------
    dict
        The new manifest.

    Raises
    ------
    RuntimeError
        A chapter failed to execute (the manifest is not written).
    """
    from booktools.execute import execute_chapter

    root = Path(root)
    targets = computational_chapters(root, chapters)
    manifest = {c: i for c, i in read_manifest(root).items() if (root / c).exists()}
    for name in targets:
        executed = execute_chapter(root / name, root=root, timeout=timeout, keep_kernel=True)
        try:
            if executed.error:
                raise RuntimeError(f"cannot record the inputs of {name}: {executed.error}")
            manifest[name] = chapter_inputs(executed, root)
        finally:
            executed.close()
    write_manifest(root, manifest)
    return manifest


def _unrecorded_inputs(root: Path) -> ChapterInputs:
    """Every data file and ``hbm`` module: the inputs assumed for a chapter not in the manifest."""
    root = Path(root)
    data = sorted(p.relative_to(root).as_posix() for p in (root / DATA_DIR).rglob("*") if p.is_file())
    modules = sorted(p.relative_to(root).as_posix() for p in (root / PACKAGE_DIR).rglob("*.py"))
    return ChapterInputs(tuple(data), tuple(modules))


# --------------------------------------------------------------------------- fingerprints


def stack_versions() -> dict[str, str]:
    """Installed versions of :data:`STACK` and of Python (``"not installed"`` if absent)."""
    out = {"python": platform.python_version()}
    for dist in STACK:
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = "not installed"
    return out


def _sha256(path: Path) -> str | None:
    """Hex SHA-256 of a file's bytes, ``None`` if it does not exist or cannot be read."""
    try:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()
    except OSError:
        return None


def fingerprint(root: Path, chapter: str, inputs: ChapterInputs, stack: Mapping[str, str]) -> dict:
    """A chapter's fingerprint: hashes of its source and inputs, and the stack's versions.

    Returns
    -------
    dict
        ``{"source": sha, "inputs": {path: sha or None}, "stack": {dist: version}}``.
    """
    root = Path(root)
    files = list(inputs.files) + [f for f in included_files(root, chapter) if f not in inputs.files]
    return {
        "source": _sha256(root / chapter),
        "inputs": {path: _sha256(root / path) for path in files},
        "stack": dict(stack),
    }


_INCLUDE_RE = re.compile(r"\{\{<\s*include\s+(\S+)\s*>\}\}")


def included_files(root: Path, chapter: str) -> list[str]:
    """The files a chapter pulls in with Quarto's ``{{< include >}}`` (into its text or its code cells).

    Quarto's freeze keys on the ``.qmd`` alone, so a change to an included file (a model's code
    shown in full on the page and imported by the library) re-executes the chapter only
    because it is part of the fingerprint.
    """
    try:
        text = (Path(root) / chapter).read_text(encoding="utf-8")
    except OSError:
        return []
    base = Path(chapter).parent
    return sorted({Path(os.path.normpath(base / m.group(1))).as_posix() for m in _INCLUDE_RE.finditer(text)})


def changes(chapter: str, stored: Mapping | None, current: Mapping) -> list[str]:
    """Why a chapter must re-execute: one phrase per difference (empty: it is up to date).

    Parameters
    ----------
    chapter : str
        The chapter's path, used in the phrase for its own source.
    stored, current : mapping or None
        Fingerprints from :func:`fingerprint`; ``stored`` is ``None`` if never rendered.

    Returns
    -------
    list of str
        E.g. ``["data/music_plays.csv changed", "pymc 6.4.0 -> 6.4.1"]``.
    """
    if stored is None:
        return ["new: never rendered here (no stored fingerprint)"]
    reasons = []
    if stored.get("source") != current["source"]:
        reasons.append(f"{chapter} changed")
    old, new = stored.get("inputs", {}), current["inputs"]
    for path in sorted(set(old) | set(new)):
        if path not in old:
            reasons.append(f"now reads {path}")
        elif path not in new:
            reasons.append(f"no longer reads {path}")
        elif old[path] != new[path]:
            reasons.append(f"{path} is missing" if new[path] is None else f"{path} changed")
    old_stack, new_stack = stored.get("stack", {}), current["stack"]
    for dist in sorted(set(old_stack) | set(new_stack)):
        if old_stack.get(dist) != new_stack.get(dist):
            reasons.append(f"{dist} {old_stack.get(dist, 'absent')} -> {new_stack.get(dist, 'absent')}")
    return reasons


def _read_json(path: Path) -> dict:
    """The ``chapters`` mapping of a fingerprint file; empty if absent or unreadable."""
    try:
        raw = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    chapters = raw.get("chapters") if isinstance(raw, dict) else None
    return chapters if isinstance(chapters, dict) else {}


def _write_json(path: Path, chapters: Mapping[str, dict]) -> None:
    """Write a fingerprint file atomically (a reader never sees half of it)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps({"format": _FORMAT, "chapters": dict(sorted(chapters.items()))}, indent=2) + "\n",
                   encoding="utf-8")
    os.replace(tmp, path)


@dataclass
class _Plan:
    """Fingerprints and staleness of the chapters being rendered."""

    current: dict[str, dict]
    stale: dict[str, list[str]]
    inputs: dict[str, ChapterInputs]
    unrecorded: list[str]


def _plan(root: Path, chapters: Sequence[str] | None, stack: Mapping[str, str] | None) -> _Plan:
    """Fingerprint the computational chapters among ``chapters`` and compare with the stored ones."""
    root = Path(root)
    chapters = computational_chapters(root, chapters)
    manifest = read_manifest(root)
    stack = stack_versions() if stack is None else stack
    stored = _read_json(root / FINGERPRINTS)
    plan = _Plan({}, {}, {}, [])
    for chapter in chapters:
        inputs = manifest.get(chapter)
        if inputs is None:
            plan.unrecorded.append(chapter)
            inputs = _unrecorded_inputs(root)
        plan.inputs[chapter] = inputs
        plan.current[chapter] = fingerprint(root, chapter, inputs, stack)
        reasons = changes(chapter, stored.get(chapter), plan.current[chapter])
        if not reasons and not store.has(root, chapter, store.fingerprint_key(plan.current[chapter])):
            reasons = [f"no executed record of it in {store.STORE_DIR}"]
        if reasons:
            plan.stale[chapter] = reasons
    return plan


def stale_chapters(
    root: Path, chapters: Sequence[str] | None = None, stack: Mapping[str, str] | None = None
) -> dict[str, list[str]]:
    """The chapters that must re-execute, each with its reasons; changes nothing.

    Parameters
    ----------
    root : pathlib.Path
        The project root.
    chapters : sequence of str, optional
        Chapters to check (default: the book's computational chapters).
    stack : mapping, optional
        Versions to fingerprint with (default: :func:`stack_versions`).

    Returns
    -------
    dict
        Chapter -> reasons (see :func:`changes`), in book order.
    """
    return _plan(root, chapters, stack).stale


# --------------------------------------------------------------------------- validation


def loaders() -> dict[str, Callable]:
    """The :mod:`hbm.book.data` loader of each data file, keyed by its default path.

    Derived from the loaders' signatures (``load_music(path="data/music_plays.csv")``), so it
    cannot drift from :mod:`hbm.book.data`. Truth files are not listed: :func:`hbm.book.data.load_truth`
    never raises, it ignores a truth file that is unreadable or belongs to other data.
    """
    from hbm.book import data

    out = {}
    for name in data.__all__:
        func = getattr(data, name)
        if name.startswith("load_") and callable(func):
            param = inspect.signature(func).parameters.get("path")
            if param is not None and isinstance(param.default, str):
                out[Path(param.default).as_posix()] = func
    return out


def validate_inputs(root: Path, files: Iterable[str]) -> tuple[list[str], list[str]]:
    """Validate data files with their :mod:`hbm.book.data` loaders.

    Parameters
    ----------
    root : pathlib.Path
        The project root.
    files : iterable of str
        Project-relative data files.

    Returns
    -------
    errors : list of str
        One :class:`hbm.book.data.DataError` message per bad file, naming the file (relative to the
        root), the column, the offending lines and what was expected.
    unchecked : list of str
        CSV files that no loader reads by default (not validated here; their loader still
        validates them when the chapter runs).
    """
    from hbm.book.data import DataError

    by_path = loaders()
    errors, unchecked = [], []
    for rel in sorted(set(files)):
        loader = by_path.get(rel)
        if loader is None:
            if rel.endswith(".csv"):
                unchecked.append(rel)
            continue
        path = Path(root) / rel
        try:
            loader(path)
        except DataError as err:
            errors.append(rel + str(err)[len(err.source):])
    return errors, unchecked


# --------------------------------------------------------------------------- invalidation


def freeze_dirs(root: Path, chapter: str) -> list[Path]:
    """Where Quarto keeps a chapter's frozen results: ``_freeze/<dir>/<stem>`` and the hidden copy."""
    rel = Path(chapter).with_suffix("")
    return [Path(root) / "_freeze" / rel, Path(root) / ".quarto" / "_freeze" / rel]


def executed_notebook(root: Path, chapter: str) -> Path:
    """The notebook Quarto executes and keeps (``keep-ipynb``): ``<dir>/<stem>.quarto_ipynb``."""
    return (Path(root) / chapter).with_suffix(".quarto_ipynb")


def invalidate(root: Path, chapter: str) -> tuple[int, int]:
    """Delete a chapter's frozen results and its records in the store of executed chapters.

    Returns
    -------
    tuple of int
        (frozen-result folders removed, store records removed).
    """
    folders = 0
    for path in freeze_dirs(root, chapter):
        if path.is_dir():
            shutil.rmtree(path)
            folders += 1
    return folders, store.remove(root, chapter)


def validate_book_data(root: Path, plan: _Plan) -> tuple[list[str], list[str]]:
    """Validate every data file that the planned chapters read (cheap: the CSVs are small)."""
    return validate_inputs(root, {f for inputs in plan.inputs.values() for f in inputs.data})


# --------------------------------------------------------------------------- render hooks


def _env_list(name: str) -> list[str] | None:
    """A newline-separated path list Quarto passes in ``$name`` (or in the file it names)."""
    value = os.environ.get(name)
    if value is None:
        list_file = os.environ.get(name.replace("QUARTO_PROJECT_", "QUARTO_USE_FILE_FOR_PROJECT_"))
        if not list_file or not Path(list_file).is_file():
            return None
        value = Path(list_file).read_text(encoding="utf-8")
    return [line.strip() for line in value.splitlines() if line.strip()]


def _short(reasons: list[str], limit: int = 6) -> str:
    """The reasons joined by commas, at most ``limit`` of them, then a count."""
    shown = ", ".join(reasons[:limit])
    return shown + (f" and {len(reasons) - limit} more" if len(reasons) > limit else "")


def _report_data_errors(errors: list[str], err, what: str) -> None:
    print(f"freshness: {what}; fix the data and render again:", file=err)
    for message in errors:
        print(f"  {message}", file=err)


def pre_render(
    root: Path = Path("."),
    input_files: Sequence[str] | None = None,
    stack: Mapping[str, str] | None = None,
    out=None,
    err=None,
) -> int:
    """Quarto pre-render step: validate the data, then invalidate exactly the stale chapters.

    Parameters
    ----------
    root : pathlib.Path
        The project root.
    input_files : sequence of str, optional
        The files being rendered (Quarto's ``QUARTO_PROJECT_INPUT_FILES``); default: the book.
    stack : mapping, optional
        Versions to fingerprint with (default: :func:`stack_versions`).
    out, err : file-like, optional
        Where the report and the errors go (default: ``sys.stdout``, ``sys.stderr``).

    Returns
    -------
    int
        0, or 1 when a data file fails validation: then nothing was deleted, nothing executes
        and the published book (``_book/``) stays as it was.
    """
    out = out or sys.stdout
    err = err or sys.stderr
    root = Path(root)
    plan = _plan(root, input_files, stack)
    for chapter in plan.unrecorded:
        print(f"freshness: warning: {chapter} is not in {MANIFEST}, so every data file and hbm "
              f"module counts as its input; run `python -m booktools.freshness record {chapter}`", file=err)

    errors, unchecked = validate_book_data(root, plan)
    if errors:
        _report_data_errors(errors, err, "the render stops before executing anything "
                            "(no frozen result was deleted, _book/ is unchanged)")
        return 1
    for rel in unchecked:
        print(f"freshness: {rel}: no hbm.book.data loader reads this file by default, so it is "
              "validated only when its chapter runs", file=out)

    n = len(plan.current)
    if not plan.stale:
        print(f"freshness: all {n} computational chapters are up to date; none re-executes", file=out)
    else:
        print(f"freshness: {len(plan.stale)} of {n} computational chapters will re-execute:", file=out)
        folders = 0
        for chapter, reasons in plan.stale.items():
            print(f"{chapter}: {_short(reasons)}", file=out)
            folders += invalidate(root, chapter)[0]
        print(f"freshness: removed {folders} frozen result(s)", file=out)
    _write_json(root / PENDING, plan.current)
    (root / PENDING_STALE).write_text(json.dumps(sorted(plan.stale)) + "\n", encoding="utf-8")
    return 0


def file_executed(root: Path, chapter: str, fp: Mapping, out=None) -> bool:
    """File the notebook Quarto executed for ``chapter``, and its named results, in the store.

    Returns whether it was filed (``False``: Quarto did not execute it, or the chapter kept no
    results because it lacks the ``save_results`` cell).
    """
    from hbm.book.common import results_path

    notebook = executed_notebook(root, chapter)
    results = Path(root) / results_path(Path(chapter).stem)
    if not notebook.exists() or not results.exists():
        print(f"freshness: warning: {chapter} has no executed notebook or no saved results "
              "(does it end with a save_results cell?); it will re-execute next time", file=out)
        return False
    nb = nbformat_read(notebook)
    store.put(root, chapter, store.fingerprint_key(fp), nb, results)
    return True


def nbformat_read(path: Path):
    """Read a notebook (Quarto writes ``.quarto_ipynb`` as nbformat 4 JSON)."""
    import nbformat

    return nbformat.read(str(path), as_version=4)


def book_complete(root: Path, output_dir: Path) -> list[str]:
    """The book pages missing from a rendered ``output_dir`` (empty: it is complete)."""
    from booktools.checks import book_files

    missing = []
    for name in book_files(root):
        page = Path(name).with_suffix(".html")
        if page.name == "index.html" or name == "index.qmd":
            page = Path("index.html")
        if not (Path(output_dir) / page).exists():
            missing.append(page.as_posix())
    return missing


def publish(root: Path, output_dir: str | os.PathLike, target: str = PUBLISHED, out=None) -> bool:
    """Copy a complete render (``_render/``) to the published book (``_book/``), atomically.

    Quarto empties its output folder at the start of a full render, before any pre-render
    step, so the book renders into :data:`RENDER_DIR` and only a render that succeeded and is
    complete replaces ``_book/``; a failed one leaves the last good book in place.
    """
    out = out or sys.stdout
    root = Path(root)
    source = root / output_dir
    missing = book_complete(root, source)
    if missing:
        print(f"freshness: {output_dir} lacks {', '.join(missing)}; {target}/ is left as it was "
              "(render the whole book to publish)", file=out)
        return False
    dest = root / target
    fresh = root / f".{target}.new"
    old = root / f".{target}.old"
    for leftover in (fresh, old):
        if leftover.exists():
            shutil.rmtree(leftover)
    shutil.copytree(source, fresh)
    if dest.exists():
        os.replace(dest, old)
    os.replace(fresh, dest)
    if old.exists():
        shutil.rmtree(old)
    print(f"freshness: published the book to {target}/", file=out)
    return True


def _update_manifest_entry(root: Path, chapter: str, fp: dict, out) -> dict:
    """Bring ``chapter``'s :data:`MANIFEST` entry in line with the inputs its execution recorded.

    The results a chapter saves (:func:`hbm.book.common.save_results`) carry what it read and
    imported. If that differs from the manifest, the entry is rewritten and the chapter's
    fingerprint recomputed from the recorded inputs; otherwise ``fp`` is returned unchanged.
    """
    from hbm.book.common import load_results, results_path

    path = Path(root) / results_path(Path(chapter).stem)
    try:
        recorded = load_results(path).get("__inputs__")
    except (OSError, ValueError, EOFError, pickle.UnpicklingError):
        return fp
    if not recorded:
        return fp
    inputs = inputs_from_kernel_state(recorded, root)
    manifest = read_manifest(root)
    if manifest.get(chapter) == inputs:
        return fp
    before = manifest.get(chapter, ChapterInputs())
    added = sorted(set(inputs.data + inputs.modules) - set(before.data + before.modules))
    dropped = sorted(set(before.data + before.modules) - set(inputs.data + inputs.modules))
    manifest[chapter] = inputs
    write_manifest(root, manifest)
    change = "; ".join(part for part in (f"now uses {', '.join(added)}" if added else "",
                                         f"no longer uses {', '.join(dropped)}" if dropped else "") if part)
    print(f"freshness: {MANIFEST}: recorded what {chapter} used ({change})", file=out)
    return fingerprint(root, chapter, inputs, fp.get("stack") or stack_versions())


def post_render(
    root: Path = Path("."),
    output_files: Sequence[str] | None = None,
    output_dir: str | None = None,
    out=None,
) -> int:
    """Quarto post-render step: store fingerprints and executions, then publish the book.

    Quarto runs post-render scripts only after a successful render, so the pending fingerprints
    written by :func:`pre_render` describe what was executed. For each chapter that re-executed
    it files Quarto's executed notebook and the chapter's named results in the store of executed
    chapters (:mod:`booktools.store`), and removes the ``.quarto_ipynb`` files Quarto kept.

    Parameters
    ----------
    root : pathlib.Path
        The project root.
    output_files : sequence of str, optional
        Quarto's ``QUARTO_PROJECT_OUTPUT_FILES``: only chapters with an output among them are
        stored. Default, or when none of them is a chapter's page: every pending chapter.
    output_dir : str, optional
        Quarto's ``QUARTO_PROJECT_OUTPUT_DIR`` (``_render``): stripped from ``output_files``,
        made to read offline and from disk (:func:`booktools.offline.make_offline`), and
        published to ``_book/`` when it holds the whole book.
    out : file-like, optional
        Where the report goes (default: ``sys.stdout``).

    Returns
    -------
    int
        0.
    """
    out = out or sys.stdout
    root = Path(root)
    pending = _read_json(root / PENDING)
    if not pending:
        print("freshness: no pending fingerprints (pre-render did not run); nothing recorded", file=out)
    else:
        chosen = dict(pending)
        if output_files:
            base = Path(output_dir) if output_dir else None
            rendered = set()
            for name in output_files:
                p = Path(name)
                if p.is_absolute():
                    p = Path(_rel(p, root))
                if base is not None and p.parts[: len(base.parts)] == base.parts:
                    p = Path(*p.parts[len(base.parts):])
                rendered.add(p.with_suffix("").as_posix())
            matched = {c: fp for c, fp in pending.items() if Path(c).with_suffix("").as_posix() in rendered}
            chosen = matched or chosen
        try:
            executed = set(json.loads((root / PENDING_STALE).read_text(encoding="utf-8")))
        except (OSError, ValueError):
            executed = set()
        # A chapter that now reads or imports something its manifest entry lacks (a new hbm
        # module) was fingerprinted without it: record what it really used, and file it under
        # the fingerprint of those inputs, so the next render checks them too.
        for c in [c for c in chosen if c in executed]:
            chosen[c] = _update_manifest_entry(root, c, chosen[c], out)
        filed = [c for c in chosen if c in executed and file_executed(root, c, chosen[c], out)]
        stored = _read_json(root / FINGERPRINTS)
        recorded = {c: fp for c, fp in chosen.items() if c not in executed or c in filed}
        stored.update(recorded)
        _write_json(root / FINGERPRINTS, stored)
        (root / PENDING).unlink(missing_ok=True)
        (root / PENDING_STALE).unlink(missing_ok=True)
        print(f"freshness: recorded the fingerprints of {len(recorded)} chapter(s); filed "
              f"{len(filed)} execution(s) in {store.STORE_DIR}", file=out)
    for chapter in computational_chapters(root):
        executed_notebook(root, chapter).unlink(missing_ok=True)
    if output_dir:
        # The book reads offline, also from disk: fix what Quarto writes for a server (booktools.offline).
        make_offline(root / output_dir)
        # The preface links the book's source (there is no public repository address).
        write_archive(root, root / output_dir)
        # Each chapter's notebook, fitted posteriors and data files, beside its page.
        from booktools.notebook import write_downloads

        write_downloads(root, root / output_dir, out=out)
    if output_dir and Path(output_dir).as_posix() != PUBLISHED:
        publish(root, output_dir, out=out)
    return 0


def status(root: Path, chapters: Sequence[str] | None = None, out=None, err=None) -> int:
    """``python -m booktools.freshness status``: the pre-render report, changing nothing.

    Validates the data exactly as :func:`pre_render` does (exit 1 on a bad file), then lists
    the chapters that would re-execute and why.
    """
    out = out or sys.stdout
    err = err or sys.stderr
    plan = _plan(Path(root), chapters, None)
    errors, _ = validate_book_data(Path(root), plan)
    if errors:
        _report_data_errors(errors, err, "a render would stop before executing anything")
        return 1
    for chapter, reasons in plan.stale.items():
        print(f"{chapter}: {_short(reasons)}", file=out)
    if not plan.stale:
        print("all computational chapters are up to date", file=out)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: ``python -m booktools.freshness {status,record,pre-render,post-render}``.

    ``status`` validates the data and prints which chapters would re-execute and why (changes
    nothing); ``record [CHAPTER ...]`` executes chapters and rewrites their entries in
    :data:`MANIFEST`; ``pre-render``/``post-render`` are the Quarto hooks (reading Quarto's
    environment variables). Run from the project root.
    """
    import argparse

    parser = argparse.ArgumentParser(prog="python -m booktools.freshness", description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["status", "record", "pre-render", "post-render"])
    parser.add_argument("chapters", nargs="*", help="chapters (record, status); default: the book")
    args = parser.parse_args(argv)
    root = Path.cwd()
    try:
        if args.command == "record":
            manifest = record(root, args.chapters or None)
            print(f"wrote {MANIFEST} ({len(manifest)} chapter(s))")
            return 0
        if args.command == "status":
            return status(root, args.chapters or None)
        if args.command == "pre-render":
            return pre_render(root, _env_list("QUARTO_PROJECT_INPUT_FILES"))
    except ValueError as exc:  # an unreadable manifest
        print(f"freshness: {exc}", file=sys.stderr)
        return 1
    return post_render(root, _env_list("QUARTO_PROJECT_OUTPUT_FILES"),
                       os.environ.get("QUARTO_PROJECT_OUTPUT_DIR"))


if __name__ == "__main__":
    sys.exit(main())
