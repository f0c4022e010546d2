# Two commands for a new machine: `make demo` and `make test` (each installs first).
PYTHON ?= python3
VENV ?= .venv
# The CPU build by default; GPU users: make TORCH="torch==2.13.0 --index-url https://download.pytorch.org/whl/cu128"
TORCH ?= torch==2.13.0
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
RUN ?= demo-$(shell date +%Y%m%d-%H%M%S)

.PHONY: install demo test lint bench clean

$(INSTALLED): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install $(TORCH)
	$(BIN)/pip install -e ".[dev]"
	touch $(INSTALLED)

install: $(INSTALLED)

# Collect 10,000 Thompson-Sampling histories, train the CPU preset, evaluate on every paper suite.
demo: install
	$(BIN)/python -m headless_ad collect --task bandit
	$(BIN)/python -m headless_ad train bandit --run-name $(RUN)
	$(BIN)/python -m headless_ad evaluate --checkpoint runs/$(RUN)/checkpoint.pt --threads 2

test: install
	$(BIN)/python -m pytest -q

# Throughput against what a user would otherwise run; writes benchmarks/RESULTS.md.
bench: install
	$(BIN)/python benchmarks/bench.py --threads 2

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache .ruff_cache
