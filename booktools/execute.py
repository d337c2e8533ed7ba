"""Execute a chapter the way Quarto's Jupyter engine does, without Quarto.

Quarto cannot be installed on machines without internet access, so the tests and the benchmark
run each ``.qmd`` like this instead:

1. parse the text with ``jupytext.reads(text, fmt="Rmd")`` (``jupytext.read("x.qmd")`` would
   call the Quarto binary);
2. run the Python cells top to bottom in a fresh kernel with ``nbclient``, from the project
   root (``execute-dir: project`` in ``_quarto.yml``); ``dot``/``mermaid`` cells are Quarto's
   own and are not sent to the kernel;
3. evaluate every inline ```` `{python} expr` ```` in that kernel, formatted by IPython's display
   formatter as Quarto's ``user_expressions`` are.

The kernel stays alive so that tests can query the chapter's computed values with
:meth:`ExecutedChapter.value`.
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

INLINE_RE = re.compile(r"`\{python\}\s+((?:[^`]|``)+?)`")
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
class ExecutedChapter:
    """A chapter run in a live kernel: its notebook, inline results, timing and error."""

    path: Path
    notebook: nbformat.NotebookNode
    cells: list[Cell]
    inline: dict[str, str]
    seconds: float
    error: str | None
    client: NotebookClient | None = None

    def value(self, expr: str):
        """Evaluate ``expr`` in the chapter's kernel and return the Python object.

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


def execute_chapter(path, root=None, timeout: int = 900, keep_kernel: bool = False) -> ExecutedChapter:
    """Run a chapter as Quarto would and evaluate its inline expressions.

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

    Returns
    -------
    ExecutedChapter
        With ``error`` set (naming chapter, cell, line and cause) if anything raised; this
        function itself does not raise for errors in the chapter.
    """
    path = Path(path)
    root = Path(root) if root is not None else Path.cwd()
    nb, cells, inline_exprs = read_chapter(path)
    try:
        shown = path.resolve().relative_to(root.resolve())
    except ValueError:
        shown = path
    client = NotebookClient(
        nb,
        kernel_name=kernel_name(),
        timeout=timeout,
        allow_errors=False,
        resources={"metadata": {"path": str(root)}},
    )
    start = time.perf_counter()
    error, inline = None, {}
    client.create_kernel_manager()
    client.start_new_kernel()
    client.start_new_kernel_client()
    try:
        for cell in cells:
            try:
                client.execute_cell(nb.cells[cell.index], cell.index)
            except CellExecutionError as exc:
                within = _traceback_line(str(exc))
                line = cell.first_line + within - 1 if within else cell.first_line
                label = cell.options.get("label", f"#{cells.index(cell) + 1}")
                error = f"{shown}: cell {label} (line {line}): {_last_error_line(str(exc))}"
                break
            except (CellTimeoutError, DeadKernelError) as exc:
                error = f"{shown}: cell starting at line {cell.first_line}: {type(exc).__name__}: {exc}"
                break
        if error is None:
            for item in inline_exprs:
                probe = nbformat.v4.new_code_cell(item.expr)
                nb.cells.append(probe)
                try:
                    client.execute_cell(probe, len(nb.cells) - 1)
                except CellExecutionError as exc:
                    error = (
                        f"{shown}: inline expression `{{python}} {item.expr}` (line {item.line}): "
                        f"{_last_error_line(str(exc))}"
                    )
                    break
                finally:
                    nb.cells.pop()
                results = [o for o in probe.outputs if o.get("output_type") == "execute_result"]
                if not results:
                    error = f"{shown}: inline expression `{{python}} {item.expr}` (line {item.line}) has no value"
                    break
                inline[item.expr] = results[0]["data"].get("text/plain", "")
    finally:
        seconds = time.perf_counter() - start
        if not keep_kernel:
            client._cleanup_kernel()
    return ExecutedChapter(path, nb, cells, inline, seconds, error, client if keep_kernel else None)
