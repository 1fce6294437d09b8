# Two commands do all set-up: `make run` (demo + Dagster UI) and `make test` (the whole suite).
VENV ?= .venv
PY := $(VENV)/bin/python
export LAKEGATE_HOME ?= $(CURDIR)/.lakegate
HOST ?= 127.0.0.1
PORT ?= 3000

.PHONY: run test lint bench clean

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $@

# A throwaway key for the local demo only; set your own LAKEGATE_PII_KEY anywhere real.
run: export LAKEGATE_PII_KEY ?= local-demo-key-not-for-production
run: $(VENV)/.installed
	$(VENV)/bin/lakegate demo
	$(VENV)/bin/lakegate serve --host $(HOST) --port $(PORT) --demo-stream

# pytest-xdist, one test module per worker: the suite's time on 2 cores is about halved (README: Tests).
TEST_WORKERS ?= 2

test: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy
	$(VENV)/bin/pytest -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder

# Loads tokenize PII they find by content, which needs a key once found (a throwaway one here).
bench: export LAKEGATE_PII_KEY ?= benchmark-key-not-for-production
bench: $(VENV)/.installed
	$(PY) benchmarks/batch_files.py

clean:
	rm -rf .lakegate
