# Borrowing Strength: `make book` renders the book, `make test` runs every test.
# Both set themselves up on a fresh machine: a .venv with Python >= 3.12 and the pinned stack.

SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV   := .venv
PY     := $(VENV)/bin/python
KERNEL := borrowing-strength
STAMP  := $(VENV)/.installed
# The JavaScript and fonts the rendered book ships (Vega, Vega-Lite, vega-embed, MathJax,
# Source Sans 3 and Source Code Pro), pinned by
# _vendor/package-lock.json and installed with npm into _vendor/node_modules.
VENDOR := _vendor/node_modules/.installed
# Python for creating .venv: PYTHON=... if given, else a python3.12/3.13 that runs, else pyenv's.
PYTHON ?= $(shell scripts/find-python)

# Compiled PyMC models (PyTensor through Numba) are cached in the project, not in $HOME,
# so repeated renders and test runs reuse them. Numba's fastmath is off: with it, a model
# loaded from the cache samples different numbers than a freshly compiled one for the same
# seed; without it, a re-render gives the same numbers whether the cache is cold or warm.
export PYTENSOR_FLAGS := base_compiledir=$(CURDIR)/.cache/pytensor,numba__fastmath=False
# Quarto runs chapters with the project's interpreter and finds the kernel registered in it.
export QUARTO_PYTHON  := $(CURDIR)/$(PY)
export PATH           := $(CURDIR)/$(VENV)/bin:$(PATH)

.PHONY: help install test book bench data clean

help:
	@echo "make book    render the whole book to _book/ with Quarto"
	@echo "make test    run the whole test suite (renders the book with Quarto when there is one)"
	@echo "make bench   time each chapter and the benchmarks; tables in bench/results/"
	@echo "make data    regenerate the simulated CSVs in data/ (refuses to overwrite edited files)"
	@echo "make clean   remove rendered output and caches (keeps .venv)"

install: $(STAMP) $(VENDOR)

$(STAMP): pyproject.toml
	@if ! { [ -x $(PY) ] && $(PY) -c 'import sys; sys.exit(sys.version_info < (3, 12))' 2>/dev/null; }; then \
	  py="$(PYTHON)"; [ -n "$$py" ] || exit 1; \
	  echo "Creating $(VENV) with $$py"; rm -rf $(VENV); "$$py" -m venv $(VENV) || exit 1; \
	fi
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	$(PY) -m ipykernel install --sys-prefix --name $(KERNEL) --display-name "Python 3 (Borrowing Strength)"
	@touch $(STAMP)

$(VENDOR): _vendor/package.json _vendor/package-lock.json
	@command -v npm >/dev/null || { echo "npm is needed to install the book's JavaScript (apt-get install npm)"; exit 1; }
	npm ci --prefix _vendor --no-audit --no-fund --ignore-scripts --loglevel=error
	@touch $(VENDOR)

test: $(STAMP) $(VENDOR)
	$(PY) -m pytest

# Quarto: the `quarto` on PATH, else the offline one the project's machines keep in
# ../shared/quarto, else the quarto-cli wheel (which downloads Quarto: needs internet once).
# Quarto renders into _render/; the post-render step publishes a complete render to _book/.
book: $(STAMP) $(VENDOR)
	@q=$$(command -v quarto || true); \
	if [ -z "$$q" ] && [ -x ../shared/quarto/bin/quarto ]; then q=$(CURDIR)/../shared/quarto/bin/quarto; fi; \
	if [ -z "$$q" ]; then \
	  $(PY) -m pip install --quiet -e '.[dev,quarto]' && q=$(CURDIR)/$(VENV)/bin/quarto; \
	fi; \
	echo "Rendering with $$q"; "$$q" render

bench: $(STAMP)
	$(PY) bench/run.py

data: $(STAMP)
	$(PY) -m hbm.book.simulate --out data

clean:
	rm -rf _book _render _freeze .quarto .jupyter_cache chapters/.jupyter_cache chapters/*.quarto_ipynb .cache .pytest_cache
