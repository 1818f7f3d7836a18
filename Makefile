# binance-pipeline: every command a user or CI needs. Each target installs what it needs itself.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
DASH_STAMP := $(VENV)/.dashboard-installed
CHROMIUM := /usr/bin/chromium
PROMTOOL := /usr/bin/promtool
SRC := binance_pipeline binance_launcher exchange_sim ingestion consumer db dashboard
SERVICES := scripts/services.sh
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: help install services-up services-down services-status migrate lint typecheck test test-fast \
        run demo bench compose-check clean kafka-ui kafka-tail dashboard browser alerts-tools screenshot mutation chaos \
        settings-table

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-16s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check --upgrade pip
	$(PY) -m pip install -q --disable-pip-version-check -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)  ## create .venv and install the project with its dev tools

$(DASH_STAMP): $(STAMP)
	$(PY) -m pip install -q --disable-pip-version-check -e '.[dev,dashboard,browser]'
	touch $(DASH_STAMP)

dashboard: $(DASH_STAMP)  ## install the dashboard extra (Streamlit, Plotly, Playwright); python -m dashboard serves it

browser:  ## install Debian's chromium for the browser tests (Playwright drives it; no browser download)
	test -x $(CHROMIUM) || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null)
	$(CHROMIUM) --version

alerts-tools:  ## install Debian's prometheus (promtool + server) for the alert-rule tests; its service is never started
	test -x $(PROMTOOL) || { created=; [ -e /usr/sbin/policy-rc.d ] || { printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d; created=1; }; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null; rc=$$?; \
	  [ -z "$$created" ] || rm -f /usr/sbin/policy-rc.d; exit $$rc; }
	$(PROMTOOL) --version 2>&1 | head -1

services-up:  ## provision and start the local broker (Apache Kafka) and TimescaleDB (idempotent)
	bash $(SERVICES) up

services-down:  ## stop the local services (leaves no process behind)
	bash $(SERVICES) down

services-status:  ## show whether the local services run (stopped is an answer, not an error)
	@bash $(SERVICES) status; rc=$$?; [ $$rc -eq 0 ] || [ $$rc -eq 3 ]

migrate: install services-up  ## apply the database migrations
	set -a; eval "$$(bash $(SERVICES) env)"; set +a; $(PY) -m db.migrate

lint: install  ## ruff on everything, then the import layers (import-linter contracts in pyproject.toml)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports

typecheck: dashboard  ## mypy --strict on the source packages
	$(VENV)/bin/mypy --strict $(wildcard $(SRC))

test: dashboard browser alerts-tools services-up lint typecheck  ## lint, type-check, then the whole test suite on real services
	set -a; eval "$$(bash $(SERVICES) env)"; set +a; $(PY) -m pytest -q -ra --durations=25

test-fast: dashboard services-up  ## the test suite without slow tests
	set -a; eval "$$(bash $(SERVICES) env)"; set +a; $(PY) -m pytest -q -m 'not slow'

SEEDS ?= 20
chaos: dashboard services-up  ## the chaos test: SEEDS=20 runs seeds 1-20 (or SEEDS=5-9, SEEDS=4,9); seeded faults vs ground truth
	set -a; eval "$$(bash $(SERVICES) env)"; set +a; CHAOS_SEEDS='$(SEEDS)' $(PY) -m pytest -q -ra -s tests/e2e/test_chaos.py

settings-table: install  ## regenerate README's settings table from binance_pipeline/common/settings.py
	$(PY) -m scripts.settings_table

mutation: install  ## mutation testing of the pure core against its fast tests; per-module table (minutes, no services)
	$(PY) scripts/mutation_report.py $(MUTATION_ARGS)

run: dashboard services-up  ## the whole pipeline against BINANCE_WS_URL (real Binance by default), live status
	set -a; eval "$$(bash $(SERVICES) env)"; set +a; $(PY) -m binance_launcher run

demo: dashboard services-up  ## the whole pipeline against the local exchange simulator, live status
	set -a; eval "$$(bash $(SERVICES) env)"; set +a; $(PY) -m binance_launcher demo $(DEMO_ARGS)

screenshot: dashboard browser services-up  ## regenerate docs/dashboard.png and docs/dashboard-overview.png with the browser test (~5 min)
	set -a; eval "$$(bash $(SERVICES) env)"; set +a; DOCS_SCREENSHOT=docs/dashboard.png \
	  DOCS_OVERVIEW_SCREENSHOT=docs/dashboard-overview.png \
	  $(PY) -m pytest -q tests/dashboard/test_browser.py

bench: install services-up  ## run every benchmark in bench/; figures to bench/results/ (JSON + Markdown)
	set -a; eval "$$(bash $(SERVICES) env)"; set +a; $(PY) -m bench.run_all

kafka-ui: install services-up  ## browse topics, partitions, consumer groups and lag (kaskade admin mode)
	set -a; eval "$$(bash $(SERVICES) env)"; set +a; $(PY) -m binance_pipeline.kafka.config kaskade-ini .local/kaskade.ini \
	  && $(VENV)/bin/kaskade admin --config-file .local/kaskade.ini

kafka-tail: install services-up  ## read a topic from its start: make kafka-tail TOPIC=binance.dead_letter
	@[ -n "$(TOPIC)" ] || { echo "usage: make kafka-tail TOPIC=binance.trades (or binance.dead_letter, ...)"; exit 2; }
	set -a; eval "$$(bash $(SERVICES) env)"; set +a; \
	  $(PY) -m binance_pipeline.kafka.config kaskade-ini .local/kaskade.ini && \
	  $(VENV)/bin/kaskade consumer --config-file .local/kaskade.ini -t "$(TOPIC)" --earliest -k string -v json

compose-check:  ## validate docker-compose.yml (installs Debian's docker-compose if missing)
	command -v docker-compose >/dev/null || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker-compose >/dev/null)
	docker-compose -f docker-compose.yml config -q && echo "docker-compose.yml: valid"

clean:  ## stop services and remove .local/ and .venv/
	-bash $(SERVICES) down
	rm -rf .local $(VENV) bench/results
