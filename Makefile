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

# The browser tests mostly wait on the browser and their app servers, so they run alongside the
# rest (their output follows at the end); both must pass.
test: migrate
	@mkdir -p test-artifacts
	@$(BIN)/python -m pytest -q -m "not bench" tests/browser > test-artifacts/browser-tests.log 2>&1 & \
	browser=$$!; \
	$(BIN)/python -m pytest -q -m "not bench" --ignore=tests/browser; rest=$$?; \
	wait $$browser; browser_status=$$?; \
	echo "--- browser tests (run alongside; log in test-artifacts/browser-tests.log) ---"; \
	cat test-artifacts/browser-tests.log; \
	test $$rest -eq 0 && test $$browser_status -eq 0

bench: migrate
	$(BIN)/python -m pytest -q -m bench -s bench

lint: install
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) var test-artifacts
