"""A string that displays as itself (no quotes), for results that go into prose."""

from __future__ import annotations


class Text(str):
    """A ``str`` whose ``repr`` is the text itself.

    IPython shows a ``str`` as its ``repr``, with quotes; an inline expression in a Quarto
    document that evaluates to a ``Text`` shows the bare text. Everything else is ``str``.
    """

    def __repr__(self) -> str:
        return str(self)
