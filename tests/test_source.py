"""booktools.source: the source archive the rendered book ships and the preface links."""

import tarfile

from booktools import source


def test_archive_holds_the_project_and_nothing_generated(root, tmp_path):
    """The archive unpacks to the project: package, chapters, data, build files; no venv, output or cache."""
    path = source.write_archive(root, tmp_path)
    with tarfile.open(path) as tar:
        names = set(tar.getnames())
    for needed in ("pyproject.toml", "Makefile", "README.md", "hbm/__init__.py", "hbm/book/data.py",
                   "chapters/intro.qmd", "data/schools.csv", "_quarto.yml", "references.bib"):
        assert f"{source.TOP}/{needed}" in names, needed
    assert not any(part in {".venv", "_book", "_render", ".cache", ".git"} for n in names for part in n.split("/"))


def test_archive_is_reproducible(root, tmp_path):
    """Writing the archive twice from the same files gives the same bytes."""
    first = source.write_archive(root, tmp_path / "a").read_bytes()
    assert source.write_archive(root, tmp_path / "b").read_bytes() == first
