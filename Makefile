# OpenVitals: `make run` for the zero-setup demo, `make test` for the full suite.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
HOST ?= 127.0.0.1
PORT ?= 8000

# Tests use the local PostgreSQL and Redis unless told otherwise.
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/openvitals
TEST_REDIS_URL ?= redis://127.0.0.1:6379/0

.PHONY: help install run migrate seed test fuzz check lint format bench worker beat clean

help:
	@echo "make run      set up, migrate, seed the demo and serve on http://$(HOST):$(PORT)/ (SQLite, no services)"
	@echo "make test     the full suite against PostgreSQL and Redis"
	@echo "make fuzz     schemathesis over every operation, as every role, against a served throwaway database"
	@echo "make check    ruff, import layers (import-linter), migrations check, OpenAPI schema validation"
	@echo "make bench    benchmarks on PostgreSQL, printing ratios measured side by side"
	@echo "make worker   a Celery worker on every queue (needs REDIS_URL)"
	@echo "make beat     Celery beat with the database scheduler (needs REDIS_URL)"

$(VENV)/.installed: requirements.txt requirements-dev.txt constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet -r requirements-dev.txt -c constraints.txt
	touch $@

install: $(VENV)/.installed

migrate: install
	$(PY) manage.py migrate --noinput

seed: install
	$(PY) manage.py seed_demo

run: migrate
	@$(PY) manage.py seed_demo --if-empty
	@echo ""
	@echo "  API      http://$(HOST):$(PORT)/api/v1/"
	@echo "  Docs     http://$(HOST):$(PORT)/api/docs/   (ReDoc: /api/redoc/, schema: /api/schema/)"
	@echo "  Admin    http://$(HOST):$(PORT)/admin/"
	@echo "  Health   http://$(HOST):$(PORT)/health/ and /health/ready/"
	@echo ""
	$(PY) manage.py runserver $(HOST):$(PORT)

test: install
	@DATABASE_URL="$(TEST_DATABASE_URL)" REDIS_URL="$(TEST_REDIS_URL)" $(PY) scripts/check_services.py
	DATABASE_URL="$(TEST_DATABASE_URL)" REDIS_URL="$(TEST_REDIS_URL)" $(VENV)/bin/pytest -n 2 --create-db $(PYTEST_ARGS)

# Schema-driven fuzzing of the served app (scripts/fuzz.py); FUZZ_ARGS="--examples 30 --conformance" for more.
fuzz: install
	@DATABASE_URL="$(TEST_DATABASE_URL)" REDIS_URL="$(TEST_REDIS_URL)" $(PY) scripts/check_services.py
	DATABASE_URL="$(TEST_DATABASE_URL)" REDIS_URL="$(TEST_REDIS_URL)" $(PY) scripts/fuzz.py $(FUZZ_ARGS)

check: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports
	DJANGO_SETTINGS_MODULE=config.settings.test $(PY) manage.py makemigrations --check --dry-run
	DJANGO_SETTINGS_MODULE=config.settings.test $(PY) manage.py spectacular --validate --fail-on-warn --file /dev/null

lint: check

format: install
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

bench: install
	@DATABASE_URL="$(TEST_DATABASE_URL)" REDIS_URL="$(TEST_REDIS_URL)" $(PY) scripts/check_services.py
	DATABASE_URL="$(TEST_DATABASE_URL)" REDIS_URL="$(TEST_REDIS_URL)" DJANGO_SETTINGS_MODULE=config.settings.test \
		$(PY) bench/read_paths.py
	DATABASE_URL="$(TEST_DATABASE_URL)" REDIS_URL="$(TEST_REDIS_URL)" DJANGO_SETTINGS_MODULE=config.settings.test $(PY) bench/ingest.py
	DATABASE_URL="$(TEST_DATABASE_URL)" REDIS_URL="$(TEST_REDIS_URL)" DJANGO_SETTINGS_MODULE=config.settings.test \
		$(PY) bench/notifications.py
	DATABASE_URL="$(TEST_DATABASE_URL)" REDIS_URL="$(TEST_REDIS_URL)" DJANGO_SETTINGS_MODULE=config.settings.test \
		$(PY) bench/appointments.py
	DATABASE_URL="$(TEST_DATABASE_URL)" REDIS_URL="$(TEST_REDIS_URL)" DJANGO_SETTINGS_MODULE=config.settings.test \
		$(PY) bench/medications.py

worker: install
	$(VENV)/bin/celery -A config worker -l INFO -Q ingest,default,notifications,integrations

beat: install
	$(VENV)/bin/celery -A config beat -l INFO --scheduler django_celery_beat.schedulers:DatabaseScheduler

clean:
	rm -rf .local staticfiles .pytest_cache .ruff_cache
