// The DHT model's slice hashes are written when a space is left (`Space::persist_now`), in
// real Chromium on IndexedDB. A bulk import (over 64 ops: `BULK_INTAKE_OPS`) holds the timed
// write back for 30 s after its quiet (`PERSIST_AFTER_INTAKE`), so a tab that left right
// after it used to leave only the watermark behind, and the next load of its store rebuilt
// the model from every op. `space.leave()` resolves once the space's task has ended, which
// is after that write has committed: right after it the op store must hold the
// hashes of the imported ops' slices, not just the watermark. `peer.close()` leaves every
// joined space at once and resolves once each of them has: the same holds for each space.
// A tab closed for real (playwright's `page.close()`: `pagehide`, hidden, unload) cannot be
// waited for: the write made in those events must commit although the page is gone, which
// the next page of the same origin reads.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import {
  installSliceHashCount, launchBrowser, openFennecPage, pollPage, startBootstrapServer, startStaticServer,
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

/** Ops imported into each space. */
const N = 200;

/**
 * Joins `names` in a fresh page, waits for each empty model's watermark (written 2 s after
 * the join: one hash each), imports `N` ops into each space with `publishMany`, then ends
 * the spaces with `end` ('leave': each `space.leave()`; 'close': one `peer.close()`; 'tab
 * close': the page closed, then a new page of the origin opened). Returns each space's op
 * count before the end and its slice hashes right after it.
 */
async function importThenEnd(names, end) {
  const context = await browser.newContext();
  await installSliceHashCount(context);
  const page = await openFennecPage(context, web.url, '/blank.html');
  await page.evaluate(async (o) => {
    const { Peer } = window.fennec;
    window.peer = await Peer.connect({ bootstrapUrl: o.bootstrapUrl, signalUrl: o.signalUrl, storage: 'indexeddb' });
    window.spaces = await Promise.all(o.names.map((n) => window.peer.join(n)));
  }, { bootstrapUrl: boot.url, signalUrl: boot.signalUrl, names });
  const watermarks = await pollPage(page, async (n) => {
    const counts = Object.values(await window.sliceHashCounts());
    return counts.length === n && counts.every((c) => c >= 1) && counts;
  }, names.length, 'each empty model\'s watermark');
  assert.deepEqual(watermarks, names.map(() => 1), 'only the watermarks before the imports');

  // Ops a day apart from 2020 on: ~200 full slices (2^9 units of 15 min, ~5.3 days)
  // change, in sectors all over the ring.
  const held = await page.evaluate(async (o) => {
    const enc = new TextEncoder();
    const day = 86_400_000;
    const held = [];
    for (const [k, space] of window.spaces.entries()) {
      await space.publishMany(Array.from({ length: o.n }, (_, i) => ({
        payload: enc.encode(`persist-on-${o.end} ${k} ${i}`), createdAt: Date.UTC(2020, 0, 1) + i * day,
      })));
      held.push((await space.stats()).ops);
    }
    if (o.end === 'close') await window.peer.close();
    else if (o.end === 'leave') for (const space of window.spaces) await space.leave();
    return held;
  }, { n: N, end });
  assert.deepEqual(page.fennecErrors.map(String), []);
  let reader = page;
  if (end === 'tab close') {
    await page.close();
    reader = await openFennecPage(context, web.url, '/blank.html');
  }
  const written = Object.values(await reader.evaluate(() => window.sliceHashCounts()));
  await context.close();
  return { held, written };
}

test('leaving right after a bulk import writes the imported ops\' slice hashes', async () => {
  const { held, written } = await importThenEnd([`persist-on-leave-${Date.now()}`], 'leave');
  assert.deepEqual(held, [N]);
  // Each op changes one full slice of one sector; some may share one. Far more than the
  // watermark alone either way.
  assert.equal(written.length, 1);
  assert.ok(written[0] > N / 2, `slice hashes right after leave(): ${written}`);
});

test('closing the peer right after bulk imports into two spaces writes both spaces\' slice hashes', async () => {
  const t = Date.now();
  const { held, written } = await importThenEnd([`persist-on-close-a-${t}`, `persist-on-close-b-${t}`], 'close');
  assert.deepEqual(held, [N, N]);
  assert.equal(written.length, 2);
  for (const w of written) assert.ok(w > N / 2, `slice hashes of each space right after close(): ${written}`);
});

// Chromium aborted the write of a closing page in 4 of 8 closes before its transaction was
// committed at once (`commit()` in `put_slices`): four closes, each must keep the hashes.
test('a tab closed right after a bulk import keeps the imported ops\' slice hashes', async () => {
  for (let k = 0; k < 4; k++) {
    const { held, written } = await importThenEnd([`persist-on-tab-close-${k}-${Date.now()}`], 'tab close');
    assert.deepEqual(held, [N]);
    assert.equal(written.length, 1);
    assert.ok(written[0] > N / 2, `slice hashes after tab close ${k + 1} of 4: ${written}`);
  }
});
