# Two commands do everything on a fresh machine (Python 3.11+, make, npm):
#   make book   set up .venv, execute every chapter, write the HTML book to _build/html
#   make test   set up the same and run the whole test suite (unit, chapters, book, browser)
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
SETUP  := $(VENV)/.installed

.PHONY: book test test-fast bench student clean

$(SETUP): requirements-dev.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet -r requirements-dev.txt
	$(BIN)/pip install --quiet --no-deps -e .
	touch $@

book: $(SETUP)
	$(BIN)/python tools/build_book.py

test: $(SETUP)
	$(BIN)/python -m pytest

test-fast: $(SETUP)
	$(BIN)/python -m pytest -m "not slow"

bench: $(SETUP)
	$(BIN)/python tools/bench_batched.py

student: $(SETUP)
	$(BIN)/python -m resbook.student --all -o student/

clean:
	rm -rf _build student .pytest_cache .hypothesis
