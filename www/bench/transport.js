// Page side of `npm run bench -- transport` (scripts/bench/transport.mjs drives it step by step).
// Raw: two RTCPeerConnections in this page, one pre-negotiated data channel, signalled
// directly in JavaScript, 16 KiB messages with fennec's back-pressure rule. Ours: two fennec
// `Transport`s (each on its own sbd connection to the devnet server) connected through sbd
// signalling, sending the same bytes as `msgBytes` messages.
import { Transport } from '/pkg-testing/index.js';

const HIGH_WATER = 1024 * 1024; // NetConfig::send_high_water_bytes
const LOW_WATER = 256 * 1024; // NetConfig::send_low_water_bytes
const RAW_MSG = 16 * 1024; // NetConfig::chunk_bytes

function timeout(ms, what) {
  return new Promise((_, reject) => setTimeout(() => reject(new Error(`${what}: no result in ${ms} ms`)), ms));
}

/** Sends `total` bytes over a raw data-channel pair; resolves to ms from first send to last byte received. */
export async function raw(total) {
  const a = new RTCPeerConnection();
  const b = new RTCPeerConnection();
  try {
    a.onicecandidate = (e) => e.candidate && b.addIceCandidate(e.candidate);
    b.onicecandidate = (e) => e.candidate && a.addIceCandidate(e.candidate);
    const init = { negotiated: true, id: 0, ordered: true };
    const da = a.createDataChannel('raw', init);
    const db = b.createDataChannel('raw', init);
    da.binaryType = db.binaryType = 'arraybuffer';
    da.bufferedAmountLowThreshold = LOW_WATER;
    await a.setLocalDescription();
    await b.setRemoteDescription(a.localDescription);
    await b.setLocalDescription();
    await a.setRemoteDescription(b.localDescription);
    await Promise.all([da, db].map((c) => new Promise((r) => { c.onopen = r; })));
    let got = 0;
    const done = new Promise((resolve) => {
      db.onmessage = (e) => { got += e.data.byteLength; if (got >= total) resolve(); };
    });
    const buf = new Uint8Array(RAW_MSG).fill(7);
    const t0 = performance.now();
    for (let sent = 0; sent < total; sent += RAW_MSG) {
      if (da.bufferedAmount > HIGH_WATER) {
        await new Promise((r) => { da.onbufferedamountlow = r; });
      }
      da.send(buf);
    }
    await Promise.race([done, timeout(120_000, 'raw')]);
    return performance.now() - t0;
  } finally {
    a.close();
    b.close();
  }
}

async function pair(signalUrl, relayOnly) {
  const [a, b] = await Promise.all([
    Transport.connect(signalUrl, { relayOnly }),
    Transport.connect(signalUrl, { relayOnly }),
  ]);
  return [a, b];
}

/** Sends `total` bytes as `msgBytes` messages between two fresh Transports (connected first,
 * untimed); resolves to { ms, path }, ms from first send to last byte received. */
export async function ours(signalUrl, total, msgBytes, relayOnly = false) {
  const [a, b] = await pair(signalUrl, relayOnly);
  try {
    const path = await a.connectTo(b.url);
    let got = 0;
    const done = new Promise((resolve) => {
      b.onMessage((_peer, data) => { got += data.length; if (got >= total) resolve(); });
    });
    const buf = new Uint8Array(msgBytes).fill(7);
    const t0 = performance.now();
    for (let sent = 0; sent < total; sent += msgBytes) await a.send(b.url, buf);
    await Promise.race([done, timeout(300_000, 'ours')]);
    return { ms: performance.now() - t0, path };
  } finally {
    a.close();
    b.close();
  }
}

/** One set-up trial: two fresh Transports (sbd connect untimed); ms from `send` (the dial)
 * until the 1-byte message is delivered on the other side. */
export async function setup(signalUrl) {
  const [a, b] = await pair(signalUrl, false);
  try {
    const got = new Promise((resolve) => b.onMessage(() => resolve(performance.now())));
    const t0 = performance.now();
    await a.send(b.url, new Uint8Array([1]));
    const t1 = await Promise.race([got, timeout(30_000, 'setup')]);
    return t1 - t0;
  } finally {
    a.close();
    b.close();
  }
}
