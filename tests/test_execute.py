"""booktools.execute runs a chapter exactly as Quarto's Jupyter engine does.

A small fixture chapter is rendered by the real Quarto and executed by booktools.execute; the
inline values (evaluated in document order, a name redefined between paragraphs included), the
cell outputs and the refusal of inline expressions under ``cache: true`` must agree.
"""

import textwrap
from pathlib import Path

import nbformat
import pytest

from booktools.execute import INLINE_RE, KERNEL_NAME, execute_chapter, inline_results, kernel_name
from booktools.render import find_quarto, render

ROOT = Path(__file__).resolve().parents[1]

FIXTURE = textwrap.dedent('''\
    ---
    title: "Fixture"
    ---

    ```{python}
    x = 1
    words = ["a", "b"]
    ```

    First `{python} x`, doubled `{python} x * 2`, and a string `{python} "-".join(words)`.

    ```{python}
    x = 2
    print("printed", x)
    x + 40
    ```

    Now `{python} x`, which a later cell changes.

    Same paragraph `{python} x + 0.5` and `{python} f"{x:,}"`.

    ```{python}
    x = 1234567
    ```

    Last `{python} f"{x:,}"`; not inline: ``{python} x`` in double backticks.

    ```{python}
    #| echo: false
    #| output: asis
    print("\\n---\\nbig: true\\nsmall: false\\n---\\n")
    ```

    ::: {.content-visible when-meta="big"}
    Big case, `{python} x`.
    :::

    ::: {.content-visible when-meta="small"}
    Small case, `{python} x + 1`.
    :::

    ::: {.content-hidden when-meta="small"}
    Not small.
    :::
    ''')

# Quarto 1.7 deletes its kept notebooks when the project render ends, after post-render: as
# the book's post-render step does, this one copies the executed notebook before that.
CONFIG = textwrap.dedent(f'''\
    project:
      type: default
      post-render: keep.py
    jupyter: {kernel_name()}
    execute:
      keep-ipynb: true
    ''')
KEEP = "import shutil\nshutil.copyfile('fixture.quarto_ipynb', 'kept.ipynb')\n"


def _project(tmp_path, config=CONFIG, text=FIXTURE):
    (tmp_path / "_quarto.yml").write_text(config, encoding="utf-8")
    (tmp_path / "fixture.qmd").write_text(text, encoding="utf-8")
    (tmp_path / "keep.py").write_text(KEEP, encoding="utf-8")
    return tmp_path


@pytest.fixture(scope="module")
def executed(tmp_path_factory):
    """The fixture chapter executed by booktools.execute."""
    project = _project(tmp_path_factory.mktemp("ours"))
    result = execute_chapter(project / "fixture.qmd", root=project)
    assert result.error is None, result.error
    return result


@pytest.fixture(scope="module")
def quarto_nb(tmp_path_factory):
    """The fixture chapter as the real Quarto executed it (its kept notebook) and the HTML page."""
    if find_quarto(ROOT) is None:
        pytest.skip("no quarto on PATH and none at ../shared/quarto/bin/quarto")
    project = _project(tmp_path_factory.mktemp("quarto"))
    result = render(project, quarto=find_quarto(ROOT))
    assert result.returncode == 0, result.output[-3000:]
    nb = nbformat.read(project / "kept.ipynb", as_version=4)
    return nb, (project / "fixture.html").read_text(encoding="utf-8")


def test_inline_values_in_document_order(executed):
    """Each inline value is computed when its paragraph is reached: x is 1, then 2, then 1,234,567."""
    values = [(r.expr, r.text) for r in executed.inline_results]
    assert values == [
        ("x", "1"), ("x * 2", "2"), ('"-".join(words)', "'a-b'"),
        ("x", "2"),
        ("x + 0.5", "2.5"), ('f"{x:,}"', "'2'"),
        ('f"{x:,}"', "'1,234,567'"),
        ("x", "1234567"), ("x + 1", "1234568"),  # both conditional blocks are evaluated
    ]


def test_inline_pattern_is_quartos():
    """Double-backtick code is not an inline expression; single-backtick `{python} expr` is."""
    assert INLINE_RE.findall("a `{python} x` b ``{python} y`` c") == ["x"]


def test_same_inline_values_as_quarto(executed, quarto_nb):
    """booktools.execute stores the same user_expressions, cell by cell, as Quarto's own execution."""
    nb, _ = quarto_nb
    theirs = [(r.expr, r.data) for r in inline_results(nb)]
    ours = [(r.expr, r.data) for r in executed.inline_results]
    assert ours == theirs


def test_same_cell_outputs_as_quarto(executed, quarto_nb):
    """Every code cell prints and returns the same text under both executions."""
    nb, _ = quarto_nb

    def outputs(notebook):
        out = []
        for cell in notebook.cells:
            if cell.cell_type == "code":
                out.append([o.get("text") or o.get("data", {}).get("text/plain") for o in cell.get("outputs", [])])
        return [o for o in out if o]

    assert outputs(executed.notebook) == outputs(nb)


def test_quarto_page_shows_the_document_order_values(quarto_nb):
    """The page Quarto wrote shows 1, then 2, then 1,234,567 for the same name."""
    _, html = quarto_nb
    for text in ("First 1,", "Now 2,", "Same paragraph 2.5", "Last 1,234,567"):
        assert text in html, text


def test_conditional_blocks_shown_as_quarto_shows_them(executed, quarto_nb):
    """A flag set by a cell's YAML metadata block keeps or drops when-meta blocks: on Quarto's page and in shown_prose alike."""
    from booktools.execute import document_flags, shown_prose

    _, html = quarto_nb
    prose = shown_prose(executed.notebook)
    assert document_flags(executed.notebook) == {"big": True, "small": False}
    for text in ("Big case, 1234567.", "Not small."):
        assert text in html and text in prose, text
    assert "Small case" not in html and "Small case" not in prose
    assert "when-meta" not in prose


def test_flags_prints_the_block_shown_prose_reads(capsys):
    """hbm.book.common.flags prints a YAML block that booktools reads back; a bad name is refused."""
    import nbformat

    from booktools.execute import document_flags, keep_shown
    from hbm.book.common import flags

    flags(simulated=True, pp_wins=False)
    printed = capsys.readouterr().out
    cell = nbformat.v4.new_code_cell("flags(...)")
    cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=printed)]
    found = document_flags(nbformat.v4.new_notebook(cells=[cell]))
    assert found == {"simulated": True, "pp_wins": False}
    md = ('A.\n\n::: {.content-visible when-meta="simulated"}\nB.\n\n::: {.callout-note}\nC.\n:::\n:::\n'
          '::: {.content-visible when-meta="pp_wins"}\nD.\n:::\n::: {.content-hidden when-meta="pp_wins"}\nE.\n:::')
    assert keep_shown(md, found) == "A.\n\nB.\n\n::: {.callout-note}\nC.\n:::\nE."
    with pytest.raises(ValueError, match="lowercase"):
        flags(**{"Has-Truth": True})


def test_cache_and_inline_refused_together(tmp_path):
    """With execute: cache: true, an inline expression is refused by booktools.execute, as by Quarto."""
    project = _project(tmp_path, CONFIG.replace("keep-ipynb: true", "cache: true"))
    result = execute_chapter(project / "fixture.qmd", root=project)
    assert result.error is not None and "cannot be used with Jupyter Cache" in result.error
    if find_quarto(ROOT) is not None:
        rendered = render(project, quarto=find_quarto(ROOT))
        assert rendered.returncode != 0
        assert "Inline expressions cannot be used with Jupyter Cache" in rendered.output


def test_undefined_name_in_prose_fails_at_its_line(tmp_path):
    """An inline expression that uses a name defined only further down fails, naming its line."""
    text = "```{python}\na = 1\n```\n\nToo early: `{python} b`.\n\n```{python}\nb = 2\n```\n"
    project = _project(tmp_path, text=text)
    result = execute_chapter(project / "fixture.qmd", root=project)
    assert result.error is not None
    assert "`{python} b`" in result.error and "line 5" in result.error and "NameError" in result.error


def test_project_kernel_registered():
    """`make` registers the project's kernel, which the book's _quarto.yml names."""
    assert kernel_name() == KERNEL_NAME


def test_shown_prose_puts_inline_values_in_place():
    """shown_prose: each inline expression of a markdown cell is replaced by its shown text (quotes of a plain str removed); code cells are left out."""
    import nbformat

    from booktools.execute import shown_prose

    md = nbformat.v4.new_markdown_cell("It has `{python} n` rows in `{python} name`.\n`{python} n` again.")
    md.metadata["user_expressions"] = [
        {"expression": "n", "result": {"data": {"text/plain": "3"}}},
        {"expression": "name", "result": {"data": {"text/plain": "'a file'"}}},
    ]
    nb = nbformat.v4.new_notebook(cells=[md, nbformat.v4.new_code_cell("x = 1")])
    assert shown_prose(nb) == "It has 3 rows in a file.\n3 again."
