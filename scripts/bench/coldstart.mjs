// `npm run bench -- coldstart [--ops N] [--runs R]`
//
// Issue 10, deliverable 1: the DHT model's load from IndexedDB at join, measured in headless
// Chromium with the real servers. One page joins a fresh space and imports N ops (default
// 100 000: 100-byte payloads, created one every 5 minutes back from now, so that ~350 days
// of full time slices hold them) with `publishMany` in chunks of 5 000, then leaves and
// closes. New pages of the same browser context (same origin, so the same IndexedDB
// database and agent key) then join the space again:
//   1. a FIRST load: no slice hash is stored yet (the importing page left within its intake's
//      quiet, `PERSIST_AFTER_INTAKE`), so the model is rebuilt from every op key. This page
//      stays until the slice hashes it computed are in the database (`slice_batches`, read
//      with plain IndexedDB, polled every 100 ms, at most 60 s; `PERSIST_INTERVAL` is 2 s);
//   2. R WARM loads (default 3): the persisted hashes are read back and only the recent ops
//      are listed (`core/dht/store.rs` `load`).
// For each we record:
//   join_ms:  `peer.join()` called → resolved;
//   load_ms:  `peer.join()` called → `stats().gossip.opCount` equals N (the space's driver
//             has built the DHT model from the store: `Space::load_model`; polled every 20 ms).
// Printed as one JSON line: the first load, and the medians of the warm ones.
import { installSliceHashCount, launchBrowser, openFennecPage, startDevnet } from '../../tests/e2e/harness.mjs';
import { median } from './stats.mjs';
import { integer, parseOptions } from './options.mjs';

const OPTIONS = { ops: [integer(1), 100_000], runs: [integer(1), 3] };

/** Page side: join `space` and import `n` ops; resolves with the import time in ms. */
async function importOps({ bootstrapUrl, signalUrl, space, n }) {
  const peer = await window.fennec.Peer.connect({ bootstrapUrl, signalUrl, relayOnly: true });
  const s = await peer.join(space);
  const now = Date.now();
  const t0 = performance.now();
  for (let k = 0; k < n; k += 5000) {
    const items = [];
    for (let j = k; j < Math.min(n, k + 5000); j++) {
      const payload = new Uint8Array(100);
      new DataView(payload.buffer).setUint32(0, j);
      crypto.getRandomValues(payload.subarray(4));
      items.push({ payload, createdAt: now - j * 300_000 });
    }
    await s.publishMany(items);
  }
  const ms = performance.now() - t0;
  const ops = (await s.stats()).ops;
  await s.leave();
  await peer.close();
  return { ms, ops };
}

/**
 * Page side: join `space` again; the times to `join` resolving and to the model holding `n`.
 * With `hold`, stays joined until the space's database has slice hashes (or 60 s passed),
 * and reports how many it has (`window.sliceHashCount`, see `installSliceHashCount`).
 */
async function rejoin({ bootstrapUrl, signalUrl, space, n, hold }) {
  const peer = await window.fennec.Peer.connect({ bootstrapUrl, signalUrl, relayOnly: true });
  const t0 = performance.now();
  const s = await peer.join(space);
  const joinMs = performance.now() - t0;
  let count = 0;
  while (performance.now() - t0 < 120_000) {
    count = (await s.stats()).gossip?.opCount ?? 0;
    if (count >= n) break;
    await new Promise((r) => setTimeout(r, 20));
  }
  const loadMs = performance.now() - t0;
  let sliceHashes = null;
  if (hold) {
    const held = performance.now();
    sliceHashes = 0;
    while (sliceHashes === 0 && performance.now() - held < 60_000) {
      await new Promise((r) => setTimeout(r, 100));
      sliceHashes = await window.sliceHashCount();
    }
  }
  await s.leave();
  await peer.close();
  return { joinMs, loadMs, count, sliceHashes };
}

export async function run(args, log) {
  const opt = parseOptions(args, OPTIONS);
  const net = await startDevnet();
  const browser = await launchBrowser();
  try {
    const context = await browser.newContext();
    await installSliceHashCount(context);
    const servers = { bootstrapUrl: net.bootstrapUrl, signalUrl: net.signalUrl };
    const space = `coldstart-${Date.now()}`;
    const first = await openFennecPage(context, net.staticUrl);
    const imp = await first.evaluate(importOps, { ...servers, space, n: opt.ops });
    if (imp.ops !== opt.ops) throw new Error(`imported ${imp.ops} ops, not ${opt.ops}`);
    log(`${opt.ops} ops imported in ${imp.ms.toFixed(0)} ms`);
    await first.close();
    const load = async (hold) => {
      const page = await openFennecPage(context, net.staticUrl);
      const m = await page.evaluate(rejoin, { ...servers, space, n: opt.ops, hold });
      if (m.count !== opt.ops) throw new Error(`the model holds ${m.count} ops after 120 s, not ${opt.ops}`);
      if (page.fennecErrors.length) throw new Error(`page errors: ${page.fennecErrors.join('; ')}`);
      await page.close();
      return m;
    };
    const cold = await load(true);
    log(`first load: join ${cold.joinMs.toFixed(0)} ms, model loaded ${cold.loadMs.toFixed(0)} ms; ${cold.sliceHashes} slice hashes persisted`);
    if (cold.sliceHashes === 0) throw new Error('no slice hash was persisted within 60 s: a warm load cannot be measured');
    const joins = [];
    const loads = [];
    for (let r = 0; r < opt.runs; r++) {
      const m = await load(false);
      log(`warm load ${r + 1}/${opt.runs}: join ${m.joinMs.toFixed(0)} ms, model loaded ${m.loadMs.toFixed(0)} ms`);
      joins.push(m.joinMs);
      loads.push(m.loadMs);
    }
    return {
      ops: opt.ops,
      runs: opt.runs,
      import_ms: Math.round(imp.ms),
      first_join_ms: Math.round(cold.joinMs),
      first_load_ms: Math.round(cold.loadMs),
      slice_hashes_persisted: cold.sliceHashes,
      warm_join_ms: Math.round(median(joins)),
      warm_load_ms: Math.round(median(loads)),
    };
  } finally {
    await browser.close();
    await net.stop();
  }
}
