#!/usr/bin/env bash
# Builds {{name}}.wasm, a component for smsgw, with jco's QuickJS backend
# (installed into node_modules on first use; needs Node.js 18+).
set -euo pipefail
cd "$(dirname "$0")"
# JCO may name an existing jco 1.35.0.
jco="${JCO:-node_modules/.bin/jco}"
if [[ ! -x "$jco" ]]; then
    npm install --silent --no-audit --no-fund @bytecodealliance/jco@1.35.0 @bytecodealliance/componentize-js@0.23.0
    jco=node_modules/.bin/jco
fi
"$jco" componentize backend.js --wit wit --world-name backend \
    --backend qjs --backend-qjs-stub-wasi --backend-qjs-disable-async -o {{name}}.wasm
echo "built {{name}}.wasm ($(stat -c %s {{name}}.wasm) bytes)"
