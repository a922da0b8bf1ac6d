// `npm run bench -- close [--ops 30000] [--after-ms 1000,2000,3000,4000,5000,6000,8000,12000]
//                         [--end close|hide-kill|kill] [--kill-after-ms 200]`
//
// A tab closed while it syncs: does the next page of its origin find a DHT model that matches
// its op store, or must it rebuild the model from every op? Tab A (in-memory store) publishes
// `--ops` ops of 300 random bytes, an hour apart from 2024 on. For each time in `--after-ms`, a
// fresh tab B (its own browser context, IndexedDB) joins A's space, is closed that long after
// its join (playwright `page.close()`: `pagehide`, hidden, unload), and a new page of B's
// origin reads B's database with plain IndexedDB: the op count the model's watermark record
// says its hashes reflect (`null`: no watermark), and the op count of the store's totals. Equal
// counts: the next join loads the hashes; otherwise it rebuilds them from every op
// (`src/core/dht/store.rs`, `load`). Every close falls within `PERSIST_AFTER_INTAKE` (30 s)
// of B's intake, so only the writes made at hide and leave (`Space::persist_now`) can keep it,
// and only if no op write of B's holds the database (`OpStore::abandon_writes`).
//
// `--end hide-kill`: instead of a close, B is hidden (`document.hidden` true and a
// `visibilitychange`, as a switch to another app does) and its renderer killed
// `--kill-after-ms` later (DevTools `Page.crash`: no `pagehide`, as a mobile browser's kill of
// a background tab). Only the write made at hide can keep the model, and nothing aborts the op
// writes it may queue behind. `--end kill`, the control: the renderer is killed with no hide
// first (a crash).
import { launchBrowser, openFennecPage, startDevnet } from '../../tests/e2e/harness.mjs';
import { openBulkTab } from './bulk-tab.mjs';
import { integer, number, numbers, oneOf, parseOptions } from './options.mjs';

const OPTIONS = {
  ops: [integer(500), 30_000],
  afterMs: [numbers(0), [1000, 2000, 3000, 4000, 5000, 6000, 8000, 12000]],
  end: [oneOf('close', 'hide-kill', 'kill'), 'close'],
  killAfterMs: [number(0), 200],
};

/** Page side: `{ reflected, stored }` of the origin's one fennec op store database. */
async function readModel() {
  const names = (await indexedDB.databases()).map((d) => d.name).filter((n) => n.startsWith('fennec-ops:'));
  if (names.length !== 1) throw new Error(`expected one op store database, found ${names.length}`);
  const req = (r) => new Promise((resolve, reject) => {
    r.onsuccess = () => resolve(r.result);
    r.onerror = () => reject(r.error);
  });
  const db = await req(indexedDB.open(names[0]));
  try {
    const tx = db.transaction(['slice_batches', 'info']);
    // The watermark's hashes are under arc [0, 0] (WATERMARK_ARC); the value at its highest
    // slice index, latest written, is the reflected op count, 8 bytes big-endian. Batches
    // are {m: 5 numbers per hash (arc start, arc end, index high, index low, end in d), d}.
    let reflected = null;
    let top = -1;
    for (const { m, d } of await req(tx.objectStore('slice_batches').getAll())) {
      for (let i = 0; i < m.length; i += 5) {
        const index = m[i + 2] * 2 ** 32 + m[i + 3];
        if (m[i] !== 0 || m[i + 1] !== 0 || index < top) continue;
        const from = i === 0 ? 0 : m[i - 1];
        top = index;
        reflected = Number(new DataView(d.buffer, d.byteOffset + from, 8).getBigUint64(0));
      }
    }
    const totals = await req(tx.objectStore('info').get('totals'));
    return { reflected, stored: totals?.c ?? 0 };
  } finally {
    db.close();
  }
}

/**
 * Kills `page`'s renderer without `pagehide` (DevTools `Page.crash`); with `hideMs` a number,
 * first hides it as an app switch does (`document.hidden`, `visibilityState` and a
 * `visibilitychange`, which fennec answers with its model write) and kills it that long after.
 */
async function kill(context, page, hideMs) {
  if (hideMs !== null) await hide(page, hideMs);
  const cdp = await context.newCDPSession(page);
  const crashed = new Promise((r) => page.once('crash', r));
  // The call never answers: the renderer is gone.
  cdp.send('Page.crash').catch(() => {});
  await crashed;
}

async function hide(page, forMs) {
  await page.evaluate(() => {
    Object.defineProperty(document, 'hidden', { configurable: true, get: () => true });
    Object.defineProperty(document, 'visibilityState', { configurable: true, get: () => 'hidden' });
    document.dispatchEvent(new Event('visibilitychange'));
  });
  await new Promise((r) => setTimeout(r, forMs));
}

export async function run(args, log) {
  const o = parseOptions(args, OPTIONS);
  const net = await startDevnet();
  const browser = await launchBrowser();
  try {
    const space = `close-bench-${Date.now()}`;
    const opts = { bootstrapUrl: net.bootstrapUrl, signalUrl: net.signalUrl, space, ops: o.ops };
    await openBulkTab(browser, net, opts);
    log(`tab A holds ${o.ops} ops`);
    const closes = [];
    for (const afterMs of o.afterMs) {
      const context = await browser.newContext();
      const b = await openFennecPage(context, net.staticUrl, '/blank.html');
      await b.evaluate(async (x) => {
        const { Peer } = window.fennec;
        window.peer = await Peer.connect({ bootstrapUrl: x.bootstrapUrl, signalUrl: x.signalUrl, storage: 'indexeddb' });
        window.space = await window.peer.join(x.space);
      }, opts);
      await new Promise((r) => setTimeout(r, afterMs));
      const held = await b.evaluate(async () => (await window.space.stats()).ops);
      if (o.end === 'close') await b.close();
      else await kill(context, b, o.end === 'hide-kill' ? o.killAfterMs : null);
      const next = await openFennecPage(context, net.staticUrl, '/blank.html');
      const model = await next.evaluate(readModel);
      const kept = model.reflected === model.stored;
      log(`${{ close: 'closed', 'hide-kill': 'hidden and killed', kill: 'killed' }[o.end]} ${afterMs} ms after its join holding ${held} ops: watermark reflects ${model.reflected}, store holds ${model.stored}: ${kept ? 'kept' : 'rebuild'}`);
      closes.push({ afterMs, held, ...model, kept });
      await context.close();
    }
    const kept = closes.filter((c) => c.kept).length;
    const end = o.end === 'hide-kill' ? { end: o.end, kill_after_ms: o.killAfterMs } : { end: o.end };
    return { ops: o.ops, ...end, closes: closes.length, kept, rebuilt: closes.length - kept, detail: closes };
  } finally {
    await browser.close();
    await net.stop();
  }
}
