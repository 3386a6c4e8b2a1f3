# One way to run things. `make run` and `make test` work on a fresh machine.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | sha1sum | cut -c1-12)
PORT ?= 53000

.PHONY: run test test-postgres lint format bench chaos conformance binary binary-dir studio screenshots system-deps venv clean vsix modules

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,postgres,mysql,redis,smtp,deno,lsp,mcp,oras,otel,grpc]'
	rm -f $(VENV)/.installed-* && touch $(STAMP)

venv: $(STAMP)

## Start the server with its embedded defaults (data in ./data, key printed on first start).
run: $(STAMP)
	$(BIN)/aionix --port $(PORT) --data-dir ./data

## Install what the suite needs (Debian packages and Python packages) and run all of it on SQLite,
## then the service suites in PG_DIRS again on PostgreSQL (a real server from Debian's package,
## a fresh database per server): those run on both stores. The PostgreSQL pass: 789 tests, ~14 min
## on 2 cores (20 min at load average 8); tests/core's store tests run on both in the first pass.
PG_DIRS := tests/stepflow tests/triggers tests/functions tests/vault tests/params tests/connectors tests/iam
test: system-deps $(STAMP) studio/node_modules vscode/node_modules tests/iam/oidc-provider/node_modules
	$(BIN)/python -m pytest -q -p no:cacheprovider
	AIONIX_TEST_STORE=postgres $(BIN)/python -m pytest -q -p no:cacheprovider $(PG_DIRS)

## The suite's server and engine tests on the PostgreSQL store (a real server from Debian's package).
test-postgres: system-deps $(STAMP)
	AIONIX_TEST_STORE=postgres $(BIN)/python -m pytest -q -p no:cacheprovider

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

## The StepFlow crash test's long form (RELIABILITY.md): 500 SIGKILLs of a server under a mixed workload.
chaos: $(STAMP)
	AIONIX_CHAOS_KILLS=500 AIONIX_CHAOS_EXECUTIONS=1000 $(BIN)/python -m pytest -q -s -p no:cacheprovider --timeout 7200 tests/stepflow/test_crash.py

## The ASL corpus recorded on AWS (through the real engine, scaled clock) and the JSONata reference
## suite: pass counts per feature tag; fails when either drops below conformance/baseline.json.
conformance: $(STAMP)
	$(BIN)/python -m aionix.stepflow.asl.conformance --cases conformance/cases --check conformance/baseline.json

## The example agent modules (examples/modules/): WAT assembled to WebAssembly, packed as OCI
## image-layout tars in build/modules/, signed with the TEST-ONLY key (examples/modules/keys/).
modules: $(STAMP)
	$(BIN)/python examples/modules/build.py build/modules

clean:
	rm -rf $(VENV) build dist .pytest_cache

## Build dist/aionix, the one executable: server, CLI and function worker. It is a small POSIX sh
## stub (scripts/onefile-stub.sh) followed by the tarball of `make binary-dir` (PyInstaller onedir,
## aionix.spec): the first start unpacks it once into ~/.cache/aionix/<payload hash>/, later starts
## exec the program there. Skipped when the payload and the stub are unchanged.
BINARY_INPUTS_STAMP := dist/.aionix.inputs
BINARY_INPUTS_HASH = { find aionix studio_dist -type f ! -name '*.pyc' ! -path '*/__pycache__/*' -print0 | LC_ALL=C sort -z | xargs -0 sha1sum; sha1sum aionix.spec pyproject.toml config.toml; } | sha1sum | cut -c1-16
binary: binary-dir
	@payload=$$(sha256sum dist/aionix-onedir.tar.gz | cut -c1-16); \
	stamp="$$payload $$(sha1sum scripts/onefile-stub.sh | cut -c1-16)"; \
	if [ -x dist/aionix ] && [ "$$(cat $(BINARY_INPUTS_STAMP) 2>/dev/null)" = "$$stamp" ]; then \
		echo "dist/aionix is up to date (payload $$payload)"; \
	else \
		rm -f $(BINARY_INPUTS_STAMP) dist/.aionix.tmp && \
		line=$$(( $$(wc -l < scripts/onefile-stub.sh) + 1 )) && \
		sed -e "s/@PAYLOAD_HASH@/$$payload/" -e "s/@PAYLOAD_LINE@/$$line/" scripts/onefile-stub.sh > dist/.aionix.tmp && \
		cat dist/aionix-onedir.tar.gz >> dist/.aionix.tmp && chmod 0755 dist/.aionix.tmp && \
		mv -f dist/.aionix.tmp dist/aionix && \
		echo "$$stamp" > $(BINARY_INPUTS_STAMP) && ls -l dist/aionix; \
	fi

## The same program as one directory, which starts without unpacking anything (README: which to
## pick): dist/onedir/aionix/ (the executable `aionix`, an `aio` link, _internal/) and its tarball
## dist/aionix-onedir.tar.gz. Skipped like `binary` when its inputs are unchanged.
BINARY_DIR_STAMP := dist/.aionix-onedir.inputs
binary-dir: $(STAMP)
	@hash=$$( $(BINARY_INPUTS_HASH) ); \
	if [ -x dist/onedir/aionix/aionix ] && [ -f dist/aionix-onedir.tar.gz ] && [ "$$(cat $(BINARY_DIR_STAMP) 2>/dev/null)" = "$$hash" ]; then \
		echo "dist/onedir/aionix is up to date (inputs $$hash)"; \
	else \
		rm -f $(BINARY_DIR_STAMP) && \
		AIONIX_BUILD=onedir $(BIN)/pyinstaller --noconfirm --log-level WARN --distpath dist/onedir --workpath build/onedir aionix.spec && \
		ln -sfn aionix dist/onedir/aionix/aio && \
		tar -C dist/onedir -czf dist/aionix-onedir.tar.gz aionix && \
		echo "$$hash" > $(BINARY_DIR_STAMP) && ls -l dist/aionix-onedir.tar.gz; \
	fi

## Build the Studio (studio/) into studio_dist/, which is committed: users and the binary need no Node.
studio: studio/node_modules
	cd studio && npm run build

studio/node_modules: studio/package-lock.json
	cd studio && npm ci --no-audit --no-fund
	touch studio/node_modules

## Package the VS Code extension (vscode/) as vscode/aionix.vsix with the official tool, @vscode/vsce.
vsix: vscode/node_modules
	cd vscode && npm run package

vscode/node_modules: vscode/package-lock.json
	cd vscode && npm ci --no-audit --no-fund
	touch vscode/node_modules

## The certified OpenID Connect provider (npm oidc-provider) the OIDC sign-in tests run on loopback.
tests/iam/oidc-provider/node_modules: tests/iam/oidc-provider/package-lock.json
	cd tests/iam/oidc-provider && npm ci --no-audit --no-fund
	touch tests/iam/oidc-provider/node_modules

## Regenerate docs/screenshots/ with the real server and Debian's chromium.
screenshots: $(STAMP) studio/node_modules
	$(BIN)/python tests/studio/screenshots.py docs/screenshots
