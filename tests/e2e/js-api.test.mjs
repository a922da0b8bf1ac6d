// The JavaScript API refuses bad input and has a clear lifecycle (issue 9, deliverables 4 and
// 6), in real Chromium on the real devnet, through the package entry users get (pkg/index.js):
// - calls before `await init()` fail with FennecError "not-initialised";
// - every bad argument and option is a TypeError/RangeError naming it (with a hint for a
//   misspelt option), never serde text, and NOTHING is stored (stats().ops, get);
// - ArrayBuffer, DataView, Int16Array and subarray payloads store exactly the bytes they view;
//   createdAt is ms or a Date;
// - `on` refuses non-functions and unknown events; a throwing callback gives an `error` event
//   of kind "callback" and a console.error, and the other callbacks still run;
// - join twice gives the same Space; leave/close are idempotent; calls after them reject with
//   FennecError "left"/"closed".
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { openFennecPage, startDevnetAndBrowser } from './harness.mjs';

const DEADLINE_MS = 60_000;
let net, browser, stop;

// Page side: window.t.outcome(f) runs f and describes what it returned or threw/rejected with,
// so Node can assert on error classes (errors do not cross page.evaluate).
function pageHelpers() {
  const t = {};
  window.t = t;
  t.describe = (e) => ({
    ok: false,
    name: e?.name,
    code: e?.code,
    message: String(e?.message ?? e),
    typeError: e instanceof TypeError,
    rangeError: e instanceof RangeError,
    fennecError: !!window.fennec && e instanceof window.fennec.FennecError,
  });
  /** f's outcome; `sync: true` when f threw synchronously (not a rejected promise). */
  t.outcome = async (f) => {
    let p;
    try {
      p = f();
    } catch (e) {
      return { ...t.describe(e), sync: true };
    }
    try {
      const v = await p;
      return { ok: true, value: v === undefined ? 'undefined' : String(v) };
    } catch (e) {
      return { ...t.describe(e), sync: false };
    }
  };
  t.bytes = async (space, id) => {
    const got = await space.get(id);
    return got === undefined ? null : Array.from(got);
  };
}

async function newPage() {
  const context = await browser.newContext();
  await context.addInitScript(pageHelpers);
  const page = await openFennecPage(context, net.staticUrl);
  page.consoleErrors = [];
  page.on('console', (m) => { if (m.type() === 'error') page.consoleErrors.push(m.text()); });
  return page;
}

/** Asserts a refusal: class ("TypeError", "RangeError" or a FennecError code) and message. */
function refused(o, want, re, label) {
  assert.equal(o.ok, false, `${label}: expected a refusal, got ${JSON.stringify(o)}`);
  if (want === 'TypeError') assert.ok(o.typeError && !o.rangeError, `${label}: want TypeError, got ${JSON.stringify(o)}`);
  else if (want === 'RangeError') assert.ok(o.rangeError, `${label}: want RangeError, got ${JSON.stringify(o)}`);
  else {
    assert.ok(o.fennecError, `${label}: want FennecError, got ${JSON.stringify(o)}`);
    assert.equal(o.name, 'FennecError', label);
    assert.equal(o.code, want, `${label}: ${o.message}`);
  }
  if (re) assert.match(o.message, re, label);
  assert.doesNotMatch(o.message, /invalid type|expected usize|Cannot read properties/, `${label}: raw text`);
}

const uniqueSpace = (tag) => `js-api-${tag}-${Date.now()}-${Math.random().toString(36).slice(2)}`;

before(async () => ({ net, browser, stop } = await startDevnetAndBrowser()));
after(() => stop?.());

test('calls before init() fail with FennecError "not-initialised"; after it they work', async () => {
  const context = await browser.newContext();
  await context.addInitScript(pageHelpers);
  const page = await context.newPage();
  await page.goto(net.staticUrl + '/blank.html');
  const r = await page.evaluate(async ({ bootstrapUrl, signalUrl }) => {
    const m = await import('/pkg/index.js');
    window.fennec = m;
    const glue = await import('/pkg/fennec.js');
    const before = {
      initialised: m.initialised(),
      connect: await t.outcome(() => m.Peer.connect({ bootstrapUrl, signalUrl })),
      open: await t.outcome(() => m.OpStore.open('AAAA', 'AAAA')),
      opId: await t.outcome(() => m.opId(new Uint8Array(1), 1)),
      version: await t.outcome(() => m.version()),
    };
    await m.default();
    return {
      before,
      initialised: m.initialised(),
      version: await t.outcome(() => m.version()),
      // OpStore is the glue's class; Peer and Space are the entry's (src/js/profile/api.js,
      // one node per browser profile), and the glue's profile* checks are not exported.
      sameClasses: m.OpStore === glue.OpStore && m.Peer !== glue.Peer && m.Space !== glue.Space
        && typeof glue.profilePublishArgs === 'function' && !('profilePublishArgs' in m),
      errorIsError: new m.FennecError('closed', 'x') instanceof Error,
    };
  }, { bootstrapUrl: net.bootstrapUrl, signalUrl: net.signalUrl });
  assert.equal(r.before.initialised, false);
  for (const [k, o] of Object.entries({ connect: r.before.connect, open: r.before.open, opId: r.before.opId, version: r.before.version })) {
    refused(o, 'not-initialised', /fennec: call `await init\(\)` first/, k);
  }
  // The shipped glue is minified (class names shortened): the guard names the API's class.
  assert.match(r.before.connect.message, /\(Peer\.connect was called before init\(\) resolved\)/);
  assert.match(r.before.open.message, /\(OpStore\.open was called before init\(\) resolved\)/);
  // Promise-returning calls reject, the others throw (as WebIDL operations do).
  assert.equal(r.before.connect.sync, false);
  assert.equal(r.before.open.sync, false);
  assert.equal(r.before.opId.sync, true);
  assert.equal(r.before.version.sync, true);
  assert.equal(r.initialised, true);
  assert.equal(r.version.ok, true);
  assert.ok(r.sameClasses, 'the entry re-exports OpStore, and has its own Peer and Space');
  assert.ok(r.errorIsError);
  await context.close();
});

test('Peer.connect refuses bad and unknown options with TypeError/RangeError naming them', async () => {
  const page = await newPage();
  const base = { bootstrapUrl: net.bootstrapUrl, signalUrl: net.signalUrl, storage: 'memory' };
  const cases = [
    [undefined, 'TypeError', /options are required/],
    ['http://x', 'TypeError', /options must be an object, got a string/],
    [{ ...base, bogus: 1 }, 'TypeError', /unknown option `bogus`; known options: bootstrapUrl/],
    [{ ...base, relayonly: true }, 'TypeError', /unknown option `relayonly`; did you mean `relayOnly`\?/],
    [{ ...base, maxconnection: 3 }, 'TypeError', /did you mean `maxConnections`\?/],
    [{ ...base, maxConnections: 0 }, 'RangeError', /maxConnections must be an integer from 1 to 400, got 0/],
    [{ ...base, maxConnections: -1 }, 'RangeError', /maxConnections/],
    [{ ...base, maxConnections: 2.5 }, 'RangeError', /maxConnections/],
    [{ ...base, maxConnections: 401 }, 'RangeError', /maxConnections/],
    [{ ...base, maxConnections: '5' }, 'TypeError', /maxConnections must be a number, got a string/],
    [{ ...base, webrtcConnectTimeoutMs: 0 }, 'RangeError', /webrtcConnectTimeoutMs/],
    [{ ...base, webrtcConnectTimeoutMs: -1 }, 'RangeError', /webrtcConnectTimeoutMs/],
    [{ ...base, webrtcConnectTimeoutMs: Infinity }, 'RangeError', /webrtcConnectTimeoutMs/],
    [{ ...base, webrtcConnectTimeoutMs: NaN }, 'RangeError', /webrtcConnectTimeoutMs/],
    [{ ...base, probePeriodMs: 99 }, 'RangeError', /probePeriodMs must be an integer from 100 to 60000, got 99/],
    [{ ...base, probePeriodMs: 800.5 }, 'RangeError', /probePeriodMs/],
    [{ ...base, probePeriodMs: '800' }, 'TypeError', /probePeriodMs must be a number, got a string/],
    [{ ...base, probeperiodMs: 800 }, 'TypeError', /did you mean `probePeriodMs`\?/],
    [{ ...base, suspicionTimeoutMs: 0 }, 'RangeError', /suspicionTimeoutMs must be an integer from 100 to 2147483647, got 0/],
    [{ ...base, suspicionTimeoutMs: Infinity }, 'RangeError', /suspicionTimeoutMs/],
    [{ ...base, hiddenSuspicionTimeoutMs: 2 ** 31 }, 'RangeError', /hiddenSuspicionTimeoutMs/],
    [{ ...base, hiddenSuspicionTimeoutMs: null }, 'TypeError', /hiddenSuspicionTimeoutMs must be a number, got null/],
    [{ ...base, relayOnly: 1 }, 'TypeError', /relayOnly must be a boolean, got a number/],
    [{ ...base, storage: 'disk' }, 'TypeError', /storage must be "indexeddb" or "memory", got "disk"/],
    [{ ...base, agentKey: 'k'.repeat(32) }, 'TypeError', /agentKey must be a Uint8Array, an ArrayBuffer/],
    [{ ...base, agentKey: [1, 2, 3] }, 'TypeError', /agentKey/],
    [{ ...base, agentKey: new Uint8Array(31) }, 'RangeError', /agentKey must be 32 bytes .*got 31/],
    [{ signalUrl: net.signalUrl }, 'TypeError', /option bootstrapUrl is required/],
    [{ ...base, bootstrapUrl: 'ftp://x' }, 'TypeError', /bootstrapUrl must be an http/],
    [{ ...base, bootstrapUrl: 3 }, 'TypeError', /bootstrapUrl must be a string, got a number/],
    [{ ...base, signalUrl: net.bootstrapUrl }, 'TypeError', /signalUrl must be a ws/],
    [{ ...base, iceServers: 'stun:x' }, 'TypeError', /iceServers must be an Array/],
    [{ ...base, iceServers: [{ url: 'stun:x' }] }, 'TypeError', /unknown option `iceServers\[0\]\.url`; did you mean `iceServers\[0\]\.urls`\?/],
    [{ ...base, iceServers: [{ urls: 7 }] }, 'TypeError', /iceServers\[0\]\.urls must be a string or an Array/],
    [{ ...base, iceServers: [null] }, 'TypeError', /Peer\.connect: option iceServers\[0\] must be an object, got null/],
  ];
  const outcomes = await page.evaluate(async (cs) => {
    const { Peer } = window.fennec;
    const out = [];
    for (const [o] of cs) out.push(await t.outcome(() => Peer.connect(o)));
    return out;
  }, cases.map(([o]) => [o]));
  cases.forEach(([o, want, re], i) => {
    refused(outcomes[i], want, re, `Peer.connect(${JSON.stringify(o)})`);
    assert.equal(outcomes[i].sync, false, 'a promise-returning call rejects, never throws');
  });

  // The same 32-byte key as a Uint8Array, an ArrayBuffer and a DataView into a larger buffer:
  // the same agent (exactly the viewed bytes are used).
  const agents = await page.evaluate(async (o) => {
    const { Peer } = window.fennec;
    const key = Uint8Array.from({ length: 32 }, (_, i) => i * 7 + 1);
    const big = new Uint8Array(40);
    big.set(key, 4);
    const ids = [];
    for (const agentKey of [key, key.slice().buffer, new DataView(big.buffer, 4, 32), big.subarray(4, 36)]) {
      ids.push((await Peer.connect({ ...o, agentKey })).agentId);
    }
    return ids;
  }, base);
  assert.equal(new Set(agents).size, 1, `one agent for one key: ${agents}`);
  await page.context().close();
});

test('bad publish/get/join input is refused and nothing is stored; views store exactly their bytes', async () => {
  const page = await newPage();
  const name = uniqueSpace('input');
  const r = await page.evaluate(async ({ bootstrapUrl, signalUrl, name }) => {
    const { Peer } = window.fennec;
    const peer = await Peer.connect({ bootstrapUrl, signalUrl });
    const join = {
      number: await t.outcome(() => peer.join(42)),
      empty: await t.outcome(() => peer.join('')),
      arcs: await t.outcome(() => peer.join(name, { arcs: 'full' })),
      arcName: await t.outcome(() => peer.join(name, { arc: 'half' })),
      arcBig: await t.outcome(() => peer.join(name, { arc: [0, 2 ** 32] })),
      arcFrac: await t.outcome(() => peer.join(name, { arc: [0.5, 1] })),
      arcShape: await t.outcome(() => peer.join(name, { arc: [1] })),
      // A third of the ring cuts sector 170: not whole sectors (Kitsune2's gossip rule).
      arcCut: await t.outcome(() => peer.join(name, { arc: [0, 1431655765] })),
      arcHalf: await t.outcome(async () => {
        const half = await peer.join(`${name}-half`, { arc: [0, 2147483647] });
        await half.leave();
        return 'joined';
      }),
      optsString: await t.outcome(() => peer.join(name, 'full')),
    };
    const space = await peer.join(name);
    const b = new Uint8Array([1, 2, 3]);
    const publish = {
      string: await t.outcome(() => space.publish('hello')),
      array: await t.outcome(() => space.publish([1, 2, 3])),
      object: await t.outcome(() => space.publish({})),
      number: await t.outcome(() => space.publish(5)),
      nul: await t.outcome(() => space.publish(null)),
      none: await t.outcome(() => space.publish()),
      tooLarge: await t.outcome(() => space.publish(new Uint8Array(1048568))),
      created: await t.outcome(() => space.publish(b, { created: 1 })),
      bogus: await t.outcome(() => space.publish(b, { bogus: 1 })),
      createdAtString: await t.outcome(() => space.publish(b, { createdAt: 'now' })),
      createdAtBigint: await t.outcome(() => space.publish(b, { createdAt: 10n })),
      createdAtNaN: await t.outcome(() => space.publish(b, { createdAt: NaN })),
      createdAtHuge: await t.outcome(() => space.publish(b, { createdAt: 1e300 })),
      createdAtInvalidDate: await t.outcome(() => space.publish(b, { createdAt: new Date(NaN) })),
      optsString: await t.outcome(() => space.publish(b, 'now')),
    };
    const get = {
      number: await t.outcome(() => space.get(42)),
      notId: await t.outcome(() => space.get('nope')),
      bytes: await t.outcome(() => space.get(new Uint8Array(32))),
    };
    const statsAfterBad = await space.stats();
    // Nothing stored under the ids a coerced publish would have used.
    const coerced = await Promise.all([
      t.bytes(space, window.fennec.opId(new Uint8Array(5), 1000)),
      t.bytes(space, window.fennec.opId(b, 1000)),
    ]);

    // Every kind of BufferSource stores exactly the bytes it views.
    const backing = Uint8Array.from({ length: 10 }, (_, i) => i);
    const inputs = {
      arrayBuffer: new Uint8Array([1, 2, 3, 4, 5]).buffer,
      dataView: new DataView(backing.buffer, 2, 3),
      int16: new Int16Array([1, -2, 258]),
      subarray: new Uint8Array([9, 8, 7, 6]).subarray(1, 3),
      float64: new Float64Array([1.5]),
    };
    const stored = {};
    for (const [k, v] of Object.entries(inputs)) {
      const id = await space.publish(v);
      stored[k] = await t.bytes(space, id);
    }
    // Times: ms numbers (fractions kept to the µs) and Dates; the id is over µs.
    const { opId } = window.fennec;
    const x = new TextEncoder().encode('time-x');
    const y = new TextEncoder().encode('time-y');
    const times = {
      date: (await space.publish(x, { createdAt: new Date(1700000000123) })) === opId(x, 1700000000123000),
      ms: (await space.publish(y, { createdAt: 1700000000123.456 })) === opId(y, 1700000000123456),
    };
    const statsAfterGood = await space.stats();
    await peer.close();
    return { join, publish, get, statsAfterBad, coerced, stored, times, statsAfterGood };
  }, { bootstrapUrl: net.bootstrapUrl, signalUrl: net.signalUrl, name });

  const J = r.join;
  refused(J.number, 'TypeError', /peer\.join: space must be a string, got a number/, 'join(42)');
  refused(J.empty, 'RangeError', /empty string/, "join('')");
  refused(J.arcs, 'TypeError', /unknown option `arcs`; did you mean `arc`\?/, 'join arcs');
  refused(J.arcName, 'TypeError', /arc must be "full", "empty" or \[start, end\], got "half"/, 'join arc half');
  refused(J.arcBig, 'RangeError', /arc\[1\] must be an integer from 0 to 4294967295/, 'join arc 2^32');
  refused(J.arcFrac, 'RangeError', /arc\[0\]/, 'join arc 0.5');
  refused(J.arcShape, 'TypeError', /arc/, 'join arc [1]');
  refused(J.arcCut, 'RangeError', /arc must be whole sectors .*got \[0, 1431655765\], the smallest such arc holding it is \[0, 1434451967\]/, 'join arc of a third');
  assert.deepEqual(J.arcHalf, { ok: true, value: 'joined' }, 'join with half the ring');
  refused(J.optsString, 'TypeError', /options must be an object/, "join(n, 'full')");

  const P = r.publish;
  const notBytes = /space\.publish: payload must be a Uint8Array, an ArrayBuffer or another ArrayBufferView/;
  refused(P.string, 'TypeError', /got a string/, "publish('hello')");
  refused(P.array, 'TypeError', /got an Array/, 'publish([1,2,3])');
  refused(P.object, 'TypeError', /got an object/, 'publish({})');
  for (const k of ['string', 'array', 'object', 'number', 'nul', 'none']) refused(P[k], 'TypeError', notBytes, `publish ${k}`);
  refused(P.tooLarge, 'RangeError', /1048568 bytes; an op payload is at most 1048567/, 'publish 1 MiB + 1');
  refused(P.created, 'TypeError', /unknown option `created`; did you mean `createdAt`\?/, 'publish created');
  refused(P.bogus, 'TypeError', /unknown option `bogus`; known options: createdAt/, 'publish bogus');
  refused(P.createdAtString, 'TypeError', /createdAt must be a Date or a number of ms/, 'createdAt string');
  refused(P.createdAtBigint, 'TypeError', /got a bigint/, 'createdAt bigint');
  refused(P.createdAtNaN, 'RangeError', /createdAt must be a finite number of ms/, 'createdAt NaN');
  refused(P.createdAtHuge, 'RangeError', /createdAt/, 'createdAt 1e300');
  refused(P.createdAtInvalidDate, 'RangeError', /Invalid Date/, 'createdAt Invalid Date');
  refused(P.optsString, 'TypeError', /options must be an object/, "publish(b, 'now')");

  refused(r.get.number, 'TypeError', /space\.get: id must be a string/, 'get(42)');
  refused(r.get.notId, 'TypeError', /not|op id/, "get('nope')");
  refused(r.get.bytes, 'TypeError', /got an object/, 'get(Uint8Array)');

  assert.equal(r.statsAfterBad.ops, 0, 'no bad publish stored an op');
  assert.equal(r.statsAfterBad.opBytes, 0);
  assert.deepEqual(r.coerced, [null, null]);

  assert.deepEqual(r.stored.arrayBuffer, [1, 2, 3, 4, 5]);
  assert.deepEqual(r.stored.dataView, [2, 3, 4]);
  assert.deepEqual(r.stored.int16, [1, 0, 254, 255, 2, 1]); // little-endian
  assert.deepEqual(r.stored.subarray, [8, 7]);
  assert.deepEqual(r.stored.float64, [0, 0, 0, 0, 0, 0, 0xf8, 0x3f]);
  assert.deepEqual(r.times, { date: true, ms: true });
  assert.equal(r.statsAfterGood.ops, 7);
  await page.context().close();
});

test('on() refuses non-functions and unknown events; a throwing callback is reported, others still run', async () => {
  const name = uniqueSpace('callbacks');
  const [a, b] = [await newPage(), await newPage()];
  const join = (page) => page.evaluate(async ({ bootstrapUrl, signalUrl, name }) => {
    const { Peer } = window.fennec;
    t.peer = await Peer.connect({ bootstrapUrl, signalUrl, storage: 'memory' });
    t.space = await t.peer.join(name);
    t.ops = [];
    t.errors = [];
    return {
      notFunction: await t.outcome(() => t.space.on('op', 'not a function')),
      unknown: await t.outcome(() => t.space.on('opp', () => {})),
      nonString: await t.outcome(() => t.space.on(42, () => {})),
      offNotFunction: await t.outcome(() => t.space.off('op', 1)),
    };
  }, { bootstrapUrl: net.bootstrapUrl, signalUrl: net.signalUrl, name });
  const refusals = await join(a);
  await join(b);
  refused(refusals.notFunction, 'TypeError', /space\.on: callback must be a function, got a string/, "on('op', string)");
  assert.equal(refusals.notFunction.sync, true);
  refused(refusals.unknown, 'TypeError', /unknown event "opp"; did you mean "op"\? events: op, peer, error, status/, "on('opp')");
  refused(refusals.nonString, 'TypeError', /event must be a string/, 'on(42)');
  refused(refusals.offNotFunction, 'TypeError', /space\.off: callback must be a function/, "off('op', 1)");

  await a.evaluate(() => {
    t.space.on('op', () => { throw new Error('boom from a callback'); });
    t.space.on('op', (e) => { t.ops.push({ text: new TextDecoder().decode(e.payload), createdAt: e.createdAt }); });
    t.space.on('error', (e) => { t.errors.push({ kind: e.kind, event: e.event, message: e.message, isError: e.error instanceof Error }); });
  });
  await b.evaluate(() => t.space.publish(new TextEncoder().encode('hello a'), { createdAt: 1700000000123.456 }));

  const deadline = Date.now() + DEADLINE_MS;
  let seen;
  for (;;) {
    seen = await a.evaluate(() => ({ ops: t.ops, errors: t.errors }));
    if (seen.ops.length >= 1 && seen.errors.length >= 1) break;
    if (Date.now() > deadline) assert.fail(`no op or no callback error at A: ${JSON.stringify(seen)}`);
    await new Promise((res) => setTimeout(res, 300));
  }
  assert.deepEqual(seen.ops, [{ text: 'hello a', createdAt: 1700000000123.456 }], 'the second callback ran; createdAt in ms');
  assert.equal(seen.errors.length, 1);
  assert.equal(seen.errors[0].kind, 'callback');
  assert.equal(seen.errors[0].event, 'op');
  assert.equal(seen.errors[0].isError, true);
  assert.match(seen.errors[0].message, /boom from a callback/);
  assert.ok(a.consoleErrors.some((m) => /space\.on\("op"\) callback threw/.test(m)),
    `console.error reports it: ${JSON.stringify(a.consoleErrors)}`);
  assert.deepEqual(a.fennecErrors, [], 'nothing escaped as an uncaught page error');
  await a.context().close();
  await b.context().close();
});

test('lifecycle: join twice gives the same Space; leave and close are idempotent; later calls reject', async () => {
  const page = await newPage();
  const name = uniqueSpace('lifecycle');
  const r = await page.evaluate(async ({ bootstrapUrl, signalUrl, name }) => {
    const { Peer, OpStore } = window.fennec;
    const peer = await Peer.connect({ bootstrapUrl, signalUrl });
    const [s1, s1b] = await Promise.all([peer.join(name), peer.join(name)]);
    const s1c = await peer.join(name, { arc: 'full' });
    const otherArc = await t.outcome(() => peer.join(name, { arc: 'empty' }));
    const same = s1 === s1b && s1 === s1c;
    const id1 = await s1.publish(new TextEncoder().encode('before leave'));
    const spaceId = s1.id;

    const leaves = await Promise.all([t.outcome(() => s1.leave()), t.outcome(() => s1.leave())]);
    const leaveAgain = await t.outcome(() => s1.leave());
    const afterLeave = {
      publish: await t.outcome(() => s1.publish(new TextEncoder().encode('after leave'))),
      get: await t.outcome(() => s1.get(id1)),
      stats: await t.outcome(() => s1.stats()),
      peers: await t.outcome(() => s1.peers()),
      on: await t.outcome(() => s1.on('op', () => {})),
      off: await t.outcome(() => s1.off('op', () => {})),
      id: s1.id === spaceId,
      badArg: await t.outcome(() => s1.publish('still a string')),
    };
    // What the left space's store holds: only the op published before leaving.
    const store = await OpStore.open(spaceId, peer.agentId);
    const held = (await store.totals()).count;
    store.close();

    const s2 = await peer.join(name);
    const fresh = s2 !== s1;
    const id2 = await s2.publish(new TextEncoder().encode('after rejoin'));
    const rejoinedHolds = (await s2.get(id1)) !== undefined && (await s2.get(id2)) !== undefined;

    // Calls made right after close(), before its promise settled: refused, and the publish
    // stores nothing (heldAfter below). close() ends its joined spaces when it begins, as
    // leave() does; calls already under way when the leave stops the space fail with the
    // same "closed".
    const closing = [t.outcome(() => peer.close()), t.outcome(() => peer.close())];
    const [publishWhileClosing, getWhileClosing] = await Promise.all([
      t.outcome(() => s2.publish(new Uint8Array([2]))), t.outcome(() => s2.get(id2)),
    ]);
    const closes = await Promise.all(closing);
    const closeAgain = await t.outcome(() => peer.close());
    const afterClose = {
      publishWhileClosing,
      getWhileClosing,
      join: await t.outcome(() => peer.join(name)),
      joinOther: await t.outcome(() => peer.join(name + '-other')),
      publish: await t.outcome(() => s2.publish(new Uint8Array([1]))),
      stats: await t.outcome(() => s2.stats()),
      leave: await t.outcome(() => s2.leave()),
      leftBeforeClose: await t.outcome(() => s1.publish(new Uint8Array([1]))),
      badArg: await t.outcome(() => peer.join(42)),
      agentId: typeof peer.agentId === 'string',
    };
    const store2 = await OpStore.open(spaceId, peer.agentId);
    const heldAfter = (await store2.totals()).count;
    store2.close();
    return { same, otherArc, leaves, leaveAgain, afterLeave, held, fresh, rejoinedHolds, closes, closeAgain, afterClose, heldAfter };
  }, { bootstrapUrl: net.bootstrapUrl, signalUrl: net.signalUrl, name });

  assert.ok(r.same, 'join of a joined (or joining) space resolves with the same Space object');
  refused(r.otherArc, 'joined', /already joined with another arc/, 'join with another arc');
  for (const o of [...r.leaves, r.leaveAgain]) assert.equal(o.ok, true, `leave is idempotent: ${JSON.stringify(o)}`);
  const L = r.afterLeave;
  refused(L.publish, 'left', /space\.publish: the space was left/, 'publish after leave');
  refused(L.get, 'left', /space\.get/, 'get after leave');
  refused(L.stats, 'left', /space\.stats/, 'stats after leave');
  refused(L.peers, 'left', /space\.peers/, 'peers after leave');
  assert.equal(L.peers.sync, true, 'peers() is synchronous: it throws');
  refused(L.on, 'left', /space\.on/, 'on after leave');
  assert.equal(L.off.ok, true, 'off after leave is a harmless no-op');
  assert.equal(L.id, true, 'the id stays readable');
  refused(L.badArg, 'TypeError', /payload/, 'arguments are checked first');
  assert.equal(r.held, 1, 'the publish after leave stored nothing');
  assert.ok(r.fresh, 'a join after leave makes a new Space');
  assert.ok(r.rejoinedHolds, 'the rejoined space reads its store');
  for (const o of [...r.closes, r.closeAgain]) assert.equal(o.ok, true, `close is idempotent: ${JSON.stringify(o)}`);
  const C = r.afterClose;
  refused(C.publishWhileClosing, 'closed', /space\.publish: the peer was closed/, 'publish called while close() is pending');
  refused(C.getWhileClosing, 'closed', /space\.get: the peer was closed/, 'get called while close() is pending');
  refused(C.join, 'closed', /peer\.join: the peer was closed/, 'join after close');
  refused(C.joinOther, 'closed', null, 'join of another space after close');
  refused(C.publish, 'closed', /space\.publish: the peer was closed/, 'publish on a space of a closed peer');
  refused(C.stats, 'closed', null, 'stats after close');
  assert.equal(C.leave.ok, true, 'leave after close resolves');
  refused(C.leftBeforeClose, 'left', null, 'a space left before close stays "left"');
  refused(C.badArg, 'TypeError', null, 'arguments are checked first');
  assert.ok(C.agentId);
  assert.equal(r.heldAfter, 2, 'nothing stored after close');
  assert.deepEqual(page.fennecErrors, []);
  await page.context().close();
});
