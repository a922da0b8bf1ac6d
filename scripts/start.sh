#!/usr/bin/env bash
# `npm start`: the main job. Sets up what is missing, builds pkg/, then runs it against the
# devnet (the real kitsune2-bootstrap-srv with sbd, and a static server for www/ and pkg/).
# Until the swarm lands (spaces issue) it serves the pages and prints their URLs; Ctrl-C stops.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build.sh
exec node scripts/devnet.mjs "$@"
