# fqzoo: `make quickstart` trains and evaluates a small tokenizer on CPU,
# `make test` runs the test suite. Both create the virtual environment first.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
QUICKSTART_CONFIG ?= configs/quickstart/fq2_effnet_tiny_photos.py
QUICKSTART_WORK_DIR ?= work_dirs/quickstart

.PHONY: venv quickstart test lint clean-venv

venv: $(VENV)/.installed

$(VENV)/.installed: requirements.txt setup.cfg
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade-strategy only-if-needed -r requirements.txt
	$(PY) -m pip install --no-deps --no-build-isolation -e .
	touch $@

quickstart: venv
	$(PY) tools/quickstart.py $(QUICKSTART_CONFIG) --work-dir $(QUICKSTART_WORK_DIR)

test: venv
	$(PY) -m pytest tests

lint: venv
	$(PY) -m ruff check fqzoo tools tests configs examples

clean-venv:
	rm -rf $(VENV)
