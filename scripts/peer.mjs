#!/usr/bin/env node
// `npm run peer -- --space NAME [--bootstrap URL --signal URL] [--store FILE] [--key FILE]
//  [--every SECONDS] [--probe-period-ms MS] [--suspicion-timeout-ms MS]
//  [--hidden-suspicion-timeout-ms MS]`: an always-on Node peer of one space, for browser swarms
// whose tabs come and go. It runs the built package (pkg/, `npm run build`) relay-only (Node
// has no WebRTC), holds every op of the space (full arc) and serves them to tabs that join
// later. It prints one status line per change (signal state, peers joining/leaving, errors) and
// a summary line every --every seconds (default 30), until Ctrl-C (SIGINT/SIGTERM: leaves the
// space cleanly).
//   --bootstrap/--signal  default $FENNEC_BOOTSTRAP_URL / $FENNEC_SIGNAL_URL (set by
//                         `npm run devnet -- CMD`); one of the two is required.
//   --store FILE          keeps the ops in FILE too (JSON lines: id, createdAt in ms, payload
//                         base64), appended as they arrive; on start every op in it is
//                         published again with its createdAt. Ops are content-addressed (the
//                         id is the hash of payload and time, not of the author), so this gives
//                         the same ops back, not copies. Without it the ops live in memory only.
//   --key FILE            the agent's 32-byte secret key, created on first use (mode 0600), so
//                         the peer keeps its agent id across restarts; default a new agent.
//   --probe-period-ms, --suspicion-timeout-ms, --hidden-suspicion-timeout-ms
//                         the SWIM timing of `Peer.connect`'s probePeriodMs, suspicionTimeoutMs
//                         and hiddenSuspicionTimeoutMs (README, "Liveness"), passed as given:
//                         their ranges are checked there, and a bad value stops the peer with
//                         Peer.connect's error; default fennec's (800, 1 600, 30 000 ms).
import { randomBytes } from 'node:crypto';
import { appendFile, readFile, writeFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';

const USAGE = 'usage: npm run peer -- --space NAME [--bootstrap URL --signal URL] [--store FILE] [--key FILE] [--every SECONDS]'
  + ' [--probe-period-ms MS] [--suspicion-timeout-ms MS] [--hidden-suspicion-timeout-ms MS] [--help]';

/** The SWIM timing flags and the `Peer.connect` option each one sets. */
const TIMING_FLAGS = {
  'probe-period-ms': 'probePeriodMs',
  'suspicion-timeout-ms': 'suspicionTimeoutMs',
  'hidden-suspicion-timeout-ms': 'hiddenSuspicionTimeoutMs',
};

/** The flags `parseArgs` accepts. */
const FLAGS = {
  space: { type: 'string' },
  bootstrap: { type: 'string', default: process.env.FENNEC_BOOTSTRAP_URL },
  signal: { type: 'string', default: process.env.FENNEC_SIGNAL_URL },
  store: { type: 'string' },
  key: { type: 'string' },
  every: { type: 'string', default: '30' },
  help: { type: 'boolean', short: 'h' },
  ...Object.fromEntries(Object.keys(TIMING_FLAGS).map((flag) => [flag, { type: 'string' }])),
};

/** The `Peer.connect` options of the timing flags given; a value that is not digits is a usage error. */
function timingOptions(values) {
  const out = {};
  for (const [flag, option] of Object.entries(TIMING_FLAGS)) {
    const text = values[flag];
    if (text === undefined) continue;
    if (!/^[0-9]+$/.test(text)) throw new Error(`${USAGE}\n(--${flag} is a whole number of ms, got ${JSON.stringify(text)})`);
    out[option] = Number(text);
  }
  return out;
}

/** The parsed flags; `--help` prints the usage and exits 0; an unknown flag is a usage error. */
function options() {
  let values;
  try {
    ({ values } = parseArgs({ options: FLAGS }));
  } catch (e) {
    throw new Error(`${e.message}\n${USAGE}`);
  }
  if (values.help) {
    console.log(`${USAGE}\n(flags: README.md, "An always-on Node peer", and the top of scripts/peer.mjs)`);
    process.exit(0);
  }
  const every = Number(values.every);
  if (!values.space || !values.bootstrap || !values.signal || !(every > 0)) {
    throw new Error(`${USAGE}\n(--space, --bootstrap and --signal are required; --every is a positive number)`);
  }
  return { ...values, every, timing: timingOptions(values) };
}

/** The secret key in `file`, created (32 random bytes, mode 0600) if it does not exist. */
async function agentKey(file) {
  try {
    const key = await readFile(file);
    if (key.length !== 32) throw new Error(`${file}: ${key.length} bytes, an agent key is 32`);
    return key;
  } catch (e) {
    if (e.code !== 'ENOENT') throw e;
    const key = randomBytes(32);
    await writeFile(file, key, { mode: 0o600, flag: 'wx' });
    return key;
  }
}

/** The ops of a --store file: [{ id, createdAt, payload: Uint8Array }]; a bad line is an error naming it. */
async function storedOps(file) {
  let text;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    if (e.code === 'ENOENT') return [];
    throw e;
  }
  return text.split('\n').filter((l) => l.trim()).map((l, i) => {
    try {
      const o = JSON.parse(l);
      return { id: o.id, createdAt: o.createdAt, payload: Buffer.from(o.payload, 'base64') };
    } catch (e) {
      throw new Error(`${file}:${i + 1}: not an op line (${e.message})`);
    }
  });
}

const stamp = () => new Date().toISOString().slice(11, 19);
const say = (text) => console.log(`peer ${stamp()} ${text}`);

async function main() {
  const o = options();
  const pkg = new URL('../pkg/index.js', import.meta.url);
  const fennec = await import(pkg.href).catch((e) => {
    throw new Error(`cannot load ${pkg.pathname} (run \`npm run build\` first): ${e.message}`);
  });
  await fennec.default();
  // Node 22+ has a global WebSocket; Node 20 needs a class: the `ws` package (a devDependency).
  const WebSocket = globalThis.WebSocket ?? (await import('ws')).WebSocket;
  const peer = await fennec.Peer.connect({
    bootstrapUrl: o.bootstrap,
    signalUrl: o.signal,
    WebSocket,
    ...o.timing,
    ...(o.key ? { agentKey: await agentKey(o.key) } : {}),
  });
  const space = await peer.join(o.space);
  say(`agent ${peer.agentId} joined space "${o.space}" (id ${space.id}) as ${space.url}, relay-only`);

  const known = new Set();
  let writes = Promise.resolve();
  const keep = (id, createdAt, payload) => {
    if (!o.store || known.has(id)) return;
    known.add(id);
    const line = JSON.stringify({ id, createdAt, payload: Buffer.from(payload).toString('base64') }) + '\n';
    writes = writes.then(() => appendFile(o.store, line)).catch((e) => say(`error: --store ${o.store}: ${e.message}`));
  };
  if (o.store) {
    const ops = await storedOps(o.store);
    for (const op of ops) known.add(op.id);
    for (const op of ops) await space.publish(op.payload, { createdAt: op.createdAt });
    say(`${ops.length} ops loaded from ${o.store}`);
  }

  space.on('op', (e) => keep(e.id, e.createdAt, e.payload));
  space.on('status', (e) => say(`signal ${e.state}${e.reason ? ` (${e.reason})` : ''}${e.nextRetryMs !== undefined ? `, retry in ${e.nextRetryMs} ms` : ''}`));
  space.on('peer', (e) => say(`peer ${e.kind} ${e.agent ?? e.url ?? ''}${e.reason ? ` (${e.reason})` : ''}`));
  space.on('error', (e) => say(`error ${e.kind}: ${e.message}`));

  const summary = async () => {
    const s = await space.stats();
    say(`ops ${s.ops} (${s.opBytes} B) peers ${s.peers} connections ${s.connections} signal ${s.status.state} rx ${s.rxBytes} B tx ${s.txBytes} B`);
  };
  await summary();
  const timer = setInterval(() => summary().catch((e) => say(`error: stats: ${e.message}`)), o.every * 1000);

  await new Promise((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  clearInterval(timer);
  await peer.close();
  await writes;
  say('left the space');
  process.exit(0);
}

main().catch((e) => {
  console.error(`peer: ${e.message}`);
  process.exit(1);
});
