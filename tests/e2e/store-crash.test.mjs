// Crash safety of the IndexedDB op store: an op acknowledged by `OpStore.putOps` survives the
// tab crashing in the middle of a stream of writes.
//
// How the crash is made: CDP `Page.crash` kills the page's renderer process on the spot, in
// the middle of whatever it is doing (like an out-of-memory kill or a renderer bug): no more
// JavaScript runs, no `beforeunload`/`pagehide`, the transaction in flight is abandoned.
// `page.close({ runBeforeUnload: false })` would not do: it tears the page down in order (the
// renderer is alive to finish its task and close its connections). IndexedDB's data lives in
// the browser process, which survives a renderer crash, exactly as it does when a real tab
// crashes; a new page of the same browser context (same origin, same storage) then reopens the
// database. A power cut is the case `durability: "strict"` (the default) is for; it cannot be
// simulated here.
//
// Every burst is one putOps call (one transaction), so the test also checks atomicity: after
// the crash each burst is in the database entirely or not at all.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { gunzipSync } from 'node:zlib';
import { launchBrowser, openFennecPage, startStaticServer } from './harness.mjs';

const BURST = 50;
const CRASH_AFTER_BURSTS = 40;
const WAIT_LIMIT_MS = 180_000; // a guard against a hung page, not a speed check
const b64url = (s) => Buffer.from(s).toString('base64url');
const SPACE = b64url('store-crash-test');
const AGENT = b64url('store-crash-agent');

/** The dataset's distinct lines in file order, as www/lib/dataset.js reads them. */
async function datasetLines() {
  const gz = await readFile(new URL('../../www/data/commits.jsonl.gz', import.meta.url));
  const seen = new Set();
  return gunzipSync(gz).toString('utf8').split('\n').filter((l) => l !== '' && !seen.has(l) && seen.add(l));
}

let web;
let browser;
before(async () => {
  web = await startStaticServer();
  browser = await launchBrowser();
});
after(async () => {
  await browser?.close();
  await web?.stop();
});

test('every acknowledged op survives a renderer crash mid-stream, intact', async () => {
  const lines = await datasetLines();
  const context = await browser.newContext();
  const page = await openFennecPage(context, web.url);

  // Acknowledgements reach Node as they happen: [op id, dataset index] per op of a burst.
  const acked = new Map(); // op id -> dataset index
  let bursts = 0;
  let enough;
  const reachedCrashPoint = new Promise((resolve) => { enough = resolve; });
  let writerFinished = false;
  await page.exposeFunction('fennecAck', (entries) => {
    for (const [id, index] of entries) acked.set(id, index);
    bursts += 1;
    if (bursts >= CRASH_AFTER_BURSTS) enough();
  });
  await page.exposeFunction('fennecWriterDone', (err) => { writerFinished = err || true; });

  // Start the writer and return at once; it runs until the crash.
  await page.evaluate(([space, agent, burst]) => {
    (async () => {
      const { OpStore } = window.fennec;
      const { loadDatasetOps } = await import('/lib/dataset.js');
      const ops = await loadDatasetOps();
      const store = await OpStore.open(space, agent, { durability: 'strict' });
      // Never more than one acknowledgement ahead of Node, so the crash finds the stream
      // running (a write in flight), however fast this machine is.
      let previousAck = Promise.resolve();
      for (let i = 0; i < ops.length; i += burst) {
        const batch = ops.slice(i, i + burst).map(({ payload, createdAt }) => ({ payload, createdAt }));
        const ids = await store.putOps(batch);
        const ack = window.fennecAck(ids.map((id, j) => [id, i + j]));
        await previousAck;
        previousAck = ack;
      }
      window.fennecWriterDone();
    })().catch((e) => window.fennecWriterDone(String(e)));
  }, [SPACE, AGENT, BURST]);

  let guard;
  await Promise.race([
    reachedCrashPoint,
    new Promise((_, reject) => {
      guard = setTimeout(() => reject(new Error(`only ${bursts} bursts acknowledged in ${WAIT_LIMIT_MS} ms`)), WAIT_LIMIT_MS);
    }),
  ]);
  clearTimeout(guard);

  const cdp = await context.newCDPSession(page);
  const crashed = page.waitForEvent('crash');
  cdp.send('Page.crash').catch(() => {}); // never answers: the renderer is gone
  await crashed;
  assert.equal(writerFinished, false, 'the crash came in the middle of the stream');
  assert.ok(acked.size >= CRASH_AFTER_BURSTS * BURST, `${acked.size} ops acknowledged`);
  assert.ok(acked.size < lines.length, 'not everything was written before the crash');

  // A new page of the same context (same origin, same IndexedDB) reopens the store.
  const again = await openFennecPage(context, web.url);
  const seen = await again.evaluate(async ([space, agent, ids]) => {
    const { OpStore, opId } = window.fennec;
    const store = await OpStore.open(space, agent);
    const got = await store.getOps(ids);
    const dec = new TextDecoder();
    return {
      ops: got.map((o) => ({
        id: o.id,
        reverified: opId(o.payload, o.createdAt) === o.id,
        line: dec.decode(o.payload),
        createdAt: o.createdAt,
      })),
    };
  }, [SPACE, AGENT, [...acked.keys()]]);

  assert.equal(seen.ops.length, acked.size, 'every acknowledged op is there');
  for (const o of seen.ops) {
    const index = acked.get(o.id);
    assert.ok(o.reverified, `op ${o.id}: its id re-verifies against its data`);
    assert.equal(o.line, lines[index], `op ${o.id}: payload is dataset line ${index}`);
    assert.equal(o.createdAt, JSON.parse(lines[index]).ts, `op ${o.id}: createdAt is the line's ts`);
  }

  // Atomicity: each burst (one transaction) is there entirely or not at all, the bursts
  // there are the first ones (they were written one after the other), at least every
  // acknowledged one (the one in flight may have committed without its acknowledgement
  // reaching us), and the totals record agrees with what is stored.
  const check = await again.evaluate(async ([space, agent, burst]) => {
    const { OpStore, opId } = window.fennec;
    const { loadDatasetOps } = await import('/lib/dataset.js');
    const store = await OpStore.open(space, agent);
    const present = new Set(await store.timeSlice(Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER));
    const ops = await loadDatasetOps();
    const perBurst = [];
    ops.forEach((o, i) => {
      const b = Math.floor(i / burst);
      perBurst[b] = (perBurst[b] || 0) + (present.has(opId(o.payload, o.createdAt)) ? 1 : 0);
    });
    const stored = await store.getOps([...present]);
    return {
      perBurst,
      present: present.size,
      bytes: stored.reduce((s, o) => s + o.payload.length + 9, 0),
      totals: await store.totals(),
    };
  }, [SPACE, AGENT, BURST]);
  const size = (b) => Math.min(BURST, lines.length - b * BURST);
  let whole = check.perBurst.findIndex((n, b) => n !== size(b));
  if (whole < 0) whole = check.perBurst.length;
  assert.ok(whole >= acked.size / BURST, `${whole} whole bursts stored, ${acked.size / BURST} acknowledged`);
  assert.ok(check.perBurst.slice(whole).every((n) => n === 0), `bursts after the first ${whole} are absent: ${check.perBurst.slice(whole, whole + 3)}`);
  assert.deepEqual(check.totals, { count: check.present, bytes: check.bytes }, 'totals match the stored ops');

  // The database is usable: the rest of the dataset and a new op can be written and read.
  const after = await again.evaluate(async ([space, agent]) => {
    const { OpStore } = window.fennec;
    const { loadDatasetOps } = await import('/lib/dataset.js');
    const store = await OpStore.open(space, agent);
    const ops = (await loadDatasetOps()).map(({ payload, createdAt }) => ({ payload, createdAt }));
    const ids = await store.putOps([...ops, { payload: new TextEncoder().encode('after the crash'), createdAt: 1 }]);
    const [fresh] = await store.getOps([ids[ids.length - 1]]);
    return {
      freshLine: new TextDecoder().decode(fresh.payload),
      count: (await store.totals()).count,
      total: ops.length + 1,
    };
  }, [SPACE, AGENT]);
  assert.equal(after.freshLine, 'after the crash');
  assert.equal(after.count, after.total, 'the whole dataset plus one op, each once');
  assert.deepEqual(again.fennecErrors, []);
  await context.close();
});
