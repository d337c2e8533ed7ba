"""What a reader copies: every chapter's visible code, read statically.

Each chapter's own test module runs its visible code as a script in an empty folder
(booktools.copyscript.run) and compares the script's key estimates with the chapter's. The
checks here read the code: the model is on the page, in ArviZ's vocabulary, without the book's
machinery.
"""

import re
from pathlib import Path

import pytest

from booktools.copyscript import code_lines, lines_table, script, visible_cells
from booktools.freshness import computational_chapters

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = computational_chapters(ROOT)

#: Code a reader should not meet in a chapter's visible cells, and why.
BANNED = {
    r"\bhbm\.book\b": "the book's own machinery (hbm.book) in copied code",
    r"\bshow_source\b": "a model shown through show_source instead of in full",
    r"\bsummarise_draws\b": "a second summary vocabulary (use az.summary)",
    r"\.stack\(\s*(?:sample|draws?)\s*=": "draws stacked by hand (use az.extract)",
    r"<=\s*[\w\[\]\"'.]+\s*\)?\s*&\s*\(?\s*[\w\[\]\"'.]+\s*<=": "interval membership by hand (use hbm.metrics.inside)",
    r"\bdisplay\(": "display() does not exist in a script",
    r"\bInline\(|\bplural\(|\bk_of_n\(|\bfmt\(|\bpct\(": "a sentence helper in visible code",
}


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_visible_code_speaks_one_vocabulary(chapter):
    """No visible cell uses hbm.book, show_source, summarise_draws, hand-stacked draws, hand-written interval membership or sentence helpers."""
    found = []
    for i, code in enumerate(visible_cells(ROOT / chapter), start=1):
        for pattern, why in BANNED.items():
            for m in re.finditer(pattern, code):
                found.append(f"visible cell {i}: {why}: {m.group(0)!r}")
    assert not found, f"{chapter}:\n" + "\n".join(found)


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_visible_code_reads_its_data_with_pandas(chapter):
    """The visible code reads each data file it uses with pandas.read_csv, from data/."""
    code = "\n".join(visible_cells(ROOT / chapter))
    assert re.search(r"pd\.read_csv\(\s*[\"']data/", code), f"{chapter}: no pd.read_csv('data/...') in the visible code"


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_script_compiles_and_charts_are_folded(chapter):
    """The copy script is valid Python, and the chapter shows some open code (its models) beside its folded charts."""
    compile(script(ROOT / chapter), chapter, "exec")
    lines = code_lines(ROOT / chapter)
    assert lines["open"] > 0


#: The longest line of code that fits a laptop's text column (1280 px screen: the column is
#: 661 px, a character of the book's Source Code Pro 7.13 px, so 91 fit; black's 88 leaves room).
CODE_COLUMNS = 88


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_visible_code_lines_fit_a_laptops_column(chapter):
    """No line of visible code (folded and included code too) is longer than CODE_COLUMNS characters."""
    long = [f"visible cell {i}, {len(line)} characters: {line.strip()[:70]}"
            for i, code in enumerate(visible_cells(ROOT / chapter), start=1)
            for line in code.splitlines() if len(line) > CODE_COLUMNS]
    assert not long, f"{chapter}: {len(long)} line(s) wider than {CODE_COLUMNS} characters:\n" + "\n".join(long)


def test_readme_states_the_measured_code_lines():
    """The README's table of open and folded code lines per chapter is the one the chapters have now."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert lines_table(ROOT) in readme, "README.md: re-run `python -m booktools.copyscript --table`"
