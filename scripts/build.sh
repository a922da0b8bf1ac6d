#!/usr/bin/env bash
# Builds the npm package into pkg/ (wasm-pack, release, --target web); its entry is
# pkg/index.js (scripts/package-entry.mjs: the glue plus FennecError and the before-init guard).
#   --testing   also builds target/pkg-testing/ with the `testing` cargo feature (the JS
#               Transport with sendFrame/onFrame and frame encoders for hostile-peer e2e tests
#               and the transport benchmark; served by the devnet at /pkg-testing/). Never
#               shipped: pkg/ is built without it.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/wasm-env.sh
testing=0
args=()
for a in "$@"; do
  if [ "$a" = "--testing" ]; then testing=1; else args+=("$a"); fi
done
wasm-pack build --target web --release "${WASM_PACK_BUILD_MODE[@]}" "${args[@]}"
node scripts/package-entry.mjs pkg
if [ "$testing" = 1 ]; then
  wasm-pack build --target web --release "${WASM_PACK_BUILD_MODE[@]}" \
    --out-dir target/pkg-testing "${args[@]}" -- --features testing
  node scripts/package-entry.mjs target/pkg-testing
fi
