# The two commands a newcomer needs: `make demo` and `make test`.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
BGH := $(VENV)/bin/bgh

.PHONY: demo test venv lint go-test py-test up down clean docker

$(PY): pyproject.toml uv.lock
	@command -v uv >/dev/null || python3 -m pip install --quiet 'uv>=0.4'
	uv sync --frozen --extra test
	@touch $(PY)

venv: $(PY)

## demo: bring up the local target (building what is missing) and show it working
demo: venv
	$(BGH) demo
	$(BGH) status

## test: Go tests, then the Python suite (unit, component, cluster on the local target)
test: venv go-test lint py-test

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

## docker: for the kind target, Docker set up behind the egress guard when none runs (root)
docker: venv
	$(BGH) docker-setup

clean: down
	rm -rf $(VENV) .artifacts reports
