# The two commands of README.md: `make run` and `make test`. Everything installs itself into .venv.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: install run test lint format bench bench-quick clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)

## Serve the API, docs and UI on http://127.0.0.1:8000 with SQLite and local files under $MODELYARD_HOME.
run: install
	$(BIN)/modelyard serve

## Run the test suite (SQLite, and PostgreSQL when reachable; see README.md).
test: install
	$(BIN)/pytest -n 2 --dist loadfile

lint: install
	$(BIN)/ruff check src tests bench scripts
	$(BIN)/ruff format --check src tests bench scripts
	$(BIN)/mypy

format: install
	$(BIN)/ruff format src tests bench scripts
	$(BIN)/ruff check --fix src tests bench scripts

## Registry workloads against MLflow's model registry and a bare Starlette ceiling (issue 7; see bench/RESULTS.md).
bench: install
	$(BIN)/python bench/registry.py

## The same, reduced: under 3 minutes once bench/.work/mlflow-venv exists.
bench-quick: install
	$(BIN)/python bench/registry.py --quick

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
