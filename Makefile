# Set-up is two commands: `make demo` and `make test`; each creates .venv if missing.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	# torch first, the CPU build from the local wheel cache: a bare `torch`
	# requirement would pull a multi-GB CUDA build.
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -e '.[test,onnx,ml]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python -m edgeslice.demo

# Two at a time (pytest-xdist) except the `serial` tests, which measure CPU time or load on the testbed and
# so run alone afterwards.  `pytest` alone runs everything in one process, as before.
test: $(STAMP)
	$(BIN)/python -m pytest -q -n 2 --dist worksteal -m "not serial"
	$(BIN)/python -m pytest -q -m serial

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_lowering.py

clean:
	rm -rf $(VENV) build src/*.egg-info
