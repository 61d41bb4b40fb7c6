# Every target creates its own virtual environment on first use, so a fresh
# machine with Python 3.11 needs nothing else.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
BIN := $(VENV)/bin
# A CPU build of PyTorch, installed before the package so that pip never
# resolves the plain `torch` requirement to a multi-gigabyte CUDA build.
# Elsewhere, point this at any CPU wheel: make test TORCH_SPEC="torch==2.5.1+cpu" TORCH_ARGS="--index-url ..."
TORCH_SPEC ?= torch==2.13.0
TORCH_ARGS ?=
PYTEST_ARGS ?=

.PHONY: setup demo test lint bench clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q $(TORCH_ARGS) "$(TORCH_SPEC)"
	$(BIN)/pip install -q -e ".[dev]"
	touch $@

demo: setup
	$(BIN)/bpm fit models/lac.bpm data/lac_sortseq_kinney2010.csv.gz -o results/lac

test: setup
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: setup
	$(BIN)/ruff check bpm_root cli compiler runtime tests benchmarks .ci
	$(BIN)/ruff format --check bpm_root cli compiler runtime tests benchmarks .ci
	$(BIN)/python .ci/lint_imports.py

clean:
	rm -rf $(VENV) results .pytest_cache .hypothesis *.egg-info
