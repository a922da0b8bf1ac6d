# Sourced by the wasm build and test scripts only (never for native builds).
# With rustup's wasm32 target it only puts the tools on PATH; otherwise it selects Debian's
# rustc-web and builds std for wasm32 with -Z build-std (../shared/toolchain.md).
source "$(dirname "${BASH_SOURCE[0]}")/versions.sh"
export PATH="$FENNEC_TOOLS/bin:$PATH"
export CHROMEDRIVER="${CHROMEDRIVER:-/usr/bin/chromedriver}"
if command -v rustup >/dev/null && rustup target list --installed 2>/dev/null | grep -q wasm32-unknown-unknown; then
  WASM_PACK_BUILD_MODE=()
  WASM_PACK_TEST_MODE=()
else
  mkdir -p "$FENNEC_TOOLS/wasm-rust/bin"
  for t in cargo rustc rustdoc cargo-clippy clippy-driver; do
    if [ -e "/usr/bin/$t" ]; then ln -sf "/usr/bin/$t" "$FENNEC_TOOLS/wasm-rust/bin/$t"; fi
  done
  export PATH="$FENNEC_TOOLS/wasm-rust/bin:$PATH"   # wasm-pack calls plain `cargo`
  export RUSTC_BOOTSTRAP=1
  export CARGO_UNSTABLE_BUILD_STD=std,panic_abort
  export CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_LINKER="/usr/lib/llvm-$LLVM_MAJOR/bin/wasm-ld"
  # wasm-pack's sysroot check fails with Debian's toolchain; skip only that.
  WASM_PACK_BUILD_MODE=(--mode force)
  WASM_PACK_TEST_MODE=(--mode no-install)
fi
# wasm-pack picks the target dir; keep wasm artefacts apart from the native ones so the two
# toolchains (rustup's and Debian's) never invalidate each other's cache.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target/wasm}"
# wasm-bindgen-test-runner gives a whole test binary 20 s by default; on a loaded 2-core
# machine the WebRTC suites (10 MiB transfers) can need more.
export WASM_BINDGEN_TEST_TIMEOUT="${WASM_BINDGEN_TEST_TIMEOUT:-120}"
