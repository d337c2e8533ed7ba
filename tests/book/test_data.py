"""Contracts of hbm.book.data: schemas, the generic validator, loaders and truth files."""

import json
import os

import numpy as np
import pandas as pd
import pytest

from hbm.book import data
from hbm.book.data import DataError

MUSIC_HEADER = "user_id,region,pop,rock,hiphop,classical,electronic"
MUSIC_OK = f"{MUSIC_HEADER}\nu1,Europe,1,2,0,4,5\nu2,Asia,0,0,7,0,1\nu3,Europe,3,0,0,0,0\n"
SCHOOLS_OK = "student_id,school,score\ns1,B,60.5\ns2,A,70\ns3,B,-1.5e1\ns4,A,80.25\n"
EIGHT_OK = "school,y,se\nA,28,15\nB,-3.5,0.5\n"
CREATORS_OK = "creator_id,genre,n,effect,se\nc1,Music,30,0.25,0.8\nc2,Gaming,5000,-0.1,0.07\n"


@pytest.fixture
def write(tmp_path):
    """Write text to a CSV under tmp_path and return its path."""

    def _write(text, name="x.csv", encoding="utf-8"):
        path = tmp_path / name
        path.write_bytes(text.encode(encoding) if isinstance(text, str) else text)
        return path

    return _write


# --- committed data -------------------------------------------------------------


@pytest.mark.parametrize(
    "loader, columns",
    [
        (data.load_schools, ["student_id", "school", "score"]),
        (data.load_eight_schools, ["school", "y", "se"]),
        (data.load_music, ["user_id", "region", *data.GENRES]),
        (data.load_creators, ["creator_id", "genre", "n", "effect", "se"]),
    ],
)
def test_committed_files_load_with_schema_columns(loader, columns, root, monkeypatch):
    """Each default path, relative to the project root, loads with exactly the schema's columns."""
    monkeypatch.chdir(root)
    df = loader()
    assert list(df.columns) == columns and len(df) > 0


def test_committed_dtypes(root, monkeypatch):
    """Loaders return ids as str, categories as Categorical, counts int64, floats float64."""
    monkeypatch.chdir(root)
    music, creators, eight = data.load_music(), data.load_creators(), data.load_eight_schools()
    assert music["user_id"].dtype == "str"
    assert isinstance(music["region"].dtype, pd.CategoricalDtype)
    assert list(music["region"].cat.categories) == [
        "North America", "Europe", "Asia", "Latin America"
    ]
    assert all(music[g].dtype == np.int64 for g in data.GENRES)
    assert creators["n"].dtype == np.int64
    assert creators["effect"].dtype == np.float64 and creators["se"].dtype == np.float64
    assert eight["y"].tolist() == [28, 8, -3, 7, -1, 1, 18, 12]
    assert eight["se"].tolist() == [15, 10, 16, 11, 9, 11, 10, 18]


# --- exact small cases ---------------------------------------------------------


def test_load_music_exact(write):
    """A small valid music file loads to the expected frame, categories in first-seen order."""
    df = data.load_music(write(MUSIC_OK))
    assert df["user_id"].tolist() == ["u1", "u2", "u3"]
    assert list(df["region"].cat.categories) == ["Europe", "Asia"]
    assert df["region"].tolist() == ["Europe", "Asia", "Europe"]
    np.testing.assert_array_equal(
        data.counts_matrix(df), [[1, 2, 0, 4, 5], [0, 0, 7, 0, 1], [3, 0, 0, 0, 0]]
    )


def test_load_schools_exact(write):
    """Scores parse decimal and scientific notation exactly; schools keep first-seen order."""
    df = data.load_schools(write(SCHOOLS_OK))
    assert df["score"].tolist() == [60.5, 70.0, -15.0, 80.25]
    assert list(df["school"].cat.categories) == ["B", "A"]


def test_load_eight_schools_and_creators_exact(write):
    """Eight-schools and creators files load their values unchanged."""
    eight = data.load_eight_schools(write(EIGHT_OK, "e.csv"))
    assert eight["y"].tolist() == [28.0, -3.5] and eight["se"].tolist() == [15.0, 0.5]
    cr = data.load_creators(write(CREATORS_OK, "c.csv"))
    assert cr["n"].tolist() == [30, 5000] and cr["effect"].tolist() == [0.25, -0.1]


def test_extra_columns_ignored_and_reordered(write):
    """Extra columns are dropped and schema columns come back in schema order."""
    text = "note,score,school,student_id\nhi,1.5,A,s1\n,2.5,A,s2\n"
    df = data.load_schools(write(text))
    assert list(df.columns) == ["student_id", "school", "score"]
    assert df["score"].tolist() == [1.5, 2.5]


def test_whitespace_bom_crlf_and_blank_lines_tolerated(write):
    """A BOM, CRLF endings, surrounding spaces and blank lines do not change the values."""
    text = "\ufeff student_id , school,score\r\n\r\ns1 , A ,1\r\n  \r\ns2,A, 2 \r\n\r\n"
    df = data.load_schools(write(text))
    assert df["student_id"].tolist() == ["s1", "s2"] and df["school"].tolist() == ["A", "A"]
    assert df["score"].tolist() == [1.0, 2.0]


def test_counts_matrix_order_and_missing_column():
    """counts_matrix follows the requested genre order and raises KeyError for absent columns."""
    df = pd.DataFrame({"pop": [1, 2], "rock": [3, 4]})
    m = data.counts_matrix(df, genres=("rock", "pop"))
    assert m.dtype == np.int64 and m.tolist() == [[3, 1], [4, 2]]
    with pytest.raises(KeyError, match="hiphop"):
        data.counts_matrix(df)


def test_genre_constants():
    """GENRES lists the five count columns and GENRE_LABELS labels each of them."""
    assert data.GENRES == ("pop", "rock", "hiphop", "classical", "electronic")
    assert data.GENRE_LABELS["hiphop"] == "Hip-Hop" and set(data.GENRE_LABELS) == set(data.GENRES)


def test_read_log_records_resolved_paths(write, tmp_path, monkeypatch):
    """Every successful read appends the resolved path to READ_LOG, even for relative paths."""
    path = write(MUSIC_OK)
    monkeypatch.chdir(tmp_path)
    start = len(data.READ_LOG)
    data.load_music("x.csv")
    data.load_music(path)
    assert data.READ_LOG[start:] == [str(path.resolve())] * 2


# --- every DataError path ----------------------------------------------------------


def _err(loader, path):
    with pytest.raises(DataError) as info:
        loader(path)
    return info.value


def test_error_missing_file(tmp_path):
    """A missing file is a DataError naming the file."""
    err = _err(data.load_music, tmp_path / "nope.csv")
    assert "nope.csv: file not found" in str(err)


def test_error_unreadable_file(tmp_path):
    """A path that cannot be read as a file (a directory) is a DataError."""
    assert "cannot be read" in str(_err(data.load_music, tmp_path))


@pytest.mark.parametrize("text", ["", "\n\n  \n"])
def test_error_empty_file(write, text):
    """An empty or all-blank file is a DataError saying it is empty."""
    assert "file is empty" in str(_err(data.load_music, write(text)))


def test_error_not_utf8(write):
    """A file that is not UTF-8 text is a DataError."""
    assert "not UTF-8" in str(_err(data.load_music, write(b"user_id\n\xff\xfe\n")))


def test_error_unparseable_csv(write):
    """A row with more fields than the header is a DataError naming the line."""
    err = _err(data.load_music, write(f"{MUSIC_HEADER}\n\nu1,Asia,1,2,3,4,5,6,7\n"))
    assert "cannot be parsed as CSV" in str(err) and "line 3, saw 9" in str(err)


def test_error_multiline_quoted_field(write):
    """A quoted field spanning lines is a DataError (line numbers would be wrong)."""
    err = _err(data.load_music, write(f'{MUSIC_HEADER}\nu1,"Asia\nEast",1,2,3,4,5\n'))
    assert "spans several lines" in str(err)


def test_error_duplicate_header(write):
    """A header naming a column twice is a DataError naming it."""
    err = _err(data.load_schools, write("student_id,school,score,score\ns1,A,1,2\n"))
    assert "repeats column(s) 'score'" in str(err)


def test_error_missing_columns(write):
    """Missing columns are listed with the expected and the found columns."""
    err = _err(data.load_music, write("user_id,region,pop,Rock\nu1,A,1,2\n"))
    msg = str(err)
    assert "missing column(s) 'rock', 'hiphop', 'classical', 'electronic'" in msg
    assert "found: user_id, region, pop, Rock" in msg and err.column == "rock"


def test_error_zero_rows(write):
    """A header without data rows is a DataError."""
    assert "no data rows" in str(_err(data.load_music, write(MUSIC_HEADER + "\n\n")))


def test_error_missing_values(write):
    """Empty cells (including short rows) are reported by line, with the expectation."""
    text = f"{MUSIC_HEADER}\nu1,A,1,2,3,4,5\nu2,A,1,,3,4,5\nu3,A,1\n"
    err = _err(data.load_music, write(text))
    assert str(err).endswith(
        "column 'rock' has missing values (empty cells) at line 3, line 4; "
        "expected non-negative integers (plain integer literals such as 12)"
    )
    assert err.column == "rock" and err.lines == (3, 4)


def test_error_message_format_matches_contract(write):
    """The message names file, column, 1-based lines and bad values, as documented."""
    rows = [f"u{i},A,1,{'-3' if i == 6 else 'x' if i == 11 else '2'},3,4,5" for i in range(1, 12)]
    path = write(MUSIC_HEADER + "\n" + "\n".join(rows) + "\n")
    err = _err(data.load_music, path)
    assert str(err) == (
        f"{path}: column 'rock' must hold non-negative integers (plain integer literals "
        "such as 12); bad values at line 7 ('-3'), line 12 ('x')"
    )


def test_error_lists_at_most_five_lines(write):
    """Only the first five offending lines are listed, then a count of the rest."""
    rows = [f"u{i},A,1,x,3,4,5" for i in range(8)]
    err = _err(data.load_music, write(MUSIC_HEADER + "\n" + "\n".join(rows) + "\n"))
    assert "line 6 ('x') and 3 more" in str(err) and "line 7" not in str(err)
    assert err.lines == tuple(range(2, 10))


@pytest.mark.parametrize("bad", ["x", "3.0", "1e3", "-3", "+3", "1_000", "0x10", "9" * 20])
def test_error_count_not_plain_nonneg_integer(write, bad):
    """Counts take only plain non-negative integer literals: no text, decimals, exponents, signs."""
    err = _err(data.load_music, write(f"{MUSIC_HEADER}\nu1,A,1,{bad},3,4,5\n"))
    assert f"line 2 ({bad!r})" in str(err) and err.column == "rock"


@pytest.mark.parametrize("bad", ["abc", "1,5", "--1", "1e"])
def test_error_float_not_numeric(write, bad):
    """Non-numeric text in a float column is a DataError quoting the value."""
    text = f'student_id,school,score\ns1,A,1\ns2,A,"{bad}"\n'
    err = _err(data.load_schools, write(text))
    assert "column 'score' must hold finite numbers" in str(err)
    assert f"line 3 ({bad!r})" in str(err)


@pytest.mark.parametrize("bad", ["inf", "-inf", "nan", "NaN", "Infinity", "1e999"])
def test_error_float_not_finite(write, bad):
    """Non-finite values (inf, nan, overflow) in a float column are DataErrors."""
    err = _err(data.load_schools, write(f"student_id,school,score\ns1,A,1\ns2,A,{bad}\n"))
    assert "must hold finite numbers" in str(err) and err.lines == (3,)


@pytest.mark.parametrize("bad", ["0", "-0.5", "0.0", "inf"])
def test_error_standard_error_not_positive(write, bad):
    """Standard errors must be positive and finite."""
    err = _err(data.load_eight_schools, write(f"school,y,se\nA,1,2\nB,1,{bad}\n"))
    assert "column 'se' must hold positive finite numbers" in str(err) and err.lines == (3,)


@pytest.mark.parametrize("bad", ["1", "0", "-5", "2.5"])
def test_error_sample_size_below_two(write, bad):
    """Sample sizes must be integers >= 2."""
    err = _err(data.load_creators, write(f"creator_id,genre,n,effect,se\nc1,M,{bad},0.1,0.2\n"))
    assert "column 'n' must hold integers >= 2" in str(err) and err.lines == (2,)


def test_error_duplicate_ids(write):
    """Duplicate ids are reported with the line of their first occurrence."""
    text = f"{MUSIC_HEADER}\nu1,A,1,2,3,4,5\nu2,A,1,2,3,4,5\nu1,A,1,2,3,4,5\n"
    err = _err(data.load_music, write(text))
    assert (
        "column 'user_id' must hold unique values; duplicates at line 4 ('u1', first at line 2)"
    ) in str(err)


def test_error_duplicate_unique_category(write):
    """The eight-schools school column must not repeat a school."""
    err = _err(data.load_eight_schools, write("school,y,se\nA,1,2\nA,3,4\n"))
    assert "column 'school' must hold unique values" in str(err) and err.lines == (3,)


def test_error_empty_category_label(write):
    """A blank category label (empty or spaces only) is a missing value."""
    err = _err(data.load_music, write(f"{MUSIC_HEADER}\nu1,Asia,1,2,3,4,5\nu2,  ,1,2,3,4,5\n"))
    assert "column 'region' has missing values" in str(err) and err.lines == (3,)


def test_group_minimum_is_enforced_by_the_validator(write):
    """A schema's min_group_size still refuses too-small groups, named with their lines."""
    schema = data.Schema("pairs", data.SCHEMAS["schools"].columns, group_by="school", min_group_size=2)
    text = "student_id,school,score\ns1,A,1\ns2,B,2\ns3,A,3\ns4,C,4\n"
    with pytest.raises(DataError) as info:
        data.read_csv(write(text), schema)
    err = info.value
    assert str(err).endswith(
        "column 'school': each school needs at least 2 rows; "
        "too few at line 3 ('B' has 1 row), line 5 ('C' has 1 row)"
    )
    assert err.column == "school" and err.lines == (3, 5)


def test_schools_accept_single_student_schools(write):
    """A school with one student loads (as the textbook radon counties do), with its one row kept."""
    text = "student_id,school,score\ns1,A,1\ns2,B,2\ns3,A,3\ns4,C,4\n"
    df = data.load_schools(write(text))
    assert df.groupby("school", observed=True).size().to_dict() == {"A": 2, "B": 1, "C": 1}


@pytest.mark.parametrize(
    "loader, text, column",
    [
        (data.load_music, f"{MUSIC_HEADER}\nu1,Europe,1,2,0,4,5\nu2,Asia,0,0,7,0,1\nu3,Europe,3,0,0,0,0\n", "region"),
        (data.load_creators, CREATORS_OK, "genre"),
        (data.load_eight_schools, "school,y,se\nA,28,15\n", "school"),
    ],
)
def test_other_loaders_accept_single_row_groups(write, loader, text, column):
    """A music region with one user, a genre with one creator and a one-school file all load."""
    df = loader(write(text))
    assert df.groupby(column, observed=True).size().min() == 1


def test_single_row_group_with_bad_score_is_still_an_error(write):
    """Accepting one-row schools does not relax the value checks: file, line and column are named."""
    err = _err(data.load_schools, write("student_id,school,score\ns1,A,1\ns2,B,abc\n"))
    assert str(err).startswith(f"{err.source}: column 'score' must hold finite numbers")
    assert err.column == "score" and err.lines == (3,)


def test_data_error_is_value_error():
    """DataError subclasses ValueError and keeps source, column and lines."""
    err = DataError("f.csv", "bad", column="c", lines=[np.int64(3)])
    assert isinstance(err, ValueError) and str(err) == "f.csv: bad"
    assert (err.source, err.column, err.lines) == ("f.csv", "c", (3,))


def test_schema_rejects_unknown_kind():
    """A Column with an undeclared kind is refused at definition time."""
    with pytest.raises(ValueError, match="unknown column kind"):
        data.Column("x", "string")


# --- truth files -----------------------------------------------------------------


def _with_truth(write, csv_text, digest=None):
    path = write(csv_text, "m.csv")
    sha = digest or data.sha256_bytes(path.read_bytes())
    data.truth_path(path).write_text(json.dumps({"data_sha256": sha, "c": 20}) + "\n")
    return path


def test_truth_path_naming():
    """The truth file of data/x.csv is data/x.truth.json."""
    assert data.truth_path("data/music_plays.csv").as_posix() == "data/music_plays.truth.json"


def test_load_truth_matching(write):
    """A truth file whose hash matches the CSV bytes is returned, and both files are logged."""
    path = _with_truth(write, MUSIC_OK)
    start = len(data.READ_LOG)
    assert data.load_truth(path) == {"data_sha256": data.sha256_bytes(path.read_bytes()), "c": 20}
    assert data.READ_LOG[start:] == [str(path.resolve()), str(data.truth_path(path).resolve())]


def test_load_truth_absent(write):
    """No truth file beside the CSV gives None."""
    assert data.load_truth(write(MUSIC_OK)) is None


def test_load_truth_stale_after_csv_changed(write):
    """A CSV replaced after simulation (hash mismatch) gives None."""
    path = _with_truth(write, MUSIC_OK)
    path.write_text(MUSIC_OK + "u4,Asia,1,1,1,1,1\n")
    assert data.load_truth(path) is None


@pytest.mark.parametrize("truth_text", ["{not json", "[1, 2]", '{"c": 1}'])
def test_load_truth_invalid_json(write, truth_text):
    """Invalid JSON, a non-object, or no data_sha256 gives None rather than raising."""
    path = write(MUSIC_OK, "m.csv")
    data.truth_path(path).write_text(truth_text)
    assert data.load_truth(path) is None


def test_load_truth_missing_csv(tmp_path):
    """A truth file without its CSV gives None."""
    (tmp_path / "m.truth.json").write_text('{"data_sha256": "x"}')
    assert data.load_truth(tmp_path / "m.csv") is None


def test_committed_truth_files_match(root):
    """Every committed simulated CSV has a matching truth file; eight_schools has none."""
    for name in ["schools", "music_plays", "creator_experiments"]:
        truth = data.load_truth(root / "data" / f"{name}.csv")
        assert truth is not None and truth["data_file"] == f"{name}.csv"
    assert data.load_truth(root / "data" / "eight_schools.csv") is None
    assert os.path.exists(root / "data" / "eight_schools.csv")


# --- files saved by spreadsheets, and labels that are probably typos ---------------------------

MUSIC_HEADER = "user_id,region,pop,rock,hiphop,classical,electronic"


def test_trailing_empty_excel_columns_are_ignored(write):
    """Two trailing empty columns (Excel's ',,') load as if they were not there."""
    path = write(MUSIC_HEADER + ",,\nu1,Europe,1,2,3,4,5,,\nu2,Asia,0,0,1,0,2,,\n")
    assert list(data.load_music(path).columns) == MUSIC_HEADER.split(",")


@pytest.mark.parametrize("content, expected", [
    ((MUSIC_HEADER + "\nu1,Région,1,2,3,4,5\n").encode("cp1252"), "Windows code page"),
    ((MUSIC_HEADER + "\nu1,Europe,1,2,3,4,5\n").encode("utf-16"), "UTF-16"),
    (b"PK\x03\x04" + b"\x00" * 40, "Excel workbook"),
    ((MUSIC_HEADER.replace(",", ";") + "\nu1;Europe;1;2;3;4;5\n").encode(), "semicolons"),
])
def test_spreadsheet_files_get_the_hint_that_fixes_them(tmp_path, content, expected):
    """cp1252, UTF-16, .xlsx and semicolon files are rejected with a message that says to save as CSV UTF-8, comma-separated."""
    path = tmp_path / "music_plays.csv"
    path.write_bytes(content)
    with pytest.raises(DataError) as err:
        data.load_music(path)
    assert expected in str(err.value)
    assert "CSV UTF-8 (Comma delimited)" in str(err.value)


def test_xlsx_by_name_gets_the_hint(tmp_path):
    """A file named .xlsx is called an Excel workbook, whatever its bytes."""
    path = tmp_path / "music_plays.xlsx"
    path.write_text(MUSIC_HEADER + "\n", encoding="utf-8")
    with pytest.raises(DataError, match="Excel workbook"):
        data.load_music(path)


def test_typo_and_case_variants_of_a_label_are_warned_about(write):
    """'Eurpoe' once beside 'Europe', and 'europe' beside 'Europe', each get a warning naming both and the line."""
    rows = [f"u{i},Europe,1,2,3,4,5" for i in range(5)] + ["u9,Eurpoe,1,0,0,0,0", "u10,europe,0,1,0,0,0"]
    path = write(MUSIC_HEADER + "\n" + "\n".join(rows) + "\n")
    with pytest.warns(data.DataWarning) as caught:
        frame = data.load_music(path)
    messages = [str(w.message) for w in caught]
    assert any("'Eurpoe' (1 row, first at line 7) and 'Europe' (5 rows) are one letter apart" in m for m in messages)
    assert any("'europe' (1 row, first at line 8) and 'Europe' (5 rows) differ only in case or spacing" in m for m in messages)
    assert frame["region"].nunique() == 3  # still loaded as written: the reader decides


@pytest.mark.parametrize("labels", [list("ABCDEFGH"), ["Site 4", "Site 7", "Site 10"], ["Asia", "Europe", "Oceania"],
                                    ["School A", "School H"], ["Wave 2b", "Wave 2c"]])
def test_distinct_labels_are_not_warned_about(labels):
    """Short labels, numbered labels and different words raise no near-duplicate warning."""
    values = [label for label in labels for _ in range(2)] + [labels[0]]
    assert data.near_duplicate_labels(values, range(2, 2 + len(values))) == []


def test_a_one_row_member_of_a_series_is_not_a_typo():
    """'School H' on one row beside 'School A' on ten is a series label (no warning); 'Schol A' on one row is a typo."""
    values = ["School A"] * 10 + ["School H"]
    assert data.near_duplicate_labels(values, range(2, 2 + len(values))) == []
    values = ["School A"] * 10 + ["Schol A"]
    assert len(data.near_duplicate_labels(values, range(2, 2 + len(values)))) == 1
