# Two commands do everything on a fresh machine with Python 3.11 and pip:
#   make demo   create the environment, install, run the end-to-end demo, then serve
#   make test   create the environment, install, run the whole test suite
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test test-fast lint format docs bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/fleuve demo

test: $(STAMP)
	$(BIN)/python -m pytest

test-fast: $(STAMP)
	$(BIN)/python -m pytest -m "not slow"

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy src

format: $(STAMP)
	$(BIN)/ruff format src tests bench
	$(BIN)/ruff check --fix src tests bench

# The settings and command references, generated from the code (tests/test_reference.py
# fails when they are out of date).
docs: $(STAMP)
	$(BIN)/python -m fleuve.reference

clean:
	rm -rf $(VENV) fleuve-demo .pytest_cache .ruff_cache .mypy_cache
