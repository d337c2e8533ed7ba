"""hbm.book.common: the shared chapter setup and the inline number formatting."""

import logging

import altair as alt
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
