// Tab A of the `close` and `joiner` benchmarks: a tab with an in-memory store that publishes
// `ops` ops of 300 random bytes, an hour apart from 2024 on, in batches of 500 (`publishMany`).
import { openFennecPage } from '../../tests/e2e/harness.mjs';

/**
 * Opens tab A in its own context, joins `space` on `net` and publishes the ops; resolves to
 * `{ page, opBytes }` (`opBytes`: the ops' bytes as its `stats()` counts them) once they are
 * stored.
 */
export async function openBulkTab(browser, net, { space, ops }) {
  const page = await openFennecPage(await browser.newContext(), net.staticUrl, '/blank.html');
  const opBytes = await page.evaluate(async (x) => {
    const { Peer } = window.fennec;
    window.peer = await Peer.connect({ bootstrapUrl: x.bootstrapUrl, signalUrl: x.signalUrl, storage: 'memory' });
    window.space = await window.peer.join(x.space);
    const hour = 3_600_000;
    for (let first = 0; first < x.ops; first += 500) {
      const n = Math.min(500, x.ops - first);
      await window.space.publishMany(Array.from({ length: n }, (_, i) => ({
        payload: crypto.getRandomValues(new Uint8Array(300)), createdAt: Date.UTC(2024, 0, 1) + (first + i) * hour,
      })));
    }
    return (await window.space.stats()).opBytes;
  }, { bootstrapUrl: net.bootstrapUrl, signalUrl: net.signalUrl, space, ops });
  return { page, opBytes };
}
