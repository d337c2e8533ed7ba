"""Re-rendering after a data or code change re-executes exactly the chapters that depend on it.

Most tests work on a temporary project: a copy of ``hbm/`` and ``data/`` with small chapters
and a known manifest of their inputs. A previous render is faked the way Quarto leaves one: a
pre-render, then frozen results under ``_freeze/``, the executed notebook Quarto keeps
(``keep-ipynb``) and the chapter's saved results, then a post-render that files them in the
store of executed chapters. The end-to-end tests at the bottom render with the real Quarto.
"""

import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from unittest import mock

import nbformat
import pytest
import yaml
from booktools import checks as quarto
from booktools import freshness, store
from booktools.freshness import ChapterInputs
from booktools.render import find_quarto, render
from hbm.book.common import save_results

ROOT = Path(__file__).resolve().parents[1]

STACK = {"python": "3.12.1", "pymc": "6.4.0", "numpy": "2.5.5", "hbm": "0.1.0"}

# The temporary book: three computational chapters with known inputs, and a preface.
MANIFEST = {
    "chapters/schools.qmd": ChapterInputs(
        ("data/schools.csv", "data/schools.truth.json"),
        ("hbm/__init__.py", "hbm/book/common.py", "hbm/book/data.py"),
    ),
    "chapters/music.qmd": ChapterInputs(
        ("data/music_plays.csv",),
        ("hbm/__init__.py", "hbm/book/data.py", "hbm/book/simulate.py"),
    ),
    "chapters/creators.qmd": ChapterInputs(
        ("data/creator_experiments.csv",),
        ("hbm/__init__.py", "hbm/book/common.py"),
    ),
}
CHAPTERS = list(MANIFEST)


def _chapter_text(name):
    return f"# {name}\n\n```{{python}}\nx = {name!r}\n```\n\nThe value is `{{python}} x`.\n"


def _fake_render(root, chapters, stack=STACK, used=None):
    """Do what a render does: pre-render, execute the stale chapters (freeze, kept notebook, results), post-render.

    ``used`` maps a chapter to the inputs its execution records (default: its manifest entry).
    """
    assert freshness.pre_render(root, chapters, stack=stack) == 0
    executed = json.loads((root / freshness.PENDING_STALE).read_text(encoding="utf-8"))
    for name in executed:
        stem_dir = root / "_freeze" / Path(name).with_suffix("")
        (stem_dir / "execute-results").mkdir(parents=True, exist_ok=True)
        (stem_dir / "execute-results" / "html.json").write_text(f'{{"hash": "{name}"}}')
        (stem_dir / "figure-html").mkdir(exist_ok=True)
        (stem_dir / "figure-html" / "fig-1.png").write_bytes(name.encode())
        _execute_like_quarto(root, name, (used or {}).get(name))
    (root / "_freeze" / "site_libs" / "quarto-html").mkdir(parents=True, exist_ok=True)
    (root / "_freeze" / "site_libs" / "quarto-html" / "q.js").write_text("lib")
    assert freshness.post_render(root) == 0


def _notebook(name):
    """The executed notebook Quarto would cache for a chapter (its setup cell, then its code)."""
    nb = nbformat.v4.new_notebook(
        metadata={"kernelspec": {"name": "borrowing-strength", "display_name": "Python 3", "language": "python"}}
    )
    nb.cells = [
        nbformat.v4.new_code_cell("# quarto setup", execution_count=1),
        nbformat.v4.new_code_cell(f"x = {name!r}", execution_count=2),
    ]
    return nb


def _used(root, inputs):
    """What a chapter's kernel reports when it read ``inputs.data`` and imported ``inputs.modules``."""
    modules = {path[:-3].replace("/", ".").removesuffix(".__init__"): str(root / path) for path in inputs.modules}
    return {"reads": list(inputs.data), "modules": modules, "cwd": str(root)}


def _execute_like_quarto(root, name, used=None):
    """Leave what Quarto's execution of a chapter leaves: the kept notebook and the saved results.

    The results record that the chapter used exactly its manifest inputs, or ``used``.
    """
    from hbm.book import common

    nbformat.write(_notebook(name), freshness.executed_notebook(root, name))
    used = used or freshness.read_manifest(root).get(name) or ChapterInputs()
    before = Path.cwd()
    os.chdir(root)  # chapters execute from the project root
    try:
        with mock.patch.object(common, "_inputs_so_far", lambda: _used(root, used)):
            save_results(Path(name).stem, {"x": name})
    finally:
        os.chdir(before)


def _cache_records(root):
    """(chapter, fingerprint key) of every record in the store of executed chapters."""
    return sorted((r.uri, r.data["key"]) for r in store._cache(root).list_cache_records())


def _cached_chapters(root):
    """The chapters with an execution in the store."""
    return {uri for uri, _ in _cache_records(root)}


def _frozen_chapters(root):
    return {name for name in CHAPTERS if (root / "_freeze" / Path(name).with_suffix("") / "execute-results").exists()}


def _tree(path):
    """Every folder and file under ``path`` with the files' bytes."""
    return {p.relative_to(path).as_posix(): (p.read_bytes() if p.is_file() else None) for p in sorted(path.rglob("*"))}


def _copy_sources(root):
    """hbm/ (library and book helpers), booktools/ (sources, filter, styles) and data/ into ``root``.

    ``_vendor/`` (the book's pinned JavaScript, installed by make) is linked, not copied.
    """
    shutil.copytree(ROOT / "hbm", root / "hbm", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(ROOT / "booktools", root / "booktools", ignore=shutil.ignore_patterns("__pycache__"))
    if (ROOT / "_vendor").exists():
        (root / "_vendor").symlink_to(ROOT / "_vendor", target_is_directory=True)
    shutil.copytree(ROOT / "data", root / "data")


@pytest.fixture
def tiny_book(tmp_path):
    """A rendered temporary project whose chapters' inputs are :data:`MANIFEST`."""
    root = tmp_path / "book"
    _copy_sources(root)
    (root / "chapters").mkdir()
    for name in CHAPTERS:
        (root / name).write_text(_chapter_text(name), encoding="utf-8")
    (root / "index.qmd").write_text("# Preface\n\nNo code here.\n", encoding="utf-8")
    config = {"project": {"type": "book"}, "book": {"chapters": ["index.qmd", *CHAPTERS]}}
    (root / "_quarto.yml").write_text(yaml.safe_dump(config), encoding="utf-8")
    freshness.write_manifest(root, MANIFEST)
    _fake_render(root, CHAPTERS)
    return root


def _edit(path, old=None, new=None):
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace(old, new, 1) if old else text + "\n# edited\n", encoding="utf-8")


def _readers(manifest, path):
    return {chapter for chapter, inputs in manifest.items() if path in inputs.files}


# --- staleness --------------------------------------------------------------------------------


def test_untouched_project_marks_nothing(tiny_book, capsys):
    """With nothing changed (files merely touched), no chapter is stale and nothing is removed."""
    for path in [*(tiny_book / "data").iterdir(), *(tiny_book / "hbm").iterdir()]:
        os.utime(path)  # a new mtime, the same bytes
    freeze, cache = _tree(tiny_book / "_freeze"), _cache_records(tiny_book)
    assert freshness.stale_chapters(tiny_book, stack=STACK) == {}
    assert freshness.pre_render(tiny_book, stack=STACK) == 0
    assert "all 3 computational chapters are up to date; none re-executes" in capsys.readouterr().out
    assert _cache_records(tiny_book) == cache
    freeze_after = _tree(tiny_book / "_freeze")
    freeze_after.pop(".fingerprints.pending.json")
    freeze_after.pop(".stale.pending.json")
    assert freeze_after == freeze


@pytest.mark.parametrize("data_file", ["data/schools.csv", "data/music_plays.csv", "data/creator_experiments.csv",
                                       "data/schools.truth.json", "data/eight_schools.csv"])
def test_editing_a_data_file_marks_exactly_its_readers(tiny_book, data_file, capsys):
    """Editing one data file marks exactly the chapters that read it, and removes only their freeze and cache."""
    path = tiny_book / data_file
    if path.suffix == ".csv":
        lines = path.read_text(encoding="utf-8").splitlines()
        path.write_text("\n".join(lines[:-1]) + "\n", encoding="utf-8")  # drop the last row: still valid
    else:
        _edit(path, '"', '"_')
    readers = _readers(MANIFEST, data_file)
    stale = freshness.stale_chapters(tiny_book, stack=STACK)
    assert set(stale) == readers
    assert all(reasons == [f"{data_file} changed"] for reasons in stale.values())

    assert freshness.pre_render(tiny_book, stack=STACK) == 0
    out = capsys.readouterr().out
    for chapter in readers:
        assert f"{chapter}: {data_file} changed\n" in out
    assert _frozen_chapters(tiny_book) == set(CHAPTERS) - readers
    assert _cached_chapters(tiny_book) == set(CHAPTERS) - readers
    assert (tiny_book / "_freeze" / "site_libs" / "quarto-html" / "q.js").exists()


@pytest.mark.parametrize("module", ["hbm/book/data.py", "hbm/book/common.py", "hbm/book/simulate.py", "hbm/__init__.py", "hbm/pooling.py"])
def test_editing_an_hbm_module_marks_its_importers(tiny_book, module):
    """Editing an hbm module marks exactly the chapters that import it (directly or not)."""
    _edit(tiny_book / module)
    stale = freshness.stale_chapters(tiny_book, stack=STACK)
    assert set(stale) == _readers(MANIFEST, module)
    assert all(reasons == [f"{module} changed"] for reasons in stale.values())


def test_transitive_imports_and_reads_are_recorded(tmp_path):
    """`record` executes a chapter and lists the hbm modules it imports transitively and the files it reads."""
    root = tmp_path / "book"
    _copy_sources(root)
    (root / "chapters").mkdir()
    (root / "chapters" / "tiny.qmd").write_text(textwrap.dedent("""\
        # Tiny

        ```{python}
        import hbm.book.simulate  # imports hbm.book.data itself
        from hbm.book.data import load_eight_schools, load_truth

        eight = load_eight_schools()
        truth = load_truth("data/schools.csv")
        ```
        """), encoding="utf-8")
    (root / "_quarto.yml").write_text(yaml.safe_dump({"book": {"chapters": ["chapters/tiny.qmd"]}}))
    manifest = freshness.record(root)
    assert manifest == freshness.read_manifest(root) == {
        "chapters/tiny.qmd": ChapterInputs(
            ("data/eight_schools.csv", "data/schools.csv", "data/schools.truth.json"),
            ("hbm/__init__.py", "hbm/book/__init__.py", "hbm/book/data.py", "hbm/book/simulate.py",
             "hbm/errors.py"),
        )
    }
    _fake_render(root, ["chapters/tiny.qmd"])
    _edit(root / "hbm" / "book" / "common.py")
    assert freshness.stale_chapters(root, stack=STACK) == {}
    _edit(root / "hbm" / "book" / "data.py")
    assert freshness.stale_chapters(root, stack=STACK) == {"chapters/tiny.qmd": ["hbm/book/data.py changed"]}


def test_other_changes_are_named(tiny_book):
    """A changed chapter source, stack version, missing file or new chapter is reported with its reason."""
    _edit(tiny_book / "chapters" / "music.qmd")
    stack = {**STACK, "pymc": "6.5.0"}
    (tiny_book / "data" / "creator_experiments.csv").unlink()
    stale = freshness.stale_chapters(tiny_book, stack=stack)
    assert stale["chapters/music.qmd"] == ["chapters/music.qmd changed", "pymc 6.4.0 -> 6.5.0"]
    assert stale["chapters/creators.qmd"] == ["data/creator_experiments.csv is missing", "pymc 6.4.0 -> 6.5.0"]
    assert stale["chapters/schools.qmd"] == ["pymc 6.4.0 -> 6.5.0"]


def test_new_chapter_is_reported_as_new_not_an_error(tiny_book, capsys):
    """A chapter never rendered (no stored fingerprint) is reported as new and the pre-render succeeds."""
    (tiny_book / "chapters" / "new.qmd").write_text(_chapter_text("new"), encoding="utf-8")
    freshness.write_manifest(tiny_book, {**MANIFEST, "chapters/new.qmd": ChapterInputs(("data/schools.csv",), ())})
    assert freshness.pre_render(tiny_book, [*CHAPTERS, "chapters/new.qmd"], stack=STACK) == 0
    captured = capsys.readouterr()
    assert "chapters/new.qmd: new: never rendered here (no stored fingerprint)" in captured.out
    assert "1 of 4 computational chapters will re-execute" in captured.out
    assert captured.err == ""


def test_unrecorded_chapter_depends_on_everything_until_recorded(tiny_book, capsys):
    """A chapter missing from the manifest is warned about and depends on every data file and hbm module; its first render records what it used."""
    draft = "chapters/draft.qmd"
    (tiny_book / draft).write_text(_chapter_text("draft"), encoding="utf-8")
    chapters = [*CHAPTERS, draft]
    assert freshness.read_manifest(tiny_book).get(draft) is None
    fp = store.project_fingerprint(tiny_book, draft)
    assert "data/eight_schools.csv" in fp["inputs"] and "hbm/pooling.py" in fp["inputs"]
    used = ChapterInputs(("data/eight_schools.csv",), ("hbm/__init__.py",))
    _fake_render(tiny_book, chapters, used={draft: used})
    assert "chapters/draft.qmd is not in chapters/_inputs.yml" in capsys.readouterr().err
    assert freshness.read_manifest(tiny_book)[draft] == used
    _edit(tiny_book / "data" / "eight_schools.csv", "A,28,15", "A,29,15")
    assert freshness.stale_chapters(tiny_book, chapters, stack=STACK) == {draft: ["data/eight_schools.csv changed"]}


def test_chapters_without_code_are_not_tracked(tiny_book):
    """Chapters without Python cells (nothing to execute, freeze or cache) are never stale."""
    assert freshness.computational_chapters(tiny_book) == CHAPTERS
    _edit(tiny_book / "index.qmd")
    assert freshness.stale_chapters(tiny_book, ["index.qmd"], stack=STACK) == {}


# --- invalidation -------------------------------------------------------------------------------


def test_incremental_render_checks_only_the_files_rendered(tiny_book, capsys):
    """`quarto render chapters/music.qmd` re-runs and invalidates music only, even if others are stale too."""
    _edit(tiny_book / "hbm" / "book" / "data.py")  # schools and music are stale
    assert freshness.pre_render(tiny_book, ["chapters/music.qmd"], stack=STACK) == 0
    assert "1 of 1 computational chapters will re-execute" in capsys.readouterr().out
    assert _frozen_chapters(tiny_book) == {"chapters/schools.qmd", "chapters/creators.qmd"}
    assert _cached_chapters(tiny_book) == {"chapters/schools.qmd", "chapters/creators.qmd"}
    _execute_like_quarto(tiny_book, "chapters/music.qmd")
    freshness.post_render(tiny_book)
    assert _cached_chapters(tiny_book) == set(CHAPTERS)
    assert set(freshness.stale_chapters(tiny_book, stack=STACK)) == {"chapters/schools.qmd"}


def test_post_render_stores_only_rendered_chapters(tiny_book):
    """Post-render stores the fingerprints of the chapters whose pages Quarto reports as rendered."""
    _edit(tiny_book / "hbm" / "book" / "data.py")
    assert freshness.pre_render(tiny_book, stack=STACK) == 0
    for name in ("chapters/schools.qmd", "chapters/music.qmd"):
        _execute_like_quarto(tiny_book, name)
    freshness.post_render(tiny_book, ["_book/index.html", "_book/chapters/music.html"], "_book")
    assert set(freshness.stale_chapters(tiny_book, stack=STACK)) == {"chapters/schools.qmd"}
    assert not (tiny_book / freshness.PENDING).exists()


def test_failed_render_leaves_chapters_stale(tiny_book):
    """Without a post-render (the render failed), the invalidated chapters stay stale for the next render."""
    _edit(tiny_book / "data" / "music_plays.csv", "u001,North America,0,1,", "u001,North America,0,2,")
    assert freshness.pre_render(tiny_book, stack=STACK) == 0
    assert freshness.stale_chapters(tiny_book, stack=STACK) == {"chapters/music.qmd": ["data/music_plays.csv changed"]}


# --- validation before anything runs ----------------------------------------------------------


def test_malformed_csv_is_rejected_and_nothing_is_touched(tiny_book, capsys):
    """A malformed CSV stops the pre-render with file, column and line, and leaves _freeze/ and the cache as they were."""
    path = tiny_book / "data" / "music_plays.csv"
    lines = path.read_text(encoding="utf-8").splitlines()
    cells = lines[6].split(",")
    cells[3] = "-3"  # rock, on line 7
    lines[6] = ",".join(cells)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    freeze, cache = _tree(tiny_book / "_freeze"), _cache_records(tiny_book)

    assert freshness.pre_render(tiny_book, stack=STACK) == 1
    captured = capsys.readouterr()
    assert "data/music_plays.csv: column 'rock' must hold non-negative integers" in captured.err
    assert "line 7 ('-3')" in captured.err
    assert "no frozen result was deleted, _book/ is unchanged" in captured.err
    assert _tree(tiny_book / "_freeze") == freeze
    assert _cache_records(tiny_book) == cache


def test_validation_uses_the_loaders_default_paths():
    """Each CSV in data/ is validated by the hbm.book.data loader that reads it by default."""
    from hbm.book import data

    assert freshness.loaders() == {
        "data/schools.csv": data.load_schools,
        "data/eight_schools.csv": data.load_eight_schools,
        "data/music_plays.csv": data.load_music,
        "data/creator_experiments.csv": data.load_creators,
    }
    errors, unchecked = freshness.validate_inputs(ROOT, ["data/schools.csv", "data/schools.truth.json", "data/other.csv"])
    assert errors == [] and unchecked == ["data/other.csv"]


# --- the Quarto hooks ---------------------------------------------------------------------------


def test_quarto_config_registers_the_hooks():
    """_quarto.yml runs the pre-render and post-render scripts, which exist."""
    project = quarto.load_config(ROOT)["project"]
    assert project["pre-render"] == "scripts/pre_render.py"
    assert project["post-render"] == "scripts/post_render.py"
    assert (ROOT / project["pre-render"]).exists() and (ROOT / project["post-render"]).exists()


def test_hook_scripts_run_as_quarto_runs_them(tiny_book):
    """The scripts run from the project root with the project's Python and Quarto's variables, and fail on bad data."""
    shutil.copytree(ROOT / "scripts", tiny_book / "scripts")
    env = {**os.environ, "QUARTO_PROJECT_RENDER_ALL": "1", "QUARTO_PROJECT_OUTPUT_DIR": "_book",
           "QUARTO_PROJECT_INPUT_FILES": "index.qmd\n" + "\n".join(CHAPTERS)}

    def run(script, **extra):
        return subprocess.run([sys.executable, f"scripts/{script}"], cwd=tiny_book, env={**env, **extra},
                              capture_output=True, text=True, timeout=120)

    _edit(tiny_book / "data" / "schools.csv", "s0001,School A,67.6", "s0001,School A,67.7")
    pre = run("pre_render.py")
    assert pre.returncode == 0, pre.stderr
    assert "chapters/schools.qmd: data/schools.csv changed" in pre.stdout
    _execute_like_quarto(tiny_book, "chapters/schools.qmd")
    post = run("post_render.py", QUARTO_PROJECT_OUTPUT_FILES="_book/chapters/schools.html")
    assert post.returncode == 0, post.stderr
    assert "recorded the fingerprints of 1 chapter(s)" in post.stdout

    _edit(tiny_book / "data" / "schools.csv", "s0001,School A,67.7", "s0001,School A,abc")
    bad = run("pre_render.py")
    assert bad.returncode == 1
    assert "data/schools.csv: column 'score' must hold finite numbers" in bad.stderr
    assert "line 2 ('abc')" in bad.stderr


# --- the real book -------------------------------------------------------------------------------


@pytest.fixture
def real_copy(tmp_path):
    """A copy of this project's configuration, chapters, data, hbm sources and manifest, rendered."""
    root = tmp_path / "real"
    _copy_sources(root)
    shutil.copy2(ROOT / "_quarto.yml", root / "_quarto.yml")
    shutil.copytree(ROOT / "chapters", root / "chapters", ignore=shutil.ignore_patterns(".jupyter_cache", "*_files"))
    for name in quarto.book_files(ROOT):
        if (ROOT / name).exists() and not (root / name).exists():
            shutil.copy2(ROOT / name, root / name)
    chapters = freshness.computational_chapters(root)
    _fake_render(root, chapters)
    return root, chapters


def _expected(root, chapters, path):
    """Readers of ``path`` per the manifest; chapters not in it count every file as an input."""
    manifest = freshness.read_manifest(root)
    return {c for c in chapters if c not in manifest or path in manifest[c].files}


@pytest.mark.parametrize("data_file", sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "data").glob("*.csv")))
def test_real_book_data_change_marks_exactly_its_readers(real_copy, data_file):
    """In a copy of this tiny_book, editing one CSV marks exactly the chapters that read it."""
    root, chapters = real_copy
    lines = (root / data_file).read_text(encoding="utf-8").splitlines()
    (root / data_file).write_text("\n".join(lines[:-1]) + "\n", encoding="utf-8")
    assert set(freshness.stale_chapters(root, stack=STACK)) == _expected(root, chapters, data_file)


def test_real_book_hbm_change_marks_exactly_its_importers(real_copy):
    """In a copy of this tiny_book, editing hbm/book/data.py marks exactly the chapters importing it; no edit marks none."""
    root, chapters = real_copy
    assert freshness.stale_chapters(root, stack=STACK) == {}
    _edit(root / "hbm" / "book" / "data.py")
    assert set(freshness.stale_chapters(root, stack=STACK)) == _expected(root, chapters, "hbm/book/data.py")


BOOK_QMD = [name for name in quarto.book_files(ROOT) if name.endswith(".qmd")]


@pytest.mark.parametrize("name", BOOK_QMD)
def test_manifest_matches_what_each_chapter_reads(name, chapter):
    """chapters/_inputs.yml lists exactly the data files each chapter reads and the hbm modules it imports."""
    if not (ROOT / name).exists():
        pytest.skip(f"{name} does not exist yet")
    if not freshness.is_computational(ROOT / name):
        return  # no Python cells: nothing is executed, frozen or cached
    recorded = freshness.read_manifest(ROOT).get(name)
    actual = freshness.chapter_inputs(chapter(name), ROOT)
    assert recorded == actual, (
        f"{freshness.MANIFEST} is out of date for {name}: it records {recorded}, but the chapter "
        f"reads {actual.data} and imports {actual.modules}; run "
        f"`python -m booktools.freshness record {name}` and commit {freshness.MANIFEST}"
    )


# --- end to end with Quarto ---------------------------------------------------------------------


@pytest.mark.quarto
def test_real_quarto_rerenders_changes_and_keeps_the_last_good_book(tmp_path):
    """With the real Quarto: a no-change render executes nothing, bad data and a chapter error leave _book/ intact, a data change shows new numbers."""
    quarto_bin = find_quarto(ROOT)
    if quarto_bin is None:
        pytest.skip("no quarto on PATH and none at ../shared/quarto/bin/quarto; the pre-render and "
                    "post-render logic is tested above against a simulated render")
    root = tmp_path / "book"
    _copy_sources(root)
    for name in ["references.bib", "references.qmd"]:
        shutil.copy2(ROOT / name, root / name)
    (root / "index.qmd").write_text("# Preface {.unnumbered}\n\nOne chapter.\n", encoding="utf-8")
    shutil.copytree(ROOT / "scripts", root / "scripts")
    (root / "chapters").mkdir()
    intro = root / "chapters" / "intro.qmd"
    shutil.copy2(ROOT / "chapters" / "intro.qmd", intro)
    # The chapter the intro cross-references, as a stub without code (nothing to execute),
    # holding every section the intro refers to that the intro does not define.
    text = intro.read_text(encoding="utf-8")
    defined = set(re.findall(r"\{#(sec-[\w-]+)", text))
    wanted = sorted(set(re.findall(r"@(sec-[\w-]*\w)", text)) - defined - {"sec-partial-pooling"})
    (root / "chapters" / "partial-pooling.qmd").write_text(
        "# Partial pooling {#sec-partial-pooling}\n\nA stub.\n\n"
        + "".join(f"## {label} {{#{label}}}\n\nA stub.\n\n" for label in wanted), encoding="utf-8")
    shutil.copy2(ROOT / freshness.MANIFEST, root / freshness.MANIFEST)
    config = quarto.load_config(ROOT)
    config["book"]["chapters"] = ["index.qmd", "chapters/intro.qmd", "chapters/partial-pooling.qmd", "references.qmd"]
    (root / "_quarto.yml").write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    page = root / freshness.PUBLISHED / "chapters" / "intro.html"
    csv = root / "data" / "schools.csv"
    students = csv.read_text(encoding="utf-8").splitlines()

    first = render(root, quarto=quarto_bin, timeout=1800)
    assert first.ok, first.output[-3000:]
    assert f"{len(students) - 1:,} students" in page.read_text(encoding="utf-8")
    assert store.get(root, "chapters/intro.qmd", store.fingerprint_key(store.project_fingerprint(root, "chapters/intro.qmd")))

    again = render(root, quarto=quarto_bin, timeout=1800)
    assert again.ok and "none re-executes" in again.output and "Executing" not in again.output
    good_book = _tree(root / freshness.PUBLISHED)

    # Bad data: reported before anything executes, by `quarto render` and by `status` alike.
    bad = students[:1] + [students[1].rsplit(",", 1)[0] + ",abc"] + students[2:]
    csv.write_text("\n".join(bad) + "\n", encoding="utf-8")
    failed = render(root, quarto=quarto_bin, timeout=1800)
    assert failed.returncode != 0 and "column 'score' must hold finite numbers" in failed.output
    assert "Executing" not in failed.output
    assert _tree(root / freshness.PUBLISHED) == good_book
    status = subprocess.run([sys.executable, "-m", "booktools.freshness", "status"], cwd=root,
                            capture_output=True, text=True, timeout=300)
    assert status.returncode == 1 and "column 'score' must hold finite numbers" in status.stderr

    # A chapter that raises: the render fails, the published book stays complete and as it was.
    csv.write_text("\n".join(students) + "\n", encoding="utf-8")
    text = intro.read_text(encoding="utf-8")
    intro.write_text(text + "\n```{python}\nraise RuntimeError('broken on purpose')\n```\n", encoding="utf-8")
    broken = render(root, quarto=quarto_bin, timeout=1800)
    assert broken.returncode != 0 and "broken on purpose" in broken.output
    assert _tree(root / freshness.PUBLISHED) == good_book

    # A real data change: drop the last school's students; the page shows the new count.
    intro.write_text(text, encoding="utf-8")
    last = students[-1].split(",")[1]
    kept = [line for line in students if line.split(",")[1] != last]
    csv.write_text("\n".join(kept) + "\n", encoding="utf-8")
    changed = render(root, quarto=quarto_bin, timeout=1800)
    assert changed.ok, changed.output[-3000:]
    assert "chapters/intro.qmd: data/schools.csv changed" in changed.output
    assert f"{len(kept) - 1:,} students" in page.read_text(encoding="utf-8")


def test_post_render_records_what_a_chapter_newly_imports(tiny_book):
    """A chapter that starts importing a module its manifest entry lacks: post-render records it, files it under that fingerprint, and a later edit of the module re-executes it."""
    name = "chapters/creators.qmd"
    _edit(tiny_book / name)
    before = freshness.read_manifest(tiny_book)[name]
    now = ChapterInputs(before.data, tuple(sorted({*before.modules, "hbm/pooling.py"})))
    _fake_render(tiny_book, CHAPTERS, used={name: now})
    assert freshness.read_manifest(tiny_book)[name] == now
    assert freshness.stale_chapters(tiny_book, stack=STACK) == {}
    assert store.has(tiny_book, name, store.fingerprint_key(freshness.fingerprint(tiny_book, name, now, STACK)))
    _edit(tiny_book / "hbm" / "pooling.py")
    assert freshness.stale_chapters(tiny_book, stack=STACK) == {name: ["hbm/pooling.py changed"]}
