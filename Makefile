# `make demo` and `make test` set everything up by themselves on a fresh machine.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# torch is pinned here (not in pyproject.toml) so that pip takes the CPU wheel this machine carries
# instead of resolving a newest build with several GB of CUDA packages.
TORCH_PIN ?= torch==2.13.0
STAMP := $(VENV)/.installed

.PHONY: demo test lint typecheck pytest bench clean

$(STAMP): pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check $(TORCH_PIN)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev,export,tensorboard]'
	touch $@

# The main job on the embedded default data: the guide's classifier on scikit-learn's digits.
demo: $(STAMP)
	rm -rf runs/demo
	$(BIN)/brickwork train --out runs/demo

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy brickwork

# One process per core; each test file stays in one process, so its module fixtures run once.
pytest: $(STAMP)
	$(BIN)/pytest -n auto --dist loadfile

test: lint typecheck pytest

bench: $(STAMP)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev,export,tensorboard,bench]'
	$(BIN)/python benchmarks/overhead.py
	$(BIN)/python benchmarks/build.py
	$(BIN)/python benchmarks/summary.py
	$(BIN)/python benchmarks/doctor.py
	$(BIN)/python benchmarks/families.py
	$(BIN)/python benchmarks/train_throughput.py
	$(BIN)/python benchmarks/data_pipeline.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis *.egg-info
