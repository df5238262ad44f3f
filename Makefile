# The two commands of the README: `make demo` and `make test`.
# Each creates .venv and installs peforge (editable) with what it needs.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.peforge-installed

.PHONY: demo test test-all lint clean iverilog

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip setuptools
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/peforge demo

# Icarus Verilog, the second simulator (skipped with a reason when it cannot be installed).
iverilog:
	@command -v iverilog > /dev/null || { [ "$$(id -u)" = 0 ] && command -v apt-get > /dev/null && \
		apt-get install -y -qq iverilog > /dev/null; } || \
		echo "note: iverilog could not be installed; tests/sim/rtl/test_icarus.py is skipped"

test: $(STAMP) iverilog
	$(BIN)/python -m pytest -n 2 -m "not slow"

test-all: $(STAMP) iverilog
	$(BIN)/python -m pytest -n 2

clean:
	rm -rf $(VENV) build rtl_out/*.v rtl_out/*.json
