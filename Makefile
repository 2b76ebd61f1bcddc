# The two commands: `make run` starts the portal, `make test` runs every test.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

# Test services: with DATABASE_URL / REDIS_URL unset the suite starts its own throwaway
# PostgreSQL cluster and redis-server on free ports and removes them at the end
# (tests/plugins/services.py); set them to run against servers of your own.
PYTEST_WORKERS ?= 2

.PHONY: run test lint format install clean bench-pages

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(PY) manage.py migrate --noinput
	$(PY) manage.py seed_demo
	$(PY) manage.py runportal

lint: $(STAMP)
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/ruff check .

format: $(STAMP)
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

test: $(STAMP)
	$(PY) scripts/check_services.py
	$(MAKE) --no-print-directory lint
	PORTAL_ENV=test DJANGO_ALLOW_ASYNC_UNSAFE=true \
		$(VENV)/bin/pytest -n $(PYTEST_WORKERS) --dist loadgroup $(PYTEST_ARGS)

# Issue 13's page benchmark on its own throwaway cluster (~30 minutes; README "Benchmarks").
bench-pages: $(STAMP)
	$(PY) -m tests.bench.bench_pages $(BENCH_ARGS)

clean:
	rm -rf $(VENV) var/*.sqlite3 var/broker var/staticfiles
