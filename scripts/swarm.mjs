#!/usr/bin/env node
// The main job: T browser tabs (separate contexts = separate users) join one space on the real
// devnet, publish the dataset split among them, a late joiner catches up, one tab reloads.
// Ends with a report; exit status 0 only if every tab holds every op.
//
//   node scripts/swarm.mjs [--tabs 8] [--ops N] [--data FILE.jsonl[.gz]] [--json] [--timeout 120]
//                          [--storage indexeddb|memory] [--mesh-first]
// `--storage memory` runs the tabs on the in-memory op store: what the job costs without
// IndexedDB (its reload step is skipped, since nothing is kept). `--mesh-first` starts the
// publish phase only once every tab is connected to every other (`mesh_seconds`).
//
// As a module (scripts/bench/peers.mjs runs the same job with Yjs): `runJob(driver, opts)` with a
// driver { setup(browser), openPage(context), join(page), publish(page, records), status(page),
// storedOps(page), stop(), keepsOps }; `fennecDriver(net, { storage })` is this project's.
import path from 'node:path';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { startDevnet } from './devnet.mjs';
import { DEFAULT_DATASET, loadDataset } from './dataset.mjs';
import { launchBrowser, openFennecPage } from '../tests/e2e/harness.mjs';

/** Records per page.evaluate call: one `swarmPublish` batch (fennec) or one Yjs transaction. */
export const CHUNK = 500;

function positiveInt(name, v) {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) {
    console.error(`swarm: ${name} must be a positive integer, got ${JSON.stringify(v)}`);
    process.exit(2);
  }
  return n;
}

/**
 * The fennec side of the job on devnet `net` ({ bootstrapUrl, signalUrl, staticUrl }); page
 * side in www/swarm.js. `storage`: the tabs' op store, "indexeddb" (the default) or "memory".
 */
export function fennecDriver(net, { storage = 'indexeddb' } = {}) {
  const space = `swarm-${Date.now()}`;
  const join = (page) => page.evaluate((o) => window.swarmJoin(o), {
    bootstrapUrl: net.bootstrapUrl, signalUrl: net.signalUrl, space, storage,
  });
  return {
    name: 'fennec',
    space,
    keepsOps: storage !== 'memory',
    openPage: (context) => openFennecPage(context, net.staticUrl, '/swarm.html'),
    join,
    publish: async (page, records) => {
      for (let i = 0; i < records.length; i += CHUNK) {
        await page.evaluate((recs) => window.swarmPublish(recs), records.slice(i, i + CHUNK));
      }
    },
    /** { ops, txBytes, rxBytes, ... } (window.swarmStatus). */
    status: (page) => page.evaluate(() => window.swarmStatus()),
    storedOps: (page) => page.evaluate(() => window.swarmStoredOps()),
  };
}

/** Dataset facts: ops are content-addressed, so identical records (the bundled dataset has 3) are one op. */
export function datasetFacts(records) {
  return {
    distinct: new Set(records.map((r) => `${r.createdAt}\n${r.line}`)).size,
    bytes: records.reduce((n, r) => n + Buffer.byteLength(r.line), 0),
  };
}

/** How often `waitUntil` logs the tabs' op counts. */
const LOG_MS = 1000;

/**
 * Reads the op counts of `pages` every `pollMs` until each holds `want` (resolves to their
 * statuses) or `deadline` passes (null). `pollMs` is the resolution of the seconds measured.
 * A read is a `stats()` per tab, which reads IndexedDB too, in a job bound by IndexedDB: the
 * 8 publishing tabs are read once a second, as in every figure before session 30.
 */
async function waitUntil(driver, pages, want, deadline, label, log, pollMs = 1000) {
  for (let lastLog = 0; ; await new Promise((r) => setTimeout(r, pollMs))) {
    const st = await Promise.all(pages.map(driver.status));
    const held = st.map((s) => s.ops);
    const done = held.every((h) => h >= want);
    if (!done && Date.now() - lastLog < LOG_MS) continue;
    lastLog = Date.now();
    log(`  ${label}: ops held per tab [${held.join(' ')}] of ${want}`);
    if (process.env.FENNEC_SWARM_GOSSIP) {
      const lt = await Promise.all(pages.map((p) => p.evaluate(() => window.__longTasks)));
      log(`    long tasks (count/total ms/max ms): ${lt.map((x) => x && `${x.n}/${Math.round(x.total)}/${Math.round(x.max)}`).join(' ')}`);
      for (const s of st) {
        const g = s.gossip;
        if (g) log(`    gossip: init ${g.initiated} acc ${g.accepted} done ${g.completed} busy ${g.busyReceived}/${g.busySent} timedOut ${g.timedOut} refused ${g.refused} recon sketch/list/gave up ${g.reconciledBySketch}/${g.reconciledByList}/${g.reconcileGaveUp} last ${g.lastDiff} every ${g.intervalMs} ms model ${g.opCount} errors ${s.errors} ${s.lastError ?? ""} peer events ${JSON.stringify(s.peerEvents)} closes ${s.net?.protocolCloses} fallbacks ${s.net?.fallbacks} rx by kind ${JSON.stringify(s.rxBytesByKind)}`);
      }
    }
    if (done) return st;
    if (Date.now() > deadline) return null;
  }
}

/**
 * Polls the tabs' statuses every 250 ms until each reports `connections` to all the others and,
 * where the status has `synced` (Yjs: peers that answered its sync step 1), as many synced;
 * true, or false (logged) once `deadline` passes.
 */
async function waitForMesh(driver, pages, deadline, log) {
  const want = pages.length - 1;
  for (;;) {
    const st = await Promise.all(pages.map(driver.status));
    if (st.every((s) => s.connections >= want && (s.synced === undefined || s.synced >= want))) return true;
    if (Date.now() > deadline) {
      log(`swarm: no full mesh by the deadline: connections [${st.map((s) => s.connections).join(' ')}], synced [${st.map((s) => s.synced ?? '-').join(' ')}]`);
      return false;
    }
    await new Promise((r) => setTimeout(r, 250));
  }
}

/**
 * Runs the job with `driver` in `browser`: `tabs` contexts publish `records` (tab i takes every
 * record k with k % tabs === i), wait up to `timeoutS` s for all to hold every op, then a late
 * joiner (up to `lateTimeoutS` s) and a reload of tab 0. `initScript` (optional) is added to every
 * context before its page loads; `onConverged(statuses, converged)` (optional) sees the tabs'
 * statuses at convergence (converged = true) or at the deadline (false). With `meshFirst`, the
 * publish phase starts only once every tab is connected to every other (`waitForMesh`; its
 * time is `mesh_seconds`, not part of `seconds`). Resolves to the report (seconds are wall clock, s).
 */
export async function runJob(driver, { browser, records, tabs, timeoutS, lateTimeoutS = timeoutS, initScript, onConverged, log, meshFirst = false }) {
  const { distinct, bytes: datasetBytes } = datasetFacts(records);
  const report = { tabs, ops: distinct, records: records.length, converged: false };
  const contexts = await Promise.all(Array.from({ length: tabs + 1 }, () => browser.newContext()));
  try {
    if (initScript) await Promise.all(contexts.map((c) => c.addInitScript(initScript)));
    const pages = await Promise.all(contexts.slice(0, tabs).map((c) => driver.openPage(c)));
    await Promise.all(pages.map((p) => driver.join(p)));
    log(`swarm: ${tabs} tabs joined ${driver.space}`);
    if (meshFirst) {
      const tMesh = Date.now();
      const meshed = await waitForMesh(driver, pages, tMesh + timeoutS * 1000, log);
      report.mesh_seconds = meshed ? (Date.now() - tMesh) / 1000 : null;
    }

    const t0 = Date.now();
    await Promise.all(pages.map((p, i) => driver.publish(p, records.filter((_, k) => k % tabs === i))));
    report.publish_seconds = (Date.now() - t0) / 1000;
    log(`swarm: published in ${report.publish_seconds.toFixed(1)} s`);
    const done = await waitUntil(driver, pages, distinct, t0 + timeoutS * 1000, 'converging', log);
    report.converged = done !== null;
    report.seconds = (Date.now() - t0) / 1000;
    report.ops_per_s = distinct / report.seconds;
    const st = done ?? await Promise.all(pages.map(driver.status));
    onConverged?.(st, done !== null);
    report.tx_bytes_per_peer = st.map((s) => s.txBytes);
    report.rx_bytes_per_peer = st.map((s) => s.rxBytes);
    report.rx_bytes_per_peer_over_dataset = Math.max(...st.map((s) => s.rxBytes)) / datasetBytes;

    const tLate = Date.now();
    const late = await driver.openPage(contexts[tabs]);
    await driver.join(late);
    // One tab, read every 200 ms: at 1 s the figure fell on 1.5 s or 2.7 s.
    const lateDone = await waitUntil(driver, [late], distinct, tLate + lateTimeoutS * 1000, 'late joiner', log, 200);
    report.late_join_seconds = lateDone ? (Date.now() - tLate) / 1000 : null;
    const lateSt = lateDone?.[0] ?? await driver.status(late);
    report.late_connections = lateSt.connections;
    if (lateSt.synced !== undefined) report.late_synced = lateSt.synced;

    if (driver.keepsOps === false) {
      report.reload_seconds = null;
      report.reload_ok = null;
      log('swarm: reload skipped (the tabs keep their ops in memory only)');
    } else {
      const before = (await driver.status(pages[0])).ops;
      const tReload = Date.now();
      await pages[0].reload();
      await driver.join(pages[0]);
      const after = await driver.storedOps(pages[0]);
      // Until the reloaded tab answers: its DHT model is built from IndexedDB first.
      report.reload_seconds = (Date.now() - tReload) / 1000;
      report.reload_ok = after >= before && before === distinct;
      log(`swarm: reloaded tab found ${after} of ${before} ops in IndexedDB`);
    }
    report.converged = report.converged && lateDone !== null;
  } finally {
    await Promise.all(contexts.map((c) => c.close().catch(() => {})));
  }
  return report;
}

async function main() {
  const { values: opt } = parseArgs({
    options: {
      tabs: { type: 'string', default: '8' },
      ops: { type: 'string' },
      data: { type: 'string', default: DEFAULT_DATASET },
      json: { type: 'boolean', default: false },
      timeout: { type: 'string', default: '180' },
      storage: { type: 'string', default: 'indexeddb' },
      'mesh-first': { type: 'boolean', default: false },
    },
  });
  if (!['indexeddb', 'memory'].includes(opt.storage)) {
    console.error(`swarm: --storage must be indexeddb or memory, got ${JSON.stringify(opt.storage)}`);
    process.exit(2);
  }
  const tabs = positiveInt('--tabs', opt.tabs);
  const timeoutS = positiveInt('--timeout', opt.timeout);
  const log = opt.json ? (...a) => console.error(...a) : (...a) => console.log(...a);
  const records = await loadDataset(opt.data, opt.ops ? positiveInt('--ops', opt.ops) : Infinity);
  const { distinct, bytes } = datasetFacts(records);
  log(`swarm: ${tabs} tabs, ${records.length} records = ${distinct} distinct ops (${(bytes / 1e6).toFixed(2)} MB) from ${opt.data}`);
  const net = await startDevnet();
  const browser = await launchBrowser();
  let report;
  try {
    // Diagnostics: main-thread tasks over 50 ms (Long Tasks API) per tab.
    const initScript = process.env.FENNEC_SWARM_GOSSIP ? () => {
      const lt = { n: 0, total: 0, max: 0 };
      window.__longTasks = lt;
      new PerformanceObserver((l) => {
        for (const e of l.getEntries()) { lt.n++; lt.total += e.duration; lt.max = Math.max(lt.max, e.duration); }
      }).observe({ type: 'longtask', buffered: true });
    } : undefined;
    report = await runJob(fennecDriver(net, { storage: opt.storage }), { browser, records, tabs, timeoutS, log, initScript, meshFirst: opt['mesh-first'] });
  } finally {
    await browser.close();
    await net.stop();
  }
  delete report.publish_seconds; // printed as a progress line above; the report's shape is unchanged
  log('\nswarm report');
  for (const [k, v] of Object.entries(report)) log(`  ${k}: ${Array.isArray(v) ? v.join(' ') : v}`);
  if (opt.json) {
    const { ops, converged, seconds, ops_per_s, rx_bytes_per_peer_over_dataset, late_join_seconds, reload_ok, reload_seconds } = report;
    console.log(JSON.stringify({ tabs: report.tabs, storage: opt.storage, ops, converged, seconds, ops_per_s, rx_bytes_per_peer_over_dataset, late_join_seconds, reload_ok, reload_seconds }));
  }
  // reload_ok is null when the reload was skipped (--storage memory).
  process.exit(report.converged && report.reload_ok !== false ? 0 : 1);
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main().catch((e) => { console.error(`swarm: ${e.stack || e}`); process.exit(1); });
}
