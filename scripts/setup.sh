#!/usr/bin/env bash
# Installs everything fennec needs on a fresh Debian 12 machine, idempotently.
# Recipe: ../shared/toolchain.md. Tools go to $FENNEC_TOOLS (default ~/.cache/fennec-tools),
# outside the work tree so that every clone on this machine shares one install.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/versions.sh

say() { printf '\033[1msetup:\033[0m %s\n' "$*"; }
die() { printf '\033[31msetup: error:\033[0m %s\n' "$*" >&2; exit 1; }

mkdir -p "$FENNEC_TOOLS/bin"
export PATH="$FENNEC_TOOLS/bin:$PATH"
command -v cargo >/dev/null || die "cargo not found: install Rust (rustup) first"
command -v npm >/dev/null || die "npm not found: install Node.js 20+ first"

has_rustup_wasm() {
  command -v rustup >/dev/null && rustup target list --installed 2>/dev/null | grep -q wasm32-unknown-unknown
}

apt_install() {
  local missing=()
  for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  say "apt-get install ${missing[*]}"
  local sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -q || die "apt-get update failed"
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "${missing[@]}" \
    || die "apt-get install ${missing[*]} failed"
}

debs=(chromium chromium-driver)
if has_rustup_wasm; then
  say "using rustup's wasm32-unknown-unknown target"
else
  say "no rustup wasm32 target: using Debian's rustc-web with -Z build-std"
  debs+=(rustc-web cargo-web rust-web-src rust-web-clippy "lld-$LLVM_MAJOR")
fi
apt_install "${debs[@]}"

# cargo_tool BIN VERSION CRATE [cargo install args...]: install unless BIN --version says VERSION.
cargo_tool() {
  local bin=$1 version=$2 crate=$3; shift 3
  if [ -x "$FENNEC_TOOLS/bin/$bin" ] && [ -f "$FENNEC_TOOLS/.$crate-$version" ]; then return 0; fi
  say "cargo install $crate $version (a few minutes, once)"
  cargo install -q "$crate" --version "$version" --root "$FENNEC_TOOLS" "$@" \
    || die "cargo install $crate $version failed"
  touch "$FENNEC_TOOLS/.$crate-$version"
}
cargo_tool wasm-bindgen "$WASM_BINDGEN_VERSION" wasm-bindgen-cli
cargo_tool wasm-pack "$WASM_PACK_VERSION" wasm-pack
cargo_tool kitsune2-bootstrap-srv "$BOOTSTRAP_SRV_VERSION" kitsune2_bootstrap_srv \
  --no-default-features --features sbd
cargo_tool sbd-o-bahn-client-tester-bin "$SBD_CLIENT_TESTER_VERSION" sbd-o-bahn-client-tester

# node_modules: playwright-core (drives Chromium), binaryen (wasm-opt for the build), vite and
# typescript (the package consumer test), all pinned in package-lock.json.
missing_node=0
for m in playwright-core binaryen vite typescript; do [ -d "node_modules/$m" ] || missing_node=1; done
if [ "$missing_node" = 1 ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  say "npm ci"
  npm ci --no-audit --no-fund || die "npm ci failed"
fi
say "ready (tools in $FENNEC_TOOLS)"
