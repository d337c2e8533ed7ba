"""hbm.book.prose.common: the shared phrases, on hand-made inputs, every branch."""

import pytest

from hbm.book.prose.common import digits_for, k_of_n


@pytest.mark.parametrize("k, n, text", [
    (8, 8, "all 8 schools"), (7, 8, "7 of the 8 schools"), (0, 8, "none of the 8 schools"),
    (2, 2, "both schools"), (1, 2, "1 of the 2 schools"), (0, 2, "neither school"),
    (1, 1, "the only school"), (0, 1, "no school"), (1200, 1200, "all 1,200 schools"),
])
def test_k_of_n(k, n, text):
    """k of n reads 'all n', 'both', 'the only', 'k of the n', 'none of the n', never 'n of the n'."""
    assert k_of_n(k, n, "school") == text


@pytest.mark.parametrize("values, digits", [([28, -3], 0), ([0.12, 0.5], 2), ([540.0], 0), ([0, 0], 1), ([3.2], 1)])
def test_digits_for_follows_the_scale(values, digits):
    """Decimals show the largest value with two significant digits; all-zero input gets one."""
    assert digits_for(values) == digits


class _Fit:
    """A stand-in for hbm.diagnostics.Diagnostics: ``ok`` and ``failures`` are all unreliable reads."""

    def __init__(self, ok, failures=()):
        self.ok, self.failures = ok, list(failures)


def test_unreliable_agrees_with_its_subject():
    """'This interval is ... read it ... the fit passes'; 'these estimates are ... read them ... the fits pass'; empty when all pass."""
    from hbm.book.prose.common import unreliable

    bad = _Fit(False, ["R-hat up to 1.03, above 1.01"])
    one = str(unreliable({"the fit": bad}, "this interval"))
    assert "This interval is not reliable here: the fit fails" in one and "read it as rough until the fit passes." in one
    many = str(unreliable({"the fit": bad, "the other fit": bad}, "these estimates"))
    assert "These estimates are not reliable here: the fit and the other fit fail" in many
    assert "read them as rough until the fits pass." in many
    assert str(unreliable({"the fit": _Fit(True)})) == ""


def test_period_is_never_empty():
    """period() is the sentence's full stop when every fit passes, and the full stop then the warning when one fails."""
    from hbm.book.prose.common import period

    assert str(period({"the fit": _Fit(True)})) == "."
    bad = str(period({"the fit": _Fit(False, ["4 divergent transitions"])}, "these estimates"))
    assert bad.startswith(". These estimates are not reliable here: the fit fails")


@pytest.mark.parametrize("items, text", [
    ([], "n/a"), (["A"], "A"), (["A", "B"], "A and B"), (["A", "B", "C"], "A, B and C"),
])
def test_and_list(items, text):
    """Names read "A", "A and B", "A, B and C"; none reads n/a."""
    from hbm.book.prose.common import and_list

    assert str(and_list(items)) == text
