# Two commands do all set-up on a fresh machine (Python 3.11, no conda needed):
#   make demo   # virtual env + install + the built-in demo  → results/demo/
#   make test   # virtual env + test tools + lint + tests
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
CORES ?= 2
TEST_WORKERS ?= 2

.PHONY: install demo test lint clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --progress-bar off -e ".[test,slurm]"
	touch $@

install: $(BIN)/.installed

demo: install
	$(BIN)/snakemake --cores $(CORES) --configfile config/demo.yaml
	@echo "Demo outputs: results/demo/scores.csv results/demo/table.md results/demo/learning_curve.png"

lint: install
	$(BIN)/ruff check .
	$(BIN)/snakemake --lint --configfile config/demo.yaml  # reads no external data

# Two pytest workers: the end-to-end runs of one group (tests/conftest.py) beside the rest.
test: lint
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/pytest -q -n $(TEST_WORKERS) --dist loadgroup

clean:
	rm -rf results logs .snakemake
