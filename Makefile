# The two commands of the README: `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
HOST   ?= 127.0.0.1
PORT   ?= 5000

.PHONY: run test soak bench lint format i18n clean

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11 or newer is needed (found " + sys.version.split()[0] + ")")'
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: $(BIN)/python setup.cfg pyproject.toml
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e .
	@touch $@

$(VENV)/.installed-test: $(VENV)/.installed
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[test]'
	@touch $@

run: $(VENV)/.installed
	$(BIN)/payout-terminal init-db
	$(BIN)/payout-terminal seed-demo --if-empty
	HOST=$(HOST) PORT=$(PORT) $(BIN)/payout-terminal serve

test: $(VENV)/.installed-test
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# The heavy rounds of the crash, fault and soak scenarios (RELIABILITY.md S05, S07, S10):
# the same tests as in `make test`, with many more rounds and an hour of mixed load.
soak: $(VENV)/.installed-test
	TERMINAL_SOAK=1 $(BIN)/python -m pytest tests/crash tests/soak tests/reliability \
		tests/api/test_schemathesis.py tests/concurrency/test_lockout_across_workers.py $(PYTEST_ARGS)

# The benchmarks against their targets (docs/PERFORMANCE.md): SIZE=small|province|national,
# PostgreSQL as well when TERMINAL_BENCH_PG_URL names a database the run may fill.
SIZE ?= province
bench: $(VENV)/.installed-test
	$(BIN)/python benchmarks/bench.py --size $(SIZE) $(if $(TERMINAL_BENCH_PG_URL),--pg-url $(TERMINAL_BENCH_PG_URL),--databases sqlite) $(BENCH_ARGS)

lint: $(VENV)/.installed-test
	$(BIN)/ruff check terminal tests benchmarks
	$(BIN)/ruff format --check terminal tests benchmarks

format: $(VENV)/.installed-test
	$(BIN)/ruff format terminal tests benchmarks
	$(BIN)/ruff check --fix terminal tests benchmarks

clean:
	rm -rf $(VENV) build *.egg-info

i18n: $(VENV)/.installed-test
	$(BIN)/pybabel extract -F babel.cfg -k _l -k lazy_gettext --no-location --omit-header -w 100 -o terminal/translations/messages.pot .
	$(BIN)/pybabel update -i terminal/translations/messages.pot -d terminal/translations --no-fuzzy-matching -w 100
	$(BIN)/pybabel compile -d terminal/translations
