// `npm run bench -- peers [--tabs 8] [--ops N] [--timeout 180] [--late-timeout 60] [--mesh-first]`: the main job
// (scripts/swarm.mjs) with fennec and with Yjs 13 + y-webrtc + y-indexeddb in one run, same
// Chromium flags, same dataset split (tab i publishes records k with k % tabs === i), 8
// contexts + a late joiner each. Prints both and fennec/yjs ratios.
//
// The Yjs side: one Y.Doc per tab, records in a Y.Map keyed by a content id (16 hex digits of
// SHA-256 over createdAt and the line), 500 records per transaction (the same batch as fennec's
// swarmPublish). A Y.Map rather than a Y.Array because fennec ops are content-addressed: the
// dataset's identical records are one op there and one key here, so both count the same
// `distinct` total; a Y.Array would hold duplicates and needs no keys (a few % fewer bytes).
// Peers meet through y-webrtc's own signaling server (node_modules/y-webrtc/bin/server.js).
//
// `--mesh-first`: each side's tabs publish only once every tab is connected to (and, for Yjs,
// synced with) every other, so no peer connects while the others publish; without it, they
// publish as soon as they joined, as the main job does. The wait is `mesh_seconds`.
//
// Bytes: the same browser-level meter on both sides (scripts/bench/yjs/meter.js): WebRTC transport
// bytes received + WebSocket message bytes, per tab, at convergence; fennec's own
// space.stats().rxBytes is reported beside it.
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { serveDirectory, startDevnet } from '../devnet.mjs';
import { DEFAULT_DATASET, loadDataset } from '../dataset.mjs';
import { CHUNK, datasetFacts, fennecDriver, runJob } from '../swarm.mjs';
import { launchBrowser } from '../../tests/e2e/harness.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, '..', '..');
const OUT = path.join(ROOT, 'target', 'bench-yjs');

/** Bundles scripts/bench/yjs/page.js for the browser into target/bench-yjs/ with its page. */
async function buildYjsPage() {
  await mkdir(OUT, { recursive: true });
  await build({
    entryPoints: [path.join(HERE, 'yjs', 'page.js')],
    bundle: true, format: 'esm', platform: 'browser', target: 'es2022', minify: true,
    outfile: path.join(OUT, 'swarm.js'), logLevel: 'warning',
    // simple-peer (y-webrtc's WebRTC wrapper) is written for browserify: Node globals.
    define: { global: 'globalThis', 'process.env.NODE_DEBUG': 'false' },
    inject: [path.join(HERE, 'yjs', 'process-shim.js')],
  });
  await writeFile(path.join(OUT, 'index.html'),
    '<!doctype html>\n<meta charset="utf-8">\n<title>yjs swarm tab</title>\n<script type="module" src="./swarm.js"></script>\n');
}

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer().once('error', reject).listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/** Starts y-webrtc's signaling server on a free port; { url, stop }. */
async function startYjsSignaling() {
  const port = await freePort();
  const child = spawn(process.execPath, [path.join(ROOT, 'node_modules', 'y-webrtc', 'bin', 'server.js')], {
    env: { ...process.env, PORT: String(port) }, stdio: ['ignore', 'pipe', 'inherit'],
  });
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('y-webrtc signaling server not ready in 10 s')), 10_000);
    child.once('exit', (c) => { clearTimeout(timer); reject(new Error(`y-webrtc signaling server exited with ${c}`)); });
    child.stdout.on('data', (d) => { if (/running/.test(d)) { clearTimeout(timer); resolve(); } });
  });
  child.removeAllListeners('exit');
  child.stdout.resume();
  return {
    url: `ws://127.0.0.1:${port}`,
    stop: () => new Promise((r) => { if (child.exitCode !== null) r(); else { child.once('exit', r); child.kill('SIGTERM'); } }),
  };
}

function yjsDriver(webUrl, signalUrl) {
  const room = `swarm-${Date.now()}`;
  return {
    name: 'yjs',
    space: room,
    openPage: async (context) => {
      const page = await context.newPage();
      await page.goto(`${webUrl}/index.html`);
      await page.waitForFunction(() => typeof window.swarmJoin === 'function');
      return page;
    },
    join: (page) => page.evaluate((o) => window.swarmJoin(o), { signalUrl, room }),
    publish: async (page, records) => {
      for (let i = 0; i < records.length; i += CHUNK) {
        await page.evaluate((recs) => window.swarmPublish(recs), records.slice(i, i + CHUNK));
      }
    },
    status: (page) => page.evaluate(() => window.swarmStatus()),
    storedOps: (page) => page.evaluate(() => window.swarmStoredOps()),
  };
}

/** Wraps `driver.status` so `rxBytes` is the browser-level meter (rtc + ws) and `ownRxBytes` what the library said. */
function metered(driver) {
  return {
    ...driver,
    status: async (page) => {
      const [s, m] = await Promise.all([driver.status(page), page.evaluate(() => window.benchRxBytes())]);
      return { ...s, ownRxBytes: s.rxBytes, rxBytes: m.rtc + m.ws, rtcRx: m.rtc, wsRx: m.ws };
    },
  };
}

const contentId = (r) => createHash('sha256').update(`${r.createdAt}\n${r.line}`).digest('hex').slice(0, 16);

function summary(report, [atConvergence, tabsConverged], datasetBytes) {
  const rx = atConvergence.map((s) => s.rxBytes);
  const out = {
    converged: tabsConverged, // the job's tabs; the late joiner is late_join_seconds
    seconds: round(report.seconds),
    publish_seconds: round(report.publish_seconds),
    rx_over_dataset_max: round(Math.max(...rx) / datasetBytes),
    rx_over_dataset_mean: round(rx.reduce((a, b) => a + b, 0) / rx.length / datasetBytes),
    ws_share_of_rx: round(atConvergence.reduce((a, s) => a + s.wsRx, 0) / Math.max(1, rx.reduce((a, b) => a + b, 0))),
    late_join_seconds: report.late_join_seconds === null ? 'never' : round(report.late_join_seconds),
    ...(report.mesh_seconds !== undefined && { mesh_seconds: round(report.mesh_seconds) }),
    reload_ok: report.reload_ok,
    // Per tab at convergence (or the deadline): fennec's open or opening connections
    // (WebRTC or relay, `stats().connections`); Yjs's open WebRTC connections (y-webrtc).
    connections_per_tab: atConvergence.map((s) => s.connections),
    late_connections: report.late_connections, // the late joiner's, when it caught up or gave up
  };
  if (atConvergence[0].synced !== undefined) {
    out.synced_per_tab = atConvergence.map((s) => s.synced);
    out.late_synced = report.late_synced;
  }
  if (atConvergence[0].ownRxBytes !== undefined) {
    out.own_rx_over_dataset_max = round(Math.max(...atConvergence.map((s) => s.ownRxBytes)) / datasetBytes);
  }
  return out;
}

const round = (x) => (typeof x === 'number' ? Math.round(x * 1000) / 1000 : x);
const ratio = (a, b) => (typeof a === 'number' && typeof b === 'number' && b > 0 ? round(a / b) : null);

export async function run(args, log) {
  const { values: opt } = parseArgs({
    args,
    options: {
      tabs: { type: 'string', default: '8' },
      ops: { type: 'string' },
      data: { type: 'string', default: DEFAULT_DATASET },
      timeout: { type: 'string', default: '180' },
      'late-timeout': { type: 'string', default: '60' },
      'mesh-first': { type: 'boolean', default: false },
    },
  });
  const meshFirst = opt['mesh-first'];
  const int = (name, v) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 1) throw new RangeError(`--${name} must be a positive integer, got ${JSON.stringify(v)}`);
    return n;
  };
  const tabs = int('tabs', opt.tabs);
  const timeoutS = int('timeout', opt.timeout);
  const lateTimeoutS = int('late-timeout', opt['late-timeout']);
  const records = await loadDataset(opt.data, opt.ops ? int('ops', opt.ops) : Infinity);
  const { distinct, bytes } = datasetFacts(records);
  log(`${tabs} tabs, ${records.length} records = ${distinct} distinct (${(bytes / 1e6).toFixed(2)} MB)`);
  await buildYjsPage();
  const initScript = await readFile(path.join(HERE, 'yjs', 'meter.js'), 'utf8');
  const browser = await launchBrowser();
  const result = { tabs, ops: distinct, dataset_bytes: bytes, yjs_records_per_transaction: CHUNK, yjs_shape: 'Y.Map by content id', mesh_first: meshFirst };
  try {
    const devnet = await startDevnet();
    try {
      let st;
      log('fennec:');
      const rep = await runJob(metered(fennecDriver(devnet)), {
        browser, records, tabs, timeoutS, lateTimeoutS, initScript, log, meshFirst, onConverged: (...a) => { st = a; },
      });
      result.fennec = summary(rep, st, bytes);
    } finally {
      await devnet.stop();
    }
    const [web, sig] = await Promise.all([serveDirectory(OUT), startYjsSignaling()]);
    try {
      let st;
      log('yjs:');
      const yrecords = records.map((r) => ({ id: contentId(r), line: r.line }));
      const rep = await runJob(metered(yjsDriver(web.url, sig.url)), {
        browser, records: yrecords.map((r, k) => ({ ...r, createdAt: records[k].createdAt })),
        tabs, timeoutS, lateTimeoutS, initScript, log, meshFirst, onConverged: (...a) => { st = a; },
      });
      result.yjs = summary(rep, st, bytes);
    } finally {
      await Promise.all([web.stop(), sig.stop()]);
    }
  } finally {
    await browser.close();
  }
  const f = result.fennec;
  const y = result.yjs;
  // A side that did not converge has the deadline as its seconds and its bytes at the deadline:
  // a ratio against those would read as a result, so there is none.
  const both = f.converged && y.converged;
  result.fennec_over_yjs = {
    seconds: both ? ratio(f.seconds, y.seconds) : null,
    publish_seconds: ratio(f.publish_seconds, y.publish_seconds),
    rx_over_dataset_max: both ? ratio(f.rx_over_dataset_max, y.rx_over_dataset_max) : null,
    late_join_seconds: ratio(f.late_join_seconds, y.late_join_seconds),
  };
  return result;
}
