# make check: set up .venv and run the doctor on the bundled example deployment.
# make test:  set up .venv and run the whole test suite.
# The CPU torch pinned for tests installs for Python 3.11; any Python >= 3.10 runs the doctor itself.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
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

EXAMPLE := examples/deployment

# The example's model is built offline (tiny, random) and its signing secret comes from the
# environment, as the doctor recommends; a random one is made up when none is set. The doctor
# inspects .venv, where the example stack is installed (--python), and
# runs from the deployment's folder, as the service would.
check: $(STAMP) $(EXAMPLE)/model/config.json
	cd $(EXAMPLE) && \
	AUTOGLM_SECRET_KEY="$${AUTOGLM_SECRET_KEY:-$$($(CURDIR)/$(BIN)/python -c 'import secrets; print(secrets.token_urlsafe(32))')}" \
	$(CURDIR)/$(BIN)/autoglm-doctor check --python $(CURDIR)/$(BIN)/python --config autoglm.yaml --request request.json

$(EXAMPLE)/model/config.json: $(STAMP) examples/make_tiny_model.py
	$(BIN)/python examples/make_tiny_model.py $(EXAMPLE)/model

test: $(STAMP)
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks tools
	$(BIN)/ruff format --check src tests benchmarks tools
	$(BIN)/mypy

bench: $(STAMP)
	for b in benchmarks/bench_*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) dist build .pytest_cache .mypy_cache .ruff_cache $(EXAMPLE)/model
