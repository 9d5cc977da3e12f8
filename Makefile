# `make run`: create .venv, install, run the exercise-1 gradient-descent grid and print its table.
# `make test`: create .venv if needed, install the test and optuna extras, type-check (mypy), run the tests.
# `make slurm-up` / `make slurm-down`: a two-node Slurm cluster on this machine (root, Debian).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
SWEEP := outputs/make-run/$(shell date +%Y-%m-%d_%H-%M-%S)

.PHONY: run test bench clean-venv slurm-up slurm-down

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test,optuna]'
	touch $@

run: $(VENV)/.installed
	$(PY) run.py -m experiment=ex1_gd hydra.sweep.dir=$(SWEEP)
	$(PY) -m sweeper collate $(SWEEP)

test: $(VENV)/.installed
	$(PY) -m mypy
	$(PY) -m pytest $(PYTEST_ARGS)

bench: $(VENV)/.installed
	$(PY) benchmarks/ex1_grid.py

slurm-up:
	bash scripts/slurm-up.sh

slurm-down:
	bash scripts/slurm-down.sh

clean-venv:
	rm -rf $(VENV)
