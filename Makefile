# AI Architect Workbook. `make start` to learn, `make test` to check everything.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PORT ?= 8000
NOTEBOOKS := $(shell find phases -name '*.ipynb' -not -path '*/.ipynb_checkpoints/*' 2>/dev/null)

.PHONY: help setup system-deps start book serve test lint format verify bench bench-scratch bench-tabular clean

help: ## Show the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

setup: $(STAMP) ## Create .venv and install the workbook (pins from constraints.txt)

$(STAMP): pyproject.toml constraints.txt
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python 3.11+ is required, found " + sys.version.split()[0]'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -c constraints.txt -e '.[dev]'
	@touch $@

system-deps: ## Install Debian packages the tests need (chromium, npm) when missing
	@bash scripts/system-deps.sh

book: setup ## Build the book offline (notebooks executed, warnings are errors)
	$(BIN)/learn book

serve: setup ## Serve the built book on http://127.0.0.1:$(PORT)
	$(BIN)/learn book --serve --no-build --port $(PORT)

start: setup ## Set up, build the book, serve it, print your next command
	$(BIN)/learn book --serve --port $(PORT)

lint: setup ## ruff over the workbook
	$(BIN)/ruff check .
	$(BIN)/ruff format --check learn tests checkpoints benchmarks phases projects

format: setup
	$(BIN)/ruff format learn tests checkpoints benchmarks phases projects
	$(BIN)/ruff check --fix .

verify: setup ## Reference passes every checkpoint; fresh scaffolds score 0
	$(BIN)/learn verify

test: setup system-deps lint ## Everything CI runs: unit, integration, notebooks, book, forked projects, verify
	$(BIN)/pytest tests
	$(BIN)/pytest -q -p no:cacheprovider --nbmake $(NOTEBOOKS)
	$(BIN)/learn verify

bench: setup ## Benchmarks as JSON in bench-results/
	$(BIN)/python benchmarks/workbook_bench.py --out bench-results/workbook.json

bench-scratch: setup ## scratch_ml against scikit-learn, JSON in bench-results/
	$(BIN)/python projects/scratch_ml/benchmarks/bench.py --out bench-results/scratch_ml.json

bench-tabular: setup ## tabular_service vs `mlflow models serve` (trains the champion first if needed)
	@test -f projects/tabular_service/mlruns/mlflow.db || $(MAKE) -C projects/tabular_service train PY=$(CURDIR)/$(BIN)/python
	$(MAKE) -C projects/tabular_service bench PY=$(CURDIR)/$(BIN)/python BENCH_OUT=$(CURDIR)/bench-results/tabular_service.json

clean: ## Remove build outputs (keeps .venv)
	rm -rf book/_build bench-results .pytest_cache .ruff_cache
