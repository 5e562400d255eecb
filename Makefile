# CityBrain OC. `make run` and `make test` each set up everything on a fresh machine.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
EXTRAS := postgres,redis,mqtt,cn,dev

.PHONY: run test bench lint install migrate clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e ".[$(EXTRAS)]"
	touch $(STAMP)

install: $(STAMP)

migrate: install
	$(BIN)/citybrain db upgrade

run: migrate
	$(BIN)/citybrain run

test: migrate
	$(BIN)/python -m pytest -q -m "not bench"

bench: migrate
	$(BIN)/python -m pytest -q -m bench -s bench

lint: install
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) var test-artifacts
