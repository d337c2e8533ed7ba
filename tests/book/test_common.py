"""hbm.book.common: the shared chapter setup and the inline number formatting."""

import logging
import re

import altair as alt
import numpy as np
import pandas as pd

from hbm.book import common as book


def test_setup_enables_theme_and_options():
    """setup() enables the book's Altair theme and display options and quiets PyMC's INFO lines."""
    assert book.setup() is None
    assert alt.theme.active == book.THEME
    assert pd.get_option("display.precision") == 3
    assert logging.getLogger("pymc").getEffectiveLevel() == logging.WARNING


def test_setup_keeps_pymc_sampling_quiet_after_pymc_resets_its_logger():
    """PyMC's sampling INFO lines stay hidden even when importing PyMC after setup() resets the pymc logger."""
    book.setup()
    logging.getLogger("pymc").setLevel(logging.INFO)  # what `import pymc` does without root handlers
    for name in ("pymc.sampling.mcmc", "pymc.sampling.forward"):
        assert not logging.getLogger(name).isEnabledFor(logging.INFO), name
        assert logging.getLogger(name).isEnabledFor(logging.WARNING), name
    book.setup()


def test_setup_is_idempotent():
    """Calling setup() twice leaves the same state."""
    book.setup()
    book.setup()
    assert alt.theme.active == book.THEME


def test_inline_strings_display_without_quotes():
    """fmt/pct/count return strings whose repr is the plain text (Quarto shows the repr)."""
    assert repr(book.fmt(0.12345, ".3f")) == "0.123"
    assert repr(book.pct(0.256)) == "26%"
    assert repr(book.pct(0.256, 1)) == "25.6%"
    assert repr(book.count(1_200_000)) == "1,200,000"


def test_fmt_uses_a_true_minus_sign():
    """Negative numbers use the typographic minus, not a hyphen."""
    assert book.fmt(-1.5, ".1f") == "\u22121.5"


def test_plural_agrees_with_the_count():
    """plural() writes the singular for one and the plural otherwise, with thousands separators."""
    from hbm.book.common import plural

    assert plural(1, "genre") == "1 genre"
    assert plural(5, "genre") == "5 genres"
    assert plural(1200, "study", "studies") == "1,200 studies"
    assert repr(plural(2, "user")) == "2 users"


def test_count_rounds_like_the_tables():
    """count() rounds an effective sample size to the nearest whole number, as the diagnostics table does."""
    from hbm.book.common import count

    assert count(495.6) == "496" and count(495.4) == "495" and count(1_200_000) == "1,200,000"
    assert count(495.6) == f"{round(495.6):,}"


def test_missing_values_print_as_na_in_prose():
    """fmt and pct print n/a for None or NaN (no truth, a failed fit), and format other values."""
    assert book.fmt(np.nan) == "n/a" and book.pct(None) == "n/a"
    assert book.fmt(-0.1234, ".3f") == "\u22120.123" and book.pct(0.256) == "26%"


def test_no_truth_chart_names_the_file():
    """The placeholder chart says that no truth is available for the named file."""
    chart = book.no_truth_chart("my.csv", "the MSE chart")
    assert "No simulation truth is available for my.csv" in str(chart.to_dict()["datasets"])


def test_table_prints_counts_as_integers_and_missing_as_dash_with_note():
    """table(): whole-number columns print as integers with separators, NaN as a dash, with a note."""
    df = pd.DataFrame({"fit": ["a", "b"], "ess": [4054.13, 48.0], "divergences": [0, 12000],
                       "rhat": [1.0031, np.nan]})
    df["ess"] = df["ess"].round()
    html = book.table(df, missing="a fit that failed").to_html()
    assert "4,054" in html and ">48<" in html and "12,000" in html and "1.003" in html
    assert book.DASH in html and "A dash (\u2013) marks a fit that failed." in html
    assert "4054.0" not in html and "nan" not in html.lower().replace("nanny", "")


def test_table_shows_a_named_index_as_a_column_and_hides_a_range_index():
    """table(): a labelled index becomes an ordinary column (no extra header row); 0..n is hidden."""
    named = pd.DataFrame({"mse": [0.1, 0.2]}, index=pd.Index(["No pooling", "Partial pooling"], name="method"))
    html = book.table(named).to_html()
    assert html.count("<tr") == 3 and "method" in html and "Partial pooling" in html
    plain = book.table(pd.DataFrame({"x": [0.5, 1.5]})).to_html()
    assert 'class="row_heading' not in plain and plain.count("<tr") == 3
    assert "A dash" not in plain


def test_table_keeps_explicit_formats():
    """table(): a given format wins; negative numbers use a minus sign."""
    html = book.table(pd.DataFrame({"coverage": [0.917, -0.5]}), {"coverage": "{:.1%}"}).to_html()
    assert "91.7%" in html and "\u221250.0%" in html


def test_table_shows_a_single_row_groups_sd_as_a_dash_with_note():
    """table() of group_summaries with a one-student school: its sd and se print as dashes, with the note."""
    from hbm.pooling import group_summaries

    summary = group_summaries([60.5, 70.0, 55.25], ["A", "A", "Mahnomen"])
    html = book.table(summary, missing="a standard deviation that one student cannot give").to_html()
    rows = {}
    for tr in re.findall(r"<tr>(.*?)</tr>", html, flags=re.S)[1:]:
        cells = [re.sub(r"<[^>]+>", "", td).strip() for td in re.findall(r"<td[^>]*>.*?</td>", tr, flags=re.S)]
        rows[cells[0]] = cells[1:]
    assert rows["Mahnomen"] == ["1", "55.250", book.DASH, book.DASH]
    assert rows["A"] == ["2", "65.250", "6.718", "4.750"]
    assert "A dash (\u2013) marks a standard deviation that one student cannot give." in html


def test_missing_counts_print_na():
    """count and plural print n/a for a missing value (a dropped conditional block still evaluates them)."""
    from hbm.book.common import NA, count, plural

    assert str(count(float("nan"))) == NA and str(count(None)) == NA
    assert str(plural(float("nan"), "creator")) == f"{NA} creators"
