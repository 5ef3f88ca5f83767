# The README's two commands are `make demo` and `make test`; everything else serves them.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The AWS CLI pins its own botocore, so it lives in a venv of its own (used by one test).
AWSCLI_VENV := .venv-awscli

.PHONY: install test lint typecheck pytest test-browser demo bench clean

install: $(STAMP) $(AWSCLI_VENV)/bin/aws

# Re-install only when the project's metadata changed (or the venv is new).
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

$(AWSCLI_VENV)/bin/aws:
	$(PYTHON) -m venv $(AWSCLI_VENV)
	$(AWSCLI_VENV)/bin/python -m pip install --quiet awscli

lint: install
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

typecheck: install
	$(BIN)/mypy --strict src

pytest: install
	$(BIN)/pytest -n auto -q

test: lint typecheck pytest

# The HTML report drawn by a real headless Chromium; installing it needs root (apt).
test-browser: install
	command -v chromium || (apt-get update && apt-get install -y chromium) \
		|| (sleep 10 && apt-get update && apt-get install -y chromium)
	$(BIN)/pytest -m browser -q

# A rehearsal of deploy-plans/demo.yaml against the in-process simulator at 12x real time.
demo: install
	$(BIN)/ecs-deploy-many deploy-plans/demo.yaml --simulate --speed 12 \
		--fleet deploy-plans/sim/demo-fleet.yaml --log-format console

# Fleet rollouts against the simulator with AWS throttling, and fabfuel's ecs-deploy beside
# them (installed into .bench/fabfuel-venv on first use); see bench/README.md.
# Extra flags: make bench BENCH_ARGS='--only-scenario distinct-100 --no-fabfuel'
bench: install
	$(BIN)/python bench/fleet_bench.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) $(AWSCLI_VENV) build dist .mypy_cache .ruff_cache .pytest_cache
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
