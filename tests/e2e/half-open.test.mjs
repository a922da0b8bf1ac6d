// A half-open signal connection, in real Chromium through the real bootstrap/sbd server: tabs
// A and B reach the sbd server through a TCP proxy (one server for both: a peer URL names it),
// which, on cue, stops carrying bytes either way on tab A's connection and never closes the
// tab's socket (a network path gone while the socket still looks open: a
// laptop that slept, a NAT that forgot the mapping). The browser sees no close, so only our
// liveness probe can notice: with nothing received for 30 s the tab sends itself a forward
// through the server, and when nothing comes back within 15 s it drops the connection,
// reports it (`error` of kind "signal", `status` reconnecting) and reconnects. The proxy
// carries new connections, so the tab comes back, and an op it publishes then reaches tab B
// (relay only: every byte between the tabs goes through sbd). The detection time is printed.
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, test } from 'node:test';
import { launchBrowser, openFennecPage, pollPage, startBootstrapServer, startStaticServer } from './harness.mjs';

function pageHelpers() {
  const t = { status: [], errors: [] };
  window.t = t;
  t.join = async ({ bootstrapUrl, signalUrl, space }) => {
    const { Peer } = window.fennec;
    t.peer = await Peer.connect({ bootstrapUrl, signalUrl, storage: 'memory', relayOnly: true });
    t.space = await t.peer.join(space);
    t.space.on('status', (e) => t.status.push({ ...e, at: Date.now() }));
    t.space.on('error', (e) => t.errors.push({ kind: e.kind, message: e.message, at: Date.now() }));
  };
  t.publish = async (text) => t.space.publish(new TextEncoder().encode(text));
  t.has = async (id) => (await t.space.get(id)) !== undefined;
}

/**
 * A TCP proxy to `target` (`host:port`). `cut(n)` stops carrying bytes on its n-th connection
 * (from 1), in both directions, and keeps the client's socket open whatever the server does;
 * the other connections, and those made later, are carried as usual.
 */
async function cuttableProxy(target) {
  const [host, port] = target.split(':');
  const open = new Set();
  let connections = 0;
  const server = net.createServer((client) => {
    connections += 1;
    const upstream = net.connect(Number(port), host);
    const link = { n: connections, client, upstream, cut: false };
    open.add(link);
    client.pipe(upstream);
    upstream.pipe(client);
    const end = () => {
      open.delete(link);
      if (!link.cut) { client.destroy(); upstream.destroy(); }
    };
    client.on('close', end);
    upstream.on('close', end);
    client.on('error', () => {});
    upstream.on('error', () => {});
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const cut = [];
  return {
    url: `ws://127.0.0.1:${server.address().port}`,
    connections: () => connections,
    cut: (n) => {
      for (const link of open) {
        if (link.n !== n) continue;
        link.cut = true;
        link.client.unpipe(link.upstream);
        link.upstream.unpipe(link.client);
        // Whatever the tab sends is read and dropped; the server's side is closed, and the
        // tab never hears of it.
        link.client.on('data', () => {});
        link.upstream.destroy();
        cut.push(link.client);
        open.delete(link);
      }
    },
    stop: () => {
      for (const s of cut) s.destroy();
      for (const link of open) { link.client.destroy(); link.upstream.destroy(); }
      return new Promise((r) => server.close(r));
    },
  };
}

let boot, web, browser, proxy;

before(async () => {
  boot = await startBootstrapServer();
  web = await startStaticServer();
  browser = await launchBrowser();
  proxy = await cuttableProxy(new URL(boot.signalUrl).host);
});
after(async () => {
  await browser?.close();
  await proxy?.stop();
  await boot?.stop();
  await web?.stop();
});

test('a half-open signal connection is found by the liveness probe, dropped and replaced', async () => {
  const space = `half-open-e2e-${Date.now()}`;
  const pages = [];
  // One at a time, so that tab A's sbd connection is the proxy's first.
  for (let i = 0; i < 2; i++) {
    const context = await browser.newContext();
    await context.addInitScript(pageHelpers);
    const page = await openFennecPage(context, web.url, '/blank.html');
    await page.evaluate((o) => window.t.join(o), { bootstrapUrl: boot.url, signalUrl: proxy.url, space });
    pages.push(page);
  }
  const [a, b] = pages;
  const first = await a.evaluate(() => window.t.publish('before the cut'));
  await pollPage(b, (id) => window.t.has(id), first, 'first op at tab B', 60_000);
  assert.equal(proxy.connections(), 2);

  proxy.cut(1);
  const cutAt = Date.now();
  const err = await pollPage(a, () => window.t.errors.find((e) => e.kind === 'signal'), null, 'signal error event after the cut', 90_000);
  assert.match(err.message, /liveness probe/);
  const lost = await a.evaluate(() => window.t.status.find((s) => s.state !== 'connected'));
  assert.ok(lost, 'a status event left "connected"');
  await pollPage(a, () => window.t.status.at(-1)?.state === 'connected', null, 'connected again', 60_000);
  assert.ok(proxy.connections() >= 3, `connections through the proxy: ${proxy.connections()}`);
  // Tab B heard nothing either while tab A was gone, so it probed too, and the real server
  // returned its probe: its connection stayed up.
  assert.equal(await b.evaluate(() => window.t.errors.filter((e) => e.kind === 'signal').length), 0, 'tab B kept its connection');
  const backAt = await a.evaluate(() => window.t.status.at(-1).at);

  const second = await a.evaluate(() => window.t.publish('after the reconnect'));
  await pollPage(b, (id) => window.t.has(id), second, 'op published after the reconnect at tab B', 90_000);
  console.log(JSON.stringify({
    half_open_detected_ms: err.at - cutAt,
    reconnected_ms_after_cut: backAt - cutAt,
    signal_error: err.message,
  }));
  for (const p of pages) assert.deepEqual(p.fennecErrors, []);
});
