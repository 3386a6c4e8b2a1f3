# One way to run things. `make run` and `make test` work on a fresh machine.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | sha1sum | cut -c1-12)
PORT ?= 53000

.PHONY: run test lint format bench chaos conformance binary studio system-deps venv clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,postgres,mysql,redis,smtp]'
	rm -f $(VENV)/.installed-* && touch $(STAMP)

venv: $(STAMP)

## Start the server with its embedded defaults (data in ./data, key printed on first start).
run: $(STAMP)
	$(BIN)/aionix --port $(PORT) --data-dir ./data

## Install what the suite needs (Debian packages and Python packages) and run all of it.
test: system-deps $(STAMP)
	$(BIN)/python -m pytest -q -p no:cacheprovider

system-deps:
	bash scripts/system-deps.sh

lint: $(STAMP)
	$(BIN)/ruff check aionix tests bench
	$(BIN)/ruff format --check aionix tests bench

format: $(STAMP)
	$(BIN)/ruff format aionix tests bench
	$(BIN)/ruff check --fix aionix tests bench

bench: $(STAMP)
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) build dist .pytest_cache
