# Tidings: `make help` lists the targets.
.DEFAULT_GOAL := help
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 8000
PYTEST := $(VENV)/bin/pytest

.PHONY: help install run test test-fast test-unit test-integration lint format bench clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-18s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml constraints.txt
	@test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP) ## create .venv with Tidings installed editable (idempotent)

run: install ## start Tidings in embedded mode (SQLite, in-process runner) on $(HOST):$(PORT)
	TIDINGS_ENV=$${TIDINGS_ENV:-development} TIDINGS_LOG_FORMAT=$${TIDINGS_LOG_FORMAT:-console} \
		$(VENV)/bin/tidings serve --host $(HOST) --port $(PORT)

test: install ## the whole suite: unit, SQLite and PostgreSQL integration, faults
	$(PYTEST) --durations=15 -p no:cacheprovider tests

test-fast: install ## unit tests and the SQLite integration tests, on two processes
	$(PYTEST) -p no:cacheprovider -n 2 -m "not postgresql and not faults and not slow" tests

lint: install ## ruff, mypy (strict on src/) and the import-linter layer contracts
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

format: install ## apply ruff's formatting and safe fixes
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

BENCH_STAMP := $(VENV)/.bench-installed
$(BENCH_STAMP): $(STAMP)
	$(PY) -m pip install --quiet -c constraints.txt -e '.[dev,bench]'
	@touch $(BENCH_STAMP)

bench: install $(BENCH_STAMP) ## run the benchmarks into docs/benchmarks.md (ARGS="--quick --scenario ingest ...")
	@command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
	$(PY) -m bench $(ARGS)

clean: ## remove caches and the local data directory
	rm -rf .mypy_cache .ruff_cache .pytest_cache .tidings
