# The two commands in the README are the contract: `make run` and `make test` work on a fresh
# machine with python3 (>= 3.10), creating their own virtualenv.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)

.PHONY: run test lint format certs clean help

help:
	@echo "make run    serve the demo app (app/) on http://127.0.0.1:8000"
	@echo "make test   run the whole test suite"
	@echo "make lint   ruff and mypy --strict"
	@echo "make certs  development CA and certificates in certs/ (see certs/README.md)"

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]"
	@rm -f $(VENV)/.installed-*
	@touch $@

run: $(STAMP)
	$(VENV)/bin/hypercorn --app-dir app --workers 0 --access-logfile - app:app

test: $(STAMP)
	$(PY) -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests app certs
	$(VENV)/bin/ruff format --check src tests app certs
	$(VENV)/bin/mypy

certs: $(STAMP)
	$(PY) certs/make_certs.py

format: $(STAMP)
	$(VENV)/bin/ruff format src tests app certs
	$(VENV)/bin/ruff check --fix src tests app certs

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache .hypothesis
