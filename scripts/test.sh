#!/usr/bin/env bash
# `npm test`: every test of the project, in pyramid order (docs/testing in README.md).
#   1. native unit + simulation tests      cargo test
#   2. lints                               cargo clippy, cargo doc (native and wasm32) -D warnings
#   3. sbd client conformance              scripts/sbd-conformance.sh (when present)
#   4. browser tests in headless Chromium  wasm-pack test, against the real bootstrap/sbd server
#   5. JavaScript unit tests               node --test tests/js/
#   6. end to end                          scripts/build.sh (package + tarball), node --test tests/e2e/
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
step() { printf '\n\033[1m=== %s ===\033[0m\n' "$*"; }

step "native tests: cargo test"
cargo test

step "lints: cargo fmt --check, cargo clippy -D warnings, cargo doc -D warnings (native)"
cargo fmt --check
cargo clippy --all-targets -- -D warnings
RUSTDOCFLAGS="-D warnings" cargo doc --no-deps --lib --quiet

if [ -f scripts/sbd-conformance.sh ]; then
  step "sbd client conformance: sbd-o-bahn-client-tester"
  bash scripts/sbd-conformance.sh
fi

(
  source scripts/wasm-env.sh
  step "lints: cargo clippy -D warnings, cargo doc -D warnings (wasm32: the browser glue and JS API)"
  cargo clippy --target wasm32-unknown-unknown --all-targets -- -D warnings
  RUSTDOCFLAGS="-D warnings" cargo doc --target wasm32-unknown-unknown --no-deps --lib --quiet
  step "browser tests: wasm-pack test --headless --chrome (real bootstrap/sbd server)"
  node scripts/devnet.mjs -- wasm-pack test --headless --chrome "${WASM_PACK_TEST_MODE[@]}"
)

step "JavaScript unit tests: node --test tests/js/"
node --test tests/js/*.test.mjs

step "build pkg/, target/fennec-dht-*.tgz and target/pkg-testing/: scripts/build.sh --testing"
bash scripts/build.sh --testing

step "end to end: node --test tests/e2e/"
node --test --test-concurrency=1 tests/e2e/*.test.mjs
