// Page side of `npm run bench -- records` (scripts/bench/records.mjs runs it in several
// contexts at once). What one IndexedDB record per op costs against several ops per record,
// for the same ops, bytes, transactions and durability:
//  - per-op: the op store's layout until 2026-12-02 (src/browser/idb.rs, schema 1): one record per op under its
//    44-byte key, `{d, t, s, a}`, indexes `sector_time` [s, t] and `stored` a, `add`;
//  - packed: P ops per record under the batch's stored-at stamp (so "new ops since" needs no
//    index), `{d: the ops back to back, o: end offsets, k: [op ids], st: [[sector, created_at]]}`
//    with multiEntry indexes on `k` (find an op's record by id) and `st` (time slices): every op
//    can still be found, only the record count changes.
// Each write is `batch` ops per transaction (the swarm's publishMany size) plus the totals record.
import { opId } from '/pkg/index.js';
import { loadDatasetOps } from '/lib/dataset.js';
import { b64urlToBytes, encodeOp, loc, primaryKey, req, txDone } from '/bench/store.js';

let ops = [];

/** Loads `n` distinct dataset ops with their ids, encodings and keys (untimed). */
export async function prepare(n) {
  const got = await loadDatasetOps(n);
  if (got.length < n) throw new Error(`the dataset has only ${got.length} distinct ops`);
  ops = got.map(({ payload, createdAt }) => {
    const id = b64urlToBytes(opId(payload, createdAt));
    const d = encodeOp(payload, createdAt);
    return { id, d, t: createdAt, s: loc(id) >>> 23, pk: primaryKey(id, d.length, createdAt) };
  });
  return { ops: ops.length, bytes: ops.reduce((s, o) => s + o.d.length, 0) };
}

async function openDb(name, upgrade) {
  const r = indexedDB.open(name, 1);
  r.onupgradeneeded = () => upgrade(r.result);
  return req(r);
}

let stamp = 0;
const nextStamp = () => (stamp = Math.max(stamp + 1, Math.floor((performance.timeOrigin + performance.now()) * 1000)));

/** Writes every op in `batch`-op transactions, `put(tx, slice)` adding the records; ms. */
async function writeAll(db, stores, batch, put) {
  const t0 = performance.now();
  for (let i = 0; i < ops.length; i += batch) {
    const tx = db.transaction([...stores, 'info'], 'readwrite', { durability: 'strict' });
    const done = txDone(tx);
    const slice = ops.slice(i, i + batch);
    put(tx, slice);
    tx.objectStore('info').put({ c: i + slice.length, b: 0 }, 'totals');
    await done;
  }
  return performance.now() - t0;
}

/** One record per op (schema 1's layout); resolves to ms after checking every op is there. */
export async function perOp(tag, batch) {
  const db = await openDb(`records-per-op-${tag}`, (d) => {
    const s = d.createObjectStore('ops');
    s.createIndex('sector_time', ['s', 't']);
    s.createIndex('stored', 'a');
    d.createObjectStore('info');
  });
  try {
    const ms = await writeAll(db, ['ops'], batch, (tx, slice) => {
      const s = tx.objectStore('ops');
      for (const o of slice) s.add({ d: o.d, t: o.t, s: o.s, a: nextStamp() }, o.pk);
    });
    const n = await req(db.transaction('ops').objectStore('ops').index('sector_time').count());
    if (n !== ops.length) throw new Error(`per-op holds ${n} of ${ops.length} ops`);
    return ms;
  } finally {
    db.close();
    await req(indexedDB.deleteDatabase(`records-per-op-${tag}`));
  }
}

/** `per` ops per record; resolves to ms after checking every op id is indexed. */
export async function packed(tag, batch, per) {
  const db = await openDb(`records-packed-${tag}`, (d) => {
    const s = d.createObjectStore('packs');
    s.createIndex('id', 'k', { multiEntry: true });
    s.createIndex('sector_time', 'st', { multiEntry: true });
    d.createObjectStore('info');
  });
  try {
    const ms = await writeAll(db, ['packs'], batch, (tx, slice) => {
      const s = tx.objectStore('packs');
      for (let i = 0; i < slice.length; i += per) {
        const group = slice.slice(i, i + per);
        const d = new Uint8Array(group.reduce((n, o) => n + o.d.length, 0));
        const o = new Uint32Array(group.length);
        let at = 0;
        group.forEach((op, j) => { d.set(op.d, at); at += op.d.length; o[j] = at; });
        s.add({ d, o, k: group.map((op) => op.id), st: group.map((op) => [op.s, op.t]) }, nextStamp());
      }
    });
    const n = await req(db.transaction('packs').objectStore('packs').index('id').count());
    if (n !== ops.length) throw new Error(`packed indexes ${n} of ${ops.length} op ids`);
    return ms;
  } finally {
    db.close();
    await req(indexedDB.deleteDatabase(`records-packed-${tag}`));
  }
}
