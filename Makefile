# Both targets create .venv and install boxflow pinned by pyproject.toml when needed.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
STAMP := $(VENV)/.installed-stamp

.PHONY: demo test test-fast bench clean

$(STAMP): pyproject.toml
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --upgrade pip
	$(VENV)/bin/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/boxflow demo --workdir demo_run

# Two workers, each test file on one (its module fixtures made once), handed out in the order
# tests/conftest.py gives (LONGEST_FIRST); the shared trained runs are made once for both
# (tests/helpers/made_once.py).
test: $(STAMP)
	$(VENV)/bin/python -m pytest -q -ra --durations=40 -n 2 --dist loadfile --no-loadscope-reorder

test-fast: $(STAMP)
	$(VENV)/bin/python -m pytest -q -ra -m 'not slow' -n 2 --dist loadfile --no-loadscope-reorder

bench: $(STAMP)
	$(VENV)/bin/python benchmarks/prepare_bench.py

clean:
	rm -rf $(VENV) demo_run .pytest_cache
