#!/usr/bin/env bash
# Builds {{name}}.wasm, a component for smsgw, with componentize-py (installed
# into .venv on first use).
set -euo pipefail
cd "$(dirname "$0")"
# COMPONENTIZE_PY may name an existing componentize-py 0.25.1.
cpy="${COMPONENTIZE_PY:-.venv/bin/componentize-py}"
if [[ ! -x "$cpy" ]]; then
    python3 -m venv .venv
    .venv/bin/pip install --quiet --disable-pip-version-check componentize-py==0.25.1
    cpy=.venv/bin/componentize-py
fi
"$cpy" -d wit -w backend componentize --stub-wasi -p . app -o {{name}}.wasm
echo "built {{name}}.wasm ($(stat -c %s {{name}}.wasm) bytes)"
