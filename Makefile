# Every target creates and uses the project's own virtual environment in .venv.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
DIFFDYN := $(VENV)/bin/diffdyn

.PHONY: run test test-slow bench lint clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $@ $(VENV)/.installed

$(VENV)/.installed-bench: pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -e ".[dev,bench]"
	touch $@ $(VENV)/.installed-dev $(VENV)/.installed

## run: the main job on its built-in default: compare every model on two systems (about 5 min on 2 cores, 2026-12-02)
run: $(VENV)/.installed
	@mkdir -p runs
	$(DIFFDYN) compare -o runs/compare

## test: the default test suite, two processes (target: under 8 minutes on 2 cores; CI's fresh
## clone on its 2-core machine took 336 s in all, install included, on 2026-12-01; this shared
## machine with an empty compilation cache, 12 min 12 s)
test: $(VENV)/.installed-dev
	$(PY) -m pytest -n 2 --dist loadfile

## test-slow: only the tests marked slow
test-slow: $(VENV)/.installed-dev
	$(PY) -m pytest -n 2 --dist loadfile -m slow

## bench: diffdyn against its peers, side by side; writes bench/results/*.json
bench: $(VENV)/.installed-bench
	$(PY) bench/run_all.py

## lint: ruff (lint + format check) and pyright
lint: $(VENV)/.installed-dev
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/ruff format --check src tests bench
	$(VENV)/bin/pyright

clean:
	rm -rf $(VENV) runs .pytest_cache
