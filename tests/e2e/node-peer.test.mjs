// fennec-dht in Node (issue 12, deliverable 4): the tarball `npm run build` packs is installed
// into a fresh Node app (offline), and a Node process running it — no window, no IndexedDB, no
// RTCPeerConnection, no Web Locks; Node 20 has no global WebSocket either, so the `ws` package's
// class is passed as the `WebSocket` option — joins a space with two browser tabs on the real
// bootstrap/sbd server (harness). It is a relay-only peer (the tabs see path "relay"), keeps
// its ops in memory, and ops cross both ways. `init()` in Node takes the wasm file as bytes, a
// path or a `file:` URL (docs/package-README.md). Then `npm run peer` (scripts/peer.mjs), the
// always-on Node peer, keeps a space's ops while its only tab leaves, and hands them to a tab
// that joins afterwards, also after a restart from its --store file and after a stop and
// restart of its bootstrap/sbd server; its SWIM timing flags reach Peer.connect, and --help and
// a misspelt flag print its usage.
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { after, before, test } from 'node:test';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { launchBrowser, openFennecPage, pollPage, startBootstrapServer, startDevnet } from './harness.mjs';

const run = promisify(execFile);
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const DEADLINE_MS = 60_000;

// The Node app: one peer driven over stdin/stdout, one JSON object per line each way.
const NODE_APP = `
import init, { Peer } from 'fennec-dht';
import { WebSocket as Ws } from ${JSON.stringify(pathToFileURL(path.join(ROOT, 'node_modules/ws/wrapper.mjs')).href)};
import { createInterface } from 'node:readline';

const out = (o) => process.stdout.write(JSON.stringify(o) + '\\n');
const [bootstrapUrl, signalUrl, name] = process.argv.slice(2);
const missing = await Peer.connect({ bootstrapUrl, signalUrl }).then(() => null, (e) => e);
await init();
const refused = await Peer.connect({ bootstrapUrl, signalUrl }).then(() => null, (e) => ({ name: e.name, message: e.message }));
const peer = await Peer.connect({ bootstrapUrl, signalUrl, WebSocket: globalThis.WebSocket ?? Ws });
const space = await peer.join(name);
space.on('op', (e) => out({ event: 'op', id: e.id, text: new TextDecoder().decode(e.payload) }));
space.on('error', (e) => out({ event: 'error', kind: e.kind, message: e.message }));
out({ event: 'joined', agent: peer.agentId, role: peer.role, beforeInit: missing && missing.code, refused,
  globalWebSocket: typeof globalThis.WebSocket });
for await (const line of createInterface({ input: process.stdin })) {
  const cmd = JSON.parse(line);
  if (cmd.publish) out({ event: 'published', id: await space.publish(new TextEncoder().encode(cmd.publish)) });
  if (cmd.stats) out({ event: 'stats', stats: await space.stats(), peers: space.peers() });
}
await peer.close();
`;

// One init() form per process (the module is instantiated once per process): the wasm file of
// the installed package as bytes, as a path, as a file: URL; then a call that needs the module.
const INIT_APP = `
import { readFileSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import init, { initialised, opId, version } from 'fennec-dht';

const file = fileURLToPath(import.meta.resolve('fennec-dht/fennec_bg.wasm'));
const forms = {
  bytes: () => readFileSync(file),
  wrappedBytes: () => ({ module_or_path: readFileSync(file) }),
  path: () => ({ module_or_path: file }),
  fileUrl: () => ({ module_or_path: pathToFileURL(file) }),
  fileUrlString: () => ({ module_or_path: pathToFileURL(file).href }),
  missingPath: () => ({ module_or_path: file + '.missing' }),
};
const before = initialised();
let out;
try {
  await init(forms[process.argv[2]]());
  out = { before, initialised: initialised(), version: version(), opId: opId(new Uint8Array([1, 2, 3]), 1_700_000_000_000_000) };
} catch (e) {
  out = { before, initialised: initialised(), error: e.code ?? e.name, message: String(e.message) };
}
process.stdout.write(JSON.stringify(out) + '\\n');
`;

let app, net, browser;
const children = [];

before(async () => {
  const { version } = JSON.parse(await readFile(path.join(ROOT, 'pkg', 'package.json'), 'utf8'));
  const tarball = path.join(ROOT, 'target', `fennec-dht-${version}.tgz`);
  app = await mkdtemp(path.join(os.tmpdir(), 'fennec-node-app-'));
  await writeFile(path.join(app, 'package.json'), JSON.stringify({
    name: 'fennec-node-app', private: true, type: 'module',
    dependencies: { 'fennec-dht': `file:${tarball}` },
  }));
  await writeFile(path.join(app, 'peer.mjs'), NODE_APP);
  await writeFile(path.join(app, 'init.mjs'), INIT_APP);
  await run('npm', ['install', '--offline', '--no-audit', '--no-fund', '--ignore-scripts'], { cwd: app });
  net = await startDevnet();
  browser = await launchBrowser();
});

after(async () => {
  for (const c of children) c.kill();
  await browser?.close();
  await net?.stop();
  if (app) await rm(app, { recursive: true, force: true });
});

/** Spawns a Node process; `next(pred)` resolves to the first stdout line (as JSON if `json`) passing `pred`. */
function child(args, { cwd, json }) {
  const proc = spawn(process.execPath, args, { cwd, stdio: ['pipe', 'pipe', 'pipe'] });
  children.push(proc);
  const lines = [];
  const waiters = [];
  let stderr = '';
  proc.stderr.on('data', (d) => { stderr += d; });
  createInterface({ input: proc.stdout }).on('line', (l) => {
    const v = json ? JSON.parse(l) : l;
    lines.push(v);
    for (const w of [...waiters]) if (w.pred(v)) { waiters.splice(waiters.indexOf(w), 1); w.resolve(v); }
  });
  const exited = new Promise((r) => proc.on('exit', (code) => r(code)));
  return {
    proc, lines, exited,
    send: (o) => proc.stdin.write(JSON.stringify(o) + '\n'),
    next: (pred, what) => {
      const seen = lines.find(pred);
      if (seen !== undefined) return Promise.resolve(seen);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`not within ${DEADLINE_MS} ms: ${what}\nstdout:\n${lines.map((l) => JSON.stringify(l)).join('\n')}\nstderr:\n${stderr}`)), DEADLINE_MS);
        waiters.push({ pred, resolve: (v) => { clearTimeout(timer); resolve(v); } });
        exited.then((code) => reject(new Error(`exited (${code}) before: ${what}\nstderr:\n${stderr}`)));
      });
    },
  };
}

// Page side: window.t drives one tab's peer in one space.
function pageHelpers() {
  const t = { received: [] };
  window.t = t;
  t.join = async ({ bootstrapUrl, signalUrl, space }) => {
    t.peer = await window.fennec.Peer.connect({ bootstrapUrl, signalUrl, storage: 'memory' });
    t.space = await t.peer.join(space);
    t.space.on('op', (e) => t.received.push({ id: e.id, text: new TextDecoder().decode(e.payload) }));
    return t.peer.agentId;
  };
  t.publish = (text) => t.space.publish(new TextEncoder().encode(text));
  t.text = async (id) => {
    const b = await t.space.get(id);
    return b ? new TextDecoder().decode(b) : null;
  };
}

/** A tab (own context) joined to `space` on `servers` (default the devnet's bootstrap/sbd server). */
async function newTab(space, servers = net) {
  const context = await browser.newContext();
  await context.addInitScript(pageHelpers);
  const page = await openFennecPage(context, net.staticUrl);
  const agent = await page.evaluate((o) => window.t.join(o),
    { bootstrapUrl: servers.bootstrapUrl, signalUrl: servers.signalUrl, space });
  return { page, context, agent };
}


test('a relay-only Node peer from the tarball syncs ops both ways with two browser tabs', async () => {
  const space = `node-peer-${process.pid}-${Date.now()}`;
  const node = child(['peer.mjs', net.bootstrapUrl, net.signalUrl, space], { cwd: app, json: true });
  const joined = await node.next((l) => l.event === 'joined', 'the Node peer joined');
  assert.equal(joined.beforeInit, 'not-initialised');
  assert.equal(joined.role, 'tab', 'no Web Locks in Node: sharing "tab"');
  if (joined.globalWebSocket !== 'function') {
    // Node 20: no global WebSocket, and none given: refused at connect, naming the option.
    assert.deepEqual(joined.refused?.name, 'TypeError');
    assert.match(joined.refused.message, /option WebSocket is required/);
  }
  const tabs = [await newTab(space), await newTab(space)];

  for (const [i, tab] of tabs.entries()) {
    const text = `from tab ${i}`;
    const id = await tab.page.evaluate((s) => window.t.publish(s), text);
    assert.deepEqual(await node.next((l) => l.event === 'op' && l.id === id, `tab ${i}'s op in Node`), { event: 'op', id, text });
  }
  node.send({ publish: 'from Node' });
  const { id } = await node.next((l) => l.event === 'published', 'the Node publish');
  for (const [i, tab] of tabs.entries()) {
    const got = await pollPage(tab.page, (want) => window.t.received.find((r) => r.id === want), id, `Node's op in tab ${i}`);
    assert.deepEqual(got, { id, text: 'from Node' });
    const path = await pollPage(tab.page, (agent) => window.t.space.peers().find((p) => p.agent === agent && p.path)?.path,
      joined.agent, `tab ${i} connected to the Node peer`);
    assert.equal(path, 'relay', 'Node has no RTCPeerConnection: the tabs reach it over the relay');
  }
  node.send({ stats: true });
  const { stats } = await node.next((l) => l.event === 'stats', 'Node stats');
  assert.equal(stats.ops, 3);
  assert.equal(stats.net.fallbacks, 0, 'relay-only from the start: no WebRTC attempt fell back');
  assert.equal(stats.status.state, 'connected');
  assert.deepEqual(node.lines.filter((l) => l.event === 'error'), []);
  for (const t of tabs) {
    assert.deepEqual(t.page.fennecErrors, []);
    await t.context.close();
  }
  node.proc.stdin.end();
  assert.equal(await node.exited, 0);
});

test('init() in Node takes the wasm file as bytes, a path or a file: URL (as module_or_path)', async () => {
  const { version } = JSON.parse(await readFile(path.join(ROOT, 'pkg', 'package.json'), 'utf8'));
  const results = {};
  const stderr = {};
  for (const form of ['bytes', 'wrappedBytes', 'path', 'fileUrl', 'fileUrlString', 'missingPath']) {
    const out = await run(process.execPath, ['init.mjs', form], { cwd: app });
    results[form] = JSON.parse(out.stdout);
    stderr[form] = out.stderr;
  }
  const ok = { before: false, initialised: true, version, opId: results.bytes.opId };
  assert.match(ok.opId ?? '', /^[A-Za-z0-9_-]{43}$/, `an op id after init(bytes): ${JSON.stringify(results.bytes)}`);
  for (const form of ['bytes', 'wrappedBytes', 'path', 'fileUrl', 'fileUrlString']) {
    assert.deepEqual(results[form], ok, `init with ${form}`);
  }
  // The documented { module_or_path } forms draw no warning (the bare form gets wasm-bindgen's
  // "using deprecated parameters for the initialization function").
  for (const form of ['wrappedBytes', 'path', 'fileUrl', 'fileUrlString']) assert.equal(stderr[form], '', `stderr of ${form}`);
  // A path is read from the disk (not fetched): a missing file is ENOENT, and nothing is initialised.
  assert.equal(results.missingPath.initialised, false);
  assert.equal(results.missingPath.error, 'ENOENT', JSON.stringify(results.missingPath));
});

test('npm run peer keeps a space\'s ops while tabs come and go, and across a restart from --store', async () => {
  const space = `always-on-${process.pid}-${Date.now()}`;
  const store = path.join(app, 'ops.jsonl');
  const startPeer = () => child([path.join(ROOT, 'scripts/peer.mjs'), '--space', space, '--bootstrap', net.bootstrapUrl,
    '--signal', net.signalUrl, '--store', store, '--every', '1', '--hidden-suspicion-timeout-ms', '120000'],
  { cwd: ROOT, json: false });
  const opsLine = (n) => (l) => new RegExp(`^peer \\S+ ops ${n} `).test(l);
  let peer = startPeer();
  await peer.next((l) => / joined space /.test(l), 'npm run peer joined');

  // Tab A publishes and goes; only the Node peer holds its ops then.
  const a = await newTab(space);
  const texts = ['first op of tab A', 'second op of tab A'];
  const ids = [];
  for (const t of texts) ids.push(await a.page.evaluate((s) => window.t.publish(s), t));
  await peer.next(opsLine(2), 'the Node peer holds both ops');
  await a.context.close();

  const fetchAll = async (tab, label) => {
    for (const [i, id] of ids.entries()) {
      assert.equal(await pollPage(tab.page, (want) => window.t.text(want), id, `${label}: op ${i}`), texts[i]);
    }
  };
  // Tab B joins after A left: it gets both ops from the Node peer.
  const b = await newTab(space);
  await fetchAll(b, 'tab B after tab A left');
  await b.context.close();

  // Restart from the store; tab C (no other tab is left) gets the ops from the restarted peer.
  peer.proc.kill('SIGINT');
  assert.equal(await peer.exited, 0);
  assert.equal((await readFile(store, 'utf8')).trim().split('\n').length, 2, 'both ops in the store file');
  peer = startPeer();
  await peer.next((l) => / 2 ops loaded from /.test(l), 'the restarted peer loaded its store');
  await peer.next(opsLine(2), 'the restarted peer holds both ops');
  const c = await newTab(space);
  await fetchAll(c, 'tab C after a restart of the Node peer');
  await c.context.close();
  assert.deepEqual(peer.lines.filter((l) => / error /.test(l)), []);
  peer.proc.kill('SIGINT');
  assert.equal(await peer.exited, 0);
});

test('npm run peer rides out a stop and restart of its bootstrap/sbd server, and serves a tab that joins after it', async () => {
  // A server of its own (the devnet's serves the other cases), restarted on the same port,
  // empty: the peer reconnects (the `ws` package's socket in Node, not a browser's), puts its
  // info again, and a tab that joins after the restart finds it and gets the op it kept.
  let boot = await startBootstrapServer();
  const servers = () => ({ bootstrapUrl: boot.url, signalUrl: boot.signalUrl });
  const space = `always-on-restart-${process.pid}-${Date.now()}`;
  const peer = child([path.join(ROOT, 'scripts/peer.mjs'), '--space', space, '--bootstrap', boot.url,
    '--signal', boot.signalUrl, '--every', '1'], { cwd: ROOT, json: false });
  try {
    await peer.next((l) => / joined space /.test(l), 'npm run peer joined');
    const a = await newTab(space, servers());
    const id = await a.page.evaluate((s) => window.t.publish(s), 'kept through the outage');
    await peer.next((l) => / ops 1 /.test(l), 'the Node peer holds the op');
    await a.context.close();

    const listen = new URL(boot.url).host;
    await boot.stop();
    await peer.next((l) => / signal (reconnecting|offline) /.test(l), 'the Node peer reports the lost server');
    const from = peer.lines.length; // its next "connected" can come before the restart resolves
    boot = await startBootstrapServer({ listen });
    const restarted = Date.now();
    await peer.next((l) => peer.lines.indexOf(l) >= from && / signal connected$/.test(l), 'the Node peer connected again');
    const b = await newTab(space, servers());
    assert.equal(await pollPage(b.page, (want) => window.t.text(want), id, 'tab B gets the op from the Node peer'),
      'kept through the outage');
    const fromB = await b.page.evaluate((s) => window.t.publish(s), 'from tab B');
    await peer.next((l) => / ops 2 /.test(l), `tab B's op ${fromB} in the Node peer`);
    console.log(JSON.stringify({ bench: 'node-peer-restart', op_at_new_tab_ms_after_restart: Date.now() - restarted }));
    await b.context.close();
    // The outage's own reports (signal lost, bootstrap poll failed, reconnecting gave up for
    // a while) are expected; nothing else.
    const errors = peer.lines.filter((l) => / error /.test(l) && !/ error (signal|bootstrap): /.test(l));
    assert.deepEqual(errors, []);
  } finally {
    peer.proc.kill('SIGINT');
    await peer.exited;
    await boot.stop();
  }
});

test('npm run peer passes its SWIM timing flags to Peer.connect, and refuses a bad one naming it', async () => {
  // A refused flag exits 1 at once; a flag that never reached Peer.connect leaves the peer
  // running until execFile's timeout kills it (no exit code 1).
  const refusal = async (...flags) => {
    const e = await run(process.execPath, [path.join(ROOT, 'scripts/peer.mjs'), '--space', `timing-${process.pid}`,
      '--bootstrap', net.bootstrapUrl, '--signal', net.signalUrl, ...flags], { cwd: ROOT, timeout: DEADLINE_MS })
      .then(() => null, (err) => err);
    assert.equal(e?.code, 1, `${flags.join(' ')}: ${e ? `exit code (stdout: ${e.stdout})` : 'ran until the timeout, then left cleanly'}`);
    return e.stderr;
  };
  // Digits out of range reach Peer.connect, whose RangeError names the option.
  assert.match(await refusal('--probe-period-ms', '50'), /probePeriodMs must be an integer from 100 to 60000, got 50/);
  assert.match(await refusal('--suspicion-timeout-ms', '99'),
    /suspicionTimeoutMs must be an integer from 100 to 2147483647, got 99/);
  // Not a whole number: the script's usage error names the flag.
  assert.match(await refusal('--hidden-suspicion-timeout-ms', '2m'),
    /--hidden-suspicion-timeout-ms is a whole number of ms, got "2m"/);
});

test('npm run peer --help prints its usage; a misspelt flag is refused with it', async () => {
  const script = path.join(ROOT, 'scripts/peer.mjs');
  const help = await run(process.execPath, [script, '--help'], { cwd: ROOT });
  assert.match(help.stdout, /^usage: npm run peer -- --space NAME .*--probe-period-ms MS/);
  const wrong = await run(process.execPath, [script, '--spce', 'x'], { cwd: ROOT }).then(() => null, (e) => e);
  assert.equal(wrong?.code, 1, 'a misspelt flag exits 1');
  assert.match(wrong.stderr, /^peer: Unknown option '--spce'\nusage: npm run peer -- --space NAME/);
});
