# Developer shortcuts. Everything runs from a local virtualenv in .venv,
# created on first use from the python3 on PATH (3.11 or newer).

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
MODE   ?= all
ARGS   ?=

.PHONY: install run test bench apidocs clean

$(BIN)/.installed: pyproject.toml twisted/plugins/netsuite_plugin.py
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

install: $(BIN)/.installed

## make run [MODE=echo|udp-echo|chat|all] [ARGS="--echo-listen tcp:9000"]
run: install
	$(BIN)/twistd --nodaemon --pidfile= netsuite --mode $(MODE) $(ARGS)

## make test [PYTEST_ARGS=-x]
test: install
	$(BIN)/python -m pytest $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis dist build twisted/plugins/dropin.cache

## make bench [BENCH_ARGS="--quick chat"]: side-by-side benchmarks, see benchmarks/README.md
bench: install
	$(BIN)/python -m pip install --quiet -e '.[bench]'
	$(BIN)/python -m benchmarks $(BENCH_ARGS)

## make apidocs: API reference from the docstrings into build/apidocs (warnings are errors)
apidocs: install
	$(BIN)/python -m pip install --quiet -e '.[docs]'
	$(BIN)/pydoctor --project-name=netsuite --docformat=restructuredtext --html-output=build/apidocs -q -W suite
