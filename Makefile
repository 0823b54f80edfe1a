# Two commands do everything on a fresh machine (Python 3.11+, make, npm):
#   make book   set up .venv, execute every chapter, write the HTML book to _build/html
#   make test   set up the same, lint, and run the whole test suite (unit, chapters, book, browser)
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
SETUP  := $(VENV)/.installed

.PHONY: book test test-fast lint bench notebooks student clean vendor browser mutants

$(SETUP): requirements-dev.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet -r requirements-dev.txt
	$(BIN)/pip install --quiet --no-deps -e .
	touch $@

# Browser assets from npm, pinned in package-lock.json: MathJax, served by the book itself so that it
# reads offline, and axe-core for the accessibility checks of the browser tests.
MATHJAX := node_modules/mathjax/es5
VENDOR  := _vendor/html/mathjax

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund
	touch $@

# The combined component, its fonts, the TeX extensions it loads on demand (\require, autoload) and
# what its context menu loads on demand (a11y, sre, ui); published at the book's root as mathjax/.
_vendor/.mathjax: node_modules/.installed
	rm -rf $(VENDOR) && mkdir -p $(VENDOR)/output/chtml/fonts $(VENDOR)/input/tex
	cp $(MATHJAX)/tex-mml-chtml.js $(VENDOR)/
	cp -r $(MATHJAX)/output/chtml/fonts/woff-v2 $(VENDOR)/output/chtml/fonts/
	cp -r $(MATHJAX)/input/tex/extensions $(VENDOR)/input/tex/
	cp -r $(MATHJAX)/a11y $(MATHJAX)/sre $(MATHJAX)/ui $(VENDOR)/
	cp node_modules/mathjax/LICENSE $(VENDOR)/
	touch $@

vendor: _vendor/.mathjax

# The browser tests drive Debian's Chromium at /usr/bin/chromium (CI: root on a fresh machine without
# it; Playwright's own browser downloads are not used).
browser: export DEBIAN_FRONTEND := noninteractive
browser:
	test -x /usr/bin/chromium || (apt-get install -y chromium || (apt-get update && apt-get install -y chromium))

# Ruff over the package, tests, tools and the chapters' code cells (pyproject.toml, book/ruff.toml).
LINT := $(BIN)/ruff check .

lint: $(SETUP)
	$(LINT)

book: $(SETUP) vendor
	$(BIN)/python tools/build_book.py

test: $(SETUP) vendor browser
	$(LINT)
	$(BIN)/python -m pytest

test-fast: $(SETUP)
	$(BIN)/python -m pytest -m "not slow"

# The whole book measured (tools/bench_book.py): chapters, training against the arithmetic floor, batched kernels
# against the plain way, in _build/bench.md; BENCH=--rebuild adds three timed builds (several minutes more).
BENCH ?=

bench: $(SETUP) vendor
	$(BIN)/python tools/bench_book.py $(BENCH)

# Mutation testing of the core modules with mutmut (pyproject.toml's [tool.mutmut]); not part of `make test` or CI:
# ~2,800 mutants at about 0.5 a second on 2 cores, so about 1.5 h for all. MUTANTS='resbook.data.*' runs one module's
# mutants (names, globs allowed); a run that stops resumes where it was. tools/mutation_score.py --survivors lists
# what lived. torch on one thread: a child forked after torch ran multi-threaded can hang.
MUTANTS ?=

mutants: $(SETUP)
	OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 $(BIN)/mutmut run $(MUTANTS)
	$(BIN)/python tools/mutation_score.py

# The notebook edition (Colab and Jupyter): every chapter and the intro in plain Jupyter Markdown, with the numbers
# of this build, in notebooks/book/; CI publishes notebooks/ as the `notebooks` branch, where the Colab button opens.
notebooks: book
	rm -rf notebooks
	$(BIN)/python -m resbook.edition --build _build --out notebooks

# The student edition, made from the notebook edition: solutions become stubs.
student: notebooks
	$(BIN)/python -m resbook.student --all --book notebooks/book -o student/

clean:
	rm -rf _build notebooks student .pytest_cache .hypothesis _vendor mutants
