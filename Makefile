# The two set-up commands of the README. Each creates .venv on first use (PyPI only).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.ganzoo-installed

.PHONY: quickstart test lint docs clean-venv

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

## Train the quickstart recipe on the embedded facades sample (CPU is fine).
quickstart: $(STAMP)
	$(BIN)/ganzoo train recipes/quickstart.yaml --out runs/quickstart-$$(date +%Y%m%d-%H%M%S)

## Run the test suite.
test: $(STAMP)
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

## Regenerate docs/components.md from the registry.
docs: $(STAMP)
	$(BIN)/ganzoo docs components --out docs/components.md

clean-venv:
	rm -rf $(VENV)
