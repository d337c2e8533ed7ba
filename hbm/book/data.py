"""Schema-checked loaders for every input of the book.

Each dataset under ``data/`` has a declared :class:`Schema` (a table of
:class:`Column` specs) in :data:`SCHEMAS`, and every loader runs the same
generic validator, :func:`validate`. Problems raise :class:`DataError`, whose
message names the file, the column, the first offending CSV lines and what was
expected, e.g.::

    data/music_plays.csv: column 'rock' must hold non-negative integers
    (plain integer literals such as 12); bad values at line 7 ('-3'), line 12 ('x')

Reading rules, shared by all loaders
------------------------------------
* The file is read as UTF-8 text (a byte-order mark is ignored) and parsed
  with every cell as a string (``dtype=str``, no NA guessing), so nothing is
  silently coerced; the validator converts each column itself.
* Line numbers are those a user sees in an editor: the header is line 1.
  Blank lines are ignored (but still counted). Line breaks inside quoted
  fields are rejected, so that every record is exactly one line.
* Surrounding whitespace in header names and cells is ignored.
* Extra columns are allowed and ignored: the returned frame holds exactly the
  schema's columns, in schema order.
* Counts and sizes accept only plain integer literals (``12``, not ``12.0``,
  ``1e3`` or ``1_000``). Floats accept decimal and scientific notation but
  never ``inf`` or ``nan``.

Every path a loader reads (resolved, as a string) is appended to
:data:`READ_LOG`.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from hbm.errors import DataError

__all__ = [
    "DataError",
    "DataWarning",
    "EXCEL_HINT",
    "near_duplicate_labels",
    "Column",
    "Schema",
    "KINDS",
    "SCHEMAS",
    "READ_LOG",
    "GENRES",
    "GENRE_LABELS",
    "validate",
    "read_csv",
    "load_schools",
    "load_eight_schools",
    "load_music",
    "load_creators",
    "load_truth",
    "truth_path",
    "sha256_bytes",
    "counts_matrix",
]

#: Append-only log of every file a loader in this module has read (the CSVs,
#: and the CSV and JSON that :func:`load_truth` reads), as resolved path
#: strings in reading order; a file read twice appears twice. Never clear it:
#: a tool notes ``len(READ_LOG)`` before running a chapter and reads the new
#: entries after, to learn the chapter's data inputs.
READ_LOG: list[str] = []

#: The five genres of the music data, in column order.
GENRES: tuple[str, ...] = ("pop", "rock", "hiphop", "classical", "electronic")

#: Display labels for :data:`GENRES`.
GENRE_LABELS: dict[str, str] = {
    "pop": "Pop",
    "rock": "Rock",
    "hiphop": "Hip-Hop",
    "classical": "Classical",
    "electronic": "Electronic",
}

_MAX_LISTED = 5  # offending lines named in a message
_INT_RE = re.compile(r"-?[0-9]+")
_FLOAT_RE = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")


@dataclass(frozen=True)
class Kind:
    """How one kind of column is parsed and checked.

    Attributes
    ----------
    expected : str
        Phrase completing "column 'x' must hold ...".
    integer : bool
        Parse plain integer literals (else decimal/scientific floats).
    minimum : float or None
        Smallest allowed value; ``strict`` makes it exclusive.
    text : bool
        Keep the (non-empty) text as is: ids and categories.
    """

    expected: str
    integer: bool = False
    minimum: float | None = None
    strict: bool = False
    text: bool = False


#: The column kinds a schema may use.
KINDS: dict[str, Kind] = {
    "id": Kind("unique, non-empty ids", text=True),
    "category": Kind("non-empty category labels", text=True),
    "int_count": Kind(
        "non-negative integers (plain integer literals such as 12)", integer=True, minimum=0
    ),
    "int_size": Kind(
        "integers >= 2 (plain integer literals such as 120)", integer=True, minimum=2
    ),
    "float": Kind("finite numbers (e.g. 71.5 or -0.25; not inf or nan)"),
    "positive_float": Kind(
        "positive finite numbers (e.g. 0.12; not 0, inf or nan)", minimum=0, strict=True
    ),
}


@dataclass(frozen=True)
class Column:
    """One column of a schema.

    Attributes
    ----------
    name : str
        Header name in the CSV.
    kind : str
        A key of :data:`KINDS`: ``id`` (str, unique), ``category`` (pandas
        Categorical, categories in order of first appearance), ``int_count``
        (int64 >= 0), ``int_size`` (int64 >= 2), ``float`` (finite float64) or
        ``positive_float`` (finite float64 > 0).
    unique : bool
        Values must be distinct (always true for ``id``).
    """

    name: str
    kind: str
    unique: bool = False

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"unknown column kind {self.kind!r}; use one of {list(KINDS)}")


@dataclass(frozen=True)
class Schema:
    """A dataset's declared columns and row-group constraint.

    Attributes
    ----------
    name : str
        Dataset name (a key of :data:`SCHEMAS`).
    columns : tuple of Column
        Required columns, in output order.
    group_by : str or None
        A column whose every value must occur on at least ``min_group_size``
        rows. No schema of the book sets a minimum above one: a group with a
        single row (a school with one student, a region with one user, a genre
        with one creator) is accepted, since the hierarchical models estimate
        it from its one row and the rest; only statistics that need two rows,
        such as a group's own standard deviation, are undefined for it (NaN,
        shown as a dash).
    min_group_size : int
        See ``group_by``.
    """

    name: str
    columns: tuple[Column, ...]
    group_by: str | None = None
    min_group_size: int = 1

    @property
    def names(self) -> list[str]:
        """Column names in schema order."""
        return [c.name for c in self.columns]


#: Declared schema of every dataset the book reads.
SCHEMAS: dict[str, Schema] = {
    "schools": Schema(
        "schools",
        (
            Column("student_id", "id"),
            Column("school", "category"),
            Column("score", "float"),
        ),
        group_by="school",
        min_group_size=1,  # a school with one student is accepted (its own SD is NaN)
    ),
    "eight_schools": Schema(
        "eight_schools",
        (
            Column("school", "category", unique=True),
            Column("y", "float"),
            Column("se", "positive_float"),
        ),
    ),
    "music": Schema(
        "music",
        (Column("user_id", "id"), Column("region", "category"))
        + tuple(Column(g, "int_count") for g in GENRES),
    ),
    "creators": Schema(
        "creators",
        (
            Column("creator_id", "id"),
            Column("genre", "category"),
            Column("n", "int_size"),
            Column("effect", "float"),
            Column("se", "positive_float"),
        ),
    ),
}


#: How to save a spreadsheet so that the loaders read it.
EXCEL_HINT = ("save it from the spreadsheet with File > Save As > 'CSV UTF-8 (Comma delimited) (*.csv)', "
              "which writes comma-separated UTF-8 text")


class DataWarning(UserWarning):
    """A data file that loads but looks wrong (e.g. two labels that differ only by a typo)."""


def _one_edit_apart(a: str, b: str) -> bool:
    """Whether ``b`` is ``a`` with one character inserted, deleted, replaced or two neighbours swapped."""
    if a == b or abs(len(a) - len(b)) > 1:
        return False
    if len(a) == len(b):
        diff = [i for i, (x, y) in enumerate(zip(a, b)) if x != y]
        return len(diff) == 1 or (len(diff) == 2 and diff[1] == diff[0] + 1
                                  and a[diff[0]] == b[diff[1]] and a[diff[1]] == b[diff[0]])
    short, long_ = (a, b) if len(a) < len(b) else (b, a)
    i = next((k for k, (x, y) in enumerate(zip(short, long_)) if x != y), len(short))
    return short[i:] == long_[i + 1:]


def _differ_in_digits(a: str, b: str) -> bool:
    """Whether the characters where ``a`` and ``b`` differ are digits ("Site 4" and "Site 7")."""
    changed = set(a).symmetric_difference(set(b)) or {x for x, y in zip(a, b) if x != y}
    return bool(changed) and all(ch.isdigit() for ch in changed)


def _differ_in_last_code(a: str, b: str) -> bool:
    """Whether ``a`` and ``b`` are the same words ending in different one- or two-character codes
    ("School A" and "School H", "Wave 2b" and "Wave 2c"): labels of a series, not a typo."""
    ta, tb = a.split(), b.split()
    return (len(ta) == len(tb) >= 2 and ta[:-1] == tb[:-1] and ta[-1] != tb[-1]
            and max(len(ta[-1]), len(tb[-1])) <= 2)


def near_duplicate_labels(values, lines) -> list[str]:
    """Messages naming labels that are probably the same group spelled two ways.

    Two labels are suspicious when they differ only in letter case or white space
    ("europe" and "Europe"), or when they are one edit apart (not in digits, both at least
    four characters long, and not a series such as "School A" and "School H") and one of them
    occurs on a single row while the other occurs on several ("Eurpoe" once beside "Europe"
    29 times). Each message names both labels,
    their row counts and the first line of the rarer one.
    """
    values = pd.Series(np.asarray(values, dtype=object)).astype(str)
    sizes = values.value_counts(sort=False)
    first = {}
    for v, line in zip(values, lines):
        first.setdefault(v, int(line))
    labels = list(sizes.index)
    out = []
    for i, a in enumerate(labels):
        for b in labels[i + 1:]:
            same_text = " ".join(a.split()).casefold() == " ".join(b.split()).casefold()
            typo = (min(len(a), len(b)) >= 4 and _one_edit_apart(a, b)
                    and min(sizes[a], sizes[b]) == 1 and max(sizes[a], sizes[b]) >= 2
                    and not _differ_in_digits(a, b) and not _differ_in_last_code(a, b))
            if same_text or typo:
                rare, common = (a, b) if sizes[a] <= sizes[b] else (b, a)
                why = "differ only in case or spacing" if same_text else "are one letter apart"
                out.append(
                    f"{rare!r} ({sizes[rare]} row{'s' if sizes[rare] != 1 else ''}, first at line {first[rare]}) and "
                    f"{common!r} ({sizes[common]} row{'s' if sizes[common] != 1 else ''}) {why}: they count as two groups; correct the file if they are one"
                )
    return out


def _at(lines: Sequence[int], notes: Sequence[str] | None = None) -> str:
    """Render "line 7 ('-3'), line 12 ('x')" for up to five lines, then a count."""
    shown = [
        f"line {line}" if notes is None else f"line {line} ({notes[k]})"
        for k, line in enumerate(lines[:_MAX_LISTED])
    ]
    more = len(lines) - _MAX_LISTED
    return ", ".join(shown) + (f" and {more} more" if more > 0 else "")


def _read_rows(path: str | os.PathLike) -> tuple[pd.DataFrame, np.ndarray]:
    """Read a CSV as strings: (cells with the header as row 0, their line numbers)."""
    source = os.fspath(path)
    p = Path(path)
    if not p.exists():
        raise DataError(source, f"file not found (looked in {p.resolve()})")
    try:
        raw = p.read_bytes()
    except OSError as err:  # a directory, no permission, ...
        raise DataError(source, f"file cannot be read ({err.strerror or err})") from err
    READ_LOG.append(str(p.resolve()))
    if raw.startswith(b"PK\x03\x04") or p.suffix.lower() in (".xlsx", ".xls", ".xlsm"):
        raise DataError(source, "file is an Excel workbook, not CSV text; " + EXCEL_HINT)
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise DataError(source, "file is UTF-16 text (Excel's 'Unicode Text'), not UTF-8; " + EXCEL_HINT)
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise DataError(
            source,
            f"file is not UTF-8 text ({err}); it was probably saved in a Windows code page such as "
            "cp1252 (Excel's plain 'CSV (Comma delimited)'): " + EXCEL_HINT,
        ) from err
    # Split lines as an editor does; drop blank lines but remember line numbers.
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    kept = [(i + 1, s) for i, s in enumerate(lines) if s.strip()]
    if not kept:
        raise DataError(source, "file is empty (expected a header line and data rows)")
    try:
        cells = pd.read_csv(
            io.StringIO("\n".join(s for _, s in kept)),
            header=None,
            dtype=str,
            na_filter=False,
            skip_blank_lines=False,
        )
    except ValueError as err:  # pandas.errors.ParserError and kin
        # pandas counts lines of the blank-free text: map them back to the file's.
        msg = re.sub(r"line (\d+)", lambda m: f"line {kept[int(m[1]) - 1][0]}", str(err).strip())
        raise DataError(source, f"file cannot be parsed as CSV ({msg})") from err
    if len(cells) != len(kept):
        raise DataError(
            source,
            "a quoted field spans several lines; each record must be on one line",
        )
    cells = cells.fillna("").apply(lambda col: col.str.strip())
    # Columns with neither a header nor a value (Excel often adds trailing ",,") are dropped.
    blank = [c for c in cells.columns if (cells[c] == "").all()]
    cells = cells.drop(columns=blank)
    cells.columns = range(cells.shape[1])
    return cells, np.array([i for i, _ in kept])


def _parse_column(values: np.ndarray, kind: Kind) -> tuple[np.ndarray, np.ndarray]:
    """Convert non-empty strings to numbers; return (values, ok mask)."""
    n = len(values)
    if kind.text:
        return values, np.ones(n, bool)
    pattern = _INT_RE if kind.integer else _FLOAT_RE
    ok = np.array([pattern.fullmatch(v) is not None for v in values], bool)
    out = np.zeros(n, np.int64 if kind.integer else np.float64)
    for i in np.flatnonzero(ok):
        try:
            out[i] = int(values[i]) if kind.integer else float(values[i])
        except OverflowError:  # an integer beyond int64
            ok[i] = False
    ok &= np.isfinite(out)  # e.g. '1e999' overflows to inf
    if kind.minimum is not None:
        ok &= out > kind.minimum if kind.strict else out >= kind.minimum
    return out, ok


def validate(cells: pd.DataFrame, lines: np.ndarray, schema: Schema, source: str) -> pd.DataFrame:
    """Check raw string cells against a schema and return typed columns.

    This is the one validator all loaders use.

    Parameters
    ----------
    cells : pandas.DataFrame
        All cells as stripped strings, the header as row 0 (as read with
        ``header=None, dtype=str``); empty cells are ``''``.
    lines : numpy.ndarray
        The 1-based file line of each row of ``cells``.
    schema : Schema
        The declared columns.
    source : str
        The file name used in error messages.

    Returns
    -------
    pandas.DataFrame
        Exactly the schema's columns in schema order: ``id`` as ``str``,
        ``category`` as Categorical (categories in order of first appearance),
        integer kinds as int64, float kinds as float64. Extra columns are
        dropped.

    Raises
    ------
    DataError
        Duplicate header names, missing columns, no data rows, empty cells,
        values of the wrong type or out of range, duplicate ids, or a group
        with fewer than ``schema.min_group_size`` rows.
    """
    header = [str(h) for h in cells.iloc[0]]
    dups = sorted({h for h in header if header.count(h) > 1})
    if dups:
        raise DataError(source, f"the header repeats column(s) {', '.join(map(repr, dups))}")
    missing = [c for c in schema.names if c not in header]
    if missing:
        separated = ""
        if any(";" in h or "\t" in h for h in header):
            separated = ("; the header is separated by semicolons or tabs (Excel does this where the "
                         "decimal mark is a comma): " + EXCEL_HINT)
        raise DataError(
            source,
            f"missing column(s) {', '.join(map(repr, missing))}; expected columns "
            f"{', '.join(schema.names)} (found: {', '.join(header) or 'none'}){separated}",
            column=missing[0],
        )
    body = cells.iloc[1:]
    body_lines = lines[1:]
    if len(body) == 0:
        raise DataError(source, f"no data rows below the header (expected {schema.name} rows)")

    out = {}
    for col in schema.columns:
        kind = KINDS[col.kind]
        raw = body[header.index(col.name)].to_numpy(dtype=object)
        empty = raw == ""
        if empty.any():
            bad = body_lines[empty]
            raise DataError(
                source,
                f"column {col.name!r} has missing values (empty cells) at {_at(bad)}; "
                f"expected {kind.expected}",
                column=col.name,
                lines=bad,
            )
        values, ok = _parse_column(raw, kind)
        if not ok.all():
            raise DataError(
                source,
                f"column {col.name!r} must hold {kind.expected}; bad values at "
                f"{_at(body_lines[~ok], [repr(v) for v in raw[~ok]])}",
                column=col.name,
                lines=body_lines[~ok],
            )
        if col.unique or col.kind == "id":
            dup = pd.Series(raw).duplicated().to_numpy()
            if dup.any():
                first = {}
                for v, line in zip(raw, body_lines):
                    first.setdefault(v, line)
                notes = [f"{v!r}, first at line {first[v]}" for v in raw[dup]]
                raise DataError(
                    source,
                    f"column {col.name!r} must hold unique values; duplicates at "
                    f"{_at(body_lines[dup], notes)}",
                    column=col.name,
                    lines=body_lines[dup],
                )
        if col.kind == "id":
            out[col.name] = pd.Series(raw, dtype="str")
        elif col.kind == "category":
            out[col.name] = pd.Categorical(raw, categories=pd.unique(pd.Series(raw, dtype="str")))
            for message in near_duplicate_labels(raw, body_lines):
                warnings.warn(f"{source}: column {col.name!r}: {message}", DataWarning, stacklevel=4)
        else:
            out[col.name] = values

    if schema.group_by is not None:
        groups = pd.Series(out[schema.group_by])
        sizes = groups.value_counts(sort=False)
        small = [g for g in groups.cat.categories if sizes[g] < schema.min_group_size]
        if small:
            rows = [int(np.flatnonzero(groups.to_numpy() == g)[0]) for g in small]
            notes = [f"{g!r} has {sizes[g]} row{'s' if sizes[g] != 1 else ''}" for g in small]
            raise DataError(
                source,
                f"column {schema.group_by!r}: each {schema.group_by} needs at least "
                f"{schema.min_group_size} rows; too few at "
                f"{_at(body_lines[rows], notes)}",
                column=schema.group_by,
                lines=body_lines[rows],
            )
    return pd.DataFrame(out, columns=schema.names)


def read_csv(path: str | os.PathLike, schema: Schema | str) -> pd.DataFrame:
    """Read a CSV file and validate it against a schema.

    Parameters
    ----------
    path : str or os.PathLike
        The CSV file; relative paths are relative to the working directory.
    schema : Schema or str
        A :class:`Schema` or a key of :data:`SCHEMAS`.

    Returns
    -------
    pandas.DataFrame
        See :func:`validate`.

    Raises
    ------
    DataError
        The file is missing, unreadable, empty, not CSV, or breaks the schema.
    """
    if isinstance(schema, str):
        schema = SCHEMAS[schema]
    cells, lines = _read_rows(path)
    return validate(cells, lines, schema, os.fspath(path))


def load_schools(path: str | os.PathLike = "data/schools.csv") -> pd.DataFrame:
    """Load students' test scores in several schools.

    Columns: ``student_id`` (unique id, str), ``school`` (Categorical),
    ``score`` (finite float64). A school may have a single student: the
    hierarchical model estimates it, and its own standard deviation (which
    needs two students) is NaN in :func:`hbm.pooling.group_summaries` and
    :func:`hbm.schools.group_moments`. The default file is simulated
    by :func:`hbm.book.simulate.schools` from
    :math:`y_{ij} \\sim N(\\mu_j, \\sigma_j^2)`,
    :math:`\\mu_j \\sim N(\\mu, \\tau^2)`,
    :math:`\\sigma_j^2 \\sim \\mathrm{InvGamma}(\\alpha, \\beta)` [gelman2013]_.

    Parameters
    ----------
    path : str or os.PathLike
        A CSV file with the columns above (extra columns are ignored).

    Returns
    -------
    pandas.DataFrame

    Raises
    ------
    DataError
        See :func:`validate`.

    References
    ----------
    .. [gelman2013] Gelman et al. (2013), *Bayesian Data Analysis*, 3rd ed.
    """
    return read_csv(path, SCHEMAS["schools"])


def load_eight_schools(path: str | os.PathLike = "data/eight_schools.csv") -> pd.DataFrame:
    """Load Rubin's eight schools: estimated coaching effects and standard errors.

    Columns: ``school`` (unique, Categorical), ``y`` (finite float64, the
    estimated effect :math:`y_j`), ``se`` (positive finite float64,
    :math:`\\sigma_j`), with :math:`y_j \\sim N(\\theta_j, \\sigma_j^2)`
    [rubin1981]_.

    Parameters
    ----------
    path : str or os.PathLike
        A CSV file with the columns above (extra columns are ignored).

    Returns
    -------
    pandas.DataFrame

    Raises
    ------
    DataError
        See :func:`validate`.

    References
    ----------
    .. [rubin1981] Rubin (1981), Estimation in parallel randomized experiments.
    """
    return read_csv(path, SCHEMAS["eight_schools"])


def load_music(path: str | os.PathLike = "data/music_plays.csv") -> pd.DataFrame:
    """Load users' play counts by genre.

    Columns: ``user_id`` (unique id, str), ``region`` (Categorical; any
    non-empty label), and one count column per genre in :data:`GENRES`
    (non-negative int64). The default file is simulated by
    :func:`hbm.book.simulate.music` from the Dirichlet-multinomial model
    :math:`x_i \\sim \\mathrm{Multinomial}(n_i, \\theta_i)`,
    :math:`\\theta_i \\sim \\mathrm{Dirichlet}(\\kappa_r p_r)` [mosimann1962]_.

    Parameters
    ----------
    path : str or os.PathLike
        A CSV file with the columns above (extra columns are ignored).

    Returns
    -------
    pandas.DataFrame

    Raises
    ------
    DataError
        See :func:`validate`.

    References
    ----------
    .. [mosimann1962] Mosimann (1962), On the compound multinomial distribution.
    """
    return read_csv(path, SCHEMAS["music"])


def load_creators(path: str | os.PathLike = "data/creator_experiments.csv") -> pd.DataFrame:
    """Load one A/B-test result per creator.

    Columns: ``creator_id`` (unique id, str), ``genre`` (Categorical), ``n``
    (int64 >= 2, users in the experiment), ``effect`` (finite float64, the
    observed effect :math:`\\hat\\tau_i`), ``se`` (positive finite float64,
    its standard error :math:`s_i`), with
    :math:`\\hat\\tau_i \\sim N(\\tau_i, s_i^2)` [rubin1981]_.

    Parameters
    ----------
    path : str or os.PathLike
        A CSV file with the columns above (extra columns are ignored).

    Returns
    -------
    pandas.DataFrame

    Raises
    ------
    DataError
        See :func:`validate`.

    References
    ----------
    .. [rubin1981] Rubin (1981), Estimation in parallel randomized experiments.
    """
    return read_csv(path, SCHEMAS["creators"])


def truth_path(path: str | os.PathLike) -> Path:
    """Return the truth file kept beside a CSV.

    Parameters
    ----------
    path : str or os.PathLike
        The CSV file, e.g. ``data/music_plays.csv``.

    Returns
    -------
    pathlib.Path
        ``<dir>/<stem>.truth.json``, e.g. ``data/music_plays.truth.json``.
    """
    p = Path(path)
    return p.with_name(p.stem + ".truth.json")


def sha256_bytes(data: bytes) -> str:
    """Return the hex SHA-256 of ``data`` (how truth files identify their CSV).

    Parameters
    ----------
    data : bytes
        File contents.

    Returns
    -------
    str
        64 lowercase hex digits.
    """
    return hashlib.sha256(data).hexdigest()


def load_truth(path: str | os.PathLike) -> dict | None:
    """Return the simulation truth belonging to a data file, if there is one.

    The truth lives at ``<stem>.truth.json`` beside the CSV (see
    :func:`truth_path`) and records ``data_sha256``, the SHA-256 of the CSV
    bytes it was generated with. Its structure per dataset is documented in
    :mod:`hbm.book.simulate`.

    Parameters
    ----------
    path : str or os.PathLike
        The CSV file (not the JSON).

    Returns
    -------
    dict or None
        The parsed truth; ``None`` when the CSV or truth file is absent or
        unreadable, the JSON is invalid, or the CSV's bytes no longer match
        ``data_sha256`` (a reader replaced the data). Never raises for a
        missing or stale truth.
    """
    csv, tp = Path(path), truth_path(path)
    try:
        data = csv.read_bytes()
        READ_LOG.append(str(csv.resolve()))
        text = tp.read_text(encoding="utf-8")
        READ_LOG.append(str(tp.resolve()))
        truth = json.loads(text)
    except (OSError, ValueError):  # absent, unreadable, not UTF-8 or not JSON
        return None
    if not isinstance(truth, dict) or truth.get("data_sha256") != sha256_bytes(data):
        return None
    return truth


def counts_matrix(df: pd.DataFrame, genres: Sequence[str] = GENRES) -> np.ndarray:
    """Return the play counts as an ``(n_users, n_genres)`` int64 array.

    Parameters
    ----------
    df : pandas.DataFrame
        A frame from :func:`load_music` (or with the same count columns).
    genres : sequence of str
        Count columns, in the order wanted.

    Returns
    -------
    numpy.ndarray
        ``x[i, k]`` = plays of user ``i`` in genre ``genres[k]``.

    Raises
    ------
    KeyError
        A genre column is absent.
    """
    missing = [g for g in genres if g not in df.columns]
    if missing:
        raise KeyError(f"count column(s) {missing} not in frame (columns: {list(df.columns)})")
    return df[list(genres)].to_numpy(dtype=np.int64)
