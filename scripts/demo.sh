#!/usr/bin/env bash
# `npm run demo`: sets up what is missing, builds pkg/, starts the devnet and prints the URL of
# the demo page (www/index.html) with the bootstrap and signal URLs filled in. Open it in two
# windows and join the same space. Ctrl-C stops the devnet.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build.sh
exec node scripts/devnet.mjs
