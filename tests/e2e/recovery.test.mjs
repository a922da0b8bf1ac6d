// Visible failures and recovery (issue 9, deliverable 5), in real Chromium through the real
// bootstrap/sbd server: the server is stopped and restarted on the same port while two tabs
// (separate browser contexts, relay only, so that every byte between them goes through sbd) are in
// a space. The tabs must report `status` reconnecting/offline and an `error` of kind "signal",
// store an op published meanwhile, come back `connected` on their own, and deliver that op once
// the server is back. After an outage long enough that each tab declared the other down, both see
// the other `alive` again and an op crosses. A tab whose bootstrap server is unreachable gets an
// `error` of kind "bootstrap" and its join still resolves. A bootstrap server of its own,
// restarted while the signal server stays up, lists the tabs again after their next poll (each
// finds its info missing and puts it again); one with a cap of 2 infos a space has a tab evicted
// by a third, and that tab does not put its info again. Behind a proxy that answers the first
// put with 503 and never answers the first poll, the put is retried and polling goes on after
// the poll's timeout; behind one whose first answer never ends, the poll stops reading at the
// size cap. A signal connection cut half-open by a TCP proxy is found by the liveness probe and
// replaced. The reconnection and relisting times are printed (not asserted: timings belong in
// benchmarks).
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { after, before, test } from 'node:test';
import { launchBrowser, openFennecPage, pollPage, startBootstrapServer, startStaticServer } from './harness.mjs';

function pageHelpers() {
  const t = { status: [], errors: [], peerEvents: [] };
  window.t = t;
  t.join = async ({ bootstrapUrl, signalUrl, space }) => {
    const { Peer } = window.fennec;
    t.peer = await Peer.connect({ bootstrapUrl, signalUrl, storage: 'memory', relayOnly: true });
    t.space = await t.peer.join(space);
    t.space.on('status', (e) => t.status.push({ ...e, at: Date.now() }));
    t.space.on('error', (e) => t.errors.push({ kind: e.kind, message: e.message, at: Date.now() }));
    t.space.on('peer', (e) => t.peerEvents.push({ kind: e.kind, agent: e.agent }));
    return t.space.url;
  };
  t.publish = async (text) => t.space.publish(new TextEncoder().encode(text));
  // Whether a `peer` event of `kind` about `agent` came after the first `from` events.
  t.heard = ({ from, kind, agent }) => t.peerEvents.slice(from).some((e) => e.kind === kind && e.agent === agent);
  t.has = async (id) => (await t.space.get(id)) !== undefined;
  t.state = async () => (await t.space.stats()).status.state;
}

let boot, web, browser, space;
const tabs = [];

/** A blank fennec page with `pageHelpers` in a browser context of its own; the context is
 * added to `contexts` (for the caller to close) before the page opens. */
async function openTab(contexts) {
  const context = await browser.newContext();
  contexts.push(context);
  await context.addInitScript(pageHelpers);
  return openFennecPage(context, web.url, '/blank.html');
}

before(async () => {
  boot = await startBootstrapServer();
  web = await startStaticServer();
  browser = await launchBrowser();
  space = `recovery-e2e-${Date.now()}`;
  for (let i = 0; i < 2; i++) tabs.push(await openTab([])); // closed with the browser
  await Promise.all(tabs.map((p) => p.evaluate((o) => window.t.join(o),
    { bootstrapUrl: boot.url, signalUrl: boot.signalUrl, space })));
});
after(async () => {
  await browser?.close();
  await boot?.stop();
  await web?.stop();
});

test('signal server stopped and restarted: status and error events, reconnection, the offline op is delivered', async () => {
  const [a, b] = tabs;
  const first = await a.evaluate(() => window.t.publish('before the outage'));
  await pollPage(b, (id) => window.t.has(id), first, 'first op at tab B', 60_000);
  assert.equal(await a.evaluate(() => window.t.state()), 'connected');

  const listen = new URL(boot.url).host;
  await boot.stop();
  for (const p of [a, b]) {
    await pollPage(p, () => window.t.errors.some((e) => e.kind === 'signal'), null, 'signal error event', 30_000);
    await pollPage(p, () => window.t.status.some((s) => s.state !== 'connected'), null, 'reconnecting status', 30_000);
  }
  const lost = await a.evaluate(() => window.t.status.find((s) => s.state !== 'connected'));
  assert.ok(['reconnecting', 'offline'].includes(lost.state), JSON.stringify(lost));
  assert.ok(lost.attempt >= 1 && lost.nextRetryMs >= 0, JSON.stringify(lost));
  assert.notEqual(await a.evaluate(() => window.t.state()), 'connected');

  // Published while the server is down: stored (publish resolves), but it cannot leave tab A.
  const offline = await a.evaluate(() => window.t.publish('published while the server is down'));
  assert.ok(await a.evaluate((id) => window.t.has(id), offline));
  await new Promise((r) => setTimeout(r, 2_000));
  assert.equal(await b.evaluate((id) => window.t.has(id), offline), false, 'no path to tab B while the server is down');

  boot = await startBootstrapServer({ listen });
  const restarted = Date.now();
  const back = [];
  for (const p of [a, b]) {
    await pollPage(p, () => window.t.status.at(-1)?.state === 'connected', null, 'connected again', 60_000);
    back.push(await p.evaluate(() => window.t.status.at(-1).at));
  }
  assert.equal(await a.evaluate(() => window.t.state()), 'connected');
  await pollPage(b, (id) => window.t.has(id), offline, 'offline op at tab B after the restart', 90_000);
  const delivered = Date.now();
  console.log(JSON.stringify({
    reconnect_ms: back.map((t) => t - restarted),
    offline_op_delivered_ms_after_restart: delivered - restarted,
  }));
  for (const p of tabs) assert.deepEqual(p.fennecErrors, []);
});

test('an outage long enough that each tab declares the other down: after the restart they meet again', async () => {
  // Both links come back at about the same time, so both tabs learn at once that they were
  // declared down and renew; before the fix each one's news went to the other's old identity
  // and they never spoke again (src/core/membership `announce_to_down` after a renewal).
  const agents = await Promise.all(tabs.map((p) => p.evaluate(() => window.t.peer.agentId)));
  const from = await Promise.all(tabs.map((p) => p.evaluate(() => window.t.peerEvents.length)));
  const listen = new URL(boot.url).host;
  await boot.stop();
  const heard = (i, kind) => pollPage(tabs[i], (q) => window.t.heard(q), { from: from[i], kind, agent: agents[1 - i] },
    `tab ${'AB'[i]}: peer ${kind} about the other tab`, 60_000);
  await Promise.all([heard(0, 'down'), heard(1, 'down')]);
  boot = await startBootstrapServer({ listen });
  const restarted = Date.now();
  await Promise.all([heard(0, 'alive'), heard(1, 'alive')]);
  const alive = Date.now();
  const [a, b] = tabs;
  const id = await a.evaluate(() => window.t.publish('after an outage that ended in downs'));
  await pollPage(b, (want) => window.t.has(want), id, 'the op at tab B', 60_000);
  console.log(JSON.stringify({ alive_again_ms_after_restart: alive - restarted }));
  for (const p of tabs) assert.deepEqual(p.fennecErrors, []);
});

test('bootstrap server unreachable at join: join resolves and an error of kind "bootstrap" is emitted', async () => {
  const contexts = [];
  const page = await openTab(contexts);
  // Port 9 (discard) on loopback: nothing listens, so every bootstrap fetch fails.
  const url = await page.evaluate((o) => window.t.join(o),
    { bootstrapUrl: 'http://127.0.0.1:9', signalUrl: boot.signalUrl, space: `${space}-nobootstrap` });
  assert.match(url, /^ws:\/\//);
  const err = await pollPage(page, () => window.t.errors.find((e) => e.kind === 'bootstrap'), null, 'bootstrap error event', 30_000);
  assert.match(err.message, /poll|put/);
  assert.equal(await page.evaluate(() => window.t.state()), 'connected');
  for (const c of contexts) await c.close();
});

/** The agents a bootstrap server lists in a space (`GET /bootstrap/<space>`), sorted. */
async function listedAgents(bootstrapUrl, spaceId) {
  const res = await fetch(`${bootstrapUrl}/bootstrap/${spaceId}`);
  assert.equal(res.status, 200);
  return (await res.json()).map((e) => JSON.parse(e.agentInfo).agent).sort();
}

/** Polls `check` (async, in Node) every 200 ms until it returns truthy, or throws after `limitMs`. */
async function until(check, what, limitMs) {
  const deadline = Date.now() + limitMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`not within ${limitMs} ms: ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

// A bootstrap server of its own (the signal server stays up, so no reconnect puts the infos
// again): after it restarts empty, each tab's next poll finds its info missing and puts it
// again, so a tab joining later finds them at once instead of at their next re-sign (15 min).
// In the order that once kept a tab unlisted: tab 1 (behind a proxy) is listed alone in a
// poll before tab 0 joins, and its polls are held from then until tab 0 has put its info
// again after the restart, so tab 1's next answer lists only tab 0. That answer is as long as
// the longest that listed tab 1, yet a loss, not an eviction (a cap of 1): it must put again.
test('bootstrap server restarted alone: each tab puts its agent info again after its next poll', async () => {
  let directory = await startBootstrapServer();
  const listen = new URL(directory.url).host;
  const proxy = await flakyProxy(directory.url, { failFirstPut: false, hangFirstGet: false });
  const contexts = [];
  try {
    const pages = [await openTab(contexts), await openTab(contexts)];
    const join = (page, bootstrapUrl) => page.evaluate((o) => window.t.join(o),
      { bootstrapUrl, signalUrl: boot.signalUrl, space: `${space}-directory-restart` });
    await join(pages[1], proxy.url);
    const [alone, spaceId] = await pages[1].evaluate(() => [window.t.peer.agentId, window.t.space.id]);
    const listed = async () => JSON.stringify(await listedAgents(directory.url, spaceId));
    await until(async () => (await listed()) === JSON.stringify([alone]), 'tab 1 listed', 30_000);
    const polls = proxy.counts.GET;
    await until(() => proxy.answered.GET > polls, 'a poll of tab 1 answered after it was listed', 30_000);
    proxy.holdGets();
    await join(pages[0], directory.url);
    const first = await pages[0].evaluate(() => window.t.peer.agentId);
    const both = JSON.stringify([first, alone].sort());
    await until(async () => (await listed()) === both, 'both agents listed after join', 30_000);

    await directory.stop();
    directory = await startBootstrapServer({ listen });
    const restarted = Date.now();
    await until(async () => (await listed()) === JSON.stringify([first]), 'tab 0 listed again', 90_000);
    proxy.releaseGets();
    await until(async () => (await listed()) === both, 'both agents listed again after the restart', 90_000);
    console.log(JSON.stringify({ relisted_ms_after_restart: Date.now() - restarted }));
    for (const p of pages) {
      assert.equal(await p.evaluate(() => window.t.state()), 'connected', 'the signal link was not touched');
      assert.deepEqual(p.fennecErrors, []);
    }
  } finally {
    for (const c of contexts) await c.close();
    await proxy.stop();
    await directory.stop();
  }
});

// A bootstrap server whose cap for a space is 2 infos (`--max-entries-per-space 2`; a full
// space evicts an entry for each new agent): three tabs, each behind its own counting proxy,
// join one after another, each listed in one of its polls before the next joins. The third
// evicts one of the first two. The evicted tab must take its missing info for an eviction (an
// answer as long as one that listed it), not for a lost info: over three more polls of every
// tab, no tab puts its info again, so none evicts another on each poll.
test('a bootstrap server with a smaller cap: a tab evicted from the full space does not put its info again', async () => {
  const directory = await startBootstrapServer({ extraArgs: ['--max-entries-per-space', '2'] });
  const proxies = [];
  const contexts = [];
  try {
    const agents = [];
    let spaceId;
    for (let i = 0; i < 3; i++) {
      const proxy = await flakyProxy(directory.url, { failFirstPut: false, hangFirstGet: false });
      proxies.push(proxy);
      const page = await openTab(contexts);
      await page.evaluate((o) => window.t.join(o), { bootstrapUrl: proxy.url, signalUrl: boot.signalUrl, space: `${space}-small-cap` });
      [agents[i], spaceId] = await page.evaluate(() => [window.t.peer.agentId, window.t.space.id]);
      await until(async () => (await listedAgents(directory.url, spaceId)).includes(agents[i]), `tab ${i + 1} listed`, 30_000);
      const polls = proxy.counts.GET;
      await until(() => proxy.counts.GET > polls, `a poll of tab ${i + 1} after it was listed`, 30_000);
    }
    const listed = await listedAgents(directory.url, spaceId);
    assert.equal(listed.length, 2, 'the server keeps 2');
    assert.ok(listed.includes(agents[2]), 'the newest is kept');
    // Three more polls of every tab: each would have put its info again if it took the
    // eviction for a loss (one put per poll at most).
    const puts = proxies.map((p) => p.counts.PUT);
    const polls = proxies.map((p) => p.counts.GET);
    const started = Date.now();
    await until(() => proxies.every((p, i) => p.counts.GET >= polls[i] + 3), 'three more polls of every tab', 60_000);
    console.log(JSON.stringify({ small_cap_puts: proxies.map((p) => p.counts.PUT), three_polls_ms: Date.now() - started }));
    assert.deepEqual(proxies.map((p) => p.counts.PUT), puts, 'no tab put its info again');
    assert.deepEqual(await listedAgents(directory.url, spaceId), listed);
  } finally {
    for (const c of contexts) await c.close();
    for (const p of proxies) await p.stop();
    await directory.stop();
  }
});

/**
 * An HTTP proxy in front of `target` (a bootstrap server) that answers the first PUT with 503
 * (as a proxy does while the server behind it restarts) and never answers the first GET (a
 * wedged server), each unless turned off; after `endlessNext()`, it answers the next GET with
 * a body that never ends; between `holdGets()` and `releaseGets()` it queues GETs and forwards
 * them at the release. It forwards every other request. `counts` counts PUTs and GETs
 * received, `answered` those whose forwarded answer has ended.
 */
async function flakyProxy(target, { failFirstPut = true, hangFirstGet = true } = {}) {
  const counts = { PUT: 0, GET: 0 };
  const answered = { PUT: 0, GET: 0 };
  const hung = [];
  let held = null; // while GETs are held: the forwards to run at the release
  const endless = { armed: false, at: 0, sent: 0, closed: false };
  const server = http.createServer((req, res) => {
    if (req.method in counts) counts[req.method] += 1;
    if (req.method === 'PUT' && counts.PUT === 1 && failFirstPut) {
      req.resume();
      res.writeHead(503, { 'access-control-allow-origin': '*', 'content-type': 'text/plain' });
      res.end('service unavailable');
      return;
    }
    if (req.method === 'GET' && counts.GET === 1 && hangFirstGet) {
      hung.push(res);
      return;
    }
    if (req.method === 'GET' && endless.armed) {
      endless.armed = false;
      endless.at = counts.GET;
      hung.push(res);
      streamForever(res, endless);
      return;
    }
    const { hostname, port } = new URL(target);
    const forward = () => {
      const fwd = http.request({ hostname, port, path: req.url, method: req.method, headers: req.headers }, (up) => {
        res.writeHead(up.statusCode, up.headers);
        up.on('end', () => { if (req.method in answered) answered[req.method] += 1; });
        up.pipe(res);
      });
      fwd.on('error', () => res.destroy());
      req.pipe(fwd);
    };
    if (req.method === 'GET' && held) held.push(forward);
    else forward();
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    counts,
    answered,
    endless,
    /** The next GET is answered by `streamForever`. */
    endlessNext: () => { endless.armed = true; },
    holdGets: () => { held ??= []; },
    releaseGets: () => { const queued = held ?? []; held = null; for (const f of queued) f(); },
    stop: () => {
      for (const res of hung) res.destroy();
      server.closeAllConnections();
      return new Promise((r) => server.close(r));
    },
  };
}

/** Answers 200 with a JSON array that never ends (chunked, no length), written as fast as
 * the client reads it, until the client closes the connection. */
function streamForever(res, endless) {
  const chunk = Buffer.alloc(64 * 1024, ' ');
  res.writeHead(200, { 'access-control-allow-origin': '*', 'content-type': 'application/json' });
  res.on('close', () => { endless.closed = true; });
  res.write('[');
  const pump = () => {
    while (!endless.closed) {
      endless.sent += chunk.length;
      if (!res.write(chunk)) return void res.once('drain', pump);
    }
  };
  pump();
}

test('a bootstrap answer that never ends is cut at the size cap and polling goes on', async () => {
  const proxy = await flakyProxy(boot.url, { failFirstPut: false, hangFirstGet: false });
  const contexts = [];
  try {
    const page = await openTab(contexts);
    await page.evaluate((o) => window.t.join(o), { bootstrapUrl: proxy.url, signalUrl: boot.signalUrl, space: `${space}-endless-bootstrap` });
    // Armed once a poll has succeeded: an `error` event comes once per streak of failures,
    // and one emitted during `join`, before the page's listener was added, is not seen.
    await until(() => proxy.counts.GET >= 1, 'a first poll', 30_000);
    proxy.endlessNext();
    // The poll stops reading at 1 MiB and says so (not a timeout 15 s later), and it
    // closes the connection instead of draining the stream.
    const err = await pollPage(page, () => window.t.errors.find((e) => e.kind === 'bootstrap' && /poll/.test(e.message)), null, 'poll error event', 40_000);
    assert.match(err.message, /more than 1048576 bytes/);
    await until(() => proxy.endless.closed, 'the endless answer closed by the tab', 30_000);
    console.log(JSON.stringify({ poll_error: err.message, endless_bytes_sent: proxy.endless.sent }));
    // Polling goes on, and the later answers (the real server's, forwarded) are read without
    // error: once a third poll has gone out, the second one has ended.
    await until(() => proxy.endless.at > 0 && proxy.counts.GET >= proxy.endless.at + 2, 'two polls after the endless one', 30_000);
    const pollErrors = await page.evaluate(() => window.t.errors.filter((e) => e.kind === 'bootstrap' && /poll/.test(e.message)).length);
    assert.equal(pollErrors, 1);
    assert.deepEqual(page.fennecErrors, []);
  } finally {
    for (const c of contexts) await c.close();
    await proxy.stop();
  }
});

test('a bootstrap poll that hangs is abandoned and polling goes on; a put answered 503 is retried', async () => {
  const proxy = await flakyProxy(boot.url);
  const contexts = [];
  try {
    const page = await openTab(contexts);
    await page.evaluate((o) => window.t.join(o), { bootstrapUrl: proxy.url, signalUrl: boot.signalUrl, space: `${space}-flaky-bootstrap` });
    const [agent, spaceId] = await page.evaluate(() => [window.t.peer.agentId, window.t.space.id]);
    // The 503 is not final: the put is retried (on its back-off) and the server lists us.
    await until(async () => (await listedAgents(boot.url, spaceId)).includes(agent), 'our agent listed after a 503', 30_000);
    assert.ok(proxy.counts.PUT >= 2, `puts: ${proxy.counts.PUT}`);
    // The hung poll times out (an error event says so) and the next poll goes out.
    const err = await pollPage(page, () => window.t.errors.find((e) => e.kind === 'bootstrap' && /poll/.test(e.message)), null, 'poll error event', 40_000);
    assert.match(err.message, /time/i);
    console.log(JSON.stringify({ poll_error: err.message }));
    await until(() => proxy.counts.GET >= 2, 'a poll after the hung one', 30_000);
    assert.deepEqual(page.fennecErrors, []);
  } finally {
    for (const c of contexts) await c.close();
    await proxy.stop();
  }
});

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

// Tabs A and B reach the sbd server through a TCP proxy (one server for both: a peer URL names
// it), which, on cue, stops carrying bytes either way on tab A's connection and never closes
// the tab's socket (a network path gone while the socket still looks open: a laptop that
// slept, a NAT that forgot the mapping). The browser sees no close, so only our liveness probe
// can notice: with nothing received for 30 s the tab sends itself a forward through the
// server, and when nothing comes back within 15 s it drops the connection, reports it and
// reconnects. The proxy carries new connections, so the tab comes back, and an op it
// publishes then reaches tab B.
test('a half-open signal connection is found by the liveness probe, dropped and replaced', async () => {
  const proxy = await cuttableProxy(new URL(boot.signalUrl).host);
  const contexts = [];
  const pages = [];
  try {
    // One at a time, so that tab A's sbd connection is the proxy's first.
    for (let i = 0; i < 2; i++) {
      const page = await openTab(contexts);
      await page.evaluate((o) => window.t.join(o), { bootstrapUrl: boot.url, signalUrl: proxy.url, space: `${space}-half-open` });
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
  } finally {
    for (const c of contexts) await c.close();
    await proxy.stop();
  }
});
