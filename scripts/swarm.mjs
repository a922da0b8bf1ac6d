#!/usr/bin/env node
// The main job: T browser tabs (separate contexts = separate users) join one space on the real
// devnet, publish the dataset split among them, a late joiner catches up, one tab reloads.
// Ends with a report; exit status 0 only if every tab holds every op.
//
//   node scripts/swarm.mjs [--tabs 8] [--ops N] [--data FILE.jsonl[.gz]] [--json] [--timeout 120]
import { parseArgs } from 'node:util';
import { startDevnet } from './devnet.mjs';
import { DEFAULT_DATASET, loadDataset } from './dataset.mjs';
import { launchBrowser, openFennecPage } from '../tests/e2e/harness.mjs';

const { values: opt } = parseArgs({
  options: {
    tabs: { type: 'string', default: '8' },
    ops: { type: 'string' },
    data: { type: 'string', default: DEFAULT_DATASET },
    json: { type: 'boolean', default: false },
    timeout: { type: 'string', default: '180' },
  },
});
const TABS = positiveInt('--tabs', opt.tabs);
const TIMEOUT_S = positiveInt('--timeout', opt.timeout);
const log = opt.json ? (...a) => console.error(...a) : (...a) => console.log(...a);

function positiveInt(name, v) {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) {
    console.error(`swarm: ${name} must be a positive integer, got ${JSON.stringify(v)}`);
    process.exit(2);
  }
  return n;
}

/** Joins the space in `page`; page-side state lives on window.swarm (www/swarm.js). */
async function join(page, net, space) {
  await page.evaluate((o) => window.swarmJoin(o), {
    bootstrapUrl: net.bootstrapUrl, signalUrl: net.signalUrl, space,
  });
}

async function publishAll(page, records) {
  const CHUNK = 500;
  for (let i = 0; i < records.length; i += CHUNK) {
    await page.evaluate((recs) => window.swarmPublish(recs), records.slice(i, i + CHUNK));
  }
}

const status = (page) => page.evaluate(() => window.swarmStatus());

async function waitUntil(pages, want, deadline, label) {
  for (;;) {
    const st = await Promise.all(pages.map(status));
    const held = st.map((s) => s.ops);
    log(`  ${label}: ops held per tab [${held.join(' ')}] of ${want}`);
    if (held.every((h) => h >= want)) return st;
    if (Date.now() > deadline) return null;
    await new Promise((r) => setTimeout(r, 1000));
  }
}

async function main() {
  const records = await loadDataset(opt.data, opt.ops ? positiveInt('--ops', opt.ops) : Infinity);
  const datasetBytes = records.reduce((n, r) => n + Buffer.byteLength(r.line), 0);
  log(`swarm: ${TABS} tabs, ${records.length} ops (${(datasetBytes / 1e6).toFixed(2)} MB) from ${opt.data}`);
  const net = await startDevnet();
  const browser = await launchBrowser();
  const space = `swarm-${Date.now()}`;
  const report = { tabs: TABS, ops: records.length, converged: false };
  try {
    const contexts = await Promise.all(Array.from({ length: TABS + 1 }, () => browser.newContext()));
    const pages = await Promise.all(contexts.slice(0, TABS).map((c) => openFennecPage(c, net.staticUrl, '/swarm.html')));
    await Promise.all(pages.map((p) => join(p, net, space)));
    log(`swarm: ${TABS} tabs joined ${space}`);

    const t0 = Date.now();
    await Promise.all(pages.map((p, i) => publishAll(p, records.filter((_, k) => k % TABS === i))));
    log(`swarm: published in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    const done = await waitUntil(pages, records.length, t0 + TIMEOUT_S * 1000, 'converging');
    report.converged = done !== null;
    report.seconds = (Date.now() - t0) / 1000;
    report.ops_per_s = records.length / report.seconds;
    const st = done ?? await Promise.all(pages.map(status));
    report.tx_bytes_per_peer = st.map((s) => s.txBytes);
    report.rx_bytes_per_peer = st.map((s) => s.rxBytes);
    report.rx_bytes_per_peer_over_dataset = Math.max(...st.map((s) => s.rxBytes)) / datasetBytes;

    const tLate = Date.now();
    const late = await openFennecPage(contexts[TABS], net.staticUrl, '/swarm.html');
    await join(late, net, space);
    const lateDone = await waitUntil([late], records.length, tLate + TIMEOUT_S * 1000, 'late joiner');
    report.late_join_seconds = lateDone ? (Date.now() - tLate) / 1000 : null;

    const before = (await status(pages[0])).ops;
    await pages[0].reload();
    await join(pages[0], net, space);
    const after = (await pages[0].evaluate(() => window.swarmStoredOps()));
    report.reload_ok = after >= before && before === records.length;
    log(`swarm: reloaded tab found ${after} of ${before} ops in IndexedDB`);
    report.converged = report.converged && lateDone !== null;
  } finally {
    await browser.close();
    await net.stop();
  }
  log('\nswarm report');
  for (const [k, v] of Object.entries(report)) log(`  ${k}: ${Array.isArray(v) ? v.join(' ') : v}`);
  if (opt.json) {
    const { tabs, ops, converged, seconds, ops_per_s, rx_bytes_per_peer_over_dataset, late_join_seconds, reload_ok } = report;
    console.log(JSON.stringify({ tabs, ops, converged, seconds, ops_per_s, rx_bytes_per_peer_over_dataset, late_join_seconds, reload_ok }));
  }
  process.exit(report.converged && report.reload_ok ? 0 : 1);
}

main().catch((e) => { console.error(`swarm: ${e.stack || e}`); process.exit(1); });
