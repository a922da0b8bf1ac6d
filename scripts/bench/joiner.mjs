// `npm run bench -- joiner [--ops 35000] [--after-ms 3000] [--runs 3]`
//
// A large joiner: tab A (in-memory store) publishes `--ops` ops of 300 random bytes, an hour
// apart from 2024 on, in batches of 500 (`publishMany`). For each of `--runs` runs, a fresh
// tab B (its own browser context, IndexedDB) joins A's space `--after-ms` after A's import
// ended (the first run) or after the previous B closed. A introduces its latest ops to B
// (`SpaceConfig::introduce_recent_ops`, at most `MAX_INTRODUCED_OPS`, 16 384, and only ops
// published in the last 120 s: with `--after-ms 125000` none); gossip rounds bring the rest. Figures per run: seconds from B's `join` resolving until it holds every op
// (polled every 50 ms), the op count it held 1, 2, 3 and 5 s after its join, and the bytes it
// received per kind (`stats().rxBytesByKind`) against the ops' bytes (`opBytes` of A).
import { launchBrowser, openFennecPage, startDevnet } from '../../tests/e2e/harness.mjs';
import { openBulkTab } from './bulk-tab.mjs';
import { integer, number, parseOptions } from './options.mjs';

const POLL_MS = 50;
const HELD_AT_S = [1, 2, 3, 5];
const GIVE_UP_MS = 120_000;

const OPTIONS = { ops: [integer(1), 35_000], afterMs: [number(0), 3000], runs: [integer(1), 3] };

/** Joins B and polls until it holds `ops` ops; returns the run's figures. */
async function joinAndCatchUp(browser, net, opts) {
  const context = await browser.newContext();
  try {
    const b = await openFennecPage(context, net.staticUrl, '/blank.html');
    await b.evaluate(async (x) => {
      const { Peer } = window.fennec;
      window.peer = await Peer.connect({ bootstrapUrl: x.bootstrapUrl, signalUrl: x.signalUrl, storage: 'indexeddb' });
      window.space = await window.peer.join(x.space);
      window.joinedAt = performance.now();
    }, opts);
    // Polled in the page, so the figures are the page's clock, not playwright's round trips.
    const r = await b.evaluate(async (x) => {
      const heldAt = {};
      for (;;) {
        const s = await window.space.stats();
        const t = performance.now() - window.joinedAt;
        for (const at of x.heldAtS) if (!(at in heldAt) && t >= at * 1000) heldAt[at] = s.ops;
        if (s.ops >= x.ops || t > x.giveUpMs) {
          return { seconds: s.ops >= x.ops ? t / 1000 : null, held: s.ops, heldAt, rx: s.rxBytes, rxByKind: s.rxBytesByKind, gossip: s.gossip };
        }
        await new Promise((res) => setTimeout(res, x.pollMs));
      }
    }, { ...opts, heldAtS: HELD_AT_S, giveUpMs: GIVE_UP_MS, pollMs: POLL_MS });
    await b.evaluate(() => window.peer.close());
    return r;
  } finally {
    await context.close();
  }
}

export async function run(args, log) {
  const o = parseOptions(args, OPTIONS);
  const net = await startDevnet();
  const browser = await launchBrowser();
  try {
    const space = `joiner-bench-${Date.now()}`;
    const opts = { bootstrapUrl: net.bootstrapUrl, signalUrl: net.signalUrl, space, ops: o.ops };
    const { opBytes } = await openBulkTab(browser, net, opts);
    log(`tab A holds ${o.ops} ops (${opBytes} B)`);
    const runs = [];
    for (let i = 0; i < o.runs; i++) {
      await new Promise((r) => setTimeout(r, o.afterMs));
      const r = await joinAndCatchUp(browser, net, opts);
      const g = r.gossip;
      log(`run ${i + 1}: ${r.seconds === null ? `gave up holding ${r.held}` : `held every op in ${r.seconds.toFixed(2)} s`}; held at ${JSON.stringify(r.heldAt)}; rx ${(r.rx / opBytes).toFixed(3)}x the ops, by kind ${JSON.stringify(r.rxByKind)}; rounds initiated ${g?.initiated} completed ${g?.completed} deferred ${g?.deferred}`);
      runs.push({ seconds: r.seconds, held_at: r.heldAt, rx_over_ops: r.rx / opBytes, rx_by_kind: r.rxByKind, rounds_completed: g?.completed ?? null });
    }
    return { ops: o.ops, op_bytes: opBytes, after_ms: o.afterMs, runs };
  } finally {
    await browser.close();
    await net.stop();
  }
}
