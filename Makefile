# The README's two commands: `make run` (set up, then run the nightly job on the embedded
# defaults and the bundled sample data) and `make test` (set up, then run the test suite).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

.PHONY: setup run test lint format clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	$(PY) runner.py run

# One worker per core, each taking whole test files (their module fixtures build a
# warehouse once); most of the suite waits on one process at a time, so two cores halve it.
# TEST_WORKERS=0 runs it in this process.
TEST_WORKERS ?= auto

test: $(STAMP)
	$(PY) -m pytest -n $(TEST_WORKERS) --dist loadfile

# ruff (Python: lint, and format in check mode) and sqlfluff (the dbt models).
lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/sqlfluff lint dbt_project/models

format: $(STAMP)
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

clean:
	rm -rf .cascadian reports
