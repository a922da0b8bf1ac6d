#!/usr/bin/env bash
# Builds the npm package `fennec-dht` into pkg/ and packs it as target/fennec-dht-<version>.tgz:
#   1. wasm-pack (release, --target web; its own wasm-opt step is off in Cargo.toml);
#   2. scripts/optimise-wasm.sh: binaryen's wasm-opt from npm (pinned in package.json; Debian's
#      wasm-opt 108 corrupts wasm-bindgen's externref table) shrinks the module and strips its
#      names and producers section; the copy before that is kept in target/wasm-names/ for the
#      size profile (npm run bench -- size --top 20);
#   3. scripts/package-entry.mjs: the entry pkg/index.js (the glue plus FennecError and the
#      before-init guard), package.json and the package's README (docs/package-README.md);
#   4. scripts/minify-glue.mjs: every .js file of the package minified in place (esbuild);
#   5. npm pack.
#   --testing   also builds target/pkg-testing/ with the `testing` cargo feature (the JS
#               Transport with sendFrame/onFrame and frame encoders for hostile-peer e2e tests
#               and the transport benchmark; served by the devnet at /pkg-testing/), optimised
#               and minified the same way. Never shipped: pkg/ is built without it.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/wasm-env.sh
testing=0
args=()
for a in "$@"; do
  if [ "$a" = "--testing" ]; then testing=1; else args+=("$a"); fi
done
# panic=immediate-abort (only where std is built here, -Z build-std): a panic traps at once
# instead of formatting a message that wasm32-unknown-unknown has nowhere to print; it takes the
# panic machinery out of the module. -Zlocation-detail=none: panic locations (file, line,
# column) were only ever for that message; without them no source path is in the module.
release_rustflags=()
if [ -n "${CARGO_UNSTABLE_BUILD_STD:-}" ]; then
  release_rustflags=(env "RUSTFLAGS=${RUSTFLAGS:-} -Zunstable-options -Cpanic=immediate-abort -Zlocation-detail=none")
fi
"${release_rustflags[@]}" wasm-pack build --target web --release "${WASM_PACK_BUILD_MODE[@]}" "${args[@]}"
bash scripts/optimise-wasm.sh pkg/fennec_bg.wasm target/wasm-names/fennec_bg.wasm
node scripts/package-entry.mjs pkg
node scripts/minify-glue.mjs pkg
mkdir -p target
npm pack ./pkg --pack-destination target --silent >/dev/null
echo "build: target/$(node -p "const p=require('./pkg/package.json'); p.name+'-'+p.version").tgz"
if [ "$testing" = 1 ]; then
  "${release_rustflags[@]}" wasm-pack build --target web --release "${WASM_PACK_BUILD_MODE[@]}" \
    --out-dir target/pkg-testing "${args[@]}" -- --features testing
  bash scripts/optimise-wasm.sh target/pkg-testing/fennec_bg.wasm
  node scripts/package-entry.mjs target/pkg-testing
  node scripts/minify-glue.mjs target/pkg-testing
fi
