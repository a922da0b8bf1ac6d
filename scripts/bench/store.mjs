// `npm run bench -- store [--ops N] [--rounds R] [--durability strict|relaxed|default]`
//
// In one headless Chromium page, N ops of the real dataset (default 10 000) are written and read
// back three ways (www/bench/store.js has the details):
//  - ours:  fennec's OpStore (IdbOpStore): one putOps call = one transaction; timeSlice + getOps;
//  - raw:   plain IndexedDB doing schema 1's work (one record per op; ours packs 16 per record
//           since 2026-12-02, so ours/raw now holds that gain too): every op hashed to its id
//           and encoded, the same key, record and two indexes, `add`, the totals record; read
//           back over the sector index with every op re-hashed;
//  - plain: the minimum: precomputed ids `put` with one index, one `getAll` to read.
// ours/raw (`write_ratio`, `read_ratio`) was fennec's own overhead for the same work while both
// had one record per op;
// plain/raw (`write_extras_cost`, `read_extras_cost`) is what the extras (integrity, the DHT's
// indexes, totals) cost on plain IndexedDB: how many times faster the same records go without
// them. All sides use the same durability (default "strict", OpStore's default). R rounds
// (default 6) on fresh databases, rotating which side goes first, with a pause before each step
// so that one side's background work (IndexedDB compaction after a big commit) lands less on
// the others. The ops/s figures are medians over rounds. A ratio is the geometric mean of each
// round's ratio: the sides of a round ran back to back under the same machine load, and with a
// multiple of three rounds an advantage of going first, second or third cancels out.
import { withBenchPage } from './page.mjs';
import { median } from './stats.mjs';
import { integer, number, oneOf, parseOptions } from './options.mjs';

const OPTIONS = {
  ops: [integer(1), 10_000],
  rounds: [integer(1), 6],
  durability: [oneOf('strict', 'relaxed', 'default'), 'strict'],
  pauseMs: [number(0), 1000],
};

export async function run(args, log) {
  const opt = parseOptions(args, OPTIONS);
  return withBenchPage('store', async (page) => {
    const data = await page.evaluate((n) => window.bench.prepare(n), opt.ops);
    log(`${data.ops} dataset ops (${data.bytes} payload bytes), ${opt.rounds} rounds, durability ${opt.durability}`);
    const rates = {
      ours_write: [], raw_write: [], plain_write: [], ours_read: [], raw_read: [], plain_read: [],
    };
    const step = async (name, fn, tag) => {
      await new Promise((r) => setTimeout(r, opt.pauseMs));
      const ms = await page.evaluate(([f, t, d]) => window.bench[f](t, d), [fn, tag, opt.durability]);
      const rate = (data.ops / ms) * 1000;
      rates[name].push(rate);
      return `${name.replace('_', ' ')} ${ms.toFixed(0)} ms (${rate.toFixed(0)} ops/s)`;
    };
    for (let r = 0; r < opt.rounds; r++) {
      const tag = `${Date.now()}-${r}`;
      const all = [['ours', 'oursWrite', 'oursRead'], ['raw', 'rawWrite', 'rawRead'], ['plain', 'plainWrite', 'plainRead']];
      const sides = [...all.slice(r % 3), ...all.slice(0, r % 3)];
      const parts = [];
      for (const [side, w] of sides) parts.push(await step(`${side}_write`, w, tag));
      for (const [side, , rd] of sides) parts.push(await step(`${side}_read`, rd, tag));
      await page.evaluate((t) => window.bench.cleanup(t), tag);
      const ratio = (a, b) => (rates[a][r] / rates[b][r]).toFixed(2);
      log(`round ${r + 1}/${opt.rounds}: ${parts.join(', ')}; ours/raw write ${ratio('ours_write', 'raw_write')} read ${ratio('ours_read', 'raw_read')}; plain/raw write ${ratio('plain_write', 'raw_write')} read ${ratio('plain_read', 'raw_read')}`);
    }
    const m = Object.fromEntries(Object.entries(rates).map(([k, v]) => [k, median(v)]));
    const paired = (a, b) => {
      const logs = rates[a].map((x, i) => Math.log(x / rates[b][i]));
      return Math.exp(logs.reduce((s, x) => s + x, 0) / logs.length);
    };
    const round = (x, d = 0) => Number(x.toFixed(d));
    return {
      ops: data.ops,
      rounds: opt.rounds,
      ours_write_ops_s: round(m.ours_write),
      raw_write_ops_s: round(m.raw_write),
      plain_write_ops_s: round(m.plain_write),
      write_ratio: round(paired('ours_write', 'raw_write'), 3),
      write_extras_cost: round(paired('plain_write', 'raw_write'), 3),
      ours_read_ops_s: round(m.ours_read),
      raw_read_ops_s: round(m.raw_read),
      plain_read_ops_s: round(m.plain_read),
      read_ratio: round(paired('ours_read', 'raw_read'), 3),
      read_extras_cost: round(paired('plain_read', 'raw_read'), 3),
    };
  });
}
