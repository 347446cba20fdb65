# thagen: `make test` and `make dataset` are all a fresh machine needs (both run `make setup`).
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
THAGEN := $(VENV)/bin/thagen
MODELS ?=
OUT ?= data/dataset
MMD_DIR ?= ../shared/mmd
SCHEMA ?= tha1
# train-demo's dataset and run folders: data/demo and runs/demo for tha1, data/demo-tha3, … else
DEMO := demo$(if $(filter tha1,$(SCHEMA)),,-$(SCHEMA))
# its image size: 128² for tha1; 256² for tha3, whose morpher crops the face (96² of it → 128²)
DEMO_SIZE := $(if $(filter tha1,$(SCHEMA)),128,256)
# Every dependency and extra at an exact version (pip-compile from pyproject.toml: `make lock`).
LOCK := requirements/lock.txt
# Where the lock does not fit (not CPython 3.11 on Linux x86_64): pyproject.toml's ranges.
EXTRAS ?= dev,train,cluster,track

.PHONY: setup system-check lock lock-check lock-verify test lint format dataset bench train-demo transfer clean

setup: system-check $(VENV)/.installed

system-check:
	@bash scripts/check_system.sh

$(VENV)/.installed: pyproject.toml $(LOCK)
	@test -x $(PY) || python3 -m venv $(VENV)
	@# The lock, hashes checked, with torch 2.13.0+cpu from this kind of machine's disk (never a
	@# CUDA build: the lock names no nvidia-* package); then thagen itself, built with the
	@# locked setuptools. Elsewhere torch==2.13.0 first, then the ranges (README: The two commands).
	@if $(PY) scripts/lock.py covers; then \
	  $(PY) -m pip install --disable-pip-version-check --progress-bar off -r $(LOCK) \
	  && $(PY) -m pip install -q --disable-pip-version-check --no-deps --no-build-isolation -e . ; \
	else \
	  echo "$(LOCK) covers CPython 3.11 on Linux x86_64: installing pyproject.toml's ranges instead"; \
	  $(PY) -m pip install -q --disable-pip-version-check "torch==2.13.0" \
	  && $(PY) -m pip install -q --disable-pip-version-check -e ".[$(EXTRAS)]"; \
	fi
	@touch $@

# Rewrite the lock from pyproject.toml (UPGRADE=1: the newest versions the ranges allow).
lock: setup
	$(PY) scripts/lock.py compile $(if $(UPGRADE),--upgrade,)

# Offline and instant: the lock matches pyproject.toml, and the venv holds exactly its versions.
lock-check: setup
	@$(PY) scripts/lock.py check

# CI: pip-compile resolves pyproject.toml to the same pins and hashes (about 30 s, online).
lock-verify: setup
	$(PY) scripts/lock.py verify

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: setup
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

# The suite, then the tests that compare floats again with torch's, oneDNN's, MKL's, numpy's and
# llvmpipe's kernels held to a plainer instruction set (scripts/reduced_isa.py): a tolerance that
# only this CPU's kernels meet fails here, not on someone else's machine.
test: lint lock-check
	$(PY) -m pytest -q
	$(PY) scripts/reduced_isa.py -- $(PY) -m pytest -q -m numeric -p no:cacheprovider

dataset: setup
	$(THAGEN) dataset-default --out $(OUT) --schema $(SCHEMA) $(if $(MODELS),--models $(MODELS),)

bench: setup
	$(PY) bench/run.py --mmd-dir $(MMD_DIR)

# About 10 minutes on 2 cores: 28 procedural characters (4 val, 4 test, never trained on),
# cpu-small morpher and rotator, evaluation against the identity baseline, runs/demo/report.html
# (SCHEMA=tha3: the 45-parameter pose, data/demo-tha3 and runs/demo-tha3).
train-demo: setup
	$(THAGEN) dataset-default --out data/$(DEMO) --schema $(SCHEMA) --characters 28 --held-out 4 --examples 100 --size $(DEMO_SIZE) --no-progress
	$(THAGEN) train-demo --data data/$(DEMO) --out runs/$(DEMO) --minutes 14

# Do networks trained on procedural characters animate real ones? cpu-small morpher and rotator
# trained on 100 procedural characters and, beside them, on each half of $(MMD_DIR)'s families,
# all evaluated on the real half held out (bench/transfer.py; about 40 minutes on 2 idle cores).
transfer: setup
	$(PY) bench/transfer.py --mmd-dir $(MMD_DIR)

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache
