# binance-pipeline: every command a user or CI needs. Each target installs what it needs itself.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
SRC := common exchange_sim ingestion consumer db launcher
SERVICES := scripts/services.sh
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: help install services-up services-down services-status migrate lint typecheck test test-fast \
        run demo bench compose-check clean kafka-ui kafka-tail

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-16s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check --upgrade pip
	$(PY) -m pip install -q --disable-pip-version-check -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)  ## create .venv and install the project with its dev tools

services-up:  ## provision and start the local broker (Apache Kafka) and TimescaleDB (idempotent)
	bash $(SERVICES) up

services-down:  ## stop the local services (leaves no process behind)
	bash $(SERVICES) down

services-status:  ## show whether the local services run
	bash $(SERVICES) status

migrate: install services-up  ## apply the database migrations
	set -a; eval "$$(bash $(SERVICES) env)"; set +a; $(PY) -m db.migrate

lint: install  ## ruff on everything
	$(VENV)/bin/ruff check .

typecheck: install  ## mypy --strict on the source packages
	$(VENV)/bin/mypy --strict $(wildcard $(SRC))

test: install services-up lint typecheck  ## lint, type-check, then the whole test suite on real services
	set -a; eval "$$(bash $(SERVICES) env)"; set +a; $(PY) -m pytest -q -ra

test-fast: install services-up  ## the test suite without slow tests
	set -a; eval "$$(bash $(SERVICES) env)"; set +a; $(PY) -m pytest -q -m 'not slow'

run: install services-up  ## the whole pipeline against BINANCE_WS_URL (real Binance by default), live status
	set -a; eval "$$(bash $(SERVICES) env)"; set +a; $(PY) -m launcher run

demo: install services-up  ## the whole pipeline against the local exchange simulator, live status
	set -a; eval "$$(bash $(SERVICES) env)"; set +a; $(PY) -m launcher demo $(DEMO_ARGS)

bench: install services-up  ## run every benchmark in bench/; figures to bench/results/ (JSON + Markdown)
	set -a; eval "$$(bash $(SERVICES) env)"; set +a; $(PY) bench/run_all.py

kafka-ui: install services-up  ## browse topics, partitions, consumer groups and lag (kaskade admin mode)
	set -a; eval "$$(bash $(SERVICES) env)"; set +a; $(PY) -m common.kafka_config kaskade-ini .local/kaskade.ini \
	  && $(VENV)/bin/kaskade admin --config-file .local/kaskade.ini

kafka-tail: install services-up  ## read a topic from its start: make kafka-tail TOPIC=binance.dead_letter
	@[ -n "$(TOPIC)" ] || { echo "usage: make kafka-tail TOPIC=binance.trades (or binance.dead_letter, ...)"; exit 2; }
	set -a; eval "$$(bash $(SERVICES) env)"; set +a; \
	  $(PY) -m common.kafka_config kaskade-ini .local/kaskade.ini && \
	  $(VENV)/bin/kaskade consumer --config-file .local/kaskade.ini -t "$(TOPIC)" --earliest -k string -v json

compose-check:  ## validate docker-compose.yml (installs Debian's docker-compose if missing)
	command -v docker-compose >/dev/null || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker-compose >/dev/null)
	docker-compose -f docker-compose.yml config -q && echo "docker-compose.yml: valid"

clean:  ## stop services and remove .local/ and .venv/
	-bash $(SERVICES) down
	rm -rf .local $(VENV) bench/results
