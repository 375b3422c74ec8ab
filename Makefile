# Two commands matter: `make demo` (the plugin at work on examples/) and `make test`.
# Both create or reuse a virtual environment in .venv and install what they need.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# The project's own suite runs under the guard it ships (dogfooding), in two xdist workers.
TEST_ARGS ?= -n 2 --memguard --memguard-json memguard-tests.json

.PHONY: venv demo test lint typecheck bench clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	@$(PY) examples/demo.py

test: $(STAMP)
	$(PY) -m pytest $(TEST_ARGS)

lint: $(STAMP)
	$(PY) -m ruff check pytest_memguard tests benchmarks examples
	$(PY) -m ruff format --check pytest_memguard tests benchmarks examples

typecheck: $(STAMP)
	$(PY) -m mypy

bench: $(STAMP)
	$(PY) benchmarks/overhead.py
	$(PY) benchmarks/split.py
	$(PY) -m pip install --quiet -e '.[bench]'
	$(PY) benchmarks/cache_bench.py
	$(PY) benchmarks/leak_suites.py --rounds 3 --no-memray

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .mypy_cache .ruff_cache memguard*.json
