#!/usr/bin/env bash
# Shrinks a wasm-bindgen output module in place with binaryen's wasm-opt from npm (the
# `binaryen` devDependency, pinned in package.json; Debian's wasm-opt 108 corrupts
# wasm-bindgen's externref table, so a system wasm-opt is never used).
#   scripts/optimise-wasm.sh MODULE.wasm [NAMES_COPY.wasm]
# NAMES_COPY: where to keep the module as it was before (with its `name` section), for the size
# profile (npm run bench -- size --top N). The WebAssembly features are the ones rustc enabled,
# read by wasm-opt from the module's `target_features` section; that section, the `name` section
# (DWARF too, if any) and the `producers` section are then stripped: nothing at run time reads them.
set -euo pipefail
cd "$(dirname "$0")/.."
module=$1
names_copy=${2:-}
wasm_opt=node_modules/binaryen/bin/wasm-opt
[ -f "$wasm_opt" ] || { echo "optimise-wasm: $wasm_opt missing: run npm ci" >&2; exit 1; }
# -Oz, but inlining a function into its only caller only when it is small (-ocimfs 20, default
# unlimited): the unlimited form makes the module 8% smaller raw but 9% larger gzipped (long
# unique bodies compress worse than shared calls). Measured in docs/design.md, "Size".
level=${FENNEC_WASM_OPT_LEVEL:--Oz -ocimfs 20}
# Then the functions are put in the order of their names (read from the `name` section before
# it is stripped): the copies of one generic function (B-tree, sort, drop glue, per key type)
# end up next to each other, inside gzip's 32 KiB window, and compress against each other.
# Order does not change behaviour (calls and the table use indices wasm-opt renumbers).
# -3.7% gzip (docs/design.md, "Size").
order=--reorder-functions-by-name
if [ -n "$names_copy" ]; then
  mkdir -p "$(dirname "$names_copy")"
  cp "$module" "$names_copy"
fi
before=$(stat -c %s "$module")
# shellcheck disable=SC2086 # $level is a list of flags
node "$wasm_opt" "$module" $level $order --strip-debug --strip-producers --strip-target-features \
  -o "$module.opt"
mv "$module.opt" "$module"
echo "optimise-wasm: $module $before -> $(stat -c %s "$module") B (wasm-opt $level $order)"
