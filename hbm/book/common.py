"""Shared set-up for every chapter, imported by its hidden first cell.

Like R4DS's ``_common.R``: one place for the book's seed, Altair theme and display options, so
no chapter copies set-up code. A chapter starts with::

    ```{python}
    #| include: false
    from hbm.book.common import setup
    setup()
    ```

and ends with a hidden cell that keeps its named results for the tests::

    ```{python}
    #| include: false
    save_results("intro", globals())
    ```

Model cells do not rely on this cell: each imports what it uses (``from hbm.book.common import SEED``)
so it runs when copied alone into a fresh kernel.
"""

from __future__ import annotations

import json
import logging
import os
import pickle
import re
import types
from pathlib import Path

import altair as alt
import jinja2
import numpy as np
import pandas as pd

from hbm._text import Text

#: The book's seed. Every random call passes it (or a value derived from it) explicitly.
SEED = 20261121

# One colour per concept across the whole book (hbm.colors): every chart takes its colours
# from there, so a colour keeps its meaning from the first figure to the last.
from hbm.colors import (  # noqa: E402
    CHECK_COLORS, GENRE_PALETTE, INTERVAL_COLORS, METHOD_COLORS, PALETTE, PARAMETERIZATION_COLORS,
    REGION_PALETTE, SAMPLER_COLORS, genre_colors, region_colors, scale,
)

THEME = "borrowing-strength"


@alt.theme.register(THEME, enable=False)
def _theme() -> alt.theme.ThemeConfig:
    """The book's Altair theme: quiet axes, readable fonts, a colour-blind-safe palette.

    Legends sit below the chart, so that a chart with a legend is no wider than one without:
    the default width plus the axis fits the text column (about 660 px on a laptop screen;
    tests/test_browser.py measures every chart). Legend labels are never cut short.
    """
    return {
        "width": 560,
        "height": 320,
        "config": {
            # The book's own text font (shipped with the book), so charts read like the page.
            "font": '"Source Sans 3", sans-serif',
            "view": {"stroke": None},
            # A mark that encodes no concept is a neutral dark grey; concepts take hbm.colors'.
            "mark": {"color": "#4D4D4D"},
            # Labels closer than 4 px are thinned out (log axes label 10, 20, 30 ... by default).
            "axis": {"labelFontSize": 12, "titleFontSize": 13, "gridColor": "#e8e8e8", "domainColor": "#888",
                     "labelSeparation": 4},
            "legend": {"labelFontSize": 12, "titleFontSize": 13, "orient": "bottom", "labelLimit": 0,
                       # Legend symbols at full strength, however pale the marks (bands, areas).
                       "symbolOpacity": 1},
            "header": {"labelFontSize": 12, "titleFontSize": 13},
            "title": {"fontSize": 14, "anchor": "start"},
            "range": {"category": list(PALETTE)},
        },
    }


#: How a chart appears in the book's HTML: a ``div`` and a call of the page's ``vegaEmbed``.
#: It loads no library itself (Altair's own templates fetch Vega from a CDN): the book ships
#: pinned Vega, Vega-Lite and vega-embed with every page that holds a chart
#: (``booktools/offline.lua``), so the book reads offline. A chart that fails to draw shows
#: its error in place of the chart and in the browser's console.
CHART_TEMPLATE = jinja2.Template(
    """<div id="{{ output_div }}" class="book-chart"></div>
<script type="text/javascript">
(function (spec, embedOpt) {
  var el = document.getElementById("{{ output_div }}");
  function fail(err) {
    el.innerHTML = '<div class="error" style="color:red;">Chart error: ' + (err && err.message || err) + '</div>';
    console.error(err);
  }
  if (typeof vegaEmbed !== "function") {
    fail(new Error("vegaEmbed is not loaded on this page"));
    return;
  }
  vegaEmbed(el, spec, embedOpt).catch(fail);
})({{ spec }}, {{ embed_options }});
</script>"""
)

#: vega-embed's options: charts are drawn as SVG (sharp at any zoom, text selectable), without
#: vega-embed's action menu (its button widens every chart by 38 px; the code is on the page).
EMBED_OPTIONS = {"renderer": "svg", "actions": False}


#: Caps on every sampler call in fast mode (see :func:`setup`).
FAST_CAPS = {"draws": 150, "tune": 150, "chains": 2}


def setup(fast: bool = False) -> None:
    """Apply the book's theme, chart renderer and display options.

    PyMC's INFO log lines ("Sampling: [...]", "NUTS[nutpie]: [...]") are raised to WARNING so
    they do not appear as output in the book; the prose names each fit's sampler, and PyMC's
    warnings still show. Those lines come from ``pymc.sampling``; its level is set there too,
    because importing PyMC (after this, in a chapter) resets the ``pymc`` logger to INFO.
    Charts render with :data:`CHART_TEMPLATE`, which loads nothing from the network.
    Idempotent: calling it twice changes nothing.

    Parameters
    ----------
    fast : bool
        The chapters' ``fast`` parameter (``quarto render -P fast:true``; the tests' runs on
        readers' data use it). It caps the draws, tuning steps and chains of every
        ``pymc.sample``, ``nutpie.sample`` and Bambi ``Model.fit`` call at
        :data:`FAST_CAPS`, and :func:`replications` returns a tenth of what it is given, so a
        chapter runs end to end in a fraction of the time; its numbers are then rough, and its
        diagnostics usually fail. Never used for the book itself.
    """
    _FAST["on"] = bool(fast)
    if fast:
        _cap_samplers()
    for name in ("pymc", "pymc.sampling"):
        logging.getLogger(name).setLevel(logging.WARNING)
    alt.theme.enable(THEME)
    alt.renderers.enable("html", template=CHART_TEMPLATE, embed_options=EMBED_OPTIONS)
    # Charts embed their data in the page; a limit above the book's largest chart, not none.
    alt.data_transformers.enable("default", max_rows=50_000)
    pd.set_option("display.precision", 3)
    pd.set_option("display.max_rows", 30)
    pd.set_option("display.max_columns", 20)
    pd.set_option("display.width", 100)
    np.set_printoptions(precision=4, suppress=True)


_FAST = {"on": False}


def replications(n: int) -> int:
    """``n`` replications, or a tenth of them (at least 3) in fast mode (see :func:`setup`)."""
    return max(3, n // 10) if _FAST["on"] else int(n)


def _capped(func):
    """``func`` with ``draws``, ``tune`` and ``chains`` capped at :data:`FAST_CAPS`."""
    if getattr(func, "_hbm_capped", False):
        return func

    def wrapper(*args, **kwargs):
        for key, cap in FAST_CAPS.items():
            kwargs[key] = min(int(kwargs.get(key, cap)), cap)
        return func(*args, **kwargs)

    wrapper._hbm_capped = True
    wrapper.__wrapped__ = func
    wrapper.__doc__ = func.__doc__
    return wrapper


def _cap_samplers() -> None:
    """Fast mode: cap the samplers the chapters call (see :func:`setup`)."""
    import bambi
    import nutpie
    import pymc

    import hbm.remedy

    pymc.sample = _capped(pymc.sample)
    nutpie.sample = _capped(nutpie.sample)
    bambi.Model.fit = _capped(bambi.Model.fit)
    hbm.remedy.fit_with_remedies = _without_refits(hbm.remedy.fit_with_remedies)


def _without_refits(func):
    """Fast mode: the remedy policy judges the one capped fit but re-fits nothing."""
    if getattr(func, "_hbm_capped", False):
        return func

    def wrapper(*args, **kwargs):
        kwargs["max_refits"] = 0
        return func(*args, **kwargs)

    wrapper._hbm_capped = True
    wrapper.__wrapped__ = func
    wrapper.__doc__ = func.__doc__
    return wrapper


#: A string that displays without quotes, for inline ```{python} expr``` results (IPython shows
#: a ``str`` with quotes). The statistics library's :class:`hbm._text.Text`, under the book's name.
Inline = Text


#: What prose prints for a value that does not exist here (no simulation truth, a failed fit).
NA = "n/a"
#: What tables print for a missing value; :func:`table` adds a note saying what it means.
DASH = "\u2013"


def _missing(x) -> bool:
    try:
        return x is None or not np.isfinite(float(x))
    except (TypeError, ValueError):
        return False


def fmt(x: float | None, spec: str = ".2f") -> Inline:
    """Format a number for prose: ``fmt(0.1234, ".3f") -> 0.123``; negative sign is a minus.

    A missing value (``None`` or NaN: no simulation truth, a failed fit) prints :data:`NA`.
    """
    if _missing(x):
        return Inline(NA)
    return Inline(format(float(x), spec).replace("-", "\u2212"))


def pct(x: float | None, digits: int = 0) -> Inline:
    """Format a proportion as a percentage: ``pct(0.256) -> 26%``; a missing value prints :data:`NA`."""
    if _missing(x):
        return Inline(NA)
    return Inline(f"{100 * float(x):.{digits}f}%")


def count(n: int) -> Inline:
    """Format a count with thousands separators: ``count(1200000) -> 1,200,000``.

    A float (an effective sample size) is rounded to the nearest whole number, as tables
    round it (:meth:`hbm.diagnostics.Diagnostics.row`), so prose and tables agree. A missing
    value prints :data:`NA`.
    """
    if _missing(n):
        return Inline(NA)
    return Inline(f"{round(float(n)):,}")


_FLAG_NAME = re.compile(r"[a-z][a-z0-9_]*\Z")


def flags(**values: bool) -> None:
    """Print a YAML metadata block that sets each flag, for Quarto's conditional content.

    Call it in a cell with ``#| echo: false`` and ``#| output: asis``. The text then writes each
    case of a data-dependent passage by hand, in a block Quarto keeps or drops by the flag::

        ::: {.content-visible when-meta="simulated"}
        The data are simulated, ...
        :::
        ::: {.content-hidden when-meta="simulated"}
        These data come with no simulation truth, ...
        :::

    A block holds prose only (no code cell). Inline values in a dropped block are still
    evaluated, so they must not fail when the case does not hold (a missing value prints
    :data:`NA`). ``booktools.execute.shown_prose`` drops the same blocks, so tests read what
    the page shows.
    """
    for name in values:
        if not _FLAG_NAME.match(name):
            raise ValueError(f"flag names are lowercase identifiers, got {name!r}")
    lines = "\n".join(f"{name}: {'true' if bool(v) else 'false'}" for name, v in values.items())
    print(f"\n---\n{lines}\n---\n")


class Table:
    """A table for the page: a pandas ``Styler`` and an optional note printed under it."""

    def __init__(self, styler, note: str | None = None):
        self.styler = styler
        self.note = note

    def _repr_html_(self) -> str:
        html = self.styler.to_html()
        if self.note:
            html += f'\n<p class="table-note"><small>{self.note}</small></p>'
        return html

    def to_html(self) -> str:
        """The HTML the page shows."""
        return self._repr_html_()


def table(df: pd.DataFrame, formats: dict | None = None, *, digits: int = 3,
          missing: str = "a value that does not exist here") -> Table:
    """Format a data frame for the book.

    The index becomes ordinary columns (no stray ``0..n`` column, no extra header row holding
    the index's name); integer columns, and float columns holding only whole numbers (counts,
    effective sample sizes), print as integers with thousands separators; other floats with
    ``digits`` decimals; a missing value prints :data:`DASH`, and a note under the table says
    what a dash means.

    Parameters
    ----------
    df : pandas.DataFrame
    formats : dict, optional
        Column -> format string or callable, overriding the defaults (``{"coverage": "{:.1%}"}``).
    digits : int
        Decimals of the other float columns.
    missing : str
        What a dash stands for, completing "A dash marks ...".

    Returns
    -------
    Table
        Displays as HTML (Quarto puts the chunk's ``tbl-cap`` above it).
    """
    if not isinstance(df.index, pd.RangeIndex) or df.index.name is not None:
        df = df.reset_index()
    formats = dict(formats or {})
    for col in df.columns:
        if col in formats:
            continue
        values = df[col]
        if pd.api.types.is_bool_dtype(values):
            continue
        if pd.api.types.is_integer_dtype(values):
            formats[col] = "{:,}"
        elif pd.api.types.is_float_dtype(values):
            finite = values[np.isfinite(values.to_numpy(dtype=float, na_value=np.nan))]
            whole = len(finite) > 0 and bool((finite == finite.round()).all()) and bool((finite.abs() >= 10).any())
            formats[col] = "{:,.0f}" if whole else f"{{:,.{digits}f}}"
    styler = df.style.hide(axis="index").format(formats, na_rep=DASH)
    for col, spec in formats.items():
        if isinstance(spec, str) and col in df.columns:
            styler = styler.format(lambda v, spec=spec: DASH if _missing(v) else spec.format(v).replace("-", "\u2212"),
                                   subset=[col])
    has_missing = bool(df.isna().to_numpy().any())
    note = f"A dash ({DASH}) marks {missing}." if has_missing else None
    return Table(styler, note)


def no_truth_chart(source: str, what: str = "this chart"):
    """A one-line Altair chart saying that no simulation truth is available for ``source``.

    Truth-based figure cells show it instead of failing, so the figure (and any cross-reference
    to it) still exists when a reader renders the chapter on their own data.
    """
    text = f"No simulation truth is available for {source}, so {what} cannot be drawn."
    return alt.Chart(pd.DataFrame({"text": [text]})).mark_text(size=14, align="left", x=5).encode(
        text="text:N"
    ).properties(height=40)


#: Where :func:`save_results` writes, relative to the kernel's working directory (the project
#: root); ``$HBM_RESULTS_DIR`` overrides it.
RESULTS_DIR = ".cache/results"
#: Objects larger than this (pickled) are not kept.
MAX_RESULT_BYTES = 64 * 2**20
_SKIP_NAMES = {"In", "Out", "exit", "quit", "get_ipython"}


def results_path(chapter: str) -> Path:
    """Where the named results of ``chapter`` (its file stem, e.g. ``"intro"``) are written."""
    return Path(os.environ.get("HBM_RESULTS_DIR", RESULTS_DIR)) / f"{chapter}.pkl"


def save_results(chapter: str, namespace: dict) -> Path:
    """Keep a chapter's named results: every picklable value it defined, in one pickle.

    The last, hidden cell of each chapter calls ``save_results("intro", globals())``. The
    book's build tools file the pickle with the executed notebook, so tests can query the values
    Quarto computed (``results["estimates"]``) instead of executing the chapter again.
    Modules, functions and classes defined in the chapter itself, private names (``_x``) and objects that cannot be pickled or
    exceed :data:`MAX_RESULT_BYTES` are left out; their names are listed under ``"__skipped__"``.

    Parameters
    ----------
    chapter : str
        The chapter's file stem.
    namespace : dict
        The chapter's globals.

    Returns
    -------
    pathlib.Path
        The file written.
    """
    kept, skipped = {}, []
    for name, value in namespace.items():
        if name.startswith("_") or name in _SKIP_NAMES:
            continue
        if isinstance(value, types.ModuleType):
            continue
        if isinstance(value, (types.FunctionType, types.BuiltinFunctionType, type)) and (
            getattr(value, "__module__", "__main__") == "__main__"
        ):
            continue  # defined in the chapter itself: cannot be unpickled elsewhere
        try:
            blob = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
        except Exception:  # noqa: BLE001 - anything unpicklable is simply not kept
            skipped.append(name)
            continue
        if len(blob) > MAX_RESULT_BYTES:
            skipped.append(name)
            continue
        kept[name] = blob
    kept["__skipped__"] = pickle.dumps(sorted(skipped))
    kept["__inputs__"] = pickle.dumps(_inputs_so_far())
    path = results_path(chapter)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    with open(tmp, "wb") as fh:
        pickle.dump(kept, fh, protocol=pickle.HIGHEST_PROTOCOL)
    os.replace(tmp, path)
    return path


#: What the chapter read through :mod:`hbm.book.data` and which ``hbm`` modules it imported, as
#: one expression that imports nothing new: :func:`save_results` keeps its value with the
#: results, and the build tools evaluate it in a live kernel (``booktools.freshness``), so they
#: can check a chapter's recorded inputs (``chapters/_inputs.yml``) without executing it again.
INPUTS_PROBE = (
    "(lambda s, o: {"
    "'reads': list(getattr(s.modules.get('hbm.book.data'), 'READ_LOG', [])), "
    "'modules': {n: getattr(m, '__file__', None) for n, m in list(s.modules.items()) "
    "if n == 'hbm' or n.startswith('hbm.')}, "
    "'cwd': o.getcwd()})(__import__('sys'), __import__('os'))"
)


def _inputs_so_far() -> dict:
    """The value of :data:`INPUTS_PROBE` in this process."""
    return eval(INPUTS_PROBE)  # noqa: S307 - a constant expression of this module


def load_results(path) -> dict:
    """The named results written by :func:`save_results`, unpickled (``"__skipped__"`` included)."""
    with open(path, "rb") as fh:
        raw = pickle.load(fh)
    return {name: pickle.loads(blob) for name, blob in raw.items()}


def plural(n: int, noun: str, nouns: str | None = None) -> Inline:
    """``plural(1, "genre") -> 1 genre``, ``plural(5, "genre") -> 5 genres`` (thousands separated).

    A missing count prints :data:`NA` before the plural noun.
    """
    if _missing(n):
        return Inline(f"{NA} {nouns or noun + 's'}")
    word = noun if int(n) == 1 else (nouns or noun + "s")
    return Inline(f"{int(n):,} {word}")


#: Where each chapter's fitted posteriors are written (one NetCDF file per model), relative to
#: the working directory (the project root); the post-render step publishes them beside the page.
POSTERIORS_DIR = ".cache/posteriors"
_SAVED: dict[str, list[str]] = {}


def posterior_path(chapter: str, name: str) -> Path:
    """Where :func:`save_posterior` writes ``chapter``'s model ``name``."""
    return Path(os.environ.get("HBM_POSTERIORS_DIR", POSTERIORS_DIR)) / chapter / f"{name}.nc"


def save_posterior(chapter: str, name: str, fit) -> Path:
    """Write one fitted model's posterior as an ArviZ NetCDF file for readers to download.

    Called in a hidden cell after each fit (``save_posterior("intro", "schools", fit)``). The
    file keeps the groups a reader explores without sampling: ``posterior``, ``sample_stats``,
    ``observed_data`` and ``constant_data`` (the predictive and pointwise log-likelihood groups
    are left out: they are large and recomputed cheaply), compressed. The first call of a
    kernel for a chapter empties that chapter's folder, so it holds exactly this execution's
    models, which :func:`chapter_footer` lists.

    Parameters
    ----------
    chapter : str
        The chapter's file stem.
    name : str
        The model's file name, without extension (kebab-case).
    fit : xarray.DataTree
        The fit, as Bambi, PyMC or nutpie return it.

    Returns
    -------
    pathlib.Path
        The file written.
    """
    import xarray as xr

    path = posterior_path(chapter, name)
    if chapter not in _SAVED:
        if path.parent.exists():
            for old in path.parent.glob("*.nc"):
                old.unlink()
        _SAVED[chapter] = []
    path.parent.mkdir(parents=True, exist_ok=True)
    keep = ("posterior", "sample_stats", "observed_data", "constant_data")
    tree = xr.DataTree.from_dict(
        {f"/{group}": fit[group].to_dataset() for group in keep if group in fit.children}
    )
    tree.attrs.update(fit.attrs)
    encoding = {
        f"/{group}": {
            var: {"compression": "gzip", "compression_opts": 4}
            for var, data in tree[group].to_dataset().data_vars.items()
            if data.dtype.kind in "fiub"
        }
        for group in tree.children
    }
    tmp = path.with_suffix(".tmp")
    tree.to_netcdf(tmp, engine="h5netcdf", encoding=encoding)
    os.replace(tmp, path)
    # The fit's posterior means, as the chapter computed them: the tests check the file against them.
    means = posterior_means(fit["posterior"].to_dataset())
    path.with_suffix(".means.json").write_text(json.dumps(means), encoding="utf-8")
    if name not in _SAVED[chapter]:
        _SAVED[chapter].append(name)
    return path


#: The packages whose versions every chapter states (import name -> name on the page).
VERSIONED = {
    "bambi": "Bambi",
    "pymc": "PyMC",
    "pytensor": "PyTensor",
    "nutpie": "nutpie",
    "arviz": "ArviZ",
    "numpy": "NumPy",
    "pandas": "pandas",
}


def versions() -> dict[str, str]:
    """The versions a chapter runs with: Python and :data:`VERSIONED`, read from the installed packages."""
    import platform
    from importlib.metadata import PackageNotFoundError, version

    out = {"Python": platform.python_version()}
    for package, shown in VERSIONED.items():
        try:
            out[shown] = version(package)
        except PackageNotFoundError:
            out[shown] = "not installed"
    return out


def versions_markdown(found: dict[str, str] | None = None) -> str:
    """:func:`versions` as a one-row Markdown table."""
    found = found or versions()
    head = "| " + " | ".join(found) + " |"
    rule = "|" + "---|" * len(found)
    row = "| " + " | ".join(found.values()) + " |"
    return "\n".join([head, rule, row])


def chapter_footer(chapter: str) -> Text:
    """The end of every chapter: downloads (notebook, data, posteriors) and the versions it ran with.

    Printed by the chapter's last, hidden cell (``#| output: asis``). The notebook
    (``<chapter>.ipynb``) and the NetCDF files are published beside the page by the
    post-render step; the data files are published under ``data/``.
    """
    from hbm.book.data import READ_LOG

    data = sorted({Path(p).name for p in READ_LOG if str(p).endswith(".csv")})
    links = ", ".join(f"[{name}](../data/{name})" for name in data)
    lines = [
        "",
        f"## Run it yourself {{.unnumbered #sec-{chapter}-downloads}}",
        "",
        # Raw HTML: Quarto would try to resolve a Markdown link to an .ipynb as a book page.
        f'- <a href="{chapter}.ipynb" download>This chapter as a Jupyter notebook</a>: its code and text.'
        + (f" Run it in a folder that holds a `data/` folder with {links}." if data else ""),
    ]
    saved = _SAVED.get(chapter, [])
    if saved:
        files = ", ".join(f"[{chapter}-{name}.nc]({chapter}-{name}.nc)" for name in saved)
        lines.append(
            f"- The fitted posteriors, one ArviZ NetCDF file per model: {files}. "
            "Open one with `xarray.open_datatree(path)` and summarise it with `arviz.summary`, "
            "without sampling."
        )
    # In a box that scrolls sideways: eight columns do not fit a phone's width.
    lines += ["", "This chapter ran with these versions:", "", "::: {.table-responsive}", "",
              versions_markdown(), "", ":::", ""]
    return Text("\n".join(lines))


def posterior_means(posterior) -> dict[str, list]:
    """Each variable's posterior mean over chains and draws, flattened: ``{name: [values]}``."""
    return {
        name: np.asarray(var.mean(("chain", "draw")).values, dtype=float).ravel().tolist()
        for name, var in posterior.data_vars.items()
        if var.dtype.kind in "fiu"
    }
