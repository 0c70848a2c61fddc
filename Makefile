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

# 10,000 events through worker kills, a Redis kill and a PostgreSQL restart (a few minutes).
chaos: $(STAMP)
	rm -rf .chaos-tmp && mkdir -p .chaos-tmp
	TMPDIR=$(CURDIR)/.chaos-tmp $(BIN)/python -m tests.chaos.run --events 10000 --rate 100 --dir .chaos-tmp

clean:
	rm -rf $(VENV) .eventsearch .test-tmp .chaos-tmp .pytest_cache .mypy_cache .ruff_cache

# Long documents (issue 14): long sets made from short ones through the pipeline, against exact
# search on the short originals (docs/long-documents.md); LONG_ARGS="--documents 800 --queries 100".
.PHONY: bench-long
bench-long: $(STAMP)
	$(BIN)/python -m bench.long_docs --eval $(LONG_ARGS)

# How search cost grows (issue 16): synthetic clustered vectors at BENCH_SCALE_SIZES
# (default 100000,300000,1000000); writes bench-scale-results.json (docs/scaling.md).
.PHONY: bench-scale
bench-scale: $(STAMP)
	$(BIN)/python -m bench.scale
