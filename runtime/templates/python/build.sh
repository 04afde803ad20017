#!/usr/bin/env bash
# Builds {{name}}.wasm, a component for smsgw, with componentize-py 0.25.1
# (the first run installs it into .venv; needs python3 with venv).
set -euo pipefail
cd "$(dirname "$0")"
# COMPONENTIZE_PY may name an existing componentize-py 0.25.1 instead.
cpy="${COMPONENTIZE_PY:-.venv/bin/componentize-py}"
if [[ ! -x "$cpy" ]]; then
    echo "installing componentize-py 0.25.1 into .venv/"
    python3 -m venv .venv
    .venv/bin/pip install --quiet --disable-pip-version-check componentize-py==0.25.1
    cpy=.venv/bin/componentize-py
fi
# The build imports app.py and writes __pycache__/ beside it: leave none behind.
find . -path ./.venv -prune -o -name __pycache__ -type d -exec rm -rf {} +
# --stub-wasi: no WASI imports (any use of files, clocks or stdio traps).
# Not byte-reproducible: componentize-py's heap snapshot keeps a few bytes of
# leftover memory (and the host's random hash seed) that differ per build.
"$cpy" -d wit -w backend componentize --stub-wasi -p . app -o {{name}}.wasm >/dev/null
find . -path ./.venv -prune -o -name __pycache__ -type d -exec rm -rf {} +
echo "built {{name}}.wasm ($(stat -c %s {{name}}.wasm) bytes), sha256 $(sha256sum {{name}}.wasm | cut -d" " -f1)"
