#!/usr/bin/env bash
# Builds {{name}}.wasm, a component for smsgw, with jco's QuickJS backend.
# The first run installs the toolchain pinned by toolchain-package*.json into
# .smsgw-toolchain/ (needs Node.js 18+ and npm); this folder gets no package.json.
set -euo pipefail
cd "$(dirname "$0")"
tools=.smsgw-toolchain
# JCO may name an existing jco 1.35.0 (with componentize-js 0.23.0) instead.
jco="${JCO:-$tools/node_modules/.bin/jco}"
if [[ -z "${JCO:-}" ]] && ! cmp -s toolchain-package-lock.json "$tools/installed-lock.json"; then
    echo "installing jco 1.35.0 into $tools/"
    rm -rf "$tools"
    mkdir "$tools"
    cp toolchain-package.json "$tools/package.json"
    cp toolchain-package-lock.json "$tools/package-lock.json"
    (cd "$tools" && npm ci --silent --no-audit --no-fund --ignore-scripts)
    cp toolchain-package-lock.json "$tools/installed-lock.json"
fi
# deterministic.c fixes the random numbers and clocks that the build would otherwise
# leave in the component; it is compiled into $tools/.
shim="$PWD/$tools/libdeterministic.so"
cc="$(command -v cc || command -v gcc || command -v clang || true)"
if [[ -z "$cc" ]]; then
    echo "note: no C compiler; this build is not reproducible"
    shim=
elif [[ "$shim" == *[\ :]* ]]; then
    echo "note: a space or colon in this folder's path; this build is not reproducible"
    shim=
elif ! cmp -s deterministic.c "$tools/deterministic.c" || [[ ! -f "$shim" ]]; then
    mkdir -p "$tools"
    rm -f "$tools/deterministic.c"
    if "$cc" -shared -fPIC -O2 -o "$shim" deterministic.c -ldl; then
        cp deterministic.c "$tools/"
    else
        echo "note: deterministic.c did not compile; this build is not reproducible"
        shim=
    fi
fi
# --backend qjs: QuickJS (StarlingMonkey imports wasi:http); --backend-qjs-stub-wasi:
# no WASI imports; --backend-qjs-disable-async: no component-model async ABI.
LD_PRELOAD="$shim${LD_PRELOAD:+ $LD_PRELOAD}" "$jco" componentize "$PWD/backend.js" --wit wit --world-name backend \
    --backend qjs --backend-qjs-stub-wasi --backend-qjs-disable-async -o {{name}}.wasm >/dev/null
echo "built {{name}}.wasm ($(stat -c %s {{name}}.wasm) bytes), sha256 $(sha256sum {{name}}.wasm | cut -d" " -f1)"
