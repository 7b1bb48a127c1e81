# Two commands for a newcomer: `make run` and `make test`. Both set up everything from scratch.
SHELL := /bin/bash
UV_VERSION := 0.13.9
TOOLS := .tools
UV := $(TOOLS)/bin/uv
PY ?= python3
# Benchmarks take a machine-wide lock so two never run at once and skew each other's figures.
BENCH := flock /tmp/aftersales-bench.lock $(UV) run --frozen --no-sync python

.PHONY: setup run test clean bench-routing bench-orders bench-timers bench-kpi run-prod-like chaos

$(UV):
	$(PY) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

setup: $(UV)
	$(UV) sync --frozen --all-packages

run: setup
	$(UV) run --frozen --no-sync python deploy/run_platform.py

# The production topology on this machine: PostgreSQL database per service, two replicas of
# orders and sla-timer behind one address each, migrations first (deploy/run_prod_like.py).
run-prod-like: setup
	$(UV) run --frozen --no-sync python deploy/run_prod_like.py

# The prod-like platform under a workload while replicas and the broker are SIGKILLed, then
# invariants across services (chaos/run.py). CHAOS_SECONDS (default 1200) of chaos; the last
# line printed is one JSON object; exit status 1 when anything was lost, duplicated or broken.
chaos: setup
	$(UV) run --frozen --no-sync python -m chaos

test: setup
	$(UV) run --frozen --no-sync pytest $(PYTEST_ARGS)

clean:
	rm -rf .venv $(TOOLS) var .pytest_cache

# Benchmarks: the last line printed is one JSON object of the figures.
bench-routing: setup
	$(BENCH) benchmarks/bench_routing.py

bench-orders: setup
	$(BENCH) benchmarks/bench_orders.py

bench-timers: setup
	$(BENCH) benchmarks/bench_timers.py

bench-kpi: setup
	$(BENCH) benchmarks/bench_kpi.py

# The deployment kit (deploy/): promtool for the alert rules' checks (Debian package
# prometheus; tests/deploy also installs it when run as root), then the tests that keep
# deploy/ true to the code (tests/deploy, about a minute).
.PHONY: deploy-tools deploy-check
deploy-tools:
	command -v promtool >/dev/null || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus)

deploy-check: setup
	$(UV) run --frozen --no-sync pytest tests/deploy -q $(PYTEST_ARGS)
