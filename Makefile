# Doorstep. On a fresh machine with Python 3.11+, pip and make:
#   make demo    create .venv, install, plan a day of home visits in Helsinki (out/demo/)
#   make test    install what the tests need, then lint (ruff), type checks (mypy) and pytest

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
SHARED ?= ../shared
TIME_LIMIT ?= 10
HOST ?= 127.0.0.1
PORT ?= 8000
TEST_POSTGRES_URL ?= $(or $(DOORSTEP_TEST_POSTGRES_URL),postgresql+psycopg://postgres@127.0.0.1:5432/test)

.DEFAULT_GOAL := help
.PHONY: help venv install demo test lint bench-vrptw bench-matrix bench-district bench-city bench-load bench-homevisits bench-large bench-parts bench-latency serve clean

help:
	@echo "make demo          plan the Helsinki demo into out/demo/ (creates .venv, installs)"
	@echo "make test          ruff, mypy and pytest (installs the test extras)"
	@echo "make lint          ruff and mypy only"
	@echo "make serve         run the API on http://$(HOST):$(PORT) (docs at /docs)"
	@echo "make bench-vrptw   Solomon + CVRPLIB benchmark -> bench/results/ (needs $(SHARED))"
	@echo "make bench-matrix  travel-matrix benchmark -> bench/results/ (needs $(SHARED))"
	@echo "make bench-district  buses, stops and labs on Liechtenstein -> bench/results/ (needs $(SHARED))"
	@echo "make bench-city    a round of DISTRICTS=16 districts: embedded, Celery 1 and 2 workers, one by one (needs $(SHARED), Redis)"
	@echo "make bench-homevisits  home-visit days against VROOM, same matrices and clock -> bench/results/"
	@echo "make bench-large   large days: split on and off against PyVRP alone (1,000-customer G-H), a 2,000-visit day at 60 and 300 s"
	@echo "make bench-parts   a split 1,000-visit day: parts on this machine against a part slot on a Celery worker (Redis)"
	@echo "make bench-latency small requests through POST /v1/plans?wait=true -> bench/results/"
	@echo "make bench-load    reads under load with 40 waiting solves, against /healthz -> bench/results/"
	@echo "make venv | install | clean"

venv: $(BIN)/python

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Stamps: reinstall only when pyproject.toml changes (delete them to force it).
install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -e ".[test,bench]"
	touch $@ $(VENV)/.installed

demo: install
	$(BIN)/doorstep demo --time-limit $(TIME_LIMIT)

serve: install
	$(BIN)/doorstep serve --host $(HOST) --port $(PORT)

lint: $(VENV)/.installed-test
	$(BIN)/ruff check .
	$(BIN)/mypy

# Connects to the PostgreSQL of TEST_POSTGRES_URL, creating its database if missing.
define PG_CHECK
import sys, psycopg
url = sys.argv[1].replace("postgresql+psycopg://", "postgresql://")
try:
    psycopg.connect(url, connect_timeout=3).close()
except psycopg.OperationalError as error:
    if "does not exist" not in str(error):
        raise
    with psycopg.connect(url, dbname="postgres", connect_timeout=3, autocommit=True) as admin:
        admin.execute("CREATE DATABASE " + url.rsplit("/", 1)[1])
endef
export PG_CHECK

test: lint
	@if [ -d /etc/postgresql ] && command -v pg_ctlcluster >/dev/null 2>&1 \
	    && ! pg_isready -q -h 127.0.0.1 -p 5432 >/dev/null 2>&1; then \
	  echo "starting the local PostgreSQL cluster"; \
	  pg_ctlcluster --skip-systemctl-redirect $$(ls /etc/postgresql | tail -n 1) main start \
	    || echo "PostgreSQL did not start: its tests will be skipped"; \
	fi
	@if $(BIN)/python -c "$$PG_CHECK" "$(TEST_POSTGRES_URL)" >/dev/null 2>&1; then \
	  echo "PostgreSQL reachable: DOORSTEP_TEST_POSTGRES_URL=$(TEST_POSTGRES_URL)"; \
	  export DOORSTEP_TEST_POSTGRES_URL="$(TEST_POSTGRES_URL)"; \
	else \
	  echo "PostgreSQL not reachable: its tests are skipped"; \
	fi; \
	$(BIN)/pytest

bench-vrptw: $(VENV)/.installed-test
	@test -d $(SHARED)/bench || { echo "no $(SHARED)/bench: set SHARED=path/to/shared"; exit 1; }
	$(BIN)/python -m bench.vrptw $(SHARED)/bench/solomon $(SHARED)/bench/cvrplib --time-limit $(TIME_LIMIT)

bench-matrix: $(VENV)/.installed-test
	@test -f $(SHARED)/osm/liechtenstein-latest.osm.pbf || { echo "no $(SHARED)/osm: set SHARED=path/to/shared"; exit 1; }
	$(BIN)/python -m bench.matrix $(SHARED)/osm/liechtenstein-latest.osm.pbf --points 1000

DISTRICTS ?= 16
CITY_TIME_LIMIT ?= 120

bench-city: $(VENV)/.installed-test
	@test -f $(SHARED)/osm/liechtenstein-latest.osm.pbf || { echo "no $(SHARED)/osm: set SHARED=path/to/shared"; exit 1; }
	$(BIN)/python -m bench.city $(SHARED)/osm/liechtenstein-latest.osm.pbf --districts $(DISTRICTS) \
	    --time-limit $(CITY_TIME_LIMIT) --seed 1

bench-district: $(VENV)/.installed-test
	@test -f $(SHARED)/osm/liechtenstein-latest.osm.pbf || { echo "no $(SHARED)/osm: set SHARED=path/to/shared"; exit 1; }
	$(BIN)/python -m bench.district $(SHARED)/osm/liechtenstein-latest.osm.pbf --buses 13 --teams 6 --areas 150 \
	    --stops 120 --visits 300 --labs 3 --time-limit 120 --seed 1 --bound

bench-homevisits: $(VENV)/.installed-test
	$(BIN)/python -m bench.homevisits --sizes 60/4,120/6,300/12 --seeds 1

bench-large: $(VENV)/.installed-test
	@test -d $(SHARED)/bench/homberger || { echo "no $(SHARED)/bench: set SHARED=path/to/shared"; exit 1; }
	$(BIN)/python -m bench.large --homberger $(SHARED)/bench/homberger --names C2_10_1,RC2_10_1 --gh-time-limit 60 \
	    --pbf $(SHARED)/osm/liechtenstein-latest.osm.pbf --days 2000/80 --day-limits 60,300 --seeds 1

bench-parts: $(VENV)/.installed-test
	@test -f $(SHARED)/osm/liechtenstein-latest.osm.pbf || { echo "no $(SHARED)/osm: set SHARED=path/to/shared"; exit 1; }
	$(BIN)/python -m bench.parts --pbf $(SHARED)/osm/liechtenstein-latest.osm.pbf --days 1000/40 --time-limit 60 \
	    --seeds 1,2,3

bench-latency: $(VENV)/.installed-test
	$(BIN)/python -m bench.latency --sizes 2,10 --repeats 5

bench-load: $(VENV)/.installed-test
	$(BIN)/python -m bench.load --duration 10 --repeats 3 --connections 50 --waiting 40

# Keeps .venv (rm -rf .venv to start over) and bench/results/.
clean:
	rm -rf out build .pytest_cache .mypy_cache .ruff_cache *.egg-info
	find . -path ./$(VENV) -prune -o -name __pycache__ -type d -exec rm -rf {} +
