# Two commands for a fresh machine: `make demo` and `make test`. Each creates .venv and installs
# the project on first use (and again whenever pyproject.toml changes).
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test test-unit bench lint format install clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/grader demo

# The browser tests drive Debian's Chromium (Playwright's own browser download does not work
# offline); installed here when missing.
CHROMIUM := /usr/bin/chromium

$(CHROMIUM):
	apt-get install -y chromium || (apt-get update && apt-get install -y chromium)

# Everything: ruff, then the unit, integration and end-to-end tests (README: Tests).
test: $(STAMP) $(CHROMIUM)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python -m pytest

# The unit tests alone: no PostgreSQL, no Prefect, no subprocess; seconds.
test-unit: $(STAMP)
	$(BIN)/python -m pytest tests/unit

bench: $(STAMP)
	$(BIN)/python bench/run.py

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache
