# The README's two commands: `make demo` and `make test`. Both set everything up on first use.
VENV   ?= .venv
PYTHON ?= python3
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: setup test-setup system-deps test lint typecheck demo bench clean

setup: system-deps $(STAMP)

test-setup: setup
	@bash scripts/system-deps.sh --with-browser

system-deps:
	@bash scripts/system-deps.sh

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	@touch $@

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: setup
	$(VENV)/bin/mypy sli_provider devkit bench

test: test-setup lint typecheck
	$(VENV)/bin/pytest

demo: setup
	$(PY) -m devkit.demo

bench: setup
	$(PY) -m bench.getsli
	$(PY) -m bench.runner
	$(PY) -m bench.gate

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache
