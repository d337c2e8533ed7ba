"""What a reader downloads beside each chapter: its notebook, its fitted posteriors, its versions.

The post-render step (booktools.notebook.write_downloads) writes ``<stem>.ipynb`` and one
``<stem>-<model>.nc`` per fitted model beside every chapter's page, and the data files under
``data/``; every chapter ends with the links and the versions it ran with
(hbm.book.common.chapter_footer).
"""

import json
import re
import shutil
from pathlib import Path

import nbformat
import numpy as np
import pytest

from booktools.copyscript import PRELUDE, data_files, visible_cells
from booktools.execute import kernel_name
from booktools.freshness import PUBLISHED, computational_chapters
from booktools.notebook import code_cells
from hbm.book.common import POSTERIORS_DIR, VERSIONED, posterior_means

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = computational_chapters(ROOT)


@pytest.fixture(scope="module")
def site(book):
    """The published book's folder (skips without Quarto)."""
    if book is None:
        pytest.skip("no Quarto here: the book is not rendered")
    return ROOT / PUBLISHED


def _notebook(site, chapter):
    path = site / Path(chapter).with_suffix(".ipynb")
    assert path.exists(), f"{path.relative_to(ROOT)} was not written"
    return nbformat.read(path, as_version=4)


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_notebook_holds_the_pages_code_and_prose(site, chapter):
    """The notebook's code cells are exactly the page's visible cells, its text has every value in place, and it ends with the versions."""
    nb = _notebook(site, chapter)
    assert code_cells(nb) == visible_cells(ROOT / chapter)
    text = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    assert "{python}" not in text and "when-meta" not in text
    assert not re.search(r"\{#(?:sec|fig|tbl)-", text), "Quarto labels left in the notebook's text"
    last = nb.cells[-1].source
    assert last.startswith("## Versions") and all(name in last for name in ["Python", *VERSIONED.values()])


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_page_links_its_downloads_and_states_its_versions(site, chapter):
    """Each page links its notebook, each of its posterior files (all present) and its data, and states the versions it ran with."""
    stem = Path(chapter).stem
    page = site / Path(chapter).with_suffix(".html")
    html = page.read_text(encoding="utf-8")
    assert f'href="{stem}.ipynb"' in html
    for nc in page.parent.glob(f"{stem}-*.nc"):
        assert f'href="{nc.name}"' in html, f"{nc.name} is not linked from {page.name}"
    for link in re.findall(rf'href="({re.escape(stem)}-[^"]+\.nc)"', html):
        assert (page.parent / link).exists(), f"{page.name} links {link}, which was not published"
    for rel in data_files(ROOT / chapter):
        if rel.endswith(".csv"):
            assert (site / rel).exists()
    assert "This chapter ran with these versions" in html
    assert all(f"<th>{name}</th>" in html for name in ["Python", *VERSIONED.values()])


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_posterior_files_hold_the_chapters_fits(site, chapter):
    """Each NetCDF file opens with xarray and holds the posterior the chapter computed (its posterior means, to the last digit)."""
    import xarray as xr

    stem = Path(chapter).stem
    for nc in sorted((site / "chapters").glob(f"{stem}-*.nc")):
        name = nc.name[len(stem) + 1 : -len(".nc")]
        expected = json.loads((ROOT / POSTERIORS_DIR / stem / f"{name}.means.json").read_text())
        with xr.open_datatree(nc, engine="h5netcdf") as tree:
            assert {"posterior", "sample_stats"} <= set(tree.children)
            found = posterior_means(tree["posterior"].to_dataset())
        assert found.keys() == expected.keys()
        for var in expected:
            np.testing.assert_allclose(found[var], expected[var], rtol=1e-12, err_msg=f"{nc.name}: {var}")


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_notebook_runs_in_a_fresh_kernel(site, chapter, tmp_path):
    """The downloaded notebook runs from top to bottom in a fresh kernel, in an empty folder with the shipped data (fast mode)."""
    from nbclient import NotebookClient

    nb = _notebook(site, chapter)
    for rel in data_files(ROOT / chapter):
        target = tmp_path / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / rel, target)
    # Fast mode and hbm.book blocked, as the copy runner does: the test's doing, not the notebook's.
    nb.cells.insert(0, nbformat.v4.new_code_cell(PRELUDE.format(fast=True)))
    NotebookClient(nb, timeout=1800, kernel_name=kernel_name(),
                   resources={"metadata": {"path": str(tmp_path)}}).execute()


def test_notebook_keeps_the_case_the_page_shows(tmp_path):
    """A conditional block the page drops (its flag false) is left out of the notebook's text too."""
    from booktools.notebook import build

    flag_cell = nbformat.v4.new_code_cell("#| echo: false\n#| output: asis\nflags(simulated=False)")
    flag_cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text="\n---\nsimulated: false\n---\n")]
    text = ("# Title\n\n::: {.content-visible when-meta=\"simulated\"}\nThe data are simulated.\n:::\n\n"
            "::: {.content-hidden when-meta=\"simulated\"}\nThis file has no truth.\n:::\n")
    executed = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell(text), flag_cell])
    qmd = tmp_path / "x.qmd"
    qmd.write_text("# Title\n", encoding="utf-8")
    nb = build(qmd, executed, versions="| a | b |", data_files=[])
    prose = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    assert "This file has no truth." in prose and "The data are simulated." not in prose
