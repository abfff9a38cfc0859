# Two commands for a new user: `make test` and `make demo`. Both create the virtual environment if needed.
# PYTHON picks the interpreter (e.g. make test PYTHON=python3.9 VENV=.venv-3.9).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: test lint demo bench clean

$(BIN)/.installed: requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

lint: $(BIN)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

test: lint
	$(BIN)/python -m pytest

demo: $(BIN)/.installed
	$(BIN)/python scripts/demo.py

# The throughput benchmark (bench/README.md): installs its peers into .venv-bench itself. ARGS=--quick for a short run.
bench:
	$(PYTHON) bench/bench.py $(ARGS)

clean:
	rm -rf .venv .venv-* .pytest_cache .mypy_cache .ruff_cache .hypothesis bench/work
