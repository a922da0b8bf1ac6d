// Bulk conversions for the OpStore JavaScript API (src/js/store.rs): one JS<->wasm crossing per
// call instead of several per op. Only loops; checks and errors stay in Rust.

/**
 * `ids` joined with ',' when every entry is a string without ','; otherwise the index of the
 * first entry that is not (the caller reports it).
 */
export function joinIds(ids) {
  for (let i = 0; i < ids.length; i++) {
    const s = ids[i];
    if (typeof s !== 'string' || s.includes(',')) return i;
  }
  return ids.join(',');
}

/**
 * `{ id, payload, createdAt }` objects from packed parts: `ids` joined with ',', payload i at
 * `data[offs[i]..offs[i+1]]` (copied out), createdAt i from `created[i]` as a number when it is
 * a safe integer, else as a bigint.
 */
export function buildOps(ids, data, offs, created) {
  const n = created.length;
  const idList = n === 0 ? [] : ids.split(',');
  const out = new Array(n);
  for (let i = 0; i < n; i++) {
    const c = created[i];
    const num = Number(c);
    out[i] = {
      id: idList[i],
      payload: data.slice(offs[i], offs[i + 1]),
      createdAt: Number.isSafeInteger(num) ? num : c,
    };
  }
  return out;
}
