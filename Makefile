# 舆情哨兵 — everything a fresh machine needs is Python 3.11 and make.
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
STAMP   = $(VENV)/.installed

.PHONY: demo test install bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	@touch $(STAMP)

install: $(STAMP)

## make demo: run the daemon on the bundled crisis scenario (Ctrl-C to stop)
demo: $(STAMP)
	$(BIN)/monitor run --demo

## make test: check the layers contract, then run the whole test suite (PostgreSQL too when MONITOR_TEST_DATABASE_URL is set)
test: $(STAMP)
	$(BIN)/lint-imports --no-cache
	$(BIN)/python -m pytest

## make bench: run every benchmark (tests/bench/bench_*.py); each reports against a baseline measured in the same run
bench: $(STAMP)
	@set -e; for f in tests/bench/bench_*.py; do echo "== $$f"; $(BIN)/python $$f; done

clean:
	rm -rf $(VENV) data .pytest_cache *.egg-info
