# The two commands a newcomer needs: `make demo` and `make test`. On a fresh Debian machine they
# install what they need first: the Debian packages (as root; otherwise they stop at once and
# print the command to run), then uv (from PyPI, into .bgh-tools/), then the Python environment.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
BGH := $(VENV)/bin/bgh
TOOLS := .bgh-tools

# Debian packages the local target runs as they are: Prometheus, and Redis for Argo CD (the
# @gitops runbook); git for the GitOps repository; python3-venv to bootstrap uv.
DEMO_PACKAGES := ca-certificates git make python3 python3-venv prometheus redis-server
# The tests also render the HTML reports in headless Chromium.
TEST_PACKAGES := $(DEMO_PACKAGES) chromium

UV := $(or $(shell command -v uv 2>/dev/null),$(TOOLS)/bin/uv)

.PHONY: demo test venv lint go-test py-test up down clean docker demo-packages test-packages go \
	upgrade-report

## demo: bring up the local target (building what is missing) and show it working
demo: demo-packages go venv
	$(BGH) demo
	$(BGH) status

## test: Go tests, then the Python suite (unit, component, cluster on the local target)
test: test-packages go venv go-test lint py-test

# Installs the missing ones when root; otherwise stops before anything else with the command.
demo-packages test-packages: %-packages:
	@missing=(); for pkg in $(if $(filter demo,$*),$(DEMO_PACKAGES),$(TEST_PACKAGES)); do \
	  dpkg-query -W -f='$${Status}' "$$pkg" 2>/dev/null | grep -q 'ok installed' || missing+=("$$pkg"); \
	done; \
	if [ $${#missing[@]} -eq 0 ]; then exit 0; fi; \
	if [ "$$(id -u)" -ne 0 ]; then \
	  echo "make $*: missing Debian packages; run this, then make $* again:" >&2; \
	  echo "  sudo apt-get update && sudo apt-get install -y $${missing[*]}" >&2; exit 1; \
	fi; \
	echo "installing Debian packages: $${missing[*]}"; \
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$${missing[@]}"

# Go 1.26 builds the services and the control plane; Debian's golang-go is older.
go:
	@command -v go >/dev/null || { echo "make: Go 1.26 is needed on PATH (https://go.dev/dl/)" >&2; exit 1; }

$(TOOLS)/bin/uv:
	python3 -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet 'uv>=0.4'

$(PY): pyproject.toml uv.lock $(if $(filter $(TOOLS)/bin/uv,$(UV)),$(TOOLS)/bin/uv)
	$(UV) sync --frozen --extra test
	@touch $(PY)

venv: $(PY)

go-test:
	cd services && go test ./...

lint: venv
	$(VENV)/bin/ruff check harness analysis steps tests
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

# pytest exits 5 when it collected no test: that is not a failure of the code under test.
py-test: venv
	$(PY) -m pytest; rc=$$?; if [ $$rc -eq 5 ]; then echo "pytest: no tests collected"; rc=0; fi; exit $$rc

up: venv
	$(BGH) up

down: venv
	$(BGH) down

## upgrade-report: the runbooks on two Argo Rollouts releases on the local target, and what
## changed (FROM=v1.9.3 TO=v1.10.2, K= a pytest -k expression for a subset); reports/upgrade/
FROM ?= v1.9.3
TO ?= v1.10.2
upgrade-report: demo-packages go venv
	$(BGH) upgrade-report --from $(FROM) --to $(TO) $(if $(K),-k "$(K)")

## docker: for the kind target, Docker set up behind the egress guard when none runs (root)
docker: venv
	$(BGH) docker-setup

clean: down
	rm -rf $(VENV) $(TOOLS) .artifacts reports
