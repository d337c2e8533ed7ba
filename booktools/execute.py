"""Execute a chapter the way Quarto's Jupyter engine does.

The book is rendered by Quarto; this module runs a ``.qmd`` the same way where a render is not
wanted (the own-data variant runs of the tests) or Quarto is absent. What it copies from
Quarto 1.7's ``src/resources/jupyter/notebook.py``:

1. the text is parsed into cells (``jupytext.reads(text, fmt="Rmd")``; ``dot``/``mermaid``
   chunks are Quarto's own and are not sent to the kernel);
2. cells run top to bottom in a fresh kernel from the project root (``execute-dir: project``);
3. the inline expressions of each markdown cell are evaluated when that cell is reached, in
   document order, all of a cell's expressions in one ``execute('', user_expressions=...)``
   request, and their results are stored in the cell's ``metadata.user_expressions`` exactly
   as Quarto stores them (Quarto's regular expression finds them);
4. inline expressions are refused while ``execute: cache: true`` is on, as Quarto refuses them.

``tests/test_execute.py`` renders a fixture chapter with the real Quarto and with this module
and compares the inline values and cell outputs. The kernel can stay alive so that callers
can query the chapter's values with :meth:`ExecutedChapter.value`.
"""

from __future__ import annotations

import base64
import pickle
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

import jupytext
import nbformat
from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

#: The kernelspec ``make`` registers inside ``.venv`` (``_quarto.yml`` names it too).
KERNEL_NAME = "borrowing-strength"

#: Quarto's own pattern for inline expressions (``cell_execute_inline`` in notebook.py).
INLINE_RE = re.compile(r"(?:^|[^`])`\{python\}[ \t]([^`]+)`", re.MULTILINE)
CHUNK_RE = re.compile(r"^```+\s*\{(\w+)")


class ChapterError(RuntimeError):
    """A chapter failed to execute; the message names the chapter, cell, line and cause."""


@dataclass
class Cell:
    """One Python code chunk of a ``.qmd``, with where it sits in the file."""

    index: int  # position among the notebook's cells
    source: str
    first_line: int  # 1-based line in the .qmd of the chunk's first source line
    options: dict[str, str] = field(default_factory=dict)


@dataclass
class InlineExpr:
    """An inline ```{python} expr``` and its 1-based line in the ``.qmd``."""

    expr: str
    line: int


def parse_options(source: str) -> dict[str, str]:
    """The ``#| key: value`` options at the top of a cell, values as raw strings."""
    options = {}
    for line in source.splitlines():
        if not line.startswith("#|"):
            break
        key, _, value = line[2:].partition(":")
        options[key.strip()] = value.strip().strip("\"'")
    return options


INCLUDE_RE = re.compile(r"\{\{<\s*include\s+(\S+)\s*>\}\}")


def resolve_includes(source: str, base: Path) -> str:
    """``source`` with every ``{{< include path >}}`` replaced by the file's text (``path`` relative to ``base``).

    Quarto resolves these shortcodes before it runs a cell, so a chapter can show, in a visible
    cell, a model that lives in a module of ``hbm`` (one copy, importable by tests and
    benchmarks).
    """

    def replace(match):
        return (Path(base) / match.group(1)).read_text(encoding="utf-8").rstrip("\n")

    return INCLUDE_RE.sub(replace, source)


def read_chapter(path: Path) -> tuple[nbformat.NotebookNode, list[Cell], list[InlineExpr]]:
    """Parse a ``.qmd`` into a notebook, its Python cells and its inline expressions."""
    text = Path(path).read_text(encoding="utf-8")
    nb = jupytext.reads(text, fmt="Rmd")
    lines = text.splitlines()
    # Where each Python chunk's source starts, in file order. Quarto runs only these; jupytext
    # parses other chunks (dot, mermaid) as code cells or leaves them in markdown.
    chunk_starts = [
        i + 2 for i, line in enumerate(lines) if (m := CHUNK_RE.match(line)) and m.group(1) == "python"
    ]
    code_cells = [
        (i, c) for i, c in enumerate(nb.cells)
        if c.cell_type == "code" and c.metadata.get("language", "python") == "python"
    ]
    if len(chunk_starts) != len(code_cells):
        raise ChapterError(
            f"{path}: found {len(chunk_starts)} Python chunks in the text but jupytext parsed "
            f"{len(code_cells)} Python cells; check the chunk fences"
        )
    for _, cell in code_cells:
        cell.source = resolve_includes(cell.source, Path(path).parent)
    cells = [
        Cell(index, cell.source, first_line, parse_options(cell.source))
        for (index, cell), first_line in zip(code_cells, chunk_starts)
    ]
    inline, in_code = [], False
    for lineno, line in enumerate(lines, start=1):
        if line.startswith("```"):
            in_code = not in_code
            continue
        if not in_code:
            inline.extend(InlineExpr(m.group(1).strip(), lineno) for m in INLINE_RE.finditer(line))
    return nb, cells, inline


def kernel_name() -> str:
    """The project's kernel if ``make`` registered it, else this interpreter's own ``python3``."""
    try:
        KernelSpecManager().get_kernel_spec(KERNEL_NAME)
        return KERNEL_NAME
    except NoSuchKernel:
        return "python3"


def _strip_ansi(text: str) -> str:
    """Text without terminal colour codes (IPython colours its tracebacks)."""
    return re.sub(r"\x1b\[[0-9;]*m", "", text)


def _traceback_line(message: str) -> int | None:
    """The line within the cell that raised, from IPython's ``Cell In[n], line k``."""
    found = re.findall(r"Cell In\[\d+\], line (\d+)", _strip_ansi(message))
    return int(found[-1]) if found else None


def _last_error_line(message: str) -> str:
    """The exception's one-line summary from an nbclient error message."""
    lines = [ln for ln in _strip_ansi(message).splitlines() if ln.strip()]
    errors = [ln for ln in lines if re.match(r"^\w+(Error|Exception|Warning|Exit)\b", ln)]
    return (errors or lines or ["unknown error"])[-1].strip()


@dataclass
class InlineResult:
    """An inline expression as Quarto evaluated it: source, line, and its display data."""

    expr: str
    line: int
    data: dict

    @property
    def text(self) -> str:
        """What the page shows: ``text/markdown`` if the value offers it, else ``text/plain``."""
        return self.data.get("text/markdown", self.data.get("text/plain", ""))


def cache_enabled(path: Path, root: Path) -> bool:
    """Whether ``execute: cache: true`` is on for a chapter (its front matter, else ``_quarto.yml``)."""
    import yaml

    def cache_of(meta) -> bool | None:
        execute = (meta or {}).get("execute") if isinstance(meta, dict) else None
        return execute.get("cache") if isinstance(execute, dict) and "cache" in execute else None

    text = Path(path).read_text(encoding="utf-8")
    front = None
    if text.startswith("---"):
        end = text.find("\n---", 3)
        if end > 0:
            front = yaml.safe_load(text[3:end])
    own = cache_of(front)
    if own is not None:
        return bool(own)
    config = Path(root) / "_quarto.yml"
    return bool(cache_of(yaml.safe_load(config.read_text(encoding="utf-8")))) if config.exists() else False


def markdown_expressions(source: str) -> list[str]:
    """The inline expressions of a markdown cell, as Quarto's ``cell_execute_inline`` finds them."""
    return INLINE_RE.findall(source)


@dataclass
class ExecutedChapter:
    """A chapter run in a kernel: its executed notebook, inline results, timing and error."""

    path: Path
    notebook: nbformat.NotebookNode
    cells: list[Cell]
    inline_results: list[InlineResult]
    seconds: float
    error: str | None
    client: NotebookClient | None = None

    @property
    def inline(self) -> dict[str, str]:
        """Expression -> displayed text, the first occurrence of each expression."""
        out: dict[str, str] = {}
        for item in self.inline_results:
            out.setdefault(item.expr.strip(), item.text)
        return out

    def value(self, expr: str):
        """Evaluate ``expr`` in the chapter's live kernel and return the Python object.

        The object is pickled in the kernel and unpickled here (same environment), so NumPy
        arrays and pandas frames come back intact.
        """
        if self.client is None:
            raise ChapterError(f"{self.path}: its kernel is closed")
        code = (
            "import pickle as _p, base64 as _b\n"
            f"print(_b.b64encode(_p.dumps({expr})).decode())"
        )
        cell = nbformat.v4.new_code_cell(code)
        self.notebook.cells.append(cell)
        try:
            self.client.execute_cell(cell, len(self.notebook.cells) - 1)
        except CellExecutionError as exc:
            raise ChapterError(f"{self.path}: evaluating {expr!r}: {_last_error_line(str(exc))}") from None
        finally:
            self.notebook.cells.pop()
        text = "".join(o.get("text", "") for o in cell.outputs if o.get("name") == "stdout")
        return pickle.loads(base64.b64decode(text.strip()))

    def close(self) -> None:
        """Shut the kernel down."""
        if self.client is not None:
            self.client._cleanup_kernel()
            self.client = None


def inline_results(nb: nbformat.NotebookNode, lines: dict[str, list[int]] | None = None) -> list[InlineResult]:
    """The inline results stored in an executed notebook's markdown cells (Quarto's layout).

    Works on a notebook executed by Quarto (``keep-ipynb``) and on one executed here alike.
    """
    out, seen = [], {}
    for cell in nb.cells:
        if cell.cell_type != "markdown":
            continue
        for item in cell.get("metadata", {}).get("user_expressions", []):
            expr = item["expression"]
            k = seen.get(expr, 0)
            seen[expr] = k + 1
            where = (lines or {}).get(expr.strip(), [])
            line = where[k] if k < len(where) else 0
            out.append(InlineResult(expr.strip(), line, dict(item["result"].get("data", {}))))
    return out


#: A YAML metadata block of flags, as :func:`hbm.book.common.flags` prints it in a cell's output.
FLAGS_RE = re.compile(r"(?m)^---\n((?:[a-z][a-z0-9_]*: (?:true|false)\n)+)---$")
#: A fenced div's opening line (``::: {.content-visible when-meta="x"}``) and a closing line.
DIV_OPEN_RE = re.compile(r"^:{3,}\s*\{([^}]*)\}\s*$")
DIV_CLOSE_RE = re.compile(r"^:{3,}\s*$")


def document_flags(nb: nbformat.NotebookNode) -> dict[str, bool]:
    """The flags the chapter's cells set for Quarto's conditional content (``when-meta``)."""
    found: dict[str, bool] = {}
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        for output in cell.get("outputs", []):
            text = output.get("text", "") if output.get("output_type") == "stream" else ""
            for block in FLAGS_RE.findall(text):
                for line in block.splitlines():
                    name, _, value = line.partition(": ")
                    found[name] = value == "true"
    return found


def keep_shown(markdown: str, flags: dict[str, bool]) -> str:
    """Drop the conditional blocks Quarto drops: ``.content-visible when-meta="x"`` when ``x`` is
    false or unset, ``.content-hidden when-meta="x"`` when it is true; their fences go too."""
    out, stack = [], []  # stack: (shown, conditional) for each open div
    for line in markdown.split("\n"):
        opened = DIV_OPEN_RE.match(line)
        if opened:
            kind = re.search(r"\.content-(visible|hidden)\b", opened.group(1))
            meta = re.search(r'when-meta="([^"]+)"', opened.group(1))
            shown = True
            if kind and meta:
                value = flags.get(meta.group(1), False)
                shown = value if kind.group(1) == "visible" else not value
            stack.append((shown, bool(kind and meta)))
            if all(s for s, _ in stack) and not stack[-1][1]:
                out.append(line)
            continue
        if DIV_CLOSE_RE.match(line) and stack:
            shown_before = all(s for s, _ in stack)
            _, conditional = stack.pop()
            if shown_before and not conditional:
                out.append(line)
            continue
        if all(s for s, _ in stack):
            out.append(line)
    return "\n".join(out)


def shown_prose(nb: nbformat.NotebookNode) -> str:
    """The markdown of an executed notebook with every inline expression replaced by what the page shows.

    Quarto's substitution (``jupyter-inline.ts``): each `` `{python} expr` `` of a markdown cell
    becomes its result's ``text/markdown``, else its ``text/plain`` with the quotes of a plain
    string removed. Cells are joined by blank lines; code cells are left out, and so are the
    conditional blocks Quarto drops by the chapter's flags (:func:`keep_shown`).
    """
    parts = []
    for cell in nb.cells:
        if cell.cell_type != "markdown":
            continue
        values = {}
        for item in cell.get("metadata", {}).get("user_expressions", []):
            data = item["result"].get("data", {})
            text = data.get("text/markdown", data.get("text/plain", ""))
            if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
                text = text[1:-1]
            values[item["expression"].strip()] = text

        def substitute(match, values=values):
            prefix = match.group(0)[: match.start(1) - match.start(0) - len("`{python} ")]
            return prefix + values.get(match.group(1).strip(), match.group(0))

        parts.append(INLINE_RE.sub(substitute, cell.source))
    return keep_shown("\n\n".join(parts), document_flags(nb))


def _evaluate_inline(client: NotebookClient, cell) -> None:
    """Evaluate a markdown cell's inline expressions as Quarto's ``cell_execute_inline`` does."""
    expressions = markdown_expressions(cell.source)
    if not expressions:
        cell.get("metadata", {}).pop("user_expressions", None)
        return
    user_expressions = {str(i): expr for i, expr in enumerate(expressions)}
    reply = client.wait_for_reply(client.kc.execute("", user_expressions=user_expressions))
    content = reply.get("content", {})
    if content.get("status") == "error":
        raise InlineError(content.get("ename", "Error"), content.get("evalue", ""), expressions[0])
    results = []
    for key, expr in user_expressions.items():
        result = content.get("user_expressions", {}).get(key, {})
        if result.get("status") == "error":
            raise InlineError(result.get("ename", "Error"), result.get("evalue", ""), expr)
        results.append({"expression": expr, "result": result})
    cell.setdefault("metadata", {})["user_expressions"] = results


class InlineError(Exception):
    """An inline expression raised: ``(ename, evalue, expression)``."""


def inject_parameters(nb: nbformat.NotebookNode, cells: list[Cell], parameters: dict) -> list[Cell]:
    """Insert a cell setting ``parameters`` right after the cell tagged ``parameters``.

    This is what ``quarto render -P name:value`` does (papermill's convention): the chapter's
    defaults run first, the injected values override them.
    """
    tagged = [c for c in cells if "parameters" in c.options.get("tags", "")]
    if not tagged:
        raise ChapterError("the chapter has no cell tagged 'parameters' to override")
    source = "\n".join(f"{name} = {value!r}" for name, value in parameters.items())
    at = tagged[0].index + 1
    nb.cells.insert(at, nbformat.v4.new_code_cell(source, metadata={"tags": ["injected-parameters"]}))
    shifted = [Cell(c.index + (c.index >= at), c.source, c.first_line, c.options) for c in cells]
    injected = Cell(at, source, tagged[0].first_line, {"label": "injected-parameters"})
    return sorted([*shifted, injected], key=lambda c: c.index)


def execute_chapter(path, root=None, timeout: int = 900, keep_kernel: bool = False,
                    parameters: dict | None = None) -> ExecutedChapter:
    """Run a chapter as Quarto's Jupyter engine would, inline expressions in document order.

    Parameters
    ----------
    path : path-like
        The ``.qmd``.
    root : path-like, optional
        The working directory of the kernel (the project root; default: the current directory).
    timeout : int
        Seconds allowed per cell.
    keep_kernel : bool
        Keep the kernel running so :meth:`ExecutedChapter.value` can query it.
    parameters : dict, optional
        Values for the chapter's parameters cell (as ``quarto render -P``), e.g.
        ``{"fast": True}``.

    Returns
    -------
    ExecutedChapter
        With ``error`` set (naming chapter, cell or inline expression, line and cause) if
        anything raised; this function itself does not raise for errors in the chapter.
    """
    path = Path(path)
    root = Path(root) if root is not None else Path.cwd()
    nb, cells, inline_exprs = read_chapter(path)
    if parameters:
        cells = inject_parameters(nb, cells, parameters)
    try:
        shown = path.resolve().relative_to(root.resolve())
    except ValueError:
        shown = path
    lines: dict[str, list[int]] = {}
    for item in inline_exprs:
        lines.setdefault(item.expr, []).append(item.line)
    if inline_exprs and cache_enabled(path, root):
        # Quarto: "Inline expressions cannot be used with Jupyter Cache." (jupyter-inline.ts)
        first = inline_exprs[0]
        error = (f"{shown}: inline expression `{{python}} {first.expr}` (line {first.line}): "
                 "inline expressions cannot be used with Jupyter Cache (execute: cache: true)")
        return ExecutedChapter(path, nb, cells, [], 0.0, error, None)
    by_index = {cell.index: cell for cell in cells}
    client = NotebookClient(
        nb,
        kernel_name=kernel_name(),
        timeout=timeout,
        allow_errors=False,
        resources={"metadata": {"path": str(root)}},
    )
    start = time.perf_counter()
    error = None
    client.create_kernel_manager()
    client.start_new_kernel()
    client.start_new_kernel_client()
    try:
        for index, nb_cell in enumerate(nb.cells):
            if nb_cell.cell_type == "markdown":
                try:
                    _evaluate_inline(client, nb_cell)
                except InlineError as exc:
                    ename, evalue, expr = exc.args
                    at = lines.get(expr.strip(), [0])[0]
                    error = f"{shown}: inline expression `{{python}} {expr.strip()}` (line {at}): {ename}: {evalue}"
                    break
                continue
            cell = by_index.get(index)
            if cell is None:
                continue  # not a Python chunk (dot, mermaid): Quarto's own
            try:
                client.execute_cell(nb_cell, index)
            except CellExecutionError as exc:
                within = _traceback_line(str(exc))
                line = cell.first_line + within - 1 if within else cell.first_line
                label = cell.options.get("label", f"#{cells.index(cell) + 1}")
                error = f"{shown}: cell {label} (line {line}): {_last_error_line(str(exc))}"
                break
            except (CellTimeoutError, DeadKernelError) as exc:
                error = f"{shown}: cell starting at line {cell.first_line}: {type(exc).__name__}: {exc}"
                break
    finally:
        seconds = time.perf_counter() - start
        if not keep_kernel:
            client._cleanup_kernel()
    return ExecutedChapter(path, nb, cells, inline_results(nb, lines), seconds, error,
                           client if keep_kernel else None)
