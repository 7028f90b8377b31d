# Two entry points for a fresh machine: `make demo` and `make test` (see README).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: demo test lint bench clean

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "SimMIM needs Python 3.11+; run e.g. make PYTHON=python3.12")'
	$(PYTHON) -m venv $(VENV)

# Stamps reinstall only when the dependency list changes.
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -e .
	@touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -e '.[dev]'
	@touch $@ $(VENV)/.installed

# The whole system offline: corpus, local site and mail server, crawl → index → score →
# detect → email, then a summary. Data in ./demo-data (wiped by the next demo).
demo: $(VENV)/.installed
	$(BIN)/simmim demo --data-dir demo-data

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

test: lint
	$(BIN)/python -m pytest
	@test -x "$${SIMMIM_TEST_CHROMIUM:-/usr/bin/chromium}" || echo "note: the browser tests (tests/test_dashboard_browser.py) were SKIPPED: Chromium is not installed; install it with 'apt-get install chromium' (CI installs it and fails without it)"

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
