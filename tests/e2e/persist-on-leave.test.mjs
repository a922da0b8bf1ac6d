// The DHT model's slice hashes are written when a space is left (`Space::persist_now`), in
// real Chromium on IndexedDB. A bulk import (over 64 ops: `BULK_INTAKE_OPS`) holds the timed
// write back for 30 s after its quiet (`PERSIST_AFTER_INTAKE`), so a tab that left right
// after it used to leave only the watermark behind, and the next load of its store rebuilt
// the model from every op. `space.leave()` resolves once the space's task has ended, which
// is after that write has committed: right after it the `slices` store must hold the
// hashes of the imported ops' slices, not just the watermark. `peer.close()` leaves every
// joined space at once and resolves once each of them has: the same holds for each space.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import {
  installSliceRecordCount, launchBrowser, openFennecPage, pollPage, startBootstrapServer, startStaticServer,
} from './harness.mjs';

let boot, web, browser;

before(async () => {
  boot = await startBootstrapServer();
  web = await startStaticServer();
  browser = await launchBrowser();
});
after(async () => {
  await browser?.close();
  await boot?.stop();
  await web?.stop();
});

test('leaving right after a bulk import writes the imported ops\' slice hashes', async () => {
  const context = await browser.newContext();
  await installSliceRecordCount(context);
  const page = await openFennecPage(context, web.url, '/blank.html');
  const space = `persist-on-leave-${Date.now()}`;
  await page.evaluate(async (o) => {
    const { Peer } = window.fennec;
    window.peer = await Peer.connect({ bootstrapUrl: o.bootstrapUrl, signalUrl: o.signalUrl, storage: 'indexeddb' });
    window.space = await window.peer.join(o.space);
  }, { bootstrapUrl: boot.url, signalUrl: boot.signalUrl, space });
  // The empty model's watermark is written 2 s after the join: one record.
  await pollPage(page, async () => (await window.sliceRecordCount()) >= 1, undefined, 'the empty model\'s watermark');
  const before = await page.evaluate(() => window.sliceRecordCount());
  assert.equal(before, 1, 'only the watermark before the import');

  // 200 ops a day apart from 2020 on: ~200 full slices (2^9 units of 15 min, ~5.3 days)
  // change, in sectors all over the ring.
  const N = 200;
  const ops = await page.evaluate(async (n) => {
    const enc = new TextEncoder();
    const day = 86_400_000;
    const items = Array.from({ length: n }, (_, i) => ({
      payload: enc.encode(`persist-on-leave ${i}`), createdAt: Date.UTC(2020, 0, 1) + i * day,
    }));
    await window.space.publishMany(items);
    const held = (await window.space.stats()).ops;
    await window.space.leave();
    return held;
  }, N);
  assert.equal(ops, N);
  const written = await page.evaluate(() => window.sliceRecordCount());
  // Each op changes one full slice of one sector; some may share one. Far more than the
  // watermark alone either way.
  assert.ok(written > N / 2, `slice records right after leave(): ${written} (before: ${before})`);
  assert.deepEqual(page.fennecErrors.map(String), []);
  await context.close();
});

test('closing the peer right after bulk imports into two spaces writes both spaces\' slice hashes', async () => {
  const context = await browser.newContext();
  await installSliceRecordCount(context);
  const page = await openFennecPage(context, web.url, '/blank.html');
  const names = [`persist-on-close-a-${Date.now()}`, `persist-on-close-b-${Date.now()}`];
  await page.evaluate(async (o) => {
    const { Peer } = window.fennec;
    window.peer = await Peer.connect({ bootstrapUrl: o.bootstrapUrl, signalUrl: o.signalUrl, storage: 'indexeddb' });
    window.spaces = await Promise.all(o.names.map((n) => window.peer.join(n)));
  }, { bootstrapUrl: boot.url, signalUrl: boot.signalUrl, names });
  // Each empty model's watermark is written 2 s after its join.
  const watermarks = await pollPage(page, async () => {
    const counts = Object.values(await window.sliceRecordCounts());
    return counts.length === 2 && counts.every((c) => c >= 1) && counts;
  }, undefined, 'both empty models\' watermarks');
  assert.deepEqual(watermarks, [1, 1], 'only the watermarks before the imports');

  const N = 200;
  const held = await page.evaluate(async (n) => {
    const enc = new TextEncoder();
    const day = 86_400_000;
    const held = [];
    for (const [k, space] of window.spaces.entries()) {
      await space.publishMany(Array.from({ length: n }, (_, i) => ({
        payload: enc.encode(`persist-on-close ${k} ${i}`), createdAt: Date.UTC(2020, 0, 1) + i * day,
      })));
      held.push((await space.stats()).ops);
    }
    await window.peer.close();
    return held;
  }, N);
  assert.deepEqual(held, [N, N]);
  const written = Object.values(await page.evaluate(() => window.sliceRecordCounts()));
  assert.equal(written.length, 2);
  for (const w of written) assert.ok(w > N / 2, `slice records of each space right after close(): ${written}`);
  assert.deepEqual(page.fennecErrors.map(String), []);
  await context.close();
});
