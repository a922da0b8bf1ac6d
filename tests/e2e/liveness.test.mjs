// Departures are seen (issue 9 deliverable 3, issue 11 tests), in real Chromium through the real
// devnet with the real default timeouts (SWIM: 0.8 s probe period, 1.6 s suspicion, 30 s for a
// tab that said it is hidden; `MembershipConfig::default`). Cases (a)–(f) and (i)–(k) start
// three tabs (separate browser contexts, memory storage: one agent per tab) in a fresh space,
// check they list each other alive in `peers()`, sync an op and exchange membership packets on
// the datagram channel, then:
//   (a) one tab crashes (CDP Page.crash): every other tab reports it `down`, drops it from peers();
//   (b) one tab is frozen (its JavaScript stopped, see below): the same;
//   (c) one tab is hidden for 60 s: never reported down, still syncs afterwards;
//   (d) one tab is closed (page.close): reported `left` or `down` and dropped from peers();
//   (e) one tab calls leave(): exactly one `left` per other tab (the tombstone and membership's
//       leave are one departure), no `down` after it;
//   (f) the watchers connect with `suspicionTimeoutMs: 60000` (and a 300 ms probe period) and
//       one tab crashes: both report it `suspect` and, 8 s later (the default timing reports
//       a crash `down` within ~4–8 s), still list it `suspect`, never `down`;
//   (g) two 2-tab spaces side by side, one with `probePeriodMs: 200`, one with 4000: over the
//       same 8 s the first sends at least 5x the membership datagrams of the second;
//   (h) two 2-tab spaces side by side, one watcher with `hiddenSuspicionTimeoutMs: 2000`, one
//       with the default: a tab hidden then crashed in each is reported `down` by the first
//       while the second, 5 s later, still has it `suspect`;
//   (i) one tab is frozen until both others report it `down`, then runs again and gets the
//       `resume` event (Page Lifecycle): reported `alive` again, it gets the op published
//       while it was frozen, and its own op reaches both;
//   (j) the same without the `resume` event (a machine waking from sleep): membership learns
//       from the others' packets that it was declared down and renews by itself;
//   (k) as (j), but the tab's whole renderer process is stopped (SIGSTOP), not only its
//       JavaScript, for 35 s: no ICE, SCTP or WebSocket work either, as in a machine asleep
//       (the others close their connections to it on the down; the signal server may drop its
//       socket). Linux only (the pid from /proc).
// Detection times are printed as one JSON line per case (goal: p95 < 5 s for down, < 1 s for
// left), never asserted: timings belong in benchmarks.
//
// Frozen tab: in this headless Chromium, CDP `Page.setWebLifecycleState {state: "frozen"}` on a
// visible page does nothing (checked: no `freeze` event, a 100 ms interval kept firing), so the
// test sends it and also stops the page's JavaScript with the CDP debugger (`Debugger.pause`):
// from the network's side that is a frozen tab, no timer, no message handler, nothing sent.
//
// Hidden tab: headless Chromium keeps every page visible (minimising its window or opening a tab
// over it does not change `document.hidden`, and CDP has no visibility override), so the test
// emulates it: `document.hidden`/`visibilityState` are overridden and `visibilitychange`
// dispatched (what fennec's lifecycle glue listens to), and Chrome's throttling of hidden tabs
// (timers aligned to 1 s) is approximated, harder than the real thing, by pausing the page's
// JavaScript (CDP debugger) for 600 ms of every second: its timers and its network messages
// both wait.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { closeAll, datagramsFlow, freeze, hideAndThrottle, joinTabs, openPages, openTabs, rendererOf, sleep, until, webrtcMesh } from '../../scripts/bench/liveness-tabs.mjs';
import { startDevnetAndBrowser } from './harness.mjs';

const DEADLINE_MS = 60_000;
const HIDDEN_MS = 60_000;

let net, browser, stop;
let caseNo = 0;

before(async () => ({ net, browser, stop } = await startDevnetAndBrowser()));
after(() => stop?.());

const freshSpace = () => `liveness-e2e-${Date.now()}-${caseNo++}`;

/** Two tabs (own contexts) in a fresh space, listing each other alive; `connect` as in `threeTabs`. */
const twoTabs = (connect) => openTabs(browser, net, 2, freshSpace(), DEADLINE_MS, connect);

/**
 * Three tabs (own contexts) in a fresh space, listing each other alive, synced and each
 * reaching the others over WebRTC with membership datagrams flowing (`webrtcMesh`); `connect[i]`
 * adds `Peer.connect` options for tab `i`; `pages`: three pages of `openPages` to use.
 */
async function threeTabs(connect = [], pages) {
  pages ??= await openPages(browser, net, 3);
  const { tabs, agents } = await joinTabs(pages, net, freshSpace(), DEADLINE_MS, connect);
  const id = await tabs[0].evaluate(() => window.t.publish('hello from tab 0'));
  for (const p of tabs.slice(1)) {
    await until(() => p.evaluate((x) => window.t.has(x), id), DEADLINE_MS, 'op synced');
  }
  await webrtcMesh(tabs, agents, DEADLINE_MS);
  const urls = (await tabs[0].evaluate(() => window.t.peers())).map((e) => typeof e.url);
  assert.deepEqual(urls, ['string', 'string'], 'each peers() entry names the peer URL');
  return { tabs, agents };
}

/**
 * Waits until every tab in `watchers` reported `agent` with one of `kinds` and no longer lists
 * it; returns the ms from `t0` to the last such report (page clocks are this machine's clock).
 */
async function departure(watchers, agent, kinds, t0, what) {
  let last = 0;
  for (const [i, p] of watchers.entries()) {
    const ev = await until(async () => {
      const { evs, peers } = await p.evaluate(() => ({ evs: window.t.peerEvents, peers: window.t.peers() }));
      const e = evs.find((x) => x.agent === agent && kinds.includes(x.kind));
      return e && !peers.some((x) => x.agent === agent) ? e : undefined;
    }, DEADLINE_MS, `${what}: watcher ${i} reports ${kinds.join('/')} and drops it from peers()`);
    last = Math.max(last, ev.at - t0);
  }
  return last;
}

/** The kinds of the `peer` events `page` reported about `agent`, other than `joined` and `alive`. */
function changesOf(page, agent) {
  return page.evaluate((a) => window.t.peerEvents
    .filter((e) => e.agent === a && e.kind !== 'joined' && e.kind !== 'alive').map((e) => e.kind), agent);
}

function report(kase, ms, kinds) {
  console.log(JSON.stringify({ bench: 'liveness-e2e', case: kase, reported: kinds, watchers: 2, ms_to_last: ms }));
}

test('(a) a crashed tab is reported down by every other tab and leaves peers()', async () => {
  const { tabs, agents } = await threeTabs();
  const cdp = await tabs[2].context().newCDPSession(tabs[2]);
  const t0 = Date.now();
  cdp.send('Page.crash').catch(() => {}); // never resolves: the renderer is gone
  const ms = await departure(tabs.slice(0, 2), agents[2], ['down'], t0, 'crash');
  report('crash', ms, 'down');
  await closeAll(tabs);
});

test('(b) a frozen tab is reported down by every other tab and leaves peers()', async () => {
  const { tabs, agents } = await threeTabs();
  const t0 = Date.now();
  await freeze(tabs[2]);
  const ms = await departure(tabs.slice(0, 2), agents[2], ['down'], t0, 'freeze');
  report('freeze', ms, 'down');
  await closeAll(tabs);
});

test('(c) a hidden, throttled tab is never reported down and still syncs', async () => {
  const { tabs, agents } = await threeTabs();
  const hidden = tabs[2];
  const throttled = await hideAndThrottle(hidden);
  await sleep(HIDDEN_MS);
  await throttled.stop();
  await hidden.evaluate(() => window.t.show());
  for (const [i, p] of tabs.slice(0, 2).entries()) {
    const evs = await p.evaluate(() => window.t.peerEvents);
    const bad = evs.filter((e) => e.agent === agents[2] && (e.kind === 'down' || e.kind === 'left'));
    assert.deepEqual(bad, [], `tab ${i} reported the hidden tab gone: ${JSON.stringify(evs)}`);
    assert.ok((await p.evaluate(() => window.t.peers())).some((e) => e.agent === agents[2]),
      `tab ${i} still lists the hidden tab`);
  }
  const fromHidden = await hidden.evaluate(() => window.t.publish('from the hidden tab'));
  const toHidden = await tabs[0].evaluate(() => window.t.publish('to the hidden tab'));
  await until(() => tabs[1].evaluate((x) => window.t.has(x), fromHidden), DEADLINE_MS, 'op from the hidden tab');
  await until(() => hidden.evaluate((x) => window.t.has(x), toHidden), DEADLINE_MS, 'op to the hidden tab');
  const suspects = await Promise.all(tabs.slice(0, 2).map((p) => p.evaluate(
    (a) => window.t.peerEvents.filter((e) => e.agent === a && e.kind === 'suspect').length, agents[2])));
  console.log(JSON.stringify({ bench: 'liveness-e2e', case: 'hidden', hidden_ms: HIDDEN_MS, suspect_events: suspects, down_events: 0 }));
  for (const [i, p] of tabs.entries()) {
    assert.deepEqual(await p.evaluate(() => window.t.errors), [], `tab ${i} error events`);
    assert.deepEqual(p.fennecErrors.map(String), [], `tab ${i} page errors`);
  }
  await closeAll(tabs);
});

test('(d) a closed tab is reported left or down by every other tab and leaves peers()', async () => {
  const { tabs, agents } = await threeTabs();
  const t0 = Date.now();
  await tabs[2].close();
  const ms = await departure(tabs.slice(0, 2), agents[2], ['left', 'down'], t0, 'close');
  const kinds = await Promise.all(tabs.slice(0, 2).map((p) => p.evaluate(
    (a) => window.t.peerEvents.filter((e) => e.agent === a && (e.kind === 'left' || e.kind === 'down')).map((e) => e.kind).join(), agents[2])));
  report('close', ms, kinds);
  await closeAll(tabs);
});

test('(e) a tab that leaves gives exactly one left per other tab, and no down after it', async () => {
  const { tabs, agents } = await threeTabs();
  const t0 = Date.now();
  await tabs[2].evaluate(() => window.t.space.leave());
  const ms = await departure(tabs.slice(0, 2), agents[2], ['left'], t0, 'leave');
  report('leave', ms, 'left');
  // Membership's own leave and down reports arrive within a few probe periods: wait them out.
  await sleep(10_000);
  for (const [i, p] of tabs.slice(0, 2).entries()) {
    // A suspicion refuted before the leave (a stalled renderer on a loaded machine) is not
    // about leaving; any departure but the one `left`, or anything after it, is.
    const evs = await changesOf(p, agents[2]);
    assert.deepEqual(evs.filter((k) => k !== 'suspect'), ['left'], `tab ${i}: one departure`);
    assert.deepEqual(evs.slice(evs.indexOf('left')), ['left'], `tab ${i}: no event after the left`);
  }
  await closeAll(tabs);
});

test('(f) Peer.connect\'s SWIM timing applies: with a 60 s suspicion a crashed tab stays suspect', async () => {
  const slow = { probePeriodMs: 300, suspicionTimeoutMs: 60_000 };
  const { tabs, agents } = await threeTabs([slow, slow]);
  const cdp = await tabs[2].context().newCDPSession(tabs[2]);
  cdp.send('Page.crash').catch(() => {}); // never resolves: the renderer is gone
  for (const [i, p] of tabs.slice(0, 2).entries()) {
    await until(() => p.evaluate((a) => window.t.peerEvents.some((e) => e.agent === a && e.kind === 'suspect'), agents[2]),
      DEADLINE_MS, `watcher ${i} reports the crashed tab suspect`);
  }
  await sleep(8_000);
  for (const [i, p] of tabs.slice(0, 2).entries()) {
    const { evs, peers } = await p.evaluate((a) => ({
      evs: window.t.peerEvents.filter((e) => e.agent === a && e.kind !== 'joined').map((e) => e.kind),
      peers: window.t.peers().filter((e) => e.agent === a).map((e) => e.state),
    }), agents[2]);
    assert.ok(!evs.includes('down'), `watcher ${i} reported down within the 60 s suspicion: ${evs}`);
    assert.deepEqual(peers, ['suspect'], `watcher ${i} lists the crashed tab suspect`);
  }
  await closeAll(tabs);
});

test('(g) Peer.connect\'s probePeriodMs sets the probe rate: 200 ms sends many times the datagrams of 4 000 ms', async () => {
  // Two 2-tab spaces side by side over one window, so both see the same machine load. A tab
  // sends a ping per period and an ack per ping it gets: ~2 datagrams a period (~80 in 8 s at
  // 200 ms, ~4 at 4 000 ms); the default (800 ms) on both would make them equal.
  const WINDOW_MS = 8_000;
  const period = (probePeriodMs) => [{ probePeriodMs }, { probePeriodMs }];
  const [fast, slow] = await Promise.all([twoTabs(period(200)), twoTabs(period(4_000))]);
  const tabs = [...fast.tabs, ...slow.tabs];
  await datagramsFlow(tabs);
  // The joins' membership updates are gossiped every 100 ms until sent 10 times: let them go.
  await sleep(3_000);
  const sent = () => Promise.all(tabs.map((p) => p.evaluate(async () => (await window.t.space.stats()).net.datagramsSent)));
  const before = await sent();
  await sleep(WINDOW_MS);
  const delta = (await sent()).map((n, i) => n - before[i]);
  console.log(JSON.stringify({ bench: 'liveness-e2e', case: 'probe-period', window_ms: WINDOW_MS, datagrams_sent_200ms: delta.slice(0, 2), datagrams_sent_4000ms: delta.slice(2) }));
  const [fastSum, slowSum] = [delta[0] + delta[1], delta[2] + delta[3]];
  assert.ok(fastSum >= 5 * Math.max(slowSum, 1),
    `a 200 ms probe period sent ${fastSum} datagrams in ${WINDOW_MS} ms, a 4 000 ms one ${slowSum}: expected at least 5x`);
  await closeAll(tabs);
});

test('(h) Peer.connect\'s hiddenSuspicionTimeoutMs applies: a crashed hidden tab goes down at 2 s, not at the default 30 s', async () => {
  // Two 2-tab spaces side by side; in each, tab 1 says it is hidden, then crashes. Tab 0 (the
  // watcher) times the suspicion of a hidden member with its own option: 2 000 ms in one
  // space (above the 1 600 ms suspicion; the longer of the two applies), the default 30 s in
  // the other. Down spreads between members (SWIM's confirm), hence one watcher a space.
  const [short, long] = await Promise.all([twoTabs([{ hiddenSuspicionTimeoutMs: 2_000 }]), twoTabs([])]);
  await datagramsFlow([...short.tabs, ...long.tabs]);
  await Promise.all([short.tabs[1], long.tabs[1]].map((p) => p.evaluate(() => window.t.hide())));
  await sleep(3_000); // the dozing hint is piggybacked on the next packets: let it arrive
  const t0 = Date.now();
  for (const { tabs } of [short, long]) {
    const cdp = await tabs[1].context().newCDPSession(tabs[1]);
    cdp.send('Page.crash').catch(() => {}); // never resolves: the renderer is gone
  }
  const kinds = ({ tabs, agents }) => changesOf(tabs[0], agents[1]);
  const downMs = await departure([short.tabs[0]], short.agents[1], ['down'], t0, 'the 2 s watcher: crashed hidden tab');
  await sleep(5_000);
  const longKinds = await kinds(long);
  console.log(JSON.stringify({ bench: 'liveness-e2e', case: 'hidden-suspicion', short_down_ms: downMs, short_watcher: await kinds(short), default_watcher: longKinds }));
  assert.ok(longKinds.includes('suspect') && !longKinds.includes('down'),
    `5 s after the 2 s watcher reported down, the default (30 s) watcher reported ${longKinds}: expected suspect, not down`);
  await closeAll([...short.tabs, ...long.tabs]);
});

/**
 * Freezes `tabs[2]` (`stop(page)`, default `freeze`, whose result goes to `thaw`) until both
 * others report it `down` and `holdMs` have passed, publishes an op from tab 0 meanwhile,
 * then lets it run again (`thaw(page, stopped)`), and checks the way back: both others list
 * it `alive` again, it gets the op published while it was frozen, an op it publishes reaches
 * both, and no tab reported an error (but those `allowErrors` matches in the frozen tab).
 * Prints the ms from the thaw to the last `alive` and to the op. `pages`: as `threeTabs`.
 */
async function frozenAndBack(kase, thaw, { stop = freeze, holdMs = 0, pages, allowErrors } = {}) {
  const { tabs, agents } = await threeTabs([], pages);
  const frozen = tabs[2];
  const stoppedAt = Date.now();
  const stopped = await stop(frozen);
  await departure(tabs.slice(0, 2), agents[2], ['down'], Date.now(), `${kase}: frozen`);
  const whileFrozen = await tabs[0].evaluate(() => window.t.publish('published while tab 2 was frozen'));
  await sleep(stoppedAt + holdMs - Date.now());
  const t0 = Date.now();
  await thaw(frozen, stopped);
  let back = 0;
  for (const [i, p] of tabs.slice(0, 2).entries()) {
    const at = await until(async () => {
      const { evs, peers } = await p.evaluate(() => ({ evs: window.t.peerEvents, peers: window.t.peers() }));
      const listed = peers.some((e) => e.agent === agents[2] && e.state === 'alive');
      const again = evs.find((e) => e.agent === agents[2] && e.kind === 'alive' && e.at >= t0);
      return listed && again?.at;
    }, DEADLINE_MS, `${kase}: watcher ${i} reports the thawed tab alive again and lists it`);
    back = Math.max(back, at - t0);
  }
  await until(() => frozen.evaluate((x) => window.t.has(x), whileFrozen), DEADLINE_MS,
    `${kase}: the op published while it was frozen reaches the thawed tab`);
  const opMs = Date.now() - t0;
  const fromThawed = await frozen.evaluate(() => window.t.publish('from the thawed tab'));
  for (const [i, p] of tabs.slice(0, 2).entries()) {
    await until(() => p.evaluate((x) => window.t.has(x), fromThawed), DEADLINE_MS,
      `${kase}: the thawed tab's op reaches watcher ${i}`);
  }
  console.log(JSON.stringify({ bench: 'liveness-e2e', case: kase, ms_to_alive_again: back, ms_to_op: opMs }));
  for (const [i, p] of tabs.entries()) {
    const errors = await p.evaluate(() => window.t.errors);
    const unexpected = errors.filter((e) => !(p === frozen && allowErrors?.test(e)));
    assert.deepEqual(unexpected, [], `tab ${i} error events`);
    assert.deepEqual(p.fennecErrors.map(String), [], `tab ${i} page errors`);
  }
  await closeAll(tabs);
}

test('(i) a frozen tab declared down comes back when it resumes: alive again, and it syncs both ways', async () => {
  // What Chrome does when a frozen background tab is shown again: its JavaScript runs, then
  // the page gets `resume` (Page Lifecycle API), on which fennec renews its identity.
  await frozenAndBack('freeze-resume', async (page, cdp) => {
    await cdp.send('Debugger.resume');
    await cdp.send('Debugger.disable');
    await page.evaluate(() => document.dispatchEvent(new Event('resume')));
  });
});

test('(j) a tab stopped without a lifecycle event (a machine that slept) comes back on its own', async () => {
  // A laptop waking from sleep: the page's JavaScript runs again, late timers fire at once,
  // and no `resume` event comes. Membership has to find out it was declared down by itself.
  await frozenAndBack('sleep-wake', async (_page, cdp) => {
    await cdp.send('Debugger.resume');
    await cdp.send('Debugger.disable');
  });
});

test('(k) a tab whose renderer process stopped for 35 s (a machine asleep) comes back and syncs both ways', async () => {
  // Below the JavaScript (j) stops: ICE consent, SCTP and the WebSocket stand still too. The
  // others close their WebRTC connections to it on the down; the signal server may drop its
  // socket (an `error` event of kind "signal" at the woken tab, then a reconnect).
  const pages = await openPages(browser, net, 3);
  const pid = await rendererOf(pages[2]);
  try {
    await frozenAndBack('renderer-stopped', () => process.kill(pid, 'SIGCONT'), {
      pages,
      stop: () => process.kill(pid, 'SIGSTOP'),
      holdMs: 35_000,
      allowErrors: /^signal: sbd connection to \S+ lost: /,
    });
  } catch (e) {
    process.kill(pid, 'SIGCONT'); // a failed case must not leave it stopped
    throw e;
  }
});
