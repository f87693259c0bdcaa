# Two commands do the whole set-up: `make demo` and `make test`.
# torch is pinned to 2.13.0 and installed first: an open range would pull a multi-GB CUDA build.
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test test-slow lint bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/rnnkit demo

# pytest exits 5 when it collected nothing: that is a broken suite, not a pass.
# `test` is the default suite (under ~10 minutes on 2 cores); `test-slow` the end-to-end runs
# marked slow (about 6 minutes), which CI runs after it.
test: $(STAMP)
	$(BIN)/python -m pytest -q -m "not slow"; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "make test: pytest collected no tests" >&2; exit 1; fi; \
	exit $$rc

test-slow: $(STAMP)
	$(BIN)/python -m pytest -q -m slow; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "make test-slow: pytest collected no tests" >&2; exit 1; fi; \
	exit $$rc

lint: $(STAMP)
	$(BIN)/ruff check src tests

bench: $(STAMP)
	$(BIN)/rnnkit bench layers --json benchmarks/results/layers-cpu.json

clean:
	rm -rf $(VENV) build src/*.egg-info
