# Two commands on a fresh machine: `make demo` and `make test`.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# The databases `make test` runs the suite on: SQLite (the default) and this PostgreSQL.
POSTGRES_URL ?= postgres://postgres@127.0.0.1:5432/test
REDIS_URL ?= redis://127.0.0.1:6379/0
DEMO := $(BIN)/python example_project/manage.py

# The benchmark's own database and Redis prefix, so it never disturbs a test run.
BENCH_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/bench_vn
BENCH_ENV := BENCH_DATABASE_URL=$(BENCH_DATABASE_URL) REDIS_URL=$(REDIS_URL) BENCH_REDIS_PREFIX=vn-bench

.PHONY: help venv demo demo-layer demo-notify test test-fast test-sqlite test-postgres services lint typecheck tox clean bench bench-quick \
	bench-profile bench-connect-cost bench-inbox-features soak dist install-check docs docs-serve

help:
	@echo "Try it"
	@echo "  make demo            the example project on http://127.0.0.1:8000 (Redis when it answers)"
	@echo "  make demo-notify     send a notification to the running demo (VENDOR=1 MESSAGE=...)"
	@echo "  make demo-layer      say which channel layer the demo would run on"
	@echo "Test"
	@echo "  make test            the suite on SQLite and PostgreSQL (about 10 minutes on 2 cores)"
	@echo "  make test-fast       SQLite only, no end-to-end tests (about 2 minutes); PYTEST_ARGS=..."
	@echo "  make test-sqlite     the whole suite on SQLite"
	@echo "  make test-postgres   the whole suite on PostgreSQL"
	@echo "  make services        start PostgreSQL and Redis if they are not answering"
	@echo "  make lint            ruff"
	@echo "  make typecheck       mypy with django-stubs"
	@echo "  make tox             the full tox matrix (every Python x Django)"
	@echo "  make soak            15 minutes of clients coming and going (SOAK_SECONDS=900)"
	@echo "Package and docs"
	@echo "  make dist            the sdist and the wheel in dist/, twine check --strict"
	@echo "  make install-check   the wheel in clean venvs (oldest and newest Python and Django)"
	@echo "  make docs            the documentation site in build/site (strict)"
	@echo "  make docs-serve      the documentation site on http://127.0.0.1:8001, live"
	@echo "Benchmarks (docs/benchmarks.md)"
	@echo "  make bench           the benchmarks (about 12 minutes); ONLY=\"scenario ...\""
	@echo "  make bench-quick     the same scenarios with small N (about a minute)"
	@echo "  make bench-profile   where a scenario's server spends its time (SCENARIO=connect|broadcast)"
	@echo "  make bench-connect-cost  a connect's cost step by step"
	@echo "  make bench-inbox-features  the inbox query with collapse, seen and snooze"
	@echo "Housekeeping"
	@echo "  make venv            .venv with the package and its dev dependencies"
	@echo "  make clean           remove .venv, .tox, build, dist and test databases"
	@echo "  make help            this list"

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

venv: $(BIN)/.installed

$(BIN)/.bench-installed: $(BIN)/.installed
	$(BIN)/python -m pip install --quiet -e '.[dev,bench]'
	touch $@

# The demo runs on Redis when it answers at REDIS_URL, so a notification sent from another
# shell (make demo-notify) reaches the page live; otherwise on the in-memory layer, which only
# the server's own process can push through (the page's buttons).
DEMO_ENV = $(shell $(BIN)/python -c "import redis; redis.Redis.from_url('$(REDIS_URL)', \
	socket_connect_timeout=1).ping()" >/dev/null 2>&1 && echo REDIS_URL=$(REDIS_URL))

demo: venv
	@$(MAKE) --no-print-directory demo-layer
	$(DEMO_ENV) $(DEMO) migrate --noinput
	$(DEMO_ENV) $(DEMO) seed_demo
	$(DEMO_ENV) $(DEMO) runserver 127.0.0.1:8000

demo-layer:
	@if [ -n "$(DEMO_ENV)" ]; then \
		echo "Channel layer: Redis at $(REDIS_URL). A notification sent from another shell" \
			"(make demo-notify) arrives live."; \
	else \
		echo "Channel layer: in-memory (no Redis answers at $(REDIS_URL)). Only the page's" \
			"buttons push live; a notification sent from another shell waits for the next connect."; \
	fi

# From another shell while make demo runs: VENDOR (default 1, printed by seed_demo), MESSAGE.
VENDOR ?= 1
MESSAGE ?= Hello from a shell
demo-notify: venv
	$(DEMO_ENV) $(DEMO) send_notification --vendor $(VENDOR) --message "$(MESSAGE)"

services:
	@.ci/services

test: venv services test-sqlite test-postgres

test-sqlite: venv
	TEST_RUN_LABEL="make test-sqlite (SQLite)" REDIS_URL=$(REDIS_URL) $(BIN)/python -m pytest

test-postgres: venv services
	TEST_RUN_LABEL="make test-postgres (PostgreSQL)" DATABASE_URL=$(POSTGRES_URL) \
		REDIS_URL=$(REDIS_URL) $(BIN)/python -m pytest

# The edit-test loop: SQLite only, without the end-to-end tests (real servers) and the package
# build. About 2 minutes on 2 cores, against about 10 for make test (see README).
test-fast: venv
	TEST_RUN_LABEL="make test-fast (SQLite, no e2e)" REDIS_URL=$(REDIS_URL) $(BIN)/python -m pytest \
		-m "not e2e and not browser and not soak and not packaging" $(PYTEST_ARGS)

# Not part of make test: nothing lost or twice, memory flat, for SOAK_SECONDS (CI: 60).
SOAK_SECONDS ?= 900
soak: venv services
	SOAK_SECONDS=$(SOAK_SECONDS) DATABASE_URL=$(POSTGRES_URL) REDIS_URL=$(REDIS_URL) \
		$(BIN)/python -m pytest -m soak -s -p no:cacheprovider

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check django_vendor_notifications

typecheck: venv
	$(BIN)/mypy

tox: venv services
	DATABASE_URL=$(POSTGRES_URL) $(BIN)/tox

# Writes bench/results/full.json, the charts in docs/img/ and prints the table.
# ONLY="reconnect-storm slow-reader" runs just those scenarios (results in the run's log dir).
ONLY ?=
BENCH_ONLY := $(foreach scenario,$(ONLY),--only $(scenario))
bench: $(BIN)/.bench-installed services
	$(BENCH_ENV) $(BIN)/python -m bench.run --full $(if $(ONLY),$(BENCH_ONLY),--charts docs/img)

# The same scenarios with small N on one server: bench/results/quick.json.
bench-quick: $(BIN)/.bench-installed services
	$(BENCH_ENV) $(BIN)/python -m bench.run --quick $(BENCH_ONLY)

# Where a scenario's server spends its time (py-spy), and a connect's cost step by step.
SCENARIO ?= broadcast
bench-profile: $(BIN)/.bench-installed services
	$(BENCH_ENV) $(BIN)/python -m bench.profile $(SCENARIO)

bench-connect-cost: $(BIN)/.bench-installed services
	$(BENCH_ENV) $(BIN)/python -m bench.connect_cost

bench-inbox-features: $(BIN)/.bench-installed services
	$(BENCH_ENV) $(BIN)/python -m bench.inbox_features

$(BIN)/.docs-installed: $(BIN)/.installed
	$(BIN)/python -m pip install --quiet -e '.[dev,docs]'
	touch $@

# The documentation site in build/site, strict: a broken link or anchor fails the build.
docs: $(BIN)/.docs-installed
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

# The site on http://127.0.0.1:8001/, rebuilt on every change.
docs-serve: $(BIN)/.docs-installed
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs serve --dev-addr 127.0.0.1:8001

# The sdist and the wheel in dist/, checked as the package index will check them.
dist: venv
	rm -rf dist
	$(BIN)/python -m build --outdir dist .
	$(BIN)/twine check --strict dist/*

# The wheel in clean venvs (Python 3.10 + Django 4.2, Python 3.13 + Django 6.1): check, migrate.
install-check: venv
	.ci/install-check

clean:
	rm -rf $(VENV) .tox build dist *.egg-info tests/test-db*.sqlite3
