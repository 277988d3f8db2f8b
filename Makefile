# Two commands for a fresh machine: `make run` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
CHROMIUM := /usr/bin/chromium

# Nothing is ever downloaded from a model hub at run time.
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1

.PHONY: setup index run test test-milvus browser clean bench bench-scale

setup: $(STAMP)

# torch is pinned first to the CPU build: a bare `torch` would pull several GB of CUDA.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

# Build or update index/ only when the corpus changed since the last build.
index: setup
	@$(BIN)/assistant index --check >/dev/null 2>&1 || $(BIN)/assistant index

browser:
	@test -x $(CHROMIUM) || { \
	  echo "installing Debian's chromium for the browser tests"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

run: index
	$(BIN)/assistant serve

# Two test processes (pytest-xdist), one per core, each starting on one half of the run and then
# taking work from the other; the indexes of the development sets are built once (tests/conftest.py).
test: setup browser
	$(BIN)/python -m pytest -n 2 --dist worksteal

# The same suite with every assistant searching a milvus-lite copy of its index folder, as
# `assistant index --store` makes one (tests/conftest.py, MilvusCopies); a test that keeps to the
# folder says why (its folder_store mark).
test-milvus: setup browser
	ASSISTANT_TEST_STORE=milvus-lite $(BIN)/python -m pytest -n 2 --dist worksteal

# Performance and scale suite (under 15 minutes on 2 cores): bench/results/*.json and bench.md.
bench: setup
	$(BIN)/python bench/suite.py

# FAISS HNSW against milvus-lite on SCALE_N embedded passages of real text (bench/README.md, "Scale on
# real text"); vectors are cached in bench/results/scale-cache/, so a stopped run resumes.
SCALE_N ?= 30000
bench-scale: setup
	$(BIN)/python bench/bench_scale_store.py --n $(SCALE_N)

clean:
	rm -rf $(VENV) index/CURRENT index/v-* index/.tmp-* index/.lock
