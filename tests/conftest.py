"""Shared fixtures: a seeded generator, the project root, and chapters executed once per session."""

from pathlib import Path

import numpy as np
import pytest

from hbm.execute import execute_chapter

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def rng():
    """A fresh, seeded NumPy generator for each test."""
    return np.random.default_rng(20261121)


@pytest.fixture(scope="session")
def root():
    """The project root (where ``_quarto.yml`` lives)."""
    return ROOT


@pytest.fixture(scope="session")
def run_chapter():
    """Execute a chapter once per session, as Quarto would, keeping its kernel for queries.

    ``run_chapter("chapters/intro.qmd")`` returns an :class:`hbm.execute.ExecutedChapter`
    (``.error`` set if it failed; ``.value(expr)`` evaluates in its kernel).
    """
    cache = {}

    def run(name: str):
        if name not in cache:
            cache[name] = execute_chapter(ROOT / name, root=ROOT, keep_kernel=True)
        return cache[name]

    yield run
    for chapter in cache.values():
        chapter.close()


@pytest.fixture(scope="session")
def chapter(run_chapter):
    """Like ``run_chapter`` but fails the calling test with the chapter's error message."""

    def get(name: str):
        executed = run_chapter(name)
        if executed.error:
            pytest.fail(f"chapter failed to execute: {executed.error}", pytrace=False)
        return executed

    return get
