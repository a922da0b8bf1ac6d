// Shared pieces of the liveness benchmark (`npm run bench -- liveness`), the liveness soak
// (`npm run soak -- liveness`) and its 1-minute e2e (tests/e2e/soak-liveness.test.mjs), and the
// idle and liveness e2e (tests/e2e/idle.test.mjs, liveness.test.mjs): tabs
// (separate browser contexts, `storage: "memory"`: one agent per tab) joined to one space of
// the devnet, their `peer` events recorded with the page clock, and the two CDP tricks the
// liveness e2e explains (tests/e2e/liveness.test.mjs): a frozen tab is one whose JavaScript the
// debugger stopped; a hidden, throttled tab has `document.hidden` overridden and its JavaScript
// paused 600 ms of every second (harder than Chrome's 1 s timer alignment). `rendererOf`
// finds a tab's renderer process, for the test that stops all of it (a machine asleep).
import { readdirSync, readFileSync } from 'node:fs';
import { openFennecPage } from '../../tests/e2e/harness.mjs';

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * Runs in each page: `window.t` with join/publish/has/peers/hide/show helpers, the recorded
 * `peer` events (`{ kind, agent, url, at }`, `at` the page clock) and `error` events. Shared by
 * the liveness bench and soak and the idle and liveness e2e.
 */
export function pageHelpers() {
  const t = { peerEvents: [], errors: [] };
  window.t = t;
  t.join = async ({ bootstrapUrl, signalUrl, space, connect }) => {
    const { Peer } = window.fennec;
    t.peer = await Peer.connect({ bootstrapUrl, signalUrl, storage: 'memory', ...connect });
    t.space = await t.peer.join(space);
    t.space.on('peer', (e) => t.peerEvents.push({ kind: e.kind, agent: e.agent, url: e.url, at: Date.now() }));
    t.space.on('error', (e) => t.errors.push(`${e.kind}: ${e.message}`));
    return t.peer.agentId;
  };
  t.publish = async (text) => t.space.publish(new TextEncoder().encode(text));
  t.has = async (id) => (await t.space.get(id)) !== undefined;
  t.peers = () => t.space.peers();
  // Resolves once the space task has taken the hide (its dozing hint is sent in the same
  // turn): `stats()` asks the task after the hide's command. Without the wait, a caller that
  // pauses the page's JavaScript at once (`hideAndThrottle`) could freeze the hint inside the
  // tab, and members then declared it down at its first pause (CI, session 13) — no browser
  // freezes a tab the instant it is hidden.
  t.hide = async () => {
    Object.defineProperty(document, 'hidden', { configurable: true, get: () => true });
    Object.defineProperty(document, 'visibilityState', { configurable: true, get: () => 'hidden' });
    document.dispatchEvent(new Event('visibilitychange'));
    await t.space.stats();
  };
  t.show = () => {
    delete document.hidden;
    delete document.visibilityState;
    document.dispatchEvent(new Event('visibilitychange'));
  };
}

/** Polls `check` (async, truthy when done) every 100 ms until `limitMs`; throws naming `what`. */
export async function until(check, limitMs, what) {
  const t0 = Date.now();
  for (;;) {
    const v = await check();
    if (v) return v;
    if (Date.now() - t0 > limitMs) throw new Error(`${what}: not within ${limitMs} ms`);
    await sleep(100);
  }
}

/**
 * `n` tabs in the fresh space `space`, each listing all others alive (within `limitMs`).
 * `connect[i]`: more `Peer.connect` options for tab `i` (e.g. SWIM timing).
 * Returns `{ tabs, agents }` (same order).
 */
export async function openTabs(browser, net, n, space, limitMs = 60_000, connect = []) {
  return joinTabs(await openPages(browser, net, n), net, space, limitMs, connect);
}

/** `n` pages (separate browser contexts) with the package loaded and `window.t`, not joined. */
export function openPages(browser, net, n) {
  return Promise.all(Array.from({ length: n }, async () => {
    const context = await browser.newContext();
    await context.addInitScript(pageHelpers);
    return openFennecPage(context, net.staticUrl, '/blank.html');
  }));
}

/** The second half of `openTabs`: the pages join `space`; returns `{ tabs, agents }`. */
export async function joinTabs(tabs, net, space, limitMs = 60_000, connect = []) {
  const n = tabs.length;
  const agents = await Promise.all(tabs.map((p, i) => p.evaluate((o) => window.t.join(o),
    { bootstrapUrl: net.bootstrapUrl, signalUrl: net.signalUrl, space, connect: connect[i] })));
  for (const [i, p] of tabs.entries()) {
    const others = agents.filter((_, j) => j !== i).sort().join();
    await until(async () => {
      const ps = await p.evaluate(() => window.t.peers());
      return ps.filter((e) => e.state === 'alive').map((e) => e.agent).sort().join() === others;
    }, limitMs, `tab ${i} lists the other ${n - 1} alive`);
  }
  return { tabs, agents };
}

/**
 * Waits until every tab lists every other on the WebRTC path and has sent and received
 * membership datagrams, so the SWIM packets (the dozing hint among them) go as datagrams,
 * in the turn they are made; on a relayed or still-opening connection they take the reliable
 * path, which may wait for the channel.
 */
export async function webrtcMesh(tabs, agents, limitMs = 60_000) {
  for (const [i, p] of tabs.entries()) {
    const others = agents.filter((_, j) => j !== i).sort().join();
    await until(async () => {
      const peers = await p.evaluate(() => window.t.peers());
      return peers.filter((e) => e.path === 'webrtc').map((e) => e.agent).sort().join() === others;
    }, limitMs, `tab ${i} lists the other ${tabs.length - 1} on the WebRTC path`);
  }
  await datagramsFlow(tabs, limitMs);
}

/** Waits until every tab sends and receives SWIM packets on the unreliable datagram channel (WebRTC). */
export async function datagramsFlow(tabs, limitMs = 60_000) {
  for (const [i, p] of tabs.entries()) {
    await until(async () => {
      const { net } = await p.evaluate(() => window.t.space.stats());
      return net.datagramsSent > 0 && net.datagramsReceived > 0;
    }, limitMs, `tab ${i} sends and receives membership datagrams`);
  }
}

/** `down`/`left` events each tab in `tabs` recorded about agents in `agents`. */
export async function departures(tabs, agents) {
  const all = await Promise.all(tabs.map((p) => p.evaluate(() => window.t.peerEvents).catch(() => [])));
  return all.flatMap((evs, i) => evs
    .filter((e) => (e.kind === 'down' || e.kind === 'left') && agents.includes(e.agent))
    .map((e) => ({ watcher: i, ...e })));
}

/**
 * Waits until every tab in `watchers` reported `agent` `down`; returns each watcher's ms from
 * `t0` (page clocks are this machine's clock).
 */
export async function downTimes(watchers, agent, t0, limitMs = 60_000) {
  const out = [];
  for (const [i, p] of watchers.entries()) {
    const ev = await until(async () => (await p.evaluate(() => window.t.peerEvents))
      .find((x) => x.agent === agent && x.kind === 'down'), limitMs, `watcher ${i} reports down`);
    out.push(ev.at - t0);
  }
  return out;
}

/**
 * The pid of `page`'s renderer process (Linux: read from `/proc`). Each renderer process this
 * Node process started (a descendant with `--type=renderer` on its command line) is stopped
 * (SIGSTOP) in turn until `page` stops answering for 500 ms; each is let go again at once.
 * Call it before the page joins a space: a tab stopped for half a second finds its own timers
 * late and tells its peers it is busy.
 */
export async function rendererOf(page) {
  for (const pid of descendants(process.pid).filter(isRenderer)) {
    process.kill(pid, 'SIGSTOP');
    // A rejection (the page went away) counts as an answer: that renderer is not the one.
    const answer = page.evaluate(() => true).catch(() => true);
    const answers = await Promise.race([answer, sleep(500).then(() => false)]);
    process.kill(pid, 'SIGCONT');
    if (!answers) return pid;
  }
  throw new Error('no renderer process of this page found');
}

/** Every process below `root` (from each process's parent in `/proc/<pid>/stat`). */
function descendants(root) {
  const children = new Map();
  for (const name of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    let stat;
    try {
      stat = readFileSync(`/proc/${name}/stat`, 'utf8');
    } catch {
      continue; // gone meanwhile
    }
    const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    children.set(ppid, [...(children.get(ppid) ?? []), Number(name)]);
  }
  const out = [];
  for (let todo = [root]; todo.length;) {
    const kids = children.get(todo.pop()) ?? [];
    out.push(...kids);
    todo.push(...kids);
  }
  return out;
}

function isRenderer(pid) {
  try {
    // Chromium rewrites its process title: the arguments may be one space-separated string.
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split(/[\0 ]/).includes('--type=renderer');
  } catch {
    return false;
  }
}

/** Stops the tab's JavaScript for good (CDP debugger): a frozen tab, from the network's side. */
export async function freeze(page) {
  const cdp = await page.context().newCDPSession(page);
  await cdp.send('Page.setWebLifecycleState', { state: 'frozen' }).catch(() => {});
  await cdp.send('Debugger.enable');
  await cdp.send('Debugger.pause');
  return cdp;
}

/**
 * Hides the tab (unless `hide` is false) and throttles it until `stop()` is called: its
 * JavaScript paused `pauseMs` (default 600) of every `pauseMs + 400` ms. Returns `{ stop }`
 * (resolves once the tab runs freely again).
 *
 * A hidden tab first runs freely for `graceMs` (default 2 000), as every browser lets a tab
 * run after it is hidden (Chrome aligns its timers to 1 s; it does not stop them): a dozing
 * hint still on its way out (a SWIM packet to a peer whose connection is relayed or still
 * opening takes the reliable path, which can wait) leaves, and rides on the tab's next SWIM
 * packets. Paused at once, the tab could keep the hint inside and be declared down at its
 * first 5 s pause: the 1-minute soak had three false downs so in one CI run of eight
 * (session 47).
 */
export async function hideAndThrottle(page, { hide = true, pauseMs = 600, graceMs = 2_000 } = {}) {
  if (hide) {
    await page.evaluate(() => window.t.hide());
    await sleep(graceMs);
  }
  const cdp = await page.context().newCDPSession(page);
  await cdp.send('Debugger.enable');
  let running = true;
  const loop = (async () => {
    while (running) {
      await cdp.send('Debugger.pause');
      await sleep(pauseMs);
      await cdp.send('Debugger.resume');
      await sleep(400);
    }
    await cdp.send('Debugger.disable');
  })();
  return { stop: async () => { running = false; await loop; } };
}

export async function closeAll(tabs) {
  await Promise.all(tabs.map((p) => p.context().close().catch(() => {})));
}

/** The `p`-quantile (0..1, nearest rank) of numbers. */
export function percentile(xs, p) {
  if (xs.length === 0) return null;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.round((s.length - 1) * p)];
}
