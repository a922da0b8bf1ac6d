// A hostile peer at the protocol level: a page with a fennec `Transport` whose agent info is
// signed for the honest tabs' space (so their spaces admit it) (1) sends a PublishAgent with a
// tampered and one with an unsigned agent info, (2) sends a frame over the 4 MiB limit to every
// honest tab, then
// (3) announces made-up op ids (PublishOps) and answers the honest tabs' FetchRequests with
// data that does not hash to those ids. The honest tabs store none of it, report the hostile
// peer as misbehaved, never list the forged agents, and keep syncing; each closes the
// connection that carried the oversized frame (`stats().net.protocolCloses`).
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { openFennecPage, startDevnetAndBrowser } from './harness.mjs';

const TABS = 3;
const OPS_PER_TAB = 5;
const FAKE_OPS = 8;
const DEADLINE_MS = 60_000;

// Page side of an honest tab: window.t drives one peer in one space and records peer events.
function pageHelpers() {
  const t = { peer: null, space: null, errors: [], peerEvents: [] };
  const enc = new TextEncoder();
  window.t = t;
  t.join = async ({ bootstrapUrl, signalUrl, space }) => {
    const { Peer } = window.fennec;
    t.peer = await Peer.connect({ bootstrapUrl, signalUrl, storage: 'memory' });
    t.space = await t.peer.join(space);
    t.space.on('error', (e) => { t.errors.push(String(e && e.message)); });
    t.space.on('peer', (e) => { t.peerEvents.push({ ...e }); });
    return t.space.url;
  };
  t.publish = (records) => Promise.all(records.map(
    (r) => t.space.publish(enc.encode(r.line), { createdAt: r.createdAt / 1000 }))); // µs -> API ms
  t.stats = () => t.space.stats();
  t.check = (records) => Promise.all(records.map(async (r) => {
    const want = enc.encode(r.line);
    const got = await t.space.get(window.fennec.opId(want, r.createdAt));
    return got instanceof Uint8Array && got.length === want.length && got.every((b, i) => b === want[i]);
  }));
  t.getAll = (ids) => Promise.all(ids.map(async (id) => (await t.space.get(id)) === undefined));
}

let net, browser, stop, space;
const tabs = [];

// Honest tabs load pkg/ (what users get); the hostile loads the `testing` build, the only one
// with the protocol-level Transport (sendFrame, frame encoders).
async function newPage(pkg = '/pkg/index.js') {
  const context = await browser.newContext();
  await context.addInitScript(pageHelpers);
  return openFennecPage(context, net.staticUrl, '/blank.html', pkg);
}
const opsOf = async (page) => (await page.evaluate(() => window.t.stats())).ops;

async function until(label, ms, f) {
  const deadline = Date.now() + ms;
  for (;;) {
    const r = await f();
    if (r.ok) return r;
    if (Date.now() > deadline) assert.fail(`${label}: ${JSON.stringify(r)}`);
    await new Promise((res) => setTimeout(res, 300));
  }
}

const lines = (tag, n, t0) => Array.from({ length: n }, (_, k) => ({ line: `${tag}-${k}-${t0}`, createdAt: t0 + k }));

before(async () => {
  ({ net, browser, stop } = await startDevnetAndBrowser());
  space = `hostile-ops-e2e-${Date.now()}`;
  for (let i = 0; i < TABS; i++) tabs.push(await newPage());
  await Promise.all(tabs.map((p) => p.evaluate((o) => window.t.join(o),
    { bootstrapUrl: net.bootstrapUrl, signalUrl: net.signalUrl, space })));
  const t0 = Date.now() * 1000;
  await Promise.all(tabs.map((p, i) => p.evaluate((rs) => window.t.publish(rs), lines(`honest${i}`, OPS_PER_TAB, t0 + i * 100))));
  await until('honest tabs converge', DEADLINE_MS, async () => {
    const held = await Promise.all(tabs.map(opsOf));
    return { ok: held.every((h) => h === TABS * OPS_PER_TAB), held };
  });
});
after(() => stop?.());

// Page side of the hostile peer. Resolves with what it sent and saw.
async function hostile({ signalUrl, space, targets, fakeOps }) {
  const f = window.fennec;
  const tr = await f.Transport.connect(signalUrl, { space, relayOnly: false, maxMessageBytes: 8 << 20 });
  const b64u = (b) => btoa(String.fromCharCode(...b)).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
  const rand = (n) => crypto.getRandomValues(new Uint8Array(n));
  const out = { url: tr.url, connected: [], agentFrames: 0, oversized: [], fetchRequests: {}, answered: 0, errors: [] };
  const fakeIds = Array.from({ length: fakeOps }, () => b64u(rand(32)));
  out.fakeIds = fakeIds;
  for (const u of targets) out.connected.push(await tr.connectTo(u));

  // (1) Tampered agent info: our real one with another URL and an `agent` we do not hold the key
  // of, signature kept; and an unsigned one.
  const real = JSON.parse(tr.agentInfo);
  const inner = JSON.parse(real.agentInfo);
  out.fakeUrl = `${tr.url.slice(0, tr.url.lastIndexOf('/'))}/${b64u(rand(32))}`;
  out.forgedAgent = b64u(rand(32));
  const tampered = JSON.stringify({ agentInfo: JSON.stringify({ ...inner, url: out.fakeUrl }), signature: real.signature });
  const forged = JSON.stringify({ agentInfo: JSON.stringify({ ...inner, agent: out.forgedAgent, url: out.fakeUrl }), signature: real.signature });
  const unsigned = JSON.stringify({ agentInfo: JSON.stringify({ ...inner, agent: out.forgedAgent }) });
  for (const u of targets) {
    for (const j of [tampered, forged, unsigned, '{"agentInfo":"not json","signature":"AAAA"}']) {
      await tr.sendFrame(u, f.encodePublishAgent(space, j));
      out.agentFrames += 1;
    }
  }

  // (2) A frame over the honest side's 4 MiB limit (a fetch response for a fake id), to every
  // honest tab; each must close the connection (we see it go down), then we reconnect.
  out.disconnects = {};
  tr.onDisconnect((peer, reason) => { (out.disconnects[peer] ||= []).push(reason); });
  const big = f.encodeFetchResponse(space, [{ id: fakeIds[0], data: rand(0) }]);
  const huge = new Uint8Array((4 << 20) + 1024);
  huge.set(big);
  for (const u of targets) {
    try { await tr.sendFrame(u, huge); out.oversized.push('sent'); } catch (e) { out.oversized.push(String(e.message)); }
  }
  for (let i = 0; i < 100 && !targets.every((u) => out.disconnects[u]); i++) await new Promise((r) => setTimeout(r, 100));

  // (3) Announce made-up ids; answer every FetchRequest with data that does not hash to the id.
  tr.onFrame((peer, kind, ids) => {
    if (kind !== 'fetchRequest') return;
    (out.fetchRequests[peer] ||= []).push(...ids);
    const ops = ids.map((id) => ({ id, data: rand(64) }));
    tr.sendFrame(peer, f.encodeFetchResponse(space, ops))
      .then(() => { out.answered += ops.length; }, (e) => out.errors.push(String(e.message)));
  });
  for (const u of targets) {
    try { await tr.sendFrame(u, f.encodePublishOps(space, fakeIds)); } catch (e) { out.errors.push(String(e.message)); }
  }
  window.hostileOut = out;
  window.hostileTransport = tr;
  return out;
}

test('a hostile peer admitted to the space cannot plant ops or agents, is reported, and the honest tabs keep syncing', async () => {
  const urls = await Promise.all(tabs.map((p) => p.evaluate(() => window.t.space.url)));
  const before = await Promise.all(tabs.map(opsOf));
  const evil = await newPage('/pkg-testing/index.js');
  const netBefore = await Promise.all(tabs.map(async (p) => (await p.evaluate(() => window.t.stats())).net));
  const res = await evil.evaluate(hostile, { signalUrl: net.signalUrl, space, targets: urls, fakeOps: FAKE_OPS });
  assert.equal(res.connected.length, TABS, 'hostile connected to every honest tab');
  assert.equal(res.agentFrames, TABS * 4);

  // The oversized frame: every receiving tab closed that connection for it (a protocol
  // violation, counted once), and the hostile saw each connection go down.
  const netAfter = await until('each tab closed the oversized connection', 10_000, async () => {
    const n = await Promise.all(tabs.map(async (p) => (await p.evaluate(() => window.t.stats())).net));
    return { ok: n.every((x, i) => x.protocolCloses > netBefore[i].protocolCloses), n };
  });
  netAfter.n.forEach((x, i) => assert.equal(x.protocolCloses - netBefore[i].protocolCloses, 1,
    `tab ${i} closed exactly the oversized connection: ${JSON.stringify(x)}`));
  for (const u of urls) assert.ok((res.disconnects[u] || []).length > 0, `the connection to ${u} went down: ${JSON.stringify(res.disconnects)}`);

  // Every honest tab asked the hostile for the fake ops, got wrong data, and reported it.
  const events = await until('misbehaved reported by every honest tab', 30_000, async () => {
    const evs = await Promise.all(tabs.map((p) => p.evaluate(() => window.t.peerEvents)));
    const mis = evs.map((es) => es.filter((e) => e.kind === 'misbehaved' && e.url === res.url));
    return { ok: mis.every((m) => m.length > 0), mis, out: await evil.evaluate(() => window.hostileOut) };
  });
  const out = events.out;
  for (const u of urls) assert.ok((out.fetchRequests[u] || []).length > 0, `tab ${u} fetched from the hostile: ${JSON.stringify(out)}`);
  assert.ok(out.answered > 0, 'the hostile answered with wrong data');
  for (const m of events.mis) assert.match(m[0].reason, /wrong data/);

  // Nothing of it was stored; no forged agent or URL is a known peer.
  assert.deepEqual(await Promise.all(tabs.map(opsOf)), before, 'stats().ops unchanged by the hostile peer');
  for (const p of tabs) assert.deepEqual(await p.evaluate((ids) => window.t.getAll(ids), res.fakeIds), res.fakeIds.map(() => true));
  for (const p of tabs) {
    const peers = await p.evaluate(() => window.t.space.peers());
    assert.ok(peers.every((x) => x.agent !== res.forgedAgent), 'the forged agent is not a peer');
    assert.ok(peers.every((x) => x.url !== res.fakeUrl), 'the tampered URL is not a peer');
    const evs = await p.evaluate(() => window.t.peerEvents);
    assert.ok(evs.every((e) => e.agent !== res.forgedAgent && e.url !== res.fakeUrl), 'no event names a forged agent');
  }

  // The honest tabs keep syncing: a new op from each end reaches every honest tab.
  const t1 = Date.now() * 1000;
  const fresh = [{ line: `after-hostile-0-${t1}`, createdAt: t1 }, { line: `after-hostile-1-${t1}`, createdAt: t1 + 1 }];
  await tabs[0].evaluate((rs) => window.t.publish(rs), [fresh[0]]);
  await tabs[TABS - 1].evaluate((rs) => window.t.publish(rs), [fresh[1]]);
  await until('fresh ops converge', 30_000, async () => {
    const held = await Promise.all(tabs.map(opsOf));
    return { ok: held.every((h) => h === TABS * OPS_PER_TAB + 2), held };
  });
  for (const p of tabs) assert.deepEqual(await p.evaluate((rs) => window.t.check(rs), fresh), [true, true]);
  for (const p of tabs) assert.deepEqual(p.fennecErrors.map(String), [], 'no uncaught error in an honest page');
  const errs = await Promise.all(tabs.map((p) => p.evaluate(() => window.t.errors)));
  console.log(`hostile: oversized ${JSON.stringify(out.oversized)}, disconnects ${JSON.stringify(out.disconnects)}, fetch requests ${JSON.stringify(Object.values(out.fetchRequests).map((v) => v.length))}, answered ${out.answered}, errors ${JSON.stringify(out.errors)}; honest error events ${JSON.stringify(errs.map((e) => e.length))}`);
  await evil.evaluate(() => window.hostileTransport.close());
});
