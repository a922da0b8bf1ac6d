// Page side of `npm run bench -- store` (scripts/bench/store.mjs drives it step by step).
// Three sides write the same N dataset ops and read them back:
//  - ours:  fennec's OpStore (IdbOpStore): `putOps` (one transaction), `timeSlice` + `getOps`.
//  - raw:   plain IndexedDB doing the work of ours before its schema 2 (one record per op;
//           since 2026-12-02 ours packs 16 ops per record, so ours/raw now also holds that
//           layout's gain, not only fennec's overhead): each op hashed to its
//           id (BLAKE3, through fennec's `opId`) and encoded as ours is, a 44-byte binary key,
//           the same record `{d, t, s, a}`, the same two indexes (`[sector, created_at]` and
//           stored-at), `add` (an op already held is not rewritten), the totals record
//           updated in the same transaction; read back over the sector index, one range per
//           sector (512, one round trip), every op re-hashed against its id.
//  - plain: the minimum: records with precomputed ids `put` into a store with one index
//           (created_at), read back with one `getAll` over that index.
// raw vs plain is the cost of the extras (integrity, the DHT's indexes, totals) on plain
// IndexedDB; ours vs raw was fennec's own overhead for the same work while both had one
// record per op (schema 1).
import { OpStore, opId } from '/pkg/index.js';
import { loadDatasetOps } from '/lib/dataset.js';

let ops = [];
let plainRecords = [];
let minTs = 0;
let maxTs = 0;
const open = new Map(); // tag -> OpStore | IDBDatabase

const SECTORS = 512; // sectors of 2^23 locations (src/model/arc.rs)
const PK = 44;

export function b64urlToBytes(s) {
  const bin = atob(s.replace(/-/g, '+').replace(/_/g, '/') + '='.repeat((4 - (s.length % 4)) % 4));
  return Uint8Array.from(bin, (c) => c.charCodeAt(0));
}

export function req(r) {
  return new Promise((resolve, reject) => {
    r.onsuccess = () => resolve(r.result);
    r.onerror = () => reject(r.error);
  });
}

export function txDone(tx) {
  return new Promise((resolve, reject) => {
    tx.oncomplete = resolve;
    tx.onabort = () => reject(tx.error);
  });
}

/**
 * Loads `n` distinct dataset ops; precomputes what the plain side needs (untimed). With
 * `extend`, `n` may pass the dataset's size: the dataset's lines are then used again, each
 * with ` #k` appended (k counting on), at their own time (the same times, a few bytes longer,
 * new ids).
 */
export async function prepare(n, extend = false) {
  const lines = await loadDatasetOps(n);
  ops = lines.map(({ payload, createdAt }) => ({ payload, createdAt }));
  if (extend && lines.length > 0) {
    const enc = new TextEncoder();
    for (let k = ops.length; k < n; k++) {
      const { line, createdAt } = lines[k % lines.length];
      ops.push({ payload: enc.encode(`${line} #${k}`), createdAt });
    }
  }
  if (ops.length < n) throw new Error(`the dataset has only ${ops.length} distinct ops`);
  plainRecords = ops.map(({ payload, createdAt }) => ({
    id: b64urlToBytes(opId(payload, createdAt)),
    createdAt,
    payload,
  }));
  minTs = Math.min(...ops.map((o) => o.createdAt));
  maxTs = Math.max(...ops.map((o) => o.createdAt));
  return { ops: ops.length, bytes: ops.reduce((s, o) => s + o.payload.length, 0) };
}

const space = (tag) => btoa(`bench-${tag}`).replace(/=+$/, '').replace(/\+/g, '-').replace(/\//g, '_');
const AGENT = 'YmVuY2gtYWdlbnQ';

export async function oursWrite(tag, durability) {
  const store = await OpStore.open(space(tag), AGENT, { durability });
  open.set(`ours-${tag}`, store);
  const t0 = performance.now();
  const ids = await store.putOps(ops);
  const ms = performance.now() - t0;
  const { count } = await store.totals();
  if (ids.length !== ops.length || count !== ops.length) {
    throw new Error(`ours stored ${count} of ${ops.length} ops`);
  }
  return ms;
}

export async function oursRead(tag) {
  const store = open.get(`ours-${tag}`);
  const t0 = performance.now();
  const ids = await store.timeSlice(minTs, maxTs + 1);
  const got = await store.getOps(ids);
  const ms = performance.now() - t0;
  if (got.length !== ops.length) throw new Error(`ours read ${got.length} of ${ops.length} ops`);
  return ms;
}

// ---- raw: the same work as ours on plain IndexedDB

/** The op envelope as fennec encodes it: version 1, created_at i64 BE, payload. */
export function encodeOp(payload, createdAt) {
  const d = new Uint8Array(9 + payload.length);
  d[0] = 1;
  new DataView(d.buffer).setBigInt64(1, BigInt(createdAt));
  d.set(payload, 9);
  return d;
}

/** Kitsune2's location: the 32 id bytes XOR-folded into a u32 (little-endian). */
export function loc(id) {
  const o = [0, 0, 0, 0];
  for (let i = 0; i < 32; i++) o[i % 4] ^= id[i];
  return (o[0] | (o[1] << 8) | (o[2] << 16) | (o[3] << 24)) >>> 0;
}

/** The 44-byte primary key: id, encoded length u32 BE, created_at i64 BE with the sign flipped. */
export function primaryKey(id, len, createdAt) {
  const k = new Uint8Array(PK);
  k.set(id);
  const v = new DataView(k.buffer);
  v.setUint32(32, len);
  v.setBigUint64(36, BigInt.asUintN(64, BigInt(createdAt)) ^ (1n << 63n));
  return k;
}

let storedAt = 0;

/** Opens database `name` at version 1 with schema 1's stores and indexes (`slices` too when
 * `slices`: fennec's own schema 1 had it; the raw side needs none). */
async function openSchema1(name, slices) {
  const openReq = indexedDB.open(name, 1);
  openReq.onupgradeneeded = () => {
    const db = openReq.result;
    const s = db.createObjectStore('ops');
    s.createIndex('sector_time', ['s', 't']);
    s.createIndex('stored', 'a');
    if (slices) db.createObjectStore('slices');
    db.createObjectStore('info');
  };
  return req(openReq);
}

/** Writes every prepared op into `db` as schema 1 did, in one transaction; milliseconds. */
async function writeSchema1(db, durability) {
  const t0 = performance.now();
  const tx = db.transaction(['ops', 'info'], 'readwrite', { durability });
  const done = txDone(tx);
  const s = tx.objectStore('ops');
  const info = tx.objectStore('info');
  const totals = info.get('totals');
  let last;
  let bytes = 0;
  for (const { payload, createdAt } of ops) {
    const d = encodeOp(payload, createdAt);
    const id = b64urlToBytes(opId(payload, createdAt));
    storedAt = Math.max(storedAt + 1, Math.floor((performance.timeOrigin + performance.now()) * 1000));
    last = s.add({ d, t: createdAt, s: loc(id) >>> 23, a: storedAt }, primaryKey(id, d.length, createdAt));
    bytes += d.length;
  }
  await req(last);
  // Requests complete in order: the totals read finished before the last add.
  const t = totals.result || { c: 0, b: 0 };
  info.put({ c: t.c + ops.length, b: t.b + bytes }, 'totals');
  await done;
  return performance.now() - t0;
}

export async function rawWrite(tag, durability) {
  const db = await openSchema1(`raw-bench-${tag}`, false);
  open.set(`raw-${tag}`, db);
  return writeSchema1(db, durability);
}

/**
 * `npm run bench -- migrate`: writes the prepared ops as fennec's schema 1 did (one record per
 * op) and `slices` slice hashes as schemas 1 and 2 did (one record each in `slices`, key
 * `[arc start, arc end, index hi, index lo]`, a 32-byte hash), then times `OpStore.open` (the
 * upgrade to the current schema runs inside it: packs, then one slice batch) and a second open
 * with nothing to upgrade. Fails unless every op and every slice hash is there afterwards.
 * Resolves to `{ upgradeMs, reopenMs }`.
 */
export async function migrateOpen(tag, slices) {
  const sp = space(tag);
  const name = `fennec-ops:${sp}:${AGENT}`;
  const db = await openSchema1(name, true);
  await writeSchema1(db, 'strict');
  await writeSchema1Slices(db, slices);
  db.close();
  let t0 = performance.now();
  let store = await OpStore.open(sp, AGENT);
  const upgradeMs = performance.now() - t0;
  const { count } = await store.totals();
  const ids = await store.timeSlice(minTs, maxTs + 1);
  store.close();
  if (count !== ops.length || ids.length !== ops.length) {
    throw new Error(`after the upgrade: totals ${count}, time slice ${ids.length}, of ${ops.length} ops`);
  }
  const moved = await batchedSliceHashes(name);
  if (moved !== slices) throw new Error(`after the upgrade: ${moved} slice hashes in batches, of ${slices}`);
  t0 = performance.now();
  store = await OpStore.open(sp, AGENT);
  const reopenMs = performance.now() - t0;
  store.close();
  await OpStore.delete(sp, AGENT);
  return { upgradeMs, reopenMs };
}

/** `n` full-slice hashes as schemas 1 and 2 stored them, spread over the 512 sectors (slice
 * indexes 0, 1, … in each), in one transaction. */
async function writeSchema1Slices(db, n) {
  const tx = db.transaction('slices', 'readwrite');
  const done = txDone(tx);
  const st = tx.objectStore('slices');
  const span = 2 ** 32 / SECTORS;
  for (let i = 0; i < n; i++) {
    const start = (i % SECTORS) * span;
    const hash = crypto.getRandomValues(new Uint8Array(32));
    st.put(hash, [start, start + span - 1, 0, Math.floor(i / SECTORS)]);
  }
  await done;
}

/** How many slice hashes the `slice_batches` records of database `name` hold (each batch's
 * `m` has five numbers a hash: src/browser/idb_glue.js `packSlices`). */
async function batchedSliceHashes(name) {
  const db = await req(indexedDB.open(name));
  try {
    if (db.objectStoreNames.contains('slices')) throw new Error("after the upgrade: schema 2's slices store is still there");
    const batches = await req(db.transaction('slice_batches').objectStore('slice_batches').getAll());
    return batches.reduce((n, b) => n + b.m.length / 5, 0);
  } finally {
    db.close();
  }
}

export async function rawRead(tag) {
  const db = open.get(`raw-${tag}`);
  const t0 = performance.now();
  const tx = db.transaction('ops', 'readonly');
  const index = tx.objectStore('ops').index('sector_time');
  const reqs = [];
  const keys = [];
  for (let sec = 0; sec < SECTORS; sec++) {
    const range = IDBKeyRange.bound([sec, minTs], [sec, maxTs]);
    reqs.push(index.getAll(range));
    keys.push(index.getAllKeys(range));
  }
  await req(keys[SECTORS - 1]);
  let n = 0;
  for (let sec = 0; sec < SECTORS; sec++) {
    const vs = reqs[sec].result;
    const ks = keys[sec].result;
    for (let i = 0; i < vs.length; i++) {
      // Re-check the op against its id, as ours does for every op it returns.
      const d = vs[i].d;
      const createdAt = Number(new DataView(d.buffer, d.byteOffset).getBigInt64(1));
      const id = b64urlToBytes(opId(d.subarray(9), createdAt));
      const k = new Uint8Array(ks[i]);
      for (let j = 0; j < 32; j++) if (id[j] !== k[j]) throw new Error('raw read an op that does not hash to its id');
      n += 1;
    }
  }
  const ms = performance.now() - t0;
  if (n !== ops.length) throw new Error(`raw read ${n} of ${ops.length} ops`);
  return ms;
}

// ---- plain: the minimum

export async function plainWrite(tag, durability) {
  const name = `plain-bench-${tag}`;
  const openReq = indexedDB.open(name, 1);
  openReq.onupgradeneeded = () => {
    const s = openReq.result.createObjectStore('ops', { keyPath: 'id' });
    s.createIndex('createdAt', 'createdAt');
  };
  const db = await req(openReq);
  open.set(`plain-${tag}`, db);
  const t0 = performance.now();
  const tx = db.transaction('ops', 'readwrite', { durability });
  const done = txDone(tx);
  const s = tx.objectStore('ops');
  for (const r of plainRecords) s.put(r);
  await done;
  return performance.now() - t0;
}

export async function plainRead(tag) {
  const db = open.get(`plain-${tag}`);
  const t0 = performance.now();
  const tx = db.transaction('ops', 'readonly');
  const got = await req(tx.objectStore('ops').index('createdAt').getAll(IDBKeyRange.bound(minTs, maxTs)));
  const ms = performance.now() - t0;
  if (got.length !== ops.length) throw new Error(`plain read ${got.length} of ${ops.length} ops`);
  return ms;
}

/** Closes and deletes the databases of a round. */
export async function cleanup(tag) {
  for (const side of ['ours', 'raw', 'plain']) {
    open.get(`${side}-${tag}`)?.close();
    open.delete(`${side}-${tag}`);
  }
  await OpStore.delete(space(tag), AGENT);
  await req(indexedDB.deleteDatabase(`raw-bench-${tag}`));
  await req(indexedDB.deleteDatabase(`plain-bench-${tag}`));
}
