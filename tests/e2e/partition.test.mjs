// A tab partitioned from the others while they publish converges through gossip once the
// partition heals (issue 10, deliverable 5). Four tabs (separate browser contexts, memory
// storage, relay only) of the `testing` build join one fresh space and converge on a few ops;
// then `fennec.testPartition(true)` (testing build only, src/testing/partition.rs) makes one
// tab's transport drop every frame it sends (reporting success) and every message it
// receives: its announcements, fetches, gossip and membership both ways are lost, while the
// other three publish. SWIM then declares it down at the others and them down at it (real
// behaviour, asserted). After `testPartition(false)` membership finds the members again (the
// announce to down members, every 10 s), a member back from down gets a gossip round at once
// (`Space::gossip_after_heal`), and the tab must hold every op within 60 s, fetched because
// gossip rounds offered them (`stats().gossip.idsToFetch`). The heal -> alive and
// heal -> converged times are printed as one JSON line, never asserted.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { openFennecPage, startDevnetAndBrowser } from './harness.mjs';

const TABS = 4;
const P = TABS - 1; // the partitioned tab
const OPS_BEFORE = 3; // per tab, before the partition
const OPS_DURING = 5; // per other tab, during it
const DEADLINE_MS = 60_000;

// Page side: window.t drives one peer in one space and records peer events with their time.
function pageHelpers() {
  const t = { peerEvents: [], errors: [] };
  const enc = new TextEncoder();
  window.t = t;
  t.join = async ({ bootstrapUrl, signalUrl, space }) => {
    const { Peer } = window.fennec;
    t.peer = await Peer.connect({ bootstrapUrl, signalUrl, storage: 'memory', relayOnly: true });
    t.space = await t.peer.join(space);
    t.space.on('peer', (e) => t.peerEvents.push({ kind: e.kind, agent: e.agent, url: e.url, at: Date.now() }));
    t.space.on('error', (e) => t.errors.push(`${e.kind}: ${e.message}`));
    return { agent: t.peer.agentId, url: t.space.url };
  };
  t.publish = (lines) => Promise.all(lines.map((l) => t.space.publish(enc.encode(l))));
  t.stats = () => t.space.stats();
  t.has = (ids) => Promise.all(ids.map(async (id) => (await t.space.get(id)) !== undefined));
}

let net, browser, stop;
const tabs = [];
const who = []; // {agent, url} per tab

before(async () => {
  ({ net, browser, stop } = await startDevnetAndBrowser());
  const space = `partition-e2e-${Date.now()}`;
  for (let i = 0; i < TABS; i++) {
    const context = await browser.newContext();
    await context.addInitScript(pageHelpers);
    tabs.push(await openFennecPage(context, net.staticUrl, '/blank.html', '/pkg-testing/index.js'));
  }
  for (const p of tabs) {
    who.push(await p.evaluate((o) => window.t.join(o), { bootstrapUrl: net.bootstrapUrl, signalUrl: net.signalUrl, space }));
  }
});
after(() => stop?.());

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const stats = (p) => p.evaluate(() => window.t.stats());
const events = (p) => p.evaluate(() => window.t.peerEvents);

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

async function publish(i, tag, n) {
  const lines = Array.from({ length: n }, (_, k) => `${tag}-tab${i}-${k}-${Date.now()}`);
  return tabs[i].evaluate((ls) => window.t.publish(ls), lines);
}

test('a tab partitioned while the others publish converges through gossip after the heal', async () => {
  // Converge on a few ops first.
  const before = (await Promise.all(tabs.map((_, i) => publish(i, 'before', OPS_BEFORE)))).flat();
  await until('every tab holds the first ops', DEADLINE_MS, async () =>
    (await Promise.all(tabs.map(stats))).every((s) => s.ops === before.length));

  // Partition tab P; the others publish while it is cut off.
  await tabs[P].evaluate(() => window.fennec.testPartition(true));
  const partitionedAt = Date.now();
  const during = (await Promise.all(tabs.slice(0, P).map((_, i) => publish(i, 'during', OPS_DURING)))).flat();
  const all = [...before, ...during];

  // SWIM declares P down at every other tab, and every other tab down at P.
  const downOf = (evs, agent) => evs.some((e) => e.kind === 'down' && e.agent === agent && e.at >= partitionedAt);
  await until('the partition is seen as down both ways', 30_000, async () => {
    const evs = await Promise.all(tabs.map(events));
    return evs.slice(0, P).every((e) => downOf(e, who[P].agent))
      && who.slice(0, P).every((w) => downOf(evs[P], w.agent));
  });
  await until('the others converge on the ops published during the partition', DEADLINE_MS, async () =>
    (await Promise.all(tabs.slice(0, P).map(stats))).every((s) => s.ops === all.length));
  const cut = await stats(tabs[P]);
  assert.equal(cut.ops, before.length, 'nothing reached the partitioned tab');
  assert.deepEqual(await tabs[P].evaluate((ids) => window.t.has(ids), during), during.map(() => false));

  // Heal: P must converge, through gossip.
  await tabs[P].evaluate(() => window.fennec.testPartition(false));
  const healedAt = Date.now();
  await until('the partitioned tab holds every op after the heal', DEADLINE_MS, async () =>
    (await Promise.all(tabs.map(stats))).every((s) => s.ops === all.length));
  const convergedMs = Date.now() - healedAt;
  for (const p of tabs) assert.deepEqual(await p.evaluate((ids) => window.t.has(ids), all), all.map(() => true));

  const healed = await stats(tabs[P]);
  assert.ok(healed.gossip.completed > cut.gossip.completed, `gossip rounds completed after the heal: ${JSON.stringify(healed.gossip)}`);
  assert.ok(healed.gossip.idsToFetch - cut.gossip.idsToFetch >= during.length,
    `gossip offered the ${during.length} missed ops: ${cut.gossip.idsToFetch} -> ${healed.gossip.idsToFetch}`);

  // Membership found the members again: alive both ways (the time is a figure).
  const aliveAt = await until('alive again both ways', 30_000, async () => {
    const evs = await Promise.all(tabs.map(events));
    const at = (es, agent) => es.find((e) => e.kind === 'alive' && e.agent === agent && e.at >= healedAt)?.at;
    const times = [...evs.slice(0, P).map((e) => at(e, who[P].agent)), ...who.slice(0, P).map((w) => at(evs[P], w.agent))];
    return times.every((x) => x !== undefined) && times;
  });
  for (const p of tabs) assert.deepEqual(p.fennecErrors.map(String), [], 'no uncaught error in a page');
  console.log(JSON.stringify({
    partition: {
      tabs: TABS,
      missedOps: during.length,
      healToFirstAliveMs: Math.min(...aliveAt) - healedAt,
      healToAllAliveMs: Math.max(...aliveAt) - healedAt,
      healToConvergedMs: convergedMs,
      roundsAfterHeal: healed.gossip.completed - cut.gossip.completed,
      idsToFetchAfterHeal: healed.gossip.idsToFetch - cut.gossip.idsToFetch,
      lastDiff: healed.gossip.lastDiff,
    },
  }));
});
