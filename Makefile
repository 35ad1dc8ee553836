# One command per chore. `make run` serves the demo; `make test` runs every test.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: run test lint typecheck bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test,dev]'
	touch $(STAMP)

run: $(STAMP)  ## serve the demo (sample data in data/, SQLite under data/) on http://127.0.0.1:8000
	$(BIN)/feedsvc demo
	$(BIN)/feedsvc serve

# Two workers (pytest-xdist): the suite runs twice over (SQLite and PostgreSQL) and most of a
# test's time is building the app; two processes keep CI well inside its ten minutes.
test: $(STAMP)  ## every test; PostgreSQL tests run when FEEDSVC_TEST_POSTGRES_DSN is set
	$(BIN)/python -m pytest -q -n 2

lint: $(STAMP)
	$(BIN)/ruff check feedsvc tests bench

typecheck: $(STAMP)
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python -m bench.run

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache
