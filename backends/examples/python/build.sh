#!/usr/bin/env bash
# Builds the generic HTTP backend written in Python into a WebAssembly component:
#   target/examples/python.wasm
# Installs its toolchain first when missing: componentize-py (pinned) from PyPI,
# in a venv under target/toolchains/python/. Safe to run again: with the
# toolchain in place it only rebuilds the component.
set -euo pipefail

COMPONENTIZE_PY_VERSION=0.25.1

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../../.." && pwd)"
venv="$root/target/toolchains/python/venv"
out="$root/target/examples/python.wasm"
cpy="$venv/bin/componentize-py"

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

start="$(now)"

# --- toolchain ---------------------------------------------------------------
have_toolchain() {
    [[ -x "$cpy" ]] && [[ "$("$cpy" --version 2>/dev/null)" == "componentize-py $COMPONENTIZE_PY_VERSION" ]]
}

if ! have_toolchain; then
    echo "installing componentize-py $COMPONENTIZE_PY_VERSION into $venv"
    install_start="$(now)"
    python="$(command -v python3 || true)"
    # A venv needs ensurepip, which Debian ships separately (python3-venv).
    if [[ -z "$python" ]] || ! "$python" -c 'import venv, ensurepip' 2>/dev/null; then
        python=/usr/bin/python3
        if ! "$python" -c 'import venv, ensurepip' 2>/dev/null; then
            export DEBIAN_FRONTEND=noninteractive
            apt-get install -y python3 python3-venv \
                || { apt-get update && apt-get install -y python3 python3-venv; }
        fi
    fi
    rm -rf "$venv"
    "$python" -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
        "componentize-py==$COMPONENTIZE_PY_VERSION"
    have_toolchain || { echo "componentize-py $COMPONENTIZE_PY_VERSION did not install" >&2; exit 1; }
    echo "toolchain installed in $(elapsed "$install_start") s"
fi

# componentize-py is not byte-reproducible (its heap snapshot keeps the build
# machine's hash seed and a few bytes of leftover memory): the last output is
# kept, keyed by every input (sources, WIT, this script, the toolchain's
# version), and reused while they are unchanged, so the same sources give the
# same bytes and a re-upload hits the gateway's compile cache.
inputs="$( { "$cpy" --version; find "$here/src" "$root/wit" "$here/build.sh" -type f \
    \( -name '*.py' -o -name '*.wit' -o -name build.sh \) -print0 | sort -z | xargs -0 sha256sum \
    | sed "s#  $root/#  #"; } | sha256sum | cut -c1-64)"
kept="$root/target/toolchains/python/kept/$inputs.wasm"
build_start="$(now)"
mkdir -p "$(dirname "$out")"
if [[ -f "$kept" ]]; then
    cp "$kept" "$out"
    echo "sources unchanged since the last build: reused it"
else
    # The build imports app.py and writes __pycache__/ beside it: leave none behind.
    find "$here/src" -name __pycache__ -type d -prune -exec rm -rf {} +
    "$cpy" -d "$root/wit" -w backend componentize --stub-wasi \
        -p "$here/src" app -o "$out.tmp"
    find "$here/src" -name __pycache__ -type d -prune -exec rm -rf {} +
    mv "$out.tmp" "$out"
    rm -rf "${kept%/*}" && mkdir -p "${kept%/*}" && cp "$out" "$kept"
fi

echo "built $out ($(stat -c %s "$out") bytes, sha256 $(sha256sum "$out" | cut -c1-16)) in $(elapsed "$build_start") s (total $(elapsed "$start") s)"
