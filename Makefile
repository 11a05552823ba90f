# The two commands a newcomer needs: `make run` and `make test`. Both install what is missing.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install run test unit lint bench soak clean

install: $(STAMP) node_modules/.installed

$(STAMP): pyproject.toml requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

node_modules/.installed: package.json
	npm install --no-audit --no-fund --loglevel=error
	touch $@

run: install
	$(VENV)/bin/lifecycle serve

test: install lint
	$(PY) -m pytest $(PYTEST_ARGS)

unit: install
	$(PY) -m pytest tests/unit $(PYTEST_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy --strict lifecycle functions function_app.py tests bench soak

bench: install
	$(PY) -m bench $(BENCH_ARGS)

# The worker under every fault we know; exits non-zero on any violation (see README, Reliability).
SUBSCRIPTIONS ?= 1000
EVENTS ?= 20000
SEED ?= 7
soak: install
	$(PY) -m soak --subscriptions $(SUBSCRIPTIONS) --events $(EVENTS) --seed $(SEED) $(SOAK_ARGS)

clean:
	rm -rf $(VENV) node_modules .local .mypy_cache .ruff_cache .pytest_cache
