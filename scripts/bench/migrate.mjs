// `npm run bench -- migrate [--ops N] [--slices S] [--rounds R]`
//
// What an app's users wait for once, the first time a new fennec opens the op store an old one
// wrote: the upgrade of a schema-1 database (one IndexedDB record per op, as fennec wrote it
// before 2026-12-02) to the current schema (ops in packs of 16: `src/browser/idb.rs`,
// `schema_v2` copies every op, `schema_v3` moves the slice hashes). In one headless Chromium
// page, each round writes N ops of the real dataset (default 10 000; past its 11 643 ops its
// lines are used again with a suffix: www/bench/store.js `prepare`) as schema 1 did and S
// full-slice hashes as schemas 1 and 2 did, one record each (default 0; the DHT model holds
// 22 587 of them for 30 000 ops; `--ops 1 --slices S` times schema 3's step nearly alone),
// all plain IndexedDB and untimed (www/bench/store.js `migrateOpen`), then times
// `OpStore.open` on it (the upgrade runs inside that open) and, as the like-for-like
// baseline, a second open of the same upgraded store (the same ops, nothing to upgrade).
// Every op must be in the store after the upgrade (totals and a time slice) and every slice
// hash in its batches, or the bench fails. Printed as one JSON line: medians over the rounds
// (default 3).
import { withBenchPage } from './page.mjs';
import { median } from './stats.mjs';
import { integer, parseOptions } from './options.mjs';

const OPTIONS = { ops: [integer(1), 10_000], slices: [integer(0), 0], rounds: [integer(1), 3] };

export async function run(args, log) {
  const opt = parseOptions(args, OPTIONS);
  return withBenchPage('store', async (page) => {
    const data = await page.evaluate((n) => window.bench.prepare(n, true), opt.ops);
    log(`${data.ops} dataset ops (${data.bytes} payload bytes), ${opt.slices} slice hashes, ${opt.rounds} rounds`);
    const upgrade = [];
    const reopen = [];
    for (let r = 0; r < opt.rounds; r++) {
      const t = await page.evaluate((a) => window.bench.migrateOpen(...a), [`migrate-${Date.now()}-${r}`, opt.slices]);
      upgrade.push(t.upgradeMs);
      reopen.push(t.reopenMs);
      log(`round ${r + 1}/${opt.rounds}: open with the schema-1 upgrade ${t.upgradeMs.toFixed(0)} ms, open again ${t.reopenMs.toFixed(0)} ms`);
    }
    const up = median(upgrade);
    return {
      ops: data.ops,
      slice_hashes: opt.slices,
      rounds: opt.rounds,
      from_schema: 1,
      upgrade_open_ms: Math.round(up),
      upgrade_ops_s: Math.round((data.ops / up) * 1000),
      reopen_ms: Math.round(median(reopen)),
    };
  });
}
