// Departures are seen (issue 9, deliverable 3, the "left" part), in real Chromium through the
// real bootstrap/sbd server: two tabs (separate browser contexts) exchange an op, then tab A
// is closed without `leave()` (`page.close({ runBeforeUnload: false })`: `pagehide` still
// fires with `persisted` false). Tab B must get a `peer` event `left` for A's agent, and A
// must leave B's `peers()`. The time from `page.close()` to the event is printed (not
// asserted: timings belong in benchmarks). Crashed tabs (no `pagehide`) are the membership
// protocol's job (`down` events), not tested here. Between relay-only tabs, where a new
// connection opens within milliseconds, the closed tab is reported left and nothing after it
// (it once opened a connection for its leave's membership packets after its "page closed":
// `joined`, `suspect` and `down` followed).
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { openFennecPage, pollPage, startDevnetAndBrowser } from './harness.mjs';

function pageHelpers() {
  const t = { peerEvents: [] };
  window.t = t;
  t.join = async ({ bootstrapUrl, signalUrl, space, relayOnly = false }) => {
    const { Peer } = window.fennec;
    t.peer = await Peer.connect({ bootstrapUrl, signalUrl, storage: 'memory', relayOnly });
    t.space = await t.peer.join(space);
    t.space.on('peer', (e) => t.peerEvents.push({ kind: e.kind, agent: e.agent, at: Date.now() }));
    return t.peer.agentId;
  };
  t.publish = async (text) => t.space.publish(new TextEncoder().encode(text));
  t.has = async (id) => (await t.space.get(id)) !== undefined;
}

let net, browser, stop, space, contextA;
const tabs = [];
const agents = [];

/** Two tabs (separate browser contexts) joined to `space`: `{ pages, agents }`. */
async function twoTabs(space, relayOnly) {
  const pages = [];
  for (let i = 0; i < 2; i++) {
    const context = await browser.newContext();
    await context.addInitScript(pageHelpers);
    pages.push(await openFennecPage(context, net.staticUrl, '/blank.html'));
  }
  const agents = await Promise.all(pages.map((p) => p.evaluate((o) => window.t.join(o),
    { bootstrapUrl: net.bootstrapUrl, signalUrl: net.signalUrl, space, relayOnly })));
  return { pages, agents };
}

before(async () => {
  ({ net, browser, stop } = await startDevnetAndBrowser());
  space = `departure-e2e-${Date.now()}`;
  const joined = await twoTabs(space, false);
  tabs.push(...joined.pages);
  agents.push(...joined.agents);
});
after(() => stop?.());

test('a closed tab is reported left at the other tab and leaves peers()', async () => {
  const [a, b] = tabs;
  const id = await a.evaluate(() => window.t.publish('hello from A'));
  await pollPage(b, (x) => window.t.has(x), id, 'op from A at B', 60_000);
  const listed = (ag) => window.t.space.peers().some((p) => p.agent === ag);
  await pollPage(b, listed, agents[0], 'A in B.peers()', 60_000);

  contextA = a.context();
  const closed = Date.now();
  await a.close({ runBeforeUnload: false });
  const left = await pollPage(b, (ag) => window.t.peerEvents.find((e) => e.kind === 'left' && e.agent === ag),
    agents[0], 'left event for A at B', 30_000);
  assert.equal(await b.evaluate(listed, agents[0]), false, 'A still in B.peers()');
  // Reported once, even after A's tombstone arrives through the bootstrap server.
  const count = (ag) => window.t.peerEvents.filter((e) => e.kind === 'left' && e.agent === ag).length;
  assert.equal(await b.evaluate(count, agents[0]), 1);
  console.log(JSON.stringify({ departure_left_event_ms: left.at - closed }));
  assert.deepEqual(b.fennecErrors, []);
  // Let B's membership declare A's old identity down or left (a few probe periods plus the
  // suspicion): the reopened tab's newer identity then makes membership report it alive
  // again, which must not add a second report after `joined` (the flake
  // ['joined', 'alive']).
  await new Promise((r) => setTimeout(r, 8_000));
});

test('the same agent opened again (a reload: same origin key, new URL) is reported joined again', async () => {
  const b = tabs[1];
  const again = await openFennecPage(contextA, net.staticUrl, '/blank.html');
  const agent = await again.evaluate((o) => window.t.join(o),
    { bootstrapUrl: net.bootstrapUrl, signalUrl: net.signalUrl, space });
  assert.equal(agent, agents[0], 'same origin, same agent key');
  const id = await again.evaluate(() => window.t.publish('back again'));
  await pollPage(b, (x) => window.t.has(x), id, 'op from the reopened tab at B', 60_000);
  await pollPage(b, (ag) => window.t.space.peers().some((p) => p.agent === ag), agent, 'reopened A in B.peers()', 60_000);
  const kinds = await b.evaluate((ag) => window.t.peerEvents.filter((e) => e.agent === ag).map((e) => e.kind), agent);
  assert.deepEqual(kinds.slice(-2), ['left', 'joined']);
});

test('relay-only tabs: a closed tab is reported left and nothing after it', async () => {
  const { pages: [a, b], agents: [agentA] } = await twoTabs(`departure-relay-e2e-${Date.now()}`, true);
  const id = await a.evaluate(() => window.t.publish('hello over the relay'));
  await pollPage(b, (x) => window.t.has(x), id, 'op from A at B', 60_000);
  await a.context().close();
  await pollPage(b, (ag) => window.t.peerEvents.some((e) => e.kind === 'left' && e.agent === ag), agentA, 'left event for A at B', 30_000);
  // Long enough for a connection the closed page opened to be reported joined, then for
  // membership to suspect it and declare it down (1–3 s when it happened).
  await new Promise((r) => setTimeout(r, 6_000));
  const kinds = await b.evaluate((ag) => window.t.peerEvents.filter((e) => e.agent === ag).map((e) => e.kind), agentA);
  // A suspicion refuted while both ran (a stalled renderer) is not about the close.
  assert.deepEqual(kinds.filter((k) => k !== 'suspect' && k !== 'alive'), ['joined', 'left']);
  assert.deepEqual(kinds.slice(kinds.indexOf('left')), ['left'], 'nothing after the left');
  assert.deepEqual(b.fennecErrors, []);
  await b.context().close();
});
