# One command per chore. `make run` serves the demo; `make test` runs every test.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: run test lint typecheck docs bench clean lock audit

# Every dependency comes from the hash-checked locks (requirements-dev.lock holds the runtime
# lock's pins plus the test and dev tools); the project itself goes on top without deps.
# A fresh venv each time, so nothing outside the locks stays installed.
$(STAMP): pyproject.toml requirements.lock requirements-dev.lock
	rm -rf $(VENV)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q --require-hashes --no-deps -r requirements-dev.lock
	$(BIN)/python -m pip install -q --no-deps -e .
	touch $(STAMP)

# Faker and polyfactory are left out: litestar declares them but imports them only to
# invent OpenAPI examples, which feedsvc does not ask for.
LOCK_FLAGS := --generate-hashes --python-version 3.11 --python-platform linux \
	--no-emit-package polyfactory --no-emit-package faker
lock: $(STAMP)  ## re-resolve the locks to the newest versions pyproject.toml (and tests/tools/*.in) allow
	$(BIN)/uv pip compile pyproject.toml --quiet --upgrade $(LOCK_FLAGS) -o requirements.lock
	$(BIN)/uv pip compile pyproject.toml --quiet --upgrade --extra test --extra dev -c requirements.lock \
		$(LOCK_FLAGS) -o requirements-dev.lock
	$(BIN)/uv pip compile tests/tools/openapi-python-client.in --quiet --upgrade --generate-hashes \
		--python-version 3.11 --python-platform linux -o tests/tools/openapi-python-client.lock

# --strict: a package it could not look up fails the audit (offline it would skip them all
# and still print "No known vulnerabilities found").
audit: $(STAMP)  ## known vulnerabilities in the runtime lock (needs the network: not part of CI)
	$(BIN)/pip-audit --strict --require-hashes --disable-pip -r requirements.lock

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

# The manual (docs/, mkdocs.yml) into site/; strict, so a broken link or a page left out of
# the navigation is an error. tests/test_docs.py runs the same build.
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

bench: $(STAMP)
	$(BIN)/python -m bench.run

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache site
