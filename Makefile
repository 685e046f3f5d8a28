# The two commands of the quick start. Each works on a fresh machine with Python 3.11+.
#   make demo   install, then run the server with demo data on embedded defaults
#   make test   install what the tests need, then run the whole suite (what CI runs)

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# `make test PYTEST_ARGS="-m e2e"` runs just that selection, in one process.
PYTEST_ARGS ?=
WORKERS ?= 2

.PHONY: demo test install install-test system-packages lint

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

install: $(BIN)/python
	$(BIN)/pip install --quiet -e .

install-test: $(BIN)/python system-packages
	$(BIN)/pip install --quiet -e '.[test]'

system-packages:
	bash deploy/dev/system-packages.sh

demo: install
	$(BIN)/telemed serve --demo

lint: install-test
	$(BIN)/ruff check .

# The whole suite in two passes: the tests not marked `alone` $(WORKERS) at a time (pytest-xdist, one per
# core), then those marked `alone` (media, browsers, killed processes, benchmarks) one at a time with the
# machine to themselves. Both passes run; either failing fails the target.
test: install-test lint
ifeq ($(strip $(PYTEST_ARGS)),)
	status=0; \
	$(BIN)/pytest -rfEs -n $(WORKERS) -m "not alone" || status=1; \
	$(BIN)/pytest -rfEs -m alone || status=1; \
	exit $$status
else
	$(BIN)/pytest -rfEs $(PYTEST_ARGS)
endif
