#!/usr/bin/env bash
# Builds the generic HTTP backend in JavaScript to target/examples/js.wasm with
# jco + componentize-qjs (QuickJS, no WASI imports), installing the toolchain
# first when it is missing:
#   - Node.js >= 18 and npm: the machine's own, else Debian's (`apt-get install nodejs npm`);
#   - @bytecodealliance/jco 1.35.0 and @bytecodealliance/componentize-js 0.23.0,
#     every dependency pinned by package-lock.json, into target/toolchains/js.
# Idempotent: the toolchain is reinstalled only when package-lock.json changes,
# the component rebuilt only when a source, the WIT or the toolchain is newer
# (`--force` rebuilds anyway).
set -euo pipefail

start_ns=$(date +%s%N)
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../../.." && pwd)"
tools="$root/target/toolchains/js"
out="$root/target/examples/js.wasm"
force=0
[[ "${1:-}" == "--force" ]] && force=1

elapsed() { echo "$(( ($(date +%s%N) - start_ns) / 1000000 ))" | sed -E 's/^([0-9]*)([0-9]{3})$/\1.\2/; s/^\./0./'; }

# --- Node.js and npm -------------------------------------------------------
apt_install() {
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y "$@" || { apt-get update && apt-get install -y "$@"; }
}
if ! command -v node >/dev/null; then
  echo "js: installing Node.js and npm (Debian)"
  apt_install nodejs npm
elif ! command -v npm >/dev/null; then
  echo "js: installing npm (Debian)"
  apt_install npm
fi
node_major=$(node -p 'process.versions.node.split(".")[0]')
if (( node_major < 18 )); then
  echo "js: Node.js >= 18 is needed, found $(node --version)" >&2
  exit 1
fi

# --- jco + componentize-js, pinned by the lockfile ---------------------------
lock_sum=$(sha256sum "$here/package-lock.json" | cut -d' ' -f1)
if [[ ! -x "$tools/node_modules/.bin/jco" || "$(cat "$tools/.installed" 2>/dev/null)" != "$lock_sum" ]]; then
  echo "js: installing jco and componentize-js into ${tools#"$root"/}"
  mkdir -p "$tools"
  cp "$here/package.json" "$here/package-lock.json" "$tools/"
  (cd "$tools" && npm ci --no-audit --no-fund --ignore-scripts --loglevel=error)
  echo "$lock_sum" >"$tools/.installed"
fi

# --- deterministic.c ---------------------------------------------------------
# An LD_PRELOAD shim for the componentize step only: fixed random numbers, clocks
# and file times, so that the same sources give the same bytes. Compiled into
# $tools when it changes; without a C compiler the build goes on, not reproducibly.
# The template's copy: one source for both.
shim_src="$root/runtime/templates/js/deterministic.c"
shim="$tools/libdeterministic.so"
cc="$(command -v cc || command -v gcc || command -v clang || true)"
if [[ -z "$cc" ]]; then
  echo "note: no C compiler; this build is not reproducible"
  shim=
elif [[ "$shim" == *[\ :]* ]]; then
  echo "note: a space or colon in the path of ${shim%/*}; this build is not reproducible"
  shim=
elif ! cmp -s "$shim_src" "$tools/deterministic.c" || [[ ! -f "$shim" ]]; then
  mkdir -p "$tools"
  rm -f "$tools/deterministic.c"
  if "$cc" -shared -fPIC -O2 -o "$shim" "$shim_src" -ldl; then
    cp "$shim_src" "$tools/deterministic.c"
  else
    echo "note: deterministic.c did not compile; this build is not reproducible"
    shim=
  fi
fi

# --- the component ------------------------------------------------------------
mkdir -p "$(dirname "$out")"
newer=$(find "$here/backend.js" "$here/lib.js" "$shim_src" "$root/wit" "$tools/.installed" -newer "$out" -print -quit 2>/dev/null || echo missing)
if [[ $force == 0 && -f "$out" && -z "$newer" ]]; then
  echo "js: ${out#"$root"/} is up to date ($(stat -c %s "$out") bytes); checked in $(elapsed) s"
  exit 0
fi
# --backend qjs: QuickJS instead of StarlingMonkey, which always imports wasi:http;
# --backend-qjs-stub-wasi: no WASI imports at all; --backend-qjs-disable-async: no
# component-model async ABI, which the gateway does not enable.
LD_PRELOAD="$shim${LD_PRELOAD:+ $LD_PRELOAD}" "$tools/node_modules/.bin/jco" componentize "$here/backend.js" \
  --wit "$root/wit" --world-name backend \
  --backend qjs --backend-qjs-stub-wasi --backend-qjs-disable-async \
  -o "$out.tmp" >/dev/null
mv "$out.tmp" "$out"
echo "js: built ${out#"$root"/} ($(stat -c %s "$out") bytes, sha256 $(sha256sum "$out" | cut -c1-16)) in $(elapsed) s"
