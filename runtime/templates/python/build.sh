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
# componentize-py is not byte-reproducible (its heap snapshot keeps the build
# machine's hash seed and a few bytes of leftover memory), so the same sources
# would give new bytes every time and the gateway would compile each re-upload
# again. The last output is kept under .smsgw-build/, keyed by every input:
# the sources, the WIT, this script and the toolchain's version.
inputs="$( { "$cpy" --version; find . \( -path ./.venv -o -path ./.smsgw-build \) -prune -o \
    \( -name '*.py' -o -path './wit/*' -o -name build.sh \) -type f -print0 | sort -z | xargs -0 sha256sum; } \
    | sha256sum | cut -c1-64)"
kept=".smsgw-build/$inputs.wasm"
if [[ -f "$kept" ]]; then
    cp "$kept" {{name}}.wasm
    echo "sources unchanged since the last build: reused it"
else
    # The build imports app.py and writes __pycache__/ beside it: leave none behind.
    find . -path ./.venv -prune -o -name __pycache__ -type d -exec rm -rf {} +
    # --stub-wasi: no WASI imports (any use of files, clocks or stdio traps).
    "$cpy" -d wit -w backend componentize --stub-wasi -p . app -o {{name}}.wasm >/dev/null
    find . -path ./.venv -prune -o -name __pycache__ -type d -exec rm -rf {} +
    rm -rf .smsgw-build && mkdir .smsgw-build && cp {{name}}.wasm "$kept"
fi
echo "built {{name}}.wasm ($(stat -c %s {{name}}.wasm) bytes), sha256 $(sha256sum {{name}}.wasm | cut -d" " -f1)"
