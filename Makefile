# eventsearch: `make up` runs the stack, `make test` runs the tests. Both install what they need.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: up test lint bench chaos clean install

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q -c constraints.txt -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

up: $(STAMP)
	$(BIN)/eventsearch up

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

test: lint
	rm -rf .test-tmp && mkdir -p .test-tmp
	TMPDIR=$(CURDIR)/.test-tmp $(BIN)/pytest --basetemp=$(CURDIR)/.test-tmp/pytest $(PYTEST_ARGS)

bench: $(STAMP)
	$(BIN)/python -m bench $(if $(QUICK),--quick)

chaos: $(STAMP)
	@echo "make chaos arrives with the reliability work"

clean:
	rm -rf $(VENV) .eventsearch .test-tmp .pytest_cache .mypy_cache .ruff_cache
