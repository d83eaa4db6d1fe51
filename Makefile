# Every target installs what it needs on first use: `make run` and `make test` are all a new
# machine needs. The virtualenv is rebuilt when pyproject.toml changes.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export MLPLATFORM_HOME ?= $(CURDIR)/.mlplatform
export DAGSTER_HOME ?= $(MLPLATFORM_HOME)/dagster
# A range run records one planned event per asset instead of one per partition (365 fewer SQLite
# writes per asset in a year's backfill); a failed range run then marks the run failed, not each day.
export DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS ?= 1
# The bundled pipelines `make run` (and the CI stages below) bootstrap, each from its own start
# date: `PIPELINES=room_rate make run` bootstraps one. Every pipeline declared under mlplatform/defs
# is served and shown in Dagster either way; one left out here just has no data or model yet.
PIPELINES ?= flight_delay room_rate
DAYS ?= 60
BOOTSTRAP = for pipeline in $(PIPELINES); do $(BIN)/mlplatform bootstrap --pipeline $$pipeline --days

.PHONY: install run bootstrap up test lint format bench sql clean image

install: $(STAMP)

# Byte code is compiled at install (about a minute): uv writes none by default, and where
# PYTHONDONTWRITEBYTECODE is set (as on the machine this was built on) Python never caches what
# it compiles, so every process (each test's server, Dagster's code servers, the CLI) compiled its
# imports from source again: importing the Definitions took 13-14.5 s, with byte code 4.1-4.6 s.

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check "uv==0.9.30"
	$(BIN)/uv pip install --quiet --compile-bytecode --python $(BIN)/python -e ".[dev]"
	touch $(STAMP)

$(DAGSTER_HOME)/dagster.yaml: dagster.yaml
	mkdir -p $(DAGSTER_HOME)
	ln -sf $(CURDIR)/dagster.yaml $(DAGSTER_HOME)/dagster.yaml

bootstrap: $(STAMP) $(DAGSTER_HOME)/dagster.yaml
	$(BOOTSTRAP) $(DAYS) || exit 1; done

run: bootstrap
	$(BIN)/mlplatform up

# The production-shaped test (mlplatform_tests/production) runs last, its image built in the
# background from the start of the session (mlplatform_tests/production/conftest.py).
test: $(STAMP)
	sh scripts/ensure-postgres.sh
	sh scripts/ensure-chromium.sh
	sh scripts/ensure-containers.sh
	MLPLATFORM_PRODUCTION_TEST=1 $(BIN)/pytest

# CI stages (.github/workflows/ci.yml), each a thin call to the tests or commands above.
.PHONY: test-lib test-deploy validate-data train-smoke test-production
test-lib: $(STAMP)
	$(BIN)/pytest mlplatform_tests/core

test-deploy: $(STAMP)
	$(BIN)/pytest mlplatform_tests/deploy

# The production shape on this machine, alone: the image built and run as the charts run it
# (podman), against PostgreSQL and S3 on 127.0.0.1 (mlplatform_tests/production, docs/operations.md).
test-production: $(STAMP)
	sh scripts/ensure-postgres.sh
	sh scripts/ensure-containers.sh
	MLPLATFORM_PRODUCTION_TEST=1 $(BIN)/pytest mlplatform_tests/production

# A week of each pipeline's real data through every data gate (the model is skipped: fewer days
# than its window).
validate-data: $(STAMP) $(DAGSTER_HOME)/dagster.yaml
	$(BOOTSTRAP) 7 || exit 1; done

# A lightweight training run per pipeline (the 60 days of make run) and every model gate against
# its thresholds.
train-smoke: $(STAMP) $(DAGSTER_HOME)/dagster.yaml
	$(BOOTSTRAP) 60 || exit 1; done

# The image with podman from this machine, offline (scripts/build-image.sh, docs/operations.md).
image: $(STAMP)
	sh scripts/ensure-containers.sh
	bash scripts/build-image.sh

lint: $(STAMP)
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	$(BIN)/mypy

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# Every benchmark for each pipeline of PIPELINES (`PIPELINES=room_rate make bench` for one).
bench: $(STAMP)
	for pipeline in $(PIPELINES); do \
	  for benchmark in backfill train batch_scoring serving serving_steps; do \
	    $(BIN)/python benchmarks/$$benchmark.py --pipeline $$pipeline || exit 1; \
	  done; \
	done

sql: $(STAMP)
	$(BIN)/mlplatform sql

clean:
	rm -rf $(MLPLATFORM_HOME)
