# Two commands for a newcomer: `make run` and `make test`. Both set up everything from scratch.
SHELL := /bin/bash
UV_VERSION := 0.13.9
TOOLS := .tools
UV := $(TOOLS)/bin/uv
PY ?= python3
# Benchmarks take a machine-wide lock so two never run at once and skew each other's figures.
BENCH := flock /tmp/aftersales-bench.lock $(UV) run --frozen --no-sync python

.PHONY: setup run test clean bench-routing bench-orders bench-timers bench-kpi bench-console run-prod-like chaos

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

# Two worker processes (pytest-xdist), a test module per worker at a time (module fixtures
# start once): most tests wait on brokers, sockets and subprocesses. TEST_WORKERS=0: one process.
TEST_WORKERS ?= 2
test: setup browser-tools
	$(UV) run --frozen --no-sync pytest $(if $(filter 0,$(TEST_WORKERS)),,-n $(TEST_WORKERS) --dist loadscope) $(PYTEST_ARGS)

# Chromium (Debian package) and a CJK font for the console's browser tests (tests/console),
# installed with apt-get when missing and run as root (the tests do the same themselves).
.PHONY: browser-tools
browser-tools:
	@if ! command -v chromium >/dev/null || ! fc-list :lang=zh 2>/dev/null | grep -q .; then \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	    --no-install-recommends chromium fonts-wqy-microhei; \
	  else echo "browser-tools: chromium missing and not root: the console's browser tests will be skipped"; fi; fi

# Files generated from the code (tools/contracts/generate.py): the contracts' enums of order
# states and actions from the orders transition table, and docs/asyncapi.yaml (the event
# catalogue) from the contracts. A test fails while a committed copy is out of date.
.PHONY: contracts asyncapi
contracts: setup
	$(UV) run --frozen --no-sync python -m tools.contracts.generate

asyncapi: contracts

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

# The whole platform on PostgreSQL under the Double-11 workload at a fixed rate (docs/simulator.md):
# BENCH_SECONDS (300) measured, BENCH_RATE (500) order actions/s offered, then bench-orders' ceiling.
bench-platform: setup
	$(BENCH) benchmarks/bench_platform.py

# The Double-11 simulator (docs/simulator.md): SIM_ARGS="--merchants 12 --orders 1500 --days 10
# --seed 11 --speed 0 --db sqlite|postgres"; a report in var/simulator/<time>/report.html.
.PHONY: simulate bench-platform
simulate: setup
	$(UV) run --frozen --no-sync python -m tools.simulator $(SIM_ARGS)

# The console's overview page with 100,000 orders of 10,000 merchants (p95 <= 300 ms).
bench-console: setup
	$(BENCH) benchmarks/bench_console.py

# Look inside the event bus (shared/bus.py; kcat cannot talk to the embedded broker):
#   make bus ARGS=topics | ARGS=groups | ARGS="tail orders.events --type 'service_order.*' --key <order id> -f"
.PHONY: bus
bus: setup
	$(UV) run --frozen --no-sync platform-bus $(or $(ARGS),--help)

# The deployment kit (deploy/): promtool for the alert rules' checks (Debian package
# prometheus; tests/deploy also installs it when run as root), then the tests that keep
# deploy/ true to the code (tests/deploy, about a minute).
.PHONY: deploy-tools deploy-check
deploy-tools:
	command -v promtool >/dev/null || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus)

deploy-check: setup
	$(UV) run --frozen --no-sync pytest tests/deploy -q $(PYTEST_ARGS)
