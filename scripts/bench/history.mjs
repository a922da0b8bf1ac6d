// `npm run bench -- history [--ops 1000,10000,40000] [--pages 5] [--limit 50] [--large-limit 1000]`
//
// What a page of an app's history (`space.ops`) costs as the store grows. One headless
// Chromium page joins a fresh space with the real servers and imports ops (70-byte payloads,
// one per second of `createdAt`, `publishMany` in chunks of 1 000) until it holds each size of
// `--ops` in turn; at each size it reads `--pages` pages of `--limit` ops newest first, each
// after the last op of the one before (the app scrolling back), then one page oldest first,
// then one page of `--large-limit` newest first.
// The IndexedDB store answers a page by merging one `sector_time` cursor per sector and
// stopping at the limit (`browser/idb.rs` `held_page`), so a small page should cost the same
// as the store grows; a large one lists the range, as every page did before 2026-12-06 (1 000
// ops: a page of 50 took 53 ms (median), 10 000: 90 ms, 40 000: 207 ms); `merge_pays` picks.
// Prints, per size, the median ms of the newest-first pages, the oldest-first page's ms and
// the large page's ms.
import { launchBrowser, openFennecPage, startDevnet } from '../../tests/e2e/harness.mjs';
import { median } from './stats.mjs';
import { integer, numbers, parseOptions } from './options.mjs';

const OPTIONS = {
  ops: [numbers(1), [1000, 10_000, 40_000]],
  pages: [integer(1), 5],
  limit: [integer(1), 50],
  largeLimit: [integer(1), 1000],
};

/** Page side: imports up to each size and times the pages; `[{ ops, newest, oldest, large }]`. */
async function measure({ bootstrapUrl, signalUrl, sizes, pages, limit, largeLimit }) {
  const peer = await window.fennec.Peer.connect({ bootstrapUrl, signalUrl, relayOnly: true });
  const space = await peer.join(`history-${Date.now()}`);
  const enc = new TextEncoder();
  const out = [];
  let n = 0;
  for (const size of sizes) {
    while (n < size) {
      const items = [];
      for (const end = Math.min(size, n + 1000); n < end; n++) {
        items.push({ payload: enc.encode(`op ${n} ${'x'.repeat(60)}`), createdAt: 1_700_000_000_000 + n * 1000 });
      }
      await space.publishMany(items);
    }
    const newest = [];
    let after;
    for (let k = 0; k < pages; k++) {
      const t0 = performance.now();
      const page = await space.ops({ newestFirst: true, limit, after });
      newest.push(performance.now() - t0);
      if (page.length !== limit) throw new Error(`a page of ${page.length} ops, not ${limit}, at ${size}`);
      after = page[page.length - 1];
    }
    const time = async (options) => {
      const t0 = performance.now();
      const page = await space.ops(options);
      return [performance.now() - t0, page.length];
    };
    const [oldest, oldestLength] = await time({ limit });
    const [large, largeLength] = await time({ newestFirst: true, limit: largeLimit });
    out.push({ ops: size, newest, oldest, oldestLength, large, largeLength });
  }
  await space.leave();
  await peer.close();
  return out;
}

export async function run(args, log) {
  const opt = parseOptions(args, OPTIONS);
  const sizes = [...opt.ops].sort((a, b) => a - b);
  if (!sizes.every(Number.isInteger)) throw new RangeError(`--ops must be integers, got ${opt.ops}`);
  const net = await startDevnet();
  const browser = await launchBrowser();
  try {
    const page = await openFennecPage(await browser.newContext(), net.staticUrl);
    const got = await page.evaluate(measure, {
      bootstrapUrl: net.bootstrapUrl, signalUrl: net.signalUrl, sizes, pages: opt.pages, limit: opt.limit,
      largeLimit: opt.largeLimit,
    });
    if (page.fennecErrors.length) throw new Error(`page errors: ${page.fennecErrors.join('; ')}`);
    const sizesOut = got.map((g) => {
      if (g.oldestLength !== Math.min(opt.limit, g.ops)) throw new Error(`oldest-first page of ${g.oldestLength} ops at ${g.ops}`);
      if (g.largeLength !== Math.min(opt.largeLimit, g.ops)) throw new Error(`large page of ${g.largeLength} ops at ${g.ops}`);
      const row = {
        ops: g.ops,
        newest_first_ms: Math.round(median(g.newest)),
        oldest_first_ms: Math.round(g.oldest),
        large_page_ms: Math.round(g.large),
      };
      log(`${g.ops} ops held: newest-first pages ${g.newest.map((x) => x.toFixed(0)).join(', ')} ms; oldest-first ${g.oldest.toFixed(0)} ms; a page of ${opt.largeLimit} ${g.large.toFixed(0)} ms`);
      return row;
    });
    return { limit: opt.limit, pages: opt.pages, large_limit: opt.largeLimit, sizes: sizesOut };
  } finally {
    await browser.close();
    await net.stop();
  }
}
