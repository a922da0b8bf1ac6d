// The op store's JavaScript API (src/js/store.rs): round trips, ordering, and that every bad
// argument is rejected with a TypeError/RangeError naming it (never a panic).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { launchBrowser, openFennecPage, startStaticServer } from './harness.mjs';

let web;
let browser;
let page;
before(async () => {
  web = await startStaticServer();
  browser = await launchBrowser();
  page = await openFennecPage(await browser.newContext(), web.url);
});
after(async () => {
  await browser?.close();
  await web?.stop();
});

test('putOps, getOps, timeSlice, totals round trip', async () => {
  const r = await page.evaluate(async () => {
    const { OpStore, opId } = window.fennec;
    const enc = new TextEncoder();
    const store = await OpStore.open(enc.encode('api-round-trip'), 'YWdlbnQ');
    const ops = [
      { payload: enc.encode('b'), createdAt: 20 },
      { payload: enc.encode('a'), createdAt: 10 },
      { payload: enc.encode('c'), createdAt: 2n ** 60n },
      { payload: new Uint8Array(0), createdAt: -5 },
    ];
    const ids = await store.putOps([...ops, ops[0]]);
    const again = await store.putOps([ops[1]]);
    const expected = ops.map((o) => opId(o.payload, o.createdAt));
    const got = await store.getOps([ids[2], 'A'.repeat(43), ids[1], ids[1]]);
    const slice = await store.timeSlice(0, 21);
    const all = await store.timeSlice(-(2n ** 63n), 2n ** 63n - 1n);
    const totals = await store.totals();
    store.close();
    let closed;
    try { await store.totals(); } catch (e) { closed = { name: e.name, code: e.code }; }
    await OpStore.delete(enc.encode('api-round-trip'), 'YWdlbnQ');
    return {
      ids, again, expected, slice, all, totals, closed, name: store.name,
      got: got.map((o) => ({ id: o.id, text: new TextDecoder().decode(o.payload), createdAt: String(o.createdAt), type: typeof o.createdAt })),
    };
  });
  assert.deepEqual(r.ids, [...r.expected, r.expected[0]], 'ids of every input op, in order');
  assert.deepEqual(r.again, [r.expected[1]], 'an op already held is acknowledged with its id');
  assert.deepEqual(r.got, [
    { id: r.expected[2], text: 'c', createdAt: String(2n ** 60n), type: 'bigint' },
    { id: r.expected[1], text: 'a', createdAt: '10', type: 'number' },
  ], 'held ops in the order asked, unknown ids skipped, repeats once');
  assert.deepEqual(r.slice, [r.expected[1], r.expected[0]], '[0, 21) by createdAt');
  assert.deepEqual(r.all, [r.expected[3], r.expected[1], r.expected[0], r.expected[2]]);
  assert.deepEqual(r.totals, { count: 4, bytes: 1 + 1 + 1 + 0 + 4 * 9 });
  assert.deepEqual(r.closed, { name: 'OpStoreError', code: 'Closed' });
  assert.match(r.name, /^fennec-ops:/);
});

test('bad arguments are rejected with errors that name them', async () => {
  const errors = await page.evaluate(async () => {
    const { OpStore, opId } = window.fennec;
    const enc = new TextEncoder();
    const store = await OpStore.open(enc.encode('api-bad-args'), 'YWdlbnQ');
    const valid = opId(enc.encode('x'), 1);
    const cases = {
      'open space': () => OpStore.open(42, 'YWdlbnQ'),
      'open agent b64': () => OpStore.open('c3BhY2U', 'not base64!'),
      'open empty agent': () => OpStore.open('c3BhY2U', ''),
      'open durability': () => OpStore.open('c3BhY2U', 'YWdlbnQ', { durability: 'fast' }),
      'open options': () => OpStore.open('c3BhY2U', 'YWdlbnQ', 'strict'),
      'putOps not array': () => store.putOps({ payload: enc.encode('x'), createdAt: 1 }),
      'putOps entry': () => store.putOps([null]),
      'putOps payload': () => store.putOps([{ payload: enc.encode('x'), createdAt: 1 }, { payload: 'x', createdAt: 1 }]),
      'putOps createdAt fraction': () => store.putOps([{ payload: enc.encode('x'), createdAt: 1.5 }]),
      'putOps createdAt unsafe': () => store.putOps([{ payload: enc.encode('x'), createdAt: 2 ** 60 }]),
      'putOps createdAt missing': () => store.putOps([{ payload: enc.encode('x') }]),
      'putOps createdAt bigint range': () => store.putOps([{ payload: enc.encode('x'), createdAt: 2n ** 64n }]),
      'putOps payload too large': () => store.putOps([{ payload: new Uint8Array(1024 * 1024), createdAt: 1 }]),
      'getOps not array': () => store.getOps(valid),
      'getOps number': () => store.getOps([valid, 7]),
      'getOps bad id': () => store.getOps([valid, 'nope']),
      'getOps comma': () => store.getOps([valid, `${valid},${valid}`]),
      'getOps short id': () => store.getOps(['AAAA']),
      'timeSlice start': () => store.timeSlice('0', 1),
      'timeSlice end': () => store.timeSlice(0, NaN),
      'opId payload': () => opId([1, 2], 1),
      'opId createdAt': () => opId(enc.encode('x'), undefined),
    };
    const out = {};
    for (const [name, f] of Object.entries(cases)) {
      try {
        await f();
        out[name] = 'no error';
      } catch (e) {
        out[name] = `${e.name}: ${e.message}`;
      }
    }
    out.nothingStored = (await store.totals()).count;
    return out;
  });
  const expect = {
    'open space': /^TypeError: OpStore\.open: space must be a base64url string or a Uint8Array, got a number/,
    'open agent b64': /^TypeError: OpStore\.open: agent must be base64url/,
    'open empty agent': /^TypeError: OpStore\.open: agent must not be empty/,
    'open durability': /^TypeError: OpStore\.open: options\.durability must be "strict", "relaxed" or "default", got "fast"/,
    'open options': /^TypeError: OpStore\.open: options must be an object/,
    'putOps not array': /^TypeError: OpStore\.putOps: ops must be an Array, got an object/,
    'putOps entry': /^TypeError: OpStore\.putOps: ops\[0\] must be an object/,
    'putOps payload': /^TypeError: OpStore\.putOps: ops\[1\]\.payload must be a Uint8Array, got a string/,
    'putOps createdAt fraction': /^RangeError: OpStore\.putOps: ops\[0\]\.createdAt must be an integer/,
    'putOps createdAt unsafe': /^RangeError: OpStore\.putOps: ops\[0\]\.createdAt = .* pass a bigint/,
    'putOps createdAt missing': /^TypeError: OpStore\.putOps: ops\[0\]\.createdAt must be a number or bigint .* got undefined/,
    'putOps createdAt bigint range': /^RangeError: OpStore\.putOps: ops\[0\]\.createdAt does not fit/,
    'putOps payload too large': /^RangeError: OpStore\.putOps: ops\[0\]\.payload is 1048576 bytes; an op payload is at most 1048567 bytes/,
    'getOps not array': /^TypeError: OpStore\.getOps: ids must be an Array, got a string/,
    'getOps number': /^TypeError: OpStore\.getOps: ids\[1\] must be a base64url op id string, got a number/,
    'getOps bad id': /^TypeError: OpStore\.getOps: ids\[1\] = "nope" is not an op id/,
    'getOps comma': /^TypeError: OpStore\.getOps: ids\[1\] = ".*" is not an op id/,
    'getOps short id': /^TypeError: OpStore\.getOps: ids\[0\] = "AAAA" is not an op id \(base64url of 32 bytes\)/,
    'timeSlice start': /^TypeError: OpStore\.timeSlice: start must be a number or bigint/,
    'timeSlice end': /^RangeError: OpStore\.timeSlice: end must be an integer/,
    'opId payload': /^TypeError: opId: payload must be a Uint8Array, got an Array/,
    'opId createdAt': /^TypeError: opId: createdAt must be a number or bigint/,
  };
  for (const [name, re] of Object.entries(expect)) assert.match(errors[name], re, name);
  assert.equal(errors.nothingStored, 0, 'a rejected batch stores nothing');
  assert.deepEqual(page.fennecErrors, []);
});
