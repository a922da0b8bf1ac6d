// `npm run bench -- records [--ops N] [--contexts C] [--per P] [--batch B] [--rounds R]`
//
// What IndexedDB charges per record, measured where the swarm pays it: C browser contexts
// (default 8, the main job's tab count) each write the same N dataset ops (default all 11 643)
// at once, in B-op transactions (default 500, the swarm's publishMany size, durability
// "strict"), two ways (www/bench/records.js has the layouts):
//  - per_op: one record per op, the op store's schema-1 layout (two indexes, `add`); schema 2
//    (src/browser/idb.rs, since 2026-12-02) is close to `packed`;
//  - packed: P ops per record (default 16) with multiEntry indexes on the op ids and on
//    [sector, created_at], so every op is still found by id and by time slice.
// Same ops, bytes, transactions and durability; only the record count differs. R rounds
// (default 4) alternate which layout goes first. Prints ops/s over all contexts (median over
// rounds) and `packed_speedup`, the geometric mean of each round's packed/per-op ratio.
// Chromium's IndexedDB runs in the browser process: C contexts share it, as the swarm's tabs do.
import { launchBrowser, openFennecPage, startStaticServer } from '../../tests/e2e/harness.mjs';
import { median } from './stats.mjs';
import { integer, parseOptions } from './options.mjs';

const OPTIONS = {
  ops: [integer(1), 11_643],
  contexts: [integer(1), 8],
  per: [integer(1), 16],
  batch: [integer(1), 500],
  rounds: [integer(1), 4],
};

export async function run(args, log) {
  const opt = parseOptions(args, OPTIONS);
  const web = await startStaticServer();
  const browser = await launchBrowser();
  try {
    const pages = await Promise.all(Array.from({ length: opt.contexts }, async () => {
      const page = await openFennecPage(await browser.newContext(), web.url);
      await page.evaluate(async () => { window.bench = await import('/bench/records.js'); });
      return page;
    }));
    const data = (await Promise.all(pages.map((p) => p.evaluate((n) => window.bench.prepare(n), opt.ops))))[0];
    log(`${opt.contexts} contexts x ${data.ops} ops (${data.bytes} bytes), ${opt.batch} ops a transaction, ${opt.per} ops a packed record, ${opt.rounds} rounds`);
    const rates = { per_op: [], packed: [] };
    /** Every context writes at once; ops/s over all of them (wall clock of the slowest). */
    const step = async (layout, tag) => {
      const t0 = Date.now();
      await Promise.all(pages.map((p, i) => p.evaluate(([l, t, b, per]) => (l === 'per_op'
        ? window.bench.perOp(t, b) : window.bench.packed(t, b, per)), [layout, `${tag}-${i}`, opt.batch, opt.per])));
      const s = (Date.now() - t0) / 1000;
      rates[layout].push((opt.contexts * data.ops) / s);
      return `${layout} ${s.toFixed(2)} s`;
    };
    for (let r = 0; r < opt.rounds; r++) {
      const order = r % 2 ? ['packed', 'per_op'] : ['per_op', 'packed'];
      const parts = [];
      for (const layout of order) parts.push(await step(layout, `${Date.now()}-${r}`));
      log(`round ${r + 1}/${opt.rounds}: ${parts.join(', ')}; packed/per-op ${(rates.packed[r] / rates.per_op[r]).toFixed(2)}`);
    }
    const errors = pages.flatMap((p) => p.fennecErrors);
    if (errors.length) throw new Error(`page errors: ${errors.join('; ')}`);
    const logs = rates.packed.map((x, i) => Math.log(x / rates.per_op[i]));
    return {
      contexts: opt.contexts,
      ops: data.ops,
      per: opt.per,
      batch: opt.batch,
      rounds: opt.rounds,
      per_op_ops_s: Math.round(median(rates.per_op)),
      packed_ops_s: Math.round(median(rates.packed)),
      packed_speedup: Number(Math.exp(logs.reduce((s, x) => s + x, 0) / logs.length).toFixed(3)),
    };
  } finally {
    await browser.close();
    await web.stop();
  }
}
