# make check: set up .venv and run the doctor on the bundled example deployment.
# make test:  set up .venv and run the whole test suite.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: venv check test lint bench clean

$(STAMP): pyproject.toml constraints/test.txt requirements-dev.txt
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "need $(PYTHON) (set PYTHON=...)"; exit 2; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -c constraints/test.txt -r requirements-dev.txt -e .
	touch $(STAMP)

venv: $(STAMP)

check: $(STAMP)
	$(BIN)/autoglm-doctor check --config examples/deployment/autoglm.yaml --model examples/deployment/model --no-smoke

test: $(STAMP)
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_check.py

clean:
	rm -rf $(VENV) dist build .pytest_cache .mypy_cache .ruff_cache
