// Bulk IndexedDB loops for IdbOpStore (src/store/idb.rs), imported through wasm-bindgen.
//
// Why JavaScript: a batch of N ops is N IndexedDB requests. Driving them from wasm costs
// several JS<->wasm crossings per op (a key, a value object, its fields, two event closures
// per request); here each call crosses once with packed buffers. Only the loops live here:
// every rule (verification, stamps, which ops are new, errors) stays in Rust.
//
// Packed formats (all big-endian, see idb.rs "Database layout"):
//   primary key  44 bytes: op id (32) | encoded length u32 (4) | created_at i64 with the sign
//                bit flipped (8)
//   meta         3 numbers per op (Float64Array): sector, created_at µs, stored_at µs

const PK = 44;

// Calls onDone on the request's success, or on an error a listener on the request itself
// already handled (preventDefault); onFail with the request's error otherwise.
function settle(req, onDone, onFail) {
  req.addEventListener('success', onDone);
  req.addEventListener('error', (ev) => (ev.defaultPrevented ? onDone() : onFail(req.error)));
}

/**
 * Adds ops to the `ops` store of `tx` (readwrite over `ops` and `info`) and updates the totals
 * record. `data` holds the encoded ops back to back, op i at `offs[i]..offs[i+1]`; `keys` and
 * `meta` hold one packed primary key / meta entry per op. An op whose key exists is not
 * written (its ConstraintError is handled here and does not abort the transaction).
 *
 * Resolves, once the last request settled, with a Uint8Array: 1 for each op newly written,
 * 0 for each already held. The caller must still wait for the transaction's `complete`.
 * Rejects with the transaction's DOMException if it aborted, or an Error for a corrupt totals
 * record (after aborting the transaction).
 */
export function writeOps(tx, data, offs, keys, meta) {
  return new Promise((resolve, reject) => {
    const n = offs.length - 1;
    const fresh = new Uint8Array(n).fill(1);
    const reqs = new Array(n);
    const fail = (e) => {
      try { tx.abort(); } catch { /* already finished */ }
      reject(e);
    };
    let finish;
    // An op already held fails its `add` with ConstraintError: not an error here. Requests
    // settle in order, so the failed one is found by searching forward from the last. This
    // listener (on the transaction, where the event bubbles) is also where the last request's
    // failure is known to have been handled.
    let seen = 0;
    tx.addEventListener('error', (ev) => {
      const r = ev.target;
      if (!(r && r.error && r.error.name === 'ConstraintError')) return;
      for (let i = seen; i < n; i++) {
        if (reqs[i] === r) {
          ev.preventDefault();
          fresh[i] = 0;
          seen = i + 1;
          if (i === n - 1) finish();
          return;
        }
      }
    });
    tx.addEventListener('abort', () => reject(tx.error || new DOMException('transaction aborted', 'AbortError')));
    try {
      const ops = tx.objectStore('ops');
      const info = tx.objectStore('info');
      const totals = info.get('totals');
      for (let i = 0; i < n; i++) {
        // The value must own its bytes (a view would clone the whole buffer); the key is
        // copied by IndexedDB from the view alone.
        const value = { d: data.slice(offs[i], offs[i + 1]), t: meta[3 * i + 1], s: meta[3 * i], a: meta[3 * i + 2] };
        reqs[i] = ops.add(value, keys.subarray(i * PK, (i + 1) * PK));
      }
      finish = () => {
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
      reqs[n - 1].addEventListener('success', finish);
    } catch (e) {
      fail(e);
    }
  });
}

function upperOf(lo) {
  const hi = new Uint8Array(PK).fill(0xff);
  hi.set(lo);
  return hi;
}

/**
 * Reads the `ops` store of `tx` over id ranges: range i covers the keys whose op id is in
 * `[ids[64i..64i+32], ids[64i+32..64i+64]]`. With `keysOnly` resolves to the packed primary
 * keys found (44 bytes each); otherwise to `[data, offs]`: the encoded ops found, back to back,
 * op j at `offs[j]..offs[j+1]`. Ranges are read in order, each in key order.
 */
export function readIdRanges(tx, ids, keysOnly) {
  return new Promise((resolve, reject) => {
    try {
      const ops = tx.objectStore('ops');
      const m = ids.length / 64;
      const reqs = [];
      for (let i = 0; i < m; i++) {
        const range = IDBKeyRange.bound(ids.slice(64 * i, 64 * i + 32), upperOf(ids.slice(64 * i + 32, 64 * i + 64)));
        reqs.push(keysOnly ? ops.getAllKeys(range) : ops.getAll(range));
      }
      if (m === 0) {
        resolve(keysOnly ? new Uint8Array(0) : [new Uint8Array(0), new Uint32Array(1)]);
        return;
      }
      settle(reqs[m - 1], () => {
        try {
          resolve(keysOnly ? packKeys(reqs) : packValues(reqs));
        } catch (e) {
          reject(e);
        }
      }, reject);
    } catch (e) {
      reject(e);
    }
  });
}

/**
 * Primary keys (packed, 44 bytes each) of the entries of index `indexName` of `tx`'s `ops`
 * store in the ranges `[lowers[i], uppers[i]]` (inclusive; keys of that index), range by
 * range, each in index order.
 */
export function indexKeys(tx, indexName, lowers, uppers) {
  return new Promise((resolve, reject) => {
    try {
      const index = tx.objectStore('ops').index(indexName);
      const reqs = lowers.map((lo, i) => index.getAllKeys(IDBKeyRange.bound(lo, uppers[i])));
      if (reqs.length === 0) {
        resolve(new Uint8Array(0));
        return;
      }
      settle(reqs[reqs.length - 1], () => {
        try {
          resolve(packKeys(reqs));
        } catch (e) {
          reject(e);
        }
      }, reject);
    } catch (e) {
      reject(e);
    }
  });
}

// `request.result` is read once per request: each read of it may deserialize the values anew.
function packKeys(reqs) {
  const results = reqs.map((r) => r.result);
  let n = 0;
  for (const res of results) n += res.length;
  const out = new Uint8Array(n * PK);
  let o = 0;
  for (const res of results) {
    for (const k of res) {
      if (!(k instanceof ArrayBuffer) || k.byteLength !== PK) {
        throw new Error('corrupt key in the op store database');
      }
      out.set(new Uint8Array(k), o);
      o += PK;
    }
  }
  return out;
}

function packValues(reqs) {
  const results = reqs.map((r) => r.result);
  let n = 0;
  let bytes = 0;
  for (const res of results) {
    for (const v of res) {
      if (!(v && v.d instanceof Uint8Array)) throw new Error('corrupt op record in the op store database');
      n += 1;
      bytes += v.d.length;
    }
  }
  const data = new Uint8Array(bytes);
  const offs = new Uint32Array(n + 1);
  let i = 0;
  let o = 0;
  for (const res of results) {
    for (const v of res) {
      data.set(v.d, o);
      o += v.d.length;
      offs[++i] = o;
    }
  }
  return [data, offs];
}
