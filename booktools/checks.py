"""Static checks of the book that Quarto would otherwise do at render time.

Where the ``quarto`` binary is absent these stand in for a render: every chapter listed in
``_quarto.yml`` exists, every cross-reference (``@fig-``, ``@tbl-``, ``@sec-``, ``@eq-``)
resolves to a label defined somewhere in the book, every citation key is in the
bibliography, and every figure cell states ``fig-cap`` and ``fig-alt``. Each check returns a
list of problems, each naming the chapter, the line and the cause (empty: all good).
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from booktools.execute import CHUNK_RE, parse_options, resolve_includes

XREF_KINDS = ("fig", "tbl", "sec", "eq", "lst", "thm", "lem", "cor", "prp", "cnj", "def", "exm", "exr")
XREF_RE = re.compile(r"(?<![\w@])@((?:%s)-[A-Za-z0-9_-]*[A-Za-z0-9])" % "|".join(XREF_KINDS))
# Pandoc citations: @key or [@key; -@key2]; keys start with a letter, digit or underscore.
CITE_RE = re.compile(r"(?<![\w@.\\/])-?@([A-Za-z0-9_][\w:.#$%&+?<>~/-]*)")
LABEL_ATTR_RE = re.compile(r"\{#((?:%s)-[A-Za-z0-9_-]+)[^}]*\}" % "|".join(XREF_KINDS))
BIB_KEY_RE = re.compile(r"^\s*@\w+\s*\{\s*([^,\s]+)\s*,", re.MULTILINE)


def load_config(root: Path) -> dict:
    """``_quarto.yml`` as a dict."""
    return yaml.safe_load((Path(root) / "_quarto.yml").read_text(encoding="utf-8"))


def book_files(root: Path) -> list[str]:
    """Every file the book lists (index and chapters, parts flattened, appendices too)."""
    book = load_config(root).get("book", {})
    files: list[str] = []

    def walk(items):
        for item in items or []:
            if isinstance(item, str):
                files.append(item)
            elif isinstance(item, dict):
                if "part" in item and str(item["part"]).endswith((".qmd", ".md")):
                    files.append(item["part"])
                walk(item.get("chapters"))

    walk(book.get("chapters"))
    walk(book.get("appendices"))
    return files


def _files(root: Path, files: list[str] | None) -> list[str]:
    """The book's files plus any extra ``files`` (a chapter not yet listed in ``_quarto.yml``)."""
    listed = book_files(root)
    return listed + [f for f in files or [] if f not in listed]


def _texts(root: Path, files: list[str] | None):
    """(name, text) of every book file that exists (missing ones are check_chapters_exist's job)."""
    for name in _files(root, files):
        path = Path(root) / name
        if path.exists():
            # Code a chunk includes ({{< include >}}) is checked as the code Quarto runs.
            yield name, resolve_includes(path.read_text(encoding="utf-8"), path.parent)


def _prose_lines(text: str):
    """(line number, line) for lines outside code chunks and outside the YAML front matter."""
    in_code, in_yaml = False, False
    for lineno, line in enumerate(text.splitlines(), start=1):
        if lineno == 1 and line.strip() == "---":
            in_yaml = True
            continue
        if in_yaml:
            in_yaml = line.strip() not in ("---", "...")
            continue
        if line.lstrip().startswith("```"):
            in_code = not in_code
            continue
        if not in_code:
            # Inline code (including `{python} expr`) is not prose.
            yield lineno, re.sub(r"`[^`]*`", "", line)


def _cells(text: str):
    """(first source line, options, source) of every code chunk."""
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        if CHUNK_RE.match(lines[i]):
            start, body = i + 2, []
            i += 1
            while i < len(lines) and not lines[i].startswith("```"):
                body.append(lines[i])
                i += 1
            source = "\n".join(body)
            yield start, parse_options(source), source
        i += 1


def labels(root: Path, files: list[str] | None = None) -> dict[str, str]:
    """Every cross-reference label defined in the book, mapped to the file defining it."""
    found = {}
    for name, text in _texts(root, files):
        for _, line in _prose_lines(text):
            for m in LABEL_ATTR_RE.finditer(line):
                found[m.group(1)] = name
        # Equation labels follow the closing $$ of display math, which may sit in prose lines.
        for m in re.finditer(r"\$\$\s*\{#(eq-[A-Za-z0-9_-]+)\}", text):
            found[m.group(1)] = name
        for _, options, _ in _cells(text):
            if options.get("label", "").split("-")[0] in XREF_KINDS:
                found[options["label"]] = name
    return found


def bib_keys(root: Path) -> set[str]:
    """Citation keys of every bibliography named in ``_quarto.yml``."""
    config = load_config(root)
    bibs = config.get("bibliography") or []
    bibs = [bibs] if isinstance(bibs, str) else bibs
    keys = set()
    for bib in bibs:
        keys |= set(BIB_KEY_RE.findall((Path(root) / bib).read_text(encoding="utf-8")))
    return keys


def check_chapters_exist(root: Path) -> list[str]:
    """Problems: book entries in ``_quarto.yml`` whose file is missing."""
    return [f"_quarto.yml lists {name}, which does not exist" for name in book_files(root)
            if not (Path(root) / name).exists()]


def check_crossrefs(root: Path, files: list[str] | None = None) -> list[str]:
    """Problems: ``@fig-``/``@tbl-``/``@sec-``/``@eq-`` references to undefined labels."""
    defined = labels(root, files)
    problems = []
    for name, text in _texts(root, files):
        for lineno, line in _prose_lines(text):
            for m in XREF_RE.finditer(line):
                if m.group(1) not in defined:
                    problems.append(f"{name}:{lineno}: cross-reference @{m.group(1)} has no matching label")
    return problems


def check_citations(root: Path, files: list[str] | None = None) -> list[str]:
    """Problems: citation keys that are not in the bibliography."""
    keys = bib_keys(root)
    problems = []
    for name, text in _texts(root, files):
        for lineno, line in _prose_lines(text):
            line = re.sub(r"\S+@\S+\.\w+", "", line)  # e-mail addresses are not citations
            for m in CITE_RE.finditer(line):
                key = m.group(1).rstrip(".,;:?!)")
                if key.split("-")[0] in XREF_KINDS and "-" in key:
                    continue
                if key not in keys:
                    problems.append(f"{name}:{lineno}: citation @{key} is not in the bibliography")
    return problems


def check_figure_options(root: Path, files: list[str] | None = None) -> list[str]:
    """Problems: figure cells (label ``fig-*`` or a ``fig-cap``) without ``fig-cap`` and ``fig-alt``,
    or whose plotting code is shown open (``code-fold: true`` folds it; ``echo: false`` hides it):
    models, fits and summaries stay open, chart code is folded."""
    problems = []
    for name, text in _texts(root, files):
        for start, options, _ in _cells(text):
            is_figure = options.get("label", "").startswith("fig-") or "fig-cap" in options
            if is_figure:
                missing = [opt for opt in ("fig-cap", "fig-alt") if not options.get(opt)]
                if missing:
                    problems.append(f"{name}:{start}: figure cell lacks {' and '.join(missing)}")
                if options.get("code-fold") != "true" and options.get("echo") != "false":
                    problems.append(f"{name}:{start}: figure cell shows its plotting code open "
                                    "(add code-fold: true)")
    return problems




STANDALONE_MARK = "# Standalone model cell"


def _free_names(source: str) -> set[str]:
    """Names a cell reads but neither assigns, imports nor defines (builtins excluded)."""
    import ast
    import builtins

    tree = ast.parse("\n".join(ln for ln in source.splitlines() if not ln.startswith("#|")))
    defined, used = set(dir(builtins)), set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            (used if isinstance(node.ctx, ast.Load) else defined).add(node.id)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            defined |= {(a.asname or a.name).split(".")[0] for a in node.names}
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            defined.add(node.name)
        elif isinstance(node, ast.arg):
            defined.add(node.arg)
        elif isinstance(node, ast.ExceptHandler) and node.name:
            defined.add(node.name)
    return used - defined


def check_standalone_cells(root: Path, files: list[str] | None = None) -> list[str]:
    """Problems: a cell marked ``# Standalone model cell`` that reads a name it does not define.

    Such a cell must run when copied alone into a fresh session with ``hbm`` installed, so it
    must import and load everything it uses.
    """
    problems = []
    for name, start, source in standalone_cells(root, files):
        free = sorted(_free_names(source))
        if free:
            problems.append(
                f"{name}:{start}: standalone model cell uses {', '.join(free)} without defining or importing it"
            )
    return problems


def standalone_cells(root: Path, files: list[str] | None = None) -> list[tuple[str, int, str]]:
    """(chapter, first line, source) of every standalone model cell in the book."""
    out = []
    for name, text in _texts(root, files):
        for start, _, source in _cells(text):
            body = [ln for ln in source.splitlines() if not ln.startswith("#|")]
            if body and body[0].startswith(STANDALONE_MARK):
                out.append((name, start, source))
    return out


def _defined_names(source: str) -> set[str]:
    """Names a cell binds at top level or anywhere (assignments, imports, defs, loop targets)."""
    import ast

    tree = ast.parse("\n".join(ln for ln in source.splitlines() if not ln.startswith("#|")))
    defined = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and not isinstance(node.ctx, ast.Load):
            defined.add(node.id)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            defined |= {(a.asname or a.name).split(".")[0] for a in node.names}
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            defined.add(node.name)
    return defined


def check_inline_order(root: Path, files: list[str] | None = None) -> list[str]:
    """Problems: an inline ```{python} expr``` that uses a name no earlier cell defines.

    Quarto evaluates each inline expression when its paragraph is reached, in document order,
    so prose may only use names that cells above it defined.
    """
    import ast
    import builtins

    from booktools.execute import INLINE_RE

    problems = []
    for name, text in _texts(root, files):
        defined = set(dir(builtins))
        lines = text.splitlines()
        starts = {start: source for start, _, source in _cells(text)
                  if CHUNK_RE.match(lines[start - 2]).group(1) == "python"}
        in_code = False
        for lineno, line in enumerate(lines, start=1):
            if lineno + 1 in starts:
                defined |= _defined_names(starts[lineno + 1])
            if line.lstrip().startswith("```"):
                in_code = not in_code
                continue
            if in_code:
                continue
            for expr in INLINE_RE.findall(line):
                try:
                    tree = ast.parse(expr.strip(), mode="eval")
                except SyntaxError as exc:
                    problems.append(f"{name}:{lineno}: inline expression `{expr.strip()}` is not valid Python ({exc.msg})")
                    continue
                bound = {n.arg for n in ast.walk(tree) if isinstance(n, ast.arg)}
                bound |= {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
                used = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}
                missing = sorted(used - defined - bound)
                if missing:
                    problems.append(f"{name}:{lineno}: inline expression `{expr.strip()}` uses "
                                    f"{', '.join(missing)} before any cell defines it")
    return problems


#: An inline expression directly after another one's closing backtick: Quarto's pattern needs a
#: character other than a backtick before `` `{python}``, so it leaves the second unevaluated and
#: the page shows its source.
_ADJACENT_INLINE = re.compile(r"``\{python\}")


def check_inline_adjacent(root: Path, files: list[str] | None = None) -> list[str]:
    """Problems: an inline ```{python} expr``` written right after another (Quarto does not evaluate it)."""
    problems = []
    for name, text in _texts(root, files):
        in_code = False
        for lineno, line in enumerate(text.splitlines(), start=1):
            if line.lstrip().startswith("```"):
                in_code = not in_code
                continue
            if not in_code and _ADJACENT_INLINE.search(line):
                problems.append(f"{name}:{lineno}: an inline `{{python}}` expression directly follows another; "
                                "Quarto leaves it unevaluated and prints its source: join the two into one expression")
    return problems


def check_all(root: Path, files: list[str] | None = None) -> list[str]:
    """Every static problem in the book."""
    return (check_chapters_exist(root) + check_crossrefs(root, files) + check_citations(root, files)
            + check_figure_options(root, files) + check_standalone_cells(root, files)
            + check_inline_order(root, files) + check_inline_adjacent(root, files))
