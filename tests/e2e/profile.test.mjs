// One network node per browser profile (issue 9, deliverable 2), end to end on the real
// devnet in headless Chromium: pages of one browser context (one profile) share their node,
// run by a leader page elected with a Web Lock; a page of another context is another user.
// (a) the profile's two pages and the other user's page all see each other's ops (`op`
//     events and `get`), and the profile is one agent with one URL to the other user;
// (b) the leader page is closed (page.close, no beforeunload), then, with a third page of the
//     profile, the next leader page crashes (CDP Page.crash): each time a follower becomes
//     the leader, every op whose publish resolved before is still held (by the profile: an op
//     the old leader stored but had no time to announce reaches others by catch-up, later),
//     and publishes reach the other user again; the failover time is printed as one JSON line
//     per run (close: from page.close to the new leader / to the in-flight publish served);
// (c) a publish sent while the leader is busy and then goes away is retried on the new leader
//     (it resolves and its op is held) or rejects with FennecError "failover";
// and a follower refuses bad input exactly as the leader does and gets the leader's errors
// (code, class, message); `sharing` picks one node per tab, and bad values are refused.
// The tests share one devnet, browser and space and run in order.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { openFennecPage, startDevnetAndBrowser } from './harness.mjs';

const DEADLINE_MS = 30_000;

// Page side (every page): window.t drives one Peer in one space.
function pageHelpers() {
  const enc = new TextEncoder();
  const dec = new TextDecoder();
  const t = { ops: [], froms: {}, fromAgents: {}, errors: [] };
  window.t = t;
  t.connect = async (o) => {
    t.peer = await window.fennec.Peer.connect(o);
    return { agent: t.peer.agentId, role: t.peer.role };
  };
  t.join = async (name) => {
    t.space = await t.peer.join(name);
    t.space.on('op', (e) => { const s = dec.decode(e.payload); t.ops.push(s); t.froms[s] = e.fromUrl; t.fromAgents[s] = e.from; });
    t.space.on('error', (e) => t.errors.push(`${e.kind}: ${e.message}`));
    return t.space.url;
  };
  t.publish = (text) => t.space.publish(enc.encode(text));
  t.get = async (id) => {
    const b = await t.space.get(id);
    return b === undefined ? null : dec.decode(b);
  };
  /** How `f()` ended: a value, or an error's class, code and message. */
  t.outcome = async (f) => {
    try {
      await f();
      return { ok: true };
    } catch (e) {
      return { name: e.name, code: e.code, message: e.message, fennec: e instanceof window.fennec.FennecError };
    }
  };
  /** Outcomes of bad calls; must be alike at a leader and at a follower. */
  t.refusals = (space) => Promise.all([
    () => t.space.publish('hello'),
    () => t.space.publish(new Uint8Array(1), { created: 1 }),
    () => t.space.publish(new Uint8Array(2000000)),
    () => t.space.get('not an id'),
    () => t.space.on('op', 'not a function'),
    () => t.space.on('ops', () => {}),
    () => t.peer.join(''),
    () => t.peer.join(space, { arcs: 'full' }),
    () => t.peer.join(space, { arc: 'empty' }), // joined with "full": FennecError "joined"
  ].map((f) => t.outcome(f)));
  t.classes = () => ({ peer: t.peer instanceof window.fennec.Peer, space: t.space instanceof window.fennec.Space });
  t.state = () => ({ role: t.peer.role, url: t.space.url, ops: t.ops, froms: t.froms, fromAgents: t.fromAgents, agent: t.peer.agentId, peers: t.space.peers() });
  /** Blocks this page's event loop for `ms` (from a timer, so that evaluate returns first). */
  t.busy = (ms) => setTimeout(() => { const end = Date.now() + ms; while (Date.now() < end); }, 0);
  /**
   * Starts a publish and notes (page clock) when it settles, when this page leads and when a
   * probe publish made as soon as it leads resolves (the new leader serving).
   */
  t.inflight = (text) => {
    const f = { leaderAt: null, at: null, servedAt: null };
    t.flight = f;
    const iv = setInterval(() => {
      if (t.peer.role !== 'leader') return;
      f.leaderAt = Date.now();
      clearInterval(iv);
      t.space.publish(enc.encode(`${text} probe`)).then((id) => { f.probe = id; f.servedAt = Date.now(); },
        (e) => { f.probeError = `${e.name} ${e.code} ${e.message}`; });
    }, 1);
    t.space.publish(enc.encode(text)).then(
      (id) => { f.id = id; f.at = Date.now(); },
      (e) => { f.error = { name: e.name, code: e.code, message: e.message }; f.at = Date.now(); });
  };
}

let net, browser, stop, profile, other, space;
const acked = new Map(); // op id -> text, every publish that resolved

async function openPage(context) {
  const page = await openFennecPage(context, net.staticUrl);
  const who = await page.evaluate((o) => window.t.connect(o), { bootstrapUrl: net.bootstrapUrl, signalUrl: net.signalUrl });
  await page.evaluate((s) => window.t.join(s), space);
  return { page, ...who };
}

async function publish(p, text) {
  const id = await p.page.evaluate((s) => window.t.publish(s), text);
  acked.set(id, text);
  return id;
}

const state = (p) => p.page.evaluate(() => window.t.state());

/** Polls `check(states)` over the pages until true; fails with `label` and the states. */
async function until(pages, check, label, ms = DEADLINE_MS) {
  const deadline = Date.now() + ms;
  for (;;) {
    const states = await Promise.all(pages.map(state));
    if (check(states)) return states;
    if (Date.now() > deadline) assert.fail(`${label}: ${JSON.stringify(states.map((s) => ({ ...s, ops: s.ops.length })))}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** Every acked op is held by `p` (get). */
async function holdsAcked(p, label) {
  const ids = [...acked.keys()];
  const got = await p.page.evaluate((xs) => Promise.all(xs.map((id) => window.t.get(id))), ids);
  ids.forEach((id, i) => assert.equal(got[i], acked.get(id), `${label}: op ${id} (${acked.get(id)})`));
}

before(async () => {
  ({ net, browser, stop } = await startDevnetAndBrowser());
  for (const c of [profile, other] = [await browser.newContext(), await browser.newContext()]) {
    await c.addInitScript(pageHelpers);
  }
  space = `profile-${Date.now()}-${Math.random().toString(36).slice(2)}`;
});

after(() => stop?.());

const pages = {};

test('two pages of one profile and a page of another all see each other\'s ops; the profile is one agent', async () => {
  pages.a1 = await openPage(profile);
  pages.a2 = await openPage(profile);
  pages.b = await openPage(other);
  assert.equal(pages.a1.role, 'leader');
  assert.equal(pages.a2.role, 'follower');
  assert.equal(pages.b.role, 'leader', 'the other context has its own node');
  assert.equal(pages.a2.agent, pages.a1.agent, 'one agent per profile');
  assert.notEqual(pages.b.agent, pages.a1.agent);
  const [a1, a2, b] = [pages.a1, pages.a2, pages.b];
  const ids = { a1: await publish(a1, 'from a1'), a2: await publish(a2, 'from a2'), b: await publish(b, 'from b') };
  const sees = (s, texts) => texts.every((x) => s.ops.includes(x));
  const [s1, s2, sb] = await until([a1, a2, b], ([x, y, z]) =>
    sees(x, ['from a2', 'from b']) && sees(y, ['from a1', 'from b']) && sees(z, ['from a1', 'from a2'])
    && y.peers.length >= 1 && z.peers.length >= 1, 'op events and peers at every page');
  for (const s of [s1, s2, sb]) assert.equal(new Set(s.ops).size, s.ops.length, `no op event twice: ${s.ops}`);
  assert.ok(!s1.ops.includes('from a1') && !s2.ops.includes('from a2'), 'no op event for a page\'s own publish');
  assert.equal(s2.url, s1.url, 'the profile\'s pages share one node (one URL)');
  assert.equal(sb.froms['from a1'], s1.url);
  assert.equal(sb.froms['from a2'], s1.url, 'the other user gets a2\'s op from the profile\'s one node');
  assert.equal(s1.froms['from a2'], s1.url, 'a sibling page\'s op comes from the node itself');
  assert.equal(sb.fromAgents['from a1'], a1.agent, 'an op event names the sending agent (from), besides its URL (fromUrl)');
  assert.equal(s1.fromAgents['from a2'], a1.agent, 'a sibling page\'s op names the profile\'s agent');
  assert.deepEqual(sb.peers.map((p) => p.agent), [a1.agent], 'the other user sees the profile as one agent');
  assert.deepEqual(s2.peers.map((p) => p.agent), [b.agent], 'a follower sees the leader\'s peers');
  for (const p of [a1, a2, b]) {
    const got = await p.page.evaluate((xs) => Promise.all(xs.map((id) => window.t.get(id))), Object.values(ids));
    assert.deepEqual(got, ['from a1', 'from a2', 'from b'], 'get at every page');
  }
});

test('a follower refuses bad input as the leader does, and gets the leader\'s errors', async () => {
  const [lead, follow] = await Promise.all([pages.a1, pages.a2].map((p) => p.page.evaluate((x) => window.t.refusals(x), space)));
  assert.deepEqual(follow, lead);
  assert.ok(lead.every((o) => !o.ok), JSON.stringify(lead));
  assert.deepEqual(lead.map((o) => o.name), ['TypeError', 'TypeError', 'RangeError', 'TypeError', 'TypeError', 'TypeError',
    'RangeError', 'TypeError', 'FennecError']);
  assert.equal(lead[8].code, 'joined');
  assert.ok(follow[8].fennec, 'a FennecError from the leader is a FennecError in the follower');
  for (const p of [pages.a1, pages.a2]) {
    assert.deepEqual(await p.page.evaluate(() => window.t.classes()), { peer: true, space: true }, 'instanceof Peer / Space');
  }
});

test('sharing: "tab" by option, with an agentKey or memory storage; bad sharing options refused', async () => {
  const page = await openFennecPage(profile, net.staticUrl);
  const o = { bootstrapUrl: net.bootstrapUrl, signalUrl: net.signalUrl };
  const got = await page.evaluate(async (o) => {
    const { Peer } = window.fennec;
    const role = async (x) => { const p = await Peer.connect({ ...o, ...x }); await p.close(); return p.role; };
    return {
      tab: await role({ sharing: 'tab' }),
      key: await role({ agentKey: new Uint8Array(32).fill(7) }),
      memory: await role({ storage: 'memory' }),
      keyShared: await role({ agentKey: new Uint8Array(32).fill(7), sharing: 'profile' }),
      bogus: await window.t.outcome(() => Peer.connect({ ...o, sharing: 'window' })),
      memoryShared: await window.t.outcome(() => Peer.connect({ ...o, storage: 'memory', sharing: 'profile' })),
    };
  }, o);
  assert.deepEqual([got.tab, got.key, got.memory, got.keyShared], ['tab', 'tab', 'tab', 'leader']);
  assert.equal(got.bogus.name, 'TypeError');
  assert.match(got.bogus.message, /option sharing must be "profile" or "tab", got "window"/);
  assert.equal(got.memoryShared.name, 'TypeError');
  assert.match(got.memoryShared.message, /sharing "profile" needs storage "indexeddb"/);
  await page.close();
});

/**
 * The leader page `leader` goes away by `kill` while busy, with a publish of follower `next` in
 * flight; `next` must lead, hold every acked op, and reach `b` both ways.
 */
async function failover(leader, next, b, kill, label, busyMs) {
  for (let i = 0; i < 3; i++) {
    await publish(leader, `${label} leader ${i}`);
    await publish(next, `${label} follower ${i}`);
  }
  // A busy leader cannot answer: the publish below is surely in flight when it goes away.
  if (busyMs) await leader.page.evaluate((ms) => window.t.busy(ms), busyMs);
  await next.page.evaluate((s) => window.t.inflight(s), `${label} in flight`);
  const t0 = Date.now();
  await kill(leader.page);
  const deadline = Date.now() + DEADLINE_MS;
  let f;
  while (!(f = await next.page.evaluate(() => window.t.flight)).at || !(f.servedAt || f.probeError)) {
    if (Date.now() > deadline) assert.fail(`${label}: no new leader serving, or the in-flight publish never settled: ${JSON.stringify(f)}`);
    await new Promise((r) => setTimeout(r, 20));
  }
  assert.equal(f.probeError, undefined, `${label}: a publish on the new leader`);
  assert.equal((await state(next)).role, 'leader');
  acked.set(f.probe, `${label} in flight probe`);
  console.log(JSON.stringify({ failover: label, closeToLeaderMs: f.leaderAt - t0, closeToServingMs: f.servedAt - t0,
    inflight: f.error ? f.error.code : f.at > t0 ? 'retried' : 'answered before the leader went away' }));
  if (f.error) {
    assert.equal(f.error.name, 'FennecError', JSON.stringify(f.error));
    assert.equal(f.error.code, 'failover', JSON.stringify(f.error));
  } else {
    acked.set(f.id, `${label} in flight`);
  }
  await holdsAcked(next, `${label}: acked ops held by the new leader`);
  await publish(next, `${label} after, from the profile`);
  await until([b], ([s]) => s.ops.includes(`${label} after, from the profile`), `${label}: the other user gets the new leader's op`);
  await publish(b, `${label} after, from the other user`);
  await until([next], ([s]) => s.ops.includes(`${label} after, from the other user`), `${label}: the new leader gets the other user's op`);
}

test('leader page closed: a follower takes over, nothing acknowledged is lost, the in-flight publish is retried', async () => {
  await failover(pages.a1, pages.a2, pages.b, (page) => page.close({ runBeforeUnload: false }), 'closed', 3000);
});

test('leader page crashed (CDP Page.crash): the next follower takes over, nothing acknowledged is lost', async () => {
  pages.a3 = await openPage(profile);
  assert.equal(pages.a3.role, 'follower');
  assert.equal(pages.a3.agent, pages.a2.agent);
  await until([pages.a3], ([s]) => s.peers.length === 1, 'the new follower gets the leader\'s peers');
  const crash = async (page) => {
    const cdp = await profile.newCDPSession(page);
    cdp.send('Page.crash').catch(() => {}); // answered never: the renderer is gone
  };
  // Not busy (Page.crash would wait for the busy loop): the time printed is the failover's own.
  await failover(pages.a2, pages.a3, pages.b, crash, 'crashed', 0);
});
