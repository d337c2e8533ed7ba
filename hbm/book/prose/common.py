"""Phrases every chapter's prose needs: counts of a whole, numbers of any scale, failed fits, predictive checks.

Shared by the per-chapter modules of :mod:`hbm.book.prose`, so one wording serves the book.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from hbm.book.common import NA, Inline, count, fmt, pct


def k_of_n(k: int, n: int, noun: str, nouns: str | None = None) -> Inline:
    """``"all 8 schools"``, ``"both schools"``, ``"the only school"``, ``"7 of the 8 schools"``, ``"none of the 8 schools"``.

    Never "2 of the 2" or "all 2 schools": a whole of two is "both", a whole of one "the only".
    With ``n == 1`` and ``k == 0`` it reads ``"no school"``.
    """
    k, n = int(k), int(n)
    many = nouns or noun + "s"
    if n == 1:
        return Inline(f"the only {noun}" if k == 1 else f"no {noun}")
    if k == n:
        return Inline(f"both {many}" if n == 2 else f"all {count(n)} {many}")
    if k == 0:
        return Inline(f"neither {noun}" if n == 2 else f"none of the {count(n)} {many}")
    return Inline(f"{count(k)} of the {count(n)} {many}")


def digits_for(values, significant: int = 2) -> int:
    """Decimals that show the largest absolute value with ``significant`` significant digits.

    ``digits_for([28, -3]) -> 0``, ``digits_for([0.12, 0.5]) -> 2``; never fewer than 0.
    All zero or empty: 1.
    """
    finite = np.abs(np.asarray(values, dtype=float))
    finite = finite[np.isfinite(finite) & (finite > 0)]
    if finite.size == 0:
        return 1
    return max(0, significant - 1 - math.floor(math.log10(float(finite.max()))))


def num(x: float, digits: int = 3) -> Inline:
    """A positive quantity of any scale with ``digits`` significant digits, never in e-notation.

    ``num(52.37) -> 52.4``, ``num(0.01234) -> 0.0123``, ``num(1234.5) -> 1,234`` (whole numbers
    from ``10**digits`` on), so a rescaled data set never prints ``0 to 0``.
    """
    if x is None or not np.isfinite(float(x)):
        return fmt(x)
    x = float(x)
    if x == 0:
        return Inline("0")
    if abs(x) >= 10 ** digits:
        return fmt(x, ",.0f")
    decimals = max(0, digits - 1 - int(np.floor(np.log10(abs(x)))))
    return fmt(x, f".{decimals}f")


def group_sizes(sizes: Sequence[int], unit: str, per: str, units: str | None = None) -> Inline:
    """How many units each group has: ``30 users each`` or ``from 1 to 33 users per region``."""
    sizes = np.asarray(sizes)
    units = units or unit + "s"
    lo, hi = int(sizes.min()), int(sizes.max())
    if lo == hi:
        return Inline(f"{count(lo)} {unit if lo == 1 else units} each")
    return Inline(f"from {count(lo)} to {count(hi)} {units} per {per}")


def _failed(fits: Mapping) -> list[str]:
    return [name for name, checks in fits.items() if not checks.ok]


def unreliable(fits: Mapping, what: str = "these estimates") -> Inline:
    """Empty when every fit passed its diagnostics, else a sentence saying ``what`` is unreliable and why.

    ``fits`` maps a fit's name in prose to its :class:`hbm.diagnostics.Diagnostics`.
    """
    failed = _failed(fits)
    if not failed:
        return Inline("")
    names = and_list(failed)
    verb = "fails" if len(failed) == 1 else "fail"
    reasons = "; ".join(f"{name}: {'; '.join(fits[name].failures)}" if len(failed) > 1
                        else "; ".join(fits[name].failures) for name in failed)
    one = what.split()[0].lower() in ("this", "that")  # "this interval" is one thing, "these estimates" many
    return Inline(f" {what[0].upper() + what[1:]} {'is' if one else 'are'} not reliable here: {names} {verb} the "
                  f"sampler diagnostics ({reasons}), so read {'it' if one else 'them'} as rough until the "
                  f"{'fit passes' if len(failed) == 1 else 'fits pass'}.")


def and_list(items: Sequence[str], empty: str = NA) -> Inline:
    """Names as prose: ``"A"``, ``"A and B"``, ``"A, B and C"``; ``empty`` when there are none."""
    items = [str(item) for item in items]
    if not items:
        return Inline(empty)
    return Inline(items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1])


def period(fits: Mapping, what: str = "these estimates") -> Inline:
    """A sentence's full stop, then :func:`unreliable`'s warning when a fit failed.

    Written at the end of a sentence in place of its full stop, so the inline value is never
    empty: ``...a correlation of 0.998`{python} period(fits, "these comparisons")```.
    """
    return Inline("." + unreliable(fits, what))


def ppc_verdict(pvalues: pd.Series, model: str = "the model", against: str = "posterior predictive distribution",
                reproduces: str = "what it was fitted to", low: float = 0.025, high: float = 0.975) -> Inline:
    """A predictive check's verdict, written either way: how many statistics fall in the outer tails.

    ``pvalues`` holds one predictive p-value (share of replicated statistics below the observed
    one) per statistic, indexed by its name in prose; ``against`` names the distribution
    (singular), ``model`` the model checked. With many statistics a few land in the outer 5%
    by chance alone: the verdict is a misfit only when as many or more would happen by chance
    with probability below 5% (binomial, treating the statistics as independent).
    """
    from hbm.posterior import outer_tail_chance

    extreme = pvalues[(pvalues < low) | (pvalues > high)]
    n = len(pvalues)
    if extreme.empty:
        return Inline(f"None of the {count(n)} observed statistics lies in the outer 5% of its {against}: "
                      f"{model} reproduces {reproduces}.")
    names = ", ".join(str(i) for i in extreme.index[:4]) + (", ..." if len(extreme) > 4 else "")
    many = against.replace("distribution", "distributions", 1)
    k = len(extreme)
    head = (f"{count(k)} of the {count(n)} observed statistics {'lies' if k == 1 else 'lie'} in the outer 5% of "
            f"{'its' if k == 1 else 'their'} {against if k == 1 else many} ({names})")
    chance = outer_tail_chance(pvalues, high - low)[1]
    if chance >= 0.05:
        return Inline(f"{head}: with {count(n)} statistics that many happen by chance alone (probability "
                      f"{pct(chance)}), so the check finds no clear misfit.")
    return Inline(f"{head}, more than chance alone would give (probability {pct(chance, 1)}): {model} does not "
                  "reproduce those features of the data.")
