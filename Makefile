# Every Door — the two commands: `make run` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
ROLE ?= commune_officer
SCOPE ?= 01001

.PHONY: run test lint typecheck unit token bench seed contracts system-deps clean-state help

help:
	@echo "make run     start broker, PostgreSQL and the four services (Ctrl-C stops all)"
	@echo "make test    set up, then lint, type-check and run the whole test suite"
	@echo "make token ROLE=commune_officer SCOPE=01001   print a dev token"
	@echo "make bench   run the benchmarks and print their figures"

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e ".[dev]"
	@touch $(STAMP)

# Debian packages the tests use: headless Chromium (browser test) and docker-compose (config check).
system-deps:
	@missing=""; \
	test -x /usr/bin/chromium || missing="$$missing chromium"; \
	command -v docker-compose >/dev/null 2>&1 || missing="$$missing docker-compose"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing Debian packages:$$missing"; \
	    apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  else echo "warning: missing$$missing (install them with apt to run every test)"; fi; \
	fi

run: $(STAMP)
	$(BIN)/everydoor run

lint: $(STAMP)
	$(BIN)/ruff check shared services tests bench

typecheck: $(STAMP)
	$(BIN)/mypy shared services

test: $(STAMP) system-deps lint typecheck
	$(BIN)/pytest

token: $(STAMP)
	@$(BIN)/everydoor token --role $(ROLE) --scope $(SCOPE)

seed: $(STAMP)
	$(BIN)/everydoor seed --households $${N:-300}

# Every bench of issue 10 in sequence, then one table (sizes from BENCH_* variables, BENCH_QUICK=1
# for a run of minutes; see bench/run.py).
bench: $(STAMP)
	$(BIN)/python bench/run.py

# Regenerate docs/contracts (AsyncAPI, event JSON Schemas, OpenAPI) from the code.
contracts: $(STAMP)
	$(BIN)/python -m services.contracts

clean-state:
	rm -rf .everydoor
