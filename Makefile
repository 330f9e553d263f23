# rcmlrouter: `make run` starts a demo daemon, `make test` runs exactly what CI runs.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
CONFIG ?= config/rcmlrouter.example.toml
RCMLROUTER := $(BIN)/rcmlrouter --config $(CONFIG)
# Debian packages the tests drive: SIPp (load generator / scenario driver), espeak-ng (<Say>),
# Kamailio (the SIP load balancer in front of many nodes), Chromium and its WebDriver (the
# console's browser test).
TEST_DEBS := sip-tester espeak-ng kamailio chromium chromium-driver
# axe-core (npm, pinned by tests/e2e/axe/package-lock.json): the console's accessibility checks
AXE := tests/e2e/axe/node_modules/axe-core/axe.min.js

.PHONY: run test lint typecheck unit bench soak cluster setup test-setup debs clean

run: setup
	@mkdir -p var
	@echo "== credentials (admin account) =="
	@$(RCMLROUTER) init --demo
	@$(RCMLROUTER) inventory import config/inventory.demo.csv >/dev/null
	@echo "== API on http://127.0.0.1:8080 (console: /console/), SIP on udp/tcp 127.0.0.1:5060; demo number 1234 =="
	exec $(RCMLROUTER) run

setup: $(VENV)/.installed
	-@$(MAKE) --no-print-directory debs DEBS=espeak-ng  # <Say>; without it Say fails

$(VENV)/.installed: pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python >= 3.11 is required"'
	@$(PYTHON) -m venv $(VENV) 2>/dev/null || { $(MAKE) --no-print-directory debs DEBS=python3-venv && $(PYTHON) -m venv $(VENV); }
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e .
	@touch $@

$(VENV)/.test-installed: $(VENV)/.installed pyproject.toml
	$(BIN)/pip install -q -e '.[test]'
	@touch $@

# Install missing Debian packages when we are root (CI, fresh machines); otherwise say what to do.
debs:
	@missing=""; for p in $(or $(DEBS),$(TEST_DEBS)); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing Debian packages:$$missing"; \
	    (apt-get update -qq || true) && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  else echo "please install:$$missing (sudo apt-get install$$missing)"; exit 1; fi; \
	fi

$(AXE): tests/e2e/axe/package.json tests/e2e/axe/package-lock.json
	@command -v npm >/dev/null 2>&1 || $(MAKE) --no-print-directory debs DEBS="nodejs npm"
	npm ci --prefix tests/e2e/axe --no-audit --no-fund --loglevel=error
	@touch $@

test-setup: debs $(VENV)/.test-installed $(AXE)

lint: test-setup
	$(BIN)/ruff check daemon tests
	$(BIN)/ruff format --check daemon tests

typecheck: test-setup
	$(BIN)/mypy

unit: test-setup
	$(BIN)/pytest -q

test: lint typecheck unit

bench: test-setup
	$(BIN)/pip install -q -e '.[test,bench]'  # the HTTP clients webhook_client_bench.py compares
	$(BIN)/python tests/bench/routing_bench.py
	$(BIN)/python tests/bench/api_bench.py
	$(BIN)/python tests/bench/webhook_client_bench.py
	$(BIN)/python tests/bench/sip_bench.py
	$(BIN)/python tests/bench/message_bench.py
	$(BIN)/python tests/bench/message_api_bench.py
	$(BIN)/python tests/bench/originate_bench.py
	$(BIN)/python tests/bench/dial_bench.py
	$(BIN)/python tests/bench/media_bench.py
	$(BIN)/python tests/bench/conference_bench.py
	$(BIN)/python tests/bench/stream_bench.py
	$(BIN)/python tests/bench/ws_client_bench.py
	$(BIN)/python tests/bench/rtp_bind_bench.py
	$(BIN)/python tests/bench/cluster_bench.py
	$(BIN)/python tests/bench/failover_bench.py
	$(BIN)/python tests/bench/console_bench.py
	$(BIN)/python tests/bench/call_update_bench.py
	$(BIN)/python tests/bench/retention_bench.py
	$(BIN)/python tests/bench/log_bench.py

# Long runs kept out of `make test`: crash rounds (CRASH_ROUNDS, default 200), schemathesis on
# every API base and suffix (200 examples per operation) and the endurance soak (SOAK_MINUTES,
# default 10): the maximum with status callbacks measured first, then 80 % of it at the shipped
# defaults with [records] max_age = 60 s (0 failed calls, RSS, database and WAL flat).
CRASH_ROUNDS ?= 200
soak: test-setup
	CRASH_ROUNDS=$(CRASH_ROUNDS) $(BIN)/pytest -q -m crash -p no:cacheprovider tests/e2e
	API_FUZZ_RANDOM=1 API_FUZZ_ALL=1 API_FUZZ_EXAMPLES=200 $(BIN)/pytest -q -p no:cacheprovider tests/e2e/test_api_fuzz.py
	$(BIN)/python tests/bench/soak.py

# Workers (one per core) on one PostgreSQL store behind Kamailio, restarted when they die; prints
# the admin credentials and imports the demo inventory (overrides: config/cluster.sh, README):
#   RCMLROUTER_STORE_URL=postgresql://user@host/db make cluster
cluster: setup
	@$(MAKE) --no-print-directory debs DEBS=kamailio
	RCMLROUTER=$(BIN)/rcmlrouter CONFIG=$(CONFIG) config/cluster.sh

clean:
	rm -rf $(VENV) var .mypy_cache .ruff_cache .pytest_cache
