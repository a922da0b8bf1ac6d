// `npm run bench -- transport [--mib N] [--msg-kib K] [--rounds R] [--trials T] [--relay-mib M]`
//
// In one headless Chromium page, with the devnet's real kitsune2-bootstrap-srv as sbd server:
// - throughput: N MiB (default 64) over a raw RTCDataChannel pair in the page (16 KiB
//   messages, waiting on bufferedamountlow while bufferedAmount > 1 MiB, low water 256 KiB —
//   fennec's defaults) vs the same bytes sent by one fennec Transport to another over their
//   sbd-signalled WebRTC connection, as K KiB messages (default 1024; fennec chunks them into
//   16 KiB data-channel messages). Connection set-up is untimed on both sides; timing runs
//   from the first send to the last byte received. R rounds (default 3), alternating which
//   side goes first, after an untimed 8 MiB warm-up of each; MiB/s are medians, the ratio the geometric mean of per-round ratios.
// - set-up: T trials (default 20), each with two fresh Transports (their sbd connections are
//   made untimed): ms from `send` to a peer never dialled before until that 1-byte message is
//   delivered (WebRTC offer/answer/ICE through sbd, both preflights, the message).
// - relay: M MiB (default 4) between two relayOnly Transports (every chunk through sbd), K KiB
//   messages.
import { launchBrowser, openFennecPage, startDevnet } from '../../tests/e2e/harness.mjs';
import { median } from './stats.mjs';
import { integer, parseOptions } from './options.mjs';

const OPTIONS = {
  mib: [integer(1), 64],
  msgKib: [integer(1, 4000), 1024], // at most fennec's 4 MiB message limit
  rounds: [integer(1), 3],
  trials: [integer(1), 20],
  relayMib: [integer(1), 4],
};

const quantile = (xs, q) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil(q * s.length) - 1)];
};
const round = (x, d = 0) => Number(x.toFixed(d));

export async function run(args, log) {
  const opt = parseOptions(args, OPTIONS);
  const net = await startDevnet();
  const browser = await launchBrowser();
  try {
    const context = await browser.newContext();
    const page = await openFennecPage(context, net.staticUrl);
    await page.evaluate(async () => { window.bench = await import('/bench/transport.js'); });
    const total = opt.mib * 1024 * 1024;
    const msgBytes = opt.msgKib * 1024;
    const mibS = (bytes, ms) => bytes / (1024 * 1024) / (ms / 1000);
    log(`throughput: ${opt.mib} MiB, raw 16 KiB messages vs ours ${opt.msgKib} KiB messages, ${opt.rounds} rounds; signal ${net.signalUrl}`);
    // Untimed warm-up (8 MiB each way): the page's first transfer ran ~1.5x slower whichever
    // side made it (JIT, wasm tier-up, first SCTP association).
    await page.evaluate((t) => window.bench.raw(t), 8 * 1024 * 1024);
    await page.evaluate(([u, t, m]) => window.bench.ours(u, t, m), [net.signalUrl, 8 * 1024 * 1024, Math.min(msgBytes, 8 * 1024 * 1024)]);
    const rates = { ours: [], raw: [] };
    for (let r = 0; r < opt.rounds; r++) {
      const sides = r % 2 ? ['raw', 'ours'] : ['ours', 'raw'];
      const parts = [];
      for (const side of sides) {
        let ms;
        if (side === 'raw') {
          ms = await page.evaluate((t) => window.bench.raw(t), total);
          parts.push(`raw ${ms.toFixed(0)} ms`);
        } else {
          const res = await page.evaluate(([u, t, m]) => window.bench.ours(u, t, m), [net.signalUrl, total, msgBytes]);
          if (res.path !== 'webrtc') throw new Error(`ours connected over ${res.path}, not webrtc`);
          ms = res.ms;
          parts.push(`ours ${ms.toFixed(0)} ms`);
        }
        rates[side].push(mibS(total, ms));
      }
      log(`round ${r + 1}/${opt.rounds}: ${parts.join(', ')}; ours ${rates.ours[r].toFixed(1)} MiB/s, raw ${rates.raw[r].toFixed(1)} MiB/s, ratio ${(rates.ours[r] / rates.raw[r]).toFixed(2)}`);
    }
    const setups = [];
    for (let t = 0; t < opt.trials; t++) {
      setups.push(await page.evaluate((u) => window.bench.setup(u), net.signalUrl));
    }
    log(`set-up over ${opt.trials} trials (ms): ${setups.map((x) => x.toFixed(0)).join(' ')}`);
    const relayTotal = opt.relayMib * 1024 * 1024;
    const relay = await page.evaluate(([u, t, m]) => window.bench.ours(u, t, m, true), [net.signalUrl, relayTotal, Math.min(msgBytes, relayTotal)]);
    if (relay.path !== 'relay') throw new Error(`relayOnly connected over ${relay.path}`);
    log(`relay: ${opt.relayMib} MiB in ${relay.ms.toFixed(0)} ms`);
    if (page.fennecErrors.length) throw new Error(`page errors: ${page.fennecErrors.join('; ')}`);
    const logs = rates.ours.map((x, i) => Math.log(x / rates.raw[i]));
    return {
      ours_mib_s: round(median(rates.ours), 1),
      raw_mib_s: round(median(rates.raw), 1),
      ratio: round(Math.exp(logs.reduce((s, x) => s + x, 0) / logs.length), 3),
      setup_ms_p50: round(quantile(setups, 0.5), 1),
      setup_ms_p95: round(quantile(setups, 0.95), 1),
      relay_mib_s: round(mibS(relayTotal, relay.ms), 2),
    };
  } finally {
    await browser.close();
    await net.stop();
  }
}
