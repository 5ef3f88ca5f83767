# The README's two commands are `make demo` and `make test`; everything else serves them.
# Each install step says what it does; a step re-runs only when pyproject.toml changed.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
RUNTIME := $(VENV)/.runtime-installed
DEV := $(VENV)/.dev-installed
PIP := $(BIN)/python -m pip --disable-pip-version-check --quiet
# The AWS CLI pins its own botocore, so it lives in a venv of its own (one test uses it).
AWSCLI_VENV := .venv-awscli

.PHONY: install install-runtime test lint typecheck pytest test-browser demo bench dist clean

install: $(DEV) $(AWSCLI_VENV)/bin/aws

install-runtime: $(RUNTIME)

$(BIN)/python:
	@echo "==> creating $(VENV) with $(PYTHON)"
	$(PYTHON) -m venv $(VENV)

# What the demo needs: the tool and its runtime packages.
$(RUNTIME): pyproject.toml | $(BIN)/python
	@echo "==> installing ecs-deploy-many into $(VENV) (the first time takes a minute or two)"
	$(PIP) install -e .
	@touch $@

# What the checks need on top: pytest, ruff, mypy, moto's server, type stubs.
$(DEV): $(RUNTIME)
	@echo "==> installing the development tools into $(VENV) (pytest, ruff, mypy, moto)"
	$(PIP) install -e '.[dev]'
	@touch $@

$(AWSCLI_VENV)/bin/aws:
	@echo "==> installing the AWS CLI into $(AWSCLI_VENV) (one test drives the simulator with it)"
	$(PYTHON) -m venv $(AWSCLI_VENV)
	$(AWSCLI_VENV)/bin/python -m pip --disable-pip-version-check --quiet install awscli

lint: $(DEV)
	$(BIN)/ruff check src tests bench action
	$(BIN)/ruff format --check src tests bench action

typecheck: $(DEV)
	$(BIN)/mypy --strict src

pytest: install
	$(BIN)/pytest -n auto -q

test: lint typecheck pytest

# The HTML report drawn by a real headless Chromium; installing it needs root (apt).
test-browser: $(DEV)
	command -v chromium || (apt-get update && apt-get install -y chromium) \
		|| (sleep 10 && apt-get update && apt-get install -y chromium)
	$(BIN)/pytest -m browser -q

# A rehearsal of deploy-plans/demo.yaml against the in-process simulator at 12x real time.
demo: $(RUNTIME)
	@echo "==> rehearsing deploy-plans/demo.yaml against the in-process ECS simulator"
	$(BIN)/ecs-deploy-many deploy-plans/demo.yaml --simulate --speed 12 \
		--fleet deploy-plans/sim/demo-fleet.yaml --log-format console

# Fleet rollouts against the simulator with AWS throttling, and fabfuel's ecs-deploy beside
# them (installed into .bench/fabfuel-venv on first use); see bench/README.md.
# Extra flags: make bench BENCH_ARGS='--only-scenario distinct-100 --no-fabfuel'
bench: $(RUNTIME)
	$(BIN)/python bench/fleet_bench.py $(BENCH_ARGS)

# The release files: the sdist and the wheel in dist/, and twine's check of their metadata. The
# version is pyproject.toml's alone (the code reads it from the installed metadata).
DIST_DIR := dist
dist: $(DEV)
	rm -rf $(DIST_DIR)
	$(BIN)/python -m build --outdir $(DIST_DIR) .
	$(BIN)/python -m twine check --strict $(DIST_DIR)/*

clean:
	rm -rf $(VENV) $(AWSCLI_VENV) build dist .mypy_cache .ruff_cache .pytest_cache
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
