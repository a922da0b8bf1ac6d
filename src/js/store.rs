//! The op store for JavaScript: `OpStore` (an [`IdbOpStore`] on IndexedDB) and `opId`.
//!
//! Thin: it checks what JavaScript passes (a bad argument is rejected with a `TypeError` or
//! `RangeError` naming the argument, never a panic), converts, and calls the store. Store
//! failures reject with an `Error` named `"OpStoreError"` whose `code` is the
//! [`StoreError`] variant (`"QuotaExceeded"`, `"Closed"`, ...).
//!
//! Units: times are µs since the Unix epoch (`createdAt`, `start`, `end`), as a `number`
//! (a safe integer) or a `bigint` (any i64); sizes are bytes of the encoded op (payload + 9).
//! Ids are base64url without padding (Kitsune2's JSON form).

use super::promise;
use bytes::Bytes;
use js_sys::{Array, BigInt64Array, JsString, Object, Promise, Reflect, Uint8Array, Uint32Array};
use std::rc::Rc;
use wasm_bindgen::prelude::*;

use super::validate::describe;
use crate::api::{MetaOp, OpStore, StoreError};
use crate::browser::idb::{Durability, IdbOpStore, IdbOptions};
use crate::model::arc::DhtArc;
use crate::model::id::{AgentId, Id, OpId, SpaceId};
use crate::model::op::{MAX_OP_PAYLOAD_BYTES, OP_HEADER_BYTES, OP_ID_BYTES, Op, OpError};
use crate::model::time::Timestamp;

#[wasm_bindgen(typescript_custom_section)]
const TS_TYPES: &'static str = r#"
/** One op to write with `OpStore.putOps`. */
export interface OpInput {
  /** The app's bytes, at most 1 048 567 bytes (1 MiB minus the 9-byte op header). */
  payload: Uint8Array;
  /** Creation time, µs since the Unix epoch: a safe integer `number` or any i64 `bigint`. */
  createdAt: number | bigint;
}

/** One op read back with `OpStore.getOps`. */
export interface OpOutput {
  /** The op id: base64url (no padding) of BLAKE3(op envelope), 32 bytes. */
  id: string;
  /** The app's bytes (a copy). */
  payload: Uint8Array;
  /** Creation time, µs since the Unix epoch: a `number` when it is a safe integer, else a `bigint`. */
  createdAt: number | bigint;
}

/** Options of `OpStore.open`. */
export interface OpStoreOptions {
  /**
   * IndexedDB durability of write transactions. `"strict"` (default): flushed to disk before a
   * write is acknowledged, survives power loss. `"relaxed"`: acknowledged once the OS has the
   * data; survives a tab or browser crash, not a power cut. `"default"`: the browser's choice.
   */
  durability?: "strict" | "relaxed" | "default";
}

/** Totals over the ops held, from `OpStore.totals`. */
export interface OpStoreTotals {
  /** Number of distinct ops held. */
  count: number;
  /** Sum of their encoded sizes (payload + 9 bytes each), bytes. */
  bytes: number;
}
"#;

/// The op store of one agent in one space, on IndexedDB (database
/// `fennec-ops:<space>:<agent>`). JavaScript name: `OpStore`.
///
/// Every method that touches the database returns a promise; a write resolves only after
/// IndexedDB committed it (the transaction's `complete` event), so an acknowledged op survives
/// a tab crash (and, with `durability: "strict"`, a power cut). Rejections: `TypeError` /
/// `RangeError` for bad arguments (the message names the argument), an `Error` named
/// `"OpStoreError"` with a `code` for store failures (`"Closed"` after `close()`,
/// `"QuotaExceeded"`, `"Blocked"`, `"VersionChange"`, `"Backend"`, ...).
#[wasm_bindgen(js_name = OpStore)]
pub struct JsOpStore {
    inner: Rc<IdbOpStore>,
}

#[wasm_bindgen(js_class = OpStore)]
impl JsOpStore {
    /// Opens (creating if needed) the op store of `agent` in `space`.
    ///
    /// `space`, `agent`: an id as base64url without padding (a `string`) or its raw bytes (a
    /// `Uint8Array`), non-empty. To use a human-readable name, pass its UTF-8 bytes
    /// (`new TextEncoder().encode("my-space")`). `options.durability`: see `OpStoreOptions`.
    ///
    /// Rejects with a `TypeError` for a bad argument, or an `OpStoreError` (`"Blocked"` when
    /// another tab holds an older schema open, `"Backend"` when IndexedDB is unavailable).
    #[wasm_bindgen(unchecked_return_type = "Promise<OpStore>")]
    pub fn open(
        #[wasm_bindgen(unchecked_param_type = "string | Uint8Array")] space: JsValue,
        #[wasm_bindgen(unchecked_param_type = "string | Uint8Array")] agent: JsValue,
        #[wasm_bindgen(unchecked_optional_param_type = "OpStoreOptions")] options: JsValue,
    ) -> Promise {
        let args = (|| {
            let space = SpaceId::from(id_arg("OpStore.open", "space", &space)?);
            let agent = AgentId::from(id_arg("OpStore.open", "agent", &agent)?);
            let durability = durability_arg(&options)?;
            Ok::<_, JsValue>((space, agent, durability))
        })();
        promise(async move {
            let (space, agent, durability) = args?;
            let opts = IdbOptions {
                durability,
                ..IdbOptions::default()
            };
            let store = IdbOpStore::open(&space, &agent, opts)
                .await
                .map_err(store_error)?;
            Ok(JsOpStore {
                inner: Rc::new(store),
            }
            .into())
        })
    }

    /// Deletes the database of `agent` in `space` (every op and slice hash). Arguments as
    /// for `open`. Rejects with an `OpStoreError` `"Blocked"` while a connection to it stays
    /// open (close it first).
    #[wasm_bindgen(unchecked_return_type = "Promise<void>")]
    pub fn delete(
        #[wasm_bindgen(unchecked_param_type = "string | Uint8Array")] space: JsValue,
        #[wasm_bindgen(unchecked_param_type = "string | Uint8Array")] agent: JsValue,
    ) -> Promise {
        let args = (|| {
            let space = SpaceId::from(id_arg("OpStore.delete", "space", &space)?);
            let agent = AgentId::from(id_arg("OpStore.delete", "agent", &agent)?);
            Ok::<_, JsValue>((space, agent))
        })();
        promise(async move {
            let (space, agent) = args?;
            IdbOpStore::delete(&space, &agent)
                .await
                .map_err(store_error)?;
            Ok(JsValue::UNDEFINED)
        })
    }

    /// The IndexedDB database name, `fennec-ops:<space b64url>:<agent b64url>`.
    #[wasm_bindgen(getter)]
    pub fn name(&self) -> String {
        self.inner.name().to_string()
    }

    /// Stores ops in one IndexedDB transaction and resolves, after it committed, with the op
    /// id of every input op, in input order (an op already held, or given twice, is not an
    /// error: its id is returned too, and it is stored once).
    ///
    /// `ops`: an `Array` of `{ payload: Uint8Array, createdAt: number | bigint }` (see
    /// `OpInput`). All or nothing: a bad entry rejects the whole call with a `TypeError` /
    /// `RangeError` naming it (e.g. `ops[3].createdAt`) before anything is written, and a
    /// failed transaction (`"QuotaExceeded"`, `"Closed"`) stores none of them.
    #[wasm_bindgen(js_name = putOps, unchecked_return_type = "Promise<string[]>")]
    pub fn put_ops(
        &self,
        #[wasm_bindgen(unchecked_param_type = "OpInput[]")] ops: JsValue,
    ) -> Promise {
        let store = self.inner.clone();
        let parsed = parse_ops(&ops);
        promise(async move {
            let (metas, ids) = parsed?;
            store
                .process_incoming_ops(metas)
                .await
                .map_err(store_error)?;
            Ok(ids.into())
        })
    }

    /// The ops held among `ids` (base64url op ids), in the order asked, each at most once;
    /// ids not held are skipped. Resolves with `OpOutput` objects `{ id, payload, createdAt }`.
    /// Rejects with a `TypeError` naming a bad entry (e.g. `ids[2]`), or an `OpStoreError`.
    #[wasm_bindgen(js_name = getOps, unchecked_return_type = "Promise<OpOutput[]>")]
    pub fn get_ops(
        &self,
        #[wasm_bindgen(unchecked_param_type = "string[]")] ids: JsValue,
    ) -> Promise {
        let store = self.inner.clone();
        let parsed = parse_ids("OpStore.getOps", "ids", &ids);
        promise(async move {
            let ids = parsed?;
            let ops = store.retrieve_ops(ids).await.map_err(store_error)?;
            let mut id_list = String::with_capacity(ops.len() * 44);
            let mut data = Vec::with_capacity(ops.iter().map(|m| m.op_data.len()).sum());
            let mut offs = Vec::with_capacity(ops.len() + 1);
            let mut created = Vec::with_capacity(ops.len());
            offs.push(0u32);
            for m in &ops {
                let op = Op::decode_bytes(&m.op_data).map_err(|e| {
                    store_error(StoreError::Backend(format!(
                        "op {} in the database does not decode: {e}",
                        m.op_id
                    )))
                })?;
                if !id_list.is_empty() {
                    id_list.push(',');
                }
                id_list.push_str(&m.op_id.to_b64());
                data.extend_from_slice(&op.payload);
                // At most MAX_OP_BYTES per op and ops.len() ops fit in memory: no overflow
                // below 4 GiB; saturate rather than wrap beyond.
                offs.push(u32::try_from(data.len()).unwrap_or(u32::MAX));
                created.push(op.created_at.as_micros());
            }
            let out = build_ops(
                &JsString::from(id_list),
                &Uint8Array::from(&data[..]),
                &Uint32Array::from(&offs[..]),
                &BigInt64Array::from(&created[..]),
            );
            Ok(out.into())
        })
    }

    /// Ids of the ops whose `createdAt` is in `[start, end)` µs (any location), ordered by
    /// `(createdAt, id)` ascending. `start >= end` gives `[]`. `start`, `end`: a safe integer
    /// `number` or a `bigint`; anything else rejects with a `TypeError`/`RangeError`.
    #[wasm_bindgen(js_name = timeSlice, unchecked_return_type = "Promise<string[]>")]
    pub fn time_slice(
        &self,
        #[wasm_bindgen(unchecked_param_type = "number | bigint")] start: JsValue,
        #[wasm_bindgen(unchecked_param_type = "number | bigint")] end: JsValue,
    ) -> Promise {
        let store = self.inner.clone();
        let parsed = (|| {
            Ok::<_, JsValue>((
                time_arg("OpStore.timeSlice", "start", &start)?,
                time_arg("OpStore.timeSlice", "end", &end)?,
            ))
        })();
        promise(async move {
            let (start, end) = parsed?;
            let r = store
                .retrieve_op_hashes_in_time_slice(DhtArc::FULL, start, end)
                .await
                .map_err(store_error)?;
            if r.op_ids.is_empty() {
                return Ok(Array::new().into());
            }
            let joined: String = r
                .op_ids
                .iter()
                .map(|id| id.to_b64())
                .collect::<Vec<_>>()
                .join(",");
            Ok(JsString::from(joined).split(",").into())
        })
    }

    /// Count and total encoded bytes of the ops held: `{ count, bytes }` (`OpStoreTotals`).
    #[wasm_bindgen(unchecked_return_type = "Promise<OpStoreTotals>")]
    pub fn totals(&self) -> Promise {
        let store = self.inner.clone();
        promise(async move {
            let t = store.query_totals().await.map_err(store_error)?;
            let o = Object::new();
            Reflect::set(&o, &"count".into(), &JsValue::from(t.op_count as f64))?;
            Reflect::set(&o, &"bytes".into(), &JsValue::from(t.op_bytes as f64))?;
            Ok(o.into())
        })
    }

    /// Closes the store. Writes already started still commit and resolve; every later call
    /// rejects with `OpStoreError` code `"Closed"`. Idempotent.
    pub fn close(&self) {
        self.inner.close();
    }
}

/// The op id of an op with `payload` created at `createdAt` (µs): base64url (no padding) of
/// the 32-byte BLAKE3 hash of its envelope, as `OpStore.putOps` returns it. Throws a
/// `TypeError`/`RangeError` naming a bad argument (e.g. a payload over 1 048 567 bytes).
#[wasm_bindgen(js_name = opId)]
pub fn op_id(
    #[wasm_bindgen(unchecked_param_type = "Uint8Array")] payload: JsValue,
    #[wasm_bindgen(js_name = createdAt, unchecked_param_type = "number | bigint")]
    created_at: JsValue,
) -> Result<String, JsValue> {
    let payload = payload_arg("opId", "payload", &payload)?;
    let created_at = time_arg("opId", "createdAt", &created_at)?;
    Ok(Op {
        created_at,
        payload,
    }
    .id()
    .to_b64())
}

#[wasm_bindgen(module = "/src/js/store_glue.js")]
extern "C" {
    /// `ids.join(",")`, or the index of the first entry that is not a string without ','.
    #[wasm_bindgen(js_name = joinIds)]
    fn join_ids(ids: &Array) -> JsValue;

    /// `OpOutput` objects from packed ids, payloads and creation times.
    #[wasm_bindgen(js_name = buildOps)]
    fn build_ops(
        ids: &JsString,
        data: &Uint8Array,
        offs: &Uint32Array,
        created: &BigInt64Array,
    ) -> Array;
}

// ---------------------------------------------------------------------------------------------
// argument checks

fn type_error(msg: String) -> JsValue {
    js_sys::TypeError::new(&msg).into()
}

fn range_error(msg: String) -> JsValue {
    js_sys::RangeError::new(&msg).into()
}

/// A store failure as an `Error` named `OpStoreError` with a `code`.
fn store_error(e: StoreError) -> JsValue {
    let code = match &e {
        StoreError::WrongId { .. } => "WrongId",
        StoreError::Decode { .. } => "Decode",
        StoreError::QuotaExceeded(_) => "QuotaExceeded",
        StoreError::Blocked { .. } => "Blocked",
        StoreError::VersionChange { .. } => "VersionChange",
        StoreError::Closed => "Closed",
        StoreError::Invalid(_) => "Invalid",
        StoreError::Backend(_) => "Backend",
    };
    let err = js_sys::Error::new(&e.to_string());
    err.set_name("OpStoreError");
    let _ = Reflect::set(&err, &"code".into(), &JsValue::from_str(code));
    err.into()
}

/// A non-empty id: base64url-nopad text or raw bytes.
fn id_arg(func: &str, name: &str, v: &JsValue) -> Result<Id, JsValue> {
    let id = if let Some(s) = v.as_string() {
        Id::from_b64(&s).map_err(|_| {
            type_error(format!(
                "{func}: {name} must be base64url without padding (or a Uint8Array of the id's \
                 bytes); got {s:?}"
            ))
        })?
    } else if let Some(a) = v.dyn_ref::<Uint8Array>() {
        Id::from_bytes(a.to_vec())
    } else {
        return Err(type_error(format!(
            "{func}: {name} must be a base64url string or a Uint8Array, got {}",
            describe(v)
        )));
    };
    if id.as_bytes().is_empty() {
        return Err(type_error(format!("{func}: {name} must not be empty")));
    }
    Ok(id)
}

fn durability_arg(options: &JsValue) -> Result<Durability, JsValue> {
    if options.is_undefined() || options.is_null() {
        return Ok(Durability::default());
    }
    if !options.is_object() {
        return Err(type_error(format!(
            "OpStore.open: options must be an object {{ durability }}, got {}",
            describe(options)
        )));
    }
    let v = Reflect::get(options, &"durability".into()).unwrap_or(JsValue::UNDEFINED);
    if v.is_undefined() {
        return Ok(Durability::default());
    }
    match v.as_string().as_deref() {
        Some("strict") => Ok(Durability::Strict),
        Some("relaxed") => Ok(Durability::Relaxed),
        Some("default") => Ok(Durability::BrowserDefault),
        _ => Err(type_error(format!(
            "OpStore.open: options.durability must be \"strict\", \"relaxed\" or \"default\", \
             got {}",
            v.as_string()
                .map_or_else(|| describe(&v), |s| format!("{s:?}"))
        ))),
    }
}

/// µs since the epoch: a safe-integer number or an i64 bigint.
fn time_arg(func: &str, name: &str, v: &JsValue) -> Result<Timestamp, JsValue> {
    if let Some(f) = v.as_f64() {
        const MAX_SAFE: f64 = 9_007_199_254_740_991.0;
        if !f.is_finite() || f.fract() != 0.0 {
            return Err(range_error(format!(
                "{func}: {name} must be an integer number of µs since the Unix epoch, got {f}"
            )));
        }
        if f.abs() > MAX_SAFE {
            return Err(range_error(format!(
                "{func}: {name} = {f} is beyond Number.MAX_SAFE_INTEGER; pass a bigint"
            )));
        }
        return Ok(Timestamp::from_micros(f as i64));
    }
    if v.is_bigint() {
        return i64::try_from(v.clone())
            .map(Timestamp::from_micros)
            .map_err(|_| range_error(format!("{func}: {name} does not fit a signed 64-bit µs")));
    }
    Err(type_error(format!(
        "{func}: {name} must be a number or bigint of µs since the Unix epoch, got {}",
        describe(v)
    )))
}

fn payload_arg(func: &str, name: &str, v: &JsValue) -> Result<Bytes, JsValue> {
    let a = v.dyn_ref::<Uint8Array>().ok_or_else(|| {
        type_error(format!(
            "{func}: {name} must be a Uint8Array, got {}",
            describe(v)
        ))
    })?;
    let len = a.length() as usize;
    if len > MAX_OP_PAYLOAD_BYTES {
        return Err(range_error(format!(
            "{func}: {name} is {len} bytes; an op payload is at most {MAX_OP_PAYLOAD_BYTES} bytes"
        )));
    }
    Ok(Bytes::from(a.to_vec()))
}

fn array_arg<'a>(func: &str, name: &str, v: &'a JsValue) -> Result<&'a Array, JsValue> {
    if !Array::is_array(v) {
        return Err(type_error(format!(
            "{func}: {name} must be an Array, got {}",
            describe(v)
        )));
    }
    Ok(v.unchecked_ref())
}

/// `ops` as verified-ready `MetaOp`s plus the id string of every entry, in input order.
fn parse_ops(v: &JsValue) -> Result<(Vec<MetaOp>, Array), JsValue> {
    const F: &str = "OpStore.putOps";
    let arr = array_arg(F, "ops", v)?;
    let (k_payload, k_created) = (JsValue::from_str("payload"), JsValue::from_str("createdAt"));
    let n = arr.length();
    let mut metas = Vec::with_capacity(n as usize);
    let ids = Array::new_with_length(n);
    for i in 0..n {
        let item = arr.get(i);
        if !item.is_object() {
            return Err(type_error(format!(
                "{F}: ops[{i}] must be an object {{ payload, createdAt }}, got {}",
                describe(&item)
            )));
        }
        let get = |k: &JsValue| Reflect::get(&item, k).unwrap_or(JsValue::UNDEFINED);
        let payload = payload_arg(F, &format!("ops[{i}].payload"), &get(&k_payload))?;
        let created_at = time_arg(F, &format!("ops[{i}].createdAt"), &get(&k_created))?;
        let op = Op::new(created_at, payload).map_err(|e| match e {
            OpError::TooLarge { .. } => range_error(format!("{F}: ops[{i}]: {e}")),
            e => type_error(format!("{F}: ops[{i}]: {e}")),
        })?;
        let op_data = op.encode();
        let op_id = crate::model::op::op_id_of(&op_data);
        ids.set(i, JsValue::from_str(&op_id.to_b64()));
        metas.push(MetaOp { op_id, op_data });
    }
    Ok((metas, ids))
}

/// An array of base64url op ids (32 bytes each).
fn parse_ids(func: &str, name: &str, v: &JsValue) -> Result<Vec<OpId>, JsValue> {
    let arr = array_arg(func, name, v)?;
    let joined = join_ids(arr);
    let Some(joined) = joined.as_string() else {
        // joinIds found a bad entry: report it.
        let i = joined.as_f64().map_or(0, |f| f as u32);
        return Err(parse_id(func, name, i as usize, &arr.get(i))
            .err()
            .unwrap_or_else(|| type_error(format!("{func}: {name}[{i}] is not an op id"))));
    };
    if joined.is_empty() {
        // [] or [""]: the latter is a bad id.
        return (0..arr.length())
            .map(|i| parse_id(func, name, i as usize, &arr.get(i)))
            .collect();
    }
    joined
        .split(',')
        .enumerate()
        .map(|(i, s)| parse_id_str(func, name, i, s))
        .collect()
}

fn parse_id(func: &str, name: &str, i: usize, item: &JsValue) -> Result<OpId, JsValue> {
    let s = item.as_string().ok_or_else(|| {
        type_error(format!(
            "{func}: {name}[{i}] must be a base64url op id string, got {}",
            describe(item)
        ))
    })?;
    parse_id_str(func, name, i, &s)
}

fn parse_id_str(func: &str, name: &str, i: usize, s: &str) -> Result<OpId, JsValue> {
    OpId::from_b64(s)
        .ok()
        .filter(|id| id.as_bytes().len() == OP_ID_BYTES)
        .ok_or_else(|| {
            type_error(format!(
                "{func}: {name}[{i}] = {s:?} is not an op id (base64url of {OP_ID_BYTES} bytes)"
            ))
        })
}

const _: () = assert!(OP_HEADER_BYTES == 9, "the TypeScript docs say 9 bytes");
