# Template developer commands. `make test` is what CI runs (through .ci/run).
VENV ?= .venv
PY := $(VENV)/bin/python
PARITY_VENV ?= .parity-venv
TRAINING_VENV ?= .training-venv
BASE_MODEL ?=
DEMO_DIR ?= scratch/demo

.PHONY: setup test lint demo clean

setup: $(VENV)/.installed  ## virtual environment with the pinned tools (CPU PyTorch first)

# Rebuilt when the pins change: the tools, the venv scripts, the training image's version.
$(VENV)/.installed: requirements-dev.txt .ci/parity-env.sh .ci/training-env.sh {{cookiecutter.project_slug}}/config.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -r requirements-dev.txt
	bash .ci/parity-env.sh "$(abspath $(PARITY_VENV))"
	bash .ci/training-env.sh "$(abspath $(TRAINING_VENV))"
	touch $@

lint: setup  ## ruff (lint and format check) over the template, hooks and tests
	$(PY) -m ruff check --no-cache --config ruff.toml .
	$(PY) -m ruff format --no-cache --check --config ruff.toml .

# Two workers: the scenarios' suites, mostly one busy core each, run side by side on a 2-core
# runner; worksteal keeps both busy whatever order the long and short ones come in.
test: lint  ## bake answer sets, run the generated suites (offline)
	PARITY_PYTHON="$(abspath $(PARITY_VENV))/bin/python" \
	TRAINING_PYTHON="$(abspath $(TRAINING_VENV))/bin/python" \
	HF_HUB_OFFLINE=1 $(PY) -m pytest -q -n 2 --dist worksteal tests

demo: setup  ## bake the default project, train on the NSMC sample, evaluate, predict
	BASE_MODEL="$(BASE_MODEL)" DEMO_DIR="$(DEMO_DIR)" PYTHON="$(abspath $(PY))" bash tools/demo.sh

clean:  ## remove scratch output and caches
	rm -rf scratch .pytest_cache
