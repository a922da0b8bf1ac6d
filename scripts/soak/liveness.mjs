// `npm run soak -- liveness [--minutes M] [--tabs N] [--hidden H] [--pause-ms P] [--no-hide]`
//
// Issue 11 goal "0 false down with tabs hidden and throttled": `--tabs` (default 4) tabs join
// one space through the devnet's real servers; `--hidden` of them (default 2) are hidden and
// throttled (liveness-tabs.mjs: `document.hidden` overridden, JavaScript paused 600 ms of every
// second) for `--minutes` (default 10); the rest stay visible and idle. Every tab is alive all
// along, so every `down`/`left` event any tab reports is a false down. Result:
// `{ false_downs, suspect_events, ... }` (suspicions refuted in time are not failures).
// `--pause-ms` (default 600) sets the pause per cycle (pause + 400 ms running); `--no-hide`
// pauses the tabs without hiding them (no dozing hint): a check that the count can go up,
// e.g. `--pause-ms 2600 --no-hide` gives false downs with the 2 s suspicion.
import { launchBrowser, startDevnet } from '../../tests/e2e/harness.mjs';
import { closeAll, departures, hideAndThrottle, openTabs, sleep, webrtcMesh } from '../bench/liveness-tabs.mjs';

function parseArgs(args) {
  const o = { minutes: 10, tabs: 4, hidden: 2, pauseMs: 600, hide: true };
  for (let i = 0; i < args.length; i += 2) {
    if (args[i] === '--no-hide') {
      o.hide = false;
      i -= 1;
      continue;
    }
    const k = { '--minutes': 'minutes', '--tabs': 'tabs', '--hidden': 'hidden', '--pause-ms': 'pauseMs' }[args[i]];
    if (!k) throw new Error(`unknown option ${args[i]} (options: --minutes M --tabs N --hidden H --pause-ms P --no-hide)`);
    o[k] = Number(args[i + 1]);
  }
  if (!(Number.isInteger(o.pauseMs) && o.pauseMs >= 0)) throw new Error('--pause-ms must be a non-negative integer');
  if (!(o.minutes > 0)) throw new Error('--minutes must be a positive number');
  if (!(Number.isInteger(o.tabs) && o.tabs >= 2)) throw new Error('--tabs must be an integer >= 2');
  if (!(Number.isInteger(o.hidden) && o.hidden >= 1 && o.hidden < o.tabs)) {
    throw new Error('--hidden must be an integer from 1 to tabs - 1');
  }
  return o;
}

export async function run(args, log) {
  const o = parseArgs(args);
  const net = await startDevnet();
  const browser = await launchBrowser();
  try {
    const { tabs, agents } = await openTabs(browser, net, o.tabs, `liveness-soak-${Date.now()}`);
    await webrtcMesh(tabs, agents);
    const throttles = await Promise.all(tabs.slice(0, o.hidden)
      .map((p) => hideAndThrottle(p, { hide: o.hide, pauseMs: o.pauseMs })));
    const end = Date.now() + o.minutes * 60_000;
    while (Date.now() < end) {
      await sleep(Math.min(30_000, end - Date.now()));
      const bad = await departures(tabs, agents);
      log(`${Math.round((end - Date.now()) / 1000)} s left, ${bad.length} false downs`);
    }
    await Promise.all(throttles.map((t) => t.stop()));
    const bad = await departures(tabs, agents);
    const evs = await Promise.all(tabs.map((p) => p.evaluate(() => window.t.peerEvents)));
    const errors = (await Promise.all(tabs.map((p) => p.evaluate(() => window.t.errors)))).flat();
    const pageErrors = tabs.flatMap((p) => p.fennecErrors.map(String));
    const stillListed = await Promise.all(tabs.map(async (p, i) => {
      const listed = (await p.evaluate(() => window.t.peers())).map((e) => e.agent);
      return agents.filter((a, j) => j !== i && !listed.includes(a)).length;
    }));
    await closeAll(tabs);
    return {
      minutes: o.minutes,
      tabs: o.tabs,
      hidden_throttled: o.hidden,
      hidden: o.hide,
      pause_ms: o.pauseMs,
      false_downs: bad.length,
      false_down_events: bad,
      suspect_events: evs.flat().filter((e) => e.kind === 'suspect').length,
      peers_missing: stillListed.reduce((a, b) => a + b, 0),
      errors: [...errors, ...pageErrors],
    };
  } finally {
    await browser.close();
    await net.stop();
  }
}
