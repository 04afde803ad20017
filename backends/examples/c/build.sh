#!/usr/bin/env bash
# Builds the C generic HTTP backend into target/examples/c.wasm.
#
#   backends/examples/c/build.sh                  install what is missing, then build
#   backends/examples/c/build.sh --regen-bindings also regenerate bindings/ from wit/
#                                                 (installs wit-bindgen-cli: ~7-10 min once)
#
# Toolchain (pinned): Debian bookworm clang/lld 14, wasi-libc and the wasm32
# compiler-rt builtins, installed with apt-get; rustup's wasm-component-ld to link
# straight to a component (or wasm-component-ld from crates.io when rustup has
# none); wit-bindgen-cli from crates.io only to regenerate the committed bindings.
set -euo pipefail

start=$(date +%s.%N)
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../../.." && pwd)
tools="$repo/target/toolchains/c"
out="$repo/target/examples/c.wasm"

# Pinned versions (Debian bookworm 12.x, crates.io).
APT_PACKAGES=(
    "clang-14=1:14.0.6-12"
    "lld-14=1:14.0.6-12"
    "libclang-rt-14-dev-wasm32=1:14.0.6-12"
    "wasi-libc=0.0~git20220510.9886d3d-2"
)
WASM_COMPONENT_LD_VERSION=0.5.21
WIT_BINDGEN_VERSION=0.61.1

regen=false
for arg in "$@"; do
    case "$arg" in
        --regen-bindings) regen=true ;;
        -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
        *) echo "build.sh: unknown argument '$arg' (try --help)" >&2; exit 2 ;;
    esac
done

log() { echo "build.sh: $*" >&2; }

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
        log "need root for: $*"; exit 1
    fi
}

# --- Debian packages ---------------------------------------------------------
CLANG=/usr/bin/clang-14
WASM_LD=/usr/lib/llvm-14/bin/wasm-ld
BUILTINS=/usr/lib/llvm-14/lib/clang/14.0.6/lib/wasi/libclang_rt.builtins-wasm32.a
if [ ! -x "$CLANG" ] || [ ! -x "$WASM_LD" ] || [ ! -f "$BUILTINS" ] || [ ! -f /usr/lib/wasm32-wasi/libc.a ]; then
    log "installing ${APT_PACKAGES[*]}"
    export DEBIAN_FRONTEND=noninteractive
    if ! as_root apt-get install -y --no-install-recommends "${APT_PACKAGES[@]}"; then
        log "apt-get install failed; running apt-get update and trying again"
        as_root apt-get update
        as_root apt-get install -y --no-install-recommends "${APT_PACKAGES[@]}"
    fi
fi

# --- wasm-component-ld: links the core module and wraps it as a component -----
# Prefer the pinned version shipped with a rustup toolchain, then any rustup one,
# then one installed from crates.io under target/toolchains/c.
component_ld=""
for candidate in "$HOME"/.rustup/toolchains/*/lib/rustlib/*/bin/wasm-component-ld; do
    [ -x "$candidate" ] || continue
    if [ -z "$component_ld" ] || [ "$("$candidate" --version)" = "wasm-component-ld $WASM_COMPONENT_LD_VERSION" ]; then
        component_ld=$candidate
    fi
done
if [ -z "$component_ld" ]; then
    component_ld="$tools/bin/wasm-component-ld"
    if [ ! -x "$component_ld" ]; then
        log "no rustup wasm-component-ld; installing wasm-component-ld $WASM_COMPONENT_LD_VERSION from crates.io"
        cargo install --locked --root "$tools" --version "$WASM_COMPONENT_LD_VERSION" wasm-component-ld
    fi
fi

# --- bindings: committed; regenerated only on request -------------------------
wit_sum=$(cat "$repo"/wit/*.wit | sha256sum | cut -d' ' -f1)
if $regen; then
    wit_bindgen="$tools/bin/wit-bindgen"
    if [ ! -x "$wit_bindgen" ] || [ "$("$wit_bindgen" --version)" != "wit-bindgen-cli $WIT_BINDGEN_VERSION" ]; then
        log "installing wit-bindgen-cli $WIT_BINDGEN_VERSION from crates.io (takes several minutes)"
        cargo install --locked --root "$tools" --version "$WIT_BINDGEN_VERSION" wit-bindgen-cli
    fi
    "$wit_bindgen" c --out-dir "$here/bindings" "$repo/wit" >&2
    echo "$wit_sum" > "$here/bindings/wit.sha256"
fi
if [ "$(cat "$here/bindings/wit.sha256" 2>/dev/null)" != "$wit_sum" ]; then
    log "bindings/ were generated from another version of wit/: run $0 --regen-bindings"
    exit 1
fi

# --- build ---------------------------------------------------------------------
mkdir -p "$(dirname "$out")"
"$CLANG" --target=wasm32-wasi -mexec-model=reactor -Os -std=c11 -Wall -Wextra \
    -I"$here/bindings" -I"$here/src" \
    -fuse-ld="$component_ld" -Wl,--wasm-ld-path="$WASM_LD" -Wl,--strip-all \
    -o "$out.tmp" \
    "$here"/src/*.c "$here/bindings/backend.c" "$here/bindings/backend_component_type.o"
mv "$out.tmp" "$out"

end=$(date +%s.%N)
echo "built $out ($(stat -c %s "$out") bytes) in $(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.2f", b - a }') s"
