// Bulk IndexedDB loops for IdbOpStore (src/browser/idb.rs), imported through wasm-bindgen.
//
// Why JavaScript: a batch of N ops is many IndexedDB requests. Driving them from wasm costs
// several JS<->wasm crossings per request (a key, a value object, its fields, two event
// closures); here each call crosses once with packed buffers. Only the loops live here: every
// rule (verification, stamps, which ops are new, errors) stays in Rust.
//
// Packed formats (see idb.rs "Database layout"):
//   op key   44 bytes: op id (32) | encoded length u32 BE (4) | created_at i64 BE with the
//            sign bit flipped (8)
//   meta     3 numbers per op (Float64Array): sector, created_at µs, stored_at µs
//   pack     a record of up to `perPack` ops, key [highest stored_at, first op key], value
//            {d: the ops back to back, a: Float64Array of stored_at, k: [op key ArrayBuffer],
//             st: [[sector, created_at, op key ArrayBuffer]]}
//   slice batch  a record of slice hashes, key generated, value {m: Uint32Array of 5 numbers
//            per hash (arc start, arc end, index high, index low, end of the hash in d),
//            d: the hashes back to back}

const PK = 44;
const ID = 32;

// A key cursor step or an id lookup costs about as much as this many ops read by a scan:
// `npm run bench -- coldstart` (100 000 ops) rebuilt the model in 6.7 s by cursors, 2.2 s by
// one scan (the scan's own JavaScript, mostly reading the packs, was 0.5 s).
const SCAN_PER_CURSOR_ENTRY = 8;
// Packs per getAll of a scan.
const SCAN_CHUNK = 1024;

// Calls onDone on the request's success, or on an error a listener on the request itself
// already handled (preventDefault); onFail with the request's error otherwise.
function settle(req, onDone, onFail) {
  req.addEventListener('success', onDone);
  req.addEventListener('error', (ev) => (ev.defaultPrevented ? onDone() : onFail(req.error)));
}

// Resolves once every request of `reqs` succeeded (in order: the last one settles last);
// rejects with the first failure.
function allSettled(reqs, onDone, onFail) {
  if (reqs.length === 0) {
    onDone();
    return;
  }
  settle(reqs[reqs.length - 1], onDone, onFail);
}

function upperOf(lo) {
  const hi = new Uint8Array(PK).fill(0xff);
  hi.set(lo);
  return hi;
}

// The pack record (and its key) of `ops`, each `{d: encoded op, a: stored_at, k: op key
// ArrayBuffer, s: sector, t: created_at}`, in stamp order.
function packRecord(ops) {
  let bytes = 0;
  for (const op of ops) bytes += op.d.length;
  const d = new Uint8Array(bytes);
  const a = Float64Array.from(ops, (op) => op.a);
  let o = 0;
  for (const op of ops) {
    d.set(op.d, o);
    o += op.d.length;
  }
  const k = ops.map((op) => op.k);
  const st = ops.map((op) => [op.s, op.t, op.k]);
  return { key: [Math.max(...a), k[0]], value: { d, a, k, st } };
}

// The pack record of ops `idx` (indexes into the packed batch of `writePacks`).
function packOf(idx, data, offs, keys, meta) {
  return packRecord(idx.map((i) => ({
    d: data.subarray(offs[i], offs[i + 1]),
    a: meta[3 * i + 2],
    k: keys.slice(i * PK, (i + 1) * PK).buffer,
    s: meta[3 * i],
    t: meta[3 * i + 1],
  })));
}

// Whether reading `n` index entries (or looking up `n` ids) one by one costs more than one
// scan of the packs, from the settled request `totals` of the totals record.
function scanIsCheaper(n, totals) {
  const all = totals.result === undefined ? 0 : totals.result.c;
  return n * SCAN_PER_CURSOR_ENTRY > all;
}

/**
 * Writes a batch as pack records in the `packs` store of `tx` (readwrite over `packs` and
 * `info`) and updates the totals record. `data` holds the encoded ops back to back, op i at
 * `offs[i]..offs[i+1]`; `keys` and `meta` one packed op key / meta entry per op, in stamp
 * order; ops are distinct. A pack holding an op already stored fails its `add` on the unique
 * `id` index (ConstraintError, handled here): its ops are then looked up one by one and the
 * new ones written as a pack of their own.
 *
 * Resolves, once the last request settled, with a Uint8Array: 1 for each op newly written,
 * 0 for each already held. The caller must still wait for the transaction's `complete`.
 * Rejects with the transaction's DOMException if it aborted, or an Error for a corrupt totals
 * record (after aborting the transaction).
 */
export function writePacks(tx, data, offs, keys, meta, perPack) {
  return new Promise((resolve, reject) => {
    const n = offs.length - 1;
    const fresh = new Uint8Array(n).fill(1);
    const fail = (e) => {
      try { tx.abort(); } catch { /* already finished */ }
      reject(e);
    };
    tx.addEventListener('abort', () => reject(tx.error || new DOMException('transaction aborted', 'AbortError')));
    try {
      const packs = tx.objectStore('packs');
      const ids = packs.index('id');
      const info = tx.objectStore('info');
      const totals = info.get('totals');
      let pending = 0;
      const finish = () => {
        try {
          let count = 0;
          let bytes = 0;
          for (let i = 0; i < n; i++) {
            if (fresh[i]) {
              count += 1;
              bytes += offs[i + 1] - offs[i];
            }
          }
          if (count > 0) {
            const t = totals.result === undefined ? { c: 0, b: 0 } : totals.result;
            if (!(t && Number.isSafeInteger(t.c) && Number.isSafeInteger(t.b) && t.c >= 0 && t.b >= 0)) {
              fail(new Error('corrupt totals record in the op store database'));
              return;
            }
            info.put({ c: t.c + count, b: t.b + bytes }, 'totals');
          }
          resolve(fresh);
        } catch (e) {
          fail(e);
        }
      };
      const done = () => {
        pending -= 1;
        if (pending === 0) finish();
      };
      // Some op of pack `idx` is held: find which, write the others.
      const split = (idx) => {
        const held = idx.map((i) => ids.getKey(keys.subarray(i * PK, (i + 1) * PK)));
        pending += 1;
        allSettled(held, () => {
          try {
            const rest = idx.filter((i, j) => {
              if (held[j].result !== undefined) fresh[i] = 0;
              return held[j].result === undefined;
            });
            if (rest.length > 0) {
              const p = packOf(rest, data, offs, keys, meta);
              pending += 1;
              settle(packs.add(p.value, p.key), done, fail);
            }
            done();
          } catch (e) {
            fail(e);
          }
        }, fail);
      };
      for (let s = 0; s < n; s += perPack) {
        const idx = [];
        for (let i = s; i < Math.min(n, s + perPack); i++) idx.push(i);
        const p = packOf(idx, data, offs, keys, meta);
        const req = packs.add(p.value, p.key);
        pending += 1;
        req.addEventListener('error', (ev) => {
          if (req.error && req.error.name === 'ConstraintError') {
            ev.preventDefault();
            ev.stopPropagation();
            split(idx);
          }
        });
        settle(req, done, fail);
      }
      if (n === 0) finish();
    } catch (e) {
      fail(e);
    }
  });
}

/**
 * Looks up 32-byte op ids (`ids`, back to back) in `tx`'s `packs` store (`tx` reads `packs`
 * and `info`). With `withData` resolves to `[data, offs, keys]`: every op of the packs read
 * (at least those holding any of the ids, each pack once), back to back, op j at
 * `offs[j]..offs[j+1]` with its op key at `keys[44j..44j+44]`; otherwise to a Uint8Array with
 * 1 for each id held, 0 for the others.
 *
 * Few ids (against the totals record) are looked up one by one in the `id` index, then their
 * packs read; many are found by one scan of every pack (see SCAN_PER_CURSOR_ENTRY).
 */
export function readIds(tx, ids, withData) {
  return new Promise((resolve, reject) => {
    try {
      const packs = tx.objectStore('packs');
      const m = ids.length / ID;
      const totals = tx.objectStore('info').get('totals');
      settle(totals, () => {
        try {
          const read = scanIsCheaper(m, totals) ? scanIds : lookUpIds;
          read(packs, ids, withData, resolve, reject);
        } catch (e) {
          reject(e);
        }
      }, reject);
    } catch (e) {
      reject(e);
    }
  });
}

function lookUpIds(packs, ids, withData, done, fail) {
  const index = packs.index('id');
  const found = [];
  for (let i = 0; i < ids.length / ID; i++) {
    const id = ids.subarray(ID * i, ID * (i + 1));
    found.push(index.getKey(IDBKeyRange.bound(id, upperOf(id))));
  }
  allSettled(found, () => {
    try {
      if (!withData) {
        done(Uint8Array.from(found, (r) => (r.result === undefined ? 0 : 1)));
        return;
      }
      const seen = new Set();
      const gets = [];
      for (const r of found) {
        if (r.result === undefined) continue;
        const name = packName(r.result);
        if (seen.has(name)) continue;
        seen.add(name);
        gets.push(packs.get(r.result));
      }
      allSettled(gets, () => {
        try {
          done(packOps(gets.map((r) => r.result)));
        } catch (e) {
          fail(e);
        }
      }, fail);
    } catch (e) {
      fail(e);
    }
  }, fail);
}

// The first 32 bytes (an op id) of `bytes` as a string, for lookups.
function idName(bytes) {
  return String.fromCharCode.apply(null, bytes.subarray(0, ID));
}

// Keeps only the packs holding a wanted id (with data), or flags the ids found (without).
function scanIds(packs, ids, withData, done, fail) {
  const values = [];
  const wanted = new Map();
  const flags = new Uint8Array(ids.length / ID);
  for (let i = 0; i < flags.length; i++) wanted.set(idName(ids.subarray(ID * i)), i);
  const each = (v) => {
    checkPack(v);
    let hit = false;
    for (const k of v.k) {
      const i = wanted.get(idName(new Uint8Array(k)));
      if (i !== undefined) {
        flags[i] = 1;
        hit = true;
      }
    }
    if (withData && hit) values.push(v);
  };
  scanPacks(packs, each, () => done(withData ? packOps(values) : flags), fail);
}

// Reads every pack of `packs` in key order, SCAN_CHUNK at a time (bounding what one request
// holds in memory), calling `each(value)`, then `done()`.
function scanPacks(packs, each, done, fail) {
  const next = (after) => {
    const range = after === undefined ? null : IDBKeyRange.lowerBound(after, true);
    const keys = packs.getAllKeys(range, SCAN_CHUNK);
    const values = packs.getAll(range, SCAN_CHUNK);
    allSettled([keys, values], () => {
      try {
        for (const v of values.result) each(v);
        const k = keys.result;
        if (k.length < SCAN_CHUNK) done();
        else next(k[k.length - 1]);
      } catch (e) {
        fail(e);
      }
    }, fail);
  };
  next(undefined);
}

// A pack key ([stamp, op key ArrayBuffer]) as a string, to read each pack once.
function packName(key) {
  if (!(Array.isArray(key) && key.length === 2 && key[1] instanceof ArrayBuffer)) {
    throw new Error('corrupt pack key in the op store database');
  }
  return `${key[0]}:${new Uint8Array(key[1]).join(',')}`;
}

function checkPack(v) {
  if (!(v && v.d instanceof Uint8Array && v.a instanceof Float64Array && Array.isArray(v.k) && v.k.length === v.a.length)) {
    throw new Error('corrupt pack record in the op store database');
  }
  for (const k of v.k) {
    if (!(k instanceof ArrayBuffer) || k.byteLength !== PK) throw new Error('corrupt op key in the op store database');
  }
}

// Length of the op keyed `k` (bytes 32..36, big-endian).
function lenOf(k) {
  return new DataView(k).getUint32(ID);
}

function packOps(values) {
  let n = 0;
  let bytes = 0;
  for (const v of values) {
    checkPack(v);
    n += v.k.length;
    bytes += v.d.length;
  }
  const data = new Uint8Array(bytes);
  const offs = new Uint32Array(n + 1);
  const keys = new Uint8Array(n * PK);
  let i = 0;
  let o = 0;
  for (const v of values) {
    let inner = 0;
    for (const k of v.k) {
      inner += lenOf(k);
      keys.set(new Uint8Array(k), i * PK);
      offs[++i] = o + inner;
    }
    if (inner !== v.d.length) throw new Error('corrupt pack record in the op store database');
    data.set(v.d, o);
    o += v.d.length;
  }
  return [data, offs, keys];
}

/**
 * Op keys (packed, 44 bytes each) of the entries of the `sector_time` index of `tx`'s `packs`
 * store (`tx` reads `packs` and `info`) in the ranges `[lowers[i], uppers[i]]` (inclusive;
 * keys `[sector, created_at, op key]`; each range within one sector), in no particular order.
 *
 * Two ways, chosen by the share of all ops the ranges hold (one `count` per range, and the
 * totals record, first; a count of the whole index would step through it): a key
 * cursor per range costs a request event per entry, a scan of every pack (`getAll` in chunks)
 * costs a copy of every op; so few entries go by cursor, many by scan.
 */
export function timeKeys(tx, lowers, uppers) {
  return new Promise((resolve, reject) => {
    try {
      const packs = tx.objectStore('packs');
      const index = packs.index('sector_time');
      if (lowers.length === 0) {
        resolve(new Uint8Array(0));
        return;
      }
      const ranges = lowers.map((lo, i) => IDBKeyRange.bound(lo, uppers[i]));
      const counts = ranges.map((r) => index.count(r));
      const totals = tx.objectStore('info').get('totals');
      allSettled([...counts, totals], () => {
        try {
          let n = 0;
          for (const c of counts) n += c.result;
          const read = scanIsCheaper(n, totals) ? scanKeys : cursorKeys;
          read(packs, index, ranges, (got) => resolve(packGot(got)), reject);
        } catch (e) {
          reject(e);
        }
      }, reject);
    } catch (e) {
      reject(e);
    }
  });
}

function packGot(got) {
  const out = new Uint8Array(got.length * PK);
  got.forEach((k, i) => out.set(new Uint8Array(k), i * PK));
  return out;
}

function checkKey(k) {
  if (!(k instanceof ArrayBuffer) || k.byteLength !== PK) {
    throw new Error('corrupt sector_time key in the op store database');
  }
  return k;
}

function cursorKeys(packs, index, ranges, done, fail) {
  const got = [];
  let open = ranges.length;
  for (const range of ranges) {
    const req = index.openKeyCursor(range);
    req.addEventListener('error', () => fail(req.error));
    req.addEventListener('success', () => {
      try {
        const c = req.result;
        if (!c) {
          open -= 1;
          if (open === 0) done(got);
          return;
        }
        got.push(checkKey(Array.isArray(c.key) ? c.key[2] : undefined));
        c.continue();
      } catch (e) {
        fail(e);
      }
    });
  }
}

// Ranges are `[s, lo]..[s, hi, …]`: an entry [s, t, key] is in one if lo <= t <= hi.
function scanKeys(packs, index, ranges, done, fail) {
  const bySector = new Map();
  for (const r of ranges) {
    const s = r.lower[0];
    if (!bySector.has(s)) bySector.set(s, []);
    bySector.get(s).push([r.lower[1], r.upper[1]]);
  }
  const got = [];
  const each = (v) => {
    if (!(v && Array.isArray(v.st))) throw new Error('corrupt pack record in the op store database');
    for (const e of v.st) {
      const rs = Array.isArray(e) ? bySector.get(e[0]) : undefined;
      if (rs !== undefined && rs.some(([lo, hi]) => lo <= e[1] && e[1] <= hi)) got.push(checkKey(e[2]));
    }
  };
  scanPacks(packs, each, () => done(got), fail);
}

/**
 * Schema step 2 (in the `versionchange` transaction `tx`, after the `packs` store and its
 * indexes exist): copies every op of the schema-1 `ops` store into packs of up to `perPack`
 * ops in stored-at order, then deletes `ops`. Aborts `tx` on any error (the open then fails).
 */
export function packSchema1(tx, db, perPack) {
  const fail = () => {
    try { tx.abort(); } catch { /* already finished */ }
  };
  try {
    const packs = tx.objectStore('packs');
    const req = tx.objectStore('ops').index('stored').openCursor();
    let batch = [];
    const flush = () => {
      if (batch.length === 0) return;
      const p = packRecord(batch);
      packs.add(p.value, p.key).addEventListener('error', fail);
      batch = [];
    };
    req.addEventListener('error', fail);
    req.addEventListener('success', () => {
      try {
        const c = req.result;
        if (!c) {
          flush();
          db.deleteObjectStore('ops');
          return;
        }
        const v = c.value;
        const k = c.primaryKey;
        if (!(v && v.d instanceof Uint8Array && k instanceof ArrayBuffer && k.byteLength === PK)) {
          throw new Error('corrupt op record');
        }
        batch.push({ d: v.d, a: v.a, k, s: v.s, t: v.t });
        if (batch.length === perPack) flush();
        c.continue();
      } catch {
        fail();
      }
    });
  } catch {
    fail();
  }
}

/**
 * Every record of `tx`'s `slice_batches` store in key order, joined: resolves with
 * `[meta, data, records, lastKey]`: `meta` a Uint32Array of 5 numbers per entry (arc start,
 * arc end, index high, index low, end of its hash in `data`), `data` the hashes back to back,
 * `records` the number of records and `lastKey` the highest key (undefined when empty). Later
 * entries of a key replace earlier ones; that rule is Rust's. A record of another shape
 * rejects (a corrupt database).
 */
export function allSliceBatches(tx) {
  return new Promise((resolve, reject) => {
    try {
      const st = tx.objectStore('slice_batches');
      const keys = st.getAllKeys();
      const values = st.getAll();
      allSettled([keys, values], () => {
        try {
          const vs = values.result;
          resolve([...joinBatches(vs), vs.length, keys.result[keys.result.length - 1]]);
        } catch (e) {
          reject(e);
        }
      }, reject);
    } catch (e) {
      reject(e);
    }
  });
}

function joinBatches(batches) {
  let entries = 0;
  let bytes = 0;
  for (const b of batches) {
    const ok = b && b.m instanceof Uint32Array && b.d instanceof Uint8Array && b.m.length % 5 === 0
      && (b.m.length === 0 ? 0 : b.m[b.m.length - 1]) === b.d.length;
    if (!ok) throw new Error('corrupt slice hash batch in the op store database');
    entries += b.m.length;
    bytes += b.d.length;
  }
  const meta = new Uint32Array(entries);
  const data = new Uint8Array(bytes);
  let m = 0;
  let o = 0;
  for (const b of batches) {
    meta.set(b.m, m);
    for (let i = m + 4; i < m + b.m.length; i += 5) meta[i] += o;
    data.set(b.d, o);
    m += b.m.length;
    o += b.d.length;
  }
  return [meta, data];
}

/**
 * Schema step 3: the records of schema 2's `slices` store (keys `[arc start, arc end, index
 * high, index low]`, values Uint8Array) become one `slice_batches` record `{m, d}`, and
 * `slices` is deleted. Aborts `tx` on error (the open then fails and nothing changed).
 */
export function batchSchema2Slices(tx, db) {
  const fail = () => {
    try { tx.abort(); } catch { /* already finished */ }
  };
  try {
    const st = tx.objectStore('slices');
    const keys = st.getAllKeys();
    const values = st.getAll();
    allSettled([keys, values], () => {
      try {
        const [m, d] = packSlices(keys.result, values.result);
        if (m.length > 0) tx.objectStore('slice_batches').add({ m, d }).addEventListener('error', fail);
        db.deleteObjectStore('slices');
      } catch {
        fail();
      }
    }, fail);
  } catch {
    fail();
  }
}

function packSlices(keys, values) {
  const corrupt = () => new Error('corrupt slice hash record in the op store database');
  const meta = new Uint32Array(keys.length * 5);
  let bytes = 0;
  for (const v of values) {
    if (!(v instanceof Uint8Array)) throw corrupt();
    bytes += v.length;
  }
  const data = new Uint8Array(bytes);
  let o = 0;
  keys.forEach((k, i) => {
    if (!(Array.isArray(k) && k.length === 4 && k.every((x) => Number.isInteger(x) && x >= 0 && x <= 0xffffffff))) {
      throw corrupt();
    }
    meta.set(k, i * 5);
    data.set(values[i], o);
    o += values[i].length;
    meta[i * 5 + 4] = o;
  });
  return [meta, data];
}
