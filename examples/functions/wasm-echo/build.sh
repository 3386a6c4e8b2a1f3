#!/usr/bin/env sh
# Rebuild echo.wasm from echo.wat (wasmtime's WAT compiler, offline).
set -e
cd "$(dirname "$0")"
"${PYTHON:-python3}" -c "import wasmtime; open('echo.wasm', 'wb').write(wasmtime.wat2wasm(open('echo.wat').read()))"
