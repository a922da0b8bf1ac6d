// `npm run bench -- idle [--tabs N] [--minutes 1,5,10]`
//
// Issue 9, deliverable 1: does an op published after long idle still reach every peer within
// 2 s? N tabs (default 3, separate browser contexts, IndexedDB-free `storage: "memory"`) join
// one space through the devnet's real kitsune2-bootstrap-srv + sbd with the real default
// timeouts and exchange one op each. Then, for each idle stretch in `--minutes` (default
// 1,5,10: 16 minutes in all, run one after the other), nothing is sent by the app; at the end
// of the stretch one tab (a different one each time) publishes an op, and we measure the ms
// until every other tab holds it (polled every 20 ms). Also counted: `peer` events reporting a
// live peer gone (`down`, `left`, `misbehaved`) and `error` events — both should be 0.
//
// Headless Chromium does not throttle the timers of these pages (they count as visible), so
// this measures the protocol's idle behaviour (connection idle close, catch-up pacing), not
// hidden-tab timer throttling.
import { startDevnetAndBrowser } from '../../tests/e2e/harness.mjs';
import { openTabs } from './liveness-tabs.mjs';
import { integer, numbers, parseOptions } from './options.mjs';

const OPTIONS = { tabs: [integer(2), 3], minutes: [numbers(0, { above: true }), [1, 5, 10]] };

/** ms until every page in `pages` holds `id` (polled every 20 ms), or null after `limitMs`. */
async function arrivalAll(pages, id, limitMs) {
  const t0 = Date.now();
  const pending = new Set(pages);
  while (pending.size > 0) {
    for (const p of [...pending]) {
      if (await p.evaluate((x) => window.t.has(x), id)) pending.delete(p);
    }
    if (pending.size === 0) break;
    if (Date.now() - t0 > limitMs) return null;
    await new Promise((r) => setTimeout(r, 20));
  }
  return Date.now() - t0;
}

export async function run(args, log) {
  const o = parseOptions(args, OPTIONS);
  const { net, browser, stop } = await startDevnetAndBrowser();
  try {
    const { tabs } = await openTabs(browser, net, o.tabs, `idle-bench-${Date.now()}`);
    for (const [i, p] of tabs.entries()) {
      const id = await p.evaluate((n) => window.t.publish(`warm-up from ${n}`), i);
      const ms = await arrivalAll(tabs.filter((q) => q !== p), id, 60_000);
      if (ms === null) throw new Error(`warm-up op of tab ${i} did not reach every tab in 60 s`);
    }
    log(`${o.tabs} tabs joined and exchanged one op each`);
    const deliveries = [];
    for (const [k, minutes] of o.minutes.entries()) {
      log(`idling ${minutes} min`);
      await new Promise((r) => setTimeout(r, minutes * 60_000));
      const from = tabs[k % tabs.length];
      const id = await from.evaluate((m) => window.t.publish(`after ${m} min idle`), minutes);
      const ms = await arrivalAll(tabs.filter((q) => q !== from), id, 120_000);
      log(`after ${minutes} min idle: op reached every other tab in ${ms ?? '>120000'} ms`);
      deliveries.push({ idleMinutes: minutes, deliveryMs: ms });
    }
    const gone = (await Promise.all(tabs.map((p) => p.evaluate(() => window.t.peerEvents
      .filter((e) => ['down', 'left', 'misbehaved'].includes(e.kind)).map((e) => `${e.kind} ${e.url}`))))).flat();
    const errors = (await Promise.all(tabs.map((p) => p.evaluate(() => window.t.errors)))).flat();
    return {
      tabs: o.tabs,
      deliveries,
      goalMs: 2000,
      allWithinGoal: deliveries.every((d) => d.deliveryMs !== null && d.deliveryMs < 2000),
      falseGoneEvents: gone.length,
      errorEvents: errors.length,
      gone: gone.slice(0, 10),
      errors: errors.slice(0, 10),
    };
  } finally {
    await stop();
  }
}
