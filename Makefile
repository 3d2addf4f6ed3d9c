# fqzoo: `make quickstart` trains and evaluates a small tokenizer on CPU,
# `make test` runs the test suite. Both create the virtual environment first.
# The environment is pinned for Python 3.11 (torch 2.14.1, torchvision 0.29.1):
# python3.11 when it is on PATH, else python3, which `make venv` checks.
PYTHON ?= $(shell command -v python3.11 2>/dev/null || echo python3)
VENV ?= .venv
PY := $(VENV)/bin/python
QUICKSTART_CONFIG ?= configs/quickstart/fq2_effnet_tiny_photos.py
QUICKSTART_WORK_DIR ?= work_dirs/quickstart
# Processes the suite runs in (pytest-xdist; whole files to one process, so
# a module's fixtures are built once; files with a slow test first, in
# tests/conftest.py's order). TEST_JOBS=0: one process, no xdist.
TEST_JOBS ?= 2

.PHONY: venv dev demo quickstart test lint mutation coverage clean-venv

venv: $(VENV)/.installed

PYTHON_CHECK = import sys; v = sys.version_info[:2]; sys.exit(0 if v == (3, 11) \
	else f'fqzoo needs Python 3.11 (its pinned torch 2.14.1 and torchvision 0.29.1 \
	are built for it), but {sys.executable} is Python {sys.version.split()[0]}. \
	Install Python 3.11 and run: make PYTHON=/path/to/python3.11 venv \
	(remove $(VENV) first if it was made with another Python).')

$(VENV)/.installed: requirements.txt setup.cfg
	@command -v $(firstword $(PYTHON)) >/dev/null 2>&1 || { echo "fqzoo needs \
	Python 3.11, and '$(PYTHON)' is not on PATH: install Python 3.11 and run \
	make PYTHON=/path/to/python3.11 venv" >&2; exit 1; }
	@if test -x $(PY); then $(PY) -c "$(PYTHON_CHECK)"; \
	else $(PYTHON) -c "$(PYTHON_CHECK)" && $(PYTHON) -m venv $(VENV); fi
	$(PY) -m pip install --upgrade-strategy only-if-needed -r requirements.txt
	$(PY) -m pip install --no-deps --no-build-isolation -e .
	touch $@

quickstart: venv
	$(PY) tools/quickstart.py $(QUICKSTART_CONFIG) --work-dir $(QUICKSTART_WORK_DIR)

test: venv
	$(PY) -m pytest tests -n $(TEST_JOBS) --dist loadfile --no-loadscope-reorder

# The demo page (setup.cfg extra `demo`: Gradio, and Selenium for its
# browser test) on the shipped models, offline, at http://127.0.0.1:7860
# (docs/demo.md). DEMO_ARGS='--host 0.0.0.0 --port 8080' to change.
DEMO_ARGS ?=
demo: $(VENV)/.demo-installed
	$(PY) -m fqzoo.demo.app $(DEMO_ARGS)

$(VENV)/.demo-installed: $(VENV)/.installed setup.cfg
	$(PY) -m pip install --upgrade-strategy only-if-needed --no-build-isolation -e '.[demo]'
	touch $@

# ruff, then the layers contract of .importlinter (import-linter).
lint: venv
	$(PY) -m ruff check fqzoo tools tests configs examples
	$(VENV)/bin/lint-imports .importlinter

# Developer tools (setup.cfg extra `dev`: coverage, mutmut); docs/testing.md.
dev: $(VENV)/.dev-installed

$(VENV)/.dev-installed: $(VENV)/.installed setup.cfg
	$(PY) -m pip install --upgrade-strategy only-if-needed --no-build-isolation -e '.[dev]'
	touch $@

# Mutation testing of fqzoo/models and fqzoo/evaluation ([mutmut] in setup.cfg).
# Narrow it: make mutation MUTATE=fqzoo/models/quantizers/fsq.py \
#                MUTATE_TESTS=tests/test_models/test_quantizers
# or run one package against its own tests (tools/dev/mutation.py GROUPS;
# the groups cover all of fqzoo): make mutation MUTATE_GROUP=quantizers
# MUTATE_SURVIVORS=FILE writes the mutants not killed, with their diffs.
MUTATE ?=
MUTATE_TESTS ?=
MUTATE_GROUP ?=
MUTATE_SURVIVORS ?=
MUTATE_JOBS ?= 2
mutation: dev
	nice -n 15 $(PY) tools/dev/mutation.py --jobs $(MUTATE_JOBS) \
		$(if $(MUTATE_GROUP),--group $(MUTATE_GROUP)) \
		$(if $(MUTATE_SURVIVORS),--survivors $(MUTATE_SURVIVORS)) \
		$(if $(MUTATE),--mutate $(MUTATE)) $(if $(MUTATE_TESTS),--tests $(MUTATE_TESTS))

# Branch coverage of fqzoo over the whole suite, then the raises no test reaches.
coverage: dev
	rm -f .coverage .coverage.*
	OMP_NUM_THREADS=1 $(PY) -m coverage run --branch -m pytest tests -q -x -p no:cacheprovider
	$(PY) -m coverage combine -q
	$(PY) -m coverage report --precision=1 | tail -n 1
	$(PY) tools/dev/raise_coverage.py

clean-venv:
	rm -rf $(VENV)
