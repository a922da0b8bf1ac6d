// The package as a user gets it: the tarball `npm run build` packs (target/fennec-dht-*.tgz) is
// installed into a fresh Vite app (offline: the package has no dependencies), `vite build`
// (vite pinned in the root package.json, so `npm ci` fetched it) bundles it, a static server
// serves the build, and two browser contexts (two agents: each has its own IndexedDB, so its
// own agent key) join one space on the real bootstrap/sbd server and each receive the other's op.
// The same app also type-checks a TypeScript user of the package with `tsc --strict` (no
// skipLibCheck), resolving the types through the package's `exports` map.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { launchBrowser, pollPage, serveDirectory, startBootstrapServer } from './harness.mjs';

const run = promisify(execFile);
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const VITE = path.join(ROOT, 'node_modules', 'vite', 'bin', 'vite.js');
const TSC = path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');

const MAIN_JS = `
import init, { Peer, FennecError, initialised } from 'fennec-dht';

// Joins \`space\`; records every op event. Returns this tab's agent id.
window.start = async ({ bootstrapUrl, signalUrl, space }) => {
  await init();
  const peer = await Peer.connect({ bootstrapUrl, signalUrl });
  window.space = await peer.join(space);
  window.received = [];
  window.space.on('op', (e) => window.received.push({ id: e.id, text: new TextDecoder().decode(e.payload) }));
  return { agent: peer.agentId, initialised: initialised(), fennecError: typeof FennecError };
};
window.publish = async (text) => window.space.publish(new TextEncoder().encode(text));
`;

// Options left out (they are optional), callbacks typed by the event name, no annotations.
const MAIN_TS = `
import init, { FennecError, Peer, type OpEvent, type SpaceStats, type SyncEvent } from 'fennec-dht';
await init();
const peer: Peer = await Peer.connect({ bootstrapUrl: 'http://127.0.0.1:30000', signalUrl: 'ws://127.0.0.1:30000' });
const space = await peer.join('my-space');
space.on('op', (e) => console.log(e.id, e.createdAt.toFixed(3), e.payload.byteLength, e.from, e.fromUrl.length));
space.on('sync', (e: SyncEvent) => console.log(e.missing - e.remaining));
space.on('message', (e) => console.log(e.data.byteLength, e.from));
const onOp = (e: OpEvent) => console.log(e.id);
space.off('op', onOp);
const id: string = await space.publish(new TextEncoder().encode('hello'));
const ids: string[] = await space.publishMany([new Uint8Array(1)], { signal: new AbortController().signal });
console.log(ids);
const payload: Uint8Array | undefined = await space.get(id);
const stats: SpaceStats = await space.stats();
console.log(payload, stats.ops, space.peers().map((p) => p.agent));
try {
  await space.leave();
} catch (e) {
  if (e instanceof FennecError && e.code === 'left') console.log(e.message);
}
await peer.close();
`;

let app, web, boot, browser;

before(async () => {
  const { version } = JSON.parse(await readFile(path.join(ROOT, 'pkg', 'package.json'), 'utf8'));
  const tarball = path.join(ROOT, 'target', `fennec-dht-${version}.tgz`);
  app = await mkdtemp(path.join(os.tmpdir(), 'fennec-vite-app-'));
  await writeFile(path.join(app, 'package.json'), JSON.stringify({
    name: 'fennec-vite-app', private: true, type: 'module',
    dependencies: { 'fennec-dht': `file:${tarball}` },
  }));
  await writeFile(path.join(app, 'index.html'),
    '<!doctype html><title>fennec-dht in Vite</title><script type="module" src="/main.js"></script>\n');
  await writeFile(path.join(app, 'main.js'), MAIN_JS);
  await writeFile(path.join(app, 'check.ts'), MAIN_TS);
  await run('npm', ['install', '--offline', '--no-audit', '--no-fund', '--ignore-scripts'], { cwd: app });
  await run(process.execPath, [VITE, 'build', '--logLevel', 'warn'], { cwd: app });
  web = await serveDirectory(path.join(app, 'dist'));
  boot = await startBootstrapServer();
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await boot?.stop();
  await web?.stop();
  if (app) await rm(app, { recursive: true, force: true });
});


test('the packed package, bundled by Vite: an op published in one browser context arrives in another', async () => {
  const assets = await readdir(path.join(app, 'dist', 'assets'));
  assert.ok(assets.some((f) => /^fennec_bg.*\.wasm$/.test(f)), `vite emitted the wasm: ${assets.join(', ')}`);

  const space = `vite-consumer-${process.pid}-${Date.now()}`;
  const tabs = [];
  for (let i = 0; i < 2; i++) {
    const context = await browser.newContext();
    const page = await context.newPage();
    const errors = [];
    const wasmRequests = [];
    page.on('pageerror', (e) => errors.push(e));
    page.on('request', (r) => { if (r.url().endsWith('.wasm')) wasmRequests.push(new URL(r.url()).pathname); });
    await page.goto(web.url + '/');
    const info = await page.evaluate((o) => window.start(o),
      { bootstrapUrl: boot.url, signalUrl: boot.signalUrl, space });
    tabs.push({ page, errors, wasmRequests, info });
  }
  assert.notEqual(tabs[0].info.agent, tabs[1].info.agent, 'two contexts are two agents');
  for (const t of tabs) {
    assert.deepEqual({ initialised: t.info.initialised, fennecError: t.info.fennecError },
      { initialised: true, fennecError: 'function' });
    assert.ok(t.wasmRequests.some((p) => p.startsWith('/assets/')), `wasm loaded from the build: ${t.wasmRequests}`);
  }

  for (const [from, to] of [[0, 1], [1, 0]]) {
    const text = `hello from tab ${from}`;
    const id = await tabs[from].page.evaluate((s) => window.publish(s), text);
    const got = await pollPage(tabs[to].page, (want) => window.received.find((r) => r.id === want),
      id, `op ${id} from tab ${from} in tab ${to}`);
    assert.deepEqual(got, { id, text });
  }
  for (const t of tabs) assert.deepEqual(t.errors, []);
});

/** tsc --strict (no skipLibCheck) with the default lib of target ES2022 (+ DOM) on `files` in the app. */
async function typeCheck(files) {
  const args = [TSC, '--strict', '--noEmit', '--target', 'ES2022', '--module', 'ESNext',
    '--moduleResolution', 'bundler', ...files];
  return run(process.execPath, args, { cwd: app }).catch((e) => e);
}

test('a TypeScript user of the package type-checks with tsc --strict', async () => {
  const out = await typeCheck(['check.ts']);
  assert.equal(out.code ?? 0, 0, `tsc failed:\n${out.stdout}${out.stderr}`);
});

test('the README\'s and the package README\'s TypeScript examples compile with tsc --strict', async () => {
  const files = [];
  for (const doc of ['README.md', path.join('docs', 'package-README.md')]) {
    const text = await readFile(path.join(ROOT, doc), 'utf8');
    const blocks = [...text.matchAll(/^```ts\n([\s\S]*?)^```$/gm)].map((m) => m[1]);
    assert.ok(blocks.length > 0, `${doc} has TypeScript examples`);
    for (const [i, code] of blocks.entries()) {
      const file = `example-${path.basename(doc, '.md')}-${i}.ts`;
      await writeFile(path.join(app, file), code.includes('import ') ? code : `export {};\n${code}`);
      files.push(file);
    }
  }
  const out = await typeCheck(files);
  assert.equal(out.code ?? 0, 0, `tsc failed on ${files.join(', ')}:\n${out.stdout}${out.stderr}`);
  // The check can fail: a wrong use of the typed API is refused.
  await writeFile(path.join(app, 'wrong.ts'),
    "import { Space } from 'fennec-dht';\ndeclare const s: Space;\ns.on('sync', (e) => e.payload);\n");
  const wrong = await typeCheck(['wrong.ts']);
  assert.match(`${wrong.stdout}`, /Property 'payload' does not exist on type 'SyncEvent'/);
});
