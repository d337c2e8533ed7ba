"""Shared fixtures: a seeded generator, the project root, the rendered book and its chapters.

Every chapter executes once per test run, and only if it changed: the ``book`` fixture renders
the whole book with the real Quarto (the ``quarto`` on ``PATH``, else
``../shared/quarto/bin/quarto``), whose post-render step files each executed chapter in the
store of executed chapters (:mod:`booktools.store`). Chapter tests read what Quarto produced
from there. Where no Quarto exists, chapters missing from the store are executed by
:mod:`booktools.execute`, which ``tests/test_execute.py`` proves equal to Quarto's execution.
"""

import os
import shutil
import sys
import threading
from concurrent.futures import ThreadPoolExecutor, wait
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# What the Makefile exports, set here too so that plain `pytest` behaves like `make test`
# (before anything imports PyTensor).
sys.path.insert(0, str(ROOT))
from booktools.render import pytensor_flags  # noqa: E402

os.environ.setdefault("PYTENSOR_FLAGS", pytensor_flags(ROOT))

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from booktools import store  # noqa: E402
from booktools.render import find_quarto, render  # noqa: E402


@pytest.fixture
def rng():
    """A fresh, seeded NumPy generator for each test."""
    return np.random.default_rng(20261121)


@pytest.fixture(scope="session")
def root():
    """The project root (where ``_quarto.yml`` lives)."""
    return ROOT


@pytest.fixture(scope="session")
def _book_render():
    """The session's render of the whole book, started in the background; ``None`` without Quarto.

    Started when the session starts (:func:`_start_background`), so the render (one kernel, one
    core) runs while the tests that need no rendered book run on the other core.
    """
    if find_quarto(ROOT) is None:
        yield None
        return
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="render")
    yield pool.submit(render, ROOT)
    pool.shutdown(wait=True)


@pytest.fixture(scope="session")
def book(_book_render):
    """The whole book rendered once per session with the real Quarto, or ``None`` without one.

    Quarto's pre-render step re-executes exactly the chapters whose inputs changed, so with
    nothing changed this executes nothing.
    """
    return None if _book_render is None else _book_render.result()


@pytest.fixture(scope="session")
def chapter(book):
    """``chapter("chapters/intro.qmd")``: its :class:`booktools.store.StoredChapter`.

    Fails the calling test with the chapter's error (or Quarto's output) if it did not run.
    """
    cache = {}

    def get(name: str):
        if name not in cache:
            if book is not None:
                key = store.fingerprint_key(store.project_fingerprint(ROOT, name))
                found = store.get(ROOT, name, key)
                if found is None:
                    tail = "\n".join(book.output.splitlines()[-40:])
                    pytest.fail(f"{name} was not rendered (quarto exit {book.returncode}):\n{tail}", pytrace=False)
                cache[name] = found
            else:
                try:
                    cache[name] = store.ensure(ROOT, name)
                except store.ChapterFailed as exc:
                    pytest.fail(f"chapter failed to execute: {exc}", pytrace=False)
        return cache[name]

    return get


#: Own-data variant runs at once: two kernels keep both cores busy (most of a chapter's time
#: is single-threaded compilation), alongside the render and the unit tests.
VARIANT_WORKERS = int(os.environ.get("HBM_VARIANT_WORKERS", "2"))


class _Variants:
    """Own-data variant runs, executed in the background and read from the store."""

    def __init__(self, tmp_path_factory, after=None):
        self.tmp = tmp_path_factory
        # The runs start once the book's render is done: they then load the models the render
        # compiled (same structure, other data) from the shared compile cache instead of
        # compiling each one a second time, at once, beside the render.
        self.after = after
        self.pool = ThreadPoolExecutor(max_workers=VARIANT_WORKERS, thread_name_prefix="variant")
        self.futures = {}
        self.lock = threading.Lock()

    def _run(self, chapter, name, edit, fast):
        if self.after is not None:
            wait([self.after])  # its failure is the render test's to report, not the variants'
        with self.lock:  # pytest's mktemp is not thread-safe
            project = self.tmp.mktemp(name)
        shutil.copytree(ROOT / "data", project / "data")
        (project / "chapters").mkdir()
        shutil.copy(ROOT / chapter, project / chapter)
        shutil.copy(ROOT / "_quarto.yml", project / "_quarto.yml")
        # The kernel runs in the copy and imports this checkout's hbm (whose modules the
        # fingerprint hashes), not whichever hbm is installed.
        (project / "hbm").symlink_to(ROOT / "hbm", target_is_directory=True)
        edit(project / "data")
        return store.ensure(ROOT, chapter, project=project, uri=f"{chapter}#{name}",
                            parameters={"fast": True} if fast else None, lock=self.lock)

    def submit(self, chapter, name, edit, fast=True):
        key = (chapter, name, fast)
        with self.lock:
            if key not in self.futures:
                self.futures[key] = self.pool.submit(self._run, chapter, name, edit, fast)
            return self.futures[key]


@pytest.fixture(scope="session")
def variants(tmp_path_factory, _book_render):
    """The session's own-data runs; every chapter x variant of tests/variants.py starts at once."""
    from booktools.freshness import computational_chapters
    from tests.variants import FULL_VARIANT_RUNS, VARIANTS

    # The variant threads unpickle chapters' saved results, which hold Bambi, PyMC and ArviZ
    # objects and so import those packages. Imported here first, in the main thread, so that
    # a thread and a test never import one of them at once: Python can deadlock on their
    # circular imports, or hand one thread a half-initialised module.
    import arviz  # noqa: F401
    import bambi  # noqa: F401
    import pymc  # noqa: F401

    runner = _Variants(tmp_path_factory, after=_book_render)
    # HBM_VARIANT_CHAPTERS="chapters/music.qmd,..." starts only those up front (others still run
    # when a test asks for them): for work on a few chapters.
    wanted = [c for c in os.environ.get("HBM_VARIANT_CHAPTERS", "").split(",") if c]
    for name, edit in VARIANTS.items():
        for chapter in computational_chapters(ROOT):
            if not wanted or chapter in wanted:
                runner.submit(chapter, name, edit)
    for chapter, name in FULL_VARIANT_RUNS:
        if not wanted or chapter in wanted:
            runner.submit(chapter, name, VARIANTS[name], fast=False)
    yield runner
    runner.pool.shutdown(wait=True, cancel_futures=True)


@pytest.fixture(scope="session", autouse=True)
def _start_background(request):
    """Start the render and the own-data runs at the beginning of a session that uses them."""
    if any(_NEEDS_BOOK & set(item.fixturenames) for item in request.session.items):
        request.getfixturevalue("_book_render")
    if any("variant" in item.fixturenames for item in request.session.items):
        request.getfixturevalue("variants")


#: Fixtures that wait for the rendered book or the own-data runs.
_NEEDS_BOOK = {"book", "chapter", "variant", "variants"}


def pytest_collection_modifyitems(session, config, items):
    """Tests that wait for the render or the own-data runs go last (in their own order).

    The others run first, on one core, while the render and the runs use the other: the suite
    keeps both cores busy instead of idling one at the end.
    """
    items.sort(key=lambda item: bool(_NEEDS_BOOK & set(item.fixturenames)))


@pytest.fixture(scope="session")
def variant(variants):
    """``variant(chapter, name, edit)``: the chapter executed on an edited copy of ``data/``.

    ``edit(data_dir)`` changes the copy (replace a CSV, delete a truth file). The chapter runs
    with its ``fast`` parameter on (few draws and replications: see :func:`hbm.book.common.setup`).
    The execution is kept in the store under ``chapter#name`` and the copy's fingerprint, so it
    runs once and again only when the chapter, the edit's result, ``hbm`` or the stack changed.
    Returns the :class:`booktools.store.StoredChapter`, or raises
    :class:`booktools.store.ChapterFailed`.
    """

    def run(chapter: str, name: str, edit, fast: bool = True):
        return variants.submit(chapter, name, edit, fast).result()

    return run
