# The two commands of the quick start. Each works on a fresh machine with Python 3.11+.
#   make demo   install, then run the server with demo data on embedded defaults
#   make test   install what the tests need, then run the whole suite (what CI runs)

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PYTEST_ARGS ?=

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

test: install-test lint
	$(BIN)/pytest -rs $(PYTEST_ARGS)
