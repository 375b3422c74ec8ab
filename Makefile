# Two commands matter: `make demo` (the plugin at work on examples/) and `make test`.
# Both create or reuse a virtual environment in .venv and install what they need.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# The benchmarks' own environment: pytest-memguard with the peers it is compared to
# (pytest-memray, pytest-monitor) and matplotlib, kept out of the test environment
# (pytest-monitor measures every test of every run it is installed in).
BENCH_VENV ?= .venv-bench
BENCH_PY := $(BENCH_VENV)/bin/python
BENCH_STAMP := $(BENCH_VENV)/.installed
COMPARE_ARGS ?= --json compare.json --chart compare.png
# The project's own suite runs under the guard it ships (dogfooding), in two xdist workers;
# then the tests marked slow (whole suites in a real memory cgroup) on their own, as
# beside the others they would take the machine they measure.
TEST_ARGS ?= -n 2 --memguard --memguard-json memguard-tests.json
SLOW_TEST_ARGS ?= --memguard --memguard-json memguard-slow-tests.json

.PHONY: venv demo test matrix package lint typecheck bench compare clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

$(BENCH_STAMP): pyproject.toml
	$(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_PY) -m pip install --quiet --upgrade pip
	$(BENCH_PY) -m pip install --quiet -e '.[xdist,bench]'
	touch $(BENCH_STAMP)

demo: $(STAMP)
	@$(PY) examples/demo.py

test: $(STAMP)
	$(PY) -m pytest $(TEST_ARGS) -m "not slow"
	$(PY) -m pytest $(SLOW_TEST_ARGS) -m slow

# The plugin's tests on the corners of the version matrix (noxfile.py: Python 3.10 with
# pytest 7.4 and the oldest pytest-xdist; Python 3.13 with pytest 8.x and the newest).
matrix: $(STAMP)
	$(PY) -m nox -t corners

# The sdist and the wheel built and checked (twine), and the sdist's own tests run from
# it, installed in a fresh environment (.ci/package).
package: $(STAMP)
	bash .ci/package $(PY)

lint: $(STAMP)
	$(PY) -m ruff check pytest_memguard tests benchmarks examples noxfile.py
	$(PY) -m ruff format --check pytest_memguard tests benchmarks examples noxfile.py

typecheck: $(STAMP)
	$(PY) -m mypy

bench: $(STAMP) $(BENCH_STAMP)
	$(PY) benchmarks/overhead.py
	$(PY) benchmarks/split.py
	$(BENCH_PY) benchmarks/cache_bench.py
	PYTEST_ADDOPTS="-p no:monitor" $(BENCH_PY) benchmarks/leak_suites.py --rounds 3 --no-memray

# memguard against pytest-memray and pytest-monitor: costs and catches (COMPARE_ARGS=--quick: short).
compare: $(BENCH_STAMP)
	$(BENCH_PY) benchmarks/compare.py $(COMPARE_ARGS)

clean:
	rm -rf $(VENV) $(BENCH_VENV) .nox build dist *.egg-info .pytest_cache .mypy_cache .ruff_cache memguard*.json compare.json compare.png
