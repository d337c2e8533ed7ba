"""The rendered book as a reader sees it: every page of ``_book/`` in headless Chromium, offline.

Uses the session's render (the ``book`` fixture), opens each page from disk (``file://``) with
the network switched off, on a laptop's screen and a phone's (:data:`SCREENS`), each on a machine
whose only fonts are DejaVu and on one whose only fonts are Liberation (:data:`SYSTEM_FONTS`):
four configurations, one browser each, reused for every page. The book ships its own fonts, so
all four must show the same book.

In every configuration a page fails when a chart raises an error or draws nothing, when
something is cut off (a chart drawn outside its own box, or an element wider than the text
column that is not in a box of its own that scrolls), when the page scrolls sideways, when the
copy button covers code, when a page shows a log line, warning or traceback, when the browser
logs an error or warning, or when the page asks for anything that is not on the disk. At a
laptop's width nothing scrolls: every chart fits the text column (legends and axis titles
included), every display equation fits it with :data:`EQUATION_SPARE` to spare, and no line of
code wraps or is cut off (a separate test, listing the lines). Once, on the laptop screen, the
tests also check that the text is set in the book's own fonts (no face the book does not ship,
none faked) and that every chart that encodes a field in colour, shape or dash says what it
means (a legend, a text mark, or the same field on an axis or in the panels' headers).
The static test checks that no page names a CDN.

Without Chromium and chromedriver (or Quarto) the browser tests skip and say why, as does a
configuration whose system font is not installed; `.ci/run` installs Chromium and both fonts
with apt. The text column is ``main``'s content box. Set ``BOOK_SCREENSHOTS=<folder>`` to keep a
full-page PNG of every page in every configuration.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from booktools.freshness import PUBLISHED

ROOT = Path(__file__).resolve().parents[1]
BOOK = ROOT / PUBLISHED


@dataclass(frozen=True)
class Screen:
    """A browser window, in CSS pixels."""

    name: str
    width: int
    height: int

    @property
    def laptop(self) -> bool:
        """Wide enough that every chart, equation and line of code fits the text column."""
        return self.width >= 1024


@dataclass(frozen=True)
class SystemFont:
    """The fonts a machine has: the family fontconfig gives for each generic name, and where they live."""

    name: str
    #: Debian package that installs them.
    package: str
    #: Generic CSS family -> (family, a file of it).
    families: tuple[tuple[str, str, str], ...]


#: A laptop screen and a phone's.
SCREENS = (Screen("laptop", 1280, 900), Screen("phone", 390, 844))
#: The two system fonts the book is checked under: a fresh Debian machine has only DejaVu.
SYSTEM_FONTS = (
    SystemFont("dejavu", "fonts-dejavu-core", (("sans-serif", "DejaVu Sans", "DejaVuSans.ttf"),
                                                ("serif", "DejaVu Serif", "DejaVuSerif.ttf"),
                                                ("monospace", "DejaVu Sans Mono", "DejaVuSansMono.ttf"))),
    SystemFont("liberation", "fonts-liberation", (("sans-serif", "Liberation Sans", "LiberationSans-Regular.ttf"),
                                                  ("serif", "Liberation Serif", "LiberationSerif-Regular.ttf"),
                                                  ("monospace", "Liberation Mono", "LiberationMono-Regular.ttf"))),
)
#: Where fonts are installed.
FONT_DIRS = (Path("/usr/share/fonts"), Path("/usr/local/share/fonts"))


@dataclass(frozen=True)
class Config:
    """One configuration the pages are measured in: a screen and a machine's fonts."""

    screen: Screen
    font: SystemFont

    @property
    def name(self) -> str:
        """``laptop-dejavu`` and so on."""
        return f"{self.screen.name}-{self.font.name}"


CONFIGS = tuple(Config(screen, font) for screen in SCREENS for font in SYSTEM_FONTS)
#: Where the checks that do not depend on the screen or font run (fonts used, legends).
FIRST = CONFIGS[0]
#: A display equation may take at most this share of the text column at a laptop's width, so
#: that a reader's own font or zoom does not push it over.
EQUATION_SPARE = 0.05
#: Slack for sub-pixel rounding when comparing widths, in CSS pixels.
SLACK = 1.0
#: How long a page may take to draw its charts and typeset its equations, in seconds.
PAGE_TIMEOUT = 60
#: Text that only a log line, a warning or a traceback would put on a page (outside code).
LOG_RE = re.compile(r"NUTS\[|Sampling: \[|\bINFO\b|\bWARNING\b|Warning:|Traceback \(most recent call")
#: CDN hosts and remote script/stylesheet sources that must not appear in any page.
CDN_RE = re.compile(r"cdn\.jsdelivr|unpkg\.com|cdnjs", re.IGNORECASE)
REMOTE_SRC_RE = re.compile(
    r"<(?:script|link|img|iframe)\b[^>]*?\b(?:src|href)\s*=\s*[\"']?(?:https?:)?//[^\"'\s>]+", re.IGNORECASE)
REMOTE_CSS_RE = re.compile(r"@import\s*(?:url\()?\s*[\"']?(?:https?:)?//|url\(\s*[\"']?https?://", re.IGNORECASE)
#: URL schemes a page may load from: the disk and in-page data.
LOCAL_SCHEMES = ("file:", "data:", "blob:", "about:")
#: How a chart's channels are named in a report.
CHANNEL_WORDS = {"fill": "colour", "stroke": "colour", "shape": "shape", "strokeDash": "stroke dash"}


def _pages() -> list[Path]:
    """Every HTML page of the published book (Quarto's own libraries excluded)."""
    if not BOOK.is_dir():
        return []
    return sorted(p for p in BOOK.rglob("*.html") if "site_libs" not in p.parts)


@pytest.fixture(scope="module")
def pages(book):
    """The pages of the book this session rendered; skips without Quarto, fails if the render failed."""
    if book is None:
        pytest.skip("no quarto on PATH and none at ../shared/quarto/bin/quarto: there is no rendered book to open")
    if book.returncode != 0:
        pytest.fail(f"the render failed (quarto exit {book.returncode}); see test_quarto_render", pytrace=False)
    found = _pages()
    assert found, f"{BOOK} holds no page"
    return found


def _browser_paths() -> tuple[str | None, str | None, str]:
    """(chromium, chromedriver, why not) for this machine."""
    chromium = next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome")
                     if shutil.which(n)), None)
    driver = shutil.which("chromedriver")
    missing = [name for name, path in (("chromium", chromium), ("chromedriver", driver)) if not path]
    return chromium, driver, " and ".join(missing)


def _font_file(name: str) -> Path | None:
    """The installed font file called ``name``, if any."""
    return next((f for d in FONT_DIRS if d.is_dir() for f in d.rglob(name)), None)


def fontconfig(font: SystemFont, folder: Path) -> Path:
    """A fontconfig file that leaves the browser only ``font``'s files, each generic family mapped to them.

    It reads the system's configuration, then hides every font file outside the folders of
    ``font``'s files. Raises ``FileNotFoundError`` naming the package when a file is missing.
    """
    files = {}
    for generic, family, filename in font.families:
        found = _font_file(filename)
        if found is None:
            raise FileNotFoundError(f"{family} ({filename}) is not installed (Debian: apt-get install {font.package})")
        files[generic] = (family, found)
    aliases = "".join(f"  <alias binding=\"strong\"><family>{generic}</family><prefer><family>{family}</family>"
                      f"</prefer></alias>\n" for generic, (family, _) in files.items())
    system_ui = files["sans-serif"][0]
    accept = "".join(f"<glob>{d}/*</glob>" for d in sorted({str(f.parent) for _, f in files.values()}))
    path = folder / f"fonts-{font.name}.conf"
    path.write_text(f"""<?xml version="1.0"?>
<!DOCTYPE fontconfig SYSTEM "urn:fontconfig:fonts.dtd">
<fontconfig>
{aliases}  <alias binding="strong"><family>system-ui</family><prefer><family>{system_ui}</family></prefer></alias>
  <include ignore_missing="yes">/etc/fonts/fonts.conf</include>
  <selectfont>
    <acceptfont>{accept}</acceptfont>
    <rejectfont><glob>*.ttf</glob><glob>*.otf</glob><glob>*.ttc</glob><glob>*.pfb</glob><glob>*.pfa</glob><glob>*.pcf.gz</glob><glob>*.woff</glob><glob>*.woff2</glob></rejectfont>
  </selectfont>
</fontconfig>
""")
    return path


def _start_browser(config: Config, folder: Path):
    """Headless Chromium for ``config`` with the network off (DNS and CDP offline); skips if it cannot run."""
    chromium, chromedriver, missing = _browser_paths()
    if missing:
        pytest.skip(f"{missing} not installed (Debian: apt-get install chromium chromium-driver)")
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (the dev extra)")
    from selenium.webdriver.chrome.service import Service

    try:
        fonts = fontconfig(config.font, folder)
    except FileNotFoundError as exc:
        pytest.skip(f"{config.name}: {exc}")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-extensions", "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--force-device-scale-factor=1",
                f"--window-size={config.screen.width},{config.screen.height}",
                # No name resolves: a request for a host fails even if emulation were bypassed.
                "--host-resolver-rules=MAP * ~NOTFOUND"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    service = Service(chromedriver, env={**os.environ, "FONTCONFIG_FILE": str(fonts)})
    driver = webdriver.Chrome(options=options, service=service)
    try:
        driver.set_script_timeout(PAGE_TIMEOUT + 15)
        # The layout viewport of a phone (or a laptop): media queries, innerWidth and the
        # column follow it, whatever size the headless window could be made.
        driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
            "width": config.screen.width, "height": config.screen.height, "deviceScaleFactor": 1,
            "mobile": not config.screen.laptop})
        driver.execute_cdp_cmd("Network.enable", {})
        driver.execute_cdp_cmd("Network.emulateNetworkConditions", {
            "offline": True, "latency": 0, "downloadThroughput": 0, "uploadThroughput": 0})
    except Exception:
        driver.quit()
        raise
    return driver


class Browsers:
    """One browser at a time, per configuration, and each configuration's measurements of every page."""

    def __init__(self, pages: list[Path], folder: Path):
        self.pages, self.folder = pages, folder
        self.config: Config | None = None
        self.driver = None
        self.visits: dict[str, dict[str, tuple[dict[str, list[str]], dict]]] = {}
        self.seconds: dict[str, float] = {}

    def get(self, config: Config):
        """The browser for ``config`` (the one for another configuration is closed first)."""
        if self.config != config:
            self.close()
            self.driver = _start_browser(config, self.folder)
            self.config = config
        return self.driver

    def close(self) -> None:
        """Quit the open browser, if any."""
        if self.driver is not None:
            self.driver.quit()
        self.driver, self.config = None, None

    def book(self, config: Config) -> dict[str, tuple[dict[str, list[str]], dict]]:
        """Every page measured in ``config`` (once): page name -> (problems by kind, measurements)."""
        if config.name not in self.visits:
            start = time.perf_counter()
            driver = self.get(config)
            self.visits[config.name] = {page.relative_to(BOOK).as_posix(): _visit(driver, page, config)
                                        for page in self.pages}
            self.seconds[config.name] = time.perf_counter() - start
        return self.visits[config.name]

    def problems(self, config: Config, kind: str) -> list[str]:
        """The problems of one kind (``page``, ``code``, ``legend``, ``font``) found on every page in ``config``."""
        return [p for problems, _ in self.book(config).values() for p in problems[kind]]


@pytest.fixture(scope="module")
def browsers(pages, tmp_path_factory):
    """The :class:`Browsers` of this module; the last browser is closed at the end."""
    found = Browsers(pages, tmp_path_factory.mktemp("fontconfig"))
    try:
        yield found
    finally:
        found.close()
        if found.seconds:
            print("\nbrowser test, seconds per configuration: " +
                  ", ".join(f"{name} {s:.1f}" for name, s in found.seconds.items()))


# Runs in the page once it has loaded: waits until the book's fonts have loaded, every chart has
# drawn (or failed) and MathJax has typeset, then measures what ``arguments[1]`` asks for.
# Charts are the divs the book's template renders into (``.book-chart``) and any other
# vega-embed output.
MEASURE_JS = r"""
const done = arguments[arguments.length - 1];
const deadline = Date.now() + arguments[0] * 1000;
const want = arguments[1];
const charts = () => [...new Set(document.querySelectorAll('.book-chart, .vega-embed'))]
  .filter(el => !el.parentElement.closest('.book-chart, .vega-embed'));
const label = (el, i) => {
  const fig = el.closest('[id^="fig-"]');
  return fig ? fig.id : `chart ${i + 1} (no figure label)`;
};
const drawn = el => el.querySelector('.error') ||
  (el.querySelector('svg g.role-mark, canvas') && el.querySelector('svg, canvas').getBoundingClientRect().width > 0);
const describe = el => `${el.tagName.toLowerCase()}${el.id ? '#' + el.id : ''}` +
  [...el.classList].slice(0, 2).map(c => '.' + c).join('');
// Where a wide element can be read: the nearest ancestor that clips its overflow, and whether
// that one scrolls (a reader reaches the rest) or cuts it off.
function reach(el) {
  for (let a = el.parentElement; a && a !== document.documentElement; a = a.parentElement) {
    const x = getComputedStyle(a).overflowX;
    if (x !== 'visible') {
      const r = a.getBoundingClientRect();
      return {box: describe(a), scrolls: x === 'auto' || x === 'scroll', left: r.left, right: r.right,
              overflows: a.scrollWidth > a.clientWidth + 1, scrollWidth: a.scrollWidth, clientWidth: a.clientWidth};
    }
  }
  return null;
}
function box(el) {
  const r = el.getBoundingClientRect();
  return {width: r.width, height: r.height, left: r.left, right: r.right, reach: reach(el)};
}
// What a chart's compiled Vega spec encodes in colour, shape or dash, and what says what it means.
function vegaFacts(vg) {
  const name = f => typeof f === 'string' ? f : (f && (f.field || f.datum || f.parent || f.signal)) || JSON.stringify(f);
  const legendScales = new Set(), axisScales = new Set();
  const encodings = [];
  const walk = (node, view) => {
    (node.legends || []).forEach(l => ['fill', 'stroke', 'shape', 'strokeDash', 'size', 'opacity']
      .forEach(k => l[k] && legendScales.add(l[k])));
    (node.axes || []).forEach(a => axisScales.add(a.scale));
    // A facet's panels (Vega-Lite's "cell" groups) carry headers naming the field they split by;
    // other faceted groups (one line per series) do not.
    const facet = node.from && node.from.facet;
    if (facet && [].concat(node.style || []).includes('cell')) {
      [].concat(facet.groupby || []).forEach(f => view.headers.add(name(f)));
    }
    (node.marks || []).forEach(m => {
      const inner = m.type === 'group' ? {texts: 0, positions: [], headers: new Set(view.headers), parent: view} : view;
      if (m.type === 'text') for (let v = view; v; v = v.parent) v.texts++;
      for (const set of Object.values(m.encode || {})) {
        for (const [channel, rules] of Object.entries(set || {})) {
          for (const rule of [].concat(rules || [])) {
            if (!rule || !rule.scale || rule.field === undefined) continue;
            if (channel in {fill: 1, stroke: 1, shape: 1, strokeDash: 1}) {
              encodings.push({channel, field: name(rule.field), scale: rule.scale, view: inner === view ? view : inner.parent});
            } else if (['x', 'y', 'x2', 'y2'].includes(channel)) {
              view.positions.push({field: name(rule.field), scale: rule.scale});
            }
          }
        }
      }
      walk(m, inner);
    });
  };
  const top = {texts: 0, positions: [], headers: new Set(), parent: null};
  walk(vg, top);
  // A field is named when a legend shows its scale, a text mark sits in its view (or one
  // around or inside it), an axis shows the same field, or the panels' headers do.
  const named = e => {
    if (legendScales.has(e.scale)) return true;
    for (let v = e.view; v; v = v.parent) {
      if (v.texts > 0 || v.headers.has(e.field)) return true;
      if (v.positions.some(p => p.field === e.field && axisScales.has(p.scale))) return true;
    }
    return false;
  };
  const seen = new Set();
  return encodings.filter(e => !named(e)).map(e => ({channel: e.channel, field: e.field}))
    .filter(e => !seen.has(e.channel + e.field) && seen.add(e.channel + e.field));
}
// The faces the page's text is set in, and which of them the book ships.
function fontsUsed() {
  const faces = [...document.fonts].map(f => ({family: f.family.replace(/^["']|["']$/g, ''),
                                               weight: String(f.weight), style: f.style, status: f.status}));
  const shipped = new Set(faces.map(f => f.family));
  const used = new Map();
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT,
    {acceptNode: n => n.textContent.trim() ? NodeFilter.FILTER_ACCEPT : NodeFilter.FILTER_REJECT});
  for (let n = walker.nextNode(); n; n = walker.nextNode()) {
    const el = n.parentElement;
    if (!el || el.closest('script, style, mjx-container, mjx-assistive-mml') || !el.getClientRects().length) continue;
    const s = getComputedStyle(el);
    const family = s.fontFamily.split(',')[0].trim().replace(/^["']|["']$/g, '');
    const weight = String(s.fontWeight), style = s.fontStyle.startsWith('oblique') ? 'italic' : s.fontStyle;
    const key = `${family}|${weight}|${style}`;
    const fig = el.closest('[id^="fig-"]');
    if (!used.has(key)) used.set(key, {family, weight, style, where: describe(el) + (fig ? ` in ${fig.id}` : ''),
                                       text: n.textContent.trim().slice(0, 40)});
  }
  return {faces, shipped: [...shipped], used: [...used.values()]};
}
// The lines of each code block: wrapped (boxes on two lines), cut off (past the visible
// width of the block) or under the copy button.
function codeLines(checkWidth) {
  const out = [];
  document.querySelectorAll('div.sourceCode').forEach((block, b) => {
    const pre = block.querySelector('pre');
    if (!pre) return;
    const button = block.querySelector('.code-copy-button');
    const br = button && button.getBoundingClientRect();
    const scroller = [block, pre].find(e => getComputedStyle(e).overflowX !== 'visible') || block;
    const sr = scroller.getBoundingClientRect();
    const visibleRight = sr.left + scroller.clientLeft + scroller.clientWidth;
    pre.querySelectorAll(':scope > code > span').forEach((line, i) => {
      const range = document.createRange();
      range.selectNodeContents(line);
      const rects = [...range.getClientRects()].filter(r => r.width > 0);
      if (!rects.length) return;
      const tops = new Set(rects.map(r => Math.round(r.top)));
      const right = Math.max(...rects.map(r => r.right));
      const covered = br && br.width > 0 && rects.some(r => r.left < br.right && r.right > br.left &&
                                                             r.top < br.bottom && r.bottom > br.top);
      const wrapped = checkWidth && tops.size > 1;
      const clipped = checkWidth && right > visibleRight + 0.5;
      if (covered || wrapped || clipped) {
        out.push({block: b + 1, line: i + 1, text: line.textContent.slice(0, 120), chars: line.textContent.length,
                  covered: !!covered, wrapped, clipped, right: right - sr.left, visible: visibleRight - sr.left});
      }
    });
  });
  return out;
}
function measure() {
  const main = document.querySelector('main#quarto-document-content') || document.querySelector('main');
  const mr = main.getBoundingClientRect(), ms = getComputedStyle(main);
  const col = {left: mr.left + parseFloat(ms.paddingLeft), right: mr.right - parseFloat(ms.paddingRight)};
  col.width = col.right - col.left;
  const doc = document.documentElement;
  const out = {column: col, window: doc.clientWidth, pageWidth: Math.max(doc.scrollWidth, document.body.scrollWidth),
               charts: [], math: [], wide: [], undrawnMath: 0, stderr: [], text: '', code: [], fonts: null};
  charts().forEach((el, i) => {
    const g = el.querySelector('svg, canvas');
    const c = {label: label(el, i), error: '', width: 0, height: 0, left: 0, right: 0, marks: 0,
               clipped: '', reach: null, unnamed: []};
    const err = el.querySelector('.error');
    if (err) c.error = err.textContent.trim().slice(0, 300);
    if (g) {
      Object.assign(c, box(g));
      if (g.tagName.toLowerCase() === 'svg') {
        // Data marks drawn (not axes, legends or titles), each with a nonzero box.
        c.marks = [...g.querySelectorAll('g.role-mark:not(.mark-group) > *')]
          .filter(m => { const b = m.getBBox ? m.getBBox() : {width: 1, height: 1};
                         return b.width > 0 || b.height > 0; }).length;
        // Anything drawn outside the SVG's own box (a legend or a title cut off).
        const root = g.querySelector('g');
        if (root) {
          const b = root.getBBox(), w = g.width.baseVal.value;
          const ctm = root.getCTM();
          const x0 = b.x + (ctm ? ctm.e : 0), x1 = x0 + b.width;
          if (x0 < -1 || x1 > w + 1) c.clipped = `drawing spans x ${x0.toFixed(0)}..${x1.toFixed(0)} in a ${w.toFixed(0)} px wide SVG`;
        }
      } else {
        const ctx = g.getContext('2d');
        const px = ctx ? ctx.getImageData(0, 0, g.width, g.height).data : [];
        for (let k = 3; k < px.length; k += 4 * 97) if (px[k] > 0) c.marks++;
      }
    }
    if (want.legends && el.__embed && el.__embed.vgSpec) c.unnamed = vegaFacts(el.__embed.vgSpec);
    c.embedded = !!el.__embed;
    out.charts.push(c);
  });
  const tex = new Map();
  if (window.MathJax && MathJax.startup && MathJax.startup.document) {
    for (const m of MathJax.startup.document.math) if (m.typesetRoot) tex.set(m.typesetRoot, m.math);
  }
  document.querySelectorAll('mjx-container[display="true"]').forEach((el, i) => {
    const inner = el.querySelector('svg') || el.firstElementChild || el;
    const eq = el.closest('[id^="eq-"]');
    out.math.push(Object.assign(box(inner), {label: eq ? eq.id : `display equation ${i + 1}`,
                  tex: (tex.get(el) || '').trim().replace(/\s+/g, ' ').slice(0, 90)}));
  });
  // Mermaid diagrams (drawn by Quarto), whose size follows their text.
  out.diagrams = [...document.querySelectorAll('svg.mermaid-js')].map((el, i) => {
    const fig = el.closest('[id^="fig-"]');
    // Its own width (the drawing is scaled to fit the column).
    return Object.assign(box(el), {label: fig ? fig.id : `diagram ${i + 1}`, width: el.viewBox.baseVal.width});
  });
  // Tables and code blocks, which may be wider than a phone's column.
  main.querySelectorAll('table, div.sourceCode > pre').forEach(el => {
    const b = box(el.tagName === 'PRE' ? el.querySelector('code') || el : el);
    if (el.tagName === 'PRE') { const c = el.querySelector('code'); if (c) { b.width = c.scrollWidth; b.right = b.left + b.width; } }
    if (b.right > col.right + 1) out.wide.push(Object.assign(b, {what: describe(el)}));
  });
  // What makes the page wider than the window: the outermost elements that reach past it, in
  // no box that clips or scrolls.
  out.widest = [];
  if (out.pageWidth > out.window + 1) {
    for (const el of document.body.querySelectorAll('*')) {
      const r = el.getBoundingClientRect();
      const parent = el.parentElement.getBoundingClientRect();
      // Fixed bars are as wide as the widened page, not its cause.
      if (r.right > out.window + 1 && parent.right <= out.window + 1 && !reach(el) &&
          getComputedStyle(el).position !== 'fixed') {
        out.widest.push(`${describe(el)} (${el.textContent.trim().slice(0, 40)}) reaches x ${r.right.toFixed(0)}`);
        if (out.widest.length === 3) break;
      }
    }
  }
  // TeX that MathJax should have typeset but did not (pandoc writes math it can render
  // itself, as on the references page, without TeX delimiters).
  out.undrawnMath = [...document.querySelectorAll('span.math')]
    .filter(s => !s.querySelector('mjx-container') && /^\s*\\[(\[]/.test(s.textContent)).length;
  document.querySelectorAll('.cell-output-stderr').forEach(e => out.stderr.push(e.innerText.trim().slice(0, 300)));
  // The page's text without code listings (code may mention logging on purpose).
  const copy = main.cloneNode(true);
  copy.querySelectorAll('div.sourceCode, pre.sourceCode, script, style, mjx-container, .book-chart, .vega-embed')
    .forEach(e => e.remove());
  out.text = copy.textContent;
  out.code = codeLines(want.codeWidth);
  if (want.fonts) out.fonts = fontsUsed();
  // The machine's own default font, to show that the configurations differ.
  const ctx = document.createElement('canvas').getContext('2d');
  ctx.font = '16px sans-serif';
  out.systemFontWidth = ctx.measureText('Hamburgefonstiv 0123').width;
  return out;
}
function poll() {
  const mathReady = !document.querySelector('script[src*="mathjax"]') ||
    (window.MathJax && MathJax.startup && MathJax.startup.promise);
  const pending = charts().filter(el => !drawn(el));
  // Quarto replaces each Mermaid diagram's source (pre.mermaid-js) by its drawing.
  const diagramsPending = document.querySelectorAll('pre.mermaid-js').length;
  if (document.readyState === 'complete' && mathReady && pending.length === 0 && diagramsPending === 0) {
    const finish = () => requestAnimationFrame(() => { try { done(measure()); } catch (err) { fail(err); } });
    const fonts = window.bookFontsReady ? window.bookFontsReady() : document.fonts.ready;
    const math = window.MathJax && MathJax.startup && MathJax.startup.promise || Promise.resolve();
    Promise.all([fonts, math]).then(() => document.fonts.ready).then(finish, finish);
  } else if (Date.now() > deadline) {
    const out = measure();
    out.timedOut = pending.map((el, i) => label(el, i));
    out.mathTimedOut = !mathReady;
    out.diagramsTimedOut = diagramsPending;
    done(out);
  } else {
    setTimeout(guarded, 50);
  }
}
function fail(err) { done({jsError: String(err && err.stack || err)}); }
function guarded() {
  try { poll(); } catch (err) { fail(err); }
}
guarded();
"""


def _requests(driver) -> tuple[list[str], list[str]]:
    """(non-local URLs requested, local files that failed to load) since the last call."""
    remote, failed, urls = [], [], {}
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        params = message.get("params", {})
        if message["method"] == "Network.requestWillBeSent":
            url = params["request"]["url"]
            urls[params["requestId"]] = url
            if not url.startswith(LOCAL_SCHEMES):
                remote.append(url)
        elif message["method"] == "Network.loadingFailed":
            url = urls.get(params["requestId"], "?")
            if url.startswith("file:"):
                failed.append(f"{url} ({params.get('errorText')})")
    return remote, failed


def _unreachable(item: dict, col: dict) -> str:
    """Why a box wider than the column cannot be read whole ('' when it can: it fits, or its own box scrolls)."""
    if item["right"] <= col["right"] + SLACK and item["left"] >= col["left"] - SLACK:
        return ""
    box = item["reach"]
    if box and box["scrolls"] and box["right"] <= col["right"] + SLACK and box["left"] >= col["left"] - SLACK:
        return ""
    if box and not box["scrolls"]:
        return f"cut off by {box['box']} (overflow hidden)"
    if box:
        return f"in {box['box']}, which scrolls but is itself wider than the column"
    return "not in a box that scrolls"


def _page_problems(found: dict, config: Config, where: str) -> list[str]:
    """What the measurements of one page show wrong in ``config``, apart from code lines and legends."""
    problems = []
    col, laptop = found["column"], config.screen.laptop
    for chart in found["charts"]:
        at = f"{where}: {chart['label']}"
        if chart["label"] in found.get("timedOut", []):
            problems.append(f"{at}: not drawn after {PAGE_TIMEOUT} s")
        if chart["error"]:
            problems.append(f"{at}: chart error: {chart['error']}")
        elif chart["width"] <= 0 or chart["height"] <= 0:
            problems.append(f"{at}: draws nothing (size {chart['width']:.0f} x {chart['height']:.0f} px)")
        elif chart["marks"] == 0:
            problems.append(f"{at}: draws no data marks")
        drew = chart["width"] > 0 and chart["height"] > 0
        wide = chart["width"] > col["width"] + SLACK or chart["right"] > col["right"] + SLACK \
            or chart["left"] < col["left"] - SLACK
        if not drew:
            pass
        elif laptop and wide:
            problems.append(f"{at}: {chart['width']:.0f} px wide (x {chart['left'] - col['left']:.0f}.."
                            f"{chart['right'] - col['left']:.0f} in the column), wider than the column")
        elif not laptop and (why := _unreachable(chart, col)):
            problems.append(f"{at}: {chart['width']:.0f} px wide, {why}")
        if chart["clipped"]:
            problems.append(f"{at}: {chart['clipped']}")
        box = chart["reach"]
        if laptop and box and box["overflows"]:
            problems.append(f"{at}: {box['box']} scrolls ({box['scrollWidth']} > {box['clientWidth']} px)")
    for eq in found["math"]:
        box = eq["reach"]
        if laptop:
            limit = (1 - EQUATION_SPARE) * col["width"]
            if eq["width"] > limit or eq["right"] > col["right"] + SLACK or (box and box["overflows"]):
                problems.append(f"{where}: {eq['label']} is {eq['width']:.0f} px wide, more than "
                                f"{1 - EQUATION_SPARE:.0%} of the column ({limit:.0f} px): {eq['tex']}")
        elif why := _unreachable(eq, col):
            problems.append(f"{where}: {eq['label']} is {eq['width']:.0f} px wide, {why}: {eq['tex']}")
    if not laptop:
        for item in found["wide"]:
            if why := _unreachable(item, col):
                problems.append(f"{where}: {item['what']} is {item['width']:.0f} px wide, {why}")
    if found["pageWidth"] > found["window"] + SLACK:
        problems.append(f"{where}: the page scrolls sideways ({found['pageWidth']} px wide in a "
                        f"{found['window']} px window): " + "; ".join(found["widest"]))
    for line in found["code"]:
        if line["covered"]:
            problems.append(f"{where}: the copy button covers code block {line['block']}, line {line['line']}: "
                            f"{line['text']!r}")
    if found.get("diagramsTimedOut"):
        problems.append(f"{where}: {found['diagramsTimedOut']} Mermaid diagram(s) not drawn after {PAGE_TIMEOUT} s")
    if found.get("mathTimedOut"):
        problems.append(f"{where}: MathJax did not finish typesetting in {PAGE_TIMEOUT} s")
    if found["undrawnMath"]:
        problems.append(f"{where}: {found['undrawnMath']} formula(s) left as TeX (MathJax did not load or typeset)")
    for text in found["stderr"]:
        problems.append(f"{where}: a cell printed to stderr: {text!r}")
    for line in found["text"].splitlines():
        if LOG_RE.search(line):
            problems.append(f"{where}: log line in the page: {line.strip()[:200]!r}")
    return problems


def _matched_weight(wanted: int, weights: set[int]) -> int:
    """The weight among ``weights`` a browser draws ``wanted`` in (CSS Fonts 4, font matching)."""
    up, down = sorted(w for w in weights if w >= wanted), sorted((w for w in weights if w < wanted), reverse=True)
    if wanted < 400:
        order = sorted((w for w in weights if w <= wanted), reverse=True) + sorted(w for w in weights if w > wanted)
    elif wanted <= 500:
        order = [w for w in up if w <= 500] + down + [w for w in up if w > 500]
    else:
        order = up + down
    return order[0]


def _font_problems(fonts: dict, where: str) -> list[str]:
    """Text set in a font the book does not ship, or in a style or weight the browser must fake; faces that failed to load.

    A weight the book does not ship is drawn in the nearest one it does (500 in 400, say), as
    every browser does it; only a bold (600 or more) drawn from a lighter face, and an italic
    with no italic face, are faked.
    """
    problems = [f"{where}: the font {f['family']} {f['weight']} {f['style']} failed to load"
                for f in fonts["faces"] if f["status"] == "error"]
    for use in fonts["used"]:
        at = f"{where}: {use['where']} ({use['text']!r}) is set in {use['family']}"
        if use["family"] not in fonts["shipped"]:
            problems.append(f"{at}, a font the book does not ship")
            continue
        weights = {int(f["weight"]) for f in fonts["faces"] if f["family"] == use["family"] and f["style"] == use["style"]}
        if not weights:
            problems.append(f"{at} {use['style']}, a style the book does not ship (the browser slants the upright face)")
        elif int(use["weight"]) >= 600 and _matched_weight(int(use["weight"]), weights) < 600:
            problems.append(f"{at} {use['weight']} {use['style']}, and the book ships no face that bold "
                            "(the browser fakes bold)")
    return problems


def _code_problems(found: dict, where: str) -> list[str]:
    """Lines of code that wrap or are cut off."""
    problems = []
    for line in found["code"]:
        if line["wrapped"] or line["clipped"]:
            how = "wraps" if line["wrapped"] else f"is cut off ({line['right']:.0f} px of {line['visible']:.0f} visible)"
            problems.append(f"{where}: code block {line['block']}, line {line['line']} ({line['chars']} characters) "
                            f"{how}: {line['text']!r}")
    return problems


def _legend_problems(found: dict, where: str) -> list[str]:
    """Charts that encode a field in colour, shape or dash without saying what it means."""
    problems = []
    for chart in found["charts"]:
        if not chart["error"] and chart["marks"] and not chart["embedded"]:
            problems.append(f"{where}: {chart['label']}: vega-embed's result is not on the chart's element "
                            "(booktools/vega-fonts.js keeps it there as __embed)")
        for enc in chart["unnamed"]:
            problems.append(f"{where}: {chart['label']}: {CHANNEL_WORDS[enc['channel']]} encodes field "
                            f"'{enc['field']}' but the chart has no legend or text labels")
    return list(dict.fromkeys(problems))  # fill and stroke are both colour


def _visit(driver, page: Path, config: Config, name: str | None = None) -> tuple[dict[str, list[str]], dict]:
    """Open one page in ``config``: (problems by kind: ``page``, ``code``, ``legend``, ``font``; measurements).

    ``name`` defaults to the page's path in the book. The fonts used and the charts' legends do
    not depend on the screen or the system font and are measured in :data:`FIRST` only; code
    lines only on a laptop's screen.
    """
    name = name or page.relative_to(BOOK).as_posix()
    driver.get("about:blank")
    driver.get_log("browser")
    driver.get_log("performance")
    driver.get(page.as_uri())
    want = {"fonts": config == FIRST, "legends": config == FIRST, "codeWidth": config.screen.laptop}
    found = driver.execute_async_script(MEASURE_JS, PAGE_TIMEOUT, want)
    problems = {"page": [], "code": [], "legend": [], "font": []}
    if "jsError" in found:
        problems["page"].append(f"{name}: the measuring script failed: {found['jsError']}")
        return problems, {"charts": [], "math": [], "diagrams": [], "column": {}}
    where = f"{name} (text column {found['column']['width']:.0f} px at a {config.screen.width} px window, {config.name})"
    problems["page"] = _page_problems(found, config, where)
    problems["code"] = _code_problems(found, where)
    if want["legends"]:
        problems["legend"] = _legend_problems(found, where)
    if want["fonts"]:
        problems["font"] = _font_problems(found["fonts"], where)
    for entry in driver.get_log("browser"):
        if entry["level"] in ("SEVERE", "WARNING"):
            problems["page"].append(f"{where}: browser {entry['level'].lower()}: {entry['message'][:300]}")
    remote, failed = _requests(driver)
    problems["page"] += [f"{where}: requested {url} (the book must read offline)" for url in remote]
    problems["page"] += [f"{where}: missing file {url}" for url in failed]
    shots = os.environ.get("BOOK_SCREENSHOTS")
    if shots:
        _screenshot(driver, Path(shots) / config.name / (name.replace("/", "_").removesuffix(".html") + ".png"),
                    config.screen.width)
    return problems, found


def _screenshot(driver, path: Path, width: int) -> None:
    """A PNG of the whole page (not only the window)."""
    import base64

    path.parent.mkdir(parents=True, exist_ok=True)
    metrics = driver.execute_cdp_cmd("Page.getLayoutMetrics", {})
    size = metrics["cssContentSize"]
    shot = driver.execute_cdp_cmd("Page.captureScreenshot", {
        "format": "png", "captureBeyondViewport": True,
        "clip": {"x": 0, "y": 0, "width": width, "height": size["height"], "scale": 1}})
    path.write_bytes(base64.b64decode(shot["data"]))


@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: c.name)
def test_pages_draw_offline_within_the_column(browsers, config):
    """Every page, offline, in each configuration: charts draw, nothing is cut off or scrolls the page, equations fit a laptop's column with 5% to spare, no log line, error or remote request."""
    visits = browsers.book(config)
    charts = sum(len(found["charts"]) for _, found in visits.values())
    problems = browsers.problems(config, "page")
    assert charts > 0, "no chart found in any page: is the chart template in hbm.book.common.setup() in use?"
    assert not problems, (f"{len(problems)} problem(s) in {len(visits)} pages "
                          f"({browsers.seconds[config.name]:.0f} s):\n" + "\n".join(problems))


@pytest.mark.parametrize("config", [c for c in CONFIGS if c.screen.laptop], ids=lambda c: c.name)
def test_code_lines_fit_a_laptops_column(browsers, config):
    """On a laptop's screen no line of code in any page wraps or is cut off (each that does is listed)."""
    problems = browsers.problems(config, "code")
    assert not problems, f"{len(problems)} line(s) of code do not fit:\n" + "\n".join(problems)


def test_text_is_set_in_the_books_fonts(browsers):
    """Every page's text (charts' included) is set in a face the book ships, and every shipped face it uses loads."""
    problems = browsers.problems(FIRST, "font")
    assert not problems, "\n".join(problems)


def test_charts_say_what_colour_shape_and_dash_mean(browsers):
    """Every chart that encodes a field in colour, fill, stroke, shape or dash has a legend for it or labels it directly."""
    problems = browsers.problems(FIRST, "legend")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("screen", SCREENS, ids=lambda s: s.name)
def test_same_book_under_either_system_font(browsers, screen):
    """The machine's own font changes nothing: equations, charts, diagrams and the column measure the same under DejaVu and Liberation."""
    first, second = (next(c for c in CONFIGS if c.screen == screen and c.font == f) for f in SYSTEM_FONTS)
    a, b = browsers.book(first), browsers.book(second)
    some = next(found for _, found in a.values() if "systemFontWidth" in found)
    other = next(found for _, found in b.values() if "systemFontWidth" in found)
    assert some["systemFontWidth"] != other["systemFontWidth"], \
        f"{first.name} and {second.name} set sans-serif alike: the fontconfig files did not take effect"
    differences = []
    for name, (_, found) in a.items():
        theirs = b[name][1]
        for kind in ("math", "charts", "diagrams"):
            for mine, other_item in zip(found.get(kind, []), theirs.get(kind, [])):
                if abs(mine["width"] - other_item["width"]) > 0.5:
                    differences.append(f"{name}: {mine['label']} is {mine['width']:.1f} px wide under {first.font.name} "
                                       f"and {other_item['width']:.1f} px under {second.font.name}")
        if found["column"] and abs(found["column"]["width"] - theirs["column"]["width"]) > 0.5:
            differences.append(f"{name}: the text column is {found['column']['width']:.0f} px under {first.font.name} "
                               f"and {theirs['column']['width']:.0f} px under {second.font.name}")
    assert not differences, "\n".join(differences)


def _made_up_page(folder: Path) -> Path:
    """A page with one instance of every problem the checks look for, and two charts that are fine."""
    import altair as alt
    import pandas as pd

    from hbm.book import common as book

    book.setup()
    data = pd.DataFrame({"x": [1, 2, 3], "y": [3, 1, 2], "group": ["a", "b", "a"]})
    point = alt.Chart(data).mark_point()
    wide = point.encode(x="x:Q", y="y:Q").properties(width=900)
    broken = point.encode(x="x:Q", y="y:Q").properties(width=200).to_dict()
    broken["mark"] = {"type": "no-such-mark"}
    unlabelled = point.encode(x="x:Q", y="y:Q", color=alt.Color("group:N", legend=None),
                              shape=alt.Shape("group:N", legend=None)).properties(width=200)
    with_legend = point.encode(x="x:Q", y="y:Q", color="group:N").properties(width=200)
    labelled = (point.encode(x="x:Q", y="y:Q", color=alt.Color("group:N", legend=None))
                + point.mark_text(dx=8, align="left").encode(x="x:Q", y="y:Q", text="group:N")).properties(width=200)
    on_axis = point.encode(x="x:Q", y="group:N", color=alt.Color("group:N", legend=None)).properties(width=200)

    def html(chart) -> str:
        return chart._repr_mimebundle_()["text/html"]

    # The book's fonts, the Vega bundles it ships (booktools/offline.lua), in load order, and its MathJax.
    fonts = next(BOOK.rglob("book-fonts/fonts.js")).parent
    contrib = BOOK / "site_libs" / "quarto-contrib"
    libs = [fonts / "fonts.js", *(contrib / lib / f"{lib}.min.js" for lib in ("vega", "vega-lite", "vega-embed")),
            contrib / "vega-fonts" / "vega-fonts.js"]
    scripts = "".join(f'<script src="{p.as_uri()}"></script>' for p in libs)
    mathjax = next(BOOK.rglob("tex-svg-full.js")).as_uri()
    long_line = "fit = model.fit(" + ", ".join(f"option_{i}={i}" for i in range(12)) + ")"
    page = folder / "made-up.html"
    page.write_text(f"""<html><head><meta name="viewport" content="width=device-width, initial-scale=1">
        <link rel="stylesheet" href="{(fonts / 'fonts.css').as_uri()}">
        {scripts}<script src="{mathjax}"></script>
        <script src="https://cdn.jsdelivr.net/npm/nothing@1"></script></head>
        <body style="font-family: 'Source Sans 3', sans-serif; margin: 0"><main style="width: 360px; padding: 0 15px">
        <div id="fig-wide">{html(wide)}</div>
        <div id="fig-broken">{book.CHART_TEMPLATE.render(spec=json.dumps(broken), output_div="broken",
                                                          embed_options=json.dumps(book.EMBED_OPTIONS))}</div>
        <div id="fig-unlabelled">{html(unlabelled)}</div>
        <div id="fig-legend">{html(with_legend)}</div>
        <div id="fig-labelled">{html(labelled)}</div>
        <div id="fig-axis">{html(on_axis)}</div>
        <p><span class="math display">\\[{" + ".join(f"x_{{{i}}}" for i in range(60))}\\]</span></p>
        <div class="sourceCode" style="overflow-x: auto; position: relative"><pre class="sourceCode"
          style="font-family: 'Source Code Pro', monospace; margin: 0"><code class="sourceCode"><span>{long_line}</span>
<span>short = 1</span></code><button class="code-copy-button" style="position: absolute; top: 0; right: 0">copy</button></pre></div>
        <p style="font-family: Verdana, serif">Text in a font the book does not ship.</p>
        <div style="overflow: hidden"><table><tr><td style="white-space: nowrap">{"cell " * 40}</td></tr></table></div>
        <pre>NUTS[nutpie]: [mu, tau]</pre></main></body></html>""")
    return page


@pytest.mark.parametrize("screen", SCREENS, ids=lambda s: s.name)
def test_measuring_finds_each_kind_of_problem(browsers, screen, tmp_path):
    """On a made-up page the checks report each kind of problem they look for, and no chart that says what its colours mean."""
    config = Config(screen, SYSTEM_FONTS[0]) if screen != FIRST.screen else FIRST
    problems, found = _visit(browsers.get(config), _made_up_page(tmp_path), config, "made-up.html")
    report = "\n".join(p for kind in problems.values() for p in kind)
    assert "fig-broken: chart error" in report, report
    assert "log line in the page: 'NUTS[nutpie]" in report, report
    assert "requested https://cdn.jsdelivr.net/npm/nothing@1" in report, report
    assert "the copy button covers code block 1, line 1" in report, report
    if screen.laptop:
        assert "fig-wide: 9" in report and "wider than the column" in report, report
        assert "display equation 1 is" in report and "of the column" in report, report
        assert "code block 1, line 1 (" in report and "is cut off" in report, report
        assert "fig-unlabelled: colour encodes field 'group' but the chart has no legend or text labels" in report
        assert "fig-unlabelled: shape encodes field 'group'" in report, report
        assert not re.search(r"fig-(legend|labelled|axis): \w+ encodes", report), report
        assert "is set in Verdana, a font the book does not ship" in report, report
    else:
        assert "fig-wide: 9" in report and "not in a box that scrolls" in report, report
        assert "the page scrolls sideways" in report, report
        assert "table is" in report and "cut off by div (overflow hidden)" in report, report
    assert found["systemFontWidth"] > 0


def test_no_page_names_a_cdn(pages):
    """No page or stylesheet of the book loads a script, stylesheet or font from a CDN or any remote address."""
    problems = []
    for page in pages:
        html = page.read_text(encoding="utf-8")
        name = page.relative_to(BOOK).as_posix()
        problems += [f"{name}: {m.group(0)[:160]}" for m in REMOTE_SRC_RE.finditer(html)]
        problems += [f"{name}: names {m.group(0)} ({html[max(0, m.start() - 60):m.end() + 40]!r})"
                     for m in CDN_RE.finditer(html)]
    for css in sorted(BOOK.rglob("*.css")):
        text = css.read_text(encoding="utf-8", errors="replace")
        problems += [f"{css.relative_to(BOOK)}: {m.group(0)}" for m in REMOTE_CSS_RE.finditer(text)]
    assert not problems, "\n".join(problems)
