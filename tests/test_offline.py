"""The book reads offline and from disk: pinned JavaScript, charts that load nothing, Quarto's pages fixed."""

import json
import re
from pathlib import Path

import altair as alt
import pandas as pd
import yaml

from booktools.offline import classic_quarto_js, make_offline, strip_cdn_scripts
from hbm.book import common as book

ROOT = Path(__file__).resolve().parents[1]
VENDOR = ROOT / "_vendor"
#: The npm packages of the book's fonts (booktools/fonts.css).
FONT_PACKAGES = ("@fontsource/source-sans-3", "@fontsource/source-code-pro")

# What Quarto 1.7 writes into the head of a page with HTML cell output (core/jupyter/widgets.ts).
QUARTO_HEAD = """<head>
<script src="https://cdnjs.cloudflare.com/ajax/libs/require.js/2.3.6/require.min.js" integrity="sha512-c3Nl8+7g4LMSTdrm621y7kf9v3SDPnhxLNhcjFJbKECVnmZHTdo+IRO05sNLTH/D3vA6u1X32ehoLC7WFVdheg==" crossorigin="anonymous"></script>
<script src="https://cdnjs.cloudflare.com/ajax/libs/jquery/3.5.1/jquery.min.js" integrity="sha512-bLT0Qm9VnAYZDflyKcBaQ2gg0hSYNQrJ8RilYldYQ1FxQYoCLtUjuuRuZo+fjqhx/qtq/1itJ0C2ejDxltZVFg==" crossorigin="anonymous" data-relocate-top="true"></script>
<script type="application/javascript">define('jquery', [],function() {return window.jQuery;})</script>
<script src="../site_libs/quarto-contrib/vega/vega.min.js"></script>
  <script src="https://cdnjs.cloudflare.com/polyfill/v3/polyfill.min.js?features=es6"></script>
  <script src="../_vendor/node_modules/mathjax/es5/tex-svg-full.js" type="text/javascript"></script>
</head>"""


def test_vendor_packages_are_pinned_exactly():
    """_vendor/package.json pins exact versions, its lock file agrees, and Vega-Lite is the one Altair writes for."""
    wanted = json.loads((VENDOR / "package.json").read_text())["dependencies"]
    assert set(wanted) == {"vega", "vega-lite", "vega-embed", "mathjax", *FONT_PACKAGES}
    assert all(re.fullmatch(r"\d+\.\d+\.\d+", v) for v in wanted.values()), wanted
    locked = json.loads((VENDOR / "package-lock.json").read_text())["packages"]
    for name, version in wanted.items():
        assert locked[f"node_modules/{name}"]["version"] == version, name
    assert wanted["vega-lite"] == alt.SCHEMA_VERSION.lstrip("v")
    assert alt.__version__ == "6.3.0"


def test_fonts_come_from_the_vendor_folder():
    """booktools/fonts.css names only woff2 files of the pinned Fontsource packages, and the theme sets text and code in its families."""
    css = (ROOT / "booktools" / "fonts.css").read_text()
    urls = re.findall(r"url\(([^)]*)\)", css)
    assert urls and all(re.fullmatch(r"\.\./_vendor/node_modules/(@fontsource/[a-z0-9-]+)/files/[a-z0-9-]+\.woff2", u)
                        for u in urls), urls
    assert {re.match(r"\.\./_vendor/node_modules/(@fontsource/[a-z0-9-]+)/", u)[1] for u in urls} == set(FONT_PACKAGES)
    families = set(re.findall(r'font-family: "([^"]+)"', css))
    assert families == {"Source Sans 3", "Source Code Pro"}
    scss = (ROOT / "booktools" / "offline.scss").read_text()
    for variable, family in (("font-family-sans-serif", "Source Sans 3"), ("font-family-monospace", "Source Code Pro")):
        assert re.search(rf'^\${variable}: "{family}",', scss, re.MULTILINE), variable


def test_mathjax_comes_from_the_vendor_folder():
    """_quarto.yml points MathJax at the pinned npm package's SVG bundle, a relative path."""
    html = yaml.safe_load((ROOT / "_quarto.yml").read_text())["format"]["html"]
    url = html["html-math-method"]["url"]
    assert html["html-math-method"]["method"] == "mathjax"
    assert url == "_vendor/node_modules/mathjax/es5/tex-svg-full.js"
    assert "booktools/offline.lua" in html["filters"]


def test_chart_html_loads_no_library():
    """After setup(), an Altair chart's HTML calls the page's vegaEmbed and names no URL to load from."""
    book.setup()
    html = alt.Chart(pd.DataFrame({"x": [1, 2]})).mark_point().encode(x="x:Q")._repr_mimebundle_()["text/html"]
    assert "vegaEmbed(el, spec, embedOpt)" in html
    assert '"renderer": "svg"' in html
    without_schema = re.sub(r'"\$schema": "[^"]*"', "", html)
    assert not re.search(r"https?://|cdn|<script[^>]*src=", without_schema), without_schema[:500]


def test_strip_removes_quartos_widget_loaders():
    """The post-render step deletes Quarto's require.js, jQuery, define('jquery') and polyfill tags and nothing else."""
    stripped = strip_cdn_scripts(QUARTO_HEAD)
    assert stripped == ('<head>\n<script src="../site_libs/quarto-contrib/vega/vega.min.js"></script>\n'
                        '  <script src="../_vendor/node_modules/mathjax/es5/tex-svg-full.js" type="text/javascript"></script>\n'
                        '</head>')
    assert strip_cdn_scripts(stripped) == stripped


QUARTO_JS = 'import * as tabsets from "./tabsets/tabsets.js";\n\nconst x = 1;\ntabsets.init();\n'
TABSETS_JS = "// grouped tabsets\n\nexport function init() {\n  window.tabsetsDone = true;\n}\n"
PAGE = (QUARTO_HEAD + '<script src="../site_libs/quarto-html/quarto.js" type="module"></script>\n'
        '<script src="../site_libs/quarto-html/tabsets/tabsets.js" type="module"></script>\n')


def _book(tmp_path, page=PAGE, quarto_js=QUARTO_JS):
    """A rendered book's files: one chapter page and Quarto's two module scripts."""
    (tmp_path / "site_libs" / "quarto-html" / "tabsets").mkdir(parents=True)
    (tmp_path / "site_libs" / "quarto-html" / "quarto.js").write_text(quarto_js)
    (tmp_path / "site_libs" / "quarto-html" / "tabsets" / "tabsets.js").write_text(TABSETS_JS)
    (tmp_path / "chapters").mkdir()
    (tmp_path / "chapters" / "page.html").write_text(page)
    return tmp_path


def test_quarto_js_becomes_a_classic_script(tmp_path):
    """quarto.js is rewritten with tabsets.js inlined, and pages load it deferred instead of as modules."""
    book_dir = _book(tmp_path)
    changed = make_offline(book_dir)
    page = (book_dir / "chapters" / "page.html").read_text()
    script = (book_dir / "site_libs" / "quarto-html" / "quarto.js").read_text()
    assert '<script src="../site_libs/quarto-html/quarto.js" defer></script>' in page
    assert 'type="module"' not in page and "tabsets.js" not in page and "cdnjs" not in page
    assert "import " not in script and "export " not in script
    assert "function init()" in script and "tabsets.init();" in script and '"use strict"' in script
    assert len(changed) == 2
    assert make_offline(book_dir) == []  # a second run changes nothing


def test_unexpected_quarto_js_is_left_as_a_module(tmp_path):
    """A quarto.js of another shape (another Quarto) is left alone, and so are its module tags."""
    other = 'import * as tabsets from "./tabsets/tabsets.js";\nimport * as more from "./more.js";\n'
    assert classic_quarto_js(other, TABSETS_JS) is None
    book_dir = _book(tmp_path, quarto_js=other)
    make_offline(book_dir)
    assert (book_dir / "site_libs" / "quarto-html" / "quarto.js").read_text() == other
    assert 'quarto.js" type="module"' in (book_dir / "chapters" / "page.html").read_text()


def test_strip_leaves_pages_with_jupyter_widgets(tmp_path):
    """A page with the Jupyter widget runtime keeps require.js (not the polyfill); other pages are rewritten."""
    widget = QUARTO_HEAD + '<script src="https://unpkg.com/@jupyter-widgets/html-manager@*/dist/embed-amd.js"></script>'
    (tmp_path / "sub").mkdir()
    (tmp_path / "widget.html").write_text(widget)
    (tmp_path / "sub" / "page.html").write_text(QUARTO_HEAD)
    assert make_offline(tmp_path) == [tmp_path / "sub" / "page.html", tmp_path / "widget.html"]
    kept = (tmp_path / "widget.html").read_text()
    assert "require.min.js" in kept and "jquery.min.js" in kept and "polyfill" not in kept
    assert "cdnjs" not in (tmp_path / "sub" / "page.html").read_text()


def test_fonts_are_written_into_their_style_sheet(tmp_path):
    """The post-render step turns each woff2 file the book's font style sheet links into a data: URL and removes the file."""
    fonts = tmp_path / "site_libs" / "quarto-contrib" / "book-fonts"
    (fonts / "ab12").mkdir(parents=True)
    (fonts / "ab12" / "face-400.woff2").write_bytes(b"wOF2 font")
    css = ('@font-face { font-family: "A"; src: url(ab12/face-400.woff2) format("woff2"); }\n'
           '@font-face { font-family: "B"; src: url("missing.woff2") format("woff2"); }\n')
    (fonts / "fonts.css").write_text(css)
    assert make_offline(tmp_path) == [fonts / "fonts.css"]
    written = (fonts / "fonts.css").read_text()
    assert 'url("data:font/woff2;base64,d09GMiBmb250")' in written
    assert 'url("missing.woff2")' in written  # left for the browser test to report
    assert not (fonts / "ab12").exists()
    assert make_offline(tmp_path) == []
