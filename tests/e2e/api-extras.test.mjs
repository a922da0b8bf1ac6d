// The API additions of issue 12 (deliverable 5), in real Chromium on the real devnet through
// the package entry (pkg/index.js, so through the profile layer of src/js/profile/):
// - space.send(agent, bytes) gives the other agent a `message` event { from, fromUrl, data };
// - op events name the sending agent (`from`) and its URL (`fromUrl`);
// - publishMany stores a batch and resolves with its ids in order; the receiver reports `sync`
//   progress that ends with remaining 0 and fetched + failed = missing;
// - `signal`: an aborted signal rejects with its reason (AbortError by default), at once and
//   storing nothing when aborted before the call (publish, publishMany, join, send), or while
//   the call waits;
// - bad arguments of the new calls are TypeError/RangeError naming them; nothing is stored;
// - stats().delivery counts ops published, pushed and taken, served and received;
// - a join puts its agent info to bootstrap once (at join; the space's own LocalAgentInfo
//   event for the same info, after the model loaded, is skipped);
// - space.ops() lists what the peer holds (published and received), oldest first, within
//   [from, to), newest first and in pages (limit, after), in a follower tab too, and after
//   the profile's node moved to another tab (read back from IndexedDB); pages split ops of
//   one createdAt without repeating any; bad options are refused naming them.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { openFennecPage, pollPage, startDevnetAndBrowser } from './harness.mjs';

let net, browser, stop;

function pageHelpers() {
  const t = { messages: [], ops: [], syncs: [] };
  window.t = t;
  t.describe = (e) => ({
    ok: false,
    name: e?.name,
    code: e?.code,
    message: String(e?.message ?? e),
    typeError: e instanceof TypeError,
    rangeError: e instanceof RangeError,
    domException: e instanceof DOMException,
    fennecError: !!window.fennec && e instanceof window.fennec.FennecError,
  });
  t.outcome = async (f) => {
    try {
      const v = await f();
      return { ok: true, value: v };
    } catch (e) {
      return t.describe(e);
    }
  };
  t.join = async ({ bootstrapUrl, signalUrl, space }) => {
    t.peer = await window.fennec.Peer.connect({ bootstrapUrl, signalUrl });
    t.space = await t.peer.join(space);
    const dec = new TextDecoder();
    t.space.on('message', (e) => t.messages.push({ from: e.from, fromUrl: e.fromUrl, text: dec.decode(e.data) }));
    t.space.on('op', (e) => t.ops.push({ id: e.id, from: e.from, fromUrl: e.fromUrl }));
    t.space.on('sync', (e) => t.syncs.push({ ...e }));
    return { agent: t.peer.agentId, url: t.space.url, role: t.peer.role };
  };
  /** `space.ops(options)` as `[createdAt, text]` pairs (ids in `t.heldIds`), or its refusal. */
  t.held = async (options) => {
    const o = await t.outcome(() => t.space.ops(options));
    if (!o.ok) return o;
    t.heldIds = o.value.map((x) => x.id);
    return o.value.map((x) => [x.createdAt, new TextDecoder().decode(x.payload)]);
  };
}

async function newPage() {
  const context = await browser.newContext();
  await context.addInitScript(pageHelpers);
  return openFennecPage(context, net.staticUrl);
}


function refused(o, want, re, label) {
  assert.equal(o.ok, false, `${label}: expected a refusal, got ${JSON.stringify(o)}`);
  if (want === 'TypeError') assert.ok(o.typeError && !o.rangeError, `${label}: want TypeError, got ${JSON.stringify(o)}`);
  else if (want === 'RangeError') assert.ok(o.rangeError, `${label}: want RangeError, got ${JSON.stringify(o)}`);
  else if (want === 'AbortError') assert.ok(o.domException && o.name === 'AbortError', `${label}: want AbortError, got ${JSON.stringify(o)}`);
  else {
    assert.ok(o.fennecError, `${label}: want FennecError, got ${JSON.stringify(o)}`);
    assert.equal(o.code, want, `${label}: ${o.message}`);
  }
  if (re) assert.match(o.message, re, label);
}

/** Records every PUT the page sends with fetch (bootstrap puts), before any page script. */
function recordPuts() {
  window.puts = [];
  const real = window.fetch.bind(window);
  window.fetch = (input, init) => {
    const method = (init?.method ?? input?.method ?? 'GET').toUpperCase();
    if (method === 'PUT') window.puts.push(String(input?.url ?? input));
    return real(input, init);
  };
}

const uniqueSpace = (tag) => `api-extras-${tag}-${Date.now()}-${Math.random().toString(36).slice(2)}`;
const servers = () => ({ bootstrapUrl: net.bootstrapUrl, signalUrl: net.signalUrl });

before(async () => ({ net, browser, stop } = await startDevnetAndBrowser()));
after(() => stop?.());

test('send gives a message event; publishMany ops arrive naming their agent; sync progress ends complete', async () => {
  const space = uniqueSpace('send');
  const [a, b] = [await newPage(), await newPage()];
  const ia = await a.evaluate((o) => t.join(o), { ...servers(), space });
  const ib = await b.evaluate((o) => t.join(o), { ...servers(), space });
  await pollPage(a, (agent) => t.space.peers().some((p) => p.agent === agent), ib.agent, 'a sees b');
  await pollPage(b, (agent) => t.space.peers().some((p) => p.agent === agent), ia.agent, 'b sees a');

  const sent = await a.evaluate((agent) => t.outcome(() => t.space.send(agent, new TextEncoder().encode('hi b'))), ib.agent);
  assert.equal(sent.ok, true, JSON.stringify(sent));
  const [msg] = await pollPage(b, () => t.messages.length > 0 && t.messages, null, 'the message at b');
  assert.deepEqual(msg, { from: ia.agent, fromUrl: ia.url, text: 'hi b' });

  // 300 ops of ~400 B: over the 64 KiB a publish batch may push with its data, so b is
  // announced the ids and fetches them (a sync round), as in a bulk import.
  const N = 300;
  const ids = await a.evaluate(async (n) => {
    const enc = new TextEncoder();
    const pad = '|' + 'x'.repeat(400);
    const items = Array.from({ length: n }, (_, i) => (i % 2
      ? enc.encode(`bulk ${i}${pad}`)
      : { payload: enc.encode(`bulk ${i}${pad}`), createdAt: 1_700_000_000_000 + i }));
    return t.space.publishMany(items);
  }, N);
  assert.equal(ids.length, N);
  assert.equal(new Set(ids).size, N, 'one id per item');
  const atA = await a.evaluate(async (ids) => {
    const got = await Promise.all([ids[0], ids[299]].map((id) => t.space.get(id)));
    return { ops: (await t.space.stats()).ops, got: got.map((g) => new TextDecoder().decode(g).split('|')[0]) };
  }, ids);
  assert.deepEqual(atA, { ops: N, got: ['bulk 0', 'bulk 299'] }, 'the ids are the items\' in order');

  await pollPage(b, (n) => t.ops.length >= n && t.syncs.length > 0 && t.syncs.at(-1).remaining === 0, N,
    'b holds every bulk op and its last sync report says done');
  const atB = await b.evaluate(() => ({ ops: t.ops, syncs: t.syncs }));
  assert.ok(atB.ops.every((o) => o.from === ia.agent && o.fromUrl === ia.url), 'op events name a\'s agent and URL');
  const last = atB.syncs.at(-1);
  assert.equal(last.fetched + last.failed, last.missing, JSON.stringify(last));
  assert.ok(atB.syncs.reduce((s, x) => s + x.fetched, 0) > 0, 'some reports count fetched ops');
  assert.ok(atB.syncs.some((x) => x.remaining > 0), `a report while ops were missing: ${JSON.stringify(atB.syncs)}`);
});

test('stats().delivery counts ops published, pushed and taken, served and received', async () => {
  const space = uniqueSpace('delivery');
  const [a, b] = [await newPage(), await newPage()];
  const ia = await a.evaluate((o) => t.join(o), { ...servers(), space });
  const ib = await b.evaluate((o) => t.join(o), { ...servers(), space });
  await pollPage(a, (agent) => t.space.peers().some((p) => p.agent === agent), ib.agent, 'a sees b');
  await pollPage(b, (agent) => t.space.peers().some((p) => p.agent === agent), ia.agent, 'b sees a');
  const delivery = (page) => page.evaluate(async () => (await t.space.stats()).delivery);

  // One small op: pushed with its data (under 64 KiB), so b stores it without a fetch.
  await a.evaluate(() => t.space.publish(new TextEncoder().encode('small')));
  await pollPage(b, () => t.ops.length >= 1, null, 'b holds the small op');
  const [a1, b1] = [await delivery(a), await delivery(b)];
  assert.deepEqual([a1.published, a1.pushed, a1.served], [1, 1, 0], `a: ${JSON.stringify(a1)}`);
  assert.deepEqual([b1.received, b1.pushedTaken, b1.published], [1, 1, 0], `b: ${JSON.stringify(b1)}`);

  // 100 ops of ~1 KB: over the push limit, announced and fetched from a.
  const N = 100;
  await a.evaluate((n) => t.space.publishMany(Array.from({ length: n },
    (_, i) => new TextEncoder().encode(`big ${i}|${'y'.repeat(1000)}`))), N);
  await pollPage(b, (n) => t.ops.length >= n, N + 1, 'b holds the announced ops');
  const [a2, b2] = [await delivery(a), await delivery(b)];
  assert.deepEqual([a2.published, a2.pushed], [N + 1, 1], `a: ${JSON.stringify(a2)}`);
  assert.ok(a2.served >= N, `a served b's fetches: ${JSON.stringify(a2)}`);
  assert.deepEqual([b2.received, b2.pushedTaken], [N + 1, 1], `b: ${JSON.stringify(b2)}`);
});

test('signal: aborted before the call rejects at once and stores nothing; abort while waiting rejects with the reason', async () => {
  const page = await newPage();
  await page.evaluate((o) => t.join(o), { ...servers(), space: uniqueSpace('abort') });
  const r = await page.evaluate(async (o) => {
    const bytes = new Uint8Array([1, 2, 3]);
    const aborted = AbortSignal.abort();
    // An agent id no peer has: without the abort, send would reject with "unreachable".
    const agent = 'A'.repeat(43);
    const before = {
      publish: await t.outcome(() => t.space.publish(bytes, { signal: aborted })),
      publishMany: await t.outcome(() => t.space.publishMany([bytes], { signal: aborted })),
      join: await t.outcome(() => t.peer.join('never-joined', { signal: aborted })),
      send: await t.outcome(() => t.space.send(agent, bytes, { signal: aborted })),
    };
    const reason = new Error('send reason');
    const sendReason = await t.space.send(agent, bytes, { signal: AbortSignal.abort(reason) })
      .then(() => 'resolved', (e) => (e === reason ? 'the reason' : t.describe(e)));
    const stored = (await t.space.stats()).ops;
    const id = await t.space.publish(bytes);
    const c1 = new AbortController();
    const get = t.outcome(() => t.space.get(id, { signal: c1.signal }));
    c1.abort();
    const c2 = new AbortController();
    const join = t.outcome(() => t.peer.join(o.space, { signal: c2.signal }));
    c2.abort(new Error('my reason'));
    const unaborted = await t.space.get(id, { signal: new AbortController().signal });
    return { before, sendReason, stored, get: await get, join: await join, unaborted: Array.from(unaborted) };
  }, { space: uniqueSpace('abort-join') });
  for (const [k, o] of Object.entries(r.before)) refused(o, 'AbortError', null, `${k} with an aborted signal`);
  assert.equal(r.sendReason, 'the reason', 'send with an aborted signal rejects with that signal\'s reason');
  assert.equal(r.stored, 0, 'nothing stored by the aborted calls');
  refused(r.get, 'AbortError', null, 'get aborted while waiting');
  assert.equal(r.join.ok, false);
  assert.equal(r.join.message, 'my reason', 'rejects with the abort reason given');
  assert.deepEqual(r.unaborted, [1, 2, 3]);
});

test('bad arguments of send, publishMany and signal are TypeError/RangeError naming them; nothing is stored', async () => {
  const page = await newPage();
  await page.evaluate((o) => t.join(o), { ...servers(), space: uniqueSpace('bad') });
  const r = await page.evaluate(async () => {
    const s = t.space;
    const b = new Uint8Array([7]);
    const someAgent = 'A'.repeat(43);
    return {
      sendAgent: await t.outcome(() => s.send('nope', b)),
      sendData: await t.outcome(() => s.send(someAgent, 'text')),
      sendBig: await t.outcome(() => s.send(someAgent, new Uint8Array((1 << 20) + 1))),
      sendUnknown: await t.outcome(() => s.send(someAgent, b)),
      sendSelf: await t.outcome(() => s.send(t.peer.agentId, b)),
      manyNotArray: await t.outcome(() => s.publishMany(b)),
      manyBadItem: await t.outcome(() => s.publishMany([b, 'x'])),
      manyMisspelt: await t.outcome(() => s.publishMany([{ payload: b, created: 1 }])),
      manyBadTime: await t.outcome(() => s.publishMany([b, { payload: b, createdAt: new Date(NaN) }])),
      manyEmpty: await t.outcome(() => s.publishMany([])),
      signal: await t.outcome(() => s.publish(b, { signal: 'stop' })),
      getOption: await t.outcome(() => s.get('A'.repeat(43), { sig: 1 })),
      joinSignal: await t.outcome(() => t.peer.join('x', { signal: {} })),
      onSync: await t.outcome(() => s.on('sync', 5)),
      onMessages: await t.outcome(() => s.on('messages', () => {})),
      ops: (await s.stats()).ops,
    };
  });
  refused(r.sendAgent, 'TypeError', /space\.send: agent must be an agent id/, 'send agent');
  refused(r.sendData, 'TypeError', /space\.send: data must be a Uint8Array/, 'send data');
  refused(r.sendBig, 'RangeError', /space\.send: data is 1048577 bytes/, 'send too large');
  refused(r.sendUnknown, 'unreachable', /not a reachable peer/, 'send to an unknown agent');
  refused(r.sendSelf, 'unreachable', /ourselves/, 'send to ourselves');
  refused(r.manyNotArray, 'TypeError', /space\.publishMany: items must be an Array/, 'publishMany not an array');
  refused(r.manyBadItem, 'TypeError', /items\[1\]/, 'publishMany bad item');
  refused(r.manyMisspelt, 'TypeError', /unknown option `items\[0\]\.created`; did you mean `items\[0\]\.createdAt`/, 'publishMany misspelt');
  refused(r.manyBadTime, 'RangeError', /items\[1\]\.createdAt/, 'publishMany bad time');
  assert.deepEqual(r.manyEmpty, { ok: true, value: [] });
  refused(r.signal, 'TypeError', /space\.publish: option signal must be an AbortSignal/, 'publish signal');
  refused(r.getOption, 'TypeError', /space\.get: unknown option `sig`; did you mean `signal`/, 'get option');
  refused(r.joinSignal, 'TypeError', /peer\.join: option signal must be an AbortSignal/, 'join signal');
  refused(r.onSync, 'TypeError', /callback must be a function/, 'on sync');
  refused(r.onMessages, 'TypeError', /did you mean "message"/, 'on messages');
  assert.equal(r.ops, 0, 'no refused call stored anything');
});

test('a join puts its agent info to bootstrap once', async () => {
  const context = await browser.newContext();
  await context.addInitScript(recordPuts);
  await context.addInitScript(pageHelpers);
  const page = await openFennecPage(context, net.staticUrl);
  try {
    const me = await page.evaluate((o) => window.t.join(o), { ...servers(), space: uniqueSpace('put') });
    // stats() answers once the space's driver has loaded the model (its LocalAgentInfo event
    // follows at once); a second put would be sent within this second.
    await page.evaluate(() => window.t.space.stats());
    await page.waitForTimeout(1000);
    const puts = await page.evaluate(() => window.puts);
    const ours = puts.filter((u) => u.startsWith(net.bootstrapUrl));
    assert.equal(ours.length, 1, `bootstrap puts: ${JSON.stringify(puts)}`);
    assert.ok(me.agent, 'joined');
  } finally {
    await context.close();
  }
});

/** The location of an op id (base64url): the XOR fold of its bytes into 4, little-endian (`xor_fold_loc`). */
function opLoc(id) {
  const bytes = Buffer.from(id, 'base64url');
  const out = [0, 0, 0, 0];
  bytes.forEach((b, i) => { out[i % 4] ^= b; });
  return Buffer.from(out).readUInt32LE(0);
}

test('get finds an op outside this peer\'s arc on a peer whose arc holds it, and does not store it', async () => {
  const space = uniqueSpace('get');
  const [a, b] = [await newPage(), await newPage()];
  const ia = await a.evaluate((o) => t.join(o), { ...servers(), space });
  const id = await a.evaluate(() => t.space.publish(new TextEncoder().encode('held by a only')));
  // b holds the half of the ring without the op: nothing is published or gossiped to it.
  const half = opLoc(id) < 2 ** 31 ? [2 ** 31, 2 ** 32 - 1] : [0, 2 ** 31 - 1];
  // An op id in b's own half: zero bytes (location 0), or a last byte 0x80 (0x80000000).
  const inside = Buffer.from([...Array(31).fill(0), half[0] === 0 ? 0 : 0x80]).toString('base64url');
  assert.ok(opLoc(inside) >= half[0] && opLoc(inside) <= half[1]);
  const ib = await b.evaluate(async (o) => {
    t.peer = await window.fennec.Peer.connect({ bootstrapUrl: o.bootstrapUrl, signalUrl: o.signalUrl });
    t.space = await t.peer.join(o.space, { arc: o.half });
    return { agent: t.peer.agentId };
  }, { ...servers(), space, half });
  await pollPage(b, (agent) => t.space.peers().some((p) => p.agent === agent), ia.agent, 'b sees a');
  await pollPage(a, (agent) => t.space.peers().some((p) => p.agent === agent), ib.agent, 'a sees b');
  // Each lists the other with the arc its agent info claims.
  const arcOf = (page, agent) => page.evaluate((ag) => t.space.peers().find((p) => p.agent === ag).arc, agent);
  assert.deepEqual(await arcOf(a, ib.agent), half);
  assert.equal(await arcOf(b, ia.agent), 'full');
  const r = await b.evaluate(async (o) => {
    const got = await t.space.get(o.id);
    const mine = await t.outcome(() => t.space.get(o.inside));
    return { got: got && new TextDecoder().decode(got), mine, ops: (await t.space.stats()).ops };
  }, { id, inside });
  assert.equal(r.got, 'held by a only', 'the op came from a');
  assert.equal(r.mine.ok, true, JSON.stringify(r.mine));
  assert.equal(r.mine.value, undefined, 'an op of b\'s own arc that b lacks: undefined');
  assert.equal(r.ops, 0, 'the op got is not stored');
});

test('ops() lists what the peer holds, oldest first, in [from, to); a follower and the next leader read the same', async () => {
  const space = uniqueSpace('ops');
  const [a1, b] = [await newPage(), await newPage()];
  await a1.evaluate((o) => t.join(o), { ...servers(), space });
  await b.evaluate((o) => t.join(o), { ...servers(), space });
  const T = 1_700_000_000_000;
  // Published out of order, by a (one publishMany, one publish) and by b (received by a).
  const published = await a1.evaluate(async (T) => {
    const enc = new TextEncoder();
    const ids = await t.space.publishMany([
      { payload: enc.encode('a at 2000'), createdAt: T + 2000 },
      { payload: enc.encode('a at 0'), createdAt: new Date(T) },
    ]);
    ids.push(await t.space.publish(enc.encode('a at 1000.5'), { createdAt: T + 1000.5 }));
    return ids;
  }, T);
  await b.evaluate((T) => t.space.publish(new TextEncoder().encode('b at 500'), { createdAt: T + 500 }), T);
  const all = [[T, 'a at 0'], [T + 500, 'b at 500'], [T + 1000.5, 'a at 1000.5'], [T + 2000, 'a at 2000']];
  const held = await pollPage(a1, async (n) => { const h = await t.held(); return h.length === n && h; }, 4,
    'a holds its ops and b\'s');
  assert.deepEqual(held, all, 'ordered by createdAt, µs fractions kept');
  const ids = await a1.evaluate(() => t.heldIds);
  assert.deepEqual([ids[0], ids[2], ids[3]], [published[1], published[2], published[0]], 'the ids publish gave');

  const ranges = await a1.evaluate((T) => Promise.all([
    t.held({ from: T + 500, to: T + 2000 }),
    t.held({ from: new Date(T + 1000) }),
    t.held({ to: T + 500 }),
    t.held({ from: T + 2000, to: T + 2000 }),
    t.held({ from: T + 3000, to: T }),
    t.held({ from: undefined, signal: undefined }),
  ]), T);
  assert.deepEqual(ranges, [all.slice(1, 3), all.slice(2), all.slice(0, 1), [], [], all]);

  const bad = await a1.evaluate(() => Promise.all([
    t.held({ from: 'yesterday' }),
    t.held({ form: 1 }),
    t.held({ to: NaN }),
    t.held({ from: 1e16 }),
    t.held(5),
    t.held({ signal: 'soon' }),
    t.held({ signal: AbortSignal.abort() }),
    t.held({ limit: -1 }),
    t.held({ limit: 1.5 }),
    t.held({ newestFirst: 'yes' }),
    t.held({ after: 5 }),
    t.held({ after: null }),
    t.held({ after: { createdAt: 0 } }),
    t.held({ after: { id: 'not-an-id', createdAt: 0 } }),
    t.held({ after: { id: t.heldIds[0], createdAt: 'now' } }),
  ]));
  refused(bad[0], 'TypeError', /space\.ops: option from must be a Date/, 'from a string');
  refused(bad[1], 'TypeError', /unknown option `form`; known options: from, to, newestFirst, after, limit, signal/,
    'a misspelt option');
  refused(bad[2], 'RangeError', /option to must be a finite number/, 'to NaN');
  refused(bad[3], 'RangeError', /8\.64e15/, 'from beyond the Date range');
  refused(bad[4], 'TypeError', /space\.ops/, 'options not an object');
  refused(bad[5], 'TypeError', /signal/, 'signal not an AbortSignal');
  refused(bad[6], 'AbortError', null, 'a signal aborted before the call');
  refused(bad[7], 'RangeError', /option limit must be an integer from 0 to 4294967295, got -1/, 'a negative limit');
  refused(bad[8], 'RangeError', /option limit must be an integer/, 'a fractional limit');
  refused(bad[9], 'TypeError', /option newestFirst must be a boolean/, 'newestFirst a string');
  refused(bad[10], 'TypeError', /space\.ops: option after must be an object, got a number/, 'after not an object');
  refused(bad[11], 'TypeError', /space\.ops: option after must be an object, got null/, 'after null');
  refused(bad[12], 'TypeError', /option after\.id is required/, 'after without an id');
  refused(bad[13], 'TypeError', /option after\.id must be an op id/, 'after with a bad id');
  refused(bad[14], 'TypeError', /option after\.createdAt must be a Date/, 'after with a bad createdAt');

  // Newest first, and pages: each continues after the last op of the one before.
  const pages = await a1.evaluate(async () => {
    const text = (p) => p.map((x) => new TextDecoder().decode(x.payload));
    const p1 = await t.space.ops({ newestFirst: true, limit: 3 });
    // As an `op` event would be given: members besides id and createdAt are not read.
    const p2 = await t.space.ops({ newestFirst: true, limit: 3, after: { ...p1[2], from: 'x', fromUrl: 'y' } });
    const up = await t.space.ops({ limit: 1, after: p1[1] });
    const none = await t.space.ops({ limit: 0 });
    return [p1, p2, up, none].map(text);
  });
  assert.deepEqual(pages, [['a at 2000', 'a at 1000.5', 'b at 500'], ['a at 0'], ['a at 2000'], []]);

  // A second tab of a's profile uses a1's node (a follower): the same list, through the leader.
  const a2 = await openFennecPage(a1.context(), net.staticUrl);
  const j2 = await a2.evaluate((o) => t.join(o), { ...servers(), space });
  assert.equal(j2.role, 'follower');
  assert.deepEqual(await a2.evaluate(() => t.held()), all, 'a follower reads the leader\'s store');
  const followerPage = await a2.evaluate(async () => {
    const [last] = await t.space.ops({ newestFirst: true, limit: 1 });
    return t.held({ newestFirst: true, limit: 2, after: last });
  });
  assert.deepEqual(followerPage, [all[2], all[1]], 'a follower\'s page options reach the leader');
  // a1 closes: a2 runs the profile's node now, on the same IndexedDB store.
  await a1.close();
  const after = await pollPage(a2, async () => {
    const h = await t.held();
    return t.peer.role === 'leader' && Array.isArray(h) && h.length === 4 && h;
  }, null, 'a2 leads and reads the ops back from IndexedDB');
  assert.deepEqual(after, all);

  // Five ops of one publishMany share their createdAt: pages of 2 split them, none repeated.
  const tied = await a2.evaluate(async (T) => {
    const items = [0, 1, 2, 3, 4].map((i) => ({ payload: new TextEncoder().encode(`tied ${i}`), createdAt: T + 5000 }));
    await t.space.publishMany(items);
    const whole = (await t.space.ops({ from: T + 5000 })).map((x) => x.id);
    const paged = [];
    let last;
    for (let i = 0; i < 5; i++) {
      const page = await t.space.ops({ from: T + 5000, limit: 2, after: last });
      if (page.length === 0) break;
      paged.push(...page.map((x) => x.id));
      last = page[page.length - 1];
    }
    return { whole, paged };
  }, T);
  assert.equal(new Set(tied.whole).size, 5);
  assert.deepEqual(tied.paged, tied.whole, 'the pages give each tied op once, in the order of one read');

  await a2.evaluate(() => t.space.leave());
  refused(await a2.evaluate(() => t.held()), 'left', /space\.ops/, 'after leave');
});
