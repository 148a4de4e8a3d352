# Two commands do all the set-up on a fresh machine (see README.md):
#   make demo   create .venv, install prodcat, train on the Flipkart catalogue and print its metrics
#   make test   create .venv if needed, start a throw-away PostgreSQL on loopback, run the test suite
#               (ARGS go to pytest: make test ARGS="-k calibration tests/test_models.py")
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
DATA ?= ../shared/datasets/flipkart
ARGS ?=

.PHONY: demo test lint

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# torch is pinned in pyproject.toml (torch==2.13.0, the CPU build); install it first so nothing pulls CUDA.
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e '.[test,app]'
	touch $@

demo: $(VENV)/.installed
	$(VENV)/bin/prodcat train $(DATA) --out models/demo

test: $(VENV)/.installed
	eval "$$(bash scripts/postgres.sh)" || echo "PostgreSQL could not be started: its tests will be skipped"; \
	$(PY) -m pytest -q -rs --durations=15 $(ARGS)  # -rs: skipped tests' reasons; --durations: the 15 slowest

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/ruff format --check src tests benchmarks
	$(VENV)/bin/mypy
