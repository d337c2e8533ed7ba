"""Every chapter as a Jupyter notebook a reader downloads: its visible code and its prose.

Quarto does not make ``ipynb`` output for book projects, so the post-render step builds one
per chapter from the chapter's executed notebook (the store of executed chapters): the
markdown with every inline value in place, as the page reads it, and the code of every cell the
page shows (folded chart code included), without Quarto's ``#|`` options and without outputs;
hidden cells (the book's setup and sentence helpers) are left out, so the notebook runs on its
own, exactly as the copy test runs the same code (:mod:`booktools.copyscript`). It opens with a
note on where to run it and ends with the versions the chapter ran with.
"""

from __future__ import annotations

import re
from pathlib import Path

import nbformat

from booktools.copyscript import is_visible, resolve_includes
from booktools.execute import INLINE_RE, document_flags, keep_shown, parse_options

#: Quarto markup that means nothing in Jupyter: heading attributes and fenced-div lines.
_ATTRS_RE = re.compile(r"\s*\{(?:#|\.)[^}]*\}\s*$", re.MULTILINE)
_DIV_RE = re.compile(r"^:::+.*$\n?", re.MULTILINE)
_CITE_RE = re.compile(r"\[(@[^\]]+)\]")
_REF_RE = re.compile(r"@((?:sec|fig|tbl|eq)-[\w-]+)")
_KEY_RE = re.compile(r"@([A-Za-z][\w:-]*\d{4}[a-z]?)")
_BIB_RE = re.compile(r"@\w+\{([^,\s]+),(.*?)\n\}", re.DOTALL)


def bibliography(path: str | Path) -> dict[str, str]:
    """Citation key -> "Author Year" ("Efron and Morris 1975", "Gelman et al. 2013") from a BibTeX file."""
    found = {}
    text = Path(path).read_text(encoding="utf-8") if Path(path).exists() else ""
    for key, body in _BIB_RE.findall(text):
        author = re.search(r"author\s*=\s*\{(.*?)\}\s*,?\s*\n", body, re.DOTALL)
        year = re.search(r"year\s*=\s*\{?(\d{4})", body)
        names = [a.split(",")[0].strip(" {}") for a in author.group(1).split(" and ")] if author else [key]
        who = names[0] if len(names) == 1 else (" and ".join(names) if len(names) == 2 else names[0] + " et al.")
        found[key] = f"{who} {year.group(1) if year else ''}".strip()
    return found


def _shown_markdown(cell) -> str:
    """A markdown cell's text with its inline values in place (Quarto's substitution)."""
    values = {}
    for item in cell.get("metadata", {}).get("user_expressions", []):
        data = item["result"].get("data", {})
        text = data.get("text/markdown", data.get("text/plain", ""))
        if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
            text = text[1:-1]
        values[item["expression"].strip()] = text

    def substitute(match):
        prefix = match.group(0)[: match.start(1) - match.start(0) - len("`{python} ")]
        return prefix + values.get(match.group(1).strip(), match.group(0))

    return INLINE_RE.sub(substitute, cell.source)


def _plain_markdown(text: str, labels: dict[str, str], bib: dict[str, str]) -> str:
    """Quarto's cross-references, citations, attributes and divs as plain Markdown."""
    text = _DIV_RE.sub("", text)
    text = _ATTRS_RE.sub("", text)
    text = _REF_RE.sub(lambda m: labels.get(m.group(1), "below"), text)

    def cite(match):
        keys = [k.strip().lstrip("@") for k in match.group(1).split(";")]
        return "(" + "; ".join(bib.get(k, k) for k in keys) + ")"

    text = _CITE_RE.sub(cite, text)

    def narrative(match):
        who = bib.get(match.group(1))
        if who is None:
            return match.group(0)
        name, _, year = who.rpartition(" ")
        return f"{name} ({year})"

    return _KEY_RE.sub(narrative, text)


def _labels(executed) -> dict[str, str]:
    """Cross-reference labels -> words that stand in for them in a notebook."""
    words = {"fig": "the figure", "tbl": "the table", "sec": "the section", "eq": "the equation"}
    found = {}
    for cell in executed.cells:
        for label in re.findall(r"(?:#\|\s*label:\s*|\{#)((?:sec|fig|tbl|eq)-[\w-]+)", cell.source):
            found[label] = words[label.split("-", 1)[0]]
    return found


def build(qmd: str | Path, executed, versions: str, data_files: list[str],
          bib: dict[str, str] | None = None) -> nbformat.NotebookNode:
    """The downloadable notebook of chapter ``qmd``.

    Parameters
    ----------
    qmd : path
        The chapter's ``.qmd`` (includes are resolved relative to its folder).
    executed : nbformat.NotebookNode
        The chapter's executed notebook (Quarto's, from the store): markdown with inline
        values, code cells with their ``#|`` options.
    versions : str
        The Markdown table of versions the chapter ran with.
    data_files : list of str
        The data files the code reads (``data/…``), named in the opening note.
    bib : dict, optional
        Citation key -> "Author Year" (:func:`bibliography`), for the text's citations.
    """
    qmd = Path(qmd)
    labels = _labels(executed)
    flags = document_flags(executed)  # the conditional prose Quarto kept for this data
    cells = []
    title = ""
    for cell in executed.cells:
        if cell.cell_type == "markdown":
            shown = keep_shown(_shown_markdown(cell), flags)
            text = _plain_markdown(shown, labels, bib or {}).strip()
            if text:
                cells.append(nbformat.v4.new_markdown_cell(text))
                title = title or text.splitlines()[0].lstrip("# ").strip()
        elif cell.cell_type == "code":
            options = parse_options(cell.source)
            if not is_visible(options) or "parameters" in cell.get("metadata", {}).get("tags", []):
                continue
            lines = [line for line in cell.source.splitlines() if not line.startswith("#|")]
            code = resolve_includes("\n".join(lines).strip("\n"), qmd.parent)
            cells.append(nbformat.v4.new_code_cell(code))
    files = ", ".join(f"`{f}`" for f in data_files)
    intro = (
        f"From the book *Borrowing Strength*: the chapter \u201c{title}\u201d as a notebook. "
        "It holds the chapter's text and every code cell the page shows, in order; the book's "
        "own helpers for sentences and tables are left out, so it runs with public packages and "
        "the `hbm` library alone. "
        + (f"Run it in a folder that holds {files}. " if files else "")
        + "The numbers in the text are those of the book's render; the code recomputes them."
    )
    cells.insert(1 if cells and cells[0].cell_type == "markdown" else 0, nbformat.v4.new_markdown_cell(intro))
    cells.append(nbformat.v4.new_markdown_cell("## Versions\n\nThe book ran this chapter with:\n\n" + versions))
    nb = nbformat.v4.new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    return nb


def code_cells(nb: nbformat.NotebookNode) -> list[str]:
    """The source of every code cell of a notebook, in order."""
    return [cell.source for cell in nb.cells if cell.cell_type == "code"]


def write_downloads(root: Path, output: Path, out=None) -> list[Path]:
    """Publish every chapter's downloads beside its page in ``output`` (the render's folder).

    For each computational chapter whose page was rendered: ``<stem>.ipynb`` (:func:`build`,
    from the chapter's execution in the store), its fitted posteriors
    ``<stem>-<model>.nc`` (written by :func:`hbm.book.common.save_posterior` under
    ``.cache/posteriors/<stem>/``), and the data files it reads under ``data/``. Returns the
    files written.
    """
    import shutil
    import sys

    from booktools import store
    from booktools.freshness import computational_chapters, read_manifest
    from hbm.book.common import POSTERIORS_DIR, versions_markdown

    out = out or sys.stdout
    root, output = Path(root), Path(output)
    manifest = read_manifest(root)
    bib = bibliography(root / "references.bib")
    written = []
    for chapter in computational_chapters(root):
        page = output / Path(chapter).with_suffix(".html")
        if not page.exists():
            continue
        stem = Path(chapter).stem
        inputs = manifest.get(chapter)
        data = [f for f in (inputs.data if inputs else ()) if f.endswith(".csv")]
        for rel in data:
            target = output / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(root / rel, target)
            written.append(target)
        key = store.fingerprint_key(store.project_fingerprint(root, chapter))
        executed = store.get(root, chapter, key)
        if executed is None:
            print(f"downloads: no execution of {chapter} in the store; its notebook is not written", file=out)
        else:
            nb = build(root / chapter, executed.notebook, versions_markdown(), data, bib)
            target = page.with_suffix(".ipynb")
            nbformat.write(nb, target)
            written.append(target)
        for nc in sorted((root / POSTERIORS_DIR / stem).glob("*.nc")):
            target = page.parent / f"{stem}-{nc.name}"
            shutil.copyfile(nc, target)
            written.append(target)
    print(f"downloads: wrote {len(written)} file(s) beside the chapters", file=out)
    return written
