#!/usr/bin/env node
// Soak runs: long stretches (minutes) that count what must never happen (e.g. a false `down`),
// dispatched like the benchmarks (scripts/bench.mjs):
//
//   npm run soak -- <name> [options]     e.g. npm run soak -- liveness --minutes 10
//
// Each soak prints progress and, as the LAST stdout line, exactly one JSON object
// {"soak":"<name>", ...}. Needs pkg/ (npm run build). Soaks live in scripts/soak/<name>.mjs
// and export `run(args: string[], log: (line) => void) -> Promise<object>`; a short version of
// each runs in `npm test` as an e2e asserting the count is 0.
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const SOAKS = {
  liveness: () => import('./soak/liveness.mjs'),
};

async function main() {
  const [name, ...args] = process.argv.slice(2);
  if (!name || !(name in SOAKS)) {
    console.error(`usage: npm run soak -- <${Object.keys(SOAKS).join('|')}> [options]`);
    process.exit(2);
  }
  const soak = await SOAKS[name]();
  const result = await soak.run(args, (line) => console.log(`${name}: ${line}`));
  console.log(JSON.stringify({ soak: name, ...result }));
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main().catch((e) => {
    console.error(`soak: ${e.stack || e.message}`);
    process.exit(1);
  });
}
