// An admitted hostile peer sends malformed and oversized gossip (issue 10, deliverable 5). Three
// honest tabs (pkg/, memory storage, relay only) converge; a hostile page (the `testing` build's
// protocol-level `Transport`, signed for the space, so admitted; frames from `encodeGossip`)
// then, to each honest tab:
//   (1) opens a round and answers the Accept with random disc sector hashes: a real diff of
//       made-up data, which must stay bounded (the round ends: Hashes or Terminate), and is no
//       offence;
//   (2) sends Hashes and DiscSectorDetailsDiffResponse for sessions that do not exist: refused
//       and counted (`stats().gossip.refused`), no offence and no disconnect, since such races
//       are legitimate;
//   (3) with a fresh Transport (a new key) per attack, since an offender is blocked by agent:
//       opens a round, then answers its Accept with a malformed message: a DiscSectorsDiff
//       naming sector 519 (>= 512), a NoDiff offering 16 385 ids (> GossipConfig::max_ids) or
//       ids of the wrong length. Each honest tab must report the hostile `misbehaved` with
//       the gossip reason and close its connection (the hostile sees the disconnect).
// An honest tab may initiate to the hostile at the same moment (a simultaneous initiate), so an
// attack whose round was not accepted is retried with a new session, up to 5 times. Afterwards
// fresh ops from the honest tabs still converge, with no page error.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { openFennecPage, startDevnetAndBrowser } from './harness.mjs';

const TABS = 3;
const OPS_PER_TAB = 4;
const DEADLINE_MS = 30_000;
const MALFORMED = [
  { attack: 'badSector', reason: /gossip: malformed gossip message: sector index out of range/ },
  { attack: 'hugeIds', reason: /gossip: malformed gossip message: too many op ids/ },
  { attack: 'shortIds', reason: /gossip: malformed gossip message: op id of the wrong length/ },
];

// Page side of an honest tab.
function honestHelpers() {
  const t = { peerEvents: [], errors: [] };
  const enc = new TextEncoder();
  window.t = t;
  t.join = async ({ bootstrapUrl, signalUrl, space }) => {
    const { Peer } = window.fennec;
    t.peer = await Peer.connect({ bootstrapUrl, signalUrl, storage: 'memory', relayOnly: true });
    t.space = await t.peer.join(space);
    t.space.on('peer', (e) => t.peerEvents.push({ ...e }));
    t.space.on('error', (e) => t.errors.push(`${e.kind}: ${e.message}`));
    return t.space.url;
  };
  t.publish = (lines) => Promise.all(lines.map((l) => t.space.publish(enc.encode(l))));
  t.stats = () => t.space.stats();
  t.has = (ids) => Promise.all(ids.map(async (id) => (await t.space.get(id)) !== undefined));
}

// Page side of the hostile peer: window.h holds its Transports and what each saw.
function hostileHelpers() {
  const h = { trs: [] };
  window.h = h;
  const rand = (n) => crypto.getRandomValues(new Uint8Array(n));
  const hex = (b) => Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
  const send = (st, peer, desc) => st.tr.sendFrame(peer, window.fennec.encodeGossip(h.space, desc));
  /** The first gossip frame from `peer` for session `sid` of one of `types`, or null after `ms`. */
  const frame = async (st, peer, sid, types, ms) => {
    const deadline = Date.now() + ms;
    for (;;) {
      const f = st.frames.find((x) => x.peer === peer && x.sid === hex(sid) && types.includes(x.type));
      if (f || Date.now() > deadline) return f || null;
      await sleep(50);
    }
  };
  /** A new Transport connected to every target; its index. */
  h.open = async ({ signalUrl, space, targets }) => {
    h.space = space;
    const tr = await window.fennec.Transport.connect(signalUrl, { space, relayOnly: true });
    const st = { tr, url: tr.url, frames: [], disconnects: [] };
    tr.onFrame((peer, kind, ids, d) => {
      if (kind === 'gossip') st.frames.push({ peer, type: d.type, sid: hex(d.sessionId), discBoundary: d.discBoundary });
    });
    tr.onDisconnect((peer, reason) => st.disconnects.push({ peer, reason }));
    for (const u of targets) await tr.connectTo(u);
    h.trs.push(st);
    return { i: h.trs.length - 1, url: tr.url };
  };
  /** Opens a round with `peer` (new session, winning tie-breaks), retrying up to 5 times;
   * resolves with the session and the Accept, or null. */
  const accepted = async (st, peer) => {
    for (let k = 1; k <= 5; k++) {
      const sid = rand(16);
      sid[0] = 0xff;
      await send(st, peer, { type: 'initiate', sessionId: sid, tieBreaker: 0xffffffff });
      const f = await frame(st, peer, sid, ['accept', 'busy', 'terminate'], 5000);
      if (f && f.type === 'accept') return { sid, accept: f, tries: k };
    }
    return null;
  };
  /** (1) Random disc sector hashes in a round: resolves with the reply types until it ends. */
  h.wrongHashes = async ({ i, peer }) => {
    const st = h.trs[i];
    const r = await accepted(st, peer);
    if (!r) return { ok: false, why: 'never accepted', frames: st.frames };
    const sectors = [0, 1, 2, 100, 300, 511];
    await send(st, peer, {
      type: 'discSectorsDiff', sessionId: r.sid, discBoundary: r.accept.discBoundary,
      sectors, hashes: sectors.map(() => rand(32)),
    });
    const seen = [];
    const reply = await frame(st, peer, r.sid, ['discSectorDetailsDiff', 'terminate'], 10_000);
    if (!reply) return { ok: false, why: 'no reply to the diff', frames: st.frames };
    seen.push(reply.type);
    if (reply.type === 'discSectorDetailsDiff') {
      await send(st, peer, { type: 'discSectorDetailsDiffResponse', sessionId: r.sid });
      const end = await frame(st, peer, r.sid, ['hashes', 'terminate'], 10_000);
      if (!end) return { ok: false, why: 'the round did not end', frames: st.frames };
      seen.push(end.type);
    }
    return { ok: true, seen, tries: r.tries };
  };
  /** (2) Messages for sessions that do not exist. */
  h.outOfStage = async ({ i, peer }) => {
    const st = h.trs[i];
    await send(st, peer, { type: 'hashes', sessionId: rand(16), ids: [rand(32)] });
    await send(st, peer, { type: 'discSectorDetailsDiffResponse', sessionId: rand(16) });
  };
  /** (3) A malformed answer to an Accept; resolves once `peer` closed the connection for it. */
  h.malformed = async ({ i, peer, attack }) => {
    const st = h.trs[i];
    const r = await accepted(st, peer);
    if (!r) return { ok: false, why: 'never accepted', frames: st.frames };
    const desc = {
      badSector: { type: 'discSectorsDiff', sessionId: r.sid, discBoundary: r.accept.discBoundary, sectors: [7, 519], hashes: [rand(32), rand(32)] },
      hugeIds: { type: 'noDiff', sessionId: r.sid, idCount: 16_385 },
      shortIds: { type: 'noDiff', sessionId: r.sid, ids: [rand(32), rand(31)] },
    }[attack];
    await send(st, peer, desc);
    const deadline = Date.now() + 10_000;
    for (;;) {
      const d = st.disconnects.find((x) => x.peer === peer && /gossip/.test(x.reason));
      if (d) return { ok: true, tries: r.tries, reason: d.reason, terminated: st.frames.some((f) => f.peer === peer && f.sid === hex(r.sid) && f.type === 'terminate') };
      if (Date.now() > deadline) return { ok: false, why: 'no disconnect', disconnects: st.disconnects };
      await sleep(50);
    }
  };
  h.disconnects = (i) => h.trs[i].disconnects;
}

let net, browser, stop, space;
const tabs = [];
let urls = [];

before(async () => {
  ({ net, browser, stop } = await startDevnetAndBrowser());
  space = `hostile-gossip-e2e-${Date.now()}`;
  for (let i = 0; i < TABS; i++) {
    const context = await browser.newContext();
    await context.addInitScript(honestHelpers);
    tabs.push(await openFennecPage(context, net.staticUrl, '/blank.html', '/pkg/index.js'));
  }
  urls = await Promise.all(tabs.map((p) => p.evaluate((o) => window.t.join(o),
    { bootstrapUrl: net.bootstrapUrl, signalUrl: net.signalUrl, space })));
});
after(() => stop?.());

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const stats = (p) => p.evaluate(() => window.t.stats());

/** Polls `check` (async; truthy when done) every 200 ms; fails naming `what` after `ms`. */
async function until(what, ms, check) {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await check();
    if (v) return v;
    if (Date.now() > deadline) assert.fail(`not within ${ms} ms: ${what}`);
    await sleep(200);
  }
}

async function publishAll(tag) {
  const ids = await Promise.all(tabs.map((p, i) => p.evaluate((ls) => window.t.publish(ls),
    Array.from({ length: OPS_PER_TAB }, (_, k) => `${tag}-tab${i}-${k}-${Date.now()}`))));
  return ids.flat();
}

test('malformed and oversized gossip from an admitted peer is bounded, reported and disconnected; the rest converge', async () => {
  const first = await publishAll('before');
  await until('the honest tabs converge', DEADLINE_MS, async () =>
    (await Promise.all(tabs.map(stats))).every((s) => s.ops === first.length));
  const before = await Promise.all(tabs.map(stats));

  const evil = await openFennecPage(await browser.newContext(), net.staticUrl, '/blank.html', '/pkg-testing/index.js');
  await evil.evaluate(hostileHelpers);
  const open = () => evil.evaluate((o) => window.h.open(o), { signalUrl: net.signalUrl, space, targets: urls });

  // (1) and (2) with one Transport: no offence, so it is never blocked.
  const a = await open();
  const wrong = [];
  for (const peer of urls) {
    const r = await evil.evaluate((o) => window.h.wrongHashes(o), { i: a.i, peer });
    assert.ok(r.ok, `a round with random sector hashes ends: ${JSON.stringify(r)}`);
    wrong.push(r);
  }
  for (const peer of urls) await evil.evaluate((o) => window.h.outOfStage(o), { i: a.i, peer });
  await until('out-of-stage messages refused and counted', DEADLINE_MS, async () =>
    (await Promise.all(tabs.map(stats))).every((s, k) => s.gossip.refused >= before[k].gossip.refused + 2));

  // (3) one fresh Transport per malformed attack.
  const offenders = [];
  for (const m of MALFORMED) {
    const t = await open();
    const results = [];
    for (const peer of urls) {
      const r = await evil.evaluate((o) => window.h.malformed(o), { i: t.i, peer, attack: m.attack });
      assert.ok(r.ok, `${m.attack} to ${peer}: the connection is closed for it: ${JSON.stringify(r)}`);
      assert.match(r.reason, m.reason, `${m.attack}: the close names the offence`);
      results.push(r);
    }
    offenders.push({ ...m, url: t.url, results });
  }

  // Each honest tab reported each offender, with the gossip reason, and only them.
  for (const [k, p] of tabs.entries()) {
    const mis = (await p.evaluate(() => window.t.peerEvents)).filter((e) => e.kind === 'misbehaved');
    for (const o of offenders) {
      const got = mis.filter((e) => e.url === o.url);
      assert.equal(got.length, 1, `tab ${k} reported ${o.attack} once: ${JSON.stringify(mis)}`);
      assert.match(got[0].reason, o.reason);
    }
    assert.ok(mis.every((e) => e.url !== a.url), `tab ${k}: wrong hashes and out-of-stage messages are no offence: ${JSON.stringify(mis)}`);
  }
  const aDisconnects = await evil.evaluate((i) => window.h.disconnects(i), a.i);
  assert.ok(aDisconnects.every((d) => !/gossip/.test(d.reason)), `no gossip disconnect of the non-offender: ${JSON.stringify(aDisconnects)}`);
  const after1 = await Promise.all(tabs.map(stats));
  after1.forEach((s, k) => assert.ok(s.gossip.refused >= before[k].gossip.refused + 2 + MALFORMED.length,
    `tab ${k} counted the refusals: ${before[k].gossip.refused} -> ${s.gossip.refused}`));
  after1.forEach((s, k) => assert.equal(s.ops, before[k].ops, `tab ${k} stored nothing of the hostile's`));

  // The honest tabs still converge on fresh ops.
  const fresh = await publishAll('after');
  const all = first.length + fresh.length;
  await until('fresh ops converge after the attacks', DEADLINE_MS, async () =>
    (await Promise.all(tabs.map(stats))).every((s) => s.ops === all));
  for (const p of tabs) assert.deepEqual(await p.evaluate((ids) => window.t.has(ids), fresh), fresh.map(() => true));
  for (const p of tabs) assert.deepEqual(p.fennecErrors.map(String), [], 'no uncaught error in an honest page');
  assert.deepEqual(evil.fennecErrors.map(String), [], 'no uncaught error in the hostile page');
  const end = await Promise.all(tabs.map(stats));
  console.log(JSON.stringify({
    hostileGossip: {
      wrongHashes: wrong.map((r) => r.seen.join('>')),
      tries: offenders.map((o) => `${o.attack}:${o.results.map((r) => r.tries).join(',')}`),
      terminateSeen: offenders.map((o) => o.results.filter((r) => r.terminated).length),
      refused: end.map((s, k) => s.gossip.refused - before[k].gossip.refused),
      closeReason: offenders[0].results[0].reason,
    },
  }));
});
