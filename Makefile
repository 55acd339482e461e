# The two set-up commands of the README: `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
CHROMIUM ?= /usr/bin/chromium
SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: demo test install install-test chromium lint typecheck pytest clean bench wrk sdk

$(BIN)/python:
	@echo "==> creating the virtualenv $(VENV)"
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

install: $(BIN)/python
	@echo "==> installing connect-portal (with its MCP server) and its dependencies into $(VENV) (about 30 s the first time)"
	$(BIN)/pip install --quiet --progress-bar off -e '.[mcp]'

install-test: $(BIN)/python
	@echo "==> installing connect-portal with its test, server, PostgreSQL and MCP extras (about 40 s the first time)"
	$(BIN)/pip install --quiet --progress-bar off -e '.[test,server,postgres,mcp]'

# Debian's Chromium for the browser tests (Playwright drives it; it never downloads a browser).
chromium:
	@[ -x $(CHROMIUM) ] || { echo "==> installing Debian's chromium for the browser tests"; \
		$(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq chromium; }

# The benchmarks of bench/ (not part of `make test`): one table, medians, under 10 minutes.
wrk:
	@command -v wrk >/dev/null || { $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq wrk; }

bench: install-test chromium wrk
	cd bench && ../$(BIN)/python run.py

# Rebuild static/portal.min.js (the file the script tag loads) from static/portal.js.
sdk:
	npm --prefix bench ci --silent
	node bench/build_sdk.mjs

demo: install
	$(BIN)/python -m portal.demo

lint:
	$(BIN)/ruff check portal tests $(wildcard bench)

typecheck:
	$(BIN)/mypy

# The suite twice: on SQLite files, then on PostgreSQL (a fresh schema per test database,
# dropped at the end; the browser and wheel tests only on the SQLite pass).
PG_TEST_URL ?= postgresql+psycopg://postgres@127.0.0.1:5432/test
pytest:
	@echo "==> the suite on SQLite (browser and wheel tests included)"
	$(BIN)/pytest -n 2 --dist loadgroup
	@echo "==> the suite on PostgreSQL ($(PG_TEST_URL))"
	PORTAL_TEST_DATABASE_URL=$(PG_TEST_URL) $(BIN)/pytest -n 2 --dist loadgroup \
		-m "not e2e" --ignore tests/test_wheel.py

test: install-test chromium lint typecheck pytest

clean:
	rm -rf $(VENV) dist build .pytest_cache .mypy_cache .ruff_cache
