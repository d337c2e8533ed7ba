"""The rendered book as a reader sees it: every page of ``_book/`` in headless Chromium, offline.

Uses the session's render (the ``book`` fixture), opens each page from disk (``file://``) with
the network switched off, and fails when a chart raises an error, draws nothing or is wider
than the text column (legends and axis titles included), when a display equation is wider than
the column, when the page shows a log line, warning or traceback, when the browser logs an
error or warning, or when the page asks for anything that is not on the disk. The static
test checks that no page names a CDN. Without Chromium and chromedriver (or Quarto) the browser
tests skip and say why; `.ci/run` installs Chromium with apt.

Measured at :data:`WINDOW` (a laptop screen); the text column is ``main``'s content box.
Set ``BOOK_SCREENSHOTS=<folder>`` to keep a full-page PNG of every page.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from pathlib import Path

import pytest

from booktools.freshness import PUBLISHED

ROOT = Path(__file__).resolve().parents[1]
BOOK = ROOT / PUBLISHED
#: The browser window (CSS pixels): a common laptop screen.
WINDOW = (1280, 900)
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


@pytest.fixture(scope="module")
def browser(pages):
    """Headless Chromium driven by chromedriver, with the network off (DNS and CDP offline)."""
    chromium, chromedriver, missing = _browser_paths()
    if missing:
        pytest.skip(f"{missing} not installed (Debian: apt-get install chromium chromium-driver)")
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (the dev extra)")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-extensions", "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--force-device-scale-factor=1",
                f"--window-size={WINDOW[0]},{WINDOW[1]}",
                # No name resolves: a request for a host fails even if emulation were bypassed.
                "--host-resolver-rules=MAP * ~NOTFOUND"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(chromedriver))
    try:
        driver.set_script_timeout(PAGE_TIMEOUT + 15)
        driver.execute_cdp_cmd("Network.enable", {})
        driver.execute_cdp_cmd("Network.emulateNetworkConditions", {
            "offline": True, "latency": 0, "downloadThroughput": 0, "uploadThroughput": 0})
        yield driver
    finally:
        driver.quit()


# Runs in the page once it has loaded: waits until every chart has drawn (or failed) and MathJax
# has typeset, then measures. Charts are the divs the book's template renders into
# (``.book-chart``) and any other vega-embed output.
MEASURE_JS = r"""
const done = arguments[arguments.length - 1];
const deadline = Date.now() + arguments[0] * 1000;
const charts = () => [...new Set(document.querySelectorAll('.book-chart, .vega-embed'))]
  .filter(el => !el.parentElement.closest('.book-chart, .vega-embed'));
const label = (el, i) => {
  const fig = el.closest('[id^="fig-"]');
  return fig ? fig.id : `chart ${i + 1} (no figure label)`;
};
const drawn = el => el.querySelector('.error') ||
  (el.querySelector('svg g.role-mark, canvas') && el.querySelector('svg, canvas').getBoundingClientRect().width > 0);
function measure() {
  const main = document.querySelector('main#quarto-document-content') || document.querySelector('main');
  const mr = main.getBoundingClientRect(), ms = getComputedStyle(main);
  const col = {left: mr.left + parseFloat(ms.paddingLeft), right: mr.right - parseFloat(ms.paddingRight)};
  col.width = col.right - col.left;
  const out = {column: col, charts: [], math: [], undrawnMath: 0, stderr: [], text: ''};
  charts().forEach((el, i) => {
    const g = el.querySelector('svg, canvas');
    const c = {label: label(el, i), error: '', width: 0, height: 0, left: 0, right: 0, marks: 0,
               clipped: '', overflow: ''};
    const err = el.querySelector('.error');
    if (err) c.error = err.textContent.trim().slice(0, 300);
    if (g) {
      const r = g.getBoundingClientRect();
      Object.assign(c, {width: r.width, height: r.height, left: r.left, right: r.right});
      if (g.tagName.toLowerCase() === 'svg') {
        // Data marks drawn (not axes, legends or titles), each with a nonzero box.
        c.marks = [...g.querySelectorAll('g.role-mark:not(.mark-group) > *')]
          .filter(m => { const b = m.getBBox ? m.getBBox() : {width: 1, height: 1};
                         return b.width > 0 || b.height > 0; }).length;
        // Anything drawn outside the SVG's own box (a legend or a title cut off).
        const root = g.querySelector('g');
        if (root) {
          const b = root.getBBox(), w = g.width.baseVal.value, h = g.height.baseVal.value;
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
    for (let a = el; a && a !== main; a = a.parentElement) {
      if (a.scrollWidth > a.clientWidth + 1 && getComputedStyle(a).overflowX !== 'visible') {
        c.overflow = `${a.tagName.toLowerCase()}${a.id ? '#' + a.id : ''} scrolls (${a.scrollWidth} > ${a.clientWidth} px)`;
        break;
      }
    }
    out.charts.push(c);
  });
  const tex = new Map();
  if (window.MathJax && MathJax.startup && MathJax.startup.document) {
    for (const m of MathJax.startup.document.math) if (m.typesetRoot) tex.set(m.typesetRoot, m.math);
  }
  document.querySelectorAll('mjx-container[display="true"]').forEach((el, i) => {
    const inner = el.querySelector('svg') || el.firstElementChild || el;
    const r = inner.getBoundingClientRect();
    const eq = el.closest('[id^="eq-"]');
    out.math.push({label: eq ? eq.id : `display equation ${i + 1}`, width: r.width, left: r.left,
                   right: r.right, tex: (tex.get(el) || '').trim().replace(/\s+/g, ' ').slice(0, 90),
                   scrolls: el.scrollWidth > el.clientWidth + 1});
  });
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
  return out;
}
function poll() {
  const mathReady = !document.querySelector('script[src*="mathjax"]') ||
    (window.MathJax && MathJax.startup && MathJax.startup.promise);
  const pending = charts().filter(el => !drawn(el));
  if (document.readyState === 'complete' && mathReady && pending.length === 0) {
    const finish = () => requestAnimationFrame(() => done(measure()));
    (window.MathJax && MathJax.startup && MathJax.startup.promise
      ? MathJax.startup.promise.then(finish, finish) : finish());
  } else if (Date.now() > deadline) {
    const out = measure();
    out.timedOut = pending.map((el, i) => label(el, i));
    out.mathTimedOut = !mathReady;
    done(out);
  } else {
    setTimeout(guarded, 100);
  }
}
function guarded() {
  try { poll(); } catch (err) { done({jsError: String(err && err.stack || err)}); }
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


def _visit(driver, page: Path, name: str | None = None) -> tuple[list[str], dict]:
    """Open one page and return (problems, measurements); ``name`` defaults to its path in the book."""
    name = name or page.relative_to(BOOK).as_posix()
    driver.get("about:blank")
    driver.get_log("browser")
    driver.get_log("performance")
    driver.get(page.as_uri())
    found = driver.execute_async_script(MEASURE_JS, PAGE_TIMEOUT)
    if "jsError" in found:
        return [f"{name}: the measuring script failed: {found['jsError']}"], {"charts": []}
    problems = []
    col = found["column"]
    where = f"{name} (text column {col['width']:.0f} px at a {WINDOW[0]} px window)"
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
        if chart["width"] > col["width"] + SLACK or chart["right"] > col["right"] + SLACK \
                or chart["left"] < col["left"] - SLACK:
            problems.append(f"{at}: {chart['width']:.0f} px wide (x {chart['left'] - col['left']:.0f}.."
                            f"{chart['right'] - col['left']:.0f} in the column), wider than the column")
        if chart["clipped"]:
            problems.append(f"{at}: {chart['clipped']}")
        if chart["overflow"]:
            problems.append(f"{at}: {chart['overflow']}")
    for eq in found["math"]:
        if eq["width"] > col["width"] + SLACK or eq["right"] > col["right"] + SLACK or eq["scrolls"]:
            problems.append(f"{where}: {eq['label']} is {eq['width']:.0f} px wide, wider than the column: "
                            f"{eq['tex']}")
    if found.get("mathTimedOut"):
        problems.append(f"{where}: MathJax did not finish typesetting in {PAGE_TIMEOUT} s")
    if found["undrawnMath"]:
        problems.append(f"{where}: {found['undrawnMath']} formula(s) left as TeX (MathJax did not load or typeset)")
    for text in found["stderr"]:
        problems.append(f"{where}: a cell printed to stderr: {text!r}")
    for line in found["text"].splitlines():
        if LOG_RE.search(line):
            problems.append(f"{where}: log line in the page: {line.strip()[:200]!r}")
    for entry in driver.get_log("browser"):
        if entry["level"] in ("SEVERE", "WARNING"):
            problems.append(f"{where}: browser {entry['level'].lower()}: {entry['message'][:300]}")
    remote, failed = _requests(driver)
    problems += [f"{where}: requested {url} (the book must read offline)" for url in remote]
    problems += [f"{where}: missing file {url}" for url in failed]
    shots = os.environ.get("BOOK_SCREENSHOTS")
    if shots:
        _screenshot(driver, Path(shots) / (name.replace("/", "_").removesuffix(".html") + ".png"))
    return problems, found


def _screenshot(driver, path: Path) -> None:
    """A PNG of the whole page (not only the window)."""
    import base64

    path.parent.mkdir(parents=True, exist_ok=True)
    metrics = driver.execute_cdp_cmd("Page.getLayoutMetrics", {})
    size = metrics["cssContentSize"]
    shot = driver.execute_cdp_cmd("Page.captureScreenshot", {
        "format": "png", "captureBeyondViewport": True,
        "clip": {"x": 0, "y": 0, "width": WINDOW[0], "height": size["height"], "scale": 1}})
    path.write_bytes(base64.b64decode(shot["data"]))


def test_pages_draw_offline_within_the_column(pages, browser):
    """Every page, offline: charts draw without error inside the text column, equations fit, no log line, error or remote request."""
    problems, charts, seconds = [], 0, time.perf_counter()
    for page in pages:
        found_problems, found = _visit(browser, page)
        problems += found_problems
        charts += len(found["charts"])
    seconds = time.perf_counter() - seconds
    assert charts > 0, "no chart found in any page: is the chart template in hbm.book.common.setup() in use?"
    assert not problems, f"{len(problems)} problem(s) in {len(pages)} pages ({seconds:.0f} s):\n" + "\n".join(problems)


def test_measuring_finds_each_kind_of_problem(pages, browser, tmp_path):
    """On a made-up page the checks report an overwide chart and equation, a log line, a failed chart and a remote request."""
    import altair as alt
    import pandas as pd

    from hbm.book import common as book

    book.setup()
    data = pd.DataFrame({"x": [1, 2, 3], "y": [3, 1, 2]})
    wide = alt.Chart(data).mark_point().encode(x="x:Q", y="y:Q").properties(width=900)
    broken = alt.Chart(data).mark_point().encode(x="x:Q", y="y:Q").properties(width=200).to_dict()
    broken["mark"] = {"type": "no-such-mark"}
    # The Vega bundles the book ships (booktools/offline.lua), in load order, and its MathJax.
    vega = [BOOK / "site_libs" / "quarto-contrib" / lib / f"{lib}.min.js" for lib in ("vega", "vega-lite", "vega-embed")]
    scripts = "".join(f'<script src="{p.as_uri()}"></script>' for p in vega)
    mathjax = next(BOOK.rglob("tex-svg-full.js")).as_uri()
    page = tmp_path / "made-up.html"
    page.write_text(f"""<html><head>{scripts}<script src="{mathjax}"></script>
        <script src="https://cdn.jsdelivr.net/npm/nothing@1"></script></head>
        <body><main style="width: 500px">
        <div id="fig-wide">{wide._repr_mimebundle_()["text/html"]}</div>
        <div id="fig-broken">{book.CHART_TEMPLATE.render(spec=json.dumps(broken), output_div="broken",
                                                          embed_options=json.dumps(book.EMBED_OPTIONS))}</div>
        <p><span class="math display">\\[{" + ".join(f"x_{{{i}}}" for i in range(60))}\\]</span></p>
        <pre>NUTS[nutpie]: [mu, tau]</pre></main></body></html>""")
    problems = "\n".join(_visit(browser, page, "made-up.html")[0])
    assert "fig-wide: 9" in problems and "wider than the column" in problems, problems
    assert "fig-broken: chart error" in problems, problems
    assert "display equation 1 is" in problems, problems
    assert "log line in the page: 'NUTS[nutpie]" in problems, problems
    assert "requested https://cdn.jsdelivr.net/npm/nothing@1" in problems, problems


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
