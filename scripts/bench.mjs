#!/usr/bin/env node
// Benchmarks, measured side by side in one run (ours vs the raw browser primitive), never a
// timed assertion in a test (docs/design.md, testing pyramid 5).
//
//   npm run bench -- <name> [options]     e.g. npm run bench -- store --rounds 5
//
// Each benchmark prints progress and, as the LAST stdout line, exactly one JSON object
// {"bench":"<name>", ...}. Needs pkg/ and, for `transport`, target/pkg-testing/
// (npm run build -- --testing). Benchmarks live in scripts/bench/<name>.mjs
// and export `run(args: string[], log: (line) => void) -> Promise<object>`.
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const BENCHES = {
  // liveness: real tabs (detection p50/p95, false downs, idle traffic with 16 tabs);
  // membership: the native 50-member SWIM simulation (virtual time).
  liveness: () => import('./bench/liveness.mjs'),
  membership: () => import('./bench/membership.mjs'),
  store: () => import('./bench/store.mjs'),
  // the cost of a page of space.ops (an app scrolling its history) as the store grows
  history: () => import('./bench/history.mjs'),
  // the op store's upgrade from schema 1 (one record per op), timed inside OpStore.open
  migrate: () => import('./bench/migrate.mjs'),
  // IndexedDB's cost per record: one op per record (the store's layout) against several
  records: () => import('./bench/records.mjs'),
  transport: () => import('./bench/transport.mjs'),
  idle: () => import('./bench/idle.mjs'),
  size: () => import('./bench/size.mjs'),
  peers: () => import('./bench/peers.mjs'),
  gossip: () => import('./bench/gossip.mjs'),
  // the DHT model's load from IndexedDB at join (issue 10, deliverable 1)
  coldstart: () => import('./bench/coldstart.mjs'),
  // a tab closed while it syncs: does the next page load its model or rebuild it?
  close: () => import('./bench/close.mjs'),
  // a tab joining a space larger than one introduction: seconds and bytes until it holds all
  joiner: () => import('./bench/joiner.mjs'),
};

async function main() {
  const [name, ...args] = process.argv.slice(2);
  if (!name || !(name in BENCHES)) {
    console.error(`usage: npm run bench -- <${Object.keys(BENCHES).join('|')}> [options]`);
    process.exit(2);
  }
  const bench = await BENCHES[name]();
  const result = await bench.run(args, (line) => console.log(`${name}: ${line}`));
  console.log(JSON.stringify({ bench: name, ...result }));
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main().catch((e) => {
    console.error(`bench: ${e.stack || e.message}`);
    process.exit(1);
  });
}
