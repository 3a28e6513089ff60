# Raccord: the two commands of the README, and a few more for production and development.
# `make run` serves the app on its embedded defaults; `make test` installs and runs the whole suite.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
PORT   ?= 5000

T ?= tests
K ?=

.PHONY: run test test-fast worker scheduler serve lint format clean catalogues

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml $(VENV)/.installed
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[test]'
	touch $@

# The compiled catalogues (.mo) are not in git: built from the .po files, each only when its .po is newer.
MO_FILES := $(patsubst %.po,%.mo,$(wildcard webapp/translations/*/LC_MESSAGES/messages.po))

%.mo: %.po | $(VENV)/.installed
	$(BIN)/pybabel compile --locale $(word 3,$(subst /, ,$<)) -i $< -o $@

## make catalogues: compile the translation catalogues that changed (`flask i18n update` extracts anew).
catalogues: $(MO_FILES)

## make run: create or upgrade the database, seed the demo on first start, serve with a job worker.
run: $(VENV)/.installed catalogues
	PORT=$(PORT) $(BIN)/flask --app wsgi serve-local

## make test: lint, then the whole suite (SQLite and PostgreSQL, real Redis and RQ workers, Chromium).
test: $(VENV)/.installed-test catalogues
	$(BIN)/ruff check .
	$(BIN)/python -m pytest

## make test-fast T=tests/test_rules.py K=transfer: one file, folder or keyword, on one process, in seconds.
test-fast: $(VENV)/.installed-test catalogues
	$(BIN)/python -m pytest -n 0 -q $(T) $(if $(K),-k "$(K)")

## make worker: one RQ worker on REDIS_URL (run as many as wanted, on any machine).
worker: $(VENV)/.installed catalogues
	$(BIN)/flask --app wsgi worker

## make scheduler: RQ's cron scheduler with the periodic work (one is enough; two do no harm).
scheduler: $(VENV)/.installed catalogues
	$(BIN)/flask --app wsgi scheduler

## make serve: the web app under gunicorn (production settings come from the environment).
serve: $(VENV)/.installed catalogues
	$(BIN)/flask --app wsgi db upgrade heads
	$(BIN)/gunicorn --bind 0.0.0.0:$(PORT) --workers $${WEB_CONCURRENCY:-2} --access-logfile - wsgi:app

lint: $(VENV)/.installed-test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(VENV)/.installed-test
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache test-artifacts
