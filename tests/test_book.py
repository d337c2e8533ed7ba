"""The book as a whole: the real Quarto renders it cleanly, and its references and options resolve.

``test_quarto_render`` checks the one render of the session (the ``book`` fixture); the
chapter tests read what it executed. Where no Quarto exists, the render test skips and the
chapters are executed by :mod:`booktools.execute`, proven equal to Quarto by test_execute.py.
"""

import subprocess
import textwrap
from pathlib import Path

import pytest

from booktools import checks as quarto
from booktools.execute import KERNEL_NAME, execute_chapter, parse_options, read_chapter
from booktools.freshness import PUBLISHED, RENDER_DIR, computational_chapters

ROOT = Path(__file__).resolve().parents[1]

CHAPTERS = [name for name in quarto.book_files(ROOT) if name.endswith(".qmd")]
# The chapters with Python cells: those Quarto executes.
COMPUTED = computational_chapters(ROOT)


def test_config_settings():
    """_quarto.yml: a book rendered to _render/, freeze, kept notebooks, no Quarto cache, the project kernel."""
    config = quarto.load_config(ROOT)
    assert config["project"]["type"] == "book"
    assert config["project"]["execute-dir"] == "project"
    assert config["execute"]["freeze"] == "auto"
    assert config["project"]["output-dir"] == RENDER_DIR
    assert config["execute"].get("cache") is not True  # Quarto refuses inline expressions with it
    assert config["execute"]["keep-ipynb"] is True
    assert config["jupyter"] == KERNEL_NAME
    assert (ROOT / config["bibliography"]).exists()
    html = config["format"]["html"]
    assert html["code-tools"] and html["code-copy"]


@pytest.mark.parametrize("name", COMPUTED)
def test_chapters_open_with_parameters_and_setup_and_close_with_results(name):
    """Each chapter starts with its hidden `fast` parameters cell and the shared setup cell, and ends by saving its results and printing its footer (downloads, versions)."""
    _, cells, _ = read_chapter(ROOT / name)
    first, second, last = cells[0], cells[1], cells[-1]
    assert first.options.get("tags") == "[parameters]" and "fast = False" in first.source
    assert second.options.get("include") == "false"
    assert "from hbm.book.common import save_results, setup" in second.source and "setup(fast=fast)" in second.source
    assert last.options.get("echo") == "false" and last.options.get("output") == "asis"
    assert f'save_results("{Path(name).stem}", globals())' in last.source
    assert f'print(chapter_footer("{Path(name).stem}"))' in last.source


def test_listed_chapters_exist():
    """Every file listed in _quarto.yml exists."""
    assert quarto.check_chapters_exist(ROOT) == []


@pytest.mark.parametrize("name", COMPUTED)
def test_chapter_executes(name, chapter):
    """Each chapter ran top to bottom, inline expressions included, and kept its named results."""
    executed = chapter(name)
    assert executed.results, f"{name}: no named results"


@pytest.mark.parametrize("name", COMPUTED)
def test_inline_values_are_real(name, chapter):
    """No inline expression renders as an empty, nan or None value in the prose."""
    executed = chapter(name)
    bad = {expr: text for expr, text in executed.inline.items()
           if text.strip().strip("'\"").lower() in ("", "nan", "none", "<na>", "inf", "-inf")}
    assert not bad, f"{name}: inline expressions with no real value: {bad}"


def _is_chart(output) -> bool:
    """An Altair chart (HTML with vegaEmbed, or a Vega-Lite bundle) or an image."""
    data = output.get("data", {})
    return (any(key.startswith(("application/vnd.vegalite", "image/")) for key in data)
            or "vegaEmbed" in data.get("text/html", ""))


@pytest.mark.parametrize("name", COMPUTED)
def test_chart_cells_have_caption_and_alt(name, chapter):
    """Every cell whose output is a chart has fig-cap and fig-alt (screen readers get the alt text)."""
    executed = chapter(name)
    problems = []
    for cell in executed.notebook.cells:
        if cell.cell_type != "code":
            continue
        options = parse_options(cell.source)
        if any(_is_chart(out) for out in cell.get("outputs", [])) and not (
            options.get("fig-cap") and options.get("fig-alt")
        ):
            problems.append(f"{name}: chart cell {cell.source.splitlines()[:2]} lacks fig-cap or fig-alt")
    assert not problems, "\n".join(problems)


def test_crossrefs_resolve():
    """Every @fig-/@tbl-/@sec-/@eq- reference has a label somewhere in the book."""
    assert quarto.check_crossrefs(ROOT) == []


def test_citations_in_bibliography():
    """Every citation key is in references.bib."""
    assert quarto.check_citations(ROOT) == []


def test_figure_cells_declare_caption_and_alt():
    """Every figure cell (label fig-* or a fig-cap) states fig-cap and fig-alt."""
    assert quarto.check_figure_options(ROOT) == []


def test_inline_expressions_follow_their_definitions():
    """Every inline expression uses only names that cells above it define (Quarto evaluates in order)."""
    assert quarto.check_inline_order(ROOT) == []


def test_no_inline_expression_directly_follows_another():
    """No `{python} a``{python} b` in prose: Quarto would print b's source instead of its value."""
    assert quarto.check_inline_adjacent(ROOT) == []


def test_adjacent_inline_expressions_are_reported(tmp_path):
    """check_inline_adjacent names the file and line of a second inline expression glued to the first."""
    (tmp_path / "chapters").mkdir()
    (tmp_path / "_quarto.yml").write_text("book:\n  chapters:\n    - chapters/a.qmd\n")
    (tmp_path / "chapters" / "a.qmd").write_text("# A\n\nFine `{python} x` and `{python} y`.\nBad `{python} x``{python} y`.\n")
    assert [p.split(": ")[0] for p in quarto.check_inline_adjacent(tmp_path)] == ["chapters/a.qmd:4"]


@pytest.mark.quarto
def test_quarto_render(book):
    """The real `quarto render` of the whole book exits 0 with no error or warning, and publishes every page."""
    if book is None:
        pytest.skip("no quarto on PATH and none at ../shared/quarto/bin/quarto; the chapters were "
                    "executed by booktools.execute instead, and the static checks stand in for the rest")
    assert book.returncode == 0, book.output[-4000:]
    assert book.problems == [], "\n".join(book.problems)
    for name in CHAPTERS:
        page = "index.html" if name == "index.qmd" else Path(name).with_suffix(".html").as_posix()
        assert (ROOT / PUBLISHED / page).exists(), page


def test_published_pages_show_no_inline_source(book):
    """No page's visible text shows `{python} ...`: every inline expression was evaluated (the page source view aside)."""
    import html
    import re

    if book is None:
        pytest.skip("no quarto: nothing was published")
    shown = {}
    for page in sorted((ROOT / PUBLISHED).rglob("*.html")):
        text = page.read_text(encoding="utf-8")
        main = text[text.find("<main"):text.find("</main>")]
        main = re.sub(r"<(script|pre)\b.*?</\1>", " ", main, flags=re.S)
        main = re.sub(r'<div class="modal.*', " ", main, flags=re.S)  # code-tools' view of the .qmd
        found = re.findall(r"\{python\}[^<]{0,60}", html.unescape(main))
        if found:
            shown[page.relative_to(ROOT).as_posix()] = found
    assert not shown, shown


def test_preface_links_the_source_archive(book):
    """The published book holds the source archive that the preface links (the book has no public repository address)."""
    from booktools.source import ARCHIVE

    if book is None:
        pytest.skip("no quarto: nothing was published")
    assert f'href="{ARCHIVE}"' in (ROOT / PUBLISHED / "index.html").read_text(encoding="utf-8")
    assert (ROOT / PUBLISHED / ARCHIVE).stat().st_size > 0


# A broken chapter must fail with a message naming the chapter and the cause.


def _tiny_book(tmp_path, chapter_text):
    """A one-chapter copy of the book's configuration with the given chapter text."""
    (tmp_path / "chapters").mkdir()
    (tmp_path / "references.bib").write_text("@book{known2020,\n  title = {Known},\n  year = {2020}\n}\n")
    (tmp_path / "_quarto.yml").write_text(textwrap.dedent("""\
        project:
          type: book
        book:
          chapters:
            - chapters/broken.qmd
        bibliography: references.bib
        """))
    (tmp_path / "chapters" / "broken.qmd").write_text(textwrap.dedent(chapter_text))
    return tmp_path


def test_raised_exception_names_chapter_line_and_cause(tmp_path):
    """An exception in a cell is reported with the chapter, its line in the .qmd and the error."""
    root = _tiny_book(tmp_path, """\
        # Broken

        ```{python}
        x = 1
        ```

        ```{python}
        y = 2
        raise ValueError("bad input in cell two")
        ```
        """)
    executed = execute_chapter(root / "chapters" / "broken.qmd", root=root)
    assert executed.error is not None
    assert "chapters/broken.qmd" in executed.error
    assert "line 9" in executed.error
    assert "ValueError: bad input in cell two" in executed.error


def test_failing_inline_expression_is_reported(tmp_path):
    """An inline expression that raises is reported with its text, line and error."""
    root = _tiny_book(tmp_path, """\
        # Broken

        ```{python}
        x = 1
        ```

        The value is `{python} undefined_name + x`.
        """)
    executed = execute_chapter(root / "chapters" / "broken.qmd", root=root)
    assert "chapters/broken.qmd" in executed.error
    assert "undefined_name + x" in executed.error and "line 7" in executed.error
    assert "NameError" in executed.error


def test_altair_chart_output_is_recognised(tmp_path):
    """An Altair chart cell's output, as nbclient records it, is recognised as a chart."""
    root = _tiny_book(tmp_path, """\
        # Chart

        ```{python}
        import altair as alt
        import pandas as pd
        alt.Chart(pd.DataFrame({"x": [1, 2]})).mark_point().encode(x="x:Q")
        ```
        """)
    executed = execute_chapter(root / "chapters" / "broken.qmd", root=root)
    outputs = executed.notebook.cells[executed.cells[0].index]["outputs"]
    assert any(_is_chart(out) for out in outputs)


def test_inline_expression_values_are_captured(tmp_path):
    """Inline expressions are evaluated after the cells, formatted as IPython displays them."""
    root = _tiny_book(tmp_path, """\
        # Fine

        ```{python}
        from hbm.book.common import fmt
        x = 0.12345
        ```

        The value is `{python} fmt(x, ".2f")` and `{python} 2 + 2`.

        ```{dot}
        digraph { a -> b }
        ```
        """)
    executed = execute_chapter(root / "chapters" / "broken.qmd", root=root)
    assert executed.error is None, executed.error
    assert executed.inline == {'fmt(x, ".2f")': "0.12", "2 + 2": "4"}


def test_undefined_crossref_is_reported(tmp_path):
    """A reference to a figure label that does not exist names the chapter, line and label."""
    root = _tiny_book(tmp_path, """\
        # Broken {#sec-broken}

        As @fig-missing shows, and @sec-broken says.
        """)
    assert quarto.check_crossrefs(root) == [
        "chapters/broken.qmd:3: cross-reference @fig-missing has no matching label"
    ]


def test_unknown_citation_is_reported(tmp_path):
    """A citation key missing from the bibliography names the chapter, line and key."""
    root = _tiny_book(tmp_path, """\
        # Broken

        As @known2020 and [@unknown1999, p. 3] say; mail someone@example.com.
        """)
    assert quarto.check_citations(root) == [
        "chapters/broken.qmd:3: citation @unknown1999 is not in the bibliography"
    ]


def test_figure_without_alt_is_reported(tmp_path):
    """A figure cell without fig-alt is reported with chapter and line."""
    root = _tiny_book(tmp_path, """\
        # Broken

        ```{python}
        #| label: fig-a
        #| fig-cap: "A caption"
        #| code-fold: true
        1
        ```
        """)
    assert quarto.check_figure_options(root) == ["chapters/broken.qmd:4: figure cell lacks fig-alt"]


def test_figure_with_open_plotting_code_is_reported(tmp_path):
    """A figure cell whose plotting code is neither folded nor hidden is reported with chapter and line."""
    root = _tiny_book(tmp_path, """\
        # Broken

        ```{python}
        #| label: fig-a
        #| fig-cap: "A caption"
        #| fig-alt: "Alt text"
        1
        ```
        """)
    assert quarto.check_figure_options(root) == [
        "chapters/broken.qmd:4: figure cell shows its plotting code open (add code-fold: true)"]


def test_standalone_cell_with_outside_name_is_reported(tmp_path):
    """A standalone model cell that relies on an earlier cell's variable is reported."""
    root = _tiny_book(tmp_path, """\
        # Broken

        ```{python}
        # Standalone model cell: runs on its own.
        import numpy as np
        fit = np.mean(data)
        ```
        """)
    assert quarto.check_standalone_cells(root) == [
        "chapters/broken.qmd:4: standalone model cell uses data without defining or importing it"
    ]


def test_missing_chapter_is_reported(tmp_path):
    """A chapter listed in _quarto.yml but absent is reported."""
    root = _tiny_book(tmp_path, "# Fine\n")
    (root / "chapters" / "broken.qmd").unlink()
    assert quarto.check_chapters_exist(root) == ["_quarto.yml lists chapters/broken.qmd, which does not exist"]


def test_read_chapter_maps_cells_to_lines(tmp_path):
    """Python cells are found with their first source line; dot/mermaid cells are skipped."""
    root = _tiny_book(tmp_path, """\
        # T

        ```{python}
        #| label: fig-x
        a = 1
        ```

        ```{mermaid}
        flowchart TD
        ```
        """)
    _, cells, inline = read_chapter(root / "chapters" / "broken.qmd")
    assert [(c.first_line, c.options) for c in cells] == [(4, {"label": "fig-x"})]
    assert inline == []


#: The fields a reader needs to find each kind of reference.
BIB_REQUIRED = {
    "article": {"author", "title", "journal", "volume", "pages", "year"},
    "book": {"author", "title", "publisher", "address", "year"},
    "incollection": {"author", "title", "booktitle", "editor", "publisher", "pages", "year"},
    "inproceedings": {"author", "title", "booktitle", "pages", "year"},
    "techreport": {"author", "title", "institution", "year"},
    "misc": {"author", "title", "year", "howpublished"},
}


def test_references_are_complete():
    """Every bibliography entry has the fields of its type, and no publisher contains a bare "and" (Pandoc splits it)."""
    import re

    text = (ROOT / "references.bib").read_text(encoding="utf-8")
    entries = re.findall(r"^@(\w+)\{([^,]+),\n(.*?)^\}", text, flags=re.M | re.S)
    assert len(entries) == text.count("\n@") + text.startswith("@")
    problems = []
    for kind, key, body in entries:
        names = re.findall(r"^\s*(\w+)\s*=", body, flags=re.M)
        if len(names) != len(set(names)):
            problems.append(f"{key}: a field given twice (Pandoc cannot read the file)")
        fields = dict(re.findall(r"^\s*(\w+)\s*=\s*\{(.*)\},?\s*$", body, flags=re.M))
        missing = BIB_REQUIRED.get(kind.lower(), set()) - set(fields)
        if kind.lower() not in BIB_REQUIRED or missing:
            problems.append(f"{key} (@{kind}): missing {sorted(missing) or 'a known type'}")
        if " and " in fields.get("publisher", ""):
            problems.append(f"{key}: publisher {fields['publisher']!r} has a bare 'and' (write \\&)")
    assert not problems, problems


def test_render_problems_ignore_only_the_notebook_download_links():
    """A render's warnings are problems, except Quarto's 'cannot resolve' for the chapter notebooks written after it."""
    from booktools.render import quarto_problems

    output = ("\x1b[33mWARN: Unable to resolve link target: chapters/intro.ipynb\x1b[39m\n"
              "WARN: Unable to resolve link target: chapters/missing.qmd\n")
    assert quarto_problems(output) == ["WARN: Unable to resolve link target: chapters/missing.qmd"]
