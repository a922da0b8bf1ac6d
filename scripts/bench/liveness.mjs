// `npm run bench -- liveness [--runs N] [--tabs N] [--traffic-tabs N] [--traffic-secs S]`
//
// Issue 11 goals, measured in real headless Chromium through the devnet's real bootstrap and
// sbd servers with the default membership config:
// - detection: in each of `--runs` (default 5) fresh spaces of `--tabs` (default 4) tabs, one
//   tab crashes (CDP Page.crash) and, once every other tab reported it `down`, another tab is
//   frozen (its JavaScript stopped, see liveness-tabs.mjs); every watcher's ms from the kill to
//   its `down` event is a sample: p50/p95 per kind;
// - false positives: `down`/`left` events about tabs that were alive, over all runs;
// - traffic: `--traffic-tabs` (default 16; 0 skips) idle tabs in one space for
//   `--traffic-secs` (default 60) s; the K2 frame bytes each tab sent per second (txBytes: all
//   idle traffic, membership and the rest, so an upper bound of membership's share), and the
//   bytes it received per second by kind (rxBytesByKind): membership alone is the goal's
//   figure (over a space every tab receives about what it sends), gossip the idle rounds.
// The native-simulation figures (50 members, virtual time) are `npm run bench -- membership`.
import { launchBrowser, startDevnet } from '../../tests/e2e/harness.mjs';
import { closeAll, departures, downTimes, freeze, openTabs, percentile, sleep } from './liveness-tabs.mjs';
import { integer, parseOptions } from './options.mjs';

const OPTIONS = {
  runs: [integer(1), 5],
  tabs: [integer(3), 4], // a crash, a freeze, a watcher
  trafficTabs: [integer(0), 16], // 0 skips the traffic part; 1 is refused below
  trafficSecs: [integer(0), 60],
};

async function detectionRun(browser, net, o, run, log) {
  const { tabs, agents } = await openTabs(browser, net, o.tabs, `liveness-bench-${Date.now()}-${run}`);
  const [crashed, frozen] = [o.tabs - 1, o.tabs - 2];
  const cdp = await tabs[crashed].context().newCDPSession(tabs[crashed]);
  let t0 = Date.now();
  cdp.send('Page.crash').catch(() => {}); // never resolves: the renderer is gone
  const crash = await downTimes(tabs.slice(0, crashed), agents[crashed], t0);
  t0 = Date.now();
  await freeze(tabs[frozen]);
  const freezeMs = await downTimes(tabs.slice(0, frozen), agents[frozen], t0);
  const alive = agents.slice(0, frozen);
  const falseDowns = (await departures(tabs.slice(0, frozen), alive)).length;
  log(`run ${run}: crash ${crash.join(',')} ms, freeze ${freezeMs.join(',')} ms, false downs ${falseDowns}`);
  await closeAll(tabs);
  return { crash, freeze: freezeMs, falseDowns };
}

async function traffic(browser, net, o, log) {
  const { tabs, agents } = await openTabs(browser, net, o.trafficTabs, `liveness-traffic-${Date.now()}`, 120_000);
  await sleep(10_000); // joins settle (first catch-up rounds, agent info exchange)
  const sample = () => Promise.all(tabs.map((p) => p.evaluate(async () => {
    const s = await window.t.space.stats();
    return { tx: s.txBytes, ...s.rxBytesByKind };
  })));
  const before = await sample();
  const t0 = Date.now();
  await sleep(o.trafficSecs * 1000);
  const after = await sample();
  const secs = (Date.now() - t0) / 1000;
  const rate = (k) => after.map((a, i) => (a[k] - before[i][k]) / secs);
  const mean = (xs) => Math.round(xs.reduce((a, b) => a + b, 0) / xs.length);
  const perTab = rate('tx');
  const falseDowns = (await departures(tabs, agents)).length;
  log(`traffic: ${o.trafficTabs} tabs, ${perTab.map((x) => x.toFixed(0)).join(',')} B/s`);
  await closeAll(tabs);
  return {
    traffic_tabs: o.trafficTabs,
    traffic_secs: Math.round(secs),
    idle_tx_bytes_per_s_per_tab_mean: Math.round(perTab.reduce((a, b) => a + b, 0) / perTab.length),
    idle_tx_bytes_per_s_per_tab_max: Math.round(Math.max(...perTab)),
    idle_rx_membership_bytes_per_s_per_tab_mean: mean(rate('membership')),
    idle_rx_membership_bytes_per_s_per_tab_max: Math.round(Math.max(...rate('membership'))),
    idle_rx_gossip_bytes_per_s_per_tab_mean: mean(rate('gossip')),
    falseDowns,
  };
}

export async function run(args, log) {
  const o = parseOptions(args, OPTIONS);
  if (o.trafficTabs === 1) throw new RangeError('--traffic-tabs must be 0 or at least 2, got 1');
  const net = await startDevnet();
  const browser = await launchBrowser();
  try {
    const crash = [];
    const frozen = [];
    let falseDowns = 0;
    for (let r = 0; r < o.runs; r++) {
      const x = await detectionRun(browser, net, o, r, log);
      crash.push(...x.crash);
      frozen.push(...x.freeze);
      falseDowns += x.falseDowns;
    }
    const out = {
      runs: o.runs,
      tabs: o.tabs,
      crash_samples: crash.length,
      crash_p50_ms: percentile(crash, 0.5),
      crash_p95_ms: percentile(crash, 0.95),
      freeze_samples: frozen.length,
      freeze_p50_ms: percentile(frozen, 0.5),
      freeze_p95_ms: percentile(frozen, 0.95),
    };
    if (o.trafficTabs > 0) {
      const t = await traffic(browser, net, o, log);
      falseDowns += t.falseDowns;
      delete t.falseDowns;
      Object.assign(out, t);
    }
    out.false_downs = falseDowns;
    return out;
  } finally {
    await browser.close();
    await net.stop();
  }
}
