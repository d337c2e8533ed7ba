"""booktools.glitches: the scanner on hand-made sentences, and every page of the rendered book."""

from pathlib import Path

import pytest

from booktools import glitches
from booktools.freshness import PUBLISHED

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("sentence", [
    "4 of the 4 true concentrations lie inside theirs.",
    "Sampler diagnostics: all 2 fits pass every check.",
    "diagnostics failed (6 divergent transitions; R-hat up to 1.017 (> 1.01)): do not trust it.",
    "the minimum ESS is 312 (now for mu_genre[Gaming]).",
    "a bulk ESS of 48 (for sigma_genre).",
    "the Dirichlet concentration kappa of each region",
    "Pop Beta a and Pop Beta b",
    "The brief that this chapter replicates (an internal write-up).",
    "the estimate is nan here",
    "It has 1 schools.",
])
def test_finds_each_pattern(sentence):
    """Each glitch pattern of issue #22 is found in a sentence that has it."""
    assert glitches.find(sentence), sentence


@pytest.mark.parametrize("sentence", [
    "All 8 schools lie between their own average and the pooled mean.",
    "Both fits pass every check, and 7 of the 8 schools move towards the mean.",
    "The prior on μ is N(0, 20²) (a normal with standard deviation 20).",
    "The study this chapter replicates reported an interval of 0.308 to 0.426.",
    "One school has 1 student; 3 of 10 users played rock.",
    "The concentration κ is worth about 30 plays (Gamma(2, 0.1) prior).",
])
def test_leaves_good_prose_alone(sentence):
    """Sentences written as a person writes them, maths and function-like parentheses included, pass."""
    assert glitches.find(sentence) == []


def test_page_text_skips_code_output_and_maths():
    """Code, cell output, maths and charts are not prose: a code name there is no glitch."""
    html = ('<p>The model <code>mu_genre</code> is shown.</p><pre>sigma_genre = 1</pre>'
            '<span class="math inline">\\(\\kappa_r\\)</span><div class="cell-output-stdout">tau</div>'
            '<table class="dataframe"><tr><th>mu_genre[Gaming]</th></tr></table><p>4 of the 4 lie inside.</p>')
    found = glitches.find(glitches.page_text(html))
    assert [g.match for g in found] == ["4 of the 4"]


def test_markdown_text_skips_code_and_maths():
    """Inline code, maths, cross-references and citations are taken out of executed markdown."""
    md = "Fit `mu_genre` with $\\kappa_r$ [@gelman2013], see @fig-x-y; all 8 schools pass."
    assert glitches.find(glitches.markdown_text(md)) == []


def test_chart_titles_are_read_from_the_specs():
    """Axis, legend and header titles of an embedded Vega-Lite spec are found; data values are not."""
    spec = ('{"layer": [{"encoding": {"x": {"field": "a", "title": "sigma_genre"}, '
            '"color": {"field": "k", "legend": {"title": "Method"}}}}], '
            '"datasets": {"d": [{"title": "c0001 (Beauty)"}]}}')
    html = f'<script>(function (spec, embedOpt) {{}})({spec}, {{"renderer": "svg"}});</script>'
    assert glitches.chart_titles(html) == ["sigma_genre", "Method"]


def test_book_pages_read_as_written_by_hand(book):
    """No page of the rendered book has a glitch in its prose, tables or chart titles: 'N of the N', 'all 2' + plural, nested parentheses, code names, 'brief'."""
    if book is None:
        pytest.skip("no Quarto here: the book is not rendered")
    pages = sorted((ROOT / PUBLISHED).glob("*.html")) + sorted((ROOT / PUBLISHED / "chapters").glob("*.html"))
    assert pages
    found = []
    for page in pages:
        html = page.read_text(encoding="utf-8")
        text = glitches.page_text(html) + "\n" + "\n".join(glitches.chart_titles(html))
        found += [f"{page.relative_to(ROOT)}: {g}" for g in glitches.find(text)]
    assert not found, "\n".join(found)
