# Pinned tool versions and the tools folder; sourced by every script. One place to bump them.
export FENNEC_TOOLS="${FENNEC_TOOLS:-$HOME/.cache/fennec-tools}"
WASM_BINDGEN_VERSION=0.2.130   # must equal the exact pin in Cargo.toml
WASM_PACK_VERSION=0.15.1
BOOTSTRAP_SRV_VERSION=0.4.1     # kitsune2_bootstrap_srv with its embedded sbd server
SBD_CLIENT_TESTER_VERSION=0.4.0 # sbd-o-bahn-client-tester, upstream sbd client conformance suite
LLVM_MAJOR=22                   # wasm-ld matching Debian's rustc-web
