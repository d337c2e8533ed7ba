"""Machine-made sentences: the patterns a careful reader stops at, found in a page's prose.

The book's sentences are written by hand with inline values, and a value can still make a
sentence read as if a machine assembled it: "4 of the 4 schools", "all 2 fits pass", nested
parentheses, a code name such as ``mu_genre[Gaming]`` in a sentence, a variable's name where a
Greek letter belongs, "NaN" where a number belongs. :func:`find` lists them in a text;
:func:`page_text` takes the prose of a rendered HTML page (paragraphs, lists, headings,
captions and the book's own tables; code, cell output, maths and charts left out) and
:func:`markdown_text` the prose of an executed chapter (inline values in place, maths and
inline code left out). ``tests/test_glitches.py`` runs them on every page of the book and on
every chapter executed on readers' own data.

Command line::

    python -m booktools.glitches _book/chapters/*.html
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

#: (name, pattern): each match in prose is a glitch.
PATTERNS: tuple[tuple[str, re.Pattern], ...] = (
    ("'N of the N'", re.compile(r"\b(\d[\d,]*) of the \1\b")),
    ("'N of N'", re.compile(r"\b(\d[\d,]*) of \1\b")),
    ("'all 1'/'all 2' with a plural", re.compile(r"\ball [12] [A-Za-z-]+s\b")),
    ("'1' with a plural", re.compile(r"(?<![\d.,])\b1 (?!percent)[a-z]+(?<!s)s\b(?! (?:per|of)\b)")),
    ("'the 1'/'of the 1'", re.compile(r"\b(?:the|of) 1 [a-z]+\b")),
    ("'None of the' a whole", re.compile(r"\bNone of the [12]\b")),
    ("doubled parentheses", re.compile(r"\(\(|\)\)")),
    ("code identifier", re.compile(r"\b[A-Za-z]+_[A-Za-z0-9_]+(?:\[[^\]]*\])?")),
    ("indexed code name", re.compile(r"\b[A-Za-z_]\w*\[[A-Za-z][^\]]*\]")),
    ("parameter's code name", re.compile(r"(?<![-\w])(?:kappa|sigma|tau|theta|mu)(?![-\w])")),
    ("code name of a Beta shape", re.compile(r"\bBeta [ab]\b")),
    ("'brief'/'internal'", re.compile(r"\b(?:brief|internal)\b", re.IGNORECASE)),
    ("NaN or inf", re.compile(r"(?<![\w.])(?:nan|NaN|inf|-inf|Inf)(?![\w])")),
    ("traceback", re.compile(r"Traceback \(most recent call last\)|\bError: ")),
    ("unfilled value", re.compile(r"\{python\}|\bNone\b(?! of\b)|<NA>")),
    ("doubled word", re.compile(r"\b([a-z]+) \1\b")),
)

# Words whose doubling is English ("that that" can be; "had had" is).
_DOUBLED_OK = {"that", "had", "is"}


@dataclass(frozen=True)
class Glitch:
    """One match: which pattern, the matched text and the sentence around it."""

    kind: str
    match: str
    context: str

    def __str__(self) -> str:
        return f"{self.kind}: {self.match!r} in \u201c{self.context}\u201d"


def _nested_parentheses(text: str):
    """Parentheses opened inside parentheses, other than a function's or a distribution's: ``(a (b))``."""
    depth, start = 0, 0
    for i, ch in enumerate(text):
        if ch == "(":
            if depth == 0:
                start = i
            elif i > 0 and not (text[i - 1].isalnum() or text[i - 1] in "_^'\u2032"):
                end = text.find(")", i)
                yield start, (end + 1 if end >= 0 else i + 1)
            depth += 1
        elif ch == ")" and depth > 0:
            depth -= 1


def _context(text: str, start: int, end: int, width: int = 60) -> str:
    lo, hi = max(0, start - width), min(len(text), end + width)
    return " ".join(text[lo:hi].split())


def find(text: str) -> list[Glitch]:
    """Every glitch in ``text`` (prose with code, maths and URLs already taken out)."""
    out = []
    for kind, pattern in PATTERNS:
        for m in pattern.finditer(text):
            if kind == "doubled word" and m.group(1) in _DOUBLED_OK:
                continue
            out.append(Glitch(kind, m.group(0), _context(text, m.start(), m.end())))
    for start, end in _nested_parentheses(text):
        out.append(Glitch("nested parentheses", text[start:end], _context(text, start, end)))
    return out


_URL_RE = re.compile(r"https?://\S+|\b[\w./-]+\.(?:csv|json|nc|ipynb|qmd|py|html|md|parquet)\b")
_MATH_RE = re.compile(r"\$\$.*?\$\$|\$[^$\n]+\$|\\\(.*?\\\)|\\\[.*?\\\]", re.DOTALL)
_CODE_RE = re.compile(r"`[^`\n]*`")
_LINK_RE = re.compile(r"\]\([^)]*\)|\{[#.][^}]*\}|@(?:sec|fig|tbl|eq)-[\w-]+|\[@[^\]]*\]|@\w+")


def markdown_text(markdown: str) -> str:
    """The prose of executed markdown: maths, inline code, link targets, labels and citations removed."""
    text = re.sub(r"^```.*?^```", " ", markdown, flags=re.MULTILINE | re.DOTALL)
    text = re.sub(r"^\s*(?:#\||:::).*$", " ", text, flags=re.MULTILINE)
    for pattern in (_MATH_RE, _CODE_RE, _LINK_RE, _URL_RE):
        text = pattern.sub(" ", text)
    return text


class _Prose(HTMLParser):
    """Collects a page's prose: skips code, output, maths, charts, scripts and navigation."""

    SKIP_TAGS = {"pre", "code", "script", "style", "svg", "nav", "header", "footer", "head", "button",
                 "math", "mjx-container"}
    SKIP_CLASSES = {"math", "dataframe", "cell-output-stdout", "cell-output-stderr", "sidebar",
                    "quarto-title-meta", "vega-embed", "code-copy-outer-scaffold", "anchorjs-link",
                    "quarto-appendix-contents", "csl-entry", "references"}
    VOID = {"br", "img", "hr", "input", "meta", "link", "col", "source", "wbr", "area", "base", "embed", "track"}
    BLOCK = {"p", "li", "h1", "h2", "h3", "h4", "h5", "h6", "figcaption", "caption", "th", "td", "div", "dt", "dd",
             "blockquote", "tr", "table"}

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.stack: list[bool] = []  # per open element: whether it is skipped
        self.parts: list[str] = []

    def _skipping(self) -> bool:
        return any(self.stack)

    def handle_starttag(self, tag, attrs):
        if tag in self.VOID:
            return
        attrs = dict(attrs)
        classes = set((attrs.get("class") or "").split())
        skip = tag in self.SKIP_TAGS or bool(classes & self.SKIP_CLASSES) or attrs.get("id") in {
            "quarto-sidebar", "TOC", "quarto-margin-sidebar", "refs", "quarto-header"}
        self.stack.append(skip)
        if tag in self.BLOCK:
            self.parts.append("\n")

    def handle_endtag(self, tag):
        if tag in self.VOID or not self.stack:
            return
        self.stack.pop()
        if tag in self.BLOCK:
            self.parts.append("\n")

    def handle_data(self, data):
        if not self._skipping():
            self.parts.append(data)


def page_text(html: str) -> str:
    """The prose of a rendered HTML page (see :class:`_Prose`), URLs and file names removed."""
    parser = _Prose()
    parser.feed(html)
    text = "".join(parser.parts)
    text = _MATH_RE.sub(" ", text)
    return _URL_RE.sub(" ", text)


_SPEC_RE = re.compile(r"\}\)\((\{.*?\}), \{\"renderer\"", re.DOTALL)
_CHANNELS = {"x", "y", "x2", "y2", "color", "fill", "stroke", "shape", "size", "opacity", "strokeDash",
             "theta", "radius", "row", "column", "facet", "text", "tooltip", "detail"}


def chart_titles(html: str) -> list[str]:
    """The titles a page's charts show: chart, axis, legend and panel-header titles of every Vega-Lite spec."""
    import json

    found: list[str] = []

    def text(value):
        if isinstance(value, str):
            found.append(value)
        elif isinstance(value, list):
            found.extend(v for v in value if isinstance(v, str))
        elif isinstance(value, dict) and "text" in value:
            text(value["text"])

    def walk(node, in_channel=False):
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "title" and (in_channel or isinstance(value, (str, dict, list))):
                    text(value)
                elif key in {"axis", "legend", "header"} and isinstance(value, dict):
                    text(value.get("title"))
                elif key == "encoding" and isinstance(value, dict):
                    for channel, definition in value.items():
                        if channel in _CHANNELS:
                            walk(definition, in_channel=True)
                elif key in {"layer", "hconcat", "vconcat", "concat", "spec"}:
                    walk(value)
                elif key == "facet" and isinstance(value, dict):
                    walk(value, in_channel=True)
        elif isinstance(node, list):
            for item in node:
                walk(item, in_channel)

    for match in _SPEC_RE.finditer(html):
        try:
            spec = json.loads(match.group(1))
        except ValueError:
            continue
        walk(spec)
    return found


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    found = 0
    for name in argv:
        path = Path(name)
        raw = path.read_text(encoding="utf-8")
        text = page_text(raw) + "\n" + "\n".join(chart_titles(raw)) if path.suffix == ".html" else markdown_text(raw)
        for glitch in find(text):
            found += 1
            print(f"{path}: {glitch}")
    print(f"{found} glitch{'es' if found != 1 else ''}")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
