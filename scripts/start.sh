#!/usr/bin/env bash
# `npm start`: the main job. Sets up what is missing, builds pkg/, then runs the swarm
# (scripts/swarm.mjs) on the devnet: T tabs join one space, publish the bundled dataset,
# a late joiner catches up, one tab reloads; ends with a report. Arguments pass through:
#   npm start -- --tabs 8 --ops 11646 --data FILE.jsonl[.gz] --json
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build.sh
exec node scripts/swarm.mjs "$@"
