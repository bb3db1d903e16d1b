# muselab: every target is idempotent; run `make studio` or `make test` on a fresh machine.
SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
TORCH := torch==2.13.0
# glibc malloc: keep freed memory instead of returning it to the kernel after every large
# tensor. Measured: MobileNetV2 features of 64 images went from 5.2 to 2.1 CPU-s, the rest
# was system time spent mapping and zeroing pages (docs/performance.md).
export MALLOC_MMAP_THRESHOLD_ ?= 4294967296
export MALLOC_TRIM_THRESHOLD_ ?= 4294967296
export MALLOC_TOP_PAD_ ?= 1073741824

.PHONY: install data test lint studio clean-venv bench

# The studio: install, fetch the default data and feature weights, serve on 127.0.0.1:8000.
# The default models ship in models/ (fp16, sha256-checked at load).
studio: install data
	$(BIN)/muselab studio

install: $(STAMP)

# torch first from the pinned CPU wheel: an unpinned torch would pull a multi-GB CUDA build.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q $(TORCH)
	$(BIN)/python -m pip install -q -e '.[full,dev]'
	touch $(STAMP)

data: install
	$(BIN)/muselab data fetch emoji
	$(BIN)/muselab backbones fetch
	$(BIN)/muselab style fetch

test: install data
	$(BIN)/python -m pytest

lint: install
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/mypy

bench: install
	$(BIN)/python benchmarks/peak.py
	$(BIN)/python benchmarks/train_throughput.py
	$(BIN)/python benchmarks/sample_latency.py
	$(BIN)/python benchmarks/diffusion_latency.py --train
	$(BIN)/python benchmarks/lm_throughput.py
	$(BIN)/python benchmarks/gallery_list.py
	$(BIN)/python benchmarks/style_latency.py
	$(BIN)/python benchmarks/export.py
	$(BIN)/python benchmarks/speed.py
	$(BIN)/python benchmarks/watermark.py
	$(BIN)/python benchmarks/generation_latency.py

clean-venv:
	rm -rf $(VENV)
