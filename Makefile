# The two set-up commands of the README. Each creates .venv on first use (PyPI only).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.ganzoo-installed

.PHONY: quickstart demo browser test lint docs clean-venv

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

## Train the quickstart recipe on the embedded facades sample (CPU is fine).
quickstart: $(STAMP)
	$(BIN)/ganzoo train recipes/quickstart.yaml --out runs/quickstart-$$(date +%Y%m%d-%H%M%S)

## Serve the newest quickstart run on http://127.0.0.1:7860/ (`ganzoo demo`).
demo: $(STAMP)
	$(BIN)/ganzoo demo

## Debian's Chromium and its driver for tests/test_demo_browser.py (no browser download; the
## tests skip with the reason when they are absent, e.g. on a CI machine without apt).
browser:
	sudo apt-get install -y chromium chromium-driver

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
