"""The error the library and the book raise for a data file or log that breaks its schema."""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["DataError"]


class DataError(ValueError):
    """A data file that is missing, unreadable or breaks its schema.

    Parameters
    ----------
    source : str
        The file, as the caller named it.
    problem : str
        What is wrong and what was expected.
    column : str, optional
        The offending column, when there is one.
    lines : sequence of int, optional
        1-based line numbers of the offending rows (header = line 1).

    Attributes
    ----------
    source, column, lines
        As given; ``str(err)`` is ``"<source>: <problem>"``.
    """

    def __init__(
        self,
        source: str,
        problem: str,
        column: str | None = None,
        lines: Sequence[int] = (),
    ):
        self.source = source
        self.column = column
        self.lines = tuple(int(line) for line in lines)
        super().__init__(f"{source}: {problem}")
