// Spaces end to end on the real devnet (issue 5, deliverable 9): three tabs (separate browser
// contexts = separate users) publish the first 1 000 dataset records into one fresh space and
// converge; a late joiner catches up; a reloaded tab finds its ops in IndexedDB; a hostile raw
// sbd client forwarding garbage to an honest tab does not stop the honest tabs syncing.
// The tests share one devnet, browser and space and run in order.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { loadDataset } from '../../scripts/dataset.mjs';
import { installSliceHashCount, openFennecPage, pollPage, startDevnetAndBrowser } from './harness.mjs';

const RECORDS = 1000;
const TABS = 3;
const DEADLINE_MS = 90_000;

// Page side, installed on every load (reloads included): window.t drives one peer in one space.
function pageHelpers() {
  const t = { peer: null, space: null, errors: [] };
  const enc = new TextEncoder();
  window.t = t;
  t.fennec = async () => {
    if (!window.fennec) {
      const m = await import('/pkg/index.js');
      await m.default();
      window.fennec = m;
    }
    return window.fennec;
  };
  t.join = async ({ bootstrapUrl, signalUrl, space }) => {
    const { Peer } = await t.fennec();
    t.peer = await Peer.connect({ bootstrapUrl, signalUrl, storage: 'indexeddb' });
    t.space = await t.peer.join(space);
    t.space.on('error', (e) => { t.errors.push(String(e && e.message)); });
    return t.space.url;
  };
  t.publish = (records) => Promise.all(records.map(
    (r) => t.space.publish(enc.encode(r.line), { createdAt: r.createdAt / 1000 }))); // dataset µs -> API ms
  t.stats = () => t.space.stats();
  /** For each record: does space.get(opId(record)) return exactly its bytes? */
  t.check = async (records) => {
    const { opId } = await t.fennec();
    return Promise.all(records.map(async (r) => {
      const want = enc.encode(r.line);
      const got = await t.space.get(opId(want, r.createdAt));
      return got instanceof Uint8Array && got.length === want.length && got.every((b, i) => b === want[i]);
    }));
  };
}

let net, browser, stop, records, distinct, space;
const tabs = []; // honest pages
const pageErrors = (p) => p.fennecErrors.map((e) => String(e));

async function newTab() {
  const context = await browser.newContext();
  await context.addInitScript(pageHelpers);
  await installSliceHashCount(context);
  const page = await openFennecPage(context, net.staticUrl, '/blank.html');
  return page;
}

const join = (page) => page.evaluate((o) => window.t.join(o),
  { bootstrapUrl: net.bootstrapUrl, signalUrl: net.signalUrl, space });
const opsOf = async (page) => (await page.evaluate(() => window.t.stats())).ops;

/** Polls until every page holds at least `want` ops; fails with the counts at the deadline. */
async function converge(pages, want, label, ms = DEADLINE_MS) {
  const deadline = Date.now() + ms;
  for (;;) {
    const held = await Promise.all(pages.map(opsOf));
    if (held.every((h) => h >= want)) return held;
    if (Date.now() > deadline) assert.fail(`${label}: ops held [${held.join(' ')}], want ${want}`);
    await new Promise((r) => setTimeout(r, 500));
  }
}

before(async () => {
  records = await loadDataset(undefined, RECORDS);
  // Ops are content-addressed: identical records are one op.
  distinct = new Set(records.map((r) => `${r.createdAt}\n${r.line}`)).size;
  ({ net, browser, stop } = await startDevnetAndBrowser());
  space = `spaces-e2e-${Date.now()}`;
});
after(() => stop?.());

test(`${TABS} tabs publish ${RECORDS} records split among them and converge`, async () => {
  for (let i = 0; i < TABS; i++) tabs.push(await newTab());
  await Promise.all(tabs.map(join));
  // Tab 0's model writes its first watermark (of the empty model) 2 s after joining; the
  // reload test below then finds that watermark older than the ops (see there).
  await pollPage(tabs[0], async () => (await window.sliceHashCount()) >= 1, undefined,
    'the empty model\'s watermark', DEADLINE_MS);
  await Promise.all(tabs.map((p, i) => p.evaluate((rs) => window.t.publish(rs),
    records.filter((_, k) => k % TABS === i))));
  const held = await converge(tabs, distinct, 'converging');
  assert.deepEqual(held, tabs.map(() => distinct), 'no tab holds more than the distinct records');
  // Spot checks: records published by each tab, read from every tab, exact bytes.
  const sample = [0, 1, 2, 499, 500, 997, 998, 999].map((k) => records[k]);
  for (const p of tabs) assert.deepEqual(await p.evaluate((rs) => window.t.check(rs), sample), sample.map(() => true));
  for (const p of tabs) assert.deepEqual(pageErrors(p), []);
});

test('a late joiner catches up to every op', async () => {
  const late = await newTab();
  await join(late);
  await converge([late], distinct, 'late joiner');
  const sample = [3, 333, 666, 999].map((k) => records[k]);
  assert.deepEqual(await late.evaluate((rs) => window.t.check(rs), sample), sample.map(() => true));
  assert.deepEqual(pageErrors(late), []);
  tabs.push(late);
});

/** `page`'s gossip summary once its DHT model holds `want` ops. */
const modelWith = (page, want, label) => pollPage(page, async (n) => {
  const { gossip } = await window.t.stats();
  return gossip.opCount === n && gossip;
}, want, `${label}: a model of ${want} ops`, DEADLINE_MS);

// The reload usually comes within 30 s of the tab's last intake, so before its model's slice
// hashes are written (`PERSIST_AFTER_INTAKE`), while the watermark of its empty model (waited
// for in the first test) is stored: the load must see that this watermark names fewer ops
// than the store holds and rebuild the model from the ops. The records are from 2017 on, so
// they sit in sealed full slices and the disc top hash covers them; a load that trusted the
// old watermark kept the op count and a wrong hash (session 17's bug).
test('a reloaded tab finds its ops in IndexedDB right after re-joining, and its model has them', async () => {
  const page = tabs[0];
  const beforeOps = await opsOf(page);
  assert.equal(beforeOps, distinct);
  const live = await modelWith(page, distinct, 'before the reload');
  assert.equal(live.discTopHash, (await modelWith(tabs[1], distinct, 'another tab')).discTopHash,
    'two tabs with the same ops and full arcs have the same disc top hash');
  const slices = await page.evaluate(() => window.sliceHashCount());
  await page.reload();
  await join(page);
  assert.equal(await opsOf(page), beforeOps);
  const reloaded = await modelWith(page, distinct, 'after the reload');
  assert.equal(reloaded.discTopHash, live.discTopHash,
    `the reloaded model covers every sealed op (slice records before the reload: ${slices})`);
  assert.deepEqual(pageErrors(page), []);
});

// Hostile page: a raw WebSocket to the sbd relay with a fresh WebCrypto ed25519 key completes the
// sbd handshake (areq → ares → srdy), then forwards fennec signal frames (kinds 0x01–0x06 of
// src/net/frame.rs) with hostile bodies to each honest tab's peer key:
//  - malformed frames, each of which the receiver must count in `stats().net.malformedSignals`
//    (truncated headers and fields, SDP / candidate / mid text that is not UTF-8, a frame of
//    the relay's maximum size), plus a burst of them;
//  - stale frames for connections that do not exist (answer, candidate, no-rtc, close):
//    `stats().net.staleFrames`;
//  - a real WebRTC offer (the receiver must answer it), a candidate the browser rejects, then
//    a chunk out of order on that connection; relayed connections with a chunk sequence out of
//    order, an oversize announced length, a first chunk overrunning its message, an empty
//    continuation, a first chunk over an unfinished message, a continuation under the wrong
//    connection id, an unknown chunk kind, and a whole message that is not a preflight. Each of
//    these must close that connection (`stats().net.protocolCloses`) and tell the hostile why
//    (a Close frame with "protocol violation").
// Records every frame the tabs send back. Finally one frame larger than the relay's limit.
async function hostile({ signalUrl, targets, burst }) {
  const b64u = (b) => btoa(String.fromCharCode(...b)).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
  const unb64u = (s) => Uint8Array.from(atob(s.replace(/-/g, '+').replace(/_/g, '/')), (c) => c.charCodeAt(0));
  const enc = new TextEncoder();
  const cmd = (name, body = new Uint8Array()) => {
    const f = new Uint8Array(32 + body.length);
    f.set(enc.encode(name), 28);
    f.set(body, 32);
    return f;
  };
  const rand = (n) => {
    const b = new Uint8Array(n);
    for (let i = 0; i < n; i += 65536) crypto.getRandomValues(b.subarray(i, Math.min(n, i + 65536)));
    return b;
  };
  const cat = (...parts) => {
    const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
    let o = 0;
    for (const p of parts) { out.set(p, o); o += p.length; }
    return out;
  };
  const hex = (b) => Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
  const u32 = (n) => { const b = new Uint8Array(4); new DataView(b.buffer).setUint32(0, n); return b; };
  const ff = (n) => new Uint8Array(n).fill(0xff); // never UTF-8
  const fwd = (to, body) => cat(to, body);
  // Signal frames: kind | conn id (8) | body. Chunks: 0x10 First (total u32 | bytes), 0x11 More.
  const sig = (kind, conn, body = new Uint8Array()) => cat(Uint8Array.of(kind), conn, body);
  const first = (total, bytes) => cat(Uint8Array.of(0x10), u32(total), bytes);
  const more = (bytes) => cat(Uint8Array.of(0x11), bytes);
  const candidate = (cand, mid = '0', index = 0) => cat(Uint8Array.of(index >> 8, index & 0xff, mid.length), enc.encode(mid), enc.encode(cand));

  // A real offer, so the receiver's offer path runs to its answer.
  const pc = new RTCPeerConnection();
  pc.createDataChannel('x');
  await pc.setLocalDescription(await pc.createOffer());
  const realSdp = pc.localDescription.sdp;

  const key = await crypto.subtle.generateKey({ name: 'Ed25519' }, false, ['sign', 'verify']);
  const pub = new Uint8Array(await crypto.subtle.exportKey('raw', key.publicKey));
  const out = { ready: false, pub: b64u(pub), plan: {}, received: {} };
  const plans = targets.map((target) => {
    const conn = () => rand(8);
    const c = { offer: conn(), badSdp: conn(), tooLarge: conn(), overrun: conn(), emptyMore: conn(), twoFirsts: conn(), wrongConnA: conn(), wrongConnB: conn(), unknownChunk: conn(), notPreflight: conn(), moreFirst: conn() };
    const malformed = [
      Uint8Array.of(0x01),                                          // offer, no conn id
      sig(0x01, conn(), ff(40)),                                    // offer SDP not UTF-8
      sig(0x02, conn(), ff(40)),                                    // answer SDP not UTF-8
      sig(0x03, conn(), Uint8Array.of(0)),                          // candidate without its fields
      sig(0x03, conn(), cat(Uint8Array.of(0, 0, 200), enc.encode('ab'))), // mid longer than the frame
      sig(0x03, conn(), cat(Uint8Array.of(0, 0, 2), ff(2), enc.encode('candidate:x'))), // mid not UTF-8
      sig(0x03, conn(), cat(Uint8Array.of(0, 0, 0), ff(30))),       // candidate not UTF-8
      Uint8Array.of(0x04, 1, 2, 3),                                 // data, truncated conn id
      Uint8Array.of(0x05),                                          // close, no conn id
      Uint8Array.of(0x06, 9, 9),                                    // no-rtc, truncated conn id
      sig(0x01, conn(), ff(20_000 - 32 - 9)),                       // the relay's maximum, not UTF-8
    ];
    for (let i = 0; i < burst; i++) {
      const k = 1 + (i % 3);
      malformed.push(k === 3 ? sig(3, conn(), cat(Uint8Array.of(0xff, 0xff, 0), ff(50))) : sig(k, conn(), ff(50)));
    }
    const stale = [
      sig(0x02, conn(), enc.encode(realSdp)),                      // answer to an offer never made
      sig(0x03, conn(), candidate('candidate:1 1 udp 1 127.0.0.1 9 typ host')),
      sig(0x06, conn()),                                            // no-rtc for no connection
      sig(0x05, conn(), ff(3)),                                     // close for no connection
    ];
    // Each entry: frames for one connection that must end in a protocol-violation close of it.
    // The real offer and a candidate the browser rejects; once the tab answered, a chunk out of
    // order on that connection (sent before the answer, it would race the answer).
    const offer = [sig(0x01, c.offer, enc.encode(realSdp)), sig(0x03, c.offer, candidate('candidate:garbage not a candidate'))];
    const violations = [
      ['offer', [sig(0x04, c.offer, more(rand(10)))]],              // chunk out of order
      ['moreFirst', [sig(0x04, c.moreFirst, more(rand(10)))]],      // continuation before any first
      ['tooLarge', [sig(0x04, c.tooLarge, first(0xffffffff, rand(10)))]], // announces 4 GiB
      ['overrun', [sig(0x04, c.overrun, first(3, rand(10)))]],      // carries more than announced
      ['emptyMore', [sig(0x04, c.emptyMore, first(100, rand(10))), sig(0x04, c.emptyMore, more(new Uint8Array()))]],
      ['twoFirsts', [sig(0x04, c.twoFirsts, first(100, rand(10))), sig(0x04, c.twoFirsts, first(5, rand(5)))]],
      // A continuation under another connection id is a new connection that starts mid-message.
      ['wrongConnB', [sig(0x04, c.wrongConnA, first(100, rand(10))), sig(0x04, c.wrongConnB, more(rand(10)))]],
      ['unknownChunk', [sig(0x04, c.unknownChunk, cat(Uint8Array.of(0x12), rand(10)))]],
      ['notPreflight', [sig(0x04, c.notPreflight, first(8, enc.encode('garbage!')))]], // a whole message, not a preflight
    ];
    const badSdp = [sig(0x01, c.badSdp, enc.encode('v=0\r\nthis is not SDP\r\n'))];
    out.plan[target] = {
      malformed: malformed.length,
      stale: stale.length,
      violations: Object.fromEntries(violations.map(([name]) => [name, hex(c[name])])),
      offer: hex(c.offer),
      badSdp: hex(c.badSdp),
    };
    // Order: stale first (no connection from us exists yet), the malformed ones, the real offer;
    // after its answer the violations, one connection at a time (a tab holds one connection per
    // peer: each new connection id from us replaces the previous one), the bad SDP offer among
    // them.
    const [offerViolation, ...rest] = violations.flatMap(([, fs]) => fs);
    return { to: unb64u(target), offerConn: hex(c.offer), first: [...stale, ...malformed, ...offer], then: [offerViolation, ...badSdp, ...rest] };
  });

  return new Promise((resolve) => {
    const ws = new WebSocket(`${signalUrl}/${b64u(pub)}`);
    ws.binaryType = 'arraybuffer';
    const timer = setTimeout(() => { out.timeout = true; ws.close(); resolve(out); }, 30_000);
    ws.onerror = () => {};
    ws.onclose = (e) => { out.closed = e.code; };
    ws.onmessage = async (m) => {
      const f = new Uint8Array(m.data);
      const name = f.length >= 32 && f.subarray(0, 28).every((b) => b === 0)
        ? new TextDecoder().decode(f.subarray(28, 32)) : null;
      if (name === 'areq') {
        const sig = new Uint8Array(await crypto.subtle.sign('Ed25519', key.privateKey, f.subarray(32, 64)));
        ws.send(cmd('ares', sig));
      } else if (name === 'srdy') {
        out.ready = true;
        for (const p of plans) for (const fr of p.first) ws.send(fwd(p.to, fr));
        const answered = (p) => (out.received[b64u(p.to)] || []).some((r) => r.kind === 0x02 && r.conn === p.offerConn);
        for (let i = 0; i < 100 && !plans.every(answered); i++) await new Promise((r) => setTimeout(r, 100));
        for (const p of plans) for (const fr of p.then) ws.send(fwd(p.to, fr));
        // Let the tabs answer, then exceed the relay's limit (expected to be closed for it).
        setTimeout(() => {
          ws.send(fwd(plans[0].to, rand(64 * 1024)));
          setTimeout(() => { clearTimeout(timer); resolve(out); }, 1000);
        }, 4000);
      } else if (name === null && f.length > 32 + 9) {
        // A forward from a tab: sender key | kind | conn | body.
        const from = b64u(f.subarray(0, 32));
        const kind = f[32];
        const conn = hex(f.subarray(33, 41));
        const body = f.subarray(41);
        const rec = { kind, conn };
        if (kind === 0x05) rec.reason = new TextDecoder().decode(body);
        (out.received[from] ||= []).push(rec);
      }
    };
  });
}

/** Each tab's `stats().net`. */
const netStats = (pages) => Promise.all(pages.map((p) => p.evaluate(async () => (await window.t.stats()).net)));

test('a hostile raw sbd client sending malformed and out-of-order fennec frames is counted and cut off; honest tabs keep syncing', async () => {
  const urls = await Promise.all(tabs.map((p) => p.evaluate(() => window.t.space.url)));
  const targets = urls.map((u) => new URL(u).pathname.split('/').pop());
  const before = await netStats(tabs);
  for (const n of before) assert.equal(n.malformedSignals, 0, 'honest tabs sent each other nothing malformed');
  const evil = await newTab();
  const res = await evil.evaluate(hostile, { signalUrl: net.signalUrl, targets, burst: 200 });
  assert.ok(res.ready, `hostile client completed the sbd handshake: ${JSON.stringify(res)}`);

  // What each receiver did. Counters are polled: the relay and the tabs work asynchronously.
  let after;
  const deadline = Date.now() + 20_000;
  for (;;) {
    after = await netStats(tabs);
    const done = after.every((n, i) => n.malformedSignals - before[i].malformedSignals >= res.plan[targets[i]].malformed
      && n.protocolCloses - before[i].protocolCloses >= Object.keys(res.plan[targets[i]].violations).length);
    if (done || Date.now() > deadline) break;
    await new Promise((r) => setTimeout(r, 300));
  }
  tabs.forEach((_, i) => {
    const plan = res.plan[targets[i]];
    const d = (k) => after[i][k] - before[i][k];
    assert.equal(d('malformedSignals'), plan.malformed, `tab ${i} counted every malformed frame: ${JSON.stringify(after[i])}`);
    assert.ok(d('staleFrames') >= plan.stale, `tab ${i} ignored the frames for unknown connections: ${JSON.stringify(after[i])}`);
    assert.equal(d('protocolCloses'), Object.keys(plan.violations).length, `tab ${i} closed each violating connection once: ${JSON.stringify(after[i])}`);
    // The hostile was told why, per connection; the real offer was answered, the bad SDP not.
    const got = res.received[targets[i]] || [];
    for (const [name, conn] of Object.entries(plan.violations)) {
      const close = got.find((r) => r.kind === 0x05 && r.conn === conn);
      assert.ok(close, `tab ${i} closed the '${name}' connection: ${JSON.stringify(got)}`);
      assert.match(close.reason, /protocol violation/, `tab ${i} '${name}'`);
    }
    assert.ok(got.some((r) => r.kind === 0x02 && r.conn === plan.offer), `tab ${i} answered the real offer: ${JSON.stringify(got)}`);
    assert.ok(!got.some((r) => r.kind === 0x02 && r.conn === plan.badSdp), `tab ${i} did not answer the bad SDP`);
  });

  // The honest tabs still sync: one new op from each end of the list reaches every honest tab.
  const now = Date.now() * 1000;
  const fresh = [{ line: `after-hostile-0-${now}`, createdAt: now }, { line: `after-hostile-1-${now}`, createdAt: now + 1 }];
  await tabs[0].evaluate((rs) => window.t.publish(rs), [fresh[0]]);
  await tabs[tabs.length - 1].evaluate((rs) => window.t.publish(rs), [fresh[1]]);
  await converge(tabs, distinct + 2, 'after the hostile client', 30_000);
  for (const p of tabs) assert.deepEqual(await p.evaluate((rs) => window.t.check(rs), fresh), [true, true]);
  for (const p of tabs) assert.deepEqual(pageErrors(p), [], 'no uncaught error in an honest page');
  for (const p of tabs) {
    const peers = await p.evaluate(() => window.t.space.peers().map((x) => x.url || ''));
    assert.ok(peers.every((u) => !u.endsWith(res.pub)), 'the hostile key is not a known peer');
  }
  const errs = await Promise.all(tabs.map((p) => p.evaluate(() => window.t.errors)));
  console.log(`hostile: net stats before ${JSON.stringify(before)} after ${JSON.stringify(after)}; frames back ${JSON.stringify(Object.values(res.received).map((r) => r.length))}; relay closed us: ${res.closed}; honest tabs' error events: ${JSON.stringify(errs.map((e) => e.length))}`);
});

test('a tab that leaves: leave() resolves once the space stopped, and the others drop it from their peers', async () => {
  const leaver = tabs[tabs.length - 1];
  const rest = tabs.slice(0, -1);
  const url = await leaver.evaluate(() => window.t.space.url);
  const known = await Promise.all(rest.map((p) => p.evaluate((u) => window.t.space.peers().some((x) => x.url === u), url)));
  assert.deepEqual(known, rest.map(() => true), 'every other tab knows the leaver first');
  // Resolves only after the space's driver returned (the tombstone went out), never hangs.
  const left = await leaver.evaluate(() => Promise.race([
    window.t.space.leave().then(() => 'left'),
    new Promise((r) => setTimeout(() => r('leave() still pending after 10 s'), 10_000))]));
  assert.equal(left, 'left');
  const after = await leaver.evaluate(() => window.t.space.publish(new Uint8Array([1])).then(() => 'published', (e) => String(e.message || e)));
  assert.notEqual(after, 'published', 'a left space publishes nothing');
  const deadline = Date.now() + 30_000;
  for (;;) {
    const still = await Promise.all(rest.map((p) => p.evaluate((u) => window.t.space.peers().some((x) => x.url === u), url)));
    if (still.every((s) => !s)) break;
    if (Date.now() > deadline) assert.fail(`tabs still list the leaver: ${JSON.stringify(still)}`);
    await new Promise((r) => setTimeout(r, 300));
  }
});
