// Page side of `npm run bench -- store` (scripts/bench/store.mjs drives it step by step).
// Ours: fennec's OpStore (IdbOpStore). Raw: the same records written with plain IndexedDB
// `put`s in one transaction and read back with one `getAll` over an index range.
import { OpStore, opId } from '/pkg/index.js';
import { loadDatasetOps } from '/lib/dataset.js';

let ops = [];
let rawRecords = [];
let minTs = 0;
let maxTs = 0;
const open = new Map(); // tag -> OpStore | IDBDatabase

function b64urlToBytes(s) {
  const bin = atob(s.replace(/-/g, '+').replace(/_/g, '/') + '='.repeat((4 - (s.length % 4)) % 4));
  return Uint8Array.from(bin, (c) => c.charCodeAt(0));
}

function req(r) {
  return new Promise((resolve, reject) => {
    r.onsuccess = () => resolve(r.result);
    r.onerror = () => reject(r.error);
  });
}

/** Loads `n` distinct dataset ops; precomputes what the raw side needs (untimed). */
export async function prepare(n) {
  ops = (await loadDatasetOps(n)).map(({ payload, createdAt }) => ({ payload, createdAt }));
  if (ops.length < n) throw new Error(`the dataset has only ${ops.length} distinct ops`);
  rawRecords = ops.map(({ payload, createdAt }) => ({
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
  open.set(tag, store);
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
  const store = open.get(tag);
  const t0 = performance.now();
  const ids = await store.timeSlice(minTs, maxTs + 1);
  const got = await store.getOps(ids);
  const ms = performance.now() - t0;
  if (got.length !== ops.length) throw new Error(`ours read ${got.length} of ${ops.length} ops`);
  return ms;
}

export async function rawWrite(tag, durability) {
  const name = `raw-bench-${tag}`;
  const openReq = indexedDB.open(name, 1);
  openReq.onupgradeneeded = () => {
    const s = openReq.result.createObjectStore('ops', { keyPath: 'id' });
    s.createIndex('createdAt', 'createdAt');
  };
  const db = await req(openReq);
  open.set(`raw-${tag}`, db);
  const t0 = performance.now();
  const tx = db.transaction('ops', 'readwrite', { durability });
  const s = tx.objectStore('ops');
  for (const r of rawRecords) s.put(r);
  await new Promise((resolve, reject) => {
    tx.oncomplete = resolve;
    tx.onabort = () => reject(tx.error);
  });
  return performance.now() - t0;
}

export async function rawRead(tag) {
  const db = open.get(`raw-${tag}`);
  const t0 = performance.now();
  const tx = db.transaction('ops', 'readonly');
  const got = await req(tx.objectStore('ops').index('createdAt').getAll(IDBKeyRange.bound(minTs, maxTs)));
  const ms = performance.now() - t0;
  if (got.length !== ops.length) throw new Error(`raw read ${got.length} of ${ops.length} ops`);
  return ms;
}

/** Closes and deletes both databases of a round. */
export async function cleanup(tag) {
  open.get(tag)?.close();
  open.get(`raw-${tag}`)?.close();
  open.delete(tag);
  open.delete(`raw-${tag}`);
  await OpStore.delete(space(tag), AGENT);
  await req(indexedDB.deleteDatabase(`raw-bench-${tag}`));
}
