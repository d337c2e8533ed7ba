"""The rendered book reads offline, also opened from disk: the post-render fixes to Quarto's pages.

Quarto 1.7 writes three things into its HTML pages that break a book read without a network
or from ``file://``, and no option turns any of them off:

- require.js and jQuery from cdnjs, in the head of every page whose cells display HTML (a
  pandas table, an Altair chart), in case that HTML is a "JavaScript widget" that needs them
  (``core/jupyter/widgets.ts``). The book has no such widget: its charts call the page's
  ``vegaEmbed``, which the book ships itself (``booktools/offline.lua``), and its tables are
  plain HTML. Worse, with require.js on a page the Vega bundles would register as AMD modules
  instead of globals.
- polyfill.io's ES6 polyfill from cdnjs before MathJax (``formats/html/pandoc/template.html``),
  which no browser that runs Quarto's own scripts needs.
- ``site_libs/quarto-html/quarto.js`` (the sidebar, table of contents, margin layout and
  tabsets) as an ES module that imports ``tabsets/tabsets.js``: browsers refuse module scripts
  from ``file://`` pages (a CORS error), so a book opened from disk loses all of it.

:func:`make_offline`, run by the post-render step on the render before it is published
(:func:`booktools.freshness.post_render`), deletes exactly those CDN tags from every page and
turns quarto.js into a classic script run at the same moment (``defer``, as modules are) with
tabsets.js inlined. A page that embeds real Jupyter widgets (whose runtime needs require.js)
keeps its widget loaders; tests/test_browser.py then reports it.

The book's fonts (``booktools/fonts.css``) are linked from every page; Quarto copies each woff2
file next to the style sheet. Firefox refuses a font from another folder than the page's when a
page is opened from disk (``security.fileuri.strict_origin_policy``), and the chapters live in
``chapters/``: :func:`inline_fonts` writes each font into the style sheet as a ``data:`` URL
instead (about 130 kB, loaded once for the whole book), which every browser reads from anywhere.
"""

from __future__ import annotations

import base64
import re
from pathlib import Path

__all__ = ["WIDGET_LOADER_RE", "POLYFILL_RE", "strip_cdn_scripts", "classic_quarto_js", "inline_fonts", "make_offline"]

#: The tags Quarto writes for JavaScript widgets: require.js, jQuery, and jQuery's AMD name.
WIDGET_LOADER_RE = re.compile(
    r"[ \t]*<script src=\"https://cdnjs\.cloudflare\.com/ajax/libs/(?:require\.js|jquery)/[^\"]*\"[^>]*>"
    r"</script>[ \t]*\n?"
    r"|[ \t]*<script type=\"application/javascript\">define\('jquery', \[\],function\(\) "
    r"\{return window\.jQuery;\}\)</script>[ \t]*\n?"
)
#: The ES6 polyfill Quarto's page template loads before MathJax.
POLYFILL_RE = re.compile(r"[ \t]*<script src=\"https://cdnjs\.cloudflare\.com/polyfill/[^\"]*\"></script>[ \t]*\n?")
#: The runtime of real Jupyter widgets (ipywidgets), which does need require.js.
WIDGET_RUNTIME = "@jupyter-widgets/html-manager"
#: Quarto's two module script tags: quarto.js becomes a deferred classic script; tabsets.js
#: (which only exports ``init``, called by quarto.js) is inlined into it.
QUARTO_MODULE_RE = re.compile(r"<script src=\"([^\"]*site_libs/quarto-html/)quarto\.js\" type=\"module\"></script>")
TABSETS_MODULE_RE = re.compile(
    r"[ \t]*<script src=\"[^\"]*site_libs/quarto-html/tabsets/tabsets\.js\" type=\"module\"></script>[ \t]*\n?")
QUARTO_JS = Path("site_libs/quarto-html/quarto.js")
TABSETS_JS = Path("site_libs/quarto-html/tabsets/tabsets.js")
TABSETS_IMPORT = 'import * as tabsets from "./tabsets/tabsets.js";\n'
CLASSIC_MARK = "// booktools/offline.py:"
#: The book's font faces as Quarto copies them (booktools/offline.lua), and a link to a woff2 file in it.
FONTS_CSS = Path("site_libs/quarto-contrib/book-fonts/fonts.css")
FONT_URL_RE = re.compile(r"url\(\s*([\"']?)(?!data:)([^)\"']+\.woff2)\1\s*\)")


def strip_cdn_scripts(html: str) -> str:
    """``html`` without Quarto's polyfill and require.js/jQuery tags (the latter kept on pages with Jupyter widgets)."""
    html = POLYFILL_RE.sub("", html)
    if WIDGET_RUNTIME in html:
        return html
    return WIDGET_LOADER_RE.sub("", html)


def classic_quarto_js(quarto_js: str, tabsets_js: str) -> str | None:
    """quarto.js as a classic script with tabsets.js inlined; ``None`` if either is not the expected shape.

    Both files are wrapped in functions, so their top-level names stay private as in a module,
    and run in strict mode as modules do.
    """
    if quarto_js.startswith(CLASSIC_MARK):
        return quarto_js
    exports = re.findall(r"^export\s+(\w+)\s+(\w+)", tabsets_js, flags=re.MULTILINE)
    if not quarto_js.startswith(TABSETS_IMPORT) or exports != [("function", "init")] or \
            re.search(r"^\s*(?:import|export)\b|import\.meta", quarto_js[len(TABSETS_IMPORT):], re.MULTILINE):
        return None
    tabsets = tabsets_js.replace("export function init", "function init", 1)
    return (f"{CLASSIC_MARK} Quarto's module script as a classic one (browsers refuse modules from file://)\n"
            "(function () {\n\"use strict\";\nconst tabsets = (function () {\n"
            f"{tabsets}\nreturn {{ init: init }};\n}})();\n"
            f"{quarto_js[len(TABSETS_IMPORT):]}\n}})();\n")


def inline_fonts(css: str, folder: Path) -> tuple[str, list[Path]]:
    """``css`` with every woff2 file it links (relative to ``folder``) written in as a ``data:`` URL, and those files.

    A link to a file that does not exist is left as it is (the browser test reports it).
    """
    files = []

    def data_url(match: re.Match) -> str:
        path = folder / match.group(2)
        if not path.is_file():
            return match.group(0)
        files.append(path)
        return f'url("data:font/woff2;base64,{base64.b64encode(path.read_bytes()).decode("ascii")}")'

    return FONT_URL_RE.sub(data_url, css), files


def make_offline(folder: Path) -> list[Path]:
    """Apply the fixes above to a rendered book in ``folder``; the files changed."""
    folder = Path(folder)
    changed = []
    classic = False
    if (folder / QUARTO_JS).exists() and (folder / TABSETS_JS).exists():
        before = (folder / QUARTO_JS).read_text(encoding="utf-8")
        after = classic_quarto_js(before, (folder / TABSETS_JS).read_text(encoding="utf-8"))
        classic = after is not None
        if classic and after != before:
            (folder / QUARTO_JS).write_text(after, encoding="utf-8")
            changed.append(folder / QUARTO_JS)
    fonts_css = folder / FONTS_CSS
    if fonts_css.exists():
        css, fonts = inline_fonts(fonts_css.read_text(encoding="utf-8"), fonts_css.parent)
        if fonts:
            fonts_css.write_text(css, encoding="utf-8")
            changed.append(fonts_css)
        for font in fonts:  # each is in the style sheet now
            font.unlink()
            if not any(font.parent.iterdir()):
                font.parent.rmdir()
    for page in sorted(folder.rglob("*.html")):
        html = page.read_text(encoding="utf-8")
        new = strip_cdn_scripts(html)
        if classic:
            new = QUARTO_MODULE_RE.sub(r'<script src="\1quarto.js" defer></script>', new)
            new = TABSETS_MODULE_RE.sub("", new)
        if new != html:
            page.write_text(new, encoding="utf-8")
            changed.append(page)
    return changed
