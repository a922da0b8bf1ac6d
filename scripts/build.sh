#!/usr/bin/env bash
# Builds the npm package into pkg/ (wasm-pack, release, --target web).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/wasm-env.sh
wasm-pack build --target web --release "${WASM_PACK_BUILD_MODE[@]}" "$@"
